// Package gsm7 answers two questions about SMS text under GSM 03.38
// (3GPP TS 23.038): does a text fit the GSM 7-bit default alphabet, and
// into how many SMS segments (and which parts) does it split.
//
// A text travels as GSM-7 when every character is in the default alphabet
// (TS 23.038 §6.2.1) or its extension table (§6.2.1.1); otherwise it travels
// as UCS-2. The default alphabet holds ASCII letters and digits, most ASCII
// punctuation, and a few others: è é ù ì ò Ç Ø ø Å å Ä ä Ö ö Ñ ñ Ü ü à ß
// É Æ æ, the Greek capitals Δ Φ Γ Λ Ω Π Ψ Σ Θ Ξ, and ¡ ¿ £ ¥ § ¤. The
// extension table adds the form feed and ^ { } \ [ ~ ] | €, each of which
// costs two septets (an escape septet 0x1B and the character's code).
//
// Some common characters are not in either table and so force UCS-2: the
// grave accent `, lowercase ç (only capital Ç is at 0x09, as the 3GPP
// table shows it; Unicode's GSM0338.TXT maps 0x09 to ç instead), á í ó ú â
// ê ô ã õ, typographic quotes and dashes, tab, no-break space, and every
// CJK, Hangul, kana or emoji character. Latin letters are not replaced by
// look-alikes (Greek capital Alpha is not taken as A) and the national
// language shift tables (TS 23.038 Annex A) are not used.
//
// A single GSM-7 message holds 160 septets and a single UCS-2 message 70
// UTF-16 code units. A concatenated message carries a 6-octet user data
// header in each part, leaving 153 septets or 67 code units per part. An
// extension character's escape and code stay in the same part, as do the
// two halves of a UTF-16 surrogate pair.
//
// Texts are Go strings and are read as UTF-8; each byte of invalid UTF-8
// counts as U+FFFD, which is not GSM-7.
package gsm7

import (
	"fmt"
	"strconv"
	"unicode/utf16"
)

// Encoding is how a text travels over SMS.
type Encoding int

const (
	// GSM7 is the GSM 03.38 7-bit default alphabet with its extension table
	// (SMPP data_coding 0).
	GSM7 Encoding = iota + 1
	// UCS2 is UTF-16 big-endian (SMPP data_coding 8).
	UCS2
)

// String returns "GSM-7" or "UCS-2" (or "Encoding(n)" for another value).
func (e Encoding) String() string {
	switch e {
	case GSM7:
		return "GSM-7"
	case UCS2:
		return "UCS-2"
	}
	return "Encoding(" + strconv.Itoa(int(e)) + ")"
}

// Message size limits from 3GPP TS 23.040 with a concatenation header of
// 6 octets (8-bit reference number).
const (
	gsmSingle = 160 // septets in a single GSM-7 message
	gsmPart   = 153 // septets in each part of a concatenated GSM-7 message
	ucsSingle = 70  // UTF-16 code units in a single UCS-2 message
	ucsPart   = 67  // UTF-16 code units in each part of a concatenated UCS-2 message
)

// escape is the septet that introduces a character of the extension table.
const escape = 0x1B

// noChar marks the escape position of the default alphabet, where there is
// no character.
const noChar = -1

// defaultAlphabet is the GSM 7-bit default alphabet, TS 23.038 §6.2.1,
// indexed by septet value.
var defaultAlphabet = [128]rune{
	// 0x00
	'@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å',
	// 0x10
	'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', noChar, 'Æ', 'æ', 'ß', 'É',
	// 0x20
	' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/',
	// 0x30
	'0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?',
	// 0x40
	'¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O',
	// 0x50
	'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§',
	// 0x60
	'¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o',
	// 0x70
	'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à',
}

// extensionTable maps the characters of the default alphabet extension
// table, TS 23.038 §6.2.1.1, to the septet that follows the escape. Its
// control entries (0x0D page break, 0x1B reserved) are not characters and
// are left out.
var extensionTable = map[rune]byte{
	'\f': 0x0A,
	'^':  0x14,
	'{':  0x28,
	'}':  0x29,
	'\\': 0x2F,
	'[':  0x3C,
	'~':  0x3D,
	']':  0x3E,
	'|':  0x40,
	'€':  0x65,
}

// defaultCodes maps each character of the default alphabet to its septet.
// It is built once and only read.
var defaultCodes = func() map[rune]byte {
	m := make(map[rune]byte, len(defaultAlphabet))
	for code, r := range defaultAlphabet {
		if r != noChar {
			m[r] = byte(code)
		}
	}
	return m
}()

// lookup returns the septet of r and whether it is an extension character
// (sent after an escape); ok is false when r is not GSM-7.
func lookup(r rune) (code byte, ext, ok bool) {
	if c, found := defaultCodes[r]; found {
		return c, false, true
	}
	if c, found := extensionTable[r]; found {
		return c, true, true
	}
	return 0, false, false
}

// septetsOf returns the septets r takes in GSM-7, or 0 if it has none.
func septetsOf(r rune) int {
	_, ext, ok := lookup(r)
	switch {
	case !ok:
		return 0
	case ext:
		return 2
	}
	return 1
}

// unitsOf returns the UTF-16 code units r takes.
func unitsOf(r rune) int {
	if n := utf16.RuneLen(r); n > 0 {
		return n
	}
	return 1 // range over a string never yields such a rune; U+FFFD is 1 unit
}

// EncodingOf returns GSM7 when every character of text is in the default
// alphabet or its extension table, else UCS2. The empty text is GSM7.
func EncodingOf(text string) Encoding {
	if _, ok := Septets(text); ok {
		return GSM7
	}
	return UCS2
}

// Septets returns the number of septets text takes in GSM-7 (extension
// characters count 2) and ok=false, with n=0, if it does not fit GSM-7.
func Septets(text string) (n int, ok bool) {
	for _, r := range text {
		s := septetsOf(r)
		if s == 0 {
			return 0, false
		}
		n += s
	}
	return n, true
}

// units returns the UTF-16 code units text takes.
func units(text string) int {
	n := 0
	for _, r := range text {
		n += unitsOf(r)
	}
	return n
}

// Segments returns the encoding of text (as EncodingOf) and the number of
// SMS segments it needs: GSM-7 fits 160 septets in a single message and 153
// in each part of a concatenated one, an extension character's escape and
// code never split across parts; UCS-2 fits 70 UTF-16 code units single and
// 67 per part, a surrogate pair never split. The empty text is 1 segment.
// The count always equals len(Split(text, enc)).
func Segments(text string) (Encoding, int) {
	enc := EncodingOf(text)
	return enc, split(text, enc, nil)
}

// Split splits text into the parts a concatenated message needs under enc,
// by the rules of Segments: each part's text, in order, which joined give
// back text. A text that fits a single message, the empty text included,
// is one part. Every part but the last is filled as far as the next
// character allows.
//
// Split uses the UCS-2 limits when enc is UCS2 (which a GSM-7 text may also
// be sent as) or when text does not fit GSM-7, and the GSM-7 limits
// otherwise.
func Split(text string, enc Encoding) []string {
	if enc != UCS2 {
		enc = EncodingOf(text)
	}
	var parts []string
	split(text, enc, func(part string) { parts = append(parts, part) })
	return parts
}

// split passes each part of text under enc, which must be UCS2 or GSM7
// with text fitting GSM-7, to emit when it is not nil, and returns the
// number of parts.
func split(text string, enc Encoding, emit func(string)) int {
	cost, total, single, limit := septetsOf, 0, gsmSingle, gsmPart
	if enc == UCS2 {
		cost, total, single, limit = unitsOf, units(text), ucsSingle, ucsPart
	} else {
		total, _ = Septets(text)
	}
	if total <= single {
		if emit != nil {
			emit(text)
		}
		return 1
	}
	count, start, used := 0, 0, 0
	for i, r := range text {
		c := cost(r)
		if used+c > limit { // used > 0 here: no character costs more than 2
			if emit != nil {
				emit(text[start:i])
			}
			count++
			start, used = i, 0
		}
		used += c
	}
	if emit != nil {
		emit(text[start:])
	}
	return count + 1
}

// Encode returns text as unpacked GSM 03.38 septet values, one byte per
// septet with an escape 0x1B before each extension character, as SMPP
// sends them with data_coding 0. It returns an error naming the first
// character that is not GSM-7.
func Encode(text string) ([]byte, error) {
	b := make([]byte, 0, len(text))
	for i, r := range text {
		code, ext, ok := lookup(r)
		if !ok {
			return nil, fmt.Errorf("gsm7: character %q (%U) at byte offset %d is not in the GSM 03.38 default alphabet or extension table", r, r, i)
		}
		if ext {
			b = append(b, escape)
		}
		b = append(b, code)
	}
	return b, nil
}

// EncodeUCS2 returns the UTF-16BE bytes of text (SMPP data_coding 8).
// Characters outside the Basic Multilingual Plane become surrogate pairs.
func EncodeUCS2(text string) []byte {
	b := make([]byte, 0, 2*len(text))
	for _, r := range text {
		if unitsOf(r) == 2 {
			hi, lo := utf16.EncodeRune(r)
			b = append(b, byte(hi>>8), byte(hi), byte(lo>>8), byte(lo))
			continue
		}
		b = append(b, byte(r>>8), byte(r))
	}
	return b
}
