package sigv4

import (
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// appendCanonicalRequest appends the SigV4 canonical request of r to dst:
//
//	method \n canonical URI \n canonical query \n canonical headers \n signed headers \n payload hash
//
// signedHeaders is the normalized SignedHeaders list and payloadHash the hex
// SHA-256 of the body received.
func appendCanonicalRequest(dst []byte, r *http.Request, signedHeaders string, payloadHash []byte) ([]byte, *Error) {
	dst = append(dst, r.Method...)
	dst = append(dst, '\n')
	dst = append(dst, canonicalURI(r.URL)...)
	dst = append(dst, '\n')
	query, e := canonicalQuery(r.URL.RawQuery)
	if e != nil {
		return nil, e
	}
	dst = append(dst, query...)
	dst = append(dst, '\n')
	if dst, e = appendCanonicalHeaders(dst, r, signedHeaders); e != nil {
		return nil, e
	}
	dst = append(dst, '\n')
	dst = append(dst, signedHeaders...)
	dst = append(dst, '\n')
	return append(dst, payloadHash...), nil
}

// canonicalURI returns the path as the client sent it, URI-encoded a second
// time as every service but S3 expects ("%20" becomes "%2520").
func canonicalURI(u *url.URL) string {
	path := u.EscapedPath()
	if path == "" {
		return "/"
	}
	return uriEncode(path, true)
}

// canonicalQuery decodes every name and value of the raw query and
// RFC 3986-encodes them again, sorted by encoded name, then encoded value.
// Like aws-sdk-go-v2, it decodes '+' as a space.
func canonicalQuery(rawQuery string) (string, *Error) {
	if rawQuery == "" {
		return "", nil
	}
	type param struct{ name, value string }
	var params []param
	for pair := range strings.SplitSeq(rawQuery, "&") {
		if pair == "" {
			continue
		}
		name, value, _ := strings.Cut(pair, "=")
		name, err := url.QueryUnescape(name)
		if err != nil {
			return "", invalid("The query string is not valid percent-encoding: %v.", err)
		}
		value, err = url.QueryUnescape(value)
		if err != nil {
			return "", invalid("The query string is not valid percent-encoding: %v.", err)
		}
		params = append(params, param{uriEncode(name, false), uriEncode(value, false)})
	}
	slices.SortFunc(params, func(a, b param) int {
		if c := strings.Compare(a.name, b.name); c != 0 {
			return c
		}
		return strings.Compare(a.value, b.value)
	})
	var b strings.Builder
	for i, p := range params {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.name)
		b.WriteByte('=')
		b.WriteString(p.value)
	}
	return b.String(), nil
}

// appendCanonicalHeaders appends "name:value\n" for every header named in
// signedHeaders, in that (sorted) order. Several values of one header are
// joined with ",".
func appendCanonicalHeaders(dst []byte, r *http.Request, signedHeaders string) ([]byte, *Error) {
	for name := range strings.SplitSeq(signedHeaders, ";") {
		dst = append(dst, name...)
		dst = append(dst, ':')
		if name == "host" {
			dst = append(appendTrimmed(dst, r.Host), '\n')
			continue
		}
		values, ok := headerValues(r, name)
		if !ok {
			return nil, incomplete("The header %q is listed in SignedHeaders but absent from the request.", name)
		}
		for i, v := range values {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendTrimmed(dst, v)
		}
		dst = append(dst, '\n')
	}
	return dst, nil
}

// headerValues returns the values the client sent for the lowercase header
// name other than host. Go's server moves some headers out of r.Header:
// Host into r.Host and Transfer-Encoding into r.TransferEncoding, and it
// drops Content-Length from chunked requests; a request built in process
// (http.NewRequest, httptest.NewRequest) has its length only in
// r.ContentLength. Those headers come from the request fields.
func headerValues(r *http.Request, name string) ([]string, bool) {
	if name == "transfer-encoding" && len(r.TransferEncoding) > 0 {
		return r.TransferEncoding, true
	}
	values, ok := r.Header[textproto.CanonicalMIMEHeaderKey(name)]
	if !ok && name == "content-length" && r.ContentLength >= 0 {
		return []string{strconv.FormatInt(r.ContentLength, 10)}, true
	}
	return values, ok
}

// appendTrimmed appends v without leading and trailing white space and
// with every inner run of spaces collapsed to one.
func appendTrimmed(dst []byte, v string) []byte {
	v = strings.TrimSpace(v)
	for i := 0; i < len(v); i++ {
		if v[i] == ' ' && i > 0 && v[i-1] == ' ' {
			continue
		}
		dst = append(dst, v[i])
	}
	return dst
}

// uriEncode percent-encodes every byte of s outside the RFC 3986 unreserved
// set (A-Z a-z 0-9 - _ . ~), and '/' too unless keepSlash, with uppercase
// hex digits.
func uriEncode(s string, keepSlash bool) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if !unreserved(s[i]) && !(keepSlash && s[i] == '/') {
			n++
		}
	}
	if n == 0 {
		return s
	}
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) + 2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved(c) || keepSlash && c == '/' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&0xF])
	}
	return b.String()
}

func unreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '_' || c == '.' || c == '~'
}
