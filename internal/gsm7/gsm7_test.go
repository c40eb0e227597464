package gsm7

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"
)

// wantDefault is the default alphabet of 3GPP TS 23.038 §6.2.1 written out
// again by Unicode code point, independently of the table in gsm7.go.
// Position 0x1B, the escape, holds -1.
var wantDefault = [128]rune{
	0x0040, 0x00A3, 0x0024, 0x00A5, 0x00E8, 0x00E9, 0x00F9, 0x00EC, // 0x00-0x07 @ £ $ ¥ è é ù ì
	0x00F2, 0x00C7, 0x000A, 0x00D8, 0x00F8, 0x000D, 0x00C5, 0x00E5, // 0x08-0x0F ò Ç LF Ø ø CR Å å
	0x0394, 0x005F, 0x03A6, 0x0393, 0x039B, 0x03A9, 0x03A0, 0x03A8, // 0x10-0x17 Δ _ Φ Γ Λ Ω Π Ψ
	0x03A3, 0x0398, 0x039E, -1, 0x00C6, 0x00E6, 0x00DF, 0x00C9, // 0x18-0x1F Σ Θ Ξ ESC Æ æ ß É
	0x0020, 0x0021, 0x0022, 0x0023, 0x00A4, 0x0025, 0x0026, 0x0027, // 0x20-0x27 SP ! " # ¤ % & '
	0x0028, 0x0029, 0x002A, 0x002B, 0x002C, 0x002D, 0x002E, 0x002F, // 0x28-0x2F ( ) * + , - . /
	0x0030, 0x0031, 0x0032, 0x0033, 0x0034, 0x0035, 0x0036, 0x0037, // 0x30-0x37 0-7
	0x0038, 0x0039, 0x003A, 0x003B, 0x003C, 0x003D, 0x003E, 0x003F, // 0x38-0x3F 8 9 : ; < = > ?
	0x00A1, 0x0041, 0x0042, 0x0043, 0x0044, 0x0045, 0x0046, 0x0047, // 0x40-0x47 ¡ A-G
	0x0048, 0x0049, 0x004A, 0x004B, 0x004C, 0x004D, 0x004E, 0x004F, // 0x48-0x4F H-O
	0x0050, 0x0051, 0x0052, 0x0053, 0x0054, 0x0055, 0x0056, 0x0057, // 0x50-0x57 P-W
	0x0058, 0x0059, 0x005A, 0x00C4, 0x00D6, 0x00D1, 0x00DC, 0x00A7, // 0x58-0x5F X Y Z Ä Ö Ñ Ü §
	0x00BF, 0x0061, 0x0062, 0x0063, 0x0064, 0x0065, 0x0066, 0x0067, // 0x60-0x67 ¿ a-g
	0x0068, 0x0069, 0x006A, 0x006B, 0x006C, 0x006D, 0x006E, 0x006F, // 0x68-0x6F h-o
	0x0070, 0x0071, 0x0072, 0x0073, 0x0074, 0x0075, 0x0076, 0x0077, // 0x70-0x77 p-w
	0x0078, 0x0079, 0x007A, 0x00E4, 0x00F6, 0x00F1, 0x00FC, 0x00E0, // 0x78-0x7F x y z ä ö ñ ü à
}

// wantExtension is the extension table of TS 23.038 §6.2.1.1 (its
// characters; the 0x0D and 0x1B control entries have none).
var wantExtension = []struct {
	r    rune
	code byte
}{
	{0x000C, 0x0A}, // form feed
	{0x005E, 0x14}, // ^
	{0x007B, 0x28}, // {
	{0x007D, 0x29}, // }
	{0x005C, 0x2F}, // \
	{0x005B, 0x3C}, // [
	{0x007E, 0x3D}, // ~
	{0x005D, 0x3E}, // ]
	{0x007C, 0x40}, // |
	{0x20AC, 0x65}, // €
}

func TestDefaultAlphabet(t *testing.T) {
	seen := map[rune]bool{}
	for code, r := range wantDefault {
		if r == -1 {
			if code != escape {
				t.Fatalf("test table: no character at 0x%02X", code)
			}
			continue
		}
		if seen[r] {
			t.Fatalf("test table: %q twice", r)
		}
		seen[r] = true
		s := string(r)
		if got := EncodingOf(s); got != GSM7 {
			t.Errorf("EncodingOf(%q) (%U, 0x%02X) = %v, want GSM-7", s, r, code, got)
		}
		if n, ok := Septets(s); n != 1 || !ok {
			t.Errorf("Septets(%q) = %d, %v, want 1, true", s, n, ok)
		}
		got, err := Encode(s)
		if want := []byte{byte(code)}; err != nil || !bytes.Equal(got, want) {
			t.Errorf("Encode(%q) (%U) = % X, %v; want % X, nil", s, r, got, err, want)
		}
		if enc, n := Segments(s); enc != GSM7 || n != 1 {
			t.Errorf("Segments(%q) = %v, %d; want GSM-7, 1", s, enc, n)
		}
	}
	if len(seen) != 127 {
		t.Errorf("got %d default-alphabet characters, want 127", len(seen))
	}
	// The implementation's table must hold these and nothing else.
	if len(defaultCodes) != 127 {
		t.Errorf("len(defaultCodes) = %d, want 127", len(defaultCodes))
	}
	for code, r := range defaultAlphabet {
		if r != wantDefault[code] {
			t.Errorf("defaultAlphabet[0x%02X] = %U, want %U", code, r, wantDefault[code])
		}
	}
}

func TestExtensionTable(t *testing.T) {
	if len(extensionTable) != len(wantExtension) {
		t.Errorf("len(extensionTable) = %d, want %d", len(extensionTable), len(wantExtension))
	}
	for _, tc := range wantExtension {
		s := string(tc.r)
		if got := EncodingOf(s); got != GSM7 {
			t.Errorf("EncodingOf(%q) = %v, want GSM-7", s, got)
		}
		if n, ok := Septets(s); n != 2 || !ok {
			t.Errorf("Septets(%q) = %d, %v, want 2, true", s, n, ok)
		}
		got, err := Encode(s)
		if want := []byte{escape, tc.code}; err != nil || !bytes.Equal(got, want) {
			t.Errorf("Encode(%q) = % X, %v; want % X, nil", s, got, err, want)
		}
		if _, inDefault := defaultCodes[tc.r]; inDefault {
			t.Errorf("%q is in both tables", s)
		}
	}
}

// TestNotGSM7 covers characters that look like they might be GSM-7 but
// are not, and the scripts of the non-Latin locales.
func TestNotGSM7(t *testing.T) {
	for _, s := range []string{
		"ç", "ã", "õ", "á", "í", "ó", "ú", "â", "ê", "î", "ô", "û", "ë", "ï", "ÿ", "œ", "Œ",
		"À", "È", "Ì", "Ò", "Ù", "Í", "Ó", "Ú", "Á", "Ã", "Õ", "Ê", "Â", "Ô",
		"`",      // grave accent: not in the default alphabet
		"\t",     // tab
		"\x1b",   // the escape itself is not a character
		"\u00a0", // no-break space
		"\u2019", // right single quotation mark (l’application)
		"«", "»", "“", "”", "–", "—", "…", "°", "¢", "©", "®",
		"\u0391", // Greek capital Alpha, a look-alike of A
		"\u2126", // ohm sign, a look-alike of Ω
		"\u2206", // increment, a look-alike of Δ
		"α", "δ", // Greek small letters
		"認", "码", "驗", // CJK
		"コ", "ひ", // kana
		"인",      // Hangul
		"😀", "🚀", // emoji
		"\ufffd", "\xff", // replacement character, invalid UTF-8
	} {
		if got := EncodingOf(s); got != UCS2 {
			t.Errorf("EncodingOf(%q) = %v, want UCS-2", s, got)
		}
		if n, ok := Septets(s); n != 0 || ok {
			t.Errorf("Septets(%q) = %d, %v, want 0, false", s, n, ok)
		}
		if got, err := Encode(s); err == nil {
			t.Errorf("Encode(%q) = % X, nil; want an error", s, got)
		}
	}
}

// TestASCII checks every printable ASCII character: all but the grave
// accent are GSM-7, and the extension ones cost two septets.
func TestASCII(t *testing.T) {
	for r := rune(0x20); r < 0x7F; r++ {
		s := string(r)
		wantN, wantOK := 1, true
		switch r {
		case '`':
			wantN, wantOK = 0, false
		case '^', '{', '}', '\\', '[', '~', ']', '|':
			wantN = 2
		}
		if n, ok := Septets(s); n != wantN || ok != wantOK {
			t.Errorf("Septets(%q) = %d, %v; want %d, %v", s, n, ok, wantN, wantOK)
		}
	}
}

func TestEncodingString(t *testing.T) {
	for _, tc := range []struct {
		e    Encoding
		want string
	}{{GSM7, "GSM-7"}, {UCS2, "UCS-2"}, {0, "Encoding(0)"}, {7, "Encoding(7)"}} {
		if got := tc.e.String(); got != tc.want {
			t.Errorf("Encoding(%d).String() = %q, want %q", int(tc.e), got, tc.want)
		}
	}
}

// TestMessages covers one-time-password texts in the languages otpd
// sends. size is septets for GSM-7 and UTF-16 code units for UCS-2.
func TestMessages(t *testing.T) {
	for _, tc := range []struct {
		name string
		text string
		enc  Encoding
		size int
		segs int
	}{
		{"en", "This is your One Time Password: 123456 from Acme", GSM7, 48, 1},
		{"empty", "", GSM7, 0, 1},
		{"pt-BR ó ç ã", "Seu código de verificação é 123456", UCS2, 34, 1},
		{"pt-BR ç only", "Verificação", UCS2, 11, 1},
		{"es código", "Tu código de verificación es 123456", UCS2, 35, 1},
		{"es ñ ¿ ¡ only", "¡Hola! ¿Año? Señor", GSM7, 18, 1},
		{"fr é only", "Votre code de vérification est 123456", GSM7, 37, 1},
		{"fr à è é", "Votre code à usage unique pour accéder à Acme : 123456. Ne le partagez pas, très important.", GSM7, 91, 1},
		{"fr â", "Votre code : 123456. Âge ? Ne le partagez même pas.", UCS2, 51, 1},
		{"fr-CA ’", "Votre code pour l’application Acme : 123456", UCS2, 43, 1},
		{"fr Ç capital", "ÇA VA", GSM7, 5, 1},
		{"fr ç small", "Ça va, reçu", UCS2, 11, 1},
		{"de ä ö ü ß", "Ihr Bestätigungscode für Acme lautet 123456. Größe: groß", GSM7, 56, 1},
		{"it è à ò ù ì", "Il tuo codice è 123456. Città, però, più, lunedì", GSM7, 48, 1},
		{"ja", "認証コードは123456です", UCS2, 14, 1},
		{"zh-CN", "您的验证码是123456", UCS2, 12, 1},
		{"zh-TW", "您的驗證碼是123456", UCS2, 12, 1},
		{"ko", "인증 코드는 123456입니다", UCS2, 16, 1},
		{"brand emoji", "Acme 🚀: your code is 123456", UCS2, 28, 1},
		{"brand braces", "{Acme} code: 123456", GSM7, 21, 1},
		{"euro", "Pay €5", GSM7, 7, 1},
		{"Greek capitals", "ΔΦΓΛΩΠΨΣΘΞ", GSM7, 10, 1},
		{"symbols", "£¥§¤@$_", GSM7, 7, 1},
		{"newlines", "Code:\r\n123456", GSM7, 13, 1},
		{"form feed", "a\fb", GSM7, 4, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := EncodingOf(tc.text); got != tc.enc {
				t.Errorf("EncodingOf(%q) = %v, want %v", tc.text, got, tc.enc)
			}
			enc, segs := Segments(tc.text)
			if enc != tc.enc || segs != tc.segs {
				t.Errorf("Segments(%q) = %v, %d; want %v, %d", tc.text, enc, segs, tc.enc, tc.segs)
			}
			n, ok := Septets(tc.text)
			if tc.enc == GSM7 {
				if n != tc.size || !ok {
					t.Errorf("Septets(%q) = %d, %v; want %d, true", tc.text, n, ok, tc.size)
				}
				b, err := Encode(tc.text)
				if err != nil || len(b) != tc.size {
					t.Errorf("Encode(%q) = %d septets, %v; want %d, nil", tc.text, len(b), err, tc.size)
				}
			} else {
				if n != 0 || ok {
					t.Errorf("Septets(%q) = %d, %v; want 0, false", tc.text, n, ok)
				}
				if got := len(EncodeUCS2(tc.text)) / 2; got != tc.size {
					t.Errorf("len(EncodeUCS2(%q))/2 = %d, want %d", tc.text, got, tc.size)
				}
			}
			parts := Split(tc.text, tc.enc)
			if len(parts) != 1 || parts[0] != tc.text {
				t.Errorf("Split(%q, %v) = %q, want one part", tc.text, tc.enc, parts)
			}
		})
	}
}

// partSizes returns the size of each part: septets under GSM7, UTF-16
// code units under UCS2.
func partSizes(parts []string, enc Encoding) []int {
	sizes := make([]int, len(parts))
	for i, p := range parts {
		if enc == GSM7 {
			sizes[i], _ = Septets(p)
		} else {
			sizes[i] = len(EncodeUCS2(p)) / 2
		}
	}
	return sizes
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestBoundaries(t *testing.T) {
	r := strings.Repeat
	const cjk = "码"   // 1 UTF-16 unit, not GSM-7
	const emoji = "😀" // 2 UTF-16 units (a surrogate pair)
	for _, tc := range []struct {
		name  string
		text  string
		enc   Encoding
		sizes []int // per part
	}{
		{"GSM 160", r("a", 160), GSM7, []int{160}},
		{"GSM 161", r("a", 161), GSM7, []int{153, 8}},
		{"GSM 153*2", r("a", 306), GSM7, []int{153, 153}},
		{"GSM 153*2+1", r("a", 307), GSM7, []int{153, 153, 1}},
		{"GSM 153*3", r("a", 459), GSM7, []int{153, 153, 153}},
		{"GSM 80 euros = 160", r("€", 80), GSM7, []int{160}},
		{"GSM 80 euros + a = 161", r("€", 80) + "a", GSM7, []int{152, 9}},
		{"GSM 159 + extension = 161", r("a", 159) + "{", GSM7, []int{153, 8}},
		{"GSM 158 + extension = 160", r("a", 158) + "{", GSM7, []int{160}},
		{"GSM extension ends part exactly", r("a", 151) + "€" + r("a", 10), GSM7, []int{153, 10}},
		{"GSM extension at part boundary moves", r("a", 152) + "€" + r("a", 10), GSM7, []int{152, 12}},
		{"GSM extension boundary adds a part", r("a", 152) + "€" + r("a", 152), GSM7, []int{152, 153, 1}},
		{"GSM 153 euros", r("€", 153), GSM7, []int{152, 152, 2}},
		{"UCS 70", r(cjk, 70), UCS2, []int{70}},
		{"UCS 71", r(cjk, 71), UCS2, []int{67, 4}},
		{"UCS 67*2", r(cjk, 134), UCS2, []int{67, 67}},
		{"UCS 67*2+1", r(cjk, 135), UCS2, []int{67, 67, 1}},
		{"UCS GSM letters count 1", "ç" + r("a", 69), UCS2, []int{70}},
		{"UCS extension counts 1", "ç" + r("€", 69), UCS2, []int{70}},
		{"UCS 35 emoji = 70", r(emoji, 35), UCS2, []int{70}},
		{"UCS 36 emoji = 72", r(emoji, 36), UCS2, []int{66, 6}},
		{"UCS 69 + emoji = 71", r(cjk, 69) + emoji, UCS2, []int{67, 4}},
		{"UCS 68 + emoji = 70", r(cjk, 68) + emoji, UCS2, []int{70}},
		{"UCS surrogate at part boundary moves", r(cjk, 66) + emoji + r(cjk, 10), UCS2, []int{66, 12}},
		{"UCS surrogate ends part exactly", r(cjk, 65) + emoji + r(cjk, 10), UCS2, []int{67, 10}},
		{"UCS 67 emoji = 134 units, 3 parts", r(emoji, 67), UCS2, []int{66, 66, 2}},
		{"brand emoji at boundary", "Acme 🚀 " + r("x", 58) + "🚀" + r("y", 20), UCS2, []int{66, 22}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			enc, n := Segments(tc.text)
			if enc != tc.enc || n != len(tc.sizes) {
				t.Errorf("Segments = %v, %d; want %v, %d", enc, n, tc.enc, len(tc.sizes))
			}
			parts := Split(tc.text, tc.enc)
			if got := partSizes(parts, tc.enc); !equalInts(got, tc.sizes) {
				t.Errorf("Split part sizes = %v, want %v", got, tc.sizes)
			}
			if got := strings.Join(parts, ""); got != tc.text {
				t.Errorf("Split parts joined = %q, want %q", got, tc.text)
			}
			for i, p := range parts {
				if !utf8.ValidString(p) {
					t.Errorf("part %d = %q is not valid UTF-8 (a character was split)", i, p)
				}
			}
		})
	}
}

func TestSplitEnc(t *testing.T) {
	// A GSM-7 text may be sent as UCS-2: then the UCS-2 limits apply.
	text := strings.Repeat("a", 100)
	if got := partSizes(Split(text, UCS2), UCS2); !equalInts(got, []int{67, 33}) {
		t.Errorf("Split(100 a, UCS2) part sizes = %v, want [67 33]", got)
	}
	if got := partSizes(Split(text, GSM7), GSM7); !equalInts(got, []int{100}) {
		t.Errorf("Split(100 a, GSM7) part sizes = %v, want [100]", got)
	}
	// A text that does not fit GSM-7 is split as UCS-2 whatever enc says.
	text = "ç" + strings.Repeat("a", 99)
	for _, enc := range []Encoding{GSM7, UCS2, 0} {
		if got := partSizes(Split(text, enc), UCS2); !equalInts(got, []int{67, 33}) {
			t.Errorf("Split(ç+99 a, %v) part sizes = %v, want [67 33]", enc, got)
		}
	}
	// An unknown encoding splits by the text's own encoding.
	if got := Split(strings.Repeat("a", 161), 0); len(got) != 2 {
		t.Errorf("Split(161 a, 0) = %d parts, want 2", len(got))
	}
	// The empty text is one empty part.
	for _, enc := range []Encoding{GSM7, UCS2} {
		if got := Split("", enc); len(got) != 1 || got[0] != "" {
			t.Errorf("Split(\"\", %v) = %q, want [\"\"]", enc, got)
		}
	}
}

func TestEncode(t *testing.T) {
	got, err := Encode("Hi @£5 {x} €ÇΔà")
	want := []byte{
		0x48, 0x69, 0x20, 0x00, 0x01, 0x35, 0x20,
		0x1B, 0x28, 0x78, 0x1B, 0x29, 0x20,
		0x1B, 0x65, 0x09, 0x10, 0x7F,
	}
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("Encode = % X, %v\nwant      % X, nil", got, err, want)
	}
	if got, err := Encode(""); err != nil || len(got) != 0 {
		t.Errorf("Encode(\"\") = % X, %v; want empty, nil", got, err)
	}
	_, err = Encode("código")
	if err == nil || !strings.Contains(err.Error(), "U+00F3") || !strings.Contains(err.Error(), "offset 1") {
		t.Errorf("Encode(\"código\") error = %v, want one naming U+00F3 at byte offset 1", err)
	}
}

func TestEncodeUCS2(t *testing.T) {
	for _, tc := range []struct {
		text string
		want []byte
	}{
		{"", []byte{}},
		{"A", []byte{0x00, 0x41}},
		{"ç€", []byte{0x00, 0xE7, 0x20, 0xAC}},
		{"码", []byte{0x78, 0x01}},
		{"😀", []byte{0xD8, 0x3D, 0xDE, 0x00}},
		{"a🚀b", []byte{0x00, 0x61, 0xD8, 0x3D, 0xDE, 0x80, 0x00, 0x62}},
		{"\xff", []byte{0xFF, 0xFD}}, // invalid UTF-8 becomes U+FFFD
	} {
		if got := EncodeUCS2(tc.text); !bytes.Equal(got, tc.want) {
			t.Errorf("EncodeUCS2(%q) = % X, want % X", tc.text, got, tc.want)
		}
	}
}

func TestInvalidUTF8(t *testing.T) {
	text := "abc\xffdef"
	if enc, n := Segments(text); enc != UCS2 || n != 1 {
		t.Errorf("Segments(%q) = %v, %d; want UCS-2, 1", text, enc, n)
	}
	// 71 invalid bytes are 71 units: two parts, rejoining byte for byte.
	text = strings.Repeat("\xff", 71)
	parts := Split(text, UCS2)
	if len(parts) != 2 || len(parts[0]) != 67 || strings.Join(parts, "") != text {
		t.Errorf("Split(71 invalid bytes) = %d parts, want 2 of 67+4 bytes", len(parts))
	}
}

// fuzzSeeds are the texts FuzzSegments starts from; plain go test runs them.
var fuzzSeeds = []string{
	"",
	"This is your One Time Password: 123456 from Acme",
	"Seu código de verificação é 123456",
	"Tu código de verificación es 123456",
	"Votre code de vérification est 123456",
	"認証コードは123456です",
	"您的验证码是123456",
	"인증 코드는 123456입니다",
	"Acme 🚀: your code is 123456",
	strings.Repeat("a", 160),
	strings.Repeat("a", 161),
	strings.Repeat("a", 307),
	strings.Repeat("a", 152) + "€" + strings.Repeat("a", 152),
	strings.Repeat("€", 153),
	strings.Repeat("码", 71),
	strings.Repeat("码", 66) + "😀" + strings.Repeat("码", 70),
	strings.Repeat("😀", 67),
	strings.Repeat("\xff", 71),
	strings.Repeat("{x}", 60),
	"\x1b\f\r\n`",
}

func FuzzSegments(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		enc, n := Segments(text)
		if enc != EncodingOf(text) {
			t.Fatalf("Segments(%q) encoding %v, EncodingOf %v", text, enc, EncodingOf(text))
		}
		septets, ok := Septets(text)
		b, err := Encode(text)
		if ok != (enc == GSM7) || (err == nil) != ok || (ok && len(b) != septets) {
			t.Fatalf("%q: Segments %v, Septets %d %v, Encode %d septets err %v disagree", text, enc, septets, ok, len(b), err)
		}
		if got := Split(text, enc); len(got) != n {
			t.Fatalf("Segments(%q) = %d, len(Split) = %d", text, n, len(got))
		}
		checkSplit(t, text, enc)
		if enc == GSM7 {
			checkSplit(t, text, UCS2) // a GSM-7 text may also be sent as UCS-2
		}
	})
}

// checkSplit checks the parts of Split(text, enc): they rejoin to text,
// keep every character whole, each fits its limit, and none could take the
// next part's first character (so there are as few parts as can be).
func checkSplit(t *testing.T, text string, enc Encoding) {
	t.Helper()
	parts := Split(text, enc)
	if len(parts) == 0 {
		t.Fatalf("Split(%q, %v) returned no parts", text, enc)
	}
	if got := strings.Join(parts, ""); got != text {
		t.Fatalf("Split(%q, %v) rejoined = %q", text, enc, got)
	}
	size := func(s string) int {
		if enc == GSM7 {
			n, ok := Septets(s)
			if !ok {
				t.Fatalf("Split(%q, GSM-7): part %q is not GSM-7", text, s)
			}
			return n
		}
		return len(EncodeUCS2(s)) / 2
	}
	single, limit := gsmSingle, gsmPart
	if enc == UCS2 {
		single, limit = ucsSingle, ucsPart
	}
	total, sum := size(text), 0
	for i, p := range parts {
		n := size(p)
		sum += n
		switch {
		case len(parts) == 1 && n > single:
			t.Fatalf("Split(%q, %v): single part of %d > %d", text, enc, n, single)
		case len(parts) > 1 && (n > limit || n == 0):
			t.Fatalf("Split(%q, %v): part %d of %d has size %d, limit %d", text, enc, i, len(parts), n, limit)
		}
		if i+1 < len(parts) {
			_, w := utf8.DecodeRuneInString(parts[i+1])
			if size(p+parts[i+1][:w]) <= limit {
				t.Fatalf("Split(%q, %v): part %d (size %d) could take the next character", text, enc, i, n)
			}
		}
	}
	if len(parts) > 1 && total <= single {
		t.Fatalf("Split(%q, %v): %d parts for size %d <= %d", text, enc, len(parts), total, single)
	}
	if sum != total {
		t.Fatalf("Split(%q, %v): parts' sizes sum to %d, text size %d (a character was split)", text, enc, sum, total)
	}
}
