package otp

import (
	"context"
	"crypto/rand"
	"errors"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpd/otpd/internal/sms"
	"github.com/otpd/otpd/internal/sms/outbox"
	"github.com/otpd/otpd/internal/storage"
	"github.com/otpd/otpd/internal/storage/sqlite"
)

// scriptedCarrier answers each Send with the next of its answers (the last
// one repeats), and keeps the texts it accepted.
type scriptedCarrier struct {
	mu       sync.Mutex
	answers  []error
	calls    atomic.Int32
	accepted []sms.Message
	hold     chan struct{} // if set, Send waits for it (or ctx) first
	deadline time.Time     // the last call's context deadline
}

func (c *scriptedCarrier) Name() string { return "scripted" }

func (c *scriptedCarrier) Send(ctx context.Context, m sms.Message) (sms.Receipt, error) {
	n := int(c.calls.Add(1)) - 1
	c.mu.Lock()
	c.deadline, _ = ctx.Deadline()
	c.mu.Unlock()
	if c.hold != nil {
		select {
		case <-c.hold:
		case <-ctx.Done():
			return sms.Receipt{}, ctx.Err()
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	err := c.answers[min(n, len(c.answers)-1)]
	if err == nil {
		c.accepted = append(c.accepted, m)
	}
	return sms.Receipt{}, err
}

func (c *scriptedCarrier) lastCode(t *testing.T) string {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.accepted) == 0 {
		t.Fatal("the carrier accepted no message")
	}
	return regexp.MustCompile(`\d{6}`).FindString(c.accepted[len(c.accepted)-1].Text)
}

func newTestService(t *testing.T, carrier sms.Carrier, sendTimeout time.Duration) (*Service, string) {
	t.Helper()
	return newTestServiceOn(t, openTestStore(t), carrier, sendTimeout)
}

// newOutboxService is newTestService with the development outbox as
// carrier, and its store.
func newOutboxService(t *testing.T) (*Service, *sqlite.Store, string) {
	t.Helper()
	st := openTestStore(t)
	svc, appID := newTestServiceOn(t, st, outbox.New(st, nil), 0)
	return svc, st, appID
}

func openTestStore(t *testing.T) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "otpd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// newTestServiceOn returns a Service on st sending through carrier, and
// the ID of an application created through it.
func newTestServiceOn(t *testing.T, st *sqlite.Store, carrier sms.Carrier, sendTimeout time.Duration) (*Service, string) {
	t.Helper()
	key := make([]byte, 32)
	rand.Read(key)
	svc, err := NewService(Config{Store: st, Carrier: carrier, MACKey: key, SendTimeout: sendTimeout})
	if err != nil {
		t.Fatal(err)
	}
	app, err := svc.CreateApp(context.Background(), NewApp{Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return svc, app.ID
}

func sendRequest(appID string) SendRequest {
	return SendRequest{AppID: appID, Channel: "SMS", BrandName: "Acme", OriginationIdentity: "+18555550142",
		DestinationIdentity: "+14255550142", ReferenceID: "ref"}
}

func verifies(t *testing.T, svc *Service, appID, code string) bool {
	t.Helper()
	ok, _, err := svc.Verify(context.Background(), VerifyRequest{AppID: appID, DestinationIdentity: "+14255550142", ReferenceID: "ref", Otp: code})
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func TestRefusedSendKeepsThePreviousCode(t *testing.T) {
	for _, tc := range []struct {
		name       string
		refusal    error
		wantStatus string
		wantCode   int
	}{
		{"permanent", &sms.Error{Status: sms.Permanent, Code: 400, Message: "not a mobile number"}, StatusPermanentFailure, 400},
		{"temporary", &sms.Error{Status: sms.Temporary, Message: "carrier down"}, StatusTemporaryFailure, 503},
		{"throttled", &sms.Error{Status: sms.Throttled, Message: "slow down"}, StatusThrottled, 429},
		{"not permitted", &sms.Error{Status: sms.NotPermitted, Message: "the account is suspended"}, StatusPermanentFailure, 403},
		{"opted out", &sms.Error{Status: sms.OptedOut, Message: "STOP received"}, StatusOptOut, 400},
		{"unclassified", errors.New("connection reset by peer"), StatusUnknownFailure, 500},
	} {
		t.Run(tc.name, func(t *testing.T) {
			carrier := &scriptedCarrier{answers: []error{nil, tc.refusal}}
			svc, app := newTestService(t, carrier, time.Second)
			if _, err := svc.Send(context.Background(), sendRequest(app)); err != nil {
				t.Fatal(err)
			}
			first := carrier.lastCode(t)
			res, err := svc.Send(context.Background(), sendRequest(app))
			if err != nil {
				t.Fatalf("a refused send is a result, not an error: %v", err)
			}
			if res.DeliveryStatus != tc.wantStatus || res.StatusCode != tc.wantCode || res.StatusMessage == "" || res.MessageID == "" {
				t.Errorf("result = %+v, want %s %d with a message and a MessageId", res, tc.wantStatus, tc.wantCode)
			}
			if !verifies(t, svc, app, first) {
				t.Error("the previous code stopped verifying after a refused send")
			}
		})
	}
}

func TestCarrierTimeoutIsATemporaryFailure(t *testing.T) {
	carrier := &scriptedCarrier{answers: []error{nil}, hold: make(chan struct{})}
	svc, app := newTestService(t, carrier, 50*time.Millisecond)
	res, err := svc.Send(context.Background(), sendRequest(app))
	if err != nil {
		t.Fatal(err)
	}
	if res.DeliveryStatus != StatusTemporaryFailure || res.StatusCode != 504 {
		t.Errorf("result = %+v, want TEMPORARY_FAILURE 504", res)
	}
}

// lateCarrier does not answer in time but delivers the message all the
// same, as an SMSC that answers submit_sm after the deadline does.
type lateCarrier struct {
	mu    sync.Mutex
	texts []string
}

func (c *lateCarrier) Name() string { return "late" }

func (c *lateCarrier) Send(ctx context.Context, m sms.Message) (sms.Receipt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.texts = append(c.texts, m.Text)
	return sms.Receipt{}, &sms.Error{Status: sms.Temporary, Code: 504, MayDeliver: true, Message: "no answer in time; it may still deliver the message"}
}

// A send whose carrier may still deliver the message fails, but stores its
// code: it verifies if the message arrives. (A refusal stores none:
// TestRefusedSendKeepsThePreviousCode.)
func TestCodeOfAMessageThatMayStillArriveVerifies(t *testing.T) {
	carrier := &lateCarrier{}
	svc, app := newTestService(t, carrier, time.Second)
	res, err := svc.Send(context.Background(), sendRequest(app))
	if err != nil {
		t.Fatal(err)
	}
	if res.DeliveryStatus != StatusTemporaryFailure || res.StatusCode != 504 {
		t.Errorf("result = %+v, want TEMPORARY_FAILURE 504", res)
	}
	code := regexp.MustCompile(`\d{6}`).FindString(carrier.texts[0])
	if !verifies(t, svc, app, code) {
		t.Error("the code of a message the carrier delivered after the send failed does not verify")
	}
}

func TestConcurrentRetriesSendOnce(t *testing.T) {
	carrier := &scriptedCarrier{answers: []error{nil}, hold: make(chan struct{})}
	svc, app := newTestService(t, carrier, 5*time.Second)
	req := sendRequest(app)
	req.InvocationID = "b5f6a3e0-6a1c-4c43-8a39-0d6f3b1e2c77"
	results := sendConcurrently(t, svc, req, 4, func() {
		time.Sleep(100 * time.Millisecond) // the retries arrive while the first is at the carrier
		close(carrier.hold)
	})
	if n := carrier.calls.Load(); n != 1 {
		t.Errorf("the carrier was called %d times for one invocation ID, want 1", n)
	}
	checkOneResult(t, results)
}

// TestClientGoneDuringSend checks that a client that goes while the
// carrier works (an SDK's read timeout) does not cancel the send: its retry
// with the same invocation ID gets the carrier's answer, and the code sent
// verifies.
func TestClientGoneDuringSend(t *testing.T) {
	carrier := &scriptedCarrier{answers: []error{nil}, hold: make(chan struct{})}
	svc, app := newTestService(t, carrier, 5*time.Second)
	req := sendRequest(app)
	req.InvocationID = "0f4c2a52-9d1e-4b7a-a3c6-5e2d8f1b7c90"
	ctx, cancel := context.WithCancel(context.Background())
	type outcome struct {
		res SendResult
		err error
	}
	gone := make(chan outcome, 1)
	go func() {
		res, err := svc.Send(ctx, req)
		gone <- outcome{res, err}
	}()
	waitFor(t, "the carrier to be called", func() bool { return carrier.calls.Load() > 0 })
	cancel() // the client goes while the carrier holds the message
	close(carrier.hold)
	if first := <-gone; first.err != nil || first.res.DeliveryStatus != StatusSuccessful {
		t.Fatalf("the send whose client went: %+v, %v; want the carrier's answer, SUCCESSFUL", first.res, first.err)
	}
	res, err := svc.Send(context.Background(), req)
	if err != nil || res.DeliveryStatus != StatusSuccessful {
		t.Errorf("the retry: %+v, %v; want the carrier's answer, SUCCESSFUL", res, err)
	}
	if n := carrier.calls.Load(); n != 1 {
		t.Errorf("the carrier was called %d times, want 1", n)
	}
	if !verifies(t, svc, app, carrier.lastCode(t)) {
		t.Error("the code texted while the client was gone does not verify")
	}
}

// TestBrandNameIsTrimmed checks that spaces around the brand stay out of
// the text.
func TestBrandNameIsTrimmed(t *testing.T) {
	carrier := &scriptedCarrier{answers: []error{nil}}
	svc, app := newTestService(t, carrier, 5*time.Second)
	req := sendRequest(app)
	req.BrandName = "  Acme Corp "
	if _, err := svc.Send(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if text := carrier.accepted[0].Text; !strings.HasSuffix(text, " from Acme Corp") {
		t.Errorf("text = %q, want it to end with the brand trimmed, \" from Acme Corp\"", text)
	}
}

// TestSendKeepsTheRequestDeadline checks that the carrier, which outlives
// its client's cancellation, is still bound by the request's deadline when
// that comes before the send timeout.
func TestSendKeepsTheRequestDeadline(t *testing.T) {
	carrier := &scriptedCarrier{answers: []error{nil}}
	svc, app := newTestService(t, carrier, 20*time.Second)
	deadline := time.Now().Add(10 * time.Second)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	if _, err := svc.Send(ctx, sendRequest(app)); err != nil {
		t.Fatal(err)
	}
	if carrier.deadline.IsZero() || carrier.deadline.After(deadline) {
		t.Errorf("the carrier's deadline = %v, want the request's, %v", carrier.deadline, deadline)
	}
}

// TestClientGoneBeforeSend checks that a request without an invocation ID
// whose client has gone by the time the message is ready texts nothing: no
// retry could be answered with it.
func TestClientGoneBeforeSend(t *testing.T) {
	carrier := &scriptedCarrier{answers: []error{nil}}
	svc, app := newTestService(t, carrier, 5*time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	svc.rand = cancellingReader{cancel} // the client goes as the code is drawn
	if _, err := svc.Send(ctx, sendRequest(app)); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if n := carrier.calls.Load(); n != 0 {
		t.Errorf("the carrier was called %d times, want 0", n)
	}
}

// cancellingReader is crypto/rand's reader that calls cancel first.
type cancellingReader struct{ cancel context.CancelFunc }

func (r cancellingReader) Read(p []byte) (int, error) {
	r.cancel()
	return rand.Read(p)
}

// waitFor waits, for at most 10 seconds, until cond holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// sendConcurrently sends req n times at once, calls meanwhile (if not nil)
// while they run, and returns their results once all have returned.
func sendConcurrently(t *testing.T, svc *Service, req SendRequest, n int, meanwhile func()) []SendResult {
	t.Helper()
	results := make([]SendResult, n)
	var wg sync.WaitGroup
	for i := range results {
		wg.Go(func() {
			res, err := svc.Send(context.Background(), req)
			if err != nil {
				t.Errorf("send %d: %v", i, err)
			}
			results[i] = res
		})
	}
	if meanwhile != nil {
		meanwhile()
	}
	wg.Wait()
	return results
}

// checkOneResult checks that every result is the first, a successful send.
func checkOneResult(t *testing.T, results []SendResult) {
	t.Helper()
	for i, res := range results {
		if res.MessageID != results[0].MessageID || res.DeliveryStatus != StatusSuccessful {
			t.Errorf("result %d = %+v, want the first result %+v", i, res, results[0])
		}
	}
}

func TestSendToDeletedAppIsNotFound(t *testing.T) {
	carrier := &scriptedCarrier{answers: []error{nil}}
	svc, app := newTestService(t, carrier, time.Second)
	if _, err := svc.DeleteApp(context.Background(), app); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Send(context.Background(), sendRequest(app)); !errors.Is(err, ErrAppNotFound) {
		t.Errorf("send to a deleted application: %v, want ErrAppNotFound", err)
	}
	_, outcome, err := svc.Verify(context.Background(), VerifyRequest{AppID: app, DestinationIdentity: "+14255550142", ReferenceID: "ref", Otp: "123456"})
	if !errors.Is(err, ErrAppNotFound) || outcome != "" {
		t.Errorf("verify in a deleted application: %v %q, want ErrAppNotFound", err, outcome)
	}
}

// pickyCarrier may send only from one identity.
type pickyCarrier struct{ scriptedCarrier }

func (c *pickyCarrier) CheckOrigination(_, _, from string) error {
	if from != "+18555550142" {
		return errors.New("may not be " + from + " for this destination: the route's carriers may use +18555550142")
	}
	return nil
}

func TestOriginationCheckedBeforeSending(t *testing.T) {
	carrier := &pickyCarrier{scriptedCarrier{answers: []error{nil}}}
	svc, app := newTestService(t, carrier, time.Second)
	req := sendRequest(app)
	req.OriginationIdentity = "ExampleCo"
	_, err := svc.Send(context.Background(), req)
	var inv *InvalidError
	if !errors.As(err, &inv) || inv.Field != "OriginationIdentity" {
		t.Fatalf("send from a refused identity: %v, want an InvalidError on OriginationIdentity", err)
	}
	if carrier.calls.Load() != 0 {
		t.Error("the carrier was called for a refused origination identity")
	}
	if _, err := svc.Send(context.Background(), sendRequest(app)); err != nil {
		t.Errorf("send from an allowed identity: %v", err)
	}
}

// TestOutboxEntryIsStoredWithTheCode: with the development outbox, the
// message reaches the outbox in the same write as its code, and neither
// when the application is gone by then.
func TestOutboxEntryIsStoredWithTheCode(t *testing.T) {
	svc, st, appID := newOutboxService(t)
	ctx := context.Background()
	res, err := svc.Send(ctx, sendRequest(appID))
	if err != nil || res.DeliveryStatus != StatusSuccessful {
		t.Fatalf("Send = %+v, %v", res, err)
	}
	msgs, err := st.ListOutbox(ctx, storage.OutboxQuery{})
	if err != nil || len(msgs) != 1 || msgs[0].MessageID != res.MessageID {
		t.Fatalf("ListOutbox = %+v, %v; want the message %s", msgs, err, res.MessageID)
	}
	code := regexp.MustCompile(`\d{6}`).FindString(msgs[0].Body)
	if !verifies(t, svc, appID, code) {
		t.Error("the code in the outbox does not verify")
	}

	// Deleted behind the Service's back (another instance), so that its
	// cache still holds the application.
	if _, err := st.DeleteApp(ctx, appID); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Send(ctx, sendRequest(appID)); !errors.Is(err, ErrAppNotFound) {
		t.Fatalf("Send for a deleted application: %v, want ErrAppNotFound", err)
	}
	if msgs, err := st.ListOutbox(ctx, storage.OutboxQuery{}); err != nil || len(msgs) != 1 {
		t.Errorf("ListOutbox after a send for a deleted application = %d messages, %v; want still 1", len(msgs), err)
	}
}

// TestOutboxRetriesSendOnce: with the development outbox, a store that
// decides the send's claim in the write that delivers it
// (storage.SendOnceRecorder) lets retries of one request, concurrent or
// later, deliver one message and all get its result.
func TestOutboxRetriesSendOnce(t *testing.T) {
	svc, st, appID := newOutboxService(t)
	ctx := context.Background()
	req := sendRequest(appID)
	req.InvocationID = "0b6f3d7e-2a41-4c55-9d0e-5f1c2b3a4d6e"
	results := sendConcurrently(t, svc, req, 8, nil)
	later, err := svc.Send(ctx, req)
	if err != nil {
		t.Fatalf("a later retry: %v", err)
	}
	checkOneResult(t, append(results, later))
	msgs, err := st.ListOutbox(ctx, storage.OutboxQuery{})
	if err != nil || len(msgs) != 1 || msgs[0].MessageID != results[0].MessageID {
		t.Fatalf("ListOutbox = %+v, %v; want the one message %s", msgs, err, results[0].MessageID)
	}
	if code := regexp.MustCompile(`\d{6}`).FindString(msgs[0].Body); !verifies(t, svc, appID, code) {
		t.Error("the code in the outbox does not verify")
	}

	other := req
	other.ReferenceID = "another-reference"
	writes := st.Stats().Writes
	if res, err := svc.Send(ctx, other); err != nil || res.MessageID == results[0].MessageID {
		t.Errorf("the same invocation ID with other parameters = %+v, %v; want a send of its own", res, err)
	}
	if n := st.Stats().Writes - writes; n != 1 {
		t.Errorf("a send to the outbox took %d writes of the store, want 1", n)
	}
}

// storeCalls records what Observer.StoreCall hears, as "method" or
// "method failed".
type storeCalls struct {
	nopObserver
	mu    sync.Mutex
	calls []string
}

func (o *storeCalls) StoreCall(method string, elapsed time.Duration, failed bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if failed {
		method += " failed"
	}
	o.calls = append(o.calls, method)
}

func (o *storeCalls) take() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	calls := o.calls
	o.calls = nil
	return calls
}

// Every call of the store is reported with whether it failed; an answer
// such as not found is no failure.
func TestStoreCallsAreObserved(t *testing.T) {
	st := openTestStore(t)
	carrier := &scriptedCarrier{answers: []error{nil}}
	svc, appID := newTestServiceOn(t, st, carrier, 0)
	obs := &storeCalls{}
	svc.observer = obs
	if _, err := svc.CreateApp(t.Context(), NewApp{Name: "another"}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Send(t.Context(), sendRequest(appID)); err != nil {
		t.Fatal(err)
	}
	verifies(t, svc, appID, carrier.lastCode(t))
	if _, err := svc.App(t.Context(), strings.Repeat("0", 32)); !errors.Is(err, ErrAppNotFound) {
		t.Fatalf("App of an unknown ID: %v, want ErrAppNotFound", err)
	}
	st.Close()
	if _, _, err := svc.Verify(t.Context(), VerifyRequest{AppID: appID, DestinationIdentity: "+14255550142", ReferenceID: "ref", Otp: "123456"}); err == nil {
		t.Fatal("Verify on a closed store succeeded")
	}
	want := []string{"CreateApp", "GetApp", "DestinationLockout", "RecordSend", "VerifyCode", "GetApp", "VerifyCode failed"}
	if got := obs.take(); !slices.Equal(got, want) {
		t.Errorf("store calls observed: %q, want %q", got, want)
	}
}

// While the store takes another code hashing key, the Service refuses to
// send or verify before it touches the carrier or the store: a right code
// is neither consumed nor counted as a wrong guess, and answers once the
// key is the store's again.
func TestKeyReplacedRefusesSendAndVerify(t *testing.T) {
	var replaced atomic.Bool
	carrier := &scriptedCarrier{answers: []error{nil}}
	key := make([]byte, 32)
	rand.Read(key)
	svc, err := NewService(Config{Store: openTestStore(t), Carrier: carrier, MACKey: key, KeyReplaced: replaced.Load})
	if err != nil {
		t.Fatal(err)
	}
	app, err := svc.CreateApp(context.Background(), NewApp{Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	req := sendRequest(app.ID)
	one := 1
	req.AllowedAttempts = &one // a wrong guess would use it up
	if _, err := svc.Send(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	code := carrier.lastCode(t)

	replaced.Store(true)
	for _, invocationID := range []string{"", "retry-1"} {
		req := sendRequest(app.ID)
		req.InvocationID = invocationID
		if _, err := svc.Send(context.Background(), req); !errors.Is(err, ErrKeyReplaced) {
			t.Errorf("Send (invocation ID %q) with the key replaced: %v, want ErrKeyReplaced", invocationID, err)
		}
	}
	if n := carrier.calls.Load(); n != 1 {
		t.Errorf("the carrier was called %d times, want only the first send's", n)
	}
	_, _, err = svc.Verify(context.Background(), VerifyRequest{AppID: app.ID, DestinationIdentity: "+14255550142", ReferenceID: "ref", Otp: code})
	if !errors.Is(err, ErrKeyReplaced) {
		t.Errorf("Verify with the key replaced: %v, want ErrKeyReplaced", err)
	}

	replaced.Store(false)
	if !verifies(t, svc, app.ID, code) {
		t.Error("the code does not verify once the key is the store's again")
	}
}

// completionLosingStore fails to record what a refused send leaves for its
// retries (a completion without a code), and stores everything else.
type completionLosingStore struct{ *sqlite.Store }

func (s completionLosingStore) RecordSend(ctx context.Context, r storage.SendRecord) error {
	if r.Code == nil && r.Completion != nil {
		return errors.New("the store went away")
	}
	return s.Store.RecordSend(ctx, r)
}

// TestRetryOfARefusedSendWhoseResultWasLost checks that a retry of a send
// the carrier refused, whose result could not be recorded, asks the
// carrier again at once instead of waiting for the first send's claim to
// run out.
func TestRetryOfARefusedSendWhoseResultWasLost(t *testing.T) {
	carrier := &scriptedCarrier{answers: []error{&sms.Error{Status: sms.Temporary, Code: 503, Message: "carrier down"}, nil}}
	key := make([]byte, 32)
	rand.Read(key)
	svc, err := NewService(Config{Store: completionLosingStore{openTestStore(t)}, Carrier: carrier, MACKey: key, SendTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	app, err := svc.CreateApp(t.Context(), NewApp{Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	req := sendRequest(app.ID)
	req.InvocationID = "6f1d2c3b-0a9e-4f8d-b7c6-5e4d3c2b1a09"
	if res, err := svc.Send(t.Context(), req); err != nil || res.DeliveryStatus != StatusTemporaryFailure {
		t.Fatalf("first send = %+v, %v; want a temporary failure", res, err)
	}
	// The claim's lease outlasts this context many times over.
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	res, err := svc.Send(ctx, req)
	if err != nil || res.DeliveryStatus != StatusSuccessful {
		t.Fatalf("retry = %+v, %v; want it sent (the carrier asked again)", res, err)
	}
	if n := carrier.calls.Load(); n != 2 {
		t.Errorf("the carrier was asked %d times, want 2", n)
	}
	if code := carrier.lastCode(t); !verifies(t, svc, app.ID, code) {
		t.Error("the retry's code does not verify")
	}
}

// writesFailing is a store whose writes fail while its reads work, as the
// embedded store's do on a full disk.
type writesFailing struct{ *sqlite.Store }

func (writesFailing) WritesFailing(context.Context) error { return errors.New("the disk is full") }

// A send texts nothing while its store says its writes fail: the code
// could not be kept, so it would never verify, and every retry would text
// the user again.
func TestSendTextsNothingWhileTheStoreCannotWrite(t *testing.T) {
	carrier := &scriptedCarrier{answers: []error{nil}}
	st := openTestStore(t)
	_, appID := newTestServiceOn(t, st, carrier, 0)
	svc, err := NewService(Config{Store: writesFailing{st}, Carrier: carrier, MACKey: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	for _, invocation := range []string{"", "c0ffee00-0000-4000-8000-000000000001"} {
		req := sendRequest(appID)
		req.InvocationID = invocation
		if _, err := svc.Send(context.Background(), req); !errors.Is(err, ErrStoreCannotWrite) || !strings.Contains(err.Error(), "the disk is full") {
			t.Errorf("send (invocation ID %q): %v, want it refused for the store's writes", invocation, err)
		}
	}
	if n := carrier.calls.Load(); n != 0 {
		t.Errorf("the carrier was asked %d times, want none", n)
	}
}
