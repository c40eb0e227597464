package twilio

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/otpd/otpd/internal/gsm7"
	"github.com/otpd/otpd/internal/sms"
	"github.com/otpd/otpd/internal/sms/smstest"
)

// The credentials of the tests' Twilio account.
const (
	testAccountSID   = "AC0123456789abcdef0123456789abcdef"
	testAuthToken    = "f00dfeedf00dfeedf00dfeedf00dfeed"
	testAPIKeySID    = "SK00112233445566778899aabbccddeeff"
	testAPIKeySecret = "pS3cr3tOfTheAPIKeyXXXXXXXXXXXXXX"
	testServiceSID   = "MG0123456789abcdef0123456789abcdef"
	// testCallbackURL is the public URL of otpd's callback endpoint.
	testCallbackURL = "https://otpd.example.com/_otpd/callbacks/twilio/main?region=eu"
)

// fakeTwilio is Twilio's Messages resource as the tests need it: it checks
// each request as Twilio does (the path with the account SID, the Basic
// credentials, the form and its fields) and answers with Twilio's bodies.
// A request Twilio would reject fails the test.
type fakeTwilio struct {
	t        *testing.T
	srv      *httptest.Server
	done     chan struct{} // closed when the test ends: releases stalled requests
	user     string        // the Basic credentials it takes
	password string

	mu        sync.Mutex
	behaviour smstest.Behaviour
	reply     func(w http.ResponseWriter) // when set, answers every valid request instead of behaviour
	received  []smstest.Received
	forms     []url.Values // every request that passed the checks
	sids      []string     // the sids of the messages it accepted
}

var _ smstest.Peer = (*fakeTwilio)(nil)

// newFakeTwilio starts a fake Twilio on a TLS test server that takes the
// credentials user and password, stopped when the test ends.
func newFakeTwilio(t *testing.T, user, password string) *fakeTwilio {
	f := &fakeTwilio{t: t, done: make(chan struct{}), user: user, password: password}
	f.srv = startTLS(t, f.serve)
	t.Cleanup(func() { close(f.done) }) // runs before the server's Close
	return f
}

// startTLS starts a TLS test server whose handler is h, closed when the
// test ends. Its log (handshakes cut short when the test closes
// connections) goes to the test's log.
func startTLS(t *testing.T, h http.HandlerFunc) *httptest.Server {
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(testLog{t}, "test server: ", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// testLog writes to a test's log.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func (f *fakeTwilio) SetBehaviour(b smstest.Behaviour) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.behaviour = b
}

func (f *fakeTwilio) Received() []smstest.Received {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]smstest.Received(nil), f.received...)
}

// answerWith makes the fake answer every valid request with reply.
func (f *fakeTwilio) answerWith(reply func(w http.ResponseWriter)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reply = reply
}

// seen returns the forms of the requests that passed the checks, and the
// sids of the messages accepted.
func (f *fakeTwilio) seen() ([]url.Values, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]url.Values(nil), f.forms...), append([]string(nil), f.sids...)
}

// twilioError writes Twilio's error body.
func twilioError(w http.ResponseWriter, status, code int, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"code":      code,
		"message":   message,
		"more_info": "https://www.twilio.com/docs/errors/" + strconv.Itoa(code),
		"status":    status,
	})
}

// reject fails the test and answers as Twilio answers a request that is
// not well formed.
func (f *fakeTwilio) reject(w http.ResponseWriter, status, code int, message, format string, args ...any) {
	f.t.Errorf("Twilio would reject the request: "+format, args...)
	twilioError(w, status, code, message)
}

var (
	e164           = regexp.MustCompile(`^\+[1-9][0-9]{1,14}$`)
	twilioSender   = regexp.MustCompile(`^(\+[1-9][0-9]{1,14}|[0-9]{3,15}|[A-Za-z0-9 ]*[A-Za-z][A-Za-z0-9 ]*)$`)
	serviceSIDForm = regexp.MustCompile(`^MG[0-9a-fA-F]{32}$`)
	knownFields    = map[string]bool{"To": true, "Body": true, "From": true, "MessagingServiceSid": true, "StatusCallback": true}
)

func (f *fakeTwilio) serve(w http.ResponseWriter, r *http.Request) {
	wantPath := "/2010-04-01/Accounts/" + testAccountSID + "/Messages.json"
	if r.URL.Path != wantPath {
		f.reject(w, http.StatusNotFound, 20404, "The requested resource "+r.URL.Path+" was not found",
			"path %q, want %q", r.URL.Path, wantPath)
		return
	}
	if r.Method != http.MethodPost {
		f.reject(w, http.StatusMethodNotAllowed, 20004, "Method not allowed", "method %s, want POST", r.Method)
		return
	}
	if user, password, ok := r.BasicAuth(); !ok || user != f.user || password != f.password {
		f.reject(w, http.StatusUnauthorized, 20003, "Authenticate", "Basic credentials %q:%q (ok %v), want %q:%q",
			user, password, ok, f.user, f.password)
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		f.reject(w, http.StatusBadRequest, 21604, "A 'To' phone number is required.",
			"Content-Type %q, want application/x-www-form-urlencoded", r.Header.Get("Content-Type"))
		return
	}
	if r.URL.RawQuery != "" {
		f.reject(w, http.StatusBadRequest, 21604, "A 'To' phone number is required.", "a query %q; the fields belong in the body", r.URL.RawQuery)
		return
	}
	if err := r.ParseForm(); err != nil {
		f.reject(w, http.StatusBadRequest, 21604, "A 'To' phone number is required.", "parsing the form: %v", err)
		return
	}
	form := r.PostForm
	for name, values := range form {
		if !knownFields[name] {
			f.reject(w, http.StatusBadRequest, 21604, "Unknown parameter", "unexpected field %s=%q", name, values)
			return
		}
		if len(values) != 1 {
			f.reject(w, http.StatusBadRequest, 21604, "Repeated parameter", "field %s given %d times", name, len(values))
			return
		}
	}
	to, body, from, service := form.Get("To"), form.Get("Body"), form.Get("From"), form.Get("MessagingServiceSid")
	switch {
	case to == "":
		f.reject(w, http.StatusBadRequest, 21604, "A 'To' phone number is required.", "no To")
		return
	case !e164.MatchString(to):
		f.reject(w, http.StatusBadRequest, 21211, "Invalid 'To' Phone Number: "+to, "To %q is not E.164", to)
		return
	case body == "":
		f.reject(w, http.StatusBadRequest, 21602, "Message body is required.", "no Body")
		return
	case !utf8.ValidString(body):
		f.reject(w, http.StatusBadRequest, 21602, "Message body is required.", "Body is not UTF-8")
		return
	case utf8.RuneCountInString(body) > 1600:
		f.reject(w, http.StatusBadRequest, 21617, "The concatenated message body exceeds the 1600 character limit.",
			"Body of %d characters", utf8.RuneCountInString(body))
		return
	case from == "" && service == "":
		f.reject(w, http.StatusBadRequest, 21603, "A 'From' phone number is required.", "neither From nor MessagingServiceSid")
		return
	case from != "" && service != "":
		f.reject(w, http.StatusBadRequest, 21603, "From and MessagingServiceSid", "both From %q and MessagingServiceSid %q; the carrier sends one", from, service)
		return
	case from != "" && !twilioSender.MatchString(from):
		f.reject(w, http.StatusBadRequest, 21212, "Invalid From Number (caller ID): "+from, "From %q is no sender Twilio takes", from)
		return
	case service != "" && !serviceSIDForm.MatchString(service):
		f.reject(w, http.StatusNotFound, 20404, "The requested resource was not found", "MessagingServiceSid %q", service)
		return
	}
	if cb := form.Get("StatusCallback"); cb != "" {
		if u, err := url.Parse(cb); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
			f.reject(w, http.StatusBadRequest, 21609, "Invalid StatusCallback URL", "StatusCallback %q", cb)
			return
		}
	}

	f.mu.Lock()
	b, reply := f.behaviour, f.reply
	f.forms = append(f.forms, form)
	sid := ""
	if reply == nil && b == smstest.Accept {
		sid = newSID("SM")
		f.sids = append(f.sids, sid)
		f.received = append(f.received, smstest.Received{From: from, To: to, Text: body})
	}
	f.mu.Unlock()

	switch {
	case reply != nil:
		reply(w)
	case b == smstest.Accept:
		writeResource(w, sid, form)
	case b == smstest.RejectPermanent:
		twilioError(w, http.StatusBadRequest, 21211, "The 'To' number "+to+" is not a valid phone number.")
	case b == smstest.FailTemporary:
		twilioError(w, http.StatusServiceUnavailable, 20503, "Service unavailable")
	case b == smstest.Stall:
		select {
		case <-r.Context().Done():
		case <-f.done:
		}
		// Let go without an answer: a handler that returns would answer
		// 200, which could still reach the carrier.
		panic(http.ErrAbortHandler)
	default:
		f.t.Errorf("the fake Twilio was given %v", b)
	}
}

// newSID returns a fresh Twilio SID with prefix, e.g. "SM" and 32 hex
// digits.
func newSID(prefix string) string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return prefix + hex.EncodeToString(b[:])
}

// writeResource answers 201 Created with the Message resource Twilio
// creates for form.
func writeResource(w http.ResponseWriter, sid string, form url.Values) {
	now := time.Now().UTC().Format(time.RFC1123Z)
	base := "/2010-04-01/Accounts/" + testAccountSID + "/Messages/" + sid
	var from, service any // JSON null unless given
	status, segments := "queued", "1"
	if s := form.Get("MessagingServiceSid"); s != "" {
		// Twilio picks the sender later: no from yet, no segments.
		service, status, segments = s, "accepted", "0"
	} else {
		from = form.Get("From")
		_, n := gsm7.Segments(form.Get("Body"))
		segments = strconv.Itoa(n)
	}
	resource := map[string]any{
		"account_sid":           testAccountSID,
		"api_version":           "2010-04-01",
		"body":                  form.Get("Body"),
		"date_created":          now,
		"date_sent":             nil,
		"date_updated":          now,
		"direction":             "outbound-api",
		"error_code":            nil,
		"error_message":         nil,
		"from":                  from,
		"messaging_service_sid": service,
		"num_media":             "0",
		"num_segments":          segments,
		"price":                 nil,
		"price_unit":            "USD",
		"sid":                   sid,
		"status":                status,
		"subresource_uris":      map[string]string{"media": base + "/Media.json"},
		"to":                    form.Get("To"),
		"uri":                   base + ".json",
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(resource)
}

// newCarrier returns a carrier talking to f with the tests' account and
// auth token, cfg giving the rest.
func newCarrier(t *testing.T, f *fakeTwilio, cfg Config) *Carrier {
	t.Helper()
	cfg.AccountSID = testAccountSID
	if cfg.AuthToken == "" && cfg.APIKeySID == "" {
		cfg.AuthToken = testAuthToken
	}
	cfg.BaseURL = f.srv.URL
	cfg.Client = f.srv.Client()
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// message returns the message the tests send.
func message() sms.Message {
	return sms.Message{
		ID:          "6f1c1d7e-2a4b-4c3d-9e8f-0123456789ab",
		AppID:       "0123456789abcdef0123456789abcdef",
		From:        "+18555550142",
		To:          "+14255550142",
		Text:        "This is your One Time Password: 123456 from ExampleCorp",
		Language:    "en-US",
		ReferenceID: "login-42",
	}
}

func TestConformance(t *testing.T) {
	smstest.Run(t, func(t *testing.T) (sms.Carrier, smstest.Peer) {
		f := newFakeTwilio(t, testAccountSID, testAuthToken)
		return newCarrier(t, f, Config{StatusCallbackURL: testCallbackURL}), f
	})
}

func TestConformanceWithAPIKey(t *testing.T) {
	smstest.Run(t, func(t *testing.T) (sms.Carrier, smstest.Peer) {
		f := newFakeTwilio(t, testAPIKeySID, testAPIKeySecret)
		return newCarrier(t, f, Config{APIKeySID: testAPIKeySID, APIKeySecret: testAPIKeySecret}), f
	})
}

func TestRequestAsTwilioSeesIt(t *testing.T) {
	f := newFakeTwilio(t, testAccountSID, testAuthToken)
	c := newCarrier(t, f, Config{StatusCallbackURL: testCallbackURL, From: "+18555550100"})
	m := message()
	r, err := c.Send(t.Context(), m)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	forms, sids := f.seen()
	if len(forms) != 1 || len(sids) != 1 {
		t.Fatalf("Twilio saw %d requests and accepted %d messages, want 1 and 1", len(forms), len(sids))
	}
	want := url.Values{
		"To":             {m.To},
		"Body":           {m.Text},
		"From":           {m.From}, // the message's own, not Config.From
		"StatusCallback": {testCallbackURL},
	}
	if got := forms[0]; !equalForms(got, want) {
		t.Errorf("the form was %v, want %v", got, want)
	}
	if r.CarrierMessageID != sids[0] || !strings.HasPrefix(r.CarrierMessageID, "SM") {
		t.Errorf("CarrierMessageID = %q, want the sid Twilio gave, %q", r.CarrierMessageID, sids[0])
	}
}

// equalForms reports whether a and b hold the same fields and values.
func equalForms(a, b url.Values) bool { return a.Encode() == b.Encode() }

func TestFromFallsBackToConfig(t *testing.T) {
	f := newFakeTwilio(t, testAccountSID, testAuthToken)
	c := newCarrier(t, f, Config{From: "ExampleCo"})
	m := message()
	m.From = ""
	if _, err := c.Send(t.Context(), m); err != nil {
		t.Fatalf("Send: %v", err)
	}
	forms, _ := f.seen()
	if len(forms) != 1 {
		t.Fatalf("Twilio saw %d requests, want 1", len(forms))
	}
	if got := forms[0].Get("From"); got != "ExampleCo" {
		t.Errorf("From = %q, want Config.From %q", got, "ExampleCo")
	}
	if _, ok := forms[0]["StatusCallback"]; ok {
		t.Errorf("the form has a StatusCallback %q, want none without StatusCallbackURL", forms[0].Get("StatusCallback"))
	}
}

func TestNoSenderAnywhere(t *testing.T) {
	f := newFakeTwilio(t, testAccountSID, testAuthToken)
	c := newCarrier(t, f, Config{})
	m := message()
	m.From = ""
	_, err := c.Send(t.Context(), m)
	ce := refusalOf(t, err)
	if ce.Status != sms.Permanent || !strings.Contains(ce.Message, "no origination identity") {
		t.Errorf("got Status %v, Message %q; want %v, saying there is no origination identity", ce.Status, ce.Message, sms.Permanent)
	}
	if forms, _ := f.seen(); len(forms) != 0 {
		t.Errorf("Twilio saw %d requests, want none", len(forms))
	}
}

func TestMessagingService(t *testing.T) {
	f := newFakeTwilio(t, testAccountSID, testAuthToken)
	c := newCarrier(t, f, Config{MessagingServiceSID: testServiceSID, StatusCallbackURL: testCallbackURL})
	m := message()
	r, err := c.Send(t.Context(), m)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	forms, sids := f.seen()
	if len(forms) != 1 {
		t.Fatalf("Twilio saw %d requests, want 1", len(forms))
	}
	want := url.Values{
		"To":                  {m.To},
		"Body":                {m.Text},
		"MessagingServiceSid": {testServiceSID}, // and no From: the service picks the sender
		"StatusCallback":      {testCallbackURL},
	}
	if got := forms[0]; !equalForms(got, want) {
		t.Errorf("the form was %v, want %v", got, want)
	}
	if r.CarrierMessageID != sids[0] {
		t.Errorf("CarrierMessageID = %q, want %q", r.CarrierMessageID, sids[0])
	}
}

func TestAPIKeyAuthentication(t *testing.T) {
	// The fake takes only the API key; the account SID stays in the path.
	f := newFakeTwilio(t, testAPIKeySID, testAPIKeySecret)
	c := newCarrier(t, f, Config{
		AuthToken: testAuthToken, // for callbacks only
		APIKeySID: testAPIKeySID, APIKeySecret: testAPIKeySecret,
		StatusCallbackURL: testCallbackURL,
	})
	if _, err := c.Send(t.Context(), message()); err != nil {
		t.Fatalf("Send with an API key: %v", err)
	}
	if forms, _ := f.seen(); len(forms) != 1 {
		t.Errorf("Twilio saw %d requests, want 1", len(forms))
	}
}

// refusalOf returns the *sms.Error in err, failing the test if there is
// none.
func refusalOf(t *testing.T, err error) *sms.Error {
	t.Helper()
	var ce *sms.Error
	if !errors.As(err, &ce) {
		t.Fatalf("Send error = %v (%T), want one in which errors.As finds an *sms.Error", err, err)
	}
	return ce
}

func TestErrorMapping(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		code   int    // Twilio's error code; 0 for a body that is not Twilio's JSON
		body   string // the body when code is 0
		want   sms.Status
		says   []string // in the Message
	}{
		{"invalid To", 400, 21211, "", sms.Permanent, []string{"HTTP 400", "Twilio error 21211", "not a valid phone number", "https://www.twilio.com/docs/errors/21211"}},
		{"region not enabled", 400, 21408, "", sms.Permanent, []string{"21408", "region", "Geo Permissions"}},
		{"not a mobile number", 400, 21614, "", sms.Permanent, []string{"21614", "not a mobile number"}},
		{"From not capable", 400, 21606, "", sms.NotPermitted, []string{"21606", "'From' number cannot send"}},
		{"From not valid", 400, 21212, "", sms.NotPermitted, []string{"21212", "'From' is not a valid"}},
		{"trial account", 400, 21608, "", sms.NotPermitted, []string{"21608", "verified numbers"}},
		{"text too long", 400, 21617, "", sms.Permanent, []string{"21617", "1,600"}},
		{"authentication", 401, 20003, "", sms.NotPermitted, []string{"HTTP 401", "20003", "authentication failed"}},
		{"wrong account", 404, 20404, "", sms.NotPermitted, []string{"HTTP 404", "20404", "AccountSID"}},
		{"HTTP 403 without a code", 403, 0, "", sms.NotPermitted, []string{"HTTP 403", "otpd's account", "another carrier"}},
		{"unknown 4xx code", 400, 21999, "", sms.Permanent, []string{"21999", "Twilio says something new about +14255550142"}},
		{"opted out", 400, 21610, "", sms.OptedOut, []string{"opted out", "START", "21610"}},
		{"HTTP 429", 429, 20429, "", sms.Throttled, []string{"throttling", "HTTP 429", "20429", "too many requests"}},
		{"HTTP 429 without a body", 429, 0, "", sms.Throttled, []string{"throttling", "HTTP 429"}},
		{"rate limit between two numbers", 400, 14107, "", sms.Throttled, []string{"throttling", "14107"}},
		{"queue full", 429, 21611, "", sms.Throttled, []string{"throttling", "21611", "queue"}},
		{"maintenance", 400, 21730, "", sms.Temporary, []string{"maintenance", "21730"}},
		{"HTTP 408", 408, 0, "", sms.Temporary, []string{"timed out", "HTTP 408"}},
		{"internal error", 500, 20500, "", sms.Temporary, []string{"Twilio failed", "HTTP 500", "20500"}},
		{"service unavailable", 503, 20503, "", sms.Temporary, []string{"HTTP 503", "20503", "temporarily unavailable"}},
		{"bad gateway from a proxy", 502, 0, "<html><body><h1>502 Bad Gateway</h1></body></html>", sms.Temporary, []string{"HTTP 502 Bad Gateway"}},
		{"redirect", 307, 0, "", sms.Temporary, []string{"redirect", "BaseURL"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeTwilio(t, testAccountSID, testAuthToken)
			f.answerWith(func(w http.ResponseWriter) {
				switch {
				case tc.code != 0:
					twilioError(w, tc.status, tc.code, "Twilio says something new about +14255550142")
				case tc.status >= 300 && tc.status < 400:
					w.Header().Set("Location", "https://elsewhere.example.com/")
					w.WriteHeader(tc.status)
				default:
					w.Header().Set("Content-Type", "text/html")
					w.WriteHeader(tc.status)
					io.WriteString(w, tc.body)
				}
			})
			m := message()
			_, err := newCarrier(t, f, Config{}).Send(t.Context(), m)
			ce := refusalOf(t, err)
			if ce.Status != tc.want || ce.Code != tc.status {
				t.Errorf("got Status %v, Code %d (%q); want Status %v, Code %d", ce.Status, ce.Code, ce.Message, tc.want, tc.status)
			}
			if want := tc.status == http.StatusUnauthorized; ce.Credentials != want {
				t.Errorf("Credentials = %v, want %v (set when Twilio refused otpd's credentials)", ce.Credentials, want)
			}
			for _, want := range tc.says {
				if !strings.Contains(ce.Message, want) {
					t.Errorf("Message = %q, want it to say %q", ce.Message, want)
				}
			}
			for _, s := range []string{ce.Message, err.Error()} {
				if strings.Contains(s, m.Text) || strings.Contains(s, "123456") {
					t.Errorf("the refusal %q repeats the text or its code", s)
				}
			}
		})
	}
}

// TestRefusalRedactsTheText has Twilio echo the text in its error, as an
// error message might.
func TestRefusalRedactsTheText(t *testing.T) {
	m := message()
	m.Text = "Esta é a sua senha de uso único: 482913 de Açaí"
	for _, said := range []string{
		"Bad body: " + m.Text,
		"Bad body: " + url.QueryEscape(m.Text),
		"code 482913 rejected",
		"Bad body:\n" + strings.ReplaceAll(m.Text, " ", "\r\n"),
	} {
		f := newFakeTwilio(t, testAccountSID, testAuthToken)
		f.answerWith(func(w http.ResponseWriter) { twilioError(w, http.StatusBadRequest, 21999, said) })
		_, err := newCarrier(t, f, Config{}).Send(t.Context(), m)
		ce := refusalOf(t, err)
		for _, s := range []string{ce.Message, err.Error()} {
			if strings.Contains(s, "482913") || strings.Contains(s, "senha") {
				t.Errorf("Twilio said %q; the refusal repeats the text or its code: %q", said, s)
			}
		}
		if !strings.Contains(ce.Message, "[redacted]") {
			t.Errorf("Twilio said %q; Message = %q, want it to show what Twilio said, redacted", said, ce.Message)
		}
	}
}

func TestThrottledPassesRetryAfter(t *testing.T) {
	f := newFakeTwilio(t, testAccountSID, testAuthToken)
	f.answerWith(func(w http.ResponseWriter) {
		w.Header().Set("Retry-After", "7")
		twilioError(w, http.StatusTooManyRequests, 20429, "Too Many Requests")
	})
	_, err := newCarrier(t, f, Config{}).Send(t.Context(), message())
	ce := refusalOf(t, err)
	if ce.Status != sms.Throttled || !strings.Contains(ce.Message, "Retry-After: 7") {
		t.Errorf("got Status %v, Message %q; want %v with Retry-After: 7", ce.Status, ce.Message, sms.Throttled)
	}
}

func TestAcceptedWithoutAResource(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer func(http.ResponseWriter)
	}{
		{"a sid that is not one", func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, `{"sid": "not\na sid"}`)
		}},
		{"a body cut short", func(w http.ResponseWriter) {
			w.Header().Set("Content-Length", "200")
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, `{"sid": "SM`)
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler) // the connection ends mid-body
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeTwilio(t, testAccountSID, testAuthToken)
			f.answerWith(tc.answer)
			var log bytes.Buffer
			m := message()
			r, err := newCarrier(t, f, Config{Logger: slog.New(slog.NewTextHandler(&log, nil))}).Send(t.Context(), m)
			if err != nil {
				t.Fatalf("Send to a Twilio that answered 201: %v, want no error", err)
			}
			if r.CarrierMessageID != "" {
				t.Errorf("CarrierMessageID = %q, want none", r.CarrierMessageID)
			}
			if got := log.String(); !strings.Contains(got, "level=WARN") || !strings.Contains(got, "no message SID") ||
				!strings.Contains(got, "message_id="+m.ID) || !strings.Contains(got, "status=201") {
				t.Errorf("log = %q, want a warning that names the message and says it has no SID", got)
			}
		})
	}
}

func TestTimeoutMayStillDeliver(t *testing.T) {
	f := newFakeTwilio(t, testAccountSID, testAuthToken)
	f.SetBehaviour(smstest.Stall)
	c := newCarrier(t, f, Config{Timeout: 200 * time.Millisecond})
	start := time.Now()
	_, err := c.Send(context.Background(), message()) // no deadline: Config.Timeout applies
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("Send returned after %v, want about the Timeout of 200ms", elapsed)
	}
	ce := refusalOf(t, err)
	if ce.Status != sms.Temporary || ce.Code != http.StatusGatewayTimeout || !strings.Contains(ce.Message, "may still deliver") {
		t.Errorf("got Status %v, Code %d, Message %q; want %v, 504, saying Twilio may still deliver", ce.Status, ce.Code, ce.Message, sms.Temporary)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("errors.Is(%v, context.DeadlineExceeded) = false, want true", err)
	}
}

func TestCancelled(t *testing.T) {
	f := newFakeTwilio(t, testAccountSID, testAuthToken)
	f.SetBehaviour(smstest.Stall)
	c := newCarrier(t, f, Config{})
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(100*time.Millisecond, cancel)
	_, err := c.Send(ctx, message())
	ce := refusalOf(t, err)
	if ce.Status != sms.Temporary || !strings.Contains(ce.Message, "cancelled") {
		t.Errorf("got Status %v, Message %q; want %v, saying the send was cancelled", ce.Status, ce.Message, sms.Temporary)
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("errors.Is(%v, context.Canceled) = false, want true", err)
	}
}

func TestUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there any more
	c, err := New(Config{AccountSID: testAccountSID, AuthToken: testAuthToken, BaseURL: "https://" + addr})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Send(t.Context(), message())
	ce := refusalOf(t, err)
	if ce.Status != sms.Temporary || !strings.Contains(ce.Message, "could not be reached") {
		t.Errorf("got Status %v, Message %q; want %v, could not be reached", ce.Status, ce.Message, sms.Temporary)
	}
	if !strings.Contains(err.Error(), "refused") {
		t.Errorf("error = %q, want the cause (connection refused) for the operator's log", err)
	}
}

func TestRedirectIsNotFollowed(t *testing.T) {
	var hits sync.Map
	elsewhere := startTLS(t, func(w http.ResponseWriter, r *http.Request) { hits.Store(r.URL.Path, true) })
	f := newFakeTwilio(t, testAccountSID, testAuthToken)
	f.answerWith(func(w http.ResponseWriter) {
		w.Header().Set("Location", elsewhere.URL+"/stolen")
		w.WriteHeader(http.StatusTemporaryRedirect)
	})
	_, err := newCarrier(t, f, Config{}).Send(t.Context(), message())
	if ce := refusalOf(t, err); ce.Status != sms.Temporary || ce.Code != http.StatusTemporaryRedirect {
		t.Errorf("got Status %v, Code %d; want %v, 307", ce.Status, ce.Code, sms.Temporary)
	}
	if _, ok := hits.Load("/stolen"); ok {
		t.Error("the carrier followed the redirect and posted the message elsewhere")
	}
}

// twilioSignature computes X-Twilio-Signature as Twilio's security
// documentation describes it, independently of Signature: the URL, then
// each POST parameter's name and value in the order of the names,
// HMAC-SHA1 with the auth token, base64.
func twilioSignature(authToken, fullURL string, params url.Values) string {
	names := make([]string, 0, len(params))
	for name := range params {
		names = append(names, name)
	}
	sort.Strings(names)
	data := fullURL
	for _, name := range names {
		for _, v := range params[name] {
			data += name + v
		}
	}
	mac := hmac.New(sha1.New, []byte(authToken))
	mac.Write([]byte(data))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

func TestSignatureMatchesTwilioDocumentedExample(t *testing.T) {
	// The worked example of Twilio's webhook security documentation.
	fullURL := "https://mycompany.com/myapp.php?foo=1&bar=2"
	params := url.Values{
		"CallSid": {"CA1234567890ABCDE"},
		"Caller":  {"+12349013030"},
		"Digits":  {"1234"},
		"From":    {"+12349013030"},
		"To":      {"+18005551212"},
	}
	const want = "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
	if got := Signature("12345", fullURL, params); got != want {
		t.Errorf("Signature of Twilio's example = %q, want %q", got, want)
	}
	if got := twilioSignature("12345", fullURL, params); got != want {
		t.Errorf("the test's own signature of Twilio's example = %q, want %q", got, want)
	}
}

// recorder is a sms.Reporter that keeps every report.
type recorder struct {
	mu      sync.Mutex
	reports []sms.DeliveryReport
}

func (r *recorder) Report(_ context.Context, d sms.DeliveryReport) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reports = append(r.reports, d)
}

func (r *recorder) got() []sms.DeliveryReport {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]sms.DeliveryReport(nil), r.reports...)
}

// callbackAt is the time the tests' carriers see status callbacks arrive.
var callbackAt = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

// newCallbackCarrier returns a carrier with the tests' status callback
// URL, reporting to rec.
func newCallbackCarrier(t *testing.T, callbackURL string, rec sms.Reporter) *Carrier {
	t.Helper()
	c, err := New(Config{Name: "twilio-main", AccountSID: testAccountSID, AuthToken: testAuthToken,
		StatusCallbackURL: callbackURL, Reporter: rec})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	c.now = func() time.Time { return callbackAt.In(time.FixedZone("CET", 3600)) }
	return c
}

// statusCallback returns the form of Twilio's status callback for the
// message sid reaching status.
func statusCallback(sid, status, errorCode string) url.Values {
	p := url.Values{
		"AccountSid":    {testAccountSID},
		"ApiVersion":    {"2010-04-01"},
		"From":          {"+18555550142"},
		"MessageSid":    {sid},
		"MessageStatus": {status},
		"SmsSid":        {sid},
		"SmsStatus":     {status},
		"To":            {"+14255550142"},
	}
	if errorCode != "" {
		p.Set("ErrorCode", errorCode)
	}
	return p
}

// postCallback serves a status callback with body params and headers
// through h and returns the response.
func postCallback(h http.Handler, params url.Values, signature string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, testCallbackURL, strings.NewReader(params.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("I-Twilio-Idempotency-Token", "aaaa-bbbb")
	if signature != "" {
		req.Header.Set(SignatureHeader, signature)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func TestCallbackReportsEachStatus(t *testing.T) {
	for _, tc := range []struct {
		status, errorCode string
		want              sms.DeliveryState
		wantCode          string
	}{
		{"queued", "", sms.Pending, "queued"},
		{"accepted", "", sms.Pending, "accepted"},
		{"sending", "", sms.Pending, "sending"},
		{"sent", "", sms.Pending, "sent"},
		{"delivered", "", sms.Delivered, "delivered"},
		{"undelivered", "30003", sms.Undelivered, "30003"},
		{"failed", "30008", sms.Failed, "30008"},
		{"failed", "", sms.Failed, "failed"},
	} {
		t.Run(tc.status+tc.errorCode, func(t *testing.T) {
			rec := &recorder{}
			c := newCallbackCarrier(t, testCallbackURL, rec)
			sid := newSID("SM")
			params := statusCallback(sid, tc.status, tc.errorCode)
			w := postCallback(c.CallbackHandler(), params, twilioSignature(testAuthToken, testCallbackURL, params))
			if w.Code != http.StatusNoContent {
				t.Fatalf("status callback %q answered %d %q, want 204", tc.status, w.Code, w.Body)
			}
			want := sms.DeliveryReport{Carrier: "twilio-main", CarrierMessageID: sid, State: tc.want, Code: tc.wantCode, At: callbackAt}
			got := rec.got()
			if len(got) != 1 || got[0] != want {
				t.Errorf("reports = %+v, want [%+v]", got, want)
			}
		})
	}
}

func TestCallbackRefusesABadSignature(t *testing.T) {
	sid := newSID("SM")
	params := statusCallback(sid, "delivered", "")
	tampered := statusCallback(sid, "undelivered", "30003")
	added := statusCallback(sid, "delivered", "")
	added.Set("Extra", "1")
	good := twilioSignature(testAuthToken, testCallbackURL, params)
	for _, tc := range []struct {
		name      string
		params    url.Values
		signature string
	}{
		{"no signature", params, ""},
		{"another auth token", params, twilioSignature("0123456789abcdef0123456789abcdef", testCallbackURL, params)},
		{"another URL", params, twilioSignature(testAuthToken, "https://otpd.example.com/_otpd/callbacks/twilio/main", params)},
		{"another host", params, twilioSignature(testAuthToken, "https://evil.example.com/_otpd/callbacks/twilio/main?region=eu", params)},
		{"http instead of https", params, twilioSignature(testAuthToken, strings.Replace(testCallbackURL, "https:", "http:", 1), params)},
		{"a tampered status", tampered, good},
		{"an added parameter", added, good},
		{"one character short", params, good[:len(good)-1]},
		{"not base64", params, "not base64!"},
		{"the signature in hex", params, hex.EncodeToString([]byte(good))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			c := newCallbackCarrier(t, testCallbackURL, rec)
			w := postCallback(c.CallbackHandler(), tc.params, tc.signature)
			if w.Code != http.StatusForbidden {
				t.Errorf("answered %d %q, want 403", w.Code, w.Body)
			}
			if got := rec.got(); len(got) != 0 {
				t.Errorf("reports = %+v, want none", got)
			}
		})
	}
}

func TestCallbackURLWithOrWithoutDefaultPort(t *testing.T) {
	sid := newSID("SM")
	params := statusCallback(sid, "delivered", "")
	for _, tc := range []struct {
		configured, signed string
		ok                 bool
	}{
		{"https://otpd.example.com/cb", "https://otpd.example.com/cb", true},
		{"https://otpd.example.com/cb", "https://otpd.example.com:443/cb", true},
		{"https://otpd.example.com:443/cb", "https://otpd.example.com/cb", true},
		{"http://otpd.example.com/cb", "http://otpd.example.com:80/cb", true},
		{"https://otpd.example.com:8443/cb", "https://otpd.example.com:8443/cb", true},
		{"https://otpd.example.com:8443/cb", "https://otpd.example.com/cb", false},
		{"https://otpd.example.com/cb", "https://otpd.example.com:8443/cb", false},
	} {
		rec := &recorder{}
		c := newCallbackCarrier(t, tc.configured, rec)
		w := postCallback(c.CallbackHandler(), params, twilioSignature(testAuthToken, tc.signed, params))
		if got := w.Code == http.StatusNoContent; got != tc.ok {
			t.Errorf("StatusCallbackURL %q, signed over %q: answered %d, want accepted %v", tc.configured, tc.signed, w.Code, tc.ok)
		}
	}
}

func TestCallbackRefusesMalformedRequests(t *testing.T) {
	rec := &recorder{}
	c := newCallbackCarrier(t, testCallbackURL, rec)
	h := c.CallbackHandler()
	sign := func(p url.Values) string { return twilioSignature(testAuthToken, testCallbackURL, p) }

	get := httptest.NewRequest(http.MethodGet, testCallbackURL, nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, get)
	if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != http.MethodPost {
		t.Errorf("GET answered %d with Allow %q, want 405 with Allow POST", w.Code, w.Header().Get("Allow"))
	}

	params := statusCallback(newSID("SM"), "delivered", "")
	req := httptest.NewRequest(http.MethodPost, testCallbackURL, strings.NewReader(`{"MessageSid":"SM1"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(SignatureHeader, sign(params))
	w = httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusUnsupportedMediaType {
		t.Errorf("a JSON body answered %d, want 415", w.Code)
	}

	huge := statusCallback(newSID("SM"), "delivered", "")
	huge.Set("Padding", strings.Repeat("x", 70<<10))
	if w := postCallback(h, huge, sign(huge)); w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("a 70 KiB body answered %d, want 413", w.Code)
	}

	noSID := statusCallback("", "delivered", "")
	noSID.Del("MessageSid")
	noSID.Del("SmsSid")
	if w := postCallback(h, noSID, sign(noSID)); w.Code != http.StatusBadRequest {
		t.Errorf("a callback without MessageSid answered %d, want 400", w.Code)
	}

	unknown := statusCallback(newSID("SM"), "received", "")
	if w := postCallback(h, unknown, sign(unknown)); w.Code != http.StatusNoContent {
		t.Errorf("a callback with status received answered %d, want 204", w.Code)
	}
	if got := rec.got(); len(got) != 0 {
		t.Errorf("reports = %+v, want none", got)
	}
}

func TestCallbackWithoutStatusCallbackURLRefusesAll(t *testing.T) {
	rec := &recorder{}
	c, err := New(Config{AccountSID: testAccountSID, AuthToken: testAuthToken, Reporter: rec})
	if err != nil {
		t.Fatal(err)
	}
	params := statusCallback(newSID("SM"), "delivered", "")
	if w := postCallback(c.CallbackHandler(), params, twilioSignature(testAuthToken, testCallbackURL, params)); w.Code != http.StatusForbidden {
		t.Errorf("answered %d, want 403: with no StatusCallbackURL nothing can be checked", w.Code)
	}
	if got := rec.got(); len(got) != 0 {
		t.Errorf("reports = %+v, want none", got)
	}
}

func TestCallbackWithoutReporter(t *testing.T) {
	c := newCallbackCarrier(t, testCallbackURL, nil)
	params := statusCallback(newSID("SM"), "delivered", "")
	if w := postCallback(c.CallbackHandler(), params, twilioSignature(testAuthToken, testCallbackURL, params)); w.Code != http.StatusNoContent {
		t.Errorf("answered %d, want 204 (the report is dropped)", w.Code)
	}
}

// TestStatusCallbackRoundTrip sends a message, then has Twilio call the
// StatusCallback it was given, over HTTPS, for the sid it returned.
func TestStatusCallbackRoundTrip(t *testing.T) {
	rec := &recorder{}
	var c *Carrier
	otpd := startTLS(t, func(w http.ResponseWriter, r *http.Request) { c.CallbackHandler().ServeHTTP(w, r) })
	f := newFakeTwilio(t, testAPIKeySID, testAPIKeySecret)
	c = newCarrier(t, f, Config{
		AuthToken: testAuthToken, APIKeySID: testAPIKeySID, APIKeySecret: testAPIKeySecret,
		StatusCallbackURL: testCallbackURL, Reporter: rec,
	})
	receipt, err := c.Send(t.Context(), message())
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	forms, _ := f.seen()
	callback := forms[0].Get("StatusCallback")
	for _, status := range []string{"sent", "delivered"} {
		params := statusCallback(receipt.CarrierMessageID, status, "")
		// Twilio signs the URL it was given; the request reaches otpd
		// through whatever proxy serves that URL, here the test server.
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, otpd.URL+"/_otpd/callbacks/twilio/main?region=eu", strings.NewReader(params.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set(SignatureHeader, twilioSignature(testAuthToken, callback, params))
		resp, err := otpd.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Errorf("status callback %s answered %d, want 204", status, resp.StatusCode)
		}
	}
	got := rec.got()
	if len(got) != 2 || got[0].State != sms.Pending || got[1].State != sms.Delivered ||
		got[0].CarrierMessageID != receipt.CarrierMessageID || got[1].CarrierMessageID != receipt.CarrierMessageID {
		t.Errorf("reports = %+v, want Pending then Delivered for %s", got, receipt.CarrierMessageID)
	}
}

func TestNewRefuses(t *testing.T) {
	good := Config{AccountSID: testAccountSID, AuthToken: testAuthToken}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want []string
	}{
		{"no account", func(c *Config) { c.AccountSID = "" }, []string{"AccountSID is required"}},
		{"account SID of another kind", func(c *Config) { c.AccountSID = testAPIKeySID }, []string{"not an account SID"}},
		{"no credentials", func(c *Config) { c.AuthToken = "" }, []string{"AuthToken is required (or APIKeySID and APIKeySecret)"}},
		{"auth token with a newline", func(c *Config) { c.AuthToken = testAuthToken + "\n" }, []string{"AuthToken is not an auth token", "33 characters"}},
		{"API key SID alone", func(c *Config) { c.APIKeySID = testAPIKeySID }, []string{"without APIKeySecret"}},
		{"API key secret alone", func(c *Config) { c.APIKeySecret = testAPIKeySecret }, []string{"without APIKeySID"}},
		{"API key SID of another kind", func(c *Config) { c.APIKeySID, c.APIKeySecret = testAccountSID, testAPIKeySecret }, []string{"not an API key SID"}},
		{"callbacks without auth token", func(c *Config) {
			c.AuthToken, c.APIKeySID, c.APIKeySecret, c.StatusCallbackURL = "", testAPIKeySID, testAPIKeySecret, testCallbackURL
		}, []string{"AuthToken is required with StatusCallbackURL"}},
		{"From and Messaging Service", func(c *Config) { c.From, c.MessagingServiceSID = "+18555550142", testServiceSID }, []string{"not both"}},
		{"From not a sender", func(c *Config) { c.From = "+1 855 555 0142" }, []string{`From "+1 855 555 0142" is not`}},
		{"sender ID too long", func(c *Config) { c.From = "ExampleCorpInc" }, []string{"is not an E.164 number"}},
		{"Messaging Service SID of another kind", func(c *Config) { c.MessagingServiceSID = testAccountSID }, []string{"not a Messaging Service SID"}},
		{"relative callback URL", func(c *Config) { c.StatusCallbackURL = "/_otpd/callbacks/twilio" }, []string{"must be an absolute http or https URL"}},
		{"callback URL with credentials", func(c *Config) { c.StatusCallbackURL = "https://u:p@otpd.example.com/cb" }, []string{"must not hold credentials"}},
		{"callback URL with a fragment", func(c *Config) { c.StatusCallbackURL = "https://otpd.example.com/cb#x" }, []string{"#fragment"}},
		{"plain http base URL", func(c *Config) { c.BaseURL = "http://api.twilio.com" }, []string{"must use https"}},
		{"base URL with a query", func(c *Config) { c.BaseURL = "https://api.twilio.com/?x=1" }, []string{"BaseURL must be a scheme"}},
		{"ftp base URL", func(c *Config) { c.BaseURL = "ftp://api.twilio.com" }, []string{`scheme "ftp"`}},
		{"negative timeout", func(c *Config) { c.Timeout = -time.Second }, []string{"Timeout -1s is negative"}},
		{"bad name", func(c *Config) { c.Name = "twilio main" }, []string{`Name "twilio main"`}},
		{"every problem at once", func(c *Config) {
			*c = Config{Name: "a b", AccountSID: "AC1", From: "+1", MessagingServiceSID: "MG1", BaseURL: "http://x.example.com", Timeout: -1}
		}, []string{`Name "a b"`, "not an account SID", "AuthToken is required", "not both", `From "+1"`, "not a Messaging Service SID", "must use https", "is negative"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good
			tc.edit(&cfg)
			c, err := New(cfg)
			if err == nil {
				t.Fatalf("New(%+v) = %v, nil; want an error saying %q", cfg, c, tc.want)
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("New error = %q, want it to say %q", err, want)
				}
			}
			if strings.Contains(err.Error(), testAuthToken) || strings.Contains(err.Error(), testAPIKeySecret) {
				t.Errorf("New error = %q repeats a secret", err)
			}
		})
	}
}

func TestNewAccepts(t *testing.T) {
	c, err := New(Config{AccountSID: testAccountSID, AuthToken: testAuthToken})
	if err != nil {
		t.Fatalf("New with an account SID and auth token: %v", err)
	}
	if c.Name() != "twilio" || c.timeout != 10*time.Second {
		t.Errorf("Name() = %q and timeout %v, want the defaults %q and %v", c.Name(), c.timeout, "twilio", 10*time.Second)
	}
	if want := "https://api.twilio.com/2010-04-01/Accounts/" + testAccountSID + "/Messages.json"; c.endpoint != want {
		t.Errorf("endpoint = %q, want %q", c.endpoint, want)
	}
	for _, cfg := range []Config{
		{Name: "twilio-eu.1", AccountSID: testAccountSID, APIKeySID: testAPIKeySID, APIKeySecret: testAPIKeySecret, From: "ExampleCo", Timeout: time.Second},
		{AccountSID: testAccountSID, AuthToken: testAuthToken, From: "24273", StatusCallbackURL: "http://otpd.example.com:8080/cb?x=1"},
		{AccountSID: testAccountSID, AuthToken: testAuthToken, MessagingServiceSID: testServiceSID, BaseURL: "https://api.dublin.ie1.twilio.com/"},
		{AccountSID: testAccountSID, AuthToken: testAuthToken, BaseURL: "http://127.0.0.1:8080"},
	} {
		if _, err := New(cfg); err != nil {
			t.Errorf("New(%+v): %v, want no error", cfg, err)
		}
	}
	c, err = New(Config{AccountSID: testAccountSID, AuthToken: testAuthToken, BaseURL: "https://api.dublin.ie1.twilio.com/"})
	if err != nil {
		t.Fatal(err)
	}
	if want := "https://api.dublin.ie1.twilio.com/2010-04-01/Accounts/" + testAccountSID + "/Messages.json"; c.endpoint != want {
		t.Errorf("endpoint = %q, want %q", c.endpoint, want)
	}
}

func TestNewLeavesTheCallersClientAlone(t *testing.T) {
	f := newFakeTwilio(t, testAccountSID, testAuthToken)
	client := f.srv.Client()
	c := newCarrier(t, f, Config{})
	if client.CheckRedirect != nil {
		t.Error("New changed the redirect policy of the caller's client")
	}
	if _, err := c.Send(t.Context(), message()); err != nil {
		t.Errorf("Send: %v", err)
	}
}

// TestSendNeverShowsTheText checks every error Send can return for the
// text and its code, whatever Twilio answers.
func TestSendNeverShowsTheText(t *testing.T) {
	m := message()
	for _, status := range []int{400, 401, 403, 404, 408, 409, 429, 500, 502, 503} {
		f := newFakeTwilio(t, testAccountSID, testAuthToken)
		f.answerWith(func(w http.ResponseWriter) {
			w.Header().Set("Retry-After", "123456")
			twilioError(w, status, 21999, fmt.Sprintf("rejected %q (%s)", m.Text, url.QueryEscape(m.Text)))
		})
		_, err := newCarrier(t, f, Config{}).Send(t.Context(), m)
		if err == nil {
			t.Fatalf("HTTP %d: no error", status)
		}
		if s := err.Error(); strings.Contains(s, "123456") || strings.Contains(s, "One Time Password") {
			t.Errorf("HTTP %d: the error repeats the text or its code: %q", status, s)
		}
	}
}

// Twilio reading the whole request, then the connection dropping before
// its answer: Twilio may have taken the message, and the failure says so.
func TestConnectionDroppedAfterTheRequestMayDeliver(t *testing.T) {
	srv := startTLS(t, smstest.DropAfterRequest(t))
	c, err := New(Config{AccountSID: testAccountSID, AuthToken: testAuthToken, BaseURL: srv.URL, Client: srv.Client(), From: "+18555550142"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Send(t.Context(), message()); err == nil || !sms.MayDeliver(err) {
		t.Errorf("Send, the connection dropped after the request: %v, want a failure that may deliver", err)
	}
}
