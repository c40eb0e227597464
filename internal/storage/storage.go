// Package storage defines the contract between otpd and the databases that hold
// its state: applications, one-time codes, per-destination failure budgets,
// send de-duplication records and the development outbox.
//
// Every backend (SQLite, PostgreSQL, Redis) implements Store and must pass the
// conformance suite in storagetest. The guarantees below are the contract; the
// domain (package otp) relies on nothing else.
//
//   - All methods are safe for concurrent use, by many goroutines and by many
//     Store handles (processes) on the same database. Wherever a method is
//     described as atomic, no interleaving of calls on any number of handles
//     may observe or produce an intermediate state.
//   - A method that returned nil has made its effect durable to the degree the
//     backend promises (SQLite: on disk, fsynced).
//   - Times are passed in by the caller (an injected clock); backends never
//     read the wall clock to decide expiry. Times are stored with at least
//     millisecond precision and returned in UTC.
//   - Backends store only what they are given: a Code holds a keyed MAC of the
//     code, never the code itself. Only OutboxMessage.Body may contain a code,
//     by design of the development outbox.
//   - Errors other than the sentinels below mean the store could not answer
//     (unreachable, timed out, corrupt): callers treat them as 5xx and never as
//     a negative answer.
package storage

import (
	"context"
	"errors"
	"time"
)

var (
	// ErrNotFound reports that the named application does not exist.
	ErrNotFound = errors.New("storage: not found")
	// ErrAlreadyExists reports that an application with that ID exists.
	ErrAlreadyExists = errors.New("storage: already exists")
)

// Store is everything otpd keeps. See the package comment for the guarantees
// every method gives.
type Store interface {
	// CreateApp stores a new application. It returns ErrAlreadyExists when an
	// application with app.ID exists.
	CreateApp(ctx context.Context, app App) error
	// GetApp returns the application with the given ID, or ErrNotFound.
	GetApp(ctx context.Context, id string) (App, error)
	// ListApps returns up to limit applications whose IDs sort after the
	// given ID (all of them when after is ""), in ascending ID order.
	ListApps(ctx context.Context, after string, limit int) ([]App, error)
	// DeleteApp atomically removes the application and returns it as it was,
	// or ErrNotFound. From the moment it returns, none of the application's
	// codes verifies (VerifyCode answers OutcomeUnknown), even if an
	// application with the same ID is created later. Its failure budgets and
	// send records go too, or at least never count again (a backend may
	// leave them to expire, keyed by the old Generation); its outbox
	// messages stay (they are history).
	DeleteApp(ctx context.Context, id string) (App, error)
	// UpdateSMSChannel atomically applies u to the application's SMS channel,
	// increments the channel's Version by one, sets its UpdatedAt to now, and
	// returns the updated application, or ErrNotFound.
	UpdateSMSChannel(ctx context.Context, appID string, u SMSChannelUpdate, now time.Time) (App, error)

	// RecordSend stores what a send leaves behind once its carrier
	// answered:
	//   - r.Code, unless nil (the carrier refused the message), becomes the
	//     one live code for its key, replacing any previous code for that
	//     key (whatever its state): the previous code never verifies again,
	//     and the new one starts with no failed attempts;
	//   - r.Message, unless nil, is stored, replacing any record with the
	//     same MessageID;
	//   - r.Outbox, unless nil, is appended to the development outbox, as
	//     AppendOutbox does;
	//   - r.Completion, unless nil, turns the send record of (its AppID,
	//     its Key) into a completed one holding its Result, kept until its
	//     ExpiresAt, whether or not the pending record is still there (the
	//     carrier answered, so a retry must get that answer).
	// The code's replacement is atomic. All of it is one transaction where
	// the backend can make them so (SQLite, PostgreSQL); elsewhere the code
	// is stored first, and an error may leave the code stored without the
	// rest.
	// It returns ErrNotFound if the store can tell that no application
	// with r.Code.Key.AppID and r.Code.AppGeneration exists (it was deleted
	// since the caller read it); the rest is then not stored. A backend that cannot tell stores the code, which
	// then never verifies, since its generation is not the current one.
	RecordSend(ctx context.Context, r SendRecord) error
	// VerifyCode atomically decides one verification attempt; see
	// Verification for the rules, applied in the order listed there.
	VerifyCode(ctx context.Context, v Verification) (Outcome, error)
	// DestinationLockout reports whether the (appID, destination) failure
	// budget is exhausted at now: it returns the zero time if fewer than
	// b.Limit wrong guesses were recorded after now-b.Window and at most
	// ClockSkew after now (see Verification), and otherwise the earliest
	// time at which that count drops below b.Limit.
	// appGeneration is the application's current Generation: failures
	// recorded under an earlier generation (a deleted application with the
	// same ID) never count.
	DestinationLockout(ctx context.Context, appID, appGeneration, destination string, now time.Time, b FailureBudget) (time.Time, error)

	// ClaimSend records that the send identified by (c.AppID, c.Key) is under
	// way, so that a client retry of the same request does not text the user
	// twice. Atomically:
	//   - if a completed record exists and has not expired at c.Now, it
	//     returns that record's result and claimed=false;
	//   - else if a pending record exists whose lease has not ended at
	//     c.Now, it returns a nil result and claimed=false (the caller waits
	//     and asks again);
	//   - otherwise it stores a pending record leased until c.LeaseUntil and
	//     returns claimed=true; RecordSend completes it.
	ClaimSend(ctx context.Context, c SendClaim) (result []byte, claimed bool, err error)
	// ReleaseSend deletes the pending record for (appID, key), so that a
	// retry is processed afresh. It is not an error if there is none.
	ReleaseSend(ctx context.Context, appID, key string) error

	// AppendOutbox stores a message delivered to the development outbox.
	AppendOutbox(ctx context.Context, m OutboxMessage) error
	// ListOutbox returns outbox messages, oldest first, filtered by q.
	ListOutbox(ctx context.Context, q OutboxQuery) ([]OutboxMessage, error)

	// UpdateMessageStatus applies a delivery report to the record whose
	// (Carrier, CarrierMessageID) match, atomically, and returns the record
	// as it now is, or ErrNotFound. A final status (MessageDelivered,
	// MessageUndelivered, MessageFailed) is never replaced by
	// MessagePending, since reports can arrive out of order; otherwise the
	// report replaces Status and StatusCode and sets UpdatedAt.
	UpdateMessageStatus(ctx context.Context, carrier, carrierMessageID string, u MessageStatusUpdate) (MessageRecord, error)
	// ListMessages returns message records, oldest first, filtered by q
	// (Limit keeps the newest of those that match).
	ListMessages(ctx context.Context, q MessageQuery) ([]MessageRecord, error)

	// Purge deletes, in batches of at most r.BatchSize rows per kind, what
	// no longer matters at now: codes that expired ExpiredCodeKept or
	// longer before now, failures older
	// than r.FailureWindow, expired send records, outbox messages older
	// than r.OutboxMaxAge or beyond the newest r.OutboxMaxMessages, and
	// message records older than r.MessageMaxAge. It
	// returns how many records it deleted; callers call again while that is
	// not less than r.BatchSize. It never blocks other calls for longer than
	// one batch takes.
	Purge(ctx context.Context, now time.Time, r Retention) (int, error)

	// KeyCheck returns the key check the store holds: a value derived from
	// the key that codes are hashed with (otp.KeyCheck). If the store holds
	// none, or if replace is true, it first records check as it, and says
	// so (recorded); of several calls at once without replace, one records
	// its check and all return that one. A store that already holds a check
	// is only read unless replace is true, so a role that may only read
	// the settings can call it. Codes hashed under one key never verify
	// under another, so a server compares its own check with the store's
	// before it serves.
	KeyCheck(ctx context.Context, check string, replace bool) (held string, recorded bool, err error)
	// HeldKeyCheck returns the key check the store holds, "" if none,
	// writing nothing: a running server reads it again now and then.
	HeldKeyCheck(ctx context.Context) (string, error)

	// Ping reports whether the store answers and takes writes (it is no
	// read-only replica, nor out of memory); /readyz asks it. It changes no
	// data, but may write a probe of its own.
	Ping(ctx context.Context) error
	// Close releases the store's resources.
	Close() error
}

// App is a Pinpoint application (a "project"): the scope of codes.
type App struct {
	ID        string // 32 lowercase hex characters
	Name      string
	Tags      map[string]string // never nil when returned by a Store
	CreatedAt time.Time
	// Generation is a random value chosen when the application is created.
	// Codes carry it, so that codes of a deleted application never verify
	// under a new application that reuses its ID.
	Generation string
	SMS        SMSChannel
}

// SMSChannel is an application's SMS channel settings.
type SMSChannel struct {
	Enabled   bool
	SenderID  string
	ShortCode string
	Version   int // 1 on creation, incremented by every update
	CreatedAt time.Time
	UpdatedAt time.Time
}

// SMSChannelUpdate names the SMS channel settings to change; nil fields stay.
type SMSChannelUpdate struct {
	Enabled   *bool
	SenderID  *string
	ShortCode *string
}

// CodeKey identifies a code: only the newest code for a key is live.
type CodeKey struct {
	AppID       string
	Destination string // E.164, as the client gave it
	ReferenceID string
}

// Code is a stored one-time code. It holds a keyed MAC of the code, never
// the code.
type Code struct {
	Key             CodeKey
	AppGeneration   string
	MAC             []byte
	AllowedAttempts int // failed verifications tolerated
	CreatedAt       time.Time
	ExpiresAt       time.Time
}

// SendOnceRecorder is implemented by stores that can decide a send's claim
// and record the send in one atomic write. The Service uses it when handing
// the message to the carrier is itself a store write (the development
// outbox): nothing leaves otpd before the claim is decided, so a send costs
// one write instead of two (ClaimSend, then RecordSend).
type SendOnceRecorder interface {
	// RecordSendOnce atomically decides c as ClaimSend does, except that
	// the send it would claim is recorded at once: r is stored as
	// RecordSend stores it, and it returns recorded=true. Otherwise it
	// stores nothing and returns what ClaimSend would: the live completed
	// record's result, or nil while another send's lease is live. r's
	// Completion, if any, is for c's AppID and Key.
	RecordSendOnce(ctx context.Context, c SendClaim, r SendRecord) (result []byte, recorded bool, err error)
}

// SendRecord is what a send leaves behind; see Store.RecordSend.
type SendRecord struct {
	Code       *Code           // nil: the carrier refused the message (and may not deliver it)
	Message    *MessageRecord  // nil: no record of the message is kept
	Outbox     *OutboxMessage  // nil: the message did not go to the development outbox
	Completion *SendCompletion // nil: the send was not claimed (no ClaimSend)
}

// SendCompletion is the result of a claimed send, for the retries of the
// same request; see Store.ClaimSend.
type SendCompletion struct {
	AppID     string
	Key       string // the SendClaim's
	Result    []byte
	ExpiresAt time.Time
}

// Verification is one attempt to verify a code. VerifyCode applies these
// rules in order, atomically, and returns the first that decides:
//
//  1. no code for Key, or its AppGeneration differs: OutcomeUnknown;
//  2. Budget.Limit or more wrong guesses recorded for (Key.AppID,
//     Key.Destination) after Now-Budget.Window and at most ClockSkew after
//     Now: OutcomeThrottled. Guesses stamped after Now count: another
//     request read its clock later but reached the store first, or another
//     instance's clock runs ahead, and ignoring them would let each grant
//     its own budget; guesses stamped further ahead (a clock far off) do
//     not, so that they cannot lock a destination out for longer than the
//     window;
//  3. the code was consumed: OutcomeConsumed;
//  4. Now is at or after its ExpiresAt: OutcomeExpired;
//  5. AllowedAttempts wrong guesses were counted on it: OutcomeExhausted;
//  6. Matches(stored MAC) is true: the code is consumed, OutcomeValid;
//  7. otherwise the code's failed attempts grow by one, a wrong guess at
//     Now is recorded for (Key.AppID, Key.Destination): OutcomeWrong.
//
// Only rules 6 and 7 change state. Of any number of concurrent attempts with
// a matching code, at most one sees OutcomeValid; concurrent wrong guesses
// never see more than AllowedAttempts OutcomeWrong between them.
type Verification struct {
	Key           CodeKey
	AppGeneration string
	Now           time.Time
	Budget        FailureBudget
	// Matches compares the stored MAC with the candidate's, in constant
	// time. The store calls it at most once, inside the atomic section.
	Matches func(storedMAC []byte) bool
}

// ClockSkew is how far apart the clocks of otpd instances sharing a store
// may be: a wrong guess stamped up to ClockSkew after a verification's Now
// counts against the budget (Verification, rule 2), and what stores keep
// for the budget outlives the window by as much.
const ClockSkew = time.Minute

// FailureBudget bounds wrong guesses per (application, destination) across
// codes, over a rolling window.
type FailureBudget struct {
	Limit  int
	Window time.Duration
}

// ExpiredCodeKept is how long a store keeps a code past its expiry (Purge
// deletes it after that, or its time to live ends): a verification in that
// time is told OutcomeExpired, so that logs and metrics can tell a user who
// was too slow from a code that never existed (OutcomeUnknown).
const ExpiredCodeKept = 10 * time.Minute

// Outcome is the result of a verification attempt.
type Outcome string

// The outcomes of VerifyCode. Only OutcomeValid means the code was right.
const (
	OutcomeValid     Outcome = "valid"
	OutcomeWrong     Outcome = "wrong"
	OutcomeExpired   Outcome = "expired"
	OutcomeExhausted Outcome = "exhausted"
	OutcomeConsumed  Outcome = "consumed"
	OutcomeUnknown   Outcome = "unknown"
	OutcomeThrottled Outcome = "throttled"
)

// Outcomes returns every outcome of VerifyCode, e.g. to show each metric
// from the start.
func Outcomes() []Outcome {
	return []Outcome{OutcomeValid, OutcomeWrong, OutcomeExpired, OutcomeExhausted, OutcomeConsumed, OutcomeUnknown, OutcomeThrottled}
}

// SendClaim asks to process a send exactly once; see Store.ClaimSend.
type SendClaim struct {
	AppID string
	// Key identifies the request: the client's invocation ID together with
	// a digest of its parameters.
	Key        string
	Now        time.Time
	LeaseUntil time.Time // when a pending claim may be taken over
}

// OutboxMessage is a text message delivered to the development outbox.
type OutboxMessage struct {
	MessageID           string
	AppID               string
	OriginationIdentity string
	DestinationIdentity string
	ReferenceID         string
	Language            string
	Body                string
	Encoding            string // "GSM-7" or "UCS-2"
	Segments            int
	CreatedAt           time.Time
}

// OutboxQuery filters ListOutbox. Zero fields do not filter.
type OutboxQuery struct {
	Destination string
	Limit       int // at most this many, the newest of those that match
}

// Retention tells Purge what to keep. A zero duration or count keeps
// everything of its kind.
type Retention struct {
	BatchSize         int
	FailureWindow     time.Duration
	OutboxMaxAge      time.Duration
	OutboxMaxMessages int
	MessageMaxAge     time.Duration
}

// MessageRecord is what otpd keeps about a message a carrier accepted:
// where it went and how it fared, never its text or code.
type MessageRecord struct {
	MessageID           string // otpd's
	AppID               string
	Carrier             string // the carrier that accepted it
	CarrierMessageID    string // the carrier's ID, which its reports name
	OriginationIdentity string
	DestinationIdentity string
	ReferenceID         string
	Country             string // ISO 3166 region of the destination, "" if none
	Status              string // one of the Message* statuses
	StatusCode          string // the carrier's own code of the last report
	CreatedAt           time.Time
	UpdatedAt           time.Time
}

// Statuses of a MessageRecord.
const (
	MessageSubmitted   = "SUBMITTED"   // the carrier accepted it; no report yet
	MessagePending     = "PENDING"     // an intermediate report (queued, sent, en route)
	MessageDelivered   = "DELIVERED"   // final: the handset has it
	MessageUndelivered = "UNDELIVERED" // final: the network gave up
	MessageFailed      = "FAILED"      // final: the carrier could not send it
)

// MessageStatusUpdate is a delivery report, as UpdateMessageStatus applies it.
type MessageStatusUpdate struct {
	Status     string // one of the Message* statuses but MessageSubmitted
	StatusCode string
	At         time.Time
}

// MessageQuery filters ListMessages. Zero fields do not filter.
type MessageQuery struct {
	Destination string
	Limit       int
}

// WriteChecker is implemented by stores that can tell that their writes
// fail (the embedded store, when its disk is full) while reads still work.
// A send asks before it texts a code, which it could not store.
type WriteChecker interface {
	// WritesFailing returns an error saying why writes fail now, nil when
	// they may succeed. It is cheap while they may.
	WritesFailing(ctx context.Context) error
}

// DurabilityChecker is implemented by stores on a server whose settings
// decide whether a write it acknowledged survives the server's crash or
// restart. otpd serve logs the risk at start-up: for an authentication
// factor, a lost write can make a consumed code verify again or forget
// failed attempts.
type DurabilityChecker interface {
	// DurabilityRisk reads the server's settings and describes what a
	// crash or restart of the server could lose of the writes it
	// acknowledged, one sentence per risk; "" when its settings lose none.
	// An error means that some settings could not be read (a managed
	// service may refuse to show them); the risk then covers the rest.
	DurabilityRisk(ctx context.Context) (string, error)
}
