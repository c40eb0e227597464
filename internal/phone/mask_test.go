package phone

import "testing"

func TestMask(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`Too many failed verifications for +14255550143 (10 within 1h0m0s)`, `Too many failed verifications for +1425******* (10 within 1h0m0s)`},
		{`DestinationIdentity is not a valid phone number; got "+1425555014"`, `DestinationIdentity is not a valid phone number; got "+1425******"`},
		{`got "14255550143" and +33612345678, +447700900123`, `got "1425*******" and +3361*******, +4477********`},
		{`+1234567 +7654321`, `+1234*** +7654***`},
		// The end of a sentence, a form's escaping, groups of digits.
		{`indicated by the 'To' number: +8613912345678.`, `indicated by the 'To' number: +8613*********.`},
		{`To=%2B14255550143&From=%2B18555550142`, `To=%2B1425*******&From=%2B1855*******`},
		{`got "+1 425 555 0143" or "1-425-555-0143" or 425-555-0143`, `got "+1 425 *** ****" or "1-425-***-****" or 425-5**-****`},
		// A number after other digits, or another number.
		{`numbers 14255550143 14255550144`, `numbers 1425******* 1425*******`},
		{`at 2026-12-07 14255550143`, `at 2026-12-07 1425*******`},
		{`code 21211 14255550143`, `code 21211 1425*******`},
		{`phone1 4255550143`, `phone1 4255******`},
		// Not phone numbers.
		{`at 2026-12-07 10:00:00`, `at 2026-12-07 10:00:00`},
		{`short 123456 and +123456 stay`, `short 123456 and +123456 stay`},
		{`too long for a number: 1234567890123456`, `too long for a number: 1234567890123456`},
		{`app 0123456789abcdef0123456789abcdef, message 01234567-89ab-7def-8123-456789abcdef, at 2026-12-07, v1.12345678, /v1/12345678/x`,
			`app 0123456789abcdef0123456789abcdef, message 01234567-89ab-7def-8123-456789abcdef, at 2026-12-07, v1.12345678, /v1/12345678/x`},
		{`no digits`, `no digits`},
		{`4255550143`, `4255******`},
	} {
		if got := Mask(tc.in); got != tc.want {
			t.Errorf("Mask(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
}

// MaskValue masks a value meant as one phone number whatever its shape,
// keeping everything but the digits after the fourth.
func TestMaskValue(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"+14255550142", "+1425*******"},
		{"(425) 555-0142", "(425) 5**-****"},
		{"+1.425.555.0142", "+1.425.***.****"},
		{"tel:+14255550142", "tel:+1425*******"},
		{"+1425555O142", "+1425***O***"},
		{"+１４２５５５５０１４２", "+１４２５*******"},   // fullwidth
		{"+٩٧١٥٠١٢٣٤٥٦٧", "+٩٧١٥********"}, // Arabic-Indic
		{"+1425", "+1425"},
		{"", ""},
		{"abc", "abc"},
	} {
		if got := MaskValue(tc.in); got != tc.want {
			t.Errorf("MaskValue(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
