package otp

import (
	"context"
	"crypto/rand"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/otpd/otpd/internal/sms"
	"github.com/otpd/otpd/internal/storage"
)

// earlyReporter is a carrier whose report of a message reaches the Service
// before its Send returns, as an SMSC's receipt that follows its
// submit_sm_resp on the same connection does: before the send has stored
// the message's record.
type earlyReporter struct {
	svc      *Service
	tried    chan struct{} // closed once the report looked for the record
	reported chan struct{} // closed once Report returned
}

func (c *earlyReporter) Name() string { return "early" }

func (c *earlyReporter) Send(ctx context.Context, m sms.Message) (sms.Receipt, error) {
	go func() {
		defer close(c.reported)
		rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c.svc.Report(rctx, sms.DeliveryReport{Carrier: c.Name(), CarrierMessageID: "E-" + m.ID, MessageID: m.ID,
			State: sms.Delivered, Code: "DELIVRD"})
	}()
	select {
	case <-c.tried:
	case <-ctx.Done():
		return sms.Receipt{}, ctx.Err()
	}
	return sms.Receipt{CarrierMessageID: "E-" + m.ID}, nil
}

// firstCall closes seen when the store's method is first called.
type firstCall struct {
	nopObserver
	method string
	seen   chan struct{}
	once   sync.Once
}

func (o *firstCall) StoreCall(method string, _ time.Duration, _ bool) {
	if method == o.method {
		o.once.Do(func() { close(o.seen) })
	}
}

// A report that names otpd's message and comes before the send stored the
// message's record is not lost: it is applied once the record is there.
func TestReportBeforeTheRecordIsApplied(t *testing.T) {
	st := openTestStore(t)
	carrier := &earlyReporter{reported: make(chan struct{})}
	svc, app := newTestServiceOn(t, st, carrier, 5*time.Second)
	obs := &firstCall{method: "UpdateMessageStatus", seen: make(chan struct{})}
	svc.observer = obs
	carrier.svc, carrier.tried = svc, obs.seen
	res, err := svc.Send(t.Context(), sendRequest(app))
	if err != nil || res.DeliveryStatus != StatusSuccessful {
		t.Fatalf("Send = %+v, %v; want SUCCESSFUL", res, err)
	}
	<-carrier.reported
	msgs, err := st.ListMessages(t.Context(), storage.MessageQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || msgs[0].Status != storage.MessageDelivered || msgs[0].StatusCode != "DELIVRD" {
		t.Errorf("messages = %+v, want one DELIVERED by the report that came before its record", msgs)
	}
}

// A report that does not name otpd's message (the carrier could not match
// it to one it sent) and finds no record is dropped at once: it may be of
// a message otpd never sent, and must not hold up the carrier's next
// reports.
func TestReportOfAnUnknownMessageIsTriedOnce(t *testing.T) {
	svc, _ := newTestService(t, &scriptedCarrier{answers: []error{nil}}, time.Second)
	obs := &storeCalls{}
	svc.observer = obs
	svc.Report(t.Context(), sms.DeliveryReport{Carrier: "scripted", CarrierMessageID: "X99", State: sms.Undelivered, Code: "REJECTD"})
	if got, want := obs.take(), []string{"UpdateMessageStatus"}; !slices.Equal(got, want) {
		t.Errorf("store calls: %q, want %q", got, want)
	}
}

// TestReportOfAMessageWhoseRecordIsGoneIsTriedOnce checks that a report
// naming a message otpd sent too long ago for its record to be still on
// its way (it was purged, or never stored), or naming no carrier message
// ID, is not tried again: the carrier's other reports wait behind it.
func TestReportOfAMessageWhoseRecordIsGoneIsTriedOnce(t *testing.T) {
	svc, _ := newTestService(t, &scriptedCarrier{answers: []error{nil}}, time.Second)
	obs := &storeCalls{}
	svc.observer = obs
	old, err := uuid.NewV7FromReader(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// An hour before now, in the version 7 UUID's 48-bit millisecond time.
	ms := time.Now().Add(-time.Hour).UnixMilli()
	for i := range 6 {
		old[i] = byte(ms >> (40 - 8*i))
	}
	fresh, err := uuid.NewV7()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []sms.DeliveryReport{
		{Carrier: "scripted", CarrierMessageID: "X1", MessageID: old.String(), State: sms.Undelivered, Code: "EXPIRED"},
		{Carrier: "scripted", CarrierMessageID: "", MessageID: fresh.String(), State: sms.Delivered, Code: "DELIVRD"},
	} {
		svc.Report(t.Context(), r)
		if got, want := obs.take(), []string{"UpdateMessageStatus"}; !slices.Equal(got, want) {
			t.Errorf("report %+v: store calls %q, want %q", r, got, want)
		}
	}
}
