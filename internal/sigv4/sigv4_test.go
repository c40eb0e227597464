package sigv4

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/pinpoint"
	"github.com/aws/aws-sdk-go-v2/service/pinpoint/types"
	"github.com/aws/smithy-go"
)

const (
	testKeyID  = "AKIDOTPDTEST0001"
	testSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
	testRegion = "us-east-1"
	testSvc    = "mobiletargeting"
)

// testNow is two minutes before midnight, so that skewed dates cross a day.
var testNow = time.Date(2026, 3, 14, 23, 58, 0, 0, time.UTC)

// keyring is a fixed Keyring.
type keyring map[string]string

func (k keyring) Secret(id string) (string, bool) {
	s, ok := k[id]
	return s, ok
}

// newVerifier returns a Verifier for testRegion and testSvc that knows the
// test key; now nil means the real clock.
func newVerifier(now func() time.Time) *Verifier {
	return &Verifier{Region: testRegion, Service: testSvc, Keys: keyring{testKeyID: testSecret}, Now: now}
}

func fixedClock() time.Time { return testNow }

// outcome is what the test server answered.
type outcome struct {
	Status      int
	Code        string // X-Amzn-ErrorType, "" on success
	Message     string
	AccessKeyID string
}

// newServer starts an HTTP server that verifies every request with v and
// answers like otpd: 200 with the access key ID, or 403 with the error
// code in X-Amzn-ErrorType and the message in a JSON body.
func newServer(t testing.TB, v *Verifier) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		id, err := v.Verify(r, body)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				http.Error(w, "Verify returned a non-*Error: "+err.Error(), http.StatusInternalServerError)
				return
			}
			w.Header().Set("X-Amzn-ErrorType", e.Code)
			w.WriteHeader(http.StatusForbidden)
			json.NewEncoder(w).Encode(map[string]string{"Message": e.Message})
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"AccessKeyID": id, "Item": []any{}})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// send sends req and decodes the answer of a newServer.
func send(t testing.TB, req *http.Request) outcome {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("sending request: %v", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading response: %v", err)
	}
	got := outcome{Status: resp.StatusCode, Code: resp.Header.Get("X-Amzn-ErrorType")}
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("response %d is not JSON: %v: %s", resp.StatusCode, err, raw)
	}
	return got
}

// signing holds what the aws-sdk-go-v2 signer is given.
type signing struct {
	creds       aws.Credentials
	service     string
	region      string
	at          time.Time
	payloadHash string // "" means the hex SHA-256 of the body
}

func defaultSigning() signing {
	return signing{
		creds:   aws.Credentials{AccessKeyID: testKeyID, SecretAccessKey: testSecret},
		service: testSvc,
		region:  testRegion,
		at:      testNow,
	}
}

// sign signs req for body with aws-sdk-go-v2's signer.
func (s signing) sign(t testing.TB, req *http.Request, body []byte) {
	t.Helper()
	hash := s.payloadHash
	if hash == "" {
		hash = sha256Hex(body)
	}
	if err := v4.NewSigner().SignHTTP(context.Background(), s.creds, req, hash, s.service, s.region, s.at); err != nil {
		t.Fatalf("SignHTTP: %v", err)
	}
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func newRequest(t testing.TB, method, url string, body []byte, header http.Header) *http.Request {
	t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatalf("NewRequest: %v", err)
	}
	for name, values := range header {
		req.Header[name] = values
	}
	return req
}

// setBody replaces the body that will be sent, keeping the signature.
func setBody(req *http.Request, body []byte) {
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.ContentLength = int64(len(body))
}

func check(t *testing.T, req *http.Request, got outcome, wantCode, wantMessage string) {
	t.Helper()
	if wantCode == "" {
		if got.Status != http.StatusOK || got.AccessKeyID != testKeyID {
			t.Errorf("request rejected:\n got %d %s %q\nwant 200 with access key %s\nAuthorization: %s",
				got.Status, got.Code, got.Message, testKeyID, req.Header.Get("Authorization"))
		}
		return
	}
	if got.Status != http.StatusForbidden || got.Code != wantCode {
		t.Errorf("\n got %d %s %q\nwant 403 %s", got.Status, got.Code, got.Message, wantCode)
	}
	if !strings.Contains(got.Message, wantMessage) {
		t.Errorf("message\n got %q\nwant it to contain %q", got.Message, wantMessage)
	}
}

// TestSDKSignedAccepted sends requests signed by aws-sdk-go-v2 with the
// header sets of the different clients through a real HTTP server.
func TestSDKSignedAccepted(t *testing.T) {
	srv := newServer(t, newVerifier(fixedClock))
	body := []byte(`{"BrandName":"otpd","Channel":"SMS","DestinationIdentity":"+14255550100"}`)
	tests := []struct {
		name          string
		method, path  string
		body          []byte
		header        http.Header
		host          string
		chunked       bool
		signedHeaders string // the SignedHeaders the SDK must have produced
	}{{
		name: "plain GET", method: "GET", path: "/v1/apps",
		signedHeaders: "host;x-amz-date",
	}, {
		name: "Content-Type", method: "POST", path: "/v1/apps", body: body,
		header:        http.Header{"Content-Type": {"application/json"}},
		signedHeaders: "content-length;content-type;host;x-amz-date",
	}, {
		name: "Go SDK headers", method: "POST", path: "/v1/apps/0123456789abcdef/otp", body: body,
		header: http.Header{
			"Content-Type":          {"application/json"},
			"Amz-Sdk-Invocation-Id": {"2b6f5d1e-7c0a-4d5e-9a43-2f1e7c3b9d10"},
			"Amz-Sdk-Request":       {"attempt=1; max=3"},
		},
		signedHeaders: "amz-sdk-invocation-id;amz-sdk-request;content-length;content-type;host;x-amz-date",
	}, {
		name: "JS SDK headers", method: "POST", path: "/v1/apps/0123456789abcdef/verify-otp", body: body,
		header: http.Header{
			"Content-Type":          {"application/json"},
			"X-Amz-Content-Sha256":  {sha256Hex(body)},
			"X-Amz-User-Agent":      {"aws-sdk-js/3.700.0 ua/2.1 os/linux#6.8 lang/js md/nodejs#22.11.0 api/pinpoint#3.700.0"},
			"Amz-Sdk-Invocation-Id": {"9f0e6a52-1c1d-4f3b-8a7e-5b0c2d4e6f80"},
			"Amz-Sdk-Request":       {"attempt=1; max=3"},
		},
		signedHeaders: "amz-sdk-invocation-id;amz-sdk-request;content-length;content-type;host;x-amz-content-sha256;x-amz-date;x-amz-user-agent",
	}, {
		name: "query with spaces and repeated keys", method: "GET",
		path:          "/v1/apps?page-size=10&token=next%20page%2Bmore%2F%3D&token=A%20B&token=a&empty=&flag",
		signedHeaders: "host;x-amz-date",
	}, {
		name: "path that needs escaping", method: "GET",
		path:          "/v1/apps/app%20id%2Fwith%25odd:chars@!$&'()*+,;=%C3%BC~/channels/sms",
		signedHeaders: "host;x-amz-date",
	}, {
		name: "non-default port in Host", method: "GET", path: "/v1/apps", host: "pinpoint.otpd.test:8443",
		signedHeaders: "host;x-amz-date",
	}, {
		name: "header with several values", method: "GET", path: "/v1/apps",
		header:        http.Header{"X-Custom": {"one", "  two  words  "}},
		signedHeaders: "host;x-amz-date;x-custom",
	}, {
		// Go's server moves Transfer-Encoding out of r.Header and reports
		// ContentLength -1; the SDK signs neither.
		name: "chunked body", method: "PUT", path: "/v1/apps/0123456789abcdef/channels/sms", body: body,
		header: http.Header{"Content-Type": {"application/json"}}, chunked: true,
		signedHeaders: "content-type;host;x-amz-date",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := newRequest(t, tt.method, srv.URL+tt.path, tt.body, tt.header)
			if tt.host != "" {
				req.Host = tt.host
			}
			if tt.chunked {
				req.ContentLength = 0 // the SDK signs content-length only when positive
			}
			defaultSigning().sign(t, req, tt.body)
			if tt.chunked {
				req.ContentLength = -1 // unknown length: the client sends it chunked
			}
			if got := req.Header.Get("Authorization"); !strings.Contains(got, "SignedHeaders="+tt.signedHeaders+",") {
				t.Fatalf("the SDK did not sign the intended headers:\n got %s\nwant SignedHeaders=%s", got, tt.signedHeaders)
			}
			check(t, req, send(t, req), "", "")
		})
	}
}

// TestSDKSignedChanged signs a request with aws-sdk-go-v2, changes it, and
// checks the verdict: what canonicalization erases is accepted, every
// other change and every bad credential is rejected with AWS's code.
func TestSDKSignedChanged(t *testing.T) {
	srv := newServer(t, newVerifier(fixedClock))
	body := []byte(`{"ReferenceId":"login","Otp":"123456"}`)
	withAuth := func(edit func(string) string) func(*http.Request) {
		return func(req *http.Request) { req.Header.Set("Authorization", edit(req.Header.Get("Authorization"))) }
	}
	replaceAuth := func(old, new string) func(*http.Request) {
		return withAuth(func(a string) string { return strings.Replace(a, old, new, 1) })
	}
	rename := func(from, to string) func(*http.Request) {
		return func(req *http.Request) {
			req.Header[to] = req.Header[from]
			delete(req.Header, from)
		}
	}
	const (
		incomplete   = "IncompleteSignatureException"
		invalid      = "InvalidSignatureException"
		unrecognized = "UnrecognizedClientException"
	)
	tests := []struct {
		name        string
		signing     func(*signing)
		header      http.Header // extra headers, set before signing
		change      func(*http.Request)
		body        []byte // sent instead of the signed body
		wantCode    string // "" means accepted
		wantMessage string // a substring of the message
	}{
		// Changes canonicalization erases.
		{name: "unchanged"},
		{name: "header-name case", change: func(req *http.Request) {
			rename("X-Amz-Date", "x-amz-date")(req)
			rename("Content-Type", "CONTENT-TYPE")(req)
		}},
		{name: "runs of spaces in a header value", change: func(req *http.Request) {
			req.Header["X-Custom"] = []string{"   keep   these    words "}
		}},
		{name: "query parameter order", change: func(req *http.Request) { req.URL.RawQuery = "x=2&page-size=10&x=1" }},
		{name: "query spelled differently", change: func(req *http.Request) { req.URL.RawQuery = "%70age-size=10&x=1&x=%32" }},
		{name: "SignedHeaders in another case and order", change: replaceAuth(
			"SignedHeaders=content-length;content-type;host;x-amz-date;x-custom,",
			"SignedHeaders=Host;X-Amz-Date;x-custom;content-length;Content-Type,")},
		{name: "Authorization without spaces after commas", change: withAuth(func(a string) string {
			return strings.ReplaceAll(a, ", ", ",")
		})},
		{name: "exactly 5 minutes old", signing: func(s *signing) { s.at = testNow.Add(-5 * time.Minute) }},

		// Changes the signature covers.
		{name: "method", change: func(req *http.Request) { req.Method = "PUT" },
			wantCode: invalid, wantMessage: msgMismatch},
		{name: "path", change: func(req *http.Request) { req.URL.Path = "/v1/apps/app-2/verify-otp" },
			wantCode: invalid, wantMessage: msgMismatch},
		{name: "query value", change: func(req *http.Request) { req.URL.RawQuery = "page-size=11&x=1&x=2" },
			wantCode: invalid, wantMessage: msgMismatch},
		{name: "signed header value", change: func(req *http.Request) { req.Header.Set("Content-Type", "text/plain") },
			wantCode: invalid, wantMessage: msgMismatch},
		{name: "host", change: func(req *http.Request) { req.Host = "otpd.example:443" },
			wantCode: invalid, wantMessage: msgMismatch},
		{name: "one body byte", body: []byte(`{"ReferenceId":"login","Otp":"123457"}`),
			wantCode: invalid, wantMessage: msgMismatch},
		{name: "scope date other than X-Amz-Date day",
			change:   func(req *http.Request) { req.Header.Set("X-Amz-Date", "20260315T000000Z") },
			wantCode: invalid, wantMessage: "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20260314' != '20260315'"},

		// Credentials and clock.
		{name: "wrong secret", signing: func(s *signing) { s.creds.SecretAccessKey = "not-the-secret" },
			wantCode: invalid, wantMessage: msgMismatch},
		{name: "unknown key", signing: func(s *signing) { s.creds.AccessKeyID = "AKIDUNKNOWN" },
			wantCode: unrecognized, wantMessage: "The security token included in the request is invalid."},
		{name: "security token", signing: func(s *signing) { s.creds.SessionToken = "FwoGZXIvYXdzEJr" },
			wantCode: unrecognized, wantMessage: "The security token included in the request is invalid."},
		{name: "wrong service scope", signing: func(s *signing) { s.service = "pinpoint" },
			wantCode: invalid, wantMessage: "Credential should be scoped to correct service: 'mobiletargeting'. "},
		{name: "wrong region scope", signing: func(s *signing) { s.region = "eu-west-1" },
			wantCode: invalid, wantMessage: "Credential should be scoped to a valid region. Expected 'us-east-1'."},
		{name: "6 minutes in the past", signing: func(s *signing) { s.at = testNow.Add(-6 * time.Minute) },
			wantCode: invalid, wantMessage: "Signature expired: 20260314T235200Z is now earlier than 20260314T235300Z (20260314T235800Z - 5 min.)"},
		{name: "6 minutes in the future", signing: func(s *signing) { s.at = testNow.Add(6 * time.Minute) },
			wantCode: invalid, wantMessage: "Signature not yet current: 20260315T000400Z is still later than 20260315T000300Z (20260314T235800Z + 5 min.)"},

		// The payload hash header.
		{name: "X-Amz-Content-Sha256 of another body",
			header:   http.Header{"X-Amz-Content-Sha256": {sha256Hex([]byte("{}"))}},
			signing:  func(s *signing) { s.payloadHash = sha256Hex([]byte("{}")) },
			wantCode: invalid, wantMessage: "X-Amz-Content-Sha256 header does not match"},
		{name: "UNSIGNED-PAYLOAD",
			header:   http.Header{"X-Amz-Content-Sha256": {"UNSIGNED-PAYLOAD"}},
			signing:  func(s *signing) { s.payloadHash = "UNSIGNED-PAYLOAD" },
			wantCode: invalid, wantMessage: "otpd requires signed payloads"},

		// Missing and malformed parts.
		{name: "no Authorization", change: func(req *http.Request) { req.Header.Del("Authorization") },
			wantCode: "MissingAuthenticationTokenException", wantMessage: "Missing Authentication Token"},
		{name: "a presigned URL", change: func(req *http.Request) {
			req.Header.Del("Authorization")
			req.URL.RawQuery = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=00"
		}, wantCode: "MissingAuthenticationTokenException", wantMessage: "does not accept signatures in the query string"},
		{name: "other algorithm", change: replaceAuth("AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256"),
			wantCode: incomplete, wantMessage: "algorithm"},
		{name: "no Credential", change: replaceAuth("Credential=", "Credentials="),
			wantCode: incomplete, wantMessage: "Credential"},
		{name: "no SignedHeaders", change: replaceAuth("SignedHeaders=", "Headers="),
			wantCode: incomplete, wantMessage: "SignedHeaders"},
		{name: "no Signature", change: withAuth(func(a string) string { return a[:strings.Index(a, ", Signature=")] }),
			wantCode: incomplete, wantMessage: "'Signature'"},
		{name: "parameter twice", change: withAuth(func(a string) string { return a + ", SignedHeaders=host" }),
			wantCode: incomplete, wantMessage: "more than once"},
		{name: "parameter without value", change: withAuth(func(a string) string { return a + ", Signature" }),
			wantCode: incomplete, wantMessage: "missing equal-sign"},
		{name: "scope with four parts", change: replaceAuth("/aws4_request", ""),
			wantCode: incomplete, wantMessage: "Credential must have the form"},
		{name: "scope date not yyyymmdd", change: replaceAuth("/20260314/", "/2026-03-14/"),
			wantCode: incomplete, wantMessage: "is not yyyymmdd"},
		{name: "scope terminator", change: replaceAuth("/aws4_request", "/aws5_request"),
			wantCode: incomplete, wantMessage: "valid terminator"},
		{name: "host not signed", change: replaceAuth(";host;", ";"),
			wantCode: incomplete, wantMessage: "host"},
		{name: "signed header absent", change: func(req *http.Request) { req.Header.Del("X-Custom") },
			wantCode: incomplete, wantMessage: `"x-custom" is listed in SignedHeaders but absent`},
		{name: "empty signed header name", change: replaceAuth(";host;", ";host;;"),
			wantCode: incomplete, wantMessage: "empty header name"},
		{name: "signature not hex", change: withAuth(func(a string) string { return a[:len(a)-2] + "zz" }),
			wantCode: incomplete, wantMessage: "hexadecimal"},
		{name: "signature too short", change: withAuth(func(a string) string { return a[:len(a)-2] }),
			wantCode: incomplete, wantMessage: "64 hexadecimal digits"},
		{name: "no X-Amz-Date or Date", change: func(req *http.Request) { req.Header.Del("X-Amz-Date") },
			wantCode: incomplete, wantMessage: "'X-Amz-Date' or a 'Date'"},
		{name: "X-Amz-Date not ISO 8601 basic", change: func(req *http.Request) { req.Header.Set("X-Amz-Date", "2026-03-14T23:58:00Z") },
			wantCode: incomplete, wantMessage: "ISO 8601 basic format"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			header := http.Header{"Content-Type": {"application/json"}, "X-Custom": {"keep these words"}}
			for name, values := range tt.header {
				header[name] = values
			}
			req := newRequest(t, "POST", srv.URL+"/v1/apps/app-1/verify-otp?page-size=10&x=1&x=2", body, header)
			s := defaultSigning()
			if tt.signing != nil {
				tt.signing(&s)
			}
			s.sign(t, req, body)
			if tt.change != nil {
				tt.change(req)
			}
			if tt.body != nil {
				setBody(req, tt.body)
			}
			check(t, req, send(t, req), tt.wantCode, tt.wantMessage)
		})
	}
}

// TestPinpointClient calls otpd's test server with the real aws-sdk-go-v2
// Pinpoint client, which adds its own headers and signs with the real clock.
func TestPinpointClient(t *testing.T) {
	srv := newServer(t, newVerifier(nil))
	client := func(secret string) *pinpoint.Client {
		return pinpoint.New(pinpoint.Options{
			Region:           testRegion,
			BaseEndpoint:     aws.String(srv.URL),
			Credentials:      credentials.NewStaticCredentialsProvider(testKeyID, secret, ""),
			RetryMaxAttempts: 1,
		})
	}
	ctx := context.Background()
	if _, err := client(testSecret).GetApps(ctx, &pinpoint.GetAppsInput{PageSize: aws.String("5"), Token: aws.String("a b+c/=")}); err != nil {
		t.Errorf("GetApps: %v", err)
	}
	in := &pinpoint.SendOTPMessageInput{
		ApplicationId: aws.String("app id/ü"),
		SendOTPMessageRequestParameters: &types.SendOTPMessageRequestParameters{
			BrandName: aws.String("otpd"), Channel: aws.String("SMS"), DestinationIdentity: aws.String("+14255550100"),
			OriginationIdentity: aws.String("+14255550199"), ReferenceId: aws.String("login"),
		},
	}
	if _, err := client(testSecret).SendOTPMessage(ctx, in); err != nil {
		t.Errorf("SendOTPMessage: %v", err)
	}
	_, err := client("not-the-secret").GetApps(ctx, &pinpoint.GetAppsInput{})
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "InvalidSignatureException" {
		t.Errorf("GetApps with a wrong secret:\n got %v\nwant InvalidSignatureException", err)
	}
}

// TestContentLengthFromField verifies a request built in process (as in a
// handler test), whose header map has no Content-Length.
func TestContentLengthFromField(t *testing.T) {
	body := []byte(`{"Name":"app"}`)
	req := newRequest(t, "POST", "http://127.0.0.1:8080/v1/apps", body, nil)
	defaultSigning().sign(t, req, body)
	if !strings.Contains(req.Header.Get("Authorization"), "content-length") {
		t.Fatalf("the SDK did not sign content-length: %s", req.Header.Get("Authorization"))
	}
	if _, ok := req.Header["Content-Length"]; ok {
		t.Fatalf("the request unexpectedly has a Content-Length header")
	}
	if id, err := newVerifier(fixedClock).Verify(req, body); err != nil || id != testKeyID {
		t.Errorf("Verify:\n got %q, %v\nwant %q, nil", id, err, testKeyID)
	}
}

// TestErrorType checks that every failure is an *Error with a code.
func TestErrorType(t *testing.T) {
	req := httptest.NewRequest("GET", "/v1/apps", nil)
	_, err := newVerifier(fixedClock).Verify(req, nil)
	var e *Error
	if !errors.As(err, &e) || e.Code != codeMissingToken {
		t.Fatalf("\n got %#v\nwant *Error with Code %s", err, codeMissingToken)
	}
	if got, want := err.Error(), "MissingAuthenticationTokenException: Missing Authentication Token"; got != want {
		t.Errorf("Error()\n got %q\nwant %q", got, want)
	}
}

// TestDeriveSigningKey checks the key derivation against the example in
// AWS's IAM user guide.
func TestDeriveSigningKey(t *testing.T) {
	key := deriveSigningKey("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20150830", "us-east-1", "iam")
	got, want := hex.EncodeToString(key[:]), "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"
	if got != want {
		t.Errorf("\n got %s\nwant %s", got, want)
	}
}

// TestSigningKeyCache checks that the cache stays bounded, tells secrets
// apart, and is safe for concurrent use (run with -race).
func TestSigningKeyCache(t *testing.T) {
	v := newVerifier(fixedClock)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range maxCachedKeys / 2 {
				id := fmt.Sprintf("AKID%d-%d", g, i)
				got := v.signingKey(id, "secret", "20260314").Sum(nil, []byte("string to sign"))
				if want := signWith(deriveSigningKey("secret", "20260314", testRegion, testSvc), "string to sign"); !bytes.Equal(got, want) {
					t.Errorf("signingKey(%s) signs\n %x\nwant %x", id, got, want)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := len(v.keys.keys); n > maxCachedKeys {
		t.Errorf("cache holds %d keys, want at most %d", n, maxCachedKeys)
	}
	old := v.signingKey(testKeyID, "old secret", "20260314").Sum(nil, []byte("string to sign"))
	if rotated := v.signingKey(testKeyID, "new secret", "20260314").Sum(nil, []byte("string to sign")); bytes.Equal(rotated, old) {
		t.Errorf("a rotated secret reused the key derived from the old one")
	}
}

// signWith returns the HMAC-SHA256 of msg under key, keyed anew.
func signWith(key [sha256.Size]byte, msg string) []byte {
	m := hmac.New(sha256.New, key[:])
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// TestVerifyConcurrent verifies requests of several days concurrently
// through the shared cache (run with -race).
func TestVerifyConcurrent(t *testing.T) {
	v := newVerifier(fixedClock)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			s := defaultSigning()
			s.at = testNow.Add(time.Duration(i%3-1) * 4 * time.Minute) // both sides of midnight
			body := fmt.Appendf(nil, `{"n":%d}`, i)
			req := newRequest(t, "POST", "http://127.0.0.1:8080/v1/apps", body, nil)
			s.sign(t, req, body)
			if _, err := v.Verify(req, body); err != nil {
				t.Errorf("request %d: %v", i, err)
			}
		})
	}
	wg.Wait()
}

// serverSideRequest signs a request like the Go SDK does and reads it back
// from its wire form, so that its header map is the one a server sees.
func serverSideRequest(t testing.TB, body []byte) *http.Request {
	header := http.Header{
		"Content-Type":          {"application/json"},
		"Amz-Sdk-Invocation-Id": {"2b6f5d1e-7c0a-4d5e-9a43-2f1e7c3b9d10"},
		"Amz-Sdk-Request":       {"attempt=1; max=3"},
	}
	req := newRequest(t, "POST", "http://127.0.0.1:8080/v1/apps/0123456789abcdef/otp", body, header)
	defaultSigning().sign(t, req, body)
	var wire bytes.Buffer
	if err := req.Write(&wire); err != nil {
		t.Fatalf("writing request: %v", err)
	}
	got, err := http.ReadRequest(bufio.NewReader(&wire))
	if err != nil {
		t.Fatalf("reading request: %v", err)
	}
	return got
}

func BenchmarkVerify(b *testing.B) {
	body := []byte(`{"SendOTPMessageRequestParameters":{"BrandName":"otpd","Channel":"SMS","DestinationIdentity":"+14255550100","OriginationIdentity":"+14255550199","ReferenceId":"login"}}`)
	req := serverSideRequest(b, body)
	v := newVerifier(fixedClock)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(req, body); err != nil {
			b.Fatal(err)
		}
	}
}

// A refusal names the access key the request claimed, for the operator's
// log, once the header could be parsed; a header that cannot be parsed
// names none.
func TestRefusalNamesTheKey(t *testing.T) {
	v := newVerifier(fixedClock)
	body := []byte(`{}`)
	for _, tc := range []struct {
		name, keyID, secret string
		wantKey             string
	}{
		{"wrong secret", testKeyID, "not-the-secret", testKeyID},
		{"unknown key", "OTPDUNKNOWNKEY000001", testSecret, "OTPDUNKNOWNKEY000001"},
	} {
		req := newRequest(t, "POST", "http://otpd.test/v1/apps", body, nil)
		s := defaultSigning()
		s.creds = aws.Credentials{AccessKeyID: tc.keyID, SecretAccessKey: tc.secret}
		s.sign(t, req, body)
		_, err := v.Verify(req, body)
		var refused *Error
		if !errors.As(err, &refused) || refused.AccessKeyID != tc.wantKey {
			t.Errorf("%s: Verify = %#v, want a refusal naming %s", tc.name, err, tc.wantKey)
		}
		if strings.Contains(refused.Message, tc.keyID) {
			t.Errorf("%s: the client's message %q names the key; only the log should", tc.name, refused.Message)
		}
	}
	req := newRequest(t, "POST", "http://otpd.test/v1/apps", body, nil)
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 garbage")
	_, err := v.Verify(req, body)
	var refused *Error
	if !errors.As(err, &refused) || refused.AccessKeyID != "" {
		t.Errorf("an unparsable header: Verify = %#v, want a refusal naming no key", err)
	}
}
