package sms

import (
	"errors"
	"fmt"
	"strings"

	"github.com/otpd/otpd/internal/phone"
)

// Bounds of the origination identities, the senders a message shows.
const (
	MaxShortCodeLength = 15
	MaxSenderIDLength  = 11
)

// CheckOrigination returns nil if o is an origination identity: an E.164
// number, a short code (see IsShortCode) or an alphanumeric sender ID (see
// CheckSenderID). Otherwise its error says why not, worded to follow the
// name of the field that holds o.
func CheckOrigination(o string) error {
	switch {
	case o == "":
		return errors.New("is empty")
	case o[0] == '+':
		if !phone.IsE164Syntax(o) {
			return errors.New("starts with '+' but is not an E.164 number ('+' followed by 2 to 15 digits)")
		}
		return nil
	case phone.IsDigits(o):
		if !IsShortCode(o) {
			return fmt.Errorf("looks like a short code but must be 3 to %d digits", MaxShortCodeLength)
		}
		return nil
	}
	return CheckSenderID(o)
}

// IsShortCode reports whether s is a short code: 3 to MaxShortCodeLength
// digits.
func IsShortCode(s string) bool {
	return len(s) >= 3 && len(s) <= MaxShortCodeLength && phone.IsDigits(s)
}

// CheckSenderID returns nil if s is an alphanumeric sender ID: 1 to
// MaxSenderIDLength characters among ASCII letters, digits, space, '-',
// '.', '_' and '&', at least one a letter, and no space first or last.
// Otherwise its error says why not, worded as CheckOrigination's.
func CheckSenderID(s string) error {
	letters := 0
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			letters++
		case c >= '0' && c <= '9' || c == ' ' || c == '-' || c == '.' || c == '_' || c == '&':
		default:
			return errors.New("must be an E.164 number, a short code or an alphanumeric sender ID (ASCII letters, digits, space, '-', '.', '_', '&')")
		}
	}
	if s != strings.TrimSpace(s) {
		return errors.New("must not begin or end with a space")
	}
	if letters == 0 || len(s) > MaxSenderIDLength {
		return fmt.Errorf("as an alphanumeric sender ID must be 1 to %d characters with at least one letter", MaxSenderIDLength)
	}
	return nil
}
