package route_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/otpd/otpd/internal/sms"
	"github.com/otpd/otpd/internal/sms/route"
	"github.com/otpd/otpd/internal/sms/smstest"
	"github.com/otpd/otpd/internal/sms/webhook"
)

// testSecret is the secret the webhook carriers and peers of these tests
// share.
var testSecret = []byte("0123456789abcdef0123456789abcdef-route")

const (
	appA    = "0123456789abcdef0123456789abcdef"
	appB    = "fedcba9876543210fedcba9876543210"
	fromUS  = "+18555550142"
	toUS    = "+14255550142"
	toCA    = "+16135550142"
	toLDN   = "+442079460000" // a London landline: GB, under +4420
	toGBMob = "+447400123456" // a UK mobile: GB
	toGG    = "+447781123456" // a Guernsey mobile: +44, but GG
	toFR    = "+33612345678"
	toSEA   = "+12065550100" // Seattle: US, under +1206
)

// answer is how a peer answers a request.
type answer int

const (
	accept      answer = iota
	reject400          // a permanent refusal
	fail503            // a temporary failure
	throttle429        // throttled
	deny401            // otpd's credentials refused: not permitted, and counted by the circuit
	deny403            // not permitted for otpd's account: its sender, say
	stall              // no answer until the client gives up or the test ends
)

// peer is a webhook endpoint on a TLS test server: it checks every request
// as an operator's endpoint would (signature, payload), records it, and
// answers as told. It is also an smstest.Peer.
type peer struct {
	t       *testing.T
	name    string
	srv     *httptest.Server
	done    chan struct{} // closed when the test ends: releases stalled requests
	stalled chan string   // the MessageId of each request that stalls, if anyone listens

	mu       sync.Mutex
	answer   answer
	requests []webhook.Payload  // every well-formed request, whatever the answer
	received []smstest.Received // the requests it accepted
	accepted []webhook.Payload  // the same, whole
}

var _ smstest.Peer = (*peer)(nil)

// newPeer starts a peer that accepts, stopped when the test ends.
func newPeer(t *testing.T, name string) *peer {
	p := &peer{t: t, name: name, done: make(chan struct{}), stalled: make(chan string, 64)}
	p.srv = httptest.NewUnstartedServer(http.HandlerFunc(p.serve))
	p.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // connections the carriers cut short
	p.srv.StartTLS()
	t.Cleanup(p.srv.Close)
	t.Cleanup(func() { close(p.done) }) // runs first: releases stalled handlers
	return p
}

// newPeers starts one peer per name.
func newPeers(t *testing.T, names ...string) []*peer {
	ps := make([]*peer, len(names))
	for i, n := range names {
		ps[i] = newPeer(t, n)
	}
	return ps
}

func (p *peer) set(a answer) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.answer = a
}

func (p *peer) SetBehaviour(b smstest.Behaviour) {
	switch b {
	case smstest.Accept:
		p.set(accept)
	case smstest.RejectPermanent:
		p.set(reject400)
	case smstest.FailTemporary:
		p.set(fail503)
	case smstest.Stall:
		p.set(stall)
	default:
		p.t.Errorf("peer %s: unknown behaviour %v", p.name, b)
	}
}

func (p *peer) Received() []smstest.Received {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.received)
}

// seen returns every well-formed request the peer got.
func (p *peer) seen() []webhook.Payload {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.requests)
}

// took returns the requests the peer accepted.
func (p *peer) took() []webhook.Payload {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.accepted)
}

func (p *peer) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		panic(http.ErrAbortHandler) // the carrier gave up while sending
	}
	if err := webhook.Verify(testSecret, r.Header.Get(webhook.TimestampHeader), r.Header.Get(webhook.SignatureHeader),
		body, time.Now(), 5*time.Minute); err != nil {
		p.t.Errorf("peer %s: Verify: %v", p.name, err)
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var pl webhook.Payload
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&pl); err != nil || pl.MessageID == "" || pl.MessageID != r.Header.Get("Idempotency-Key") {
		p.t.Errorf("peer %s: a malformed request (%v): %s", p.name, err, body)
		http.Error(w, "malformed", http.StatusBadRequest)
		return
	}
	p.mu.Lock()
	a := p.answer
	p.requests = append(p.requests, pl)
	if a == accept {
		p.received = append(p.received, smstest.Received{From: pl.From, To: pl.To, Text: pl.Text})
		p.accepted = append(p.accepted, pl)
	}
	n := len(p.requests)
	p.mu.Unlock()

	switch a {
	case accept:
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"MessageId": "%s-%d"}`, p.name, n)
	case reject400:
		http.Error(w, `{"error":"invalid number"}`, http.StatusBadRequest)
	case fail503:
		http.Error(w, "the SMS gateway is down", http.StatusServiceUnavailable)
	case throttle429:
		w.Header().Set("Retry-After", "1")
		http.Error(w, "slow down", http.StatusTooManyRequests)
	case deny401:
		http.Error(w, "unknown API key", http.StatusUnauthorized)
	case deny403:
		http.Error(w, "this sender is not registered for the account", http.StatusForbidden)
	case stall:
		select {
		case p.stalled <- pl.MessageID:
		default:
		}
		select {
		case <-r.Context().Done():
		case <-p.done:
		}
		panic(http.ErrAbortHandler) // no answer at all
	}
}

// carrier returns a webhook carrier named after p that posts to it.
func (p *peer) carrier(t *testing.T) sms.Carrier {
	t.Helper()
	c, err := webhook.New(webhook.Config{Name: p.name, URL: p.srv.URL, Secret: testSecret, Client: p.srv.Client()})
	if err != nil {
		t.Fatalf("webhook.New: %v", err)
	}
	return c
}

// carriers returns a route.Carrier for each peer, without limits.
func carriers(t *testing.T, ps ...*peer) []route.Carrier {
	out := make([]route.Carrier, len(ps))
	for i, p := range ps {
		out[i] = route.Carrier{Carrier: p.carrier(t)}
	}
	return out
}

// clock is a clock the test moves.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// recorder is an Observer that keeps what it is told.
type recorder struct {
	mu       sync.Mutex
	attempts []string // "carrier outcome"
	breakers []string // "carrier open" or "carrier closed"
}

func (r *recorder) Attempt(carrier, outcome string, elapsed time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if elapsed < 0 || strings.HasPrefix(outcome, "skipped-") && elapsed != 0 {
		panic(fmt.Sprintf("Attempt(%s, %s, %v): a skip takes no time, an attempt some", carrier, outcome, elapsed))
	}
	r.attempts = append(r.attempts, carrier+" "+outcome)
}

func (r *recorder) BreakerState(carrier string, open bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	state := "closed"
	if open {
		state = "open"
	}
	r.breakers = append(r.breakers, carrier+" "+state)
}

// takeAttempts returns the attempts recorded since the last call.
func (r *recorder) takeAttempts() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	a := r.attempts
	r.attempts = nil
	return a
}

// takeBreakers returns the circuit changes recorded since the last call.
func (r *recorder) takeBreakers() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.breakers
	r.breakers = nil
	return b
}

// newRouter returns the router for cfg, failing the test if New refuses.
func newRouter(t *testing.T, cfg route.Config) *route.Router {
	t.Helper()
	r, err := route.New(cfg)
	if err != nil {
		t.Fatalf("route.New: %v", err)
	}
	return r
}

// message returns a fresh message of app from from to to, with its own ID
// and code.
func message(app, from, to string) sms.Message {
	id := uuid.NewString()
	return sms.Message{
		ID: id, AppID: app, From: from, To: to, Language: "en-US", ReferenceID: "login-42",
		Text: "This is your One Time Password: " + fmt.Sprintf("%06d", uuid.MustParse(id).ID()%1000000) + " from ExampleCorp",
	}
}

// sendCtx returns a context that bounds a send in a test.
func sendCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// deliver sends m through r and fails the test unless a carrier accepted it.
func deliver(t *testing.T, r *route.Router, m sms.Message) route.Delivery {
	t.Helper()
	d, err := r.Deliver(sendCtx(t), m)
	if err != nil {
		t.Fatalf("Deliver(to %s from %s): %v; want a carrier to accept", m.To, m.From, err)
	}
	return d
}

// refusal returns the *SendError and the *sms.Error in err, failing the test
// if either is missing.
func refusal(t *testing.T, err error) (*route.SendError, *sms.Error) {
	t.Helper()
	var se *route.SendError
	var ce *sms.Error
	if !errors.As(err, &se) || !errors.As(err, &ce) {
		t.Fatalf("got error %v (%T); want a *route.SendError wrapping an *sms.Error", err, err)
	}
	return se, ce
}

// expectOnly checks that, of ps, only want got requests: exactly the
// message m, once, whole.
func expectOnly(t *testing.T, ps []*peer, want *peer, m sms.Message) {
	t.Helper()
	for _, p := range ps {
		seen := p.seen()
		if p != want {
			if len(seen) != 0 {
				t.Errorf("peer %s got %d requests, want none", p.name, len(seen))
			}
			continue
		}
		expectRequest(t, p, m)
	}
}

// expectRequest checks that p got exactly one request, for m, whole.
func expectRequest(t *testing.T, p *peer, m sms.Message) {
	t.Helper()
	seen := p.seen()
	if len(seen) != 1 {
		t.Errorf("peer %s got %d requests, want exactly 1: %+v", p.name, len(seen), seen)
		return
	}
	got := seen[0]
	if got.MessageID != m.ID || got.Text != m.Text || got.From != m.From || got.To != m.To || got.ApplicationID != m.AppID {
		t.Errorf("peer %s got MessageId %q From %q To %q Text %q; want the message itself: %q %q %q %q",
			p.name, got.MessageID, got.From, got.To, got.Text, m.ID, m.From, m.To, m.Text)
	}
}

func expectStrings(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s:\ngot  %q\nwant %q", what, got, want)
	}
}

// outcomes returns "carrier outcome" for each attempt.
func outcomes(attempts []route.Attempt) []string {
	var out []string
	for _, a := range attempts {
		out = append(out, a.Carrier+" "+a.Outcome)
	}
	return out
}

func TestRuleMatching(t *testing.T) {
	ps := newPeers(t, "app-a", "seattle", "london", "gb", "north-america", "fallback")
	appOnly, seattle, london, gb, na, fallback := ps[0], ps[1], ps[2], ps[3], ps[4], ps[5]
	r := newRouter(t, route.Config{
		Carriers: carriers(t, ps...),
		Rules: []route.Rule{
			{AppID: appA, Carriers: []string{"app-a"}},
			{Countries: []string{"US"}, Prefixes: []string{"+1206"}, Carriers: []string{"seattle"}},
			{Prefixes: []string{"+4420"}, Carriers: []string{"london"}},
			{Countries: []string{"gb"}, Carriers: []string{"gb"}},
			{Countries: []string{"US", "CA"}, Carriers: []string{"north-america"}},
			{Carriers: []string{"fallback"}},
		},
	})
	for _, tc := range []struct {
		name    string
		app, to string
		want    *peer
	}{
		{"the application's own rule comes first", appA, toLDN, appOnly},
		{"a country and a prefix", appB, toSEA, seattle},
		{"a prefix", appB, toLDN, london},
		{"a country, in lower case", appB, toGBMob, gb},
		{"a Guernsey number is GG, not GB", appB, toGG, fallback},
		{"one of two countries: US", appB, toUS, na},
		{"one of two countries: CA", appB, toCA, na},
		{"the catch-all", appB, toFR, fallback},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := map[*peer]int{}
			for _, p := range ps {
				before[p] = len(p.seen())
			}
			m := message(tc.app, fromUS, tc.to)
			d := deliver(t, r, m)
			if d.Carrier != tc.want.name {
				t.Errorf("the message to %s of application %s went through %q, want %q", tc.to, tc.app, d.Carrier, tc.want.name)
			}
			for _, p := range ps {
				n := len(p.seen()) - before[p]
				if want := map[bool]int{true: 1, false: 0}[p == tc.want]; n != want {
					t.Errorf("peer %s got %d requests, want %d", p.name, n, want)
				}
			}
			if got := tc.want.seen(); len(got) == 0 || got[len(got)-1].MessageID != m.ID {
				t.Errorf("peer %s did not get message %s last: %+v", tc.want.name, m.ID, got)
			}
		})
	}
}

func TestNoRouteIsAPermanentRefusal(t *testing.T) {
	ps := newPeers(t, "us")
	obs := &recorder{}
	r := newRouter(t, route.Config{
		Carriers: carriers(t, ps...),
		Rules:    []route.Rule{{Countries: []string{"US"}, Carriers: []string{"us"}}},
		Observer: obs,
	})
	obs.takeBreakers()
	m := message(appA, fromUS, toFR)
	_, err := r.Send(sendCtx(t), m)
	se, ce := refusal(t, err)
	if ce.Status != sms.Permanent || !strings.Contains(ce.Message, "no route matches") || !strings.Contains(ce.Message, "FR") {
		t.Errorf("Send to a destination no rule matches: got %#v; want a Permanent refusal saying no route matches, naming the country FR", ce)
	}
	if strings.Contains(err.Error(), m.Text) || strings.Contains(err.Error(), m.To) {
		t.Errorf("the error %q repeats the text or the whole destination", err)
	}
	if len(se.Attempts) != 0 {
		t.Errorf("Attempts = %+v, want none", se.Attempts)
	}
	if got := ps[0].seen(); len(got) != 0 {
		t.Errorf("the peer got %d requests, want none", len(got))
	}
	expectStrings(t, "observed attempts", obs.takeAttempts())
	if err := r.CheckOrigination(appA, toFR, fromUS); err != nil {
		t.Errorf("CheckOrigination for a message no rule matches = %v, want nil (Send refuses it)", err)
	}
}

func TestFailoverAfterATimeout(t *testing.T) {
	ps := newPeers(t, "first", "second")
	ps[0].set(stall)
	cs := carriers(t, ps...)
	cs[0].Timeout = 300 * time.Millisecond
	obs := &recorder{}
	r := newRouter(t, route.Config{Carriers: cs, Rules: []route.Rule{{Carriers: []string{"first", "second"}}}, Observer: obs})
	m := message(appA, fromUS, toUS)
	start := time.Now()
	d := deliver(t, r, m)
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("Deliver took %v; the first carrier's Timeout is 300ms", elapsed)
	}
	if d.Carrier != "second" || d.Receipt.CarrierMessageID != "second-1" {
		t.Errorf("Delivery = %+v; want carrier second with its CarrierMessageID second-1", d)
	}
	expectStrings(t, "Attempts", outcomes(d.Attempts), "first temporary", "second accepted")
	expectStrings(t, "observed attempts", obs.takeAttempts(), "first temporary", "second accepted")
	// The stalled peer may still deliver: it and the second got the same
	// message, each once.
	expectRequest(t, ps[0], m)
	expectRequest(t, ps[1], m)
	if got := ps[1].took(); len(got) != 1 || got[0].MessageID != m.ID {
		t.Errorf("the second peer accepted %+v, want the message %s once", got, m.ID)
	}
}

// A carrier without a Timeout of its own gets a fair share of the caller's
// time when carriers follow it: a stalled first carrier of two leaves the
// second half the send's time, of three, two thirds.
func TestFailoverWithinAFairShareOfTheDeadline(t *testing.T) {
	for _, n := range []int{2, 3} {
		names := []string{"first", "second", "third"}[:n]
		ps := newPeers(t, names...)
		for _, p := range ps[:n-1] {
			p.set(stall)
		}
		r := newRouter(t, route.Config{Carriers: carriers(t, ps...), Rules: []route.Rule{{Carriers: names}}})
		const deadline = 900 * time.Millisecond
		ctx, cancel := context.WithTimeout(t.Context(), deadline)
		m := message(appA, fromUS, toUS)
		start := time.Now()
		d, err := r.Deliver(ctx, m)
		elapsed := time.Since(start)
		cancel()
		if err != nil {
			t.Fatalf("%d carriers, all but the last stalled: %v; want the last to accept within the deadline", n, err)
		}
		if d.Carrier != names[n-1] {
			t.Errorf("%d carriers: delivered by %q, want %q", n, d.Carrier, names[n-1])
		}
		// Each stalled carrier got its share of what was left: 1/n of the
		// deadline, then 1/(n-1) of the rest, and so on.
		for i, a := range d.Attempts[:n-1] {
			want := deadline / time.Duration(n)
			if a.Outcome != route.OutcomeTemporary || a.Elapsed < want-50*time.Millisecond || a.Elapsed > want+200*time.Millisecond {
				t.Errorf("%d carriers: attempt %d %s after %v, want a temporary failure after about %v", n, i, a.Outcome, a.Elapsed, want)
			}
		}
		if elapsed >= deadline {
			t.Errorf("%d carriers: Deliver took %v, past the caller's deadline %v", n, elapsed, deadline)
		}
	}
}

// A send that failed may still be delivered when a carrier it tried did not
// answer, even if a later carrier refused it for good; not when every
// carrier refused it.
func TestSendErrorSaysWhetherTheMessageMayArrive(t *testing.T) {
	for _, tc := range []struct {
		name    string
		answers []answer
		want    bool
	}{
		{"the first timed out, the second refused for good", []answer{stall, reject400}, true},
		{"both failed", []answer{fail503, throttle429}, false},
	} {
		ps := newPeers(t, "first", "second")
		cs := carriers(t, ps...)
		cs[0].Timeout = 200 * time.Millisecond
		for i, a := range tc.answers {
			ps[i].set(a)
		}
		r := newRouter(t, route.Config{Carriers: cs, Rules: []route.Rule{{Carriers: []string{"first", "second"}}}})
		_, err := r.Send(sendCtx(t), message(appA, fromUS, toUS))
		if err == nil {
			t.Fatalf("%s: the send succeeded", tc.name)
		}
		if got := sms.MayDeliver(err); got != tc.want {
			t.Errorf("%s: sms.MayDeliver(%v) = %v, want %v", tc.name, err, got, tc.want)
		}
	}
}

// The share counts only the carriers that could be tried after this one:
// a follower that may not send from the message's origination leaves the
// first carrier the whole of the caller's time.
func TestFairShareCountsOnlyCarriersThatCouldBeTried(t *testing.T) {
	ps := newPeers(t, "first", "second")
	ps[0].set(stall)
	cs := carriers(t, ps...)
	cs[1].Originations = []string{"+18005550100"} // not fromUS
	r := newRouter(t, route.Config{Carriers: cs, Rules: []route.Rule{{Carriers: []string{"first", "second"}}}})
	const deadline = 600 * time.Millisecond
	ctx, cancel := context.WithTimeout(t.Context(), deadline)
	defer cancel()
	_, err := r.Deliver(ctx, message(appA, fromUS, toUS))
	se, _ := refusal(t, err)
	if a := se.Attempts[0]; a.Carrier != "first" || a.Elapsed < deadline-100*time.Millisecond {
		t.Errorf("the first carrier's attempt %+v: want it to last about the whole %v, the second carrier being unable to send from %s", a, deadline, fromUS)
	}
}

// A carrier's own Timeout is not shortened: if it reaches past the caller's
// deadline, no carrier is started after it.
func TestNoFailoverOnceTheCallersDeadlinePassed(t *testing.T) {
	ps := newPeers(t, "first", "second")
	ps[0].set(stall)
	cs := carriers(t, ps...)
	cs[0].Timeout = time.Minute
	r := newRouter(t, route.Config{Carriers: cs, Rules: []route.Rule{{Carriers: []string{"first", "second"}}}})
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	m := message(appA, fromUS, toUS)
	_, err := r.Send(ctx, m)
	se, ce := refusal(t, err)
	if ce.Status != sms.Temporary {
		t.Errorf("a send whose deadline passed on the first carrier: got %#v, want a Temporary refusal (it may still be delivered)", ce)
	}
	expectStrings(t, "Attempts", outcomes(se.Attempts), "first temporary")
	expectRequest(t, ps[0], m)
	if got := ps[1].seen(); len(got) != 0 {
		t.Errorf("the second peer got %d requests after the caller's deadline, want none", len(got))
	}
}

func TestFailoverAfterATemporaryFailure(t *testing.T) {
	for _, tc := range []struct {
		name    string
		answer  answer
		closed  bool // the first peer is gone: the connection is refused
		outcome string
	}{
		{"503", fail503, false, route.OutcomeTemporary},
		{"429", throttle429, false, route.OutcomeThrottled},
		{"401: otpd's account refused", deny401, false, route.OutcomeNotPermitted},
		{"connection refused", accept, true, route.OutcomeTemporary},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps := newPeers(t, "first", "second")
			ps[0].set(tc.answer)
			cs := carriers(t, ps...)
			if tc.closed {
				ps[0].srv.Close()
			}
			r := newRouter(t, route.Config{Carriers: cs, Rules: []route.Rule{{Carriers: []string{"first", "second"}}}})
			m := message(appA, fromUS, toUS)
			d := deliver(t, r, m)
			if d.Carrier != "second" {
				t.Errorf("Delivery.Carrier = %q, want second", d.Carrier)
			}
			expectStrings(t, "Attempts", outcomes(d.Attempts), "first "+tc.outcome, "second accepted")
			if !tc.closed {
				expectRequest(t, ps[0], m)
			}
			expectRequest(t, ps[1], m)
			if got := ps[0].took(); len(got) != 0 {
				t.Errorf("the first peer accepted %d messages, want none", len(got))
			}
		})
	}
}

func TestPermanentRefusalStopsFailover(t *testing.T) {
	ps := newPeers(t, "first", "second")
	ps[0].set(reject400)
	obs := &recorder{}
	r := newRouter(t, route.Config{Carriers: carriers(t, ps...), Rules: []route.Rule{{Carriers: []string{"first", "second"}}}, Observer: obs})
	m := message(appA, fromUS, toUS)
	_, err := r.Send(sendCtx(t), m)
	se, ce := refusal(t, err)
	if ce.Status != sms.Permanent || ce.Code != 400 {
		t.Errorf("got %#v, want the first carrier's Permanent refusal with Code 400", ce)
	}
	expectStrings(t, "Attempts", outcomes(se.Attempts), "first refused-permanent")
	expectStrings(t, "observed attempts", obs.takeAttempts(), "first refused-permanent")
	expectOnly(t, ps, ps[0], m)
}

// fixed is a carrier that always answers with err; it stands for
// refusals a webhook cannot make (opted out) and errors of no kind.
type fixed struct {
	name string
	err  error
	sent int
	mu   sync.Mutex
}

func (f *fixed) Name() string { return f.name }

func (f *fixed) Send(ctx context.Context, m sms.Message) (sms.Receipt, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent++
	return sms.Receipt{}, f.err
}

func TestRefusalsThatWebhooksCannotMake(t *testing.T) {
	for _, tc := range []struct {
		name     string
		err      error
		outcome  string
		failover bool
	}{
		{"opted out", &sms.Error{Status: sms.OptedOut, Code: 400, Message: "the recipient opted out"}, route.OutcomeOptedOut, false},
		{"a status of no known kind", &sms.Error{Status: sms.Status(42), Message: "?"}, route.OutcomeRefusedPermanent, false},
		{"an error of no kind", errors.New("connection reset by peer"), route.OutcomeTemporary, true},
		{"a wrapped timeout", fmt.Errorf("submit: %w", context.DeadlineExceeded), route.OutcomeTemporary, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first := &fixed{name: "first", err: tc.err}
			ps := newPeers(t, "second")
			r := newRouter(t, route.Config{
				Carriers: []route.Carrier{{Carrier: first}, {Carrier: ps[0].carrier(t)}},
				Rules:    []route.Rule{{Carriers: []string{"first", "second"}}},
			})
			m := message(appA, fromUS, toUS)
			d, err := r.Deliver(sendCtx(t), m)
			if tc.failover {
				if err != nil || d.Carrier != "second" {
					t.Fatalf("Deliver = %+v, %v; want the second carrier to accept", d, err)
				}
				expectStrings(t, "Attempts", outcomes(d.Attempts), "first "+tc.outcome, "second accepted")
				expectRequest(t, ps[0], m)
				return
			}
			se, _ := refusal(t, err)
			if !errors.Is(err, tc.err) {
				t.Errorf("got %v; want the first carrier's error %v", err, tc.err)
			}
			expectStrings(t, "Attempts", outcomes(se.Attempts), "first "+tc.outcome)
			if got := ps[0].seen(); len(got) != 0 {
				t.Errorf("the second peer got %d requests, want none", len(got))
			}
		})
	}
}

func TestAllCarriersDownReturnsTheLastError(t *testing.T) {
	ps := newPeers(t, "first", "second")
	ps[0].set(fail503)
	ps[1].set(throttle429)
	r := newRouter(t, route.Config{Carriers: carriers(t, ps...), Rules: []route.Rule{{Carriers: []string{"first", "second"}}}})
	m := message(appA, fromUS, toUS)
	receipt, err := r.Send(sendCtx(t), m)
	se, ce := refusal(t, err)
	if ce.Status != sms.Throttled || ce.Code != 429 {
		t.Errorf("got %#v; want the last carrier's refusal: Throttled, 429", ce)
	}
	if receipt != (sms.Receipt{}) {
		t.Errorf("receipt = %+v, want none", receipt)
	}
	expectStrings(t, "Attempts", outcomes(se.Attempts), "first temporary", "second throttled")
	for _, p := range ps {
		expectRequest(t, p, m)
		if got := p.took(); len(got) != 0 {
			t.Errorf("peer %s accepted %d messages, want none", p.name, len(got))
		}
	}
	for _, s := range []string{"first", "503", "second", "429"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("the error %q does not say %q: it should tell the operator what each carrier did", err, s)
		}
	}
}

func TestCircuitBreaker(t *testing.T) {
	ps := newPeers(t, "flaky", "backup")
	flaky, backup := ps[0], ps[1]
	flaky.set(fail503)
	clk := newClock()
	obs := &recorder{}
	r := newRouter(t, route.Config{
		Carriers: carriers(t, ps...),
		Rules:    []route.Rule{{Carriers: []string{"flaky", "backup"}}},
		Breaker:  route.BreakerConfig{Failures: 3, Cooldown: 30 * time.Second},
		Observer: obs,
		Now:      clk.Now,
	})
	expectStrings(t, "circuits reported by New", obs.takeBreakers(), "flaky closed", "backup closed")

	send := func(wantFlakyRequests int, wantAttempts ...string) {
		t.Helper()
		d := deliver(t, r, message(appA, fromUS, toUS))
		expectStrings(t, "Attempts", outcomes(d.Attempts), wantAttempts...)
		if got := len(flaky.seen()); got != wantFlakyRequests {
			t.Errorf("the flaky peer got %d requests in all, want %d", got, wantFlakyRequests)
		}
	}
	// A failure, then a success, then three failures: only consecutive
	// failures count.
	send(1, "flaky temporary", "backup accepted")
	flaky.set(accept)
	send(2, "flaky accepted")
	flaky.set(fail503)
	send(3, "flaky temporary", "backup accepted")
	send(4, "flaky temporary", "backup accepted")
	expectStrings(t, "circuit changes after 2 failures", obs.takeBreakers())
	send(5, "flaky temporary", "backup accepted")
	expectStrings(t, "circuit changes after 3 failures", obs.takeBreakers(), "flaky open")

	// Open: no request reaches the flaky peer, even once it recovers.
	flaky.set(accept)
	send(5, "flaky skipped-open-circuit", "backup accepted")
	clk.Advance(30*time.Second - time.Millisecond)
	send(5, "flaky skipped-open-circuit", "backup accepted")

	// Half-open: one trial; it fails, and the circuit stays open for
	// another cooldown.
	flaky.set(fail503)
	clk.Advance(time.Millisecond)
	send(6, "flaky temporary", "backup accepted")
	send(6, "flaky skipped-open-circuit", "backup accepted")
	clk.Advance(29 * time.Second)
	send(6, "flaky skipped-open-circuit", "backup accepted")
	expectStrings(t, "circuit changes after a failed trial", obs.takeBreakers())

	// The next trial succeeds: the circuit closes.
	flaky.set(accept)
	clk.Advance(time.Second)
	send(7, "flaky accepted")
	expectStrings(t, "circuit changes after a good trial", obs.takeBreakers(), "flaky closed")
	send(8, "flaky accepted")
	if got := len(backup.seen()); got != 9 {
		t.Errorf("the backup peer got %d requests, want 9", got)
	}
	expectStrings(t, "observed attempts", obs.takeAttempts(),
		"flaky temporary", "backup accepted", "flaky accepted",
		"flaky temporary", "backup accepted", "flaky temporary", "backup accepted", "flaky temporary", "backup accepted",
		"flaky skipped-open-circuit", "backup accepted", "flaky skipped-open-circuit", "backup accepted",
		"flaky temporary", "backup accepted", "flaky skipped-open-circuit", "backup accepted",
		"flaky skipped-open-circuit", "backup accepted",
		"flaky accepted", "flaky accepted")
}

// A refusal for otpd's account fails over but leaves the circuit closed:
// it may be of the request's own sender, which a client chooses, and a few
// such requests must not shut the carrier out for everyone. A refusal of
// otpd's credentials, which every send would meet, opens it.
func TestNotPermittedLeavesTheCircuitClosed(t *testing.T) {
	ps := newPeers(t, "picky", "backup")
	ps[0].set(deny403)
	obs := &recorder{}
	r := newRouter(t, route.Config{
		Carriers: carriers(t, ps...),
		Rules:    []route.Rule{{Carriers: []string{"picky", "backup"}}},
		Breaker:  route.BreakerConfig{Failures: 2, Cooldown: time.Minute},
		Observer: obs,
	})
	obs.takeBreakers()
	for range 5 {
		d := deliver(t, r, message(appA, fromUS, toUS))
		expectStrings(t, "Attempts", outcomes(d.Attempts), "picky refused-not-permitted", "backup accepted")
	}
	expectStrings(t, "circuit changes after 5 refusals for otpd's account", obs.takeBreakers())
	ps[0].set(accept)
	if d := deliver(t, r, message(appA, fromUS, toUS)); d.Carrier != "picky" {
		t.Errorf("the carrier that refused for otpd's account is skipped (%q took the message): its circuit opened", d.Carrier)
	}

	ps[0].set(deny401)
	for range 2 {
		d := deliver(t, r, message(appA, fromUS, toUS))
		expectStrings(t, "Attempts", outcomes(d.Attempts), "picky refused-not-permitted", "backup accepted")
	}
	expectStrings(t, "circuit changes after 2 refusals of otpd's credentials", obs.takeBreakers(), "picky open")
}

// When the last carrier refuses for otpd's account, but another failed or
// was skipped only for now, the send reports a failure a retry may cure.
func TestNotPermittedLastReportsWhatARetryMayCure(t *testing.T) {
	// send sends through a route of two carriers that answer first and
	// second, after warmUp sends before it, and returns its refusal.
	send := func(t *testing.T, first, second answer, breaker route.BreakerConfig, warmUp int) (*route.SendError, *sms.Error) {
		t.Helper()
		ps := newPeers(t, "one", "two")
		ps[0].set(first)
		ps[1].set(second)
		r := newRouter(t, route.Config{Carriers: carriers(t, ps...), Rules: []route.Rule{{Carriers: []string{"one", "two"}}}, Breaker: breaker})
		for range warmUp {
			r.Send(sendCtx(t), message(appA, fromUS, toUS))
		}
		_, err := r.Send(sendCtx(t), message(appA, fromUS, toUS))
		return refusal(t, err)
	}
	t.Run("after a temporary failure", func(t *testing.T) {
		se, ce := send(t, fail503, deny401, route.BreakerConfig{}, 0)
		if ce.Status != sms.Temporary || ce.Code != 503 {
			t.Errorf("got %#v, want the first carrier's Temporary failure (503)", ce)
		}
		expectStrings(t, "Attempts", outcomes(se.Attempts), "one temporary", "two refused-not-permitted")
	})
	t.Run("after a carrier skipped for its open circuit", func(t *testing.T) {
		se, ce := send(t, fail503, deny403, route.BreakerConfig{Failures: 1, Cooldown: time.Hour}, 1) // the warm-up opens the first circuit
		if ce.Status != sms.Temporary || !strings.Contains(ce.Message, "; the others could not: the circuit of one is open") || !strings.Contains(ce.Message, "webhook endpoint refused otpd") {
			t.Errorf("got %#v, want a Temporary failure naming the open circuit and the refusal", ce)
		}
		expectStrings(t, "Attempts", outcomes(se.Attempts), "one skipped-open-circuit", "two refused-not-permitted")
	})
	t.Run("when the time ran out before the next carrier", func(t *testing.T) {
		ps := newPeers(t, "backup")
		slow := route.Carrier{Carrier: refusesAtDeadline{}, Timeout: time.Minute}
		r := newRouter(t, route.Config{Carriers: []route.Carrier{slow, {Carrier: ps[0].carrier(t)}},
			Rules: []route.Rule{{Carriers: []string{"slow", "backup"}}}})
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		_, err := r.Send(ctx, message(appA, fromUS, toUS))
		se, ce := refusal(t, err)
		if ce.Status != sms.Temporary || ce.Code != 504 || !strings.Contains(ce.Message, "time ran out") {
			t.Errorf("got %#v, want a Temporary failure (504) saying the time ran out", ce)
		}
		expectStrings(t, "Attempts", outcomes(se.Attempts), "slow refused-not-permitted")
	})
	t.Run("alone", func(t *testing.T) {
		if _, ce := send(t, deny401, deny401, route.BreakerConfig{}, 0); ce.Status != sms.NotPermitted || ce.Code != 401 {
			t.Errorf("got %#v, want the last carrier's NotPermitted refusal (401)", ce)
		}
	})
}

// refusesAtDeadline refuses for otpd's account once its send's time is up.
type refusesAtDeadline struct{}

func (refusesAtDeadline) Name() string { return "slow" }

func (refusesAtDeadline) Send(ctx context.Context, m sms.Message) (sms.Receipt, error) {
	<-ctx.Done()
	return sms.Receipt{}, &sms.Error{Status: sms.NotPermitted, Code: 403, Message: "the sender is not registered"}
}

func TestHalfOpenAllowsOneTrialAtATime(t *testing.T) {
	ps := newPeers(t, "flaky", "backup")
	flaky := ps[0]
	flaky.set(fail503)
	clk := newClock()
	cs := carriers(t, ps...)
	r := newRouter(t, route.Config{
		Carriers: cs,
		Rules:    []route.Rule{{Carriers: []string{"flaky", "backup"}}},
		Breaker:  route.BreakerConfig{Failures: 1, Cooldown: time.Minute},
		Now:      clk.Now,
	})
	deliver(t, r, message(appA, fromUS, toUS)) // opens the circuit
	clk.Advance(time.Minute)
	flaky.set(stall)

	// The trial stalls on the flaky peer until its caller gives up.
	trialCtx, cancelTrial := context.WithCancel(t.Context())
	defer cancelTrial()
	trial := message(appA, fromUS, toUS)
	done := make(chan error, 1)
	go func() {
		_, err := r.Send(trialCtx, trial)
		done <- err
	}()
	select {
	case id := <-flaky.stalled:
		if id != trial.ID {
			t.Fatalf("the flaky peer holds message %s, want the trial %s", id, trial.ID)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the trial never reached the flaky peer")
	}
	// Meanwhile every other send skips the flaky carrier.
	for range 3 {
		d := deliver(t, r, message(appA, fromUS, toUS))
		expectStrings(t, "Attempts during the trial", outcomes(d.Attempts), "flaky skipped-open-circuit", "backup accepted")
	}
	if got := len(flaky.seen()); got != 2 {
		t.Errorf("the flaky peer got %d requests, want 2 (the failure that opened the circuit, and the trial)", got)
	}
	// The caller cancels the trial: that proves nothing of the carrier,
	// and the next send is a trial again.
	cancelTrial()
	if err := <-done; err == nil {
		t.Fatal("the cancelled trial succeeded")
	}
	flaky.set(accept)
	d := deliver(t, r, message(appA, fromUS, toUS))
	expectStrings(t, "Attempts after the cancelled trial", outcomes(d.Attempts), "flaky accepted")
}

func TestRateLimit(t *testing.T) {
	ps := newPeers(t, "limited", "spare")
	limited, spare := ps[0], ps[1]
	clk := newClock()
	cs := carriers(t, ps...)
	cs[0].RatePerSecond, cs[0].Burst = 0.5, 2 // a send every 2 s, 2 at once
	obs := &recorder{}
	r := newRouter(t, route.Config{Carriers: cs, Rules: []route.Rule{{Carriers: []string{"limited", "spare"}}}, Observer: obs, Now: clk.Now})
	via := func(want string) {
		t.Helper()
		if d := deliver(t, r, message(appA, fromUS, toUS)); d.Carrier != want {
			t.Errorf("the send went through %q, want %q (attempts %q)", d.Carrier, want, outcomes(d.Attempts))
		}
	}
	via("limited")
	via("limited")
	via("spare")
	clk.Advance(time.Second)
	via("spare")
	clk.Advance(time.Second)
	via("limited")
	via("spare")
	clk.Advance(time.Hour) // refills to Burst, not beyond
	via("limited")
	via("limited")
	via("spare")
	if got, want := len(limited.seen()), 5; got != want {
		t.Errorf("the limited peer got %d requests, want %d", got, want)
	}
	if got, want := len(spare.seen()), 4; got != want {
		t.Errorf("the spare peer got %d requests, want %d", got, want)
	}
	got := obs.takeAttempts()
	if n := strings.Count(strings.Join(got, ","), "limited skipped-rate-limit"); n != 4 {
		t.Errorf("observed %d rate-limit skips, want 4: %q", n, got)
	}
}

func TestEveryCarrierSkipped(t *testing.T) {
	ps := newPeers(t, "broken", "busy")
	broken, busy := ps[0], ps[1]
	broken.set(fail503)
	clk := newClock()
	cs := carriers(t, ps...)
	cs[1].RatePerSecond = 1
	r := newRouter(t, route.Config{
		Carriers: cs,
		Rules: []route.Rule{
			{AppID: appB, Carriers: []string{"busy"}},
			{Carriers: []string{"broken", "busy"}},
		},
		Breaker: route.BreakerConfig{Failures: 1},
		Now:     clk.Now,
	})
	deliver(t, r, message(appA, fromUS, toUS)) // opens broken's circuit, spends busy's token

	m := message(appA, fromUS, toUS)
	_, err := r.Send(sendCtx(t), m)
	se, ce := refusal(t, err)
	if ce.Status != sms.Temporary {
		t.Errorf("every carrier skipped, one for an open circuit: Status %v, want %v", ce.Status, sms.Temporary)
	}
	for _, s := range []string{"circuit of broken is open", "rate limit of busy"} {
		if !strings.Contains(ce.Message, s) {
			t.Errorf("the refusal %q does not say %q", ce.Message, s)
		}
	}
	expectStrings(t, "Attempts", outcomes(se.Attempts), "broken skipped-open-circuit", "busy skipped-rate-limit")

	_, err = r.Send(sendCtx(t), message(appB, fromUS, toUS))
	_, ce = refusal(t, err)
	if ce.Status != sms.Throttled || !strings.Contains(ce.Message, "rate limit of busy") {
		t.Errorf("every carrier skipped for its rate limit: got %#v, want a Throttled refusal naming busy", ce)
	}
	if got := len(broken.seen()) + len(busy.seen()); got != 2 {
		t.Errorf("the peers got %d requests in all, want 2 (the first send's)", got)
	}
}

func TestOriginations(t *testing.T) {
	ps := newPeers(t, "us-numbers", "sender-ids", "anything")
	cs := carriers(t, ps...)
	cs[0].Originations = []string{fromUS, "+18555550143"}
	cs[1].Originations = []string{"ExampleCo", "12345", fromUS}
	cs[2].Originations = []string{"*"}
	obs := &recorder{}
	r := newRouter(t, route.Config{
		Carriers: cs,
		Rules: []route.Rule{
			{Countries: []string{"FR"}, Carriers: []string{"anything"}},
			{Carriers: []string{"us-numbers", "sender-ids"}},
		},
		Observer: obs,
	})

	m := message(appA, "ExampleCo", toUS)
	d := deliver(t, r, m)
	expectStrings(t, "Attempts", outcomes(d.Attempts), "us-numbers skipped-origination", "sender-ids accepted")
	expectStrings(t, "observed attempts", obs.takeAttempts(), "us-numbers skipped-origination", "sender-ids accepted")
	expectOnly(t, ps, ps[1], m)

	for _, from := range []string{fromUS, "ExampleCo", "12345"} {
		if err := r.CheckOrigination(appA, toUS, from); err != nil {
			t.Errorf("CheckOrigination(%q) = %v, want nil", from, err)
		}
	}
	if err := r.CheckOrigination(appA, toFR, "AnyBrand"); err != nil {
		t.Errorf(`CheckOrigination through a carrier with "*" = %v, want nil`, err)
	}
	err := r.CheckOrigination(appA, toUS, "OtherCo")
	var oe *route.OriginationError
	if !errors.As(err, &oe) {
		t.Fatalf("CheckOrigination(OtherCo) = %v (%T), want an *OriginationError", err, err)
	}
	expectStrings(t, "OriginationError.Allowed", oe.Allowed, fromUS, "+18555550143", "ExampleCo", "12345")
	expectStrings(t, "OriginationError.Carriers", oe.Carriers, "us-numbers", "sender-ids")
	if want := `"OtherCo" cannot be used for this destination: its carriers may send only from +18555550142, +18555550143, ExampleCo, 12345`; err.Error() != want {
		t.Errorf("CheckOrigination(OtherCo) error:\ngot  %q\nwant %q", err, want)
	}

	// Send refuses for good what no carrier of the route may send from.
	m = message(appA, "OtherCo", toUS)
	_, err = r.Send(sendCtx(t), m)
	se, ce := refusal(t, err)
	if ce.Status != sms.Permanent || !strings.Contains(ce.Message, `us-numbers, sender-ids may not send from "OtherCo"`) {
		t.Errorf("Send from an identity no carrier may use: got %#v, want a Permanent refusal naming the carriers", ce)
	}
	expectStrings(t, "Attempts", outcomes(se.Attempts), "us-numbers skipped-origination", "sender-ids skipped-origination")
	for _, p := range ps {
		if n := len(p.seen()); p != ps[1] && n != 0 || p == ps[1] && n != 1 {
			t.Errorf("peer %s got %d requests", p.name, n)
		}
	}
}

func TestConcurrentSends(t *testing.T) {
	ps := newPeers(t, "limited", "spare")
	cs := carriers(t, ps...)
	cs[0].RatePerSecond, cs[0].Burst = 1, 10
	clk := newClock() // stands still: exactly Burst sends through limited
	obs := &recorder{}
	r := newRouter(t, route.Config{Carriers: cs, Rules: []route.Rule{{Carriers: []string{"limited", "spare"}}}, Observer: obs, Now: clk.Now})
	const n = 48
	msgs := make([]sms.Message, n)
	errs := make([]error, n)
	for i := range msgs {
		msgs[i] = message(appA, fromUS, toUS)
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range msgs {
		wg.Go(func() {
			<-start
			_, errs[i] = r.Send(t.Context(), msgs[i])
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Send %d: %v", i, err)
		}
	}
	count := map[string]int{}
	for _, p := range ps {
		for _, pl := range p.took() {
			count[pl.MessageID]++
		}
	}
	for _, m := range msgs {
		if count[m.ID] != 1 {
			t.Errorf("message %s was accepted %d times, want once", m.ID, count[m.ID])
		}
	}
	if got := len(ps[0].seen()); got != 10 {
		t.Errorf("the limited peer got %d requests, want its burst of 10", got)
	}
	if got := len(obs.takeAttempts()); got != n+n-10 {
		t.Errorf("observed %d attempts, want %d", got, n+n-10)
	}
}

func TestNewRefuses(t *testing.T) {
	carrier := func(name string) route.Carrier {
		c, err := webhook.New(webhook.Config{Name: name, URL: "https://sms.example.com/otpd", Secret: testSecret})
		if err != nil {
			t.Fatal(err)
		}
		return route.Carrier{Carrier: c}
	}
	good := func() route.Config {
		return route.Config{
			Carriers: []route.Carrier{carrier("a"), carrier("b")},
			Rules:    []route.Rule{{Carriers: []string{"a", "b"}}},
		}
	}
	if _, err := route.New(good()); err != nil {
		t.Fatalf("New(good) = %v", err)
	}
	for _, tc := range []struct {
		name string
		edit func(c *route.Config)
		want []string
	}{
		{"no carriers", func(c *route.Config) { c.Carriers = nil; c.Rules = nil }, []string{"no Carriers", "no Rules"}},
		{"a nil carrier", func(c *route.Config) { c.Carriers = append(c.Carriers, route.Carrier{}) }, []string{"Carriers[2] has no sms.Carrier"}},
		{"duplicate names", func(c *route.Config) { c.Carriers = append(c.Carriers, carrier("a")) }, []string{`Carriers[2] (a): another carrier has the name "a"`}},
		{"unknown carrier", func(c *route.Config) { c.Rules[0].Carriers = []string{"a", "twilio"} },
			[]string{`Rules[0]: Carriers: no carrier is named "twilio" (there are "a", "b")`}},
		{"a carrier twice in a rule", func(c *route.Config) { c.Rules[0].Carriers = []string{"a", "a"} }, []string{`Carriers lists "a" twice`}},
		{"no carriers in a rule", func(c *route.Config) { c.Rules[0].Carriers = nil }, []string{"Rules[0]: Carriers is empty"}},
		{"bad prefixes", func(c *route.Config) { c.Rules[0].Prefixes = []string{"44", "+0", "+", "+44 20", "+1234567890123456"} },
			[]string{`"44" is not an E.164 prefix`, `"+0" is not`, `"+" is not`, `"+44 20" is not`, `"+1234567890123456" is not`}},
		{"bad countries", func(c *route.Config) { c.Rules[0].Countries = []string{"UK", "USA", "ZZ", ""} },
			[]string{`"UK" is not an ISO 3166-1 alpha-2 code with phone numbers (the United Kingdom is GB)`, `"USA" is not`, `"ZZ" is not`, `"" is not`}},
		{"a prefix outside the countries", func(c *route.Config) {
			c.Rules = append([]route.Rule{{Countries: []string{"US"}, Prefixes: []string{"+44"}, Carriers: []string{"a"}}}, c.Rules...)
		}, []string{`Rules[0]: Prefixes: "+44" lies in none of the rule's Countries [US]`}},
		{"a bad application ID", func(c *route.Config) {
			c.Rules = append([]route.Rule{{AppID: "MyApp", Carriers: []string{"a"}}}, c.Rules...)
		}, []string{`AppID "MyApp" must be an application ID`}},
		{"a rule after the catch-all", func(c *route.Config) {
			c.Rules = append(c.Rules, route.Rule{Countries: []string{"US"}, Carriers: []string{"a"}})
		}, []string{"Rules[1] can never match: Rules[0] before it matches every message"}},
		{"a rule after its application's catch-all", func(c *route.Config) {
			c.Rules = append([]route.Rule{{AppID: appA, Carriers: []string{"a"}}, {AppID: appA, Prefixes: []string{"+1"}, Carriers: []string{"b"}}}, c.Rules...)
		}, []string{"Rules[1] can never match: Rules[0] before it matches every message of application " + appA}},
		{"bad originations", func(c *route.Config) {
			c.Carriers[0].Originations = []string{"+1", "12", "Example Corp Ltd", "héllo", " ExampleCo", "+18555550142", "+18555550142", ""}
		},
			[]string{`"+1" starts with '+' but is not an E.164 number`, `"12" looks like a short code`, `"Example Corp Ltd" as an alphanumeric sender ID`,
				`"héllo" must be an E.164 number, a short code or an alphanumeric sender ID`, `" ExampleCo" must not begin or end with a space`, `lists "+18555550142" twice`, `"" is empty`}},
		{"a star among others", func(c *route.Config) { c.Carriers[0].Originations = []string{"*", "ExampleCo"} }, []string{`has "*"`}},
		{"bad rates", func(c *route.Config) {
			c.Carriers[0].RatePerSecond = -1
			c.Carriers[1].Burst = 5
		}, []string{"Carriers[0] (a): RatePerSecond -1 must be a positive number", "Carriers[1] (b): Burst 5 needs a RatePerSecond"}},
		{"negative burst and timeout", func(c *route.Config) {
			c.Carriers[0].RatePerSecond, c.Carriers[0].Burst, c.Carriers[0].Timeout = 1, -1, -time.Second
		}, []string{"Burst -1 is negative", "Timeout -1s is negative"}},
		{"bad breaker", func(c *route.Config) { c.Breaker = route.BreakerConfig{Failures: -1, Cooldown: -time.Second} },
			[]string{"Breaker.Failures -1 is negative", "Breaker.Cooldown -1s is negative"}},
		{"bad name", func(c *route.Config) { c.Name = "my router" }, []string{`Name "my router"`}},
		{"everything at once", func(c *route.Config) {
			c.Carriers = append(c.Carriers, carrier("a"))
			c.Rules = []route.Rule{{Countries: []string{"UK"}, Carriers: []string{"c"}}, {Carriers: nil}}
			c.Breaker.Failures = -2
		}, []string{"another carrier has the name", `"UK" is not`, `no carrier is named "c"`, "Rules[1]: Carriers is empty", "Breaker.Failures -2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good()
			tc.edit(&cfg)
			r, err := route.New(cfg)
			if err == nil {
				t.Fatalf("New = %v, nil; want an error saying %q", r, tc.want)
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("New error:\n%v\nwant it to say %q", err, want)
				}
			}
		})
	}
}

// A carrier whose name is refused is refused once: the rules that name it
// are not refused again for it.
func TestBadCarrierNameIsReportedOnce(t *testing.T) {
	_, err := route.New(route.Config{
		Carriers: []route.Carrier{{Carrier: &fixed{name: "bad name"}}},
		Rules:    []route.Rule{{Carriers: []string{"bad name", "other"}}},
	})
	if err == nil || !strings.Contains(err.Error(), "Carriers[0] (bad name): the carrier's name must be") ||
		strings.Contains(err.Error(), `no carrier is named "bad name"`) ||
		!strings.Contains(err.Error(), `no carrier is named "other" (none has a valid name)`) {
		t.Errorf("New error:\n%v\nwant the name refused once, and only the unknown carrier other refused in the rule", err)
	}
}

func TestRouterIsACarrier(t *testing.T) {
	ps := newPeers(t, "only")
	r := newRouter(t, route.Config{Carriers: carriers(t, ps...), Rules: []route.Rule{{Carriers: []string{"only"}}}})
	if r.Name() != "route" {
		t.Errorf("Name() = %q, want the default %q", r.Name(), "route")
	}
	named := newRouter(t, route.Config{Name: "eu-router", Carriers: carriers(t, ps...), Rules: []route.Rule{{Carriers: []string{"only"}}}})
	if named.Name() != "eu-router" {
		t.Errorf("Name() = %q, want %q", named.Name(), "eu-router")
	}
	receipt, err := r.Send(sendCtx(t), message(appA, fromUS, toUS))
	if err != nil || receipt.CarrierMessageID != "only-1" {
		t.Errorf("Send = %+v, %v; want the carrier's receipt only-1", receipt, err)
	}
	if got := route.Outcomes(); len(got) != 9 || !slices.Contains(got, route.OutcomeSkippedRateLimit) || !slices.Contains(got, route.OutcomeNotPermitted) {
		t.Errorf("Outcomes() = %q", got)
	}
}

// TestConformance runs the carrier suite on routers of two webhook
// carriers: one whose first carrier talks to the suite's peer (the second,
// to the same peer, is the fallback), and one whose first carrier is down,
// so that every message goes through the fallback.
func TestConformance(t *testing.T) {
	t.Run("PrimaryUp", func(t *testing.T) {
		smstest.Run(t, func(t *testing.T) (sms.Carrier, smstest.Peer) {
			p := newPeer(t, "primary")
			a, err := webhook.New(webhook.Config{Name: "primary", URL: p.srv.URL, Secret: testSecret, Client: p.srv.Client()})
			if err != nil {
				t.Fatal(err)
			}
			b, err := webhook.New(webhook.Config{Name: "fallback", URL: p.srv.URL, Secret: testSecret, Client: p.srv.Client()})
			if err != nil {
				t.Fatal(err)
			}
			return newRouter(t, route.Config{
				Carriers: []route.Carrier{{Carrier: a}, {Carrier: b}},
				Rules:    []route.Rule{{Carriers: []string{"primary", "fallback"}}},
			}), p
		})
	})
	t.Run("PrimaryDown", func(t *testing.T) {
		smstest.Run(t, func(t *testing.T) (sms.Carrier, smstest.Peer) {
			ps := newPeers(t, "primary", "fallback")
			ps[0].set(fail503)
			return newRouter(t, route.Config{
				Carriers: carriers(t, ps...),
				Rules:    []route.Rule{{Carriers: []string{"primary", "fallback"}}},
			}), ps[1]
		})
	})
}

// The router logs a failure it moves on from, with the carrier's reason
// (the caller may only see the carrier that accepted), and every change of
// a circuit; a failure of the route's last carrier is the caller's to log.
func TestFailoversAndCircuitsAreLogged(t *testing.T) {
	ps := newPeers(t, "flaky", "backup")
	ps[0].set(fail503)
	clk := newClock()
	var logs bytes.Buffer // the router logs from the sending goroutine
	r := newRouter(t, route.Config{
		Carriers: carriers(t, ps...),
		Rules:    []route.Rule{{Carriers: []string{"flaky", "backup"}}},
		Breaker:  route.BreakerConfig{Failures: 2, Cooldown: time.Minute},
		Now:      clk.Now,
		Logger:   slog.New(slog.NewTextHandler(&logs, nil)),
	})
	m := message(appA, fromUS, toUS)
	deliver(t, r, m)
	deliver(t, r, message(appA, fromUS, toUS)) // the second failure opens the circuit
	ps[0].set(accept)
	clk.Advance(time.Minute)
	deliver(t, r, message(appA, fromUS, toUS)) // the trial closes it
	ps[0].set(fail503)
	ps[1].set(fail503)
	if _, err := r.Send(sendCtx(t), message(appA, fromUS, toUS)); err == nil {
		t.Fatal("both carriers failing: the send succeeded")
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	want := []string{
		`level=WARN msg="a carrier did not take the message: the send moves on along its route" carrier=flaky message_id=` + m.ID,
		`level=WARN msg="a carrier's circuit opened after consecutive failures: sends skip it until a trial send after the cooldown" carrier=flaky failures=2 cooldown=1m0s`,
		`level=WARN msg="a carrier did not take the message: the send moves on along its route" carrier=flaky`,
		`level=INFO msg="a carrier's circuit closed: it answered again" carrier=flaky`,
		`level=WARN msg="a carrier did not take the message: the send moves on along its route" carrier=flaky`,
	}
	if len(lines) != len(want) {
		t.Fatalf("%d log lines, want %d:\n%s", len(lines), len(want), logs.String())
	}
	for i, w := range want {
		if !strings.Contains(lines[i], w) {
			t.Errorf("line %d %q: want it to contain %q", i, lines[i], w)
		}
	}
	if !strings.Contains(lines[0], "outcome=temporary") || !strings.Contains(lines[0], "503") {
		t.Errorf("line %q: want the outcome and the carrier's reason", lines[0])
	}
}
