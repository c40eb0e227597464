// Package sms defines the contract between otpd and the carriers that deliver
// its text messages: the development outbox, and real carriers such as SMPP
// operators, AWS End User Messaging SMS, Twilio or an operator's webhook.
package sms

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// Message is one text message to deliver.
type Message struct {
	// ID is otpd's own ID for the message: never empty, unique, and the
	// same when a failover hands the same message to another carrier, so
	// that a receiver can de-duplicate by it.
	ID       string
	AppID    string
	From     string // origination identity: E.164 number, short code or sender ID
	To       string // E.164 destination
	Text     string // the whole text; carriers pick the encoding from it (see gsm7)
	Language string // BCP 47 tag of the text, e.g. "en-US"
	// ReferenceID is the client's reference for the code the message
	// carries, for records; carriers need not send it.
	ReferenceID string
	// EntityID and TemplateID identify the sender and template registered
	// with India's DLT; carriers that need them pass them on.
	EntityID   string
	TemplateID string
}

// Receipt is a carrier's acceptance of a message.
type Receipt struct {
	CarrierMessageID string // the carrier's ID for the message, if it gave one
	// Carrier names the carrier that accepted the message when it is not
	// the one Send was called on (a router sets it); empty otherwise.
	Carrier string
}

// Carrier delivers text messages.
//
// Send returns once the carrier has accepted the message (a Receipt) or
// refused it (an error). It honours ctx's deadline. An error that is not a
// *Error is treated as a temporary failure of unknown cause (timeouts, broken
// connections). Implementations are safe for concurrent use and never log the
// message text, which holds a code.
type Carrier interface {
	Name() string
	Send(ctx context.Context, m Message) (Receipt, error)
}

// Status classifies a carrier's refusal.
type Status int

// The refusals a carrier reports. A Temporary, Throttled or NotPermitted
// refusal is worth trying on another carrier; only a Temporary or Throttled
// one is worth trying again on the same carrier.
const (
	Temporary Status = iota + 1 // e.g. the carrier is down; another may succeed
	Throttled                   // the carrier's rate limit
	Permanent                   // about the message or its recipient, e.g. the number cannot receive SMS
	OptedOut                    // the recipient opted out of messages from the sender
	// NotPermitted is a refusal about otpd's account with this carrier,
	// not about the message: credentials it does not accept, a permission
	// or funds the account lacks, a sender (From) not registered with it
	// or an origination identity that cannot reach the destination.
	// Another carrier may take the same message; this one will not until
	// its operator acts. An operator's own block of a destination
	// (Twilio's Geo Permissions, an AWS protect configuration) is
	// Permanent: failing over would undo it.
	NotPermitted
)

func (s Status) String() string {
	switch s {
	case Temporary:
		return "temporary"
	case Throttled:
		return "throttled"
	case Permanent:
		return "permanent"
	case OptedOut:
		return "opted-out"
	case NotPermitted:
		return "not-permitted"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// Error is a carrier's refusal of a message.
type Error struct {
	Status Status
	// Code is the carrier's own status or error code, as an HTTP-like
	// number where the carrier has one (e.g. 400, 503), for the client.
	Code int
	// Message explains the refusal to the application developer. It never
	// contains the message text.
	Message string
	// Err is the cause (a network error, the carrier's raw answer), for the
	// operator's log; it is never shown to the client.
	Err error
	// MayDeliver is set when the carrier may have taken the message
	// although it did not say so (it did not answer in time, the
	// connection broke after the message went out, its answer could not be
	// read): it may still deliver it.
	MayDeliver bool
	// Credentials is set on a NotPermitted refusal of otpd's credentials
	// themselves (its key, its token, its signature), which no request
	// chooses: every send through the carrier fails the same way until
	// its operator acts.
	Credentials bool
}

// MayDeliver reports whether err, a carrier's failure to take a message,
// leaves open that the message is delivered all the same: an *Error with
// MayDeliver set, an error whose MayDeliver method says so (a router's,
// which tried several carriers), or a deadline that ran out with no answer.
func MayDeliver(err error) bool {
	var m interface{ MayDeliver() bool }
	if errors.As(err, &m) {
		return m.MayDeliver()
	}
	var e *Error
	if errors.As(err, &e) {
		return e.MayDeliver
	}
	return errors.Is(err, context.DeadlineExceeded)
}

func (e *Error) Error() string {
	s := fmt.Sprintf("the carrier did not take the message (%s, %d): %s", e.Status, e.Code, e.Message)
	if e.Err != nil {
		s += " (" + e.Err.Error() + ")"
	}
	return s
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Refuse returns e with cause as its Err.
func Refuse(e *Error, cause error) error {
	e.Err = cause
	return e
}

// DeliveryReport is a carrier's later word on a message it accepted: an
// SMPP delivery receipt, a Twilio status callback, an AWS event.
type DeliveryReport struct {
	Carrier          string // the reporting carrier's Name
	CarrierMessageID string // as in the Receipt of the message
	MessageID        string // otpd's Message.ID, when the carrier echoes it
	State            DeliveryState
	// Code is the carrier's own status or error code (e.g. SMPP "DELIVRD"
	// with err "000", Twilio "30003"), for operators.
	Code string
	At   time.Time // when the carrier says the state was reached
}

// DeliveryState is where a message ended up, as far as its carrier knows.
type DeliveryState string

// The delivery states otpd records.
const (
	Delivered   DeliveryState = "DELIVERED"   // the handset has it
	Undelivered DeliveryState = "UNDELIVERED" // the network gave up (expired, rejected, unknown number)
	Failed      DeliveryState = "FAILED"      // the carrier could not send it
	Pending     DeliveryState = "PENDING"     // an intermediate report (queued, sent, en route)
)

// Reporter receives delivery reports. Carriers that get them call it from
// their own goroutines; it must be safe for concurrent use and return
// quickly. A nil Reporter in a carrier's configuration drops reports.
type Reporter interface {
	Report(ctx context.Context, r DeliveryReport)
}

// IsLoopbackHost reports whether host names this machine ("localhost" or a
// loopback address): the only hosts carriers may reach over plain http,
// since every request carries a code.
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
