package pinpointapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// decode reads a request body into v. Unknown fields are ignored, as AWS
// ignores them; a field of the wrong JSON type is named in the error. The
// body must be UTF-8 (RFC 8259) without lone surrogates: encoding/json
// would turn either into U+FFFD, texting a garbled brand, and making two
// different ReferenceIds one.
func decode(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return errBadRequest("The request body is empty; this operation takes a JSON object.")
	}
	if bytes.HasPrefix(bytes.TrimLeft(body, " \t\r\n"), byteOrderMark) {
		return errBadRequest("The request body begins with a byte order mark (U+FEFF); send the JSON without one.")
	}
	err := json.Unmarshal(body, v)
	if err == nil {
		// Byte offsets count from 1, as json.SyntaxError's do.
		if !utf8.Valid(body) {
			return errBadRequest("The request body is not valid UTF-8 (at byte %d); JSON must be UTF-8.", invalidUTF8At(body)+1)
		}
		if at := loneSurrogateAt(body); at >= 0 {
			return errBadRequest("The request body is not valid JSON text: the escape at byte %d is half of a UTF-16 surrogate pair.", at+1)
		}
		return nil
	}
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		if typeErr.Field == "" {
			return errBadRequest("The request body must be a JSON object; got a JSON %s.", typeErr.Value)
		}
		if isMapField(v, typeErr.Field) && typeErr.Type.Kind() != reflect.Map { // a value of the map, not the map itself
			return errBadRequest("Each value of %s must be %s; got a JSON %s.", typeErr.Field, jsonKind(typeErr.Type.Kind().String()), typeErr.Value)
		}
		return errBadRequest("%s must be %s; got a JSON %s.", typeErr.Field, jsonKind(typeErr.Type.Kind().String()), typeErr.Value)
	}
	var syntaxErr *json.SyntaxError
	if errors.As(err, &syntaxErr) {
		return errBadRequest("The request body is not valid JSON: %v (at byte %d).", syntaxErr, syntaxErr.Offset)
	}
	return errBadRequest("The request body is not valid JSON: %v.", err)
}

var byteOrderMark = []byte("\uFEFF")

// invalidUTF8At returns the offset of the first byte of b that is not part
// of valid UTF-8, or -1.
func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return -1
}

// loneSurrogateAt returns the offset of the first \u escape in the JSON
// text b that is a surrogate without its other half, or -1.
func loneSurrogateAt(b []byte) int {
	if !bytes.Contains(b, []byte(`\u`)) {
		return -1 // the common case: no escape of this kind at all
	}
	inString := false
	for i := 0; i < len(b); i++ {
		switch {
		case b[i] == '"':
			inString = !inString
		case inString && b[i] == '\\' && i+1 < len(b):
			if b[i+1] != 'u' {
				i++ // \", \\, \n, …: skip the escaped character
				continue
			}
			r, ok := hex4(b, i+2)
			switch {
			case !ok || !utf16.IsSurrogate(r):
			case r < 0xdc00: // the first half: the second must follow
				if r2, ok := hex4(b, i+8); !ok || b[i+6] != '\\' || b[i+7] != 'u' || r2 < 0xdc00 || r2 > 0xdfff {
					return i
				}
				i += 6
			default: // a second half with no first
				return i
			}
			i += 5
		}
	}
	return -1
}

// hex4 decodes the four hexadecimal digits at b[i:], if there are four.
func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(b[i:i+4]), 16, 32)
	return rune(n), err == nil
}

// isMapField reports whether *v, a struct, has a map field whose JSON name
// is name: a type error there is about one of its values.
func isMapField(v any, name string) bool {
	t := reflect.TypeOf(v).Elem()
	if t.Kind() != reflect.Struct {
		return false
	}
	for f := range t.Fields() {
		if tag, _, _ := strings.Cut(f.Tag.Get("json"), ","); tag == name {
			return f.Type.Kind() == reflect.Map
		}
	}
	return false
}

// jsonKind names a Go kind the way a client thinks of JSON values.
func jsonKind(goKind string) string {
	switch goKind {
	case "int", "int32", "int64":
		return "an integer"
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "map", "struct":
		return "an object"
	case "slice":
		return "an array"
	case "ptr":
		return "a value of another type"
	}
	return fmt.Sprintf("a %s", goKind)
}

// writeJSON answers with v as JSON.
func (s *server) writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		s.writeError(w, r, fmt.Errorf("encode response: %w", err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}

// isoTime formats t as Pinpoint's dates: ISO 8601, UTC, milliseconds.
func isoTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }
