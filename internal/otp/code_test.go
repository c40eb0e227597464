package otp

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"math"
	"strings"
	"testing"

	"github.com/otpd/otpd/internal/gsm7"
	"github.com/otpd/otpd/internal/keyedmac"
	"github.com/otpd/otpd/internal/phone"
)

func TestNewCodeLengthAndDigits(t *testing.T) {
	for n := MinCodeLength; n <= MaxCodeLength; n++ {
		for range 200 {
			code, err := newCode(rand.Reader, n)
			if err != nil {
				t.Fatal(err)
			}
			if len(code) != n || !phone.IsDigits(code) {
				t.Fatalf("newCode(%d) = %q, want %d digits", n, code, n)
			}
		}
	}
}

func TestNewCodeKeepsLeadingZeros(t *testing.T) {
	// All-zero random bytes are the value 0, which must print as 00000.
	code, err := newCode(bytes.NewReader(make([]byte, 64)), 5)
	if err != nil {
		t.Fatal(err)
	}
	if code != "00000" {
		t.Errorf("newCode from zero bytes = %q, want 00000", code)
	}
}

// TestNewCodeUniform checks every digit position for bias with a
// chi-squared test. With 10 categories (9 degrees of freedom) the statistic
// exceeds 45 with probability below 1e-6 for a uniform source, so a failure
// means bias, not bad luck.
func TestNewCodeUniform(t *testing.T) {
	const samples = 50000
	const n = 6
	var counts [n][10]int
	for range samples {
		code, err := newCode(rand.Reader, n)
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			counts[i][code[i]-'0']++
		}
	}
	expected := float64(samples) / 10
	for pos := range n {
		chi2 := 0.0
		for _, c := range counts[pos] {
			d := float64(c) - expected
			chi2 += d * d / expected
		}
		if chi2 > 45 || math.IsNaN(chi2) {
			t.Errorf("digit %d: chi-squared %.1f over counts %v: the distribution is biased", pos, chi2, counts[pos])
		}
	}
}

// TestCodeMACIsStable pins the MAC's input encoding: codes stored by an
// earlier version must verify after an upgrade.
func TestCodeMACIsStable(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	s := &Service{macKey: keyedmac.New(key)}
	m := hmac.New(sha256.New, key)
	m.Write([]byte("12:otpd-code-v13:gen12:+142555501423:ref6:123456"))
	if got, want := s.codeMAC("gen", "+14255550142", "ref", "123456"), m.Sum(nil); !bytes.Equal(got, want) {
		t.Errorf("codeMAC = %x, want %x", got, want)
	}
}

// TestKeyCheckIsStable pins the key check: stores keep it, and a check that
// changed with an upgrade would make every server refuse its store's key.
// The value is openssl's: printf otpd-key-check-v1 | openssl dgst -sha256
// -mac HMAC -macopt hexkey:0011...eeff, its first 16 bytes.
func TestKeyCheckIsStable(t *testing.T) {
	key, _ := hex.DecodeString("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff")
	if got, want := KeyCheck(key), "v1:06db9254ef5959050227a2a186bf2e35"; got != want {
		t.Errorf("KeyCheck = %s, want %s", got, want)
	}
	if KeyCheck(bytes.Repeat([]byte{7}, 32)) == KeyCheck(key) {
		t.Error("two keys have one check")
	}
}

func TestCodeMACBindsEveryPart(t *testing.T) {
	s := &Service{macKey: keyedmac.New(bytes.Repeat([]byte{7}, 32))}
	base := s.codeMAC("gen", "+14255550142", "ref", "123456")
	for name, mac := range map[string][]byte{
		"generation":  s.codeMAC("gen2", "+14255550142", "ref", "123456"),
		"destination": s.codeMAC("gen", "+14255550100", "ref", "123456"),
		"reference":   s.codeMAC("gen", "+14255550142", "ref2", "123456"),
		"code":        s.codeMAC("gen", "+14255550142", "ref", "123457"),
		"boundaries":  s.codeMAC("gen", "+14255550142", "ref1", "23456"),
	} {
		if bytes.Equal(mac, base) {
			t.Errorf("changing the %s leaves the MAC unchanged", name)
		}
	}
	other := &Service{macKey: keyedmac.New(bytes.Repeat([]byte{8}, 32))}
	if bytes.Equal(other.codeMAC("gen", "+14255550142", "ref", "123456"), base) {
		t.Error("another key gives the same MAC")
	}
	if !bytes.Equal(s.codeMAC("gen", "+14255550142", "ref", "123456"), base) {
		t.Error("the MAC is not deterministic")
	}
}

func TestMessageText(t *testing.T) {
	if got, want := messageText("en-US", "123456", "ExampleCorp"), "This is your One Time Password: 123456 from ExampleCorp"; got != want {
		t.Errorf("en-US text = %q, want Pinpoint's %q", got, want)
	}
	if len(Languages()) != 13 {
		t.Errorf("Languages() = %v, want the 13 Pinpoint supports", Languages())
	}
	seen := map[string]string{}
	for _, lang := range Languages() {
		text := messageText(lang, "012345", "Acme")
		if !strings.Contains(text, "012345") || !strings.Contains(text, "Acme") || strings.Contains(text, "{{") {
			t.Errorf("%s: %q must hold the code and the brand, and no placeholder", lang, text)
		}
		if other, dup := seen[text]; dup {
			t.Errorf("%s has the same text as %s: %q", lang, other, text)
		}
		seen[text] = lang
	}
	for _, brand := range []string{"{{otp}}", "{{brand}}", "A{{B", "{{", "}}{{otp"} {
		if got, want := messageText("en-US", "123456", brand), "This is your One Time Password: 123456 from "+brand; got != want {
			t.Errorf("brand %q: %q, want %q: a brand is kept as written", brand, got, want)
		}
	}
	if got, want := messageText("ja-JP", "123456", "{{otp}}"), "{{otp}}のワンタイムパスワードは 123456 です"; got != want {
		t.Errorf("ja-JP, brand first: %q, want %q", got, want)
	}
}

func TestMessageEncoding(t *testing.T) {
	for lang, want := range map[string]gsm7.Encoding{
		"en-US": gsm7.GSM7, "en-GB": gsm7.GSM7, "de-DE": gsm7.GSM7, "it-IT": gsm7.GSM7, "fr-FR": gsm7.GSM7,
		"fr-CA": gsm7.GSM7, "es-ES": gsm7.GSM7, "es-419": gsm7.UCS2, "pt-BR": gsm7.UCS2,
		"ja-JP": gsm7.UCS2, "ko-KR": gsm7.UCS2, "zh-CN": gsm7.UCS2, "zh-TW": gsm7.UCS2,
	} {
		text := messageText(lang, "12345678", "ExampleCorp")
		enc, segments := gsm7.Segments(text)
		if enc != want || segments != 1 {
			t.Errorf("%s: %q travels as %s in %d segments, want %s in 1", lang, text, enc, segments, want)
		}
	}
	// A brand outside the GSM alphabet turns any language to UCS-2.
	if enc := gsm7.EncodingOf(messageText("en-US", "123456", "Café Ñandú")); enc != gsm7.UCS2 {
		t.Errorf("brand with ú: %s, want UCS-2", enc)
	}
}

func TestCanonicalLanguage(t *testing.T) {
	if got, ok := canonicalLanguage("es-419"); !ok || got != "es-419" {
		t.Errorf("canonicalLanguage(es-419) = %q, %v", got, ok)
	}
	if got, ok := canonicalLanguage("PT-br"); !ok || got != "pt-BR" {
		t.Errorf("canonicalLanguage(PT-br) = %q, %v, want pt-BR", got, ok)
	}
	if _, ok := canonicalLanguage("pt-PT"); ok {
		t.Error("pt-PT is not a Pinpoint language")
	}
}

func BenchmarkNewCode(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := newCode(rand.Reader, DefaultCodeLength); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCodeMAC(b *testing.B) {
	s := &Service{macKey: keyedmac.New(bytes.Repeat([]byte{7}, 32))}
	b.ReportAllocs()
	for b.Loop() {
		s.codeMAC("0123456789abcdef0123456789abcdef", "+14255550142", "login-42", "123456")
	}
}

func BenchmarkMessageText(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		messageText("en-US", "123456", "ExampleCorp")
	}
}
