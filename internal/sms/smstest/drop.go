package smstest

import (
	"io"
	"net/http"
	"testing"
)

// DropAfterRequest is an HTTP handler that reads the whole request, then
// closes the connection without answering: a service that may have taken
// the message before its connection broke. An HTTP carrier's failure
// against it must be sms.MayDeliver.
func DropAfterRequest(t *testing.T) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		conn.Close()
	}
}
