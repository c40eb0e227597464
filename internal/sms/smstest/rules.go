package smstest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/otpd/otpd/internal/sms"
)

// rule is one subtest of Run: a rule every carrier keeps.
type rule struct {
	name string
	run  func(t *testing.T, c sms.Carrier, p Peer)
}

var rules = []rule{
	{"Accepted", testAccepted},
	{"PermanentRefusal", testPermanentRefusal},
	{"TemporaryFailure", testTemporaryFailure},
	{"Stall", testStall},
	{"RecoversAfterStall", testRecoversAfterStall},
	{"ConcurrentSends", testConcurrentSends},
	{"OriginationIdentities", testOriginationIdentities},
	{"NonASCIIText", testNonASCIIText},
	{"LongText", testLongText},
	{"NameIsStable", testNameIsStable},
}

const (
	// sendBound is the most any Send of the suite may take, so that a
	// carrier that hangs fails its subtest instead of the test binary.
	sendBound = 10 * time.Second
	// stallDeadline is the context deadline of a Send to a stalled peer.
	stallDeadline = 300 * time.Millisecond
	// stallBound is how long after it started a Send to a stalled peer
	// must have returned: the deadline and ample time to give up.
	stallBound = 3 * time.Second
	// concurrentSends is the number of goroutines of ConcurrentSends.
	concurrentSends = 32
)

// The numbers of the suite's messages.
const (
	fromNumber = "+18555550142"
	toNumber   = "+14255550142"
)

// otpText returns the en-US text of a message carrying code.
func otpText(code string) string {
	return "This is your One Time Password: " + code + " from ExampleCorp"
}

// Texts that are not plain ASCII. Each carries its code, which a refusal
// must never repeat.
var nonASCII = []struct {
	lang, code, text string
}{
	// ç ã í ú are not GSM-7: the text travels as UCS-2.
	{"pt-BR", "482913", "Esta é a sua senha de uso único: 482913 de Açaí São João"},
	{"ja-JP", "730415", "さくら銀行のワンタイムパスワードは 730415 です"},
	// ❤️ is U+2764 and the variation selector U+FE0F; 🚀 lies outside the
	// Basic Multilingual Plane (a UTF-16 surrogate pair).
	{"en-US", "104729", "This is your One Time Password: 104729 from Café❤️🚀"},
}

// repeatTo returns the first n characters of pattern repeated.
func repeatTo(pattern string, n int) string {
	var b strings.Builder
	for i := 0; i < n; {
		for _, r := range pattern {
			if i == n {
				break
			}
			b.WriteRune(r)
			i++
		}
	}
	return b.String()
}

// longGSM is a 400-character GSM-7 text: three concatenated parts. Its
// 153rd septet would be the escape of a euro sign, which must move whole
// to the second part; it holds other extension characters (each two
// septets) and GSM-7 letters that are not ASCII.
var longGSM = repeatTo("Your code is 271828. Never share it; ExampleCorp staff never ask for it. ", 152) +
	"€" + repeatTo("Ref {A-7} [B~9] costs 5€ | 10^3 \\ è é ñ ü Ä Δ ¿ @ £ § ", 247)

// longUCS2 is a 200-character UCS-2 text: four concatenated parts. An emoji
// (a surrogate pair) would straddle the boundary of the first part, which
// ends after 67 code units; it must move whole to the second.
var longUCS2 = repeatTo("Esta é a sua senha de uso único: 314159 de Açaí São João. ", 66) +
	"🚀" + repeatTo("さくら銀行のワンタイムパスワードは 314159 です。😀 ", 133)

// newID returns a fresh message ID shaped like the UUIDs otpd gives.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// newMessage returns a message from fromNumber to to with text in lang.
func newMessage(to, lang, text string) sms.Message {
	return sms.Message{
		ID:          newID(),
		AppID:       "0123456789abcdef0123456789abcdef",
		From:        fromNumber,
		To:          to,
		Text:        text,
		Language:    lang,
		ReferenceID: "smstest",
	}
}

// send sends m, giving the carrier at most sendBound.
func send(t *testing.T, c sms.Carrier, m sms.Message) (sms.Receipt, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), sendBound)
	defer cancel()
	return c.Send(ctx, m)
}

// mustSend sends m and fails the test unless the carrier accepted it.
func mustSend(t *testing.T, c sms.Carrier, m sms.Message) {
	t.Helper()
	if _, err := send(t, c, m); err != nil {
		t.Fatalf("Send(%s) to a peer that accepts: got error %v, want none", describeMessage(m), err)
	}
}

// receivedOf returns what a peer should report for m.
func receivedOf(m sms.Message) Received {
	return Received{From: m.From, To: m.To, Text: m.Text}
}

// expectReceived checks that the peer accepted exactly want, in order.
func expectReceived(t *testing.T, p Peer, want ...Received) {
	t.Helper()
	got := p.Received()
	if len(got) != len(want) {
		t.Errorf("the peer received %d messages, want %d\ngot:  %s\nwant: %s",
			len(got), len(want), describeAll(got), describeAll(want))
		return
	}
	for i := range want {
		if got[i] == want[i] {
			continue
		}
		if got[i].From != want[i].From {
			t.Errorf("message %d: the peer received From %q, want %q", i, got[i].From, want[i].From)
		}
		if got[i].To != want[i].To {
			t.Errorf("message %d: the peer received To %q, want %q", i, got[i].To, want[i].To)
		}
		if got[i].Text != want[i].Text {
			t.Errorf("message %d: the peer received a different Text: %s", i, diffText(got[i].Text, want[i].Text))
		}
	}
}

// refusal returns the *sms.Error in err, failing the test if there is none
// or if its Message is empty or repeats the text or the code of m.
func refusal(t *testing.T, err error, m sms.Message, code string) *sms.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("Send(%s): got no error, want an *sms.Error", describeMessage(m))
	}
	var ce *sms.Error
	if !errors.As(err, &ce) {
		t.Fatalf("Send(%s): got error %v (%T), want one in which errors.As finds an *sms.Error", describeMessage(m), err, err)
	}
	if strings.TrimSpace(ce.Message) == "" {
		t.Errorf("the *sms.Error's Message is empty, want an explanation for the application developer: %#v", ce)
	}
	for _, s := range []string{ce.Message, err.Error()} {
		if strings.Contains(s, m.Text) || strings.Contains(s, code) {
			t.Errorf("the refusal %q repeats the message text or its code %s; it must never", s, code)
		}
	}
	return ce
}

// testAccepted: a message the peer accepts arrives once, exactly.
func testAccepted(t *testing.T, c sms.Carrier, p Peer) {
	p.SetBehaviour(Accept)
	m := newMessage(toNumber, "en-US", otpText("123456"))
	if _, err := send(t, c, m); err != nil {
		t.Fatalf("Send(%s) to a peer that accepts: got error %v, want none", describeMessage(m), err)
	}
	expectReceived(t, p, receivedOf(m))
}

// testPermanentRefusal: a refusal for good is a Permanent *sms.Error.
func testPermanentRefusal(t *testing.T, c sms.Carrier, p Peer) {
	p.SetBehaviour(RejectPermanent)
	m := newMessage(toNumber, "en-US", otpText("658213"))
	_, err := send(t, c, m)
	ce := refusal(t, err, m, "658213")
	if ce.Status != sms.Permanent {
		t.Errorf("Send to a peer that refuses for good: got Status %v (%#v), want %v", ce.Status, ce, sms.Permanent)
	}
	expectReceived(t, p)
}

// testTemporaryFailure: a failure for now is a Temporary or Throttled
// *sms.Error.
func testTemporaryFailure(t *testing.T, c sms.Carrier, p Peer) {
	p.SetBehaviour(FailTemporary)
	m := newMessage(toNumber, "en-US", otpText("907142"))
	_, err := send(t, c, m)
	ce := refusal(t, err, m, "907142")
	if ce.Status != sms.Temporary && ce.Status != sms.Throttled {
		t.Errorf("Send to a peer that fails for now: got Status %v (%#v), want %v or %v",
			ce.Status, ce, sms.Temporary, sms.Throttled)
	}
	expectReceived(t, p)
}

// stalledSend sends m to a stalled peer with a context deadline of
// stallDeadline and checks that Send gives up in time, with an error that
// is not a final refusal.
func stalledSend(t *testing.T, c sms.Carrier, p Peer, m sms.Message, code string) {
	t.Helper()
	p.SetBehaviour(Stall)
	ctx, cancel := context.WithTimeout(t.Context(), stallDeadline)
	defer cancel()
	type result struct {
		receipt sms.Receipt
		err     error
	}
	done := make(chan result, 1) // the goroutine never blocks on it, even if the test gave up
	start := time.Now()
	go func() {
		r, err := c.Send(ctx, m)
		done <- result{r, err}
	}()
	timer := time.NewTimer(stallBound)
	defer timer.Stop()
	var res result
	select {
	case res = <-done:
	case <-timer.C:
		t.Fatalf("Send to a peer that never answers, with a context deadline of %v, has not returned after %v; it must honour ctx",
			stallDeadline, stallBound)
	}
	elapsed := time.Since(start)
	if res.err == nil {
		t.Fatalf("Send to a peer that never answers returned after %v with receipt %+v and no error; want an error (the peer never accepted)",
			elapsed, res.receipt)
	}
	var ce *sms.Error
	if errors.As(res.err, &ce) {
		if ce.Status != sms.Temporary && ce.Status != sms.Throttled {
			t.Errorf("Send to a peer that never answers: got Status %v (%v), want a failure that is not final (%v, %v, or a plain error): the message may still be delivered",
				ce.Status, res.err, sms.Temporary, sms.Throttled)
		}
	}
	if !sms.MayDeliver(res.err) {
		t.Errorf("Send to a peer that never answers: sms.MayDeliver(%v) is false; want true: the peer may still deliver the message, and its code must verify if it does", res.err)
	}
	if s := res.err.Error(); strings.Contains(s, m.Text) || strings.Contains(s, code) {
		t.Errorf("the error %q repeats the message text or its code %s; it must never", s, code)
	}
}

// testStall: Send honours ctx when the peer never answers.
func testStall(t *testing.T, c sms.Carrier, p Peer) {
	stalledSend(t, c, p, newMessage(toNumber, "en-US", otpText("311209")), "311209")
}

// testRecoversAfterStall: after a stalled submission, the carrier still
// delivers.
func testRecoversAfterStall(t *testing.T, c sms.Carrier, p Peer) {
	stalledSend(t, c, p, newMessage(toNumber, "en-US", otpText("311209")), "311209")
	p.SetBehaviour(Accept)
	m := newMessage(toNumber, "en-US", otpText("402875"))
	mustSend(t, c, m)
	expectReceived(t, p, receivedOf(m))
}

// testConcurrentSends: concurrent Sends all arrive, each exactly once.
func testConcurrentSends(t *testing.T, c sms.Carrier, p Peer) {
	p.SetBehaviour(Accept)
	msgs := make([]sms.Message, concurrentSends)
	for i := range msgs {
		msgs[i] = newMessage(fmt.Sprintf("+1425555%04d", i), "en-US", otpText(fmt.Sprintf("%06d", 100003+7919*i)))
	}
	errs := make([]error, len(msgs))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range msgs {
		wg.Go(func() {
			<-start
			_, errs[i] = send(t, c, msgs[i])
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("concurrent Send(%s): got error %v, want none", describeMessage(msgs[i]), err)
		}
	}
	count := map[Received]int{}
	for _, r := range p.Received() {
		count[r]++
	}
	for _, m := range msgs {
		if n := count[receivedOf(m)]; n != 1 {
			t.Errorf("the peer received %s %d times, want once", describeMessage(m), n)
		}
		delete(count, receivedOf(m))
	}
	for r, n := range count {
		t.Errorf("the peer received %d times a message that was not sent: %s", n, describeReceived(r))
	}
}

// testOriginationIdentities: every kind of origination identity arrives as
// given.
func testOriginationIdentities(t *testing.T, c sms.Carrier, p Peer) {
	p.SetBehaviour(Accept)
	var want []Received
	for i, from := range []string{
		fromNumber,  // E.164 number
		"24273",     // short code
		"ExampleCo", // alphanumeric sender ID
	} {
		m := newMessage(toNumber, "en-US", otpText(fmt.Sprintf("%06d", 550001+i)))
		m.From = from
		mustSend(t, c, m)
		want = append(want, receivedOf(m))
	}
	expectReceived(t, p, want...)
}

// testNonASCIIText: texts beyond ASCII and beyond GSM-7 arrive byte for
// byte.
func testNonASCIIText(t *testing.T, c sms.Carrier, p Peer) {
	p.SetBehaviour(Accept)
	var want []Received
	for _, tc := range nonASCII {
		m := newMessage(toNumber, tc.lang, tc.text)
		mustSend(t, c, m)
		want = append(want, receivedOf(m))
	}
	expectReceived(t, p, want...)
}

// testLongText: texts longer than one SMS arrive whole.
func testLongText(t *testing.T, c sms.Carrier, p Peer) {
	p.SetBehaviour(Accept)
	gsm := newMessage(toNumber, "en-US", longGSM)
	ucs := newMessage(toNumber, "pt-BR", longUCS2)
	mustSend(t, c, gsm)
	mustSend(t, c, ucs)
	expectReceived(t, p, receivedOf(gsm), receivedOf(ucs))
}

// testNameIsStable: Name is a word for logs and metrics, and never
// changes.
func testNameIsStable(t *testing.T, c sms.Carrier, p Peer) {
	name := c.Name()
	if name == "" {
		t.Fatal(`Name() = "", want a non-empty name for logs and metrics`)
	}
	if !utf8.ValidString(name) || strings.IndexFunc(name, func(r rune) bool {
		return unicode.IsSpace(r) || !unicode.IsPrint(r)
	}) >= 0 {
		t.Errorf("Name() = %q, want no spaces or control characters (it labels logs and metrics)", name)
	}
	if again := c.Name(); again != name {
		t.Errorf("Name() = %q, then %q; want the same every time", name, again)
	}
	p.SetBehaviour(Accept)
	mustSend(t, c, newMessage(toNumber, "en-US", otpText("867530")))
	if after := c.Name(); after != name {
		t.Errorf("Name() = %q before a Send and %q after; want the same every time", name, after)
	}
}

// describeMessage names m for a failure message.
func describeMessage(m sms.Message) string {
	return describeReceived(receivedOf(m))
}

// describeReceived names r for a failure message, with its text in full
// when it is short.
func describeReceived(r Received) string {
	text := fmt.Sprintf("%q", r.Text)
	if len(r.Text) > 80 {
		text = fmt.Sprintf("%q... (%d characters)", truncate(r.Text, 60), utf8.RuneCountInString(r.Text))
	}
	return fmt.Sprintf("From %q To %q Text %s", r.From, r.To, text)
}

// describeAll names every message of rs.
func describeAll(rs []Received) string {
	if len(rs) == 0 {
		return "none"
	}
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = describeReceived(r)
	}
	return "[" + strings.Join(s, ", ") + "]"
}

// diffText says how got differs from want: both in full when they are
// short, else their lengths and where they first differ.
func diffText(got, want string) string {
	if len(got) <= 80 && len(want) <= 80 {
		return fmt.Sprintf("got %q, want %q", got, want)
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	return fmt.Sprintf("got %d bytes (%d characters), want %d bytes (%d characters); they first differ at byte %d: got ...%q..., want ...%q...",
		len(got), utf8.RuneCountInString(got), len(want), utf8.RuneCountInString(want), i,
		around(got, i), around(want, i))
}

// around returns the whole characters of s within 20 bytes of byte i.
func around(s string, i int) string {
	from, to := max(0, i-20), min(len(s), i+20)
	for from > 0 && !utf8.RuneStart(s[from]) {
		from--
	}
	for to < len(s) && !utf8.RuneStart(s[to]) {
		to++
	}
	return s[from:to]
}

// truncate returns the first n characters of s.
func truncate(s string, n int) string {
	for i := range s {
		if n == 0 {
			return s[:i]
		}
		n--
	}
	return s
}
