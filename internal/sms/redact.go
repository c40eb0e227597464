package sms

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// redacted is what Redact puts in place of a secret.
const redacted = "[redacted]"

// Redact returns a carrier's answer (a response body, an error message, a
// header) as text fit to show a client in a refusal's Message or to log,
// given text, the text of the message the carrier was asked to send. The
// result
//
//   - is one line of valid UTF-8 with no control or other unprintable
//     characters: every run of them and of spaces is one space, and none
//     leads or trails (invalid bytes become U+FFFD first);
//   - never contains text, nor text as JSON escapes it (with or without
//     Go's escaping of <, > and &), nor as ASCII-only JSON escapes it
//     (\uXXXX, as Python's json.dumps writes it), nor as a URL query
//     escapes it (url.QueryEscape, as in a form body), nor any of these
//     made one line: each occurrence is replaced by "[redacted]";
//   - never contains a run of four or more digits taken from text (the
//     code): a run of digits of the answer that is four or more digits of
//     such a run of text, or that holds one, is replaced whole by
//     "[redacted]", so that "+13141590000" and "3141..." hide the code
//     314159 too;
//   - is at most maxLen bytes, or, when longer, cut at a character
//     boundary to at most maxLen bytes followed by "...", never leaving a
//     piece of a code at the cut.
//
// The one exception is a text so short or odd that "[redacted]" itself
// holds it (say, "d]"), which no message with a code is.
func Redact(answer, text string, maxLen int) string {
	s := oneLine(answer)
	codes := codesOf(text)
	if text != "" {
		for _, secret := range escapedForms(text) {
			s = strings.ReplaceAll(s, secret, redacted)
		}
	}
	if len(codes) > 0 {
		s = redactDigits(s, codes)
	}
	if len(s) <= maxLen {
		return s
	}
	n := max(maxLen, 0)
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	if n > 0 && isDigit(s[n-1]) && isDigit(s[n]) {
		// The cut splits a run of digits: what remains of it must not be
		// a piece of a code.
		start := n
		for start > 0 && isDigit(s[start-1]) {
			start--
		}
		if isCode(s[start:n], codes) {
			n = start
		}
	}
	return s[:n] + "..."
}

// escapedForms returns the forms of text Redact replaces, longest first,
// so that a form holding another is replaced whole.
func escapedForms(text string) []string {
	var forms []string
	add := func(f string) {
		for _, f := range []string{f, oneLine(f)} {
			// A form that is not valid UTF-8 could match part of a
			// character; oneLine(f) stands for it.
			if f != "" && utf8.ValidString(f) && !slices.Contains(forms, f) {
				forms = append(forms, f)
			}
		}
	}
	add(text)
	for _, escapeHTML := range []bool{true, false} {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(escapeHTML)
		_ = enc.Encode(text) // a string: never fails
		quoted := strings.TrimSuffix(strings.TrimSpace(b.String()), `"`)
		quoted = strings.TrimPrefix(quoted, `"`)
		add(quoted)
		add(asciiJSON(quoted))
	}
	add(url.QueryEscape(text))
	slices.SortStableFunc(forms, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	return forms
}

// asciiJSON returns the contents of a JSON string with every character
// beyond ASCII escaped as \uXXXX (a surrogate pair beyond the BMP), as
// Python's json.dumps writes them by default.
func asciiJSON(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r < utf8.RuneSelf {
			b.WriteRune(r)
			continue
		}
		for _, u := range utf16.Encode([]rune{r}) {
			fmt.Fprintf(&b, `\u%04x`, u)
		}
	}
	return b.String()
}

// codesOf returns the runs of four or more digits of text.
func codesOf(text string) []string {
	var codes []string
	for run := range strings.FieldsFuncSeq(text, func(r rune) bool { return r < '0' || r > '9' }) {
		if len(run) >= 4 {
			codes = append(codes, run)
		}
	}
	return codes
}

// redactDigits returns s with every run of digits that isCode replaced by
// redacted.
func redactDigits(s string, codes []string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		if !isDigit(s[i]) {
			b.WriteByte(s[i])
			i++
			continue
		}
		j := i
		for j < len(s) && isDigit(s[j]) {
			j++
		}
		if isCode(s[i:j], codes) {
			b.WriteString(redacted)
		} else {
			b.WriteString(s[i:j])
		}
		i = j
	}
	return b.String()
}

// isCode reports whether run, a run of digits, is four or more digits of
// one of codes, or holds one.
func isCode(run string, codes []string) bool {
	for _, code := range codes {
		if len(run) >= 4 && strings.Contains(code, run) || strings.Contains(run, code) {
			return true
		}
	}
	return false
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// oneLine returns s as valid UTF-8 with every run of spaces, control or
// other unprintable characters made one space, trimmed.
func oneLine(s string) string {
	var b strings.Builder
	gap := false
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) {
			gap = true
			continue
		}
		if gap && b.Len() > 0 {
			b.WriteByte(' ')
		}
		gap = false
		b.WriteRune(r)
	}
	return b.String()
}
