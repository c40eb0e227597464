package sms

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

func TestRetryable(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{&Error{Status: Temporary}, true},
		{&Error{Status: Throttled}, true},
		{&Error{Status: Permanent}, false},
		{&Error{Status: OptedOut}, false},
		{fmt.Errorf("submit: %w", &Error{Status: Permanent}), false},
		{context.DeadlineExceeded, true}, // a timeout: the carrier may be down
		{errors.New("connection reset"), true},
	} {
		if got := Retryable(tc.err); got != tc.want {
			t.Errorf("Retryable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestErrorNamesStatusAndCode(t *testing.T) {
	err := &Error{Status: Permanent, Code: 400, Message: "the number cannot receive SMS"}
	if got, want := err.Error(), "carrier refused the message (permanent, 400): the number cannot receive SMS"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}
