package sms

import (
	"strings"
	"testing"
)

// One rule for origination identities, which the API's requests, the SMS
// channel's settings and the carrier configuration all follow.
func TestCheckOrigination(t *testing.T) {
	for o, want := range map[string]string{ // want: "" or a part of the error
		"+18555550142":     "",
		"+44":              "",
		"262966":           "",
		"123":              "",
		"ExampleCo":        "",
		"Example Co":       "",
		"A-B.C_D&E":        "",
		"":                 "is empty",
		"+0123":            "not an E.164 number",
		"+1 855":           "not an E.164 number",
		"12":               "short code",
		"1234567890123456": "short code",
		" ExampleCo":       "begin or end with a space",
		"ExampleCo ":       "begin or end with a space",
		"Example!":         "alphanumeric sender ID",
		"Café":             "alphanumeric sender ID",
		"123-456":          "at least one letter",
		"ExampleCorpUS":    "1 to 11 characters",
	} {
		err := CheckOrigination(o)
		switch {
		case want == "" && err != nil:
			t.Errorf("CheckOrigination(%q) = %v, want nil", o, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("CheckOrigination(%q) = %v, want an error saying %q", o, err, want)
		}
	}
}
