package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/otpd/otpd/internal/pinpointapi"
)

// `otpd outbox` and `otpd messages` refuse a destination that is not an
// E.164 number and a limit outside 1 to pinpointapi.MaxListing, as the
// signed listings do, before they open any store.
func TestListingFlags(t *testing.T) {
	for _, l := range []listing{outboxListing, messagesListing} {
		for _, c := range []struct {
			args []string
			flag string
		}{
			{[]string{"--destination", "abc"}, "--destination"},
			{[]string{"--limit", "0"}, "--limit"},
			{[]string{"--limit", "-1"}, "--limit"},
			{[]string{"--limit", fmt.Sprint(pinpointapi.MaxListing + 1)}, "--limit"},
		} {
			err := l.run(append(c.args, "--data-dir", t.TempDir()))
			if err == nil || !strings.Contains(err.Error(), c.flag) {
				t.Errorf("%s %q: %v, want an error naming %s", l.name, c.args, err, c.flag)
			}
		}
	}
}
