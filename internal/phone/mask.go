package phone

import (
	"strings"
	"unicode"
)

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
// letter, digit or underscore touches it, nor a '.', '-', '/' or ':' that
// joins it to one (a hexadecimal ID, a UUID, a version, a path, a time); a
// '.' that ends a sentence does not. Groups that are no number as a whole
// (a date before a number, say) are scanned again from their second.
func Mask(text string) string {
	var b strings.Builder
	last := 0
	for i := 0; i < len(text); {
		start, digitsAt, end, firstGroupEnd, digits := scanNumber(text, i)
		if digits == 0 {
			i++
			continue
		}
		grouped := firstGroupEnd < end
		if digits < 7 || digits > 15 || grouped && start == digitsAt && digits < 10 ||
			joinedBefore(text, start) || joinedAfter(text, end) {
			// Not a number as a whole; its later groups may hold one.
			i = end
			if grouped {
				i = firstGroupEnd + 1
			}
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
// or "%2B", then digits, in groups joined by single spaces or hyphens, as
// long as they hold at most 15 digits together. It returns where it starts,
// where its digits start, where it ends, where its first group ends, and
// how many digits it holds (0 if none).
func scanNumber(text string, i int) (start, digitsAt, end, firstGroupEnd, digits int) {
	start, j := i, i
	switch {
	case strings.HasPrefix(text[j:], "+"):
		j++
	case strings.HasPrefix(text[j:], "%2B"), strings.HasPrefix(text[j:], "%2b"):
		j += 3
	}
	digitsAt, firstGroupEnd = j, -1
	for j < len(text) && isDigit(text[j]) {
		j++
		digits++
		if j < len(text) && isDigit(text[j]) {
			continue
		}
		if firstGroupEnd < 0 {
			firstGroupEnd = j
		}
		// A single separator continues the number if a group of digits
		// follows it that keeps it within 15 digits.
		if j+1 < len(text) && (text[j] == ' ' || text[j] == '-') && isDigit(text[j+1]) {
			next := 0
			for k := j + 1; k < len(text) && isDigit(text[k]); k++ {
				next++
			}
			if digits+next > 15 {
				break
			}
			j++
		}
	}
	if firstGroupEnd < 0 {
		firstGroupEnd = j
	}
	return start, digitsAt, j, firstGroupEnd, digits
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
	return (c == '.' || c == '-' || c == '/' || c == ':') && i >= 2 && isWordByte(text[i-2])
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
	return (c == '.' || c == '-' || c == '/' || c == ':') && i+1 < len(text) && isWordByte(text[i+1])
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isWordByte(c byte) bool {
	return isDigit(c) || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c == '_'
}

// MaskValue masks v, a value given as one phone number, whatever its shape,
// for an error that echoes it: its first four digits are kept and every
// later one becomes '*', as Mask does, but every other character stays as
// it is ("(425) 5**-****", "tel:+1425*******"), so that the format shows.
// A digit is any decimal digit of Unicode's ("４", "٤"), since a number
// written in one is no less a number. Mask, which looks for numbers in
// running text, passes over values such as these, where a letter, a '.',
// '/' or ':' touches the digits.
func MaskValue(v string) string {
	kept := 0
	return strings.Map(func(r rune) rune {
		if !unicode.IsDigit(r) {
			return r
		}
		if kept < 4 {
			kept++
			return r
		}
		return '*'
	}, v)
}
