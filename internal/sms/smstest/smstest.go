// Package smstest is the conformance suite of sms.Carrier. Every carrier
// runs it from its own tests, against a real protocol peer: an HTTP server
// that checks requests the way the real service would, an SMSC speaking
// SMPP, and so on. Mocking the carrier's client library does not count;
// the point is to exercise the bytes on the wire.
//
//	func TestConformance(t *testing.T) {
//		smstest.Run(t, func(t *testing.T) (sms.Carrier, smstest.Peer) {
//			peer := newFakeService(t) // started here, stopped by t.Cleanup
//			return newCarrierFor(t, peer.URL), peer
//		})
//	}
//
// Run calls newHarness once per subtest, for a fresh carrier and peer. Each
// subtest is named after the rule it checks:
//
//   - Accepted: when the peer accepts, Send returns a Receipt and no error,
//     and the peer received exactly one submission with the exact From, To
//     and Text.
//   - PermanentRefusal: when the peer refuses the message for good (say, an
//     invalid number), Send returns an error in which errors.As finds an
//     *sms.Error with Status sms.Permanent and a non-empty Message that
//     holds neither the text nor its code.
//   - TemporaryFailure: when the peer fails for now (HTTP 503, throttling, a
//     system error), the *sms.Error has Status sms.Temporary or
//     sms.Throttled, and again its Message holds no text or code.
//   - Stall: when the peer never answers, Send with a context deadline of
//     300 ms returns, well within 3 s, a temporary failure (sms.Temporary
//     or sms.Throttled, or an error of no kind), not a refusal: the
//     message may still be delivered. A plain error such as context.DeadlineExceeded will do.
//   - RecoversAfterStall: once the peer accepts again, the next Send
//     succeeds; a stalled submission does not wedge the carrier.
//   - ConcurrentSends: 32 concurrent Sends all succeed, and the peer
//     received each message exactly once.
//   - OriginationIdentities: an E.164 number, a short code and an
//     alphanumeric sender ID arrive unchanged as From.
//   - NonASCIIText: pt-BR text with ç, ã and ú, ja-JP text, and a brand with
//     emoji (outside the Basic Multilingual Plane) arrive byte for byte.
//   - LongText: a 400-character GSM-7 text and a 200-character UCS-2 text
//     arrive whole.
//   - NameIsStable: Name is a non-empty word without spaces or control
//     characters, and the same on every call.
//
// # Writing a Peer
//
// The Peer decodes each submission as the real service would and reports
// whole messages: a carrier may split a long text into concatenated parts
// (SMPP with a user data header, say), and then the Peer reassembles the
// parts and reports one Received per message, its Text as the handset
// would show it. A submission the real service would reject as malformed
// (a bad signature, a missing field, the wrong data_coding) fails the test
// through t.Errorf and is not reported as received.
//
// Received lists only the submissions the Peer accepted, in the order it
// accepted them: none while it refuses, fails or stalls. SetBehaviour and
// Received may be called while submissions are under way. A new Peer
// accepts (Accept is the zero Behaviour).
//
// Under Stall the Peer holds each submission without answering until the
// carrier gives up (the request's context ends, the connection closes) or
// the test ends; the cleanup registered by newHarness must release any
// submission still held, so that the test's end never waits on it. A
// released submission still gets no answer: the peer drops the connection
// or the request (an HTTP handler panics with http.ErrAbortHandler; one
// that merely returns answers 200, which can still reach the carrier).
package smstest

import (
	"strconv"
	"testing"

	"github.com/otpd/otpd/internal/sms"
)

// Peer is the protocol peer a carrier talks to in a test; the suite steers
// it. It is safe for concurrent use.
type Peer interface {
	// SetBehaviour sets how the peer answers every following submission.
	SetBehaviour(b Behaviour)
	// Received returns the submissions the peer accepted, in order,
	// decoded as the service would: one per message, reassembled if the
	// carrier split it.
	Received() []Received
}

// Behaviour is how a Peer answers a submission.
type Behaviour int

const (
	// Accept takes the message for delivery, as the service does with a
	// valid one. It is the zero Behaviour.
	Accept Behaviour = iota
	// RejectPermanent refuses the message for good, as the service does
	// with an invalid destination number (HTTP 400, an SMPP error status
	// such as ESME_RINVDSTADR).
	RejectPermanent
	// FailTemporary fails for now, as the service does when it is down or
	// overloaded (HTTP 503 or 429, SMPP ESME_RTHROTTLED or ESME_RSYSERR).
	FailTemporary
	// Stall never answers: the peer holds the submission until the carrier
	// gives up or the test ends.
	Stall
)

// String returns the Behaviour's name, e.g. "RejectPermanent".
func (b Behaviour) String() string {
	switch b {
	case Accept:
		return "Accept"
	case RejectPermanent:
		return "RejectPermanent"
	case FailTemporary:
		return "FailTemporary"
	case Stall:
		return "Stall"
	}
	return "Behaviour(" + strconv.Itoa(int(b)) + ")"
}

// Received is one message as the peer decoded it.
type Received struct {
	From string // the origination identity, as the carrier sent it
	To   string // the destination, E.164
	Text string // the whole text, reassembled from its parts and decoded
}

// Run runs the conformance suite. newHarness returns, for one subtest, a
// carrier talking to a fresh peer that accepts; it registers with
// t.Cleanup whatever must be stopped.
func Run(t *testing.T, newHarness func(t *testing.T) (sms.Carrier, Peer)) {
	for _, r := range rules {
		t.Run(r.name, func(t *testing.T) {
			c, p := newHarness(t)
			if c == nil || p == nil {
				t.Fatalf("newHarness returned carrier %v and peer %v; want both", c, p)
			}
			r.run(t, c, p)
		})
	}
}
