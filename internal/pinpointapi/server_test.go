package pinpointapi

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/otpd/otpd/internal/metrics"
)

// allowAll authenticates every request, for tests of what comes after.
type allowAll struct{}

func (allowAll) Verify(*http.Request, []byte) (string, error) { return "TESTKEY", nil }

// TestPanicBecomesInternalError checks that a handler that panics (here: no
// Service configured) answers 500 in the AWS format rather than dropping
// the connection.
func TestPanicBecomesInternalError(t *testing.T) {
	h := New(Config{Auth: allowAll{}, Metrics: metrics.New(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/v1/apps/0123456789abcdef0123456789abcdef")
	if err != nil {
		t.Fatalf("GET: %v (the connection must not be dropped)", err)
	}
	defer resp.Body.Close()
	var body struct{ Message, RequestID string }
	json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != 500 || resp.Header.Get("X-Amzn-ErrorType") != "InternalServerErrorException" ||
		body.RequestID == "" || body.RequestID != resp.Header.Get("x-amzn-RequestId") || body.Message == "" {
		t.Errorf("got %d %q %+v, want 500 InternalServerErrorException with a message and the request ID",
			resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"), body)
	}
}
