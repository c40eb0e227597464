package sms

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

func TestErrorNamesStatusAndCode(t *testing.T) {
	err := &Error{Status: Permanent, Code: 400, Message: "the number cannot receive SMS"}
	if got, want := err.Error(), "the carrier did not take the message (permanent, 400): the number cannot receive SMS"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestMayDeliver(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"a timeout", &Error{Status: Temporary, Code: 504, MayDeliver: true}, true},
		{"a timeout, wrapped", fmt.Errorf("send: %w", Refuse(&Error{Status: Temporary, MayDeliver: true}, errors.New("i/o timeout"))), true},
		{"a refusal", &Error{Status: Temporary, Code: 503}, false},
		{"a deadline with no answer", fmt.Errorf("send: %w", context.DeadlineExceeded), true},
		{"a plain error", errors.New("connection refused"), false},
		{"a router that tried a carrier that may deliver", mayDeliver(true), true},
		{"a router whose carriers all refused", fmt.Errorf("x: %w", mayDeliver(false)), false},
	} {
		if got := MayDeliver(tc.err); got != tc.want {
			t.Errorf("%s: MayDeliver(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}

// mayDeliver is an error that says itself whether the message may arrive.
type mayDeliver bool

func (m mayDeliver) Error() string    { return "route failed" }
func (m mayDeliver) MayDeliver() bool { return bool(m) }
