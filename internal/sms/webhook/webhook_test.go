package webhook

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"

	"github.com/otpd/otpd/internal/gsm7"
	"github.com/otpd/otpd/internal/sms"
	"github.com/otpd/otpd/internal/sms/smstest"
)

// testSecret is the secret the carriers and endpoints of these tests share.
var testSecret = []byte("0123456789abcdef0123456789abcdef-test")

// maxAge is the replay window of the tests' endpoints.
const maxAge = 5 * time.Minute

// endpoint is an operator's webhook endpoint as it should be written: it
// verifies every request with Verify, decodes it, and answers as the suite
// steers it. A request it would reject fails the test.
type endpoint struct {
	t      *testing.T
	srv    *httptest.Server
	done   chan struct{} // closed when the test ends: releases stalled requests
	secret []byte

	mu        sync.Mutex
	behaviour smstest.Behaviour
	received  []smstest.Received
	requests  []request // every request that passed the checks
}

// request is what an endpoint saw of one request.
type request struct {
	header  http.Header
	body    []byte
	payload Payload
}

var _ smstest.Peer = (*endpoint)(nil)

// newEndpoint starts an endpoint on a TLS test server, stopped when the
// test ends.
func newEndpoint(t *testing.T) *endpoint {
	e := &endpoint{t: t, done: make(chan struct{}), secret: testSecret}
	e.srv = startTLS(t, e.serve)
	t.Cleanup(func() { close(e.done) }) // runs before the server's Close
	return e
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

func (e *endpoint) SetBehaviour(b smstest.Behaviour) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.behaviour = b
}

func (e *endpoint) Received() []smstest.Received {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]smstest.Received(nil), e.received...)
}

// seen returns the requests that passed the endpoint's checks.
func (e *endpoint) seen() []request {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]request(nil), e.requests...)
}

// refuse fails the test and answers the request with status, as an
// endpoint refuses a request that is not otpd's or not well formed.
func (e *endpoint) refuse(w http.ResponseWriter, status int, format string, args ...any) {
	e.t.Errorf("the endpoint refused a request: "+format, args...)
	http.Error(w, http.StatusText(status), status)
}

func (e *endpoint) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		e.refuse(w, http.StatusMethodNotAllowed, "method %s, want POST", r.Method)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		e.refuse(w, http.StatusBadRequest, "reading the body: %v", err)
		return
	}
	if err := Verify(e.secret, r.Header.Get(TimestampHeader), r.Header.Get(SignatureHeader), body, time.Now(), maxAge); err != nil {
		e.refuse(w, http.StatusUnauthorized, "Verify: %v", err)
		return
	}
	if got, want := r.Header.Get("Content-Type"), "application/json"; got != want {
		e.refuse(w, http.StatusUnsupportedMediaType, "Content-Type %q, want %q", got, want)
		return
	}
	if got, want := r.Header.Get("User-Agent"), "otpd-webhook/1"; got != want {
		e.refuse(w, http.StatusBadRequest, "User-Agent %q, want %q", got, want)
		return
	}
	var p Payload
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		e.refuse(w, http.StatusBadRequest, "decoding %s: %v", body, err)
		return
	}
	if p.MessageID == "" || p.ApplicationID == "" || p.From == "" || p.To == "" || p.Text == "" || p.Language == "" {
		e.refuse(w, http.StatusBadRequest, "a required field is empty: %s", body)
		return
	}
	if got := r.Header.Get("Idempotency-Key"); got != p.MessageID {
		e.refuse(w, http.StatusBadRequest, "Idempotency-Key %q, want the MessageId %q", got, p.MessageID)
		return
	}
	if enc, n := gsm7.Segments(p.Text); p.Encoding != enc.String() || p.Segments != n {
		e.refuse(w, http.StatusBadRequest, "Encoding %q and Segments %d, want %q and %d for the text", p.Encoding, p.Segments, enc, n)
		return
	}

	e.mu.Lock()
	b := e.behaviour
	e.requests = append(e.requests, request{header: r.Header.Clone(), body: body, payload: p})
	if b == smstest.Accept {
		e.received = append(e.received, smstest.Received{From: p.From, To: p.To, Text: p.Text})
	}
	n := len(e.requests)
	e.mu.Unlock()

	switch b {
	case smstest.Accept:
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id": "wh-%d"}`, n)
	case smstest.RejectPermanent:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"error":"invalid number"}`)
	case smstest.FailTemporary:
		http.Error(w, "the SMS gateway is down", http.StatusServiceUnavailable)
	case smstest.Stall:
		select {
		case <-r.Context().Done():
		case <-e.done:
		}
		// Let go without an answer: a handler that returns would
		// answer 200, which could still reach the carrier.
		panic(http.ErrAbortHandler)
	default:
		e.t.Errorf("the endpoint was given %v", b)
	}
}

// newCarrier returns a carrier posting to srv with the tests' secret, cfg
// giving the rest.
func newCarrier(t *testing.T, srv *httptest.Server, cfg Config) *Carrier {
	t.Helper()
	cfg.URL = srv.URL
	cfg.Secret = testSecret
	cfg.Client = srv.Client()
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func TestConformance(t *testing.T) {
	smstest.Run(t, func(t *testing.T) (sms.Carrier, smstest.Peer) {
		e := newEndpoint(t)
		return newCarrier(t, e.srv, Config{}), e
	})
}

// message returns a message carrying code 123456.
func message() sms.Message {
	return sms.Message{
		ID:          "6f1c2a9e-4d3b-4c5a-9e8f-0a1b2c3d4e5f",
		AppID:       "0123456789abcdef0123456789abcdef",
		From:        "+18555550142",
		To:          "+14255550142",
		Text:        "This is your One Time Password: 123456 from ExampleCorp",
		Language:    "en-US",
		ReferenceID: "login-42",
	}
}

func TestRequest(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(m *sms.Message)
	}{
		{"without DLT", func(*sms.Message) {}},
		{"with DLT", func(m *sms.Message) { m.EntityID, m.TemplateID = "1101234567890123456", "1107161234567890123" }},
		{"UCS-2", func(m *sms.Message) {
			m.Text, m.Language = "Esta é a sua senha de uso único: 123456 de Açaí", "pt-BR"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEndpoint(t)
			c := newCarrier(t, e.srv, Config{})
			m := message()
			tc.edit(&m)
			before := time.Now().Unix()
			receipt, err := c.Send(t.Context(), m)
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			if got, want := receipt.CarrierMessageID, "wh-1"; got != want {
				t.Errorf("CarrierMessageID = %q, want %q", got, want)
			}
			seen := e.seen()
			if len(seen) != 1 {
				t.Fatalf("the endpoint saw %d requests, want 1", len(seen))
			}
			r := seen[0]
			if got := r.header.Get("Idempotency-Key"); got != m.ID {
				t.Errorf("Idempotency-Key = %q, want the MessageId %q", got, m.ID)
			}
			ts, err := strconv.ParseInt(r.header.Get(TimestampHeader), 10, 64)
			if err != nil || ts < before || ts > time.Now().Unix() {
				t.Errorf("%s = %q, want the Unix time of the send, between %d and now", TimestampHeader, r.header.Get(TimestampHeader), before)
			}
			enc, segments := gsm7.Segments(m.Text)
			want := Payload{
				MessageID: m.ID, ApplicationID: m.AppID, ReferenceID: m.ReferenceID,
				From: m.From, To: m.To, Text: m.Text, Language: m.Language,
				Encoding: enc.String(), Segments: segments, EntityID: m.EntityID, TemplateID: m.TemplateID,
			}
			if r.payload != want {
				t.Errorf("payload = %+v\nwant %+v", r.payload, want)
			}
			for _, field := range []string{`"EntityId"`, `"TemplateId"`} {
				if got, want := bytes.Contains(r.body, []byte(field)), m.EntityID != ""; got != want {
					t.Errorf("the body holds %s: %v, want %v: %s", field, got, want, r.body)
				}
			}
		})
	}
}

func TestNewRefuses(t *testing.T) {
	good := Config{URL: "https://sms.example.com/otpd", Secret: testSecret}
	for _, tc := range []struct {
		name string
		edit func(c *Config)
		want []string
	}{
		{"no URL", func(c *Config) { c.URL = "" }, []string{"URL is required"}},
		{"http to another host", func(c *Config) { c.URL = "http://sms.example.com/otpd" },
			[]string{"must use https", "one-time code", "loopback"}},
		{"http to a private address", func(c *Config) { c.URL = "http://10.0.0.7:8080/sms" }, []string{"must use https"}},
		{"http to a name that starts like localhost", func(c *Config) { c.URL = "http://localhost.example.com/" }, []string{"must use https"}},
		{"another scheme", func(c *Config) { c.URL = "ftp://sms.example.com/" }, []string{`scheme "ftp"`}},
		{"relative URL", func(c *Config) { c.URL = "sms.example.com/otpd" }, []string{"must be absolute"}},
		{"bad URL", func(c *Config) { c.URL = "https://sms.example.com/%zz" }, []string{"not a valid URL"}},
		{"no secret", func(c *Config) { c.Secret = nil }, []string{"Secret has 0 bytes, want at least 32"}},
		{"short secret", func(c *Config) { c.Secret = testSecret[:31] }, []string{"Secret has 31 bytes"}},
		{"negative timeout", func(c *Config) { c.Timeout = -time.Second }, []string{"Timeout -1s is negative"}},
		{"name with a space", func(c *Config) { c.Name = "my webhook" }, []string{`Name "my webhook"`}},
		{"everything at once", func(c *Config) { *c = Config{URL: "http://sms.example.com", Timeout: -1, Name: "a b"} },
			[]string{"must use https", "Secret has 0 bytes", "is negative", `Name "a b"`}},
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
					t.Errorf("New(%+v) error = %q, want it to say %q", cfg, err, want)
				}
			}
		})
	}
}

func TestNewAccepts(t *testing.T) {
	for _, u := range []string{
		"https://sms.example.com/otpd?tenant=7",
		"HTTPS://sms.example.com",
		"http://127.0.0.1:8080/sms",
		"http://127.1.2.3/sms",
		"http://localhost:9000",
		"http://LOCALHOST/",
		"http://[::1]:9000/sms",
	} {
		c, err := New(Config{URL: u, Secret: testSecret})
		if err != nil {
			t.Errorf("New(URL %q): %v, want no error", u, err)
			continue
		}
		if got, want := c.Name(), "webhook"; got != want {
			t.Errorf("Name() = %q, want %q", got, want)
		}
		if got, want := c.timeout, 5*time.Second; got != want {
			t.Errorf("the default timeout is %v, want %v", got, want)
		}
	}
	c, err := New(Config{Name: "gateway-eu.1", URL: "https://sms.example.com", Secret: testSecret, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if c.Name() != "gateway-eu.1" || c.timeout != time.Second {
		t.Errorf("Name() = %q and timeout %v, want %q and %v", c.Name(), c.timeout, "gateway-eu.1", time.Second)
	}
}

func TestNewKeepsItsOwnCopies(t *testing.T) {
	e := newEndpoint(t)
	secret := bytes.Clone(testSecret)
	client := e.srv.Client()
	c, err := New(Config{URL: e.srv.URL, Secret: secret, Client: client})
	if err != nil {
		t.Fatal(err)
	}
	secret[0] ^= 0xff // the caller reuses its buffer
	if client.CheckRedirect != nil {
		t.Error("New changed the redirect policy of the caller's client")
	}
	if _, err := c.Send(t.Context(), message()); err != nil {
		t.Errorf("Send after the caller changed its secret buffer: %v", err)
	}
}

func TestVerify(t *testing.T) {
	now := time.Unix(1_900_000_000, 0)
	body := []byte(`{"MessageId":"m-1","Text":"This is your One Time Password: 123456 from ExampleCorp"}`)
	ts := strconv.FormatInt(now.Unix(), 10)
	sig := "v1=" + hex.EncodeToString(sign(testSecret, ts, body))
	other := make([]byte, 32)
	for _, tc := range []struct {
		name      string
		secret    []byte
		timestamp string
		signature string
		body      []byte
		now       time.Time
		maxAge    time.Duration
		want      string // in the error; "" for none
	}{
		{"valid", testSecret, ts, sig, body, now, maxAge, ""},
		{"valid, 4m59s later", testSecret, ts, sig, body, now.Add(maxAge - time.Second), maxAge, ""},
		{"valid, clock 4m59s behind", testSecret, ts, sig, body, now.Add(-maxAge + time.Second), maxAge, ""},
		{"one of several signatures", testSecret, ts, "v1=" + strings.Repeat("00", 32) + ", " + sig + ",v2=zz", body, now, maxAge, ""},
		{"tampered body", testSecret, ts, sig, bytes.Replace(body, []byte("123456"), []byte("654321"), 1), now, maxAge, "does not match"},
		{"body with a byte more", testSecret, ts, sig, append(bytes.Clone(body), ' '), now, maxAge, "does not match"},
		{"tampered timestamp", testSecret, strconv.FormatInt(now.Unix()+1, 10), sig, body, now, maxAge, "does not match"},
		{"old timestamp", testSecret, ts, sig, body, now.Add(maxAge + time.Second), maxAge, "signed 5m1s ago"},
		{"replayed a day later", testSecret, ts, sig, body, now.Add(24 * time.Hour), maxAge, "a replay"},
		{"timestamp in the future", testSecret, ts, sig, body, now.Add(-maxAge - time.Second), maxAge, "in the future"},
		{"another secret", append(other, other...), ts, sig, body, now, maxAge, "does not match"},
		{"short secret", testSecret[:31], ts, sig, body, now, maxAge, "at least 32"},
		{"no signature", testSecret, ts, "", body, now, maxAge, "no v1= signature"},
		{"unknown scheme only", testSecret, ts, "v0=" + sig[3:], body, now, maxAge, "no v1= signature"},
		{"signature not hex", testSecret, ts, "v1=zz", body, now, maxAge, "does not match"},
		{"no timestamp", testSecret, "", sig, body, now, maxAge, "not a Unix time"},
		{"signed timestamp", testSecret, "+" + ts, sig, body, now, maxAge, "not a Unix time"},
		{"timestamp in milliseconds", testSecret, ts + "000", sig, body, now, maxAge, "does not match"},
		{"no replay window", testSecret, ts, sig, body, now, 0, "maxAge 0s must be positive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Verify(tc.secret, tc.timestamp, tc.signature, tc.body, tc.now, tc.maxAge)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Verify = %v, want nil", err)
			case tc.want != "" && err == nil:
				t.Errorf("Verify = nil, want an error saying %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Errorf("Verify = %q, want an error saying %q", err, tc.want)
			}
		})
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

func TestOutcomeOfEachStatus(t *testing.T) {
	for _, tc := range []struct {
		code int
		want sms.Status // 0 for accepted
	}{
		{200, 0}, {201, 0}, {202, 0}, {204, 0},
		{301, sms.Temporary}, {302, sms.Temporary}, {307, sms.Temporary}, {308, sms.Temporary},
		{400, sms.Permanent}, {404, sms.Permanent}, {422, sms.Permanent},
		{401, sms.NotPermitted}, {403, sms.NotPermitted},
		{408, sms.Temporary},
		{429, sms.Throttled},
		{500, sms.Temporary}, {502, sms.Temporary}, {503, sms.Temporary}, {504, sms.Temporary},
	} {
		t.Run(strconv.Itoa(tc.code), func(t *testing.T) {
			srv := startTLS(t, func(w http.ResponseWriter, r *http.Request) {
				if tc.code >= 300 && tc.code < 400 {
					w.Header().Set("Location", "https://elsewhere.example.com/")
				}
				w.WriteHeader(tc.code)
			})
			_, err := newCarrier(t, srv, Config{}).Send(t.Context(), message())
			if tc.want == 0 {
				if err != nil {
					t.Errorf("HTTP %d: Send error = %v, want none", tc.code, err)
				}
				return
			}
			ce := refusalOf(t, err)
			if ce.Status != tc.want || ce.Code != tc.code {
				t.Errorf("HTTP %d: got Status %v, Code %d (%q); want Status %v, Code %d", tc.code, ce.Status, ce.Code, ce.Message, tc.want, tc.code)
			}
			if ce.Credentials != (tc.code == http.StatusUnauthorized) {
				t.Errorf("HTTP %d: Credentials = %v, want it set for 401 alone (the endpoint refused otpd's secret)", tc.code, ce.Credentials)
			}
			if !strings.Contains(ce.Message, "HTTP "+strconv.Itoa(tc.code)) {
				t.Errorf("HTTP %d: Message = %q, want it to name the status", tc.code, ce.Message)
			}
		})
	}
}

func TestTooManyRequestsIsThrottled(t *testing.T) {
	srv := startTLS(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "30")
		http.Error(w, `{"error":"slow down"}`, http.StatusTooManyRequests)
	})
	_, err := newCarrier(t, srv, Config{}).Send(t.Context(), message())
	ce := refusalOf(t, err)
	if ce.Status != sms.Throttled || ce.Code != 429 {
		t.Errorf("got Status %v, Code %d; want %v, 429", ce.Status, ce.Code, sms.Throttled)
	}
	for _, want := range []string{"HTTP 429 Too Many Requests", "Retry-After: 30", `{"error":"slow down"}`} {
		if !strings.Contains(ce.Message, want) {
			t.Errorf("Message = %q, want it to say %q", ce.Message, want)
		}
	}
}

// TestRefusalNeverRepeatsTheText has endpoints echo the request in their
// refusal, as careless ones do.
func TestRefusalNeverRepeatsTheText(t *testing.T) {
	m := message()
	m.Text = "Esta é a sua senha de uso único: 123456 de Açaí"
	for _, tc := range []struct {
		name string
		body func(req []byte) string
		want string // a part of the body the message must show
	}{
		{"the request as it came", func(req []byte) string { return `{"error":"invalid number","request":` + string(req) + `}` }, `{"error":"invalid number","request":`},
		{"the text with non-ASCII escaped", func([]byte) string {
			return `{"error":"bad","text":"Esta \u00e9 a sua senha de uso \u00fanico: 123456 de A\u00e7a\u00ed"}`
		}, `{"error":"bad"`},
		{"the code alone", func([]byte) string { return "code 123456 rejected" }, "code [redacted] rejected"},
		{"the text across lines", func([]byte) string { return "rejected:\r\nEsta é a sua senha de uso único:\n123456 de Açaí" }, "rejected: [redacted]"},
		{"control characters", func([]byte) string { return "bad\x00\x1b[31m number\t\n\xff" }, "bad [31m number \uFFFD"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startTLS(t, func(w http.ResponseWriter, r *http.Request) {
				req, _ := io.ReadAll(r.Body)
				w.WriteHeader(http.StatusBadRequest)
				io.WriteString(w, tc.body(req))
			})
			_, err := newCarrier(t, srv, Config{}).Send(t.Context(), m)
			ce := refusalOf(t, err)
			if ce.Status != sms.Permanent {
				t.Errorf("Status = %v, want %v", ce.Status, sms.Permanent)
			}
			for _, s := range []string{ce.Message, err.Error()} {
				if strings.Contains(s, "123456") || strings.Contains(s, "senha") {
					t.Errorf("the refusal repeats the text or its code: %q", s)
				}
				if strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
					t.Errorf("the refusal holds unprintable characters: %q", s)
				}
			}
			if !strings.Contains(ce.Message, "HTTP 400") || !strings.Contains(ce.Message, tc.want) {
				t.Errorf("Message = %q, want it to hold HTTP 400 and %q", ce.Message, tc.want)
			}
		})
	}
}

func TestRefusalShowsAtMost200BytesOfTheBody(t *testing.T) {
	long := strings.Repeat("é", 150) + strings.Repeat("x", 10_000) // 300 bytes, then more
	srv := startTLS(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnprocessableEntity)
		io.WriteString(w, long)
	})
	_, err := newCarrier(t, srv, Config{}).Send(t.Context(), message())
	ce := refusalOf(t, err)
	_, shown, _ := strings.Cut(ce.Message, "): ")
	if want := strings.Repeat("é", 100) + "..."; shown != want {
		t.Errorf("the message shows %q (%d bytes), want the first 200 bytes of the body: %q", shown, len(shown), want)
	}
}

func TestReceiptCarrierMessageID(t *testing.T) {
	for _, tc := range []struct {
		body, want string
	}{
		{`{"MessageId":"SM123"}`, "SM123"},
		{`{"id":"abc-1"}`, "abc-1"},
		{`{"MessageId":"SM123","id":"abc-1"}`, "SM123"},
		{`{"id":12345678901234567890}`, "12345678901234567890"},
		{`{"MessageId":null,"id":"abc-1"}`, "abc-1"},
		{`{"id":"two\nlines"}`, ""},
		{`{"id":["x"]}`, ""},
		{`{"id":"` + strings.Repeat("x", 257) + `"}`, ""},
		{`accepted`, ""},
		{``, ""},
	} {
		srv := startTLS(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, tc.body) })
		r, err := newCarrier(t, srv, Config{}).Send(t.Context(), message())
		if err != nil {
			t.Errorf("answer %q: Send error %v, want none", tc.body, err)
			continue
		}
		if r.CarrierMessageID != tc.want {
			t.Errorf("answer %q: CarrierMessageID = %q, want %q", tc.body, r.CarrierMessageID, tc.want)
		}
	}
}

// stall starts a server that never answers, until the test ends.
func stall(t *testing.T) *httptest.Server {
	done := make(chan struct{})
	srv := startTLS(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-done:
		}
		panic(http.ErrAbortHandler) // no answer, not even 200
	})
	t.Cleanup(func() { close(done) }) // runs before the server's Close
	return srv
}

func TestTimeoutMayStillDeliver(t *testing.T) {
	c := newCarrier(t, stall(t), Config{Timeout: 200 * time.Millisecond})
	start := time.Now()
	_, err := c.Send(context.Background(), message()) // no deadline: Config.Timeout applies
	elapsed := time.Since(start)
	if elapsed > 2*time.Second {
		t.Errorf("Send returned after %v, want about the Timeout of 200ms", elapsed)
	}
	ce := refusalOf(t, err)
	if ce.Status != sms.Temporary || ce.Code != http.StatusGatewayTimeout {
		t.Errorf("got Status %v, Code %d; want %v, 504", ce.Status, ce.Code, sms.Temporary)
	}
	for _, want := range []string{"did not answer in time", "may still deliver"} {
		if !strings.Contains(ce.Message, want) {
			t.Errorf("Message = %q, want it to say %q", ce.Message, want)
		}
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("errors.Is(%v, context.DeadlineExceeded) = false, want true", err)
	}
}

func TestCallerDeadlineBeatsTimeout(t *testing.T) {
	c := newCarrier(t, stall(t), Config{Timeout: time.Minute})
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Send(ctx, message())
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("Send returned after %v, want about the caller's deadline of 200ms", elapsed)
	}
	if ce := refusalOf(t, err); ce.Status != sms.Temporary || !strings.Contains(ce.Message, "did not answer in time") {
		t.Errorf("got Status %v, Message %q; want %v, did not answer in time", ce.Status, ce.Message, sms.Temporary)
	}
}

func TestCancelled(t *testing.T) {
	c := newCarrier(t, stall(t), Config{})
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(100*time.Millisecond, cancel)
	_, err := c.Send(ctx, message())
	ce := refusalOf(t, err)
	if ce.Status != sms.Temporary || !strings.Contains(ce.Message, "cancelled") || !strings.Contains(ce.Message, "may still deliver") {
		t.Errorf("got Status %v, Message %q; want %v, saying the send was cancelled and may still deliver", ce.Status, ce.Message, sms.Temporary)
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
	c, err := New(Config{URL: "https://" + addr + "/sms?token=s3cr3t", Secret: testSecret})
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
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("error = %q, want no URL (it may hold a token)", err)
	}
}

func TestRedirectIsNotFollowed(t *testing.T) {
	var hits sync.Map
	elsewhere := startTLS(t, func(w http.ResponseWriter, r *http.Request) { hits.Store(r.URL.Path, true) })
	srv := startTLS(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL+"/stolen", http.StatusTemporaryRedirect)
	})
	_, err := newCarrier(t, srv, Config{}).Send(t.Context(), message())
	ce := refusalOf(t, err)
	if ce.Status != sms.Temporary || ce.Code != http.StatusTemporaryRedirect || !strings.Contains(ce.Message, "redirect") {
		t.Errorf("got Status %v, Code %d, Message %q; want %v, 307, saying it does not follow redirects", ce.Status, ce.Code, ce.Message, sms.Temporary)
	}
	if _, ok := hits.Load("/stolen"); ok {
		t.Error("the carrier followed the redirect and posted the message elsewhere")
	}
}

// An endpoint that reads the whole request, then drops the connection
// without answering, may have taken the message: the failure says so. One
// that cannot be reached cannot have.
func TestConnectionDroppedAfterTheRequestMayDeliver(t *testing.T) {
	srv := startTLS(t, smstest.DropAfterRequest(t))
	c := newCarrier(t, srv, Config{Timeout: 5 * time.Second})
	_, err := c.Send(t.Context(), message())
	if err == nil || !sms.MayDeliver(err) {
		t.Errorf("Send to an endpoint that dropped the connection after the request: %v, want a failure that may deliver", err)
	}

	down := startTLS(t, func(http.ResponseWriter, *http.Request) {})
	c = newCarrier(t, down, Config{Timeout: 5 * time.Second})
	down.Close()
	_, err = c.Send(t.Context(), message())
	if err == nil || sms.MayDeliver(err) {
		t.Errorf("Send to an endpoint that is down: %v, want a failure that cannot deliver", err)
	}
}
