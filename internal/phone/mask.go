package phone

import (
	"regexp"
	"strings"
)

// digitRun is a run of digits, with the "+" before it if there is one.
var digitRun = regexp.MustCompile(`\+?[0-9]+`)

// Mask returns text, an error message for a log, with every phone number in
// it masked: its first four digits kept (the country, often the area), the
// others replaced by '*', as in "+1425*******". A phone number is a run of
// 7 to 15 digits, with or without a leading "+", that stands alone: runs
// inside a word (a hexadecimal ID) or joined by hyphens, underscores or
// dots (a UUID, a date, a version) are left as they are. Client-facing
// messages name the number they are about; logs need not.
func Mask(text string) string {
	var b strings.Builder
	last := 0
	for _, m := range digitRun.FindAllStringIndex(text, -1) {
		start, end := m[0], m[1]
		digits := end - start
		if text[start] == '+' {
			digits--
		}
		if digits < 7 || digits > 15 || joined(text, start-1) || joined(text, end) {
			continue
		}
		b.WriteString(text[last:start])
		kept := 0
		for _, c := range []byte(text[start:end]) {
			if c != '+' && kept == 4 {
				c = '*'
			} else if c != '+' {
				kept++
			}
			b.WriteByte(c)
		}
		last = end
	}
	if last == 0 {
		return text
	}
	b.WriteString(text[last:])
	return b.String()
}

// joined reports whether the byte of text at i (if any) joins a digit run
// to a longer token.
func joined(text string, i int) bool {
	if i < 0 || i >= len(text) {
		return false
	}
	c := text[i]
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c == '-' || c == '_' || c == '.'
}
