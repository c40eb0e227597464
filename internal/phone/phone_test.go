package phone

import "testing"

func TestParseE164(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"+14255550142", true},   // US, the Pinpoint documentation's example
		{"+447911123456", true},  // UK mobile
		{"+819012345678", true},  // Japan mobile
		{"+5511987654321", true}, // Brazil mobile
		{"+4915123456789", true}, // Germany mobile
		{"14255550142", false},   // no '+'
		{"+1 425 555 0142", false},
		{"+1-425-555-0142", false},
		{"+", false},
		{"+1", false},
		{"+0123456789", false},       // no country code starts with 0
		{"+1234567890123456", false}, // 16 digits
		{"+10000000000", false},      // well-formed but not a valid number
		{"+14255550142\n", false},
		// Trunk prefixes after the country code: valid numbers, but not
		// their E.164 spelling, and they would dodge a failure budget.
		{"+112065550100", false},
		{"+4402071234567", false},
		{"+330612345678", false},
		{"+54091123456789", false},
		{"+5491123456789", true}, // Argentine mobile, canonical
		{"", false},
	} {
		_, err := ParseE164(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ParseE164(%q) error = %v, want ok=%v", tc.in, err, tc.ok)
		}
	}
}

func TestIsDigitsAndE164Syntax(t *testing.T) {
	for s, want := range map[string]bool{"0": true, "0123456789": true, "": false, "12a": false, "+1": false, "١٢": false, " 1": false} {
		if got := IsDigits(s); got != want {
			t.Errorf("IsDigits(%q) = %v, want %v", s, got, want)
		}
	}
	for s, want := range map[string]bool{"+14255550142": true, "+44": true, "+123456789012345": true, "+1234567890123456": false,
		"+4": false, "+04": false, "14255550142": false, "+1 425": false, "+": false} {
		if got := IsE164Syntax(s); got != want {
			t.Errorf("IsE164Syntax(%q) = %v, want %v", s, got, want)
		}
	}
}
