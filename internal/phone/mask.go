package phone

import "strings"

// Mask returns text, an error message for a log, with every phone number in
// it masked: its first four digits kept (the country, often the area), the
// others replaced by '*', as in "+1425*******". Client-facing messages name
// the number they are about; logs need not.
//
// A phone number here is 7 to 15 digits that stand alone: a run of digits,
// or digit groups joined by single spaces or hyphens ("+1 425 555 0143",
// "1-425-555-0143") when it starts with "+" or holds at least 10 digits
// (so that a date such as 2026-12-07 is not one); a leading "+" may be
// written "%2B", as a form or a URL escapes it. It stands alone when no
// letter, digit or underscore touches it, nor a '.', '-' or '/' that joins
// it to one (a hexadecimal ID, a UUID, a version, a path); a '.' that ends
// a sentence does not.
func Mask(text string) string {
	var b strings.Builder
	last := 0
	for i := 0; i < len(text); {
		start, digitsAt, end, digits, grouped := scanNumber(text, i)
		if digits == 0 {
			i++
			continue
		}
		if digits < 7 || digits > 15 || grouped && start == digitsAt && digits < 10 ||
			joinedBefore(text, start) || joinedAfter(text, end) {
			i = end
			continue
		}
		b.WriteString(text[last:digitsAt])
		kept := 0
		for _, c := range []byte(text[digitsAt:end]) {
			if c >= '0' && c <= '9' {
				if kept == 4 {
					c = '*'
				} else {
					kept++
				}
			}
			b.WriteByte(c)
		}
		last, i = end, end
	}
	if last == 0 {
		return text
	}
	b.WriteString(text[last:])
	return b.String()
}

// scanNumber reads what may be a phone number at text[i:]: an optional "+"
// or "%2B", then digits, in groups joined by single spaces or hyphens. It
// returns where it starts, where its digits start, where it ends, how many
// digits it holds (0 if none) and whether it has more than one group.
func scanNumber(text string, i int) (start, digitsAt, end, digits int, grouped bool) {
	start, j := i, i
	switch {
	case strings.HasPrefix(text[j:], "+"):
		j++
	case strings.HasPrefix(text[j:], "%2B"), strings.HasPrefix(text[j:], "%2b"):
		j += 3
	}
	digitsAt = j
	for j < len(text) && isDigit(text[j]) {
		j++
		digits++
		// A single separator continues the number if a digit follows it.
		if j+1 < len(text) && (text[j] == ' ' || text[j] == '-') && isDigit(text[j+1]) {
			j++
			grouped = true
		}
	}
	return start, digitsAt, j, digits, grouped
}

// joinedBefore reports whether what precedes text[i] joins a number there
// to a longer token.
func joinedBefore(text string, i int) bool {
	if i == 0 {
		return false
	}
	c := text[i-1]
	if isWordByte(c) {
		return true
	}
	return (c == '.' || c == '-' || c == '/') && i >= 2 && isWordByte(text[i-2])
}

// joinedAfter reports whether what follows a number ending before text[i]
// joins it to a longer token.
func joinedAfter(text string, i int) bool {
	if i >= len(text) {
		return false
	}
	c := text[i]
	if isWordByte(c) {
		return true
	}
	return (c == '.' || c == '-' || c == '/') && i+1 < len(text) && isWordByte(text[i+1])
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isWordByte(c byte) bool {
	return isDigit(c) || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c == '_'
}
