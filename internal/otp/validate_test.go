package otp

import (
	"errors"
	"testing"
	"unicode/utf8"

	"github.com/otpd/otpd/internal/phone"
)

// FuzzCheckSendRequest checks that validation never panics, that every
// refusal names its field, and that whatever it accepts is within the
// documented limits.
func FuzzCheckSendRequest(f *testing.F) {
	f.Add("SMS", "ExampleCorp", 6, 10, 3, "en-US", "+18555550142", "+14255550142", "SampleReferenceId", "")
	f.Add("SMS", "Acme", 9, 61, 0, "xx", "ACME", "+1", "", "x")
	f.Add("sms", "", 5, 5, 1, "pt-br", "12345", "+4915123456789", "r", "1234567890123456789")
	f.Add("SMS", "日本語ブランド", 8, 60, 5, "ja-JP", "+", "+819012345678", "参照", "")
	f.Add("SMS", "Acme", 6, 10, 3, "en-US", "+18555550142", "+14255550142", "login\x0042", "1\n2")
	f.Fuzz(func(t *testing.T, channel, brand string, codeLen, validity, attempts int, lang, from, to, ref, entity string) {
		p, err := checkSendRequest(SendRequest{
			Channel: channel, BrandName: brand, CodeLength: &codeLen, ValidityPeriod: &validity, AllowedAttempts: &attempts,
			Language: lang, OriginationIdentity: from, DestinationIdentity: to, ReferenceID: ref, EntityID: entity,
		})
		if err != nil {
			var inv *InvalidError
			if !errors.As(err, &inv) || inv.Field == "" || inv.Message == "" {
				t.Fatalf("refusal %v is not an InvalidError naming a field", err)
			}
			return
		}
		if p.CodeLength < MinCodeLength || p.CodeLength > MaxCodeLength ||
			p.Validity < MinValidity || p.Validity > MaxValidity ||
			p.AllowedAttempts < MinAllowedAttempts || p.AllowedAttempts > MaxAllowedAttempts {
			t.Fatalf("accepted out-of-range numbers: %+v", p)
		}
		if n := utf8.RuneCountInString(p.BrandName); n < 1 || n > MaxBrandNameLength {
			t.Fatalf("accepted a brand of %d characters", n)
		}
		if n := utf8.RuneCountInString(p.ReferenceID); n < 1 || n > MaxReferenceIDLength || hasControl(p.ReferenceID) {
			t.Fatalf("accepted ReferenceId %q", p.ReferenceID)
		}
		if hasControl(p.EntityID) {
			t.Fatalf("accepted EntityId %q", p.EntityID)
		}
		if _, ok := templates[p.Language]; !ok {
			t.Fatalf("accepted language %q", p.Language)
		}
	})
}

func FuzzCheckVerifyRequest(f *testing.F) {
	f.Add("+14255550142", "ref", "123456")
	f.Add("+1", "", "12a456")
	f.Add("14255550142", "r", "123456789")
	f.Fuzz(func(t *testing.T, dest, ref, code string) {
		err := checkVerifyRequest(VerifyRequest{DestinationIdentity: dest, ReferenceID: ref, Otp: code})
		if err != nil {
			var inv *InvalidError
			if !errors.As(err, &inv) || inv.Field == "" {
				t.Fatalf("refusal %v is not an InvalidError naming a field", err)
			}
			return
		}
		if !phone.IsDigits(code) || len(code) < MinCodeLength || len(code) > MaxCodeLength {
			t.Fatalf("accepted Otp %q", code)
		}
	})
}

// A brand goes into the text as it is: letters of any script, inner spaces
// and the joiners that Indic and Persian words need are fine; what a phone
// would show as a line break, nothing, or text turned around is not.
func TestCheckBrandName(t *testing.T) {
	for _, b := range []string{"Acme", "Example Corp", "Café Ñandú", "日本語ブランド", "می\u200cخواهم", "क्\u200dष", "A&B-C.D"} {
		if err := checkBrandName(b); err != nil {
			t.Errorf("checkBrandName(%q) = %v, want nil", b, err)
		}
	}
	for _, b := range []string{"", "Example\nCorp", "Tab\tCo", "\x00x", "A\u2028B", "A\u2029B", "\u202eevil", "ab\u200bcd", "\ufeffAcme", "   ", "\u200d", " \u200c ", "123456789012345678901"} {
		if err := checkBrandName(b); err == nil {
			t.Errorf("checkBrandName(%q) = nil, want a refusal", b)
		}
	}
}
