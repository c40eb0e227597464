package sms

import "testing"

func TestErrorNamesStatusAndCode(t *testing.T) {
	err := &Error{Status: Permanent, Code: 400, Message: "the number cannot receive SMS"}
	if got, want := err.Error(), "the carrier did not take the message (permanent, 400): the number cannot receive SMS"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}
