package sigv4

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

const validAuthorization = "AWS4-HMAC-SHA256 Credential=AKIDOTPDTEST0001/20260314/us-east-1/mobiletargeting/aws4_request, " +
	"SignedHeaders=content-type;host;x-amz-date, Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// authorizationSeeds are valid and malformed Authorization headers.
var authorizationSeeds = []string{
	validAuthorization,
	strings.ReplaceAll(validAuthorization, ", ", ","),
	strings.Replace(validAuthorization, "content-type;host;x-amz-date", "X-Amz-Date;Host;content-type", 1),
	"",
	"AWS4-HMAC-SHA256",
	"AWS4-HMAC-SHA256 ",
	"AWS4-HMAC-SHA256 Credential=, SignedHeaders=, Signature=",
	"AWS4-HMAC-SHA256 Credential=a/b/c/d/e/f, SignedHeaders=host, Signature=00",
	"AWS4-HMAC-SHA256 Credential=AKID/20260314/us-east-1/mobiletargeting/aws4_request, SignedHeaders=host;;x, Signature=",
	"AWS4-HMAC-SHA256 Credential=AKID/2026031x/us-east-1/mobiletargeting/aws4_request, SignedHeaders=host, Signature=zz",
	"AWS4-HMAC-SHA256 Credential=/20260314///aws4_request, SignedHeaders=host;host, Signature=" + strings.Repeat("g", 64),
	"AWS4-HMAC-SHA256 Credential==, SignedHeaders===, Signature====, Extra=1",
	"AWS4-HMAC-SHA256 Credential",
	"AWS AKID:c2lnbmF0dXJl",
	"AWS4-ECDSA-P256-SHA256 Credential=AKID/20260314/mobiletargeting/aws4_request, SignedHeaders=host, Signature=00",
	"AWS4-HMAC-SHA256 Credential=AKID/20260314/us-east-1/mobiletargeting/aws4_request,,,SignedHeaders=host,Signature=" + strings.Repeat("A", 64),
	"AWS4-HMAC-SHA256 Credential=\xff/\x00/\n/\t/aws4_request, SignedHeaders=\xff;host, Signature=" + strings.Repeat("0", 64),
}

// FuzzParseAuthorization checks that parsing never panics, that failures
// are IncompleteSignatureException with a message, and that what parses is
// complete and canonical.
func FuzzParseAuthorization(f *testing.F) {
	for _, s := range authorizationSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		a, e := parseAuthorization(header)
		if e != nil {
			if e.Code != codeIncomplete || e.Message == "" {
				t.Fatalf("parseAuthorization(%q) failed with %#v, want %s with a message", header, e, codeIncomplete)
			}
			return
		}
		if a.accessKeyID == "" || a.region == "" || a.service == "" || len(a.date) != 8 {
			t.Fatalf("parseAuthorization(%q) accepted an incomplete scope: %+v", header, a)
		}
		if want := a.date + "/" + a.region + "/" + a.service + "/" + scopeTerminator; a.scope != want {
			t.Fatalf("scope\n got %q\nwant %q", a.scope, want)
		}
		if again, e := normalizeSignedHeaders(a.signedHeaders); e != nil || again != a.signedHeaders {
			t.Fatalf("SignedHeaders %q is not canonical: normalized again to %q, %v", a.signedHeaders, again, e)
		}
	})
}

// FuzzVerify checks that Verify never panics on arbitrary header, query,
// path and body bytes, and only ever fails with an *Error of a known code.
func FuzzVerify(f *testing.F) {
	body := `{"Name":"app"}`
	signed := serverSideRequest(f, []byte(body))
	f.Add(signed.Header.Get("Authorization"), signed.Header.Get("X-Amz-Date"), "", signed.URL.RawQuery, signed.URL.EscapedPath(), body)
	f.Add(validAuthorization, "20260314T235800Z", sha256Hex([]byte(body)), "a=1&a=2&b=%20+&c", "/v1/apps/a%20b", body)
	f.Add(validAuthorization, "20260314T235800Z", "UNSIGNED-PAYLOAD", "%zz", "/", "")
	f.Add(validAuthorization, "2026", "", "", "", "\x00")
	for _, s := range authorizationSeeds {
		f.Add(s, "20260314T235800Z", "", "x=%", "/v1//apps/%2F", body)
	}
	v := newVerifier(fixedClock)
	known := map[string]bool{codeMissingToken: true, codeIncomplete: true, codeInvalid: true, codeUnrecognized: true}
	f.Fuzz(func(t *testing.T, authorization, amzDate, contentSHA256, rawQuery, path, body string) {
		r := &http.Request{
			Method: "POST",
			URL:    &url.URL{Path: path, RawQuery: rawQuery},
			Host:   "127.0.0.1:8080",
			Header: http.Header{
				"Authorization":         {authorization},
				"X-Amz-Date":            {amzDate},
				"Content-Type":          {"application/json"},
				"Amz-Sdk-Invocation-Id": {"2b6f5d1e-7c0a-4d5e-9a43-2f1e7c3b9d10"},
				"Amz-Sdk-Request":       {"attempt=1; max=3"},
				http.CanonicalHeaderKey(headerContentSHA256): {contentSHA256},
			},
			ContentLength: int64(len(body)),
		}
		if contentSHA256 == "" {
			delete(r.Header, headerContentSHA256)
		}
		id, err := v.Verify(r, []byte(body))
		var e *Error
		switch {
		case err == nil && id != testKeyID:
			t.Fatalf("Verify accepted the request for %q", id)
		case err != nil && (!errors.As(err, &e) || !known[e.Code] || e.Message == ""):
			t.Fatalf("Verify failed with %#v, want an *Error with a known code and a message", err)
		}
	})
}

// FuzzSignedBySDK checks that Verify accepts whatever aws-sdk-go-v2 signs:
// any header value, query, path and body.
func FuzzSignedBySDK(f *testing.F) {
	f.Add("keep  these words", "page-size=10&token=a%20b+c&token=%2F", "/v1/apps/a%20b%2Fc", `{"Name":"app"}`)
	f.Add("\r", "0=", "", "")
	f.Add("\t x \t", "&&a&=b", "/v1/apps/%C3%BC~!$&'()*+,;=:@", "\x00\xff")
	v := newVerifier(fixedClock)
	f.Fuzz(func(t *testing.T, headerValue, rawQuery, path, body string) {
		u, err := url.Parse("http://127.0.0.1:8080" + path)
		if err != nil || u.Host != "127.0.0.1:8080" {
			return // not a path
		}
		u.RawQuery = rawQuery
		req := &http.Request{Method: "POST", URL: u, Host: u.Host, Header: http.Header{"X-Custom": {headerValue}}}
		defaultSigning().sign(t, req, []byte(body))
		if _, err := v.Verify(req, []byte(body)); err != nil {
			t.Fatalf("Verify rejected a request the SDK signed: %v\nX-Custom: %q\nquery: %q\npath: %q",
				err, headerValue, req.URL.RawQuery, req.URL.EscapedPath())
		}
	})
}
