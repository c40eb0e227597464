// Package phone checks and describes phone numbers with libphonenumber's rules
// (github.com/nyaruka/phonenumbers) and its carrier, geocoding and time zone
// data. Every place in otpd that accepts a phone number parses it here, so
// that all agree on what is valid.
package phone

import (
	"fmt"

	"github.com/nyaruka/phonenumbers"
)

// ParseE164 accepts s only in strict E.164 form ("+" then 2 to 15 digits, no
// spaces or punctuation), only if libphonenumber considers the number valid,
// and only if s is that number's one canonical E.164 spelling: a national
// trunk prefix after the country code ("+1 1 206...", "+44 0 20...") is
// refused, so that one phone has one key for its codes and failure budget.
// It returns the number's ISO 3166 region ("US", "GG"), or "" for a
// non-geographic number (+800, +882, ...). The error explains what is
// wrong, for a client-facing message.
func ParseE164(s string) (region string, err error) {
	if !IsE164Syntax(s) {
		return "", fmt.Errorf("must be an E.164 phone number: '+' followed by 2 to 15 digits, with no spaces or punctuation (for example +14255550100)")
	}
	n, err := phonenumbers.Parse(s, "")
	if err != nil {
		return "", fmt.Errorf("is not a phone number libphonenumber can parse: %v", err)
	}
	n.Extension = nil
	// IsValidNumber, with the region it finds kept rather than found again.
	region = phonenumbers.GetRegionCodeForNumber(n)
	if !phonenumbers.IsValidNumberForRegion(n, region) {
		return "", fmt.Errorf("is not a valid phone number for its country code")
	}
	if canonical := phonenumbers.Format(n, phonenumbers.E164); canonical != s {
		return "", fmt.Errorf("is not in E.164 form (no national prefix after the country code): write it as %s", canonical)
	}
	if region == "ZZ" || region == "001" {
		return "", nil
	}
	return region, nil
}

// parse is the one reading of a phone number that every function here
// shares: libphonenumber's parser, with defaultRegion (an upper-case ISO
// country code, or "") for a number without '+', and its validity rules. A
// number with an extension is taken without it.
func parse(s, defaultRegion string) (n *phonenumbers.PhoneNumber, valid bool, err error) {
	n, err = phonenumbers.Parse(s, defaultRegion)
	if err != nil {
		return nil, false, err
	}
	n.Extension = nil
	return n, phonenumbers.IsValidNumber(n), nil
}

// IsE164Syntax reports whether s is '+' followed by 2 to 15 digits, the
// first of which is not 0.
func IsE164Syntax(s string) bool {
	return len(s) >= 3 && len(s) <= 16 && s[0] == '+' && s[1] != '0' && IsDigits(s[1:])
}

// IsDigits reports whether s is one or more ASCII digits.
func IsDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
