package smpp

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/linxGnu/gosmpp/data"
	"github.com/linxGnu/gosmpp/pdu"

	"github.com/otpd/otpd/internal/faultproxy"
	"github.com/otpd/otpd/internal/gsm7"
	"github.com/otpd/otpd/internal/sms"
	"github.com/otpd/otpd/internal/sms/smstest"
)

// startCarrier returns a carrier bound to the SMSC at addr, closed when the
// test ends. edit changes the tests' configuration.
func startCarrier(t *testing.T, addr string, edit ...func(*Config)) *Carrier {
	t.Helper()
	cfg := Config{
		Name:               "smpp-test",
		Addr:               addr,
		SystemID:           testSystemID,
		Password:           testPassword,
		SubmitTimeout:      2 * time.Second,
		RegisteredDelivery: true,
	}
	for _, e := range edit {
		e(&cfg)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	c, err := New(ctx, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

var messageMu sync.Mutex // guards messageSeq
var messageSeq int

// message returns a message from +18555550142 to +14255550142 with text.
func message(text string) sms.Message {
	messageMu.Lock()
	messageSeq++
	id := fmt.Sprintf("00000000-0000-4000-8000-%012d", messageSeq)
	messageMu.Unlock()
	return sms.Message{ID: id, AppID: "app", From: "+18555550142", To: "+14255550142", Text: text, Language: "en-US"}
}

// otp returns the en-US text of a message carrying code.
func otp(code string) string {
	return "This is your One Time Password: " + code + " from ExampleCorp"
}

// send sends m with a deadline of 5 s.
func send(t *testing.T, c *Carrier, m sms.Message) (sms.Receipt, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	return c.Send(ctx, m)
}

// refusalOf returns the *sms.Error of err, failing the test unless it has
// status want and a message that does not repeat text.
func refusalOf(t *testing.T, err error, want sms.Status, text string) *sms.Error {
	t.Helper()
	var ce *sms.Error
	if !errors.As(err, &ce) {
		t.Fatalf("got error %v (%T), want an *sms.Error", err, err)
	}
	if ce.Status != want {
		t.Errorf("got Status %v (%v), want %v", ce.Status, err, want)
	}
	if ce.Message == "" {
		t.Errorf("the refusal has no Message: %#v", ce)
	}
	for _, s := range []string{ce.Message, err.Error()} {
		if strings.Contains(s, text) || strings.Contains(s, "123456") {
			t.Errorf("the refusal %q repeats the text or its code", s)
		}
	}
	return ce
}

// eventually fails the test unless cond holds within d.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// recorder is a Reporter that keeps the reports.
type recorder struct{ ch chan sms.DeliveryReport }

func newRecorder() *recorder { return &recorder{ch: make(chan sms.DeliveryReport, 64)} }

func (r *recorder) Report(_ context.Context, rep sms.DeliveryReport) { r.ch <- rep }

// next returns the next report, failing the test if none comes within 5 s.
func (r *recorder) next(t *testing.T) sms.DeliveryReport {
	t.Helper()
	select {
	case rep := <-r.ch:
		return rep
	case <-time.After(5 * time.Second):
		t.Fatal("no delivery report within 5 s")
		return sms.DeliveryReport{}
	}
}

// none fails the test if a report comes within d.
func (r *recorder) none(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case rep := <-r.ch:
		t.Errorf("got report %+v, want none", rep)
	case <-time.After(d):
	}
}

func TestConformance(t *testing.T) {
	smstest.Run(t, func(t *testing.T) (sms.Carrier, smstest.Peer) {
		s := startSMSC(t)
		return startCarrier(t, s.Addr()), s
	})
}

// TestRefusals: every command_status maps to its refusal, named.
func TestRefusals(t *testing.T) {
	t.Parallel()
	s := startSMSC(t)
	c := startCarrier(t, s.Addr())
	for _, tc := range []struct {
		status data.CommandStatusType
		want   sms.Status
		code   int
		name   string
	}{
		{0x58, sms.Throttled, 429, "ESME_RTHROTTLED"},
		{0x14, sms.Throttled, 429, "ESME_RMSGQFUL"},
		{0x08, sms.Temporary, 503, "ESME_RSYSERR"},
		{0x45, sms.Temporary, 503, "ESME_RSUBMITFAIL"},
		{0x0B, sms.Permanent, 400, "ESME_RINVDSTADR"},
		{0x0A, sms.NotPermitted, 403, "ESME_RINVSRCADR"},
		{0x101, sms.NotPermitted, 403, "ESME_RPROHIBITED"},
		{0x01, sms.Permanent, 400, "ESME_RINVMSGLEN"},
		{0x104, sms.Permanent, 400, "ESME_RINVDCS"},
		{0x43, sms.Permanent, 400, "ESME_RINVESMCLASS"},
		{0x65, sms.Permanent, 400, "ESME_RX_P_APPN"},
		{0x401, sms.Temporary, 503, "vendor-specific status (0x00000401"},
		{0x12345, sms.Temporary, 503, "unknown status (0x00012345"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.set(func(s *testSMSC) { s.status = tc.status })
			m := message(otp("123456"))
			_, err := send(t, c, m)
			ce := refusalOf(t, err, tc.want, m.Text)
			if ce.Code != tc.code {
				t.Errorf("Code = %d, want %d", ce.Code, tc.code)
			}
			if !strings.Contains(ce.Message, tc.name) {
				t.Errorf("Message %q does not name %s", ce.Message, tc.name)
			}
		})
	}
}

// longGSMText is a three-part GSM 03.38 text.
var longGSMText = strings.Repeat("Your code is 271828. Never share it; ExampleCorp staff never ask for it. ", 5) +
	"€ {A-7} [B~9] costs 5€ | 10^3 \\ è é ñ ü Ä Δ ¿ @ £ §"

// TestNotBoundStatus: ESME_RINVBNDSTS is a temporary failure, and the
// carrier binds again.
func TestNotBoundStatus(t *testing.T) {
	t.Parallel()
	s := startSMSC(t)
	c := startCarrier(t, s.Addr())
	s.set(func(s *testSMSC) { s.status = data.ESME_RINVBNDSTS })
	m := message(otp("123456"))
	_, err := send(t, c, m)
	refusalOf(t, err, sms.Temporary, m.Text)
	s.set(func(s *testSMSC) { s.status = 0 })
	eventually(t, 5*time.Second, "the carrier did not bind again after ESME_RINVBNDSTS", func() bool {
		return get(s, func(s *testSMSC) int { return s.binds }) == 2
	})
	eventually(t, 5*time.Second, "Send does not succeed after the re-bind", func() bool {
		_, err := send(t, c, message(otp("123456")))
		return err == nil
	})
}

// TestPartRefused: a concatenated message fails when one of its parts is
// refused, and the refusal names the part and keeps the status's class.
// If the SMSC took another part (before the refused one, or after it while
// the window let both await their answers), the handset may show that
// part, and the code in it: the failure may deliver, as one cut short
// after a part was submitted does (TestNotSubmitted), so that otpd keeps
// the code.
func TestPartRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		window     int
		statusOf   map[int]data.CommandStatusType // by part
		want       sms.Status
		code       int
		part       string
		mayDeliver bool
	}{
		{"a later part", 1, map[int]data.CommandStatusType{2: data.ESME_RINVDSTADR}, sms.Permanent, 400, "part 2 of 3", true},
		{"a later part, throttled", 1, map[int]data.CommandStatusType{3: data.ESME_RTHROTTLED}, sms.Throttled, 429, "part 3 of 3", true},
		{"the first part, the later ones accepted", 3, map[int]data.CommandStatusType{1: data.ESME_RINVSRCADR}, sms.NotPermitted, 403, "part 1 of 3", true},
		{"every part", 3, map[int]data.CommandStatusType{1: data.ESME_RSYSERR, 2: data.ESME_RSYSERR, 3: data.ESME_RSYSERR}, sms.Temporary, 503, "part 1 of 3", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startSMSC(t)
			c := startCarrier(t, s.Addr(), func(cfg *Config) { cfg.Window = tc.window })
			s.set(func(s *testSMSC) { s.statusOf = tc.statusOf })
			m := message(longGSMText)
			_, err := send(t, c, m)
			ce := refusalOf(t, err, tc.want, m.Text)
			if ce.Code != tc.code {
				t.Errorf("Code = %d, want %d", ce.Code, tc.code)
			}
			if !strings.Contains(ce.Message, tc.part) {
				t.Errorf("Message %q does not name %s", ce.Message, tc.part)
			}
			if got := sms.MayDeliver(err); got != tc.mayDeliver {
				t.Errorf("MayDeliver = %v, want %v (%v)", got, tc.mayDeliver, err)
			}
			if partial := strings.Contains(ce.Message, "partial message"); partial != tc.mayDeliver {
				t.Errorf("Message %q: says the handset may show a partial message: %v, want %v", ce.Message, partial, tc.mayDeliver)
			}
			if n := len(s.Submits()); n != 3 {
				t.Errorf("the SMSC got %d submit_sm, want 3", n)
			}
		})
	}
}

// TestEncoding: data_coding, the septets or UTF-16 units, and the user data
// headers of concatenated messages, byte for byte.
func TestEncoding(t *testing.T) {
	t.Parallel()
	s := startSMSC(t)
	c := startCarrier(t, s.Addr())
	gsm := "Code 123456: {€} @£$ è Δ"
	ucs := "Código 123456 ç 🚀"
	for _, m := range []sms.Message{message(gsm), message(ucs), message(longGSMText), message(longGSMText)} {
		if _, err := send(t, c, m); err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	subs := s.Submits()
	if len(subs) != 8 {
		t.Fatalf("the SMSC got %d submit_sm, want 8 (1 + 1 + 3 + 3)", len(subs))
	}
	raw := func(sm *pdu.SubmitSM) (byte, []byte) {
		b, _ := sm.Message.GetMessageData()
		return sm.Message.Encoding().DataCoding(), b
	}
	wantGSM, _ := gsm7.Encode(gsm)
	if coding, b := raw(subs[0]); coding != 0 || !bytes.Equal(b, wantGSM) || subs[0].EsmClass != 0 {
		t.Errorf("GSM text: data_coding %d, esm_class 0x%02X, user data % X; want 0, 0x00, % X", coding, subs[0].EsmClass, b, wantGSM)
	}
	if coding, b := raw(subs[1]); coding != 8 || !bytes.Equal(b, gsm7.EncodeUCS2(ucs)) {
		t.Errorf("UCS-2 text: data_coding %d, user data % X; want 8, % X", coding, b, gsm7.EncodeUCS2(ucs))
	}
	if subs[0].RegisteredDelivery != 1 {
		t.Errorf("registered_delivery = %d, want 1", subs[0].RegisteredDelivery)
	}
	parts := gsm7.Split(longGSMText, gsm7.GSM7)
	var refs []byte
	for i, sm := range subs[2:] {
		udh, err := sm.Message.UDH().MarshalBinary()
		if err != nil || len(udh) != 6 || udh[0] != 5 || udh[1] != 0 || udh[2] != 3 || udh[4] != 3 || int(udh[5]) != i%3+1 {
			t.Errorf("part %d: user data header % X (%v), want 05 00 03 ref 03 %02X", i, udh, err, i%3+1)
			continue
		}
		if sm.EsmClass != data.SM_UDH_GSM {
			t.Errorf("part %d: esm_class 0x%02X, want 0x40", i, sm.EsmClass)
		}
		want, _ := gsm7.Encode(parts[i%3])
		if _, b := raw(sm); !bytes.Equal(b, want) {
			t.Errorf("part %d: user data % X, want % X", i, b, want)
		}
		refs = append(refs, udh[3])
	}
	if len(refs) == 6 && (refs[0] != refs[1] || refs[1] != refs[2] || refs[3] != refs[4] || refs[4] != refs[5] || refs[0] == refs[3]) {
		t.Errorf("concatenation references % X: want one per message, different for the two", refs)
	}
}

// TestAddresses: TON and NPI of every kind of origination identity, and
// identities SMPP cannot carry.
func TestAddresses(t *testing.T) {
	t.Parallel()
	s := startSMSC(t)
	c := startCarrier(t, s.Addr(), func(cfg *Config) { cfg.RegisteredDelivery = false })
	for _, tc := range []struct {
		from     string
		ton, npi byte
		addr     string
	}{
		{"+18555550142", 1, 1, "18555550142"},
		{"24273", 2, 1, "24273"},
		{"ExampleCo", 5, 0, "ExampleCo"},
		{"Example Co1", 5, 0, "Example Co1"},
	} {
		m := message(otp("123456"))
		m.From = tc.from
		if _, err := send(t, c, m); err != nil {
			t.Fatalf("Send from %q: %v", tc.from, err)
		}
		subs := s.Submits()
		sm := subs[len(subs)-1]
		if a := sm.SourceAddr; a.Ton() != tc.ton || a.Npi() != tc.npi || a.Address() != tc.addr {
			t.Errorf("from %q: source TON %d NPI %d %q, want %d %d %q", tc.from, a.Ton(), a.Npi(), a.Address(), tc.ton, tc.npi, tc.addr)
		}
		if a := sm.DestAddr; a.Ton() != 1 || a.Npi() != 1 || a.Address() != "14255550142" {
			t.Errorf("destination TON %d NPI %d %q, want 1 1 \"14255550142\"", a.Ton(), a.Npi(), a.Address())
		}
		if sm.RegisteredDelivery != 0 {
			t.Errorf("registered_delivery = %d with RegisteredDelivery off, want 0", sm.RegisteredDelivery)
		}
	}
	before := len(s.Submits())
	for _, tc := range []struct{ from, to string }{
		{"ExampleCorp12", "+14255550142"}, // 13 characters
		{"Café", "+14255550142"},
		{"+1855ab", "+14255550142"},
		{"", "+14255550142"},
		{"+18555550142", "14255550142"},
		{"+18555550142", "+1425555014212345"},
		{"+18555550142", "+"},
	} {
		m := message(otp("123456"))
		m.From, m.To = tc.from, tc.to
		_, err := send(t, c, m)
		refusalOf(t, err, sms.Permanent, m.Text)
	}
	if n := len(s.Submits()); n != before {
		t.Errorf("the SMSC got %d submit_sm for identities SMPP cannot carry, want none", n-before)
	}
}

// TestWindow: at most Window submit_sm await their answer at once.
func TestWindow(t *testing.T) {
	t.Parallel()
	s := startSMSC(t)
	c := startCarrier(t, s.Addr(), func(cfg *Config) { cfg.Window = 3 })
	s.set(func(s *testSMSC) { s.delay = 100 * time.Millisecond })
	var wg sync.WaitGroup
	for i := range 12 {
		wg.Go(func() {
			if _, err := send(t, c, message(otp(fmt.Sprintf("%06d", i)))); err != nil {
				t.Errorf("Send: %v", err)
			}
		})
	}
	wg.Wait()
	if got := get(s, func(s *testSMSC) int { return s.maxInflight }); got != 3 {
		t.Errorf("at most %d submit_sm awaited their answer at once, want 3 (the window)", got)
	}
	if got := len(s.Received()); got != 12 {
		t.Errorf("the SMSC received %d messages, want 12", got)
	}
}

// TestRatePerSecond: submit_sm are spaced out by RatePerSecond.
func TestRatePerSecond(t *testing.T) {
	t.Parallel()
	s := startSMSC(t)
	c := startCarrier(t, s.Addr(), func(cfg *Config) { cfg.RatePerSecond = 20 })
	start := time.Now()
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			if _, err := send(t, c, message(otp("123456"))); err != nil {
				t.Errorf("Send: %v", err)
			}
		})
	}
	wg.Wait()
	if elapsed := time.Since(start); elapsed < 240*time.Millisecond {
		t.Errorf("6 submit_sm at 20 per second took %v, want at least 250 ms", elapsed)
	}
}

// textReceipt returns the text of a delivery receipt of the message id.
func textReceipt(id, stat, errCode string) string {
	return "id:" + id + " sub:001 dlvrd:001 submit date:2501021504 done date:2501021505 stat:" + stat + " err:" + errCode + " text:This is your One Ti"
}

// TestDeliveryReceipts: receipts reach the Reporter with the message's
// CarrierMessageID and ID, in text and TLV form, and concatenated messages
// are reported once whole.
func TestDeliveryReceipts(t *testing.T) {
	t.Parallel()
	s := startSMSC(t)
	rec := newRecorder()
	c := startCarrier(t, s.Addr(), func(cfg *Config) { cfg.Reporter = rec })
	m := message(otp("123456"))
	r, err := send(t, c, m)
	if err != nil {
		t.Fatal(err)
	}
	if r.CarrierMessageID == "" {
		t.Fatal("Receipt has no CarrierMessageID")
	}

	// A mobile-originated message is acknowledged and not reported.
	s.deliver(t, 0, "STOP")
	// ENROUTE, then DELIVRD, in the text.
	s.deliver(t, esmDeliveryReceipt, textReceipt(r.CarrierMessageID, "ENROUTE", "000"))
	rep := rec.next(t)
	want := sms.DeliveryReport{Carrier: "smpp-test", CarrierMessageID: r.CarrierMessageID, MessageID: m.ID, State: sms.Pending, Code: "ENROUTE"}
	if rep.At.IsZero() {
		t.Error("the report has no At")
	}
	rep.At = time.Time{}
	if rep != want {
		t.Errorf("ENROUTE receipt: got report %+v, want %+v", rep, want)
	}
	s.deliver(t, esmDeliveryReceipt, textReceipt(r.CarrierMessageID, "DELIVRD", "000"))
	rep = rec.next(t)
	rep.At = time.Time{}
	want.State, want.Code = sms.Delivered, "DELIVRD"
	if rep != want {
		t.Errorf("DELIVRD receipt: got report %+v, want %+v", rep, want)
	}
	// A repeat of a final receipt is dropped.
	s.deliver(t, esmDeliveryReceipt, textReceipt(r.CarrierMessageID, "DELIVRD", "000"))
	rec.none(t, 100*time.Millisecond)

	// TLVs only: receipted_message_id and message_state 5 (UNDELIVERABLE).
	m2 := message(otp("654321"))
	r2, err := send(t, c, m2)
	if err != nil {
		t.Fatal(err)
	}
	s.deliver(t, esmDeliveryReceipt, "",
		pdu.Field{Tag: tagReceiptedMessageID, Data: append([]byte(r2.CarrierMessageID), 0)},
		pdu.Field{Tag: tagMessageState, Data: []byte{5}})
	rep = rec.next(t)
	if rep.CarrierMessageID != r2.CarrierMessageID || rep.MessageID != m2.ID || rep.State != sms.Undelivered || rep.Code != "UNDELIV" {
		t.Errorf("TLV receipt: got report %+v, want %s %s UNDELIVERED UNDELIV", rep, r2.CarrierMessageID, m2.ID)
	}

	// A concatenated message: Delivered once every part is.
	long := message(longGSMText)
	r3, err := send(t, c, long)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string // the parts' message_id, as the test SMSC numbers them
	for i := range 3 {
		ids = append(ids, fmt.Sprintf("T%07d", get(s, func(s *testSMSC) int { return s.nextID })-2+i))
	}
	if r3.CarrierMessageID != ids[0] {
		t.Fatalf("CarrierMessageID = %q, want the first part's %q (parts %v)", r3.CarrierMessageID, ids[0], ids)
	}
	s.deliver(t, esmDeliveryReceipt, textReceipt(ids[2], "DELIVRD", "000"))
	s.deliver(t, esmDeliveryReceipt, textReceipt(ids[0], "DELIVRD", "000"))
	rec.none(t, 100*time.Millisecond)
	s.deliver(t, esmDeliveryReceipt, textReceipt(ids[1], "DELIVRD", "000"))
	rep = rec.next(t)
	if rep.CarrierMessageID != ids[0] || rep.MessageID != long.ID || rep.State != sms.Delivered {
		t.Errorf("receipts of every part: got report %+v, want %s %s DELIVERED", rep, ids[0], long.ID)
	}

	// A concatenated message: Undelivered as soon as one part is.
	long2 := message(longGSMText)
	if _, err := send(t, c, long2); err != nil {
		t.Fatal(err)
	}
	last := get(s, func(s *testSMSC) int { return s.nextID })
	s.deliver(t, esmDeliveryReceipt, textReceipt(fmt.Sprintf("T%07d", last-1), "EXPIRED", "027"))
	rep = rec.next(t)
	if rep.CarrierMessageID != fmt.Sprintf("T%07d", last-2) || rep.MessageID != long2.ID || rep.State != sms.Undelivered || rep.Code != "EXPIRED err:027" {
		t.Errorf("an expired part: got report %+v, want T%07d %s UNDELIVERED \"EXPIRED err:027\"", rep, last-2, long2.ID)
	}
	s.deliver(t, esmDeliveryReceipt, textReceipt(fmt.Sprintf("T%07d", last-2), "DELIVRD", "000"))
	rec.none(t, 100*time.Millisecond)

	// A receipt the carrier cannot match is reported as the SMSC names it.
	s.deliver(t, esmDeliveryReceipt, textReceipt("X99", "REJECTD", "000"))
	rep = rec.next(t)
	if rep.CarrierMessageID != "X99" || rep.MessageID != "" || rep.State != sms.Undelivered {
		t.Errorf("an unknown message's receipt: got report %+v, want X99, no MessageID, UNDELIVERED", rep)
	}
}

// TestConcatenatedReceiptsBeforeEveryPartIsAccepted: receipts of the
// parts of a concatenated message that come before the SMSC accepted every
// part report nothing (the message is not whole, and has no record yet),
// but count once it is: the message is decided by the receipts of all its
// parts, a part that has no message_id yet included.
func TestConcatenatedReceiptsBeforeEveryPartIsAccepted(t *testing.T) {
	t.Parallel()
	s := startSMSC(t)
	rec := newRecorder()
	c := startCarrier(t, s.Addr(), func(cfg *Config) { cfg.Reporter = rec })
	release := s.holdAnswer(t, 2)
	m := message(longGSMText)
	sent := make(chan error, 1)
	go func() {
		_, err := send(t, c, m)
		sent <- err
	}()
	eventually(t, 2*time.Second, "the SMSC did not get the three parts", func() bool { return len(s.Submits()) == 3 })
	id := func(part int) string { return fmt.Sprintf("T%07d", part) } // the test SMSC numbers them in order
	// noReports delivers a marker, a receipt reported as the SMSC names it
	// (no message of the carrier's has its message_id), and fails the test
	// for every report before the marker's: the receipts delivered before
	// it were settled and made none.
	noReports := func(n int, when string) {
		t.Helper()
		mark := fmt.Sprintf("M%d", n)
		s.deliver(t, esmDeliveryReceipt, textReceipt(mark, "ENROUTE", "000"))
		for got := rec.next(t); got.CarrierMessageID != mark; got = rec.next(t) {
			t.Errorf("got report %+v %s, want none", got, when)
		}
	}

	// Parts 1 and 3 accepted, part 2 not yet.
	s.deliver(t, esmDeliveryReceipt, textReceipt(id(1), "ENROUTE", "000"))
	s.deliver(t, esmDeliveryReceipt, textReceipt(id(1), "DELIVRD", "000"))
	s.deliver(t, esmDeliveryReceipt, textReceipt(id(3), "DELIVRD", "000"))
	noReports(1, "while part 2 of 3 was not accepted")

	release()
	if err := <-sent; err != nil {
		t.Fatalf("Send: %v", err)
	}
	s.deliver(t, esmDeliveryReceipt, textReceipt(id(2), "UNDELIV", "001"))
	want := sms.DeliveryReport{Carrier: "smpp-test", CarrierMessageID: id(1), MessageID: m.ID, State: sms.Undelivered, Code: "UNDELIV err:001"}
	got := rec.next(t)
	if got.At.IsZero() {
		t.Error("the report has no At")
	}
	got.At = time.Time{}
	if got != want {
		t.Errorf("part 2 undelivered, parts 1 and 3 delivered before it was accepted: got report %+v, want %+v", got, want)
	}
	s.deliver(t, esmDeliveryReceipt, textReceipt(id(2), "DELIVRD", "000"))
	noReports(2, "after the message was reported final")
}

// TestMessageDecidedBeforeItsLastPartIsAcceptedIsReported: when the
// receipts of a concatenated message's other parts came before its last
// part was accepted, and that part has no usable message_id (so no receipt
// of it will come), accepting it settles the message.
func TestMessageDecidedBeforeItsLastPartIsAcceptedIsReported(t *testing.T) {
	tr := newTracker()
	m := tr.begin("msg-1", 2)
	if _, ok := tr.accepted(m, 0, "A"); ok {
		t.Fatal("part 1 of 2 accepted: asked to settle the message")
	}
	if r, ok := tr.settle(receipt{id: "A", stat: "DELIVRD", err: "000", state: sms.Delivered}); ok {
		t.Fatalf("reported %+v before part 2 was accepted", r)
	}
	by, ok := tr.accepted(m, 1, "")
	if !ok || by != "A" {
		t.Fatalf("part 2 accepted without a message_id: settle by %q, %v; want A, true", by, ok)
	}
	got, ok := tr.settle(receipt{id: by, state: sms.Pending})
	want := sms.DeliveryReport{CarrierMessageID: "A", MessageID: "msg-1", State: sms.Delivered, Code: "DELIVRD"}
	if !ok || got != want {
		t.Errorf("settled: %+v, %v; want %+v", got, ok, want)
	}
	if r, ok := tr.settle(receipt{id: "A", stat: "DELIVRD", err: "000", state: sms.Delivered}); ok {
		t.Errorf("reported %+v again after the message was reported final", r)
	}
}

// gatedReporter is a Reporter that holds every report until release is
// closed, as a store that takes its time would; entered hears when it
// starts to hold one.
type gatedReporter struct {
	*recorder
	entered chan struct{}
	release chan struct{}
}

func newGatedReporter(size int) *gatedReporter {
	return &gatedReporter{
		recorder: &recorder{ch: make(chan sms.DeliveryReport, size)},
		entered:  make(chan struct{}, 1),
		release:  make(chan struct{}),
	}
}

func (r *gatedReporter) Report(ctx context.Context, rep sms.DeliveryReport) {
	select {
	case r.entered <- struct{}{}:
	default:
	}
	select {
	case <-r.release:
		r.ch <- rep
	case <-ctx.Done():
	}
}

// holding waits until r holds a report.
func (r *gatedReporter) holding(t *testing.T) {
	t.Helper()
	select {
	case <-r.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the Reporter was not called within 5 s")
	}
}

// TestSlowReporterLeavesTheLinkAlone: while the Reporter takes its time
// over a receipt, the link goes on reading the SMSC's answers: the next
// message is accepted, not failed as unanswered (which would make a route
// text the user again through another carrier).
func TestSlowReporterLeavesTheLinkAlone(t *testing.T) {
	t.Parallel()
	s := startSMSC(t)
	rep := newGatedReporter(1)
	c := startCarrier(t, s.Addr(), func(cfg *Config) { cfg.Reporter = rep })
	m := message(otp("123456"))
	r, err := send(t, c, m)
	if err != nil {
		t.Fatal(err)
	}
	s.deliver(t, esmDeliveryReceipt, textReceipt(r.CarrierMessageID, "DELIVRD", "000"))
	rep.holding(t)
	if _, err := send(t, c, message(otp("654321"))); err != nil {
		t.Errorf("Send while the Reporter holds a receipt: %v", err)
	}
	close(rep.release)
	if got := rep.next(t); got.MessageID != m.ID || got.State != sms.Delivered {
		t.Errorf("got report %+v, want %s DELIVERED", got, m.ID)
	}
}

// TestReceiptQueueFull: receipts wait for a slow Reporter in a queue, and
// are reported in the order they came; one that finds the queue full is
// answered ESME_RX_T_APPN, so that the SMSC delivers it again later.
func TestReceiptQueueFull(t *testing.T) {
	t.Parallel()
	s := startSMSC(t)
	rep := newGatedReporter(receiptQueue + 2)
	var logs syncBuffer
	c := startCarrier(t, s.Addr(), func(cfg *Config) {
		cfg.Reporter = rep
		cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	id := func(i int) string { return fmt.Sprintf("X%05d", i) }
	s.deliver(t, esmDeliveryReceipt, textReceipt(id(0), "DELIVRD", "000"))
	rep.holding(t) // receipt 0 is out of the queue, with the Reporter
	for i := 1; i <= receiptQueue; i++ {
		s.deliver(t, esmDeliveryReceipt, textReceipt(id(i), "DELIVRD", "000"))
	}
	refused := textReceipt(id(receiptQueue+1), "DELIVRD", "000")
	if got := s.deliverStatus(t, esmDeliveryReceipt, refused); got != data.ESME_RX_T_APPN {
		t.Errorf("a receipt beyond the queue's %d: command_status 0x%08X, want ESME_RX_T_APPN (0x64)", receiptQueue, uint32(got))
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "ESME_RX_T_APPN") {
		t.Errorf("the log after a receipt was refused:\n%s\nwant a warning naming ESME_RX_T_APPN", logs.String())
	}
	if _, err := send(t, c, message(otp("123456"))); err != nil {
		t.Errorf("Send while the queue of receipts is full: %v", err)
	}
	close(rep.release)
	for i := 0; i <= receiptQueue; i++ {
		if got := rep.next(t); got.CarrierMessageID != id(i) {
			t.Fatalf("report %d names %q, want %q: the reports are not in the receipts' order", i, got.CarrierMessageID, id(i))
		}
	}
	s.deliver(t, esmDeliveryReceipt, refused) // the SMSC's next attempt
	if got := rep.next(t); got.CarrierMessageID != id(receiptQueue+1) {
		t.Errorf("the receipt delivered again: got report %+v, want %s", got, id(receiptQueue+1))
	}
}

// TestCloseReportsQueuedReceipts: the receipts acknowledged to the SMSC
// before Close, which it will not send again, are still reported, and Close
// returns once they are.
func TestCloseReportsQueuedReceipts(t *testing.T) {
	t.Parallel()
	s := startSMSC(t)
	rep := newGatedReporter(3)
	c := startCarrier(t, s.Addr(), func(cfg *Config) { cfg.Reporter = rep })
	for i := range 3 {
		s.deliver(t, esmDeliveryReceipt, textReceipt(fmt.Sprintf("Q%d", i), "UNDELIV", "001"))
	}
	rep.holding(t)
	closed := make(chan struct{})
	go func() {
		c.Close()
		close(closed)
	}()
	eventually(t, 2*time.Second, "the SMSC got no unbind", func() bool {
		return get(s, func(s *testSMSC) int { return len(s.conns) }) == 0
	})
	close(rep.release)
	<-closed
	if n := len(rep.ch); n != 3 {
		t.Errorf("%d reports when Close returned, want the 3 receipts acknowledged before it", n)
	}
}

// TestEnquireLink: the carrier sends enquire_link every EnquireLink.
func TestEnquireLink(t *testing.T) {
	t.Parallel()
	s := startSMSC(t)
	startCarrier(t, s.Addr(), func(cfg *Config) { cfg.EnquireLink = 50 * time.Millisecond })
	eventually(t, 3*time.Second, "fewer than 5 enquire_link", func() bool {
		return get(s, func(s *testSMSC) int { return s.enquireLinks }) >= 5
	})
}

// TestDeadLinkRebinds: an enquire_link left unanswered ends the link, and
// the carrier binds again.
func TestDeadLinkRebinds(t *testing.T) {
	t.Parallel()
	s := startSMSC(t)
	c := startCarrier(t, s.Addr(), func(cfg *Config) {
		cfg.EnquireLink = 100 * time.Millisecond
		cfg.SubmitTimeout = 300 * time.Millisecond
	})
	s.set(func(s *testSMSC) { s.muteEnquire = true })
	eventually(t, 3*time.Second, "the carrier did not bind again after an unanswered enquire_link", func() bool {
		return get(s, func(s *testSMSC) int { return s.binds }) >= 2
	})
	s.set(func(s *testSMSC) { s.muteEnquire = false })
	eventually(t, 5*time.Second, "Send does not succeed after the re-bind", func() bool {
		_, err := send(t, c, message(otp("123456")))
		return err == nil
	})
}

// TestDroppedLink: while the SMSC is out of reach, Send fails at once as
// temporary; once it is back the carrier binds again and sends.
func TestDroppedLink(t *testing.T) {
	t.Parallel()
	s := startSMSC(t)
	proxy := faultproxy.Start(t, s.Addr())
	c := startCarrier(t, proxy.Addr(), func(cfg *Config) { cfg.SubmitTimeout = 5 * time.Second })
	if _, err := send(t, c, message(otp("123456"))); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []faultproxy.Mode{faultproxy.Refuse, faultproxy.Blackhole} {
		t.Run(mode.String(), func(t *testing.T) {
			proxy.Set(t, mode)
			eventually(t, 2*time.Second, "the carrier did not notice the cut", func() bool {
				_, err := c.current()
				return err != nil
			})
			m := message(otp("123456"))
			start := time.Now()
			_, err := send(t, c, m)
			ce := refusalOf(t, err, sms.Temporary, m.Text)
			if elapsed := time.Since(start); elapsed > 100*time.Millisecond {
				t.Errorf("Send while the link is down took %v, want it to fail at once", elapsed)
			}
			if !strings.Contains(ce.Message, "not bound") {
				t.Errorf("Message %q does not say that otpd is not bound", ce.Message)
			}
			binds := get(s, func(s *testSMSC) int { return s.binds })
			time.Sleep(700 * time.Millisecond) // a bind attempt or two into the void
			proxy.Set(t, faultproxy.Forward)
			eventually(t, 10*time.Second, "Send does not succeed once the SMSC is back", func() bool {
				_, err := send(t, c, message(otp("123456")))
				return err == nil
			})
			if got := get(s, func(s *testSMSC) int { return s.binds }); got != binds+1 {
				t.Errorf("the SMSC saw %d binds after the outage, want 1", got-binds)
			}
		})
	}
}

// TestLinkDropsUnderSend: a Send awaiting its answer fails as temporary as
// soon as the link drops, saying the SMSC may still deliver.
func TestLinkDropsUnderSend(t *testing.T) {
	t.Parallel()
	s := startSMSC(t)
	c := startCarrier(t, s.Addr(), func(cfg *Config) { cfg.SubmitTimeout = 10 * time.Second })
	s.SetBehaviour(smstest.Stall)
	done := make(chan error, 1)
	m := message(otp("123456"))
	go func() {
		_, err := send(t, c, m)
		done <- err
	}()
	eventually(t, 2*time.Second, "the SMSC got no submit_sm", func() bool { return len(s.Submits()) == 1 })
	start := time.Now()
	s.dropAll()
	select {
	case err := <-done:
		if elapsed := time.Since(start); elapsed > time.Second {
			t.Errorf("Send returned %v after the link dropped, want at once", elapsed)
		}
		ce := refusalOf(t, err, sms.Temporary, m.Text)
		if !strings.Contains(ce.Message, "may still deliver") {
			t.Errorf("Message %q does not say the SMSC may still deliver", ce.Message)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Send did not return after the link dropped")
	}
}

// TestLinkDropsDuringTheWrite: a submit_sm whose write the connection's end
// cut short never reached the SMSC whole, so its failure is not one that may
// still deliver (which would make otpd keep a code no message carries); one
// written whole before the link dropped may still deliver.
func TestLinkDropsDuringTheWrite(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		read       int // bytes the SMSC's end reads before it closes: -1 for the whole PDU
		mayDeliver bool
	}{
		{"cut short", 1, false},
		{"written whole", -1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ours, smsc := net.Pipe() // a write returns only once the other end has read it all
			l := newLink(ours, bufio.NewReader(ours), time.Hour, 5*time.Second, func(pdu.PDU) data.CommandStatusType { return data.ESME_ROK })
			defer l.fail(errClosed)
			sm := submitSM(pdu.Address{}, pdu.Address{}, data.GSM7BIT, []byte("hello"), false)
			want := len(marshal(sm))
			calls := make(chan *call, 1)
			go func() {
				cl, err := l.request(sm, 5*time.Second, nil, nil)
				if err != nil {
					t.Errorf("request: %v", err)
				}
				calls <- cl
			}()
			n := tc.read
			if n < 0 {
				n = want
			}
			if _, err := io.ReadFull(smsc, make([]byte, n)); err != nil {
				t.Fatal(err)
			}
			smsc.Close()
			cl := <-calls
			if cl == nil {
				t.Fatal("request returned no call, though its write had begun")
			}
			select {
			case <-cl.done:
			case <-time.After(5 * time.Second):
				t.Fatal("the call was not resolved after the link dropped")
			}
			err := cl.outcome(1, 1, 5*time.Second, false)
			if err == nil || sms.MayDeliver(err) != tc.mayDeliver {
				t.Errorf("outcome after the SMSC read %d of %d bytes and closed: %v (MayDeliver %v), want a failure with MayDeliver %v",
					n, want, err, sms.MayDeliver(err), tc.mayDeliver)
			}
		})
	}
}

// TestNotSubmitted: a send that stopped before every part reached the SMSC
// may still deliver the parts the SMSC accepted, and only then.
func TestNotSubmitted(t *testing.T) {
	broke := &linkFailure{cause: io.EOF}
	if err := notSubmitted(broke, 0, 1); sms.MayDeliver(err) || !strings.Contains(err.Error(), "the message was not sent") {
		t.Errorf("no part submitted: %v (MayDeliver %v), want a failure saying the message was not sent, that cannot deliver", err, sms.MayDeliver(err))
	}
	if err := notSubmitted(broke, 1, 2); !sms.MayDeliver(err) || !strings.Contains(err.Error(), "partial message") {
		t.Errorf("1 part of 2 submitted: %v (MayDeliver %v), want a failure saying the handset may show a partial message, that may deliver", err, sms.MayDeliver(err))
	}
}

// TestSubmitTimeout: a submit_sm unanswered for SubmitTimeout fails as
// temporary, before the caller's deadline; the window place comes back.
func TestSubmitTimeout(t *testing.T) {
	t.Parallel()
	s := startSMSC(t)
	c := startCarrier(t, s.Addr(), func(cfg *Config) {
		cfg.SubmitTimeout = 200 * time.Millisecond
		cfg.Window = 1
	})
	s.SetBehaviour(smstest.Stall)
	m := message(otp("123456"))
	start := time.Now()
	_, err := send(t, c, m)
	elapsed := time.Since(start)
	ce := refusalOf(t, err, sms.Temporary, m.Text)
	if ce.Code != 504 || elapsed < 200*time.Millisecond || elapsed > 2*time.Second {
		t.Errorf("got Code %d after %v, want 504 after about 200 ms", ce.Code, elapsed)
	}
	s.SetBehaviour(smstest.Accept)
	if _, err := send(t, c, message(otp("123456"))); err != nil {
		t.Errorf("Send after a timed-out one, with a window of 1: %v", err)
	}
}

// TestSMSCUnbinds: the carrier answers the SMSC's unbind and binds again.
func TestSMSCUnbinds(t *testing.T) {
	t.Parallel()
	s := startSMSC(t)
	c := startCarrier(t, s.Addr())
	s.unbind(t)
	eventually(t, 5*time.Second, "the carrier did not bind again after the SMSC unbound", func() bool {
		return get(s, func(s *testSMSC) int { return s.binds }) == 2
	})
	eventually(t, 5*time.Second, "Send does not succeed after the re-bind", func() bool {
		_, err := send(t, c, message(otp("123456")))
		return err == nil
	})
}

// TestBindRefused: New fails when the SMSC refuses the bind, naming the
// status and never the password.
func TestBindRefused(t *testing.T) {
	t.Parallel()
	s := startSMSC(t)
	_, err := New(t.Context(), Config{Addr: s.Addr(), SystemID: testSystemID, Password: "wrong1"})
	if err == nil || !strings.Contains(err.Error(), "ESME_RINVPASWD") {
		t.Fatalf("New with a wrong password: got error %v, want one naming ESME_RINVPASWD", err)
	}
	if strings.Contains(err.Error(), "wrong1") {
		t.Errorf("the error %q shows the password", err)
	}
}

// TestBindRefusedForAnotherReason: a refusal that is not about the
// credentials (ESME_RBINDFAIL here; ESME_RALYBND or a session limit while
// the SMSC restarts) does not stop New: the carrier says so, fails sends
// over meanwhile and binds once the SMSC accepts. A new reason while the
// link is down is a warning too.
func TestBindRefusedForAnotherReason(t *testing.T) {
	t.Parallel()
	s := startSMSC(t)
	proxy := faultproxy.Start(t, s.Addr())
	proxy.Set(t, faultproxy.Refuse)
	var logs syncBuffer
	c := startCarrier(t, proxy.Addr(), func(cfg *Config) { cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	s.set(func(s *testSMSC) { s.refuseBind = data.ESME_RBINDFAIL })
	proxy.Set(t, faultproxy.Forward)
	eventually(t, 10*time.Second, "no warning of the new reason, the refused bind", func() bool {
		return strings.Contains(logs.String(), `level=WARN msg="re-binding to the SMSC failed for another reason`) &&
			strings.Contains(logs.String(), "ESME_RBINDFAIL")
	})
	m := message(otp("123456"))
	_, err := send(t, c, m)
	refusalOf(t, err, sms.Temporary, m.Text)
	s.set(func(s *testSMSC) { s.refuseBind = 0 })
	eventually(t, 10*time.Second, "Send does not succeed once the SMSC accepts the bind", func() bool {
		_, err := send(t, c, message(otp("123456")))
		return err == nil
	})

	// Refused from the first bind: New returns the carrier all the same.
	s2 := startSMSC(t)
	s2.set(func(s *testSMSC) { s.refuseBind = data.ESME_RBINDFAIL })
	var logs2 syncBuffer
	c2 := startCarrier(t, s2.Addr(), func(cfg *Config) { cfg.Logger = slog.New(slog.NewTextHandler(&logs2, nil)) })
	if got := logs2.String(); !strings.Contains(got, `level=WARN msg="no link to the SMSC`) || !strings.Contains(got, "ESME_RBINDFAIL") {
		t.Errorf("the log after New with the bind refused:\n%s\nwant a warning naming ESME_RBINDFAIL", got)
	}
	s2.set(func(s *testSMSC) { s.refuseBind = 0 })
	eventually(t, 10*time.Second, "Send does not succeed once the SMSC accepts the bind", func() bool {
		_, err := send(t, c2, message(otp("123456")))
		return err == nil
	})
}

// TestSMSCDownAtStart: New returns while the SMSC is out of reach, and
// says so in the log (a mistyped address shows at start-up); the carrier
// binds once it is back, and says that too.
func TestSMSCDownAtStart(t *testing.T) {
	t.Parallel()
	s := startSMSC(t)
	proxy := faultproxy.Start(t, s.Addr())
	proxy.Set(t, faultproxy.Refuse)
	var (
		logs   syncBuffer
		linkMu sync.Mutex
		links  []bool
	)
	c := startCarrier(t, proxy.Addr(), func(cfg *Config) {
		cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		cfg.OnLink = func(carrier string, up bool) {
			linkMu.Lock()
			defer linkMu.Unlock()
			if carrier != cfg.Name {
				t.Errorf("OnLink named carrier %q, want %q", carrier, cfg.Name)
			}
			links = append(links, up)
		}
	})
	if got := logs.String(); !strings.Contains(got, "level=WARN") || !strings.Contains(got, "no link to the SMSC") || !strings.Contains(got, proxy.Addr()) {
		t.Errorf("the log after New with the SMSC out of reach:\n%s\nwant a warning naming %s", got, proxy.Addr())
	}
	m := message(otp("123456"))
	_, err := send(t, c, m)
	refusalOf(t, err, sms.Temporary, m.Text)
	proxy.Set(t, faultproxy.Forward)
	eventually(t, 10*time.Second, "Send does not succeed once the SMSC is up", func() bool {
		_, err := send(t, c, message(otp("123456")))
		return err == nil
	})
	// setLink logs and tells OnLink once the link is in place, so a Send
	// may succeed just before.
	eventually(t, 2*time.Second, "no line in the log saying the carrier is bound again", func() bool {
		return strings.Contains(logs.String(), "bound to the SMSC again")
	})
	told := func() string {
		linkMu.Lock()
		defer linkMu.Unlock()
		return fmt.Sprint(links)
	}
	eventually(t, 2*time.Second, "OnLink was not told [false true]: down after New, up once bound", func() bool { return told() == "[false true]" })
}

// syncBuffer is a bytes.Buffer safe for the carrier's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestClose: Close unbinds; Send after it fails as temporary.
func TestClose(t *testing.T) {
	t.Parallel()
	s := startSMSC(t)
	c := startCarrier(t, s.Addr())
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	eventually(t, 2*time.Second, "the SMSC got no unbind", func() bool {
		return get(s, func(s *testSMSC) int { return len(s.conns) }) == 0
	})
	m := message(otp("123456"))
	_, err := send(t, c, m)
	ce := refusalOf(t, err, sms.Temporary, m.Text)
	if !strings.Contains(ce.Message, "shut down") {
		t.Errorf("Message %q does not say the carrier is shut down", ce.Message)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestConfigErrors: New names every problem of the configuration.
func TestConfigErrors(t *testing.T) {
	t.Parallel()
	_, err := New(t.Context(), Config{
		Name:          "bad name",
		Addr:          "no-port",
		Password:      "much-too-long-password",
		SystemType:    "way-too-long-system-type",
		EnquireLink:   -1,
		Window:        -1,
		RatePerSecond: -1,
		SubmitTimeout: -1,
	})
	if err == nil {
		t.Fatal("New with a bad configuration: no error")
	}
	for _, want := range []string{"Name", "Addr", "SystemID is required", "Password has", "SystemType has", "EnquireLink", "Window", "RatePerSecond", "SubmitTimeout"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not mention %s:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "much-too-long-password") {
		t.Errorf("the error shows the password: %v", err)
	}
}

// TestParseReceiptText: the fields of receipts as SMSCs write them, never
// reading the quoted text.
func TestParseReceiptText(t *testing.T) {
	for _, tc := range []struct {
		text, id, stat, err string
	}{
		{"id:0123456789 sub:001 dlvrd:001 submit date:2501021504 done date:2501021505 stat:DELIVRD err:000 text:Your code 123456", "0123456789", "DELIVRD", "000"},
		{"id:ab12 sub:001 dlvrd:000 submit date:2501021504 done date:2501021505 stat:UNDELIV err:001 Text:stat:DELIVRD", "ab12", "UNDELIV", "001"},
		{"Id:7 Sub:001 Dlvrd:001 Submit date:2501021504 Done date:2501021505 Stat:delivrd Err:000", "7", "DELIVRD", "000"},
		{"id:7 stat:EXPIRED err:000 text:", "7", "EXPIRED", "000"},
		{"id:9\x00", "9", "", ""},
		{"text:id:1 stat:DELIVRD", "", "", ""},
		{"noid:1 stat:DELIVRD", "", "DELIVRD", ""},
	} {
		id, stat, errCode := parseReceiptText(tc.text)
		if id != tc.id || stat != tc.stat || errCode != tc.err {
			t.Errorf("parseReceiptText(%q) = %q, %q, %q; want %q, %q, %q", tc.text, id, stat, errCode, tc.id, tc.stat, tc.err)
		}
	}
}

// TestStatusTable: the statuses the README names map as it says.
func TestStatusTable(t *testing.T) {
	names := map[string]bool{}
	for status, s := range commandStatuses {
		if names[s.name] {
			t.Errorf("%s appears twice", s.name)
		}
		names[s.name] = true
		if status == 0 || s.desc == "" {
			t.Errorf("0x%08X %s: bad entry", uint32(status), s.name)
		}
	}
	for status, want := range map[data.CommandStatusType]sms.Status{
		0x58: sms.Throttled, 0x14: sms.Throttled, 0x08: sms.Temporary, 0x0B: sms.Permanent,
		0x0A: sms.NotPermitted, 0x104: sms.Permanent, 0x01: sms.Permanent, 0x999: sms.Temporary,
	} {
		if got := statusOf(status).class; got != want {
			t.Errorf("0x%08X: %v, want %v", uint32(status), got, want)
		}
	}
}

// TestTLS: with Config.TLS the carrier binds and sends over TLS, checking
// the SMSC's certificate against Addr's host.
func TestTLS(t *testing.T) {
	t.Parallel()
	s, pool := startTLSSMSC(t)
	c := startCarrier(t, s.Addr(), func(cfg *Config) { cfg.TLS = &tls.Config{RootCAs: pool} })
	m := message(otp("123456"))
	if _, err := send(t, c, m); err != nil {
		t.Fatalf("Send over TLS: %v", err)
	}
	if got := s.Received(); len(got) != 1 || got[0].Text != m.Text {
		t.Errorf("the SMSC received %+v, want the message", got)
	}
	// A certificate the carrier does not trust: no bind, sends fail.
	c2 := startCarrier(t, s.Addr(), func(cfg *Config) { cfg.TLS = &tls.Config{} })
	_, err := send(t, c2, m)
	refusalOf(t, err, sms.Temporary, m.Text)
	if !errors.As(err, new(*tls.CertificateVerificationError)) {
		t.Errorf("the failure %v does not carry the certificate error", err)
	}
}

// TestReadFrame: a PDU gosmpp cannot decode keeps its header, and the
// stream stays in step.
func TestReadFrame(t *testing.T) {
	stream := []byte{
		// bind_transceiver_resp, ESME_RBINDFAIL, sequence 1, no body (as
		// gosmpp's simulator sends it): gosmpp wants a system_id.
		0, 0, 0, 16, 0x80, 0, 0, 9, 0, 0, 0, 0x0D, 0, 0, 0, 1,
		// An unknown command 0x00000777, sequence 7, body "ab".
		0, 0, 0, 18, 0, 0, 7, 0x77, 0, 0, 0, 0, 0, 0, 0, 7, 'a', 'b',
		// enquire_link, sequence 8.
		0, 0, 0, 16, 0, 0, 0, 0x15, 0, 0, 0, 0, 0, 0, 0, 8,
		// An impossible command_length.
		0, 0, 0, 8, 0, 0, 0, 0x15, 0, 0, 0, 0, 0, 0, 0, 9,
	}
	r := bytes.NewReader(stream)
	for _, want := range []frame{
		{id: data.BIND_TRANSCEIVER_RESP, status: data.ESME_RBINDFAIL, seq: 1},
		{id: 0x777, seq: 7},
		{id: data.ENQUIRE_LINK, seq: 8},
	} {
		f, err := readFrame(r)
		if err != nil || f.id != want.id || f.status != want.status || f.seq != want.seq {
			t.Fatalf("readFrame = %+v, %v; want %+v", f, err, want)
		}
		if (f.p != nil) != (want.id == data.ENQUIRE_LINK) {
			t.Errorf("readFrame of command 0x%08X decoded %T", uint32(f.id), f.p)
		}
	}
	if _, err := readFrame(r); err == nil {
		t.Error("readFrame of a PDU of 8 octets: no error")
	}
}

// failureKind tells reasons apart by kind, not by text: two resets of
// connections from different local ports are one reason.
func TestFailureKind(t *testing.T) {
	reset := func(port int) error {
		return &linkFailure{cause: &net.OpError{Op: "read", Net: "tcp", Addr: &net.TCPAddr{Port: port}, Err: syscall.ECONNRESET}}
	}
	if a, b := failureKind(reset(40014)), failureKind(reset(40015)); a != b || a != "connection reset" {
		t.Errorf("two resets: %q and %q, want one kind, connection reset", a, b)
	}
	kinds := map[string]error{
		"connection refused":          &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED},
		"bind refused ESME_RBINDFAIL": nil,
		"connection closed":           fmt.Errorf("reading from the SMSC: %w", io.EOF),
		"unbound":                     errUnbound,
		"other":                       errors.New("something else"),
	}
	kinds["bind refused ESME_RBINDFAIL"] = &bindRefused{systemID: "otpd", status: data.ESME_RBINDFAIL}
	for want, err := range kinds {
		if got := failureKind(err); !strings.HasPrefix(got, want) {
			t.Errorf("failureKind(%v) = %q, want %q", err, got, want)
		}
	}
}
