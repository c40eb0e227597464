package sms

import (
	"net/url"
	"regexp"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestRedact(t *testing.T) {
	const (
		text = "Esta é a sua senha de uso único: 314159 de Açaí"
		// html has characters that JSON writers escape differently.
		html = "Say \"hi\"\n<b>314159</b> & bye"
	)
	for _, tc := range []struct {
		name, text, answer string
		max                int
		want               string
	}{
		// The text in each form a carrier may echo it.
		{"the text", text, "Value '" + text + "' at 'messageBody'", 200, "Value '[redacted]' at 'messageBody'"},
		{"the text across lines", text, "rejected:\r\n" + strings.ReplaceAll(text, " ", "\r\n"), 200, "rejected: [redacted]"},
		{"JSON-escaped as Go writes it", html, `{"text":"Say \"hi\"\n\u003cb\u003e314159\u003c/b\u003e \u0026 bye"}`, 200, `{"text":"[redacted]"}`},
		{"JSON-escaped as most write it", html, `{"text":"Say \"hi\"\n<b>314159</b> & bye"}`, 200, `{"text":"[redacted]"}`},
		{"ASCII-JSON-escaped", text, `{"text":"Esta \u00e9 a sua senha de uso \u00fanico: 314159 de A\u00e7a\u00ed"}`, 200, `{"text":"[redacted]"}`},
		{"ASCII-JSON-escaped beyond the BMP", "Chave 🔑 314159", `"Chave \ud83d\udd11 314159"`, 200, `"[redacted]"`},
		{"URL-query-escaped", text, "Bad body: To=%2B14255550142&Body=" + url.QueryEscape(text), 200, "Bad body: To=%2B14255550142&Body=[redacted]"},
		{"URL-query-escaped, literally", text, "Body=Esta+%C3%A9+a+sua+senha+de+uso+%C3%BAnico%3A+314159+de+A%C3%A7a%C3%AD.", 200, "Body=[redacted]."},
		{"a text without a code", "hello there", "HTTP 400: hello there!", 200, "HTTP 400: [redacted]!"},
		{"no text", "", "bad\tnumber 3141", 200, "bad number 3141"},

		// The code, a run of four or more digits of the text.
		{"the code", text, "code 314159 rejected", 200, "code [redacted] rejected"},
		{"four digits of the code", text, "code 3141 cut short", 200, "code [redacted] cut short"},
		{"part of the code, cut", text, "Value 'senha: 4159...'", 200, "Value 'senha: [redacted]...'"},
		{"a number holding the code", text, "number +13141590000", 200, "number +[redacted]"},
		{"each code of the text", "PIN 2468, then 13579", "got 2468 and 13579", 200, "got [redacted] and [redacted]"},
		{"another number", text, "number +14255550142, status 400", 200, "number +14255550142, status 400"},
		{"three digits of the code", text, "314 and 159", 200, "314 and 159"},
		{"digits of a short run of the text", "PIN 123 for 2468", "got 123 and 4444", 200, "got 123 and 4444"},

		// One line of printable text.
		{"control characters", "", "bad\x00\x1b[31m number\t\n\xff", 200, "bad [31m number \uFFFD"},
		{"spaces around", "", "  \r\n hi\u00a0\u2028there \n", 200, "hi there"},
		{"unprintable characters", "", "a\u200bb\u0085c\ufeffd", 200, "a b c d"},

		// At most max bytes, then "...".
		{"short enough", "", "abc", 3, "abc"},
		{"cut", "", "abcdef", 3, "abc..."},
		{"cut inside a character", "", strings.Repeat("é", 150), 200, strings.Repeat("é", 100) + "..."},
		{"cut inside a character, odd", "", "ééé", 5, "éé..."},
		{"cut inside a 4-byte character", "", "a🔑b", 3, "a..."},
		{"cut to nothing", "", "abc", 0, "..."},
		{"redacted before the cut", text, strings.Repeat("x", 195) + " " + text, 200, strings.Repeat("x", 195) + " [red..."},
		{"cut inside a piece of the code", text, "id 3141500", 8, "id ..."},
		{"cut inside another number", text, "id 4255550142", 8, "id 42555..."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Redact(tc.answer, tc.text, tc.max); got != tc.want {
				t.Errorf("Redact(%q, %q, %d) = %q, want %q", tc.answer, tc.text, tc.max, got, tc.want)
			}
		})
	}
}

var code = regexp.MustCompile(`[0-9]{4,}`)

// FuzzRedact checks what Redact guarantees of any answer and text.
func FuzzRedact(f *testing.F) {
	f.Add("rejected: Esta é a sua senha: 314159", "Esta é a sua senha: 314159", 200)
	f.Add("id 3141500 \x00\xff", "code 314159", 8)
	f.Add(`"\u00e9 2468 \ud83d\udd11"`, "é 2468 🔑\n", 3)
	f.Add("  a\r\n\tb  ", "", 1)
	f.Add("rejected: Esta é a sua senha: 314159", "Esta \xc3", 200) // not UTF-8: must not split the é
	f.Fuzz(func(t *testing.T, answer, text string, maxLen int) {
		maxLen = int(uint(maxLen) % 300)
		got := Redact(answer, text, maxLen)
		if !utf8.ValidString(got) {
			t.Errorf("not valid UTF-8: %q", got)
		}
		if i := strings.IndexFunc(got, func(r rune) bool { return r != ' ' && (unicode.IsSpace(r) || !unicode.IsPrint(r)) }); i >= 0 {
			t.Errorf("unprintable character at %d: %q", i, got)
		}
		if strings.HasPrefix(got, " ") || strings.Contains(got, "  ") {
			t.Errorf("not one trimmed line: %q", got)
		}
		if len(got) > maxLen+len("...") {
			t.Errorf("%d bytes, want at most %d and \"...\": %q", len(got), maxLen, got)
		}
		for _, c := range code.FindAllString(text, -1) {
			if strings.Contains(got, c) {
				t.Errorf("holds the code %s: %q", c, got)
			}
			for i := 0; i+4 <= len(c); i++ {
				if strings.Contains(" "+got+" ", " "+c[i:i+4]+" ") {
					t.Errorf("holds the piece %s of the code %s alone: %q", c[i:i+4], c, got)
				}
			}
		}
	})
}
