// Package otp is otpd's domain: applications, and the one-time codes sent to
// and verified for phone numbers within them.
//
// It generates codes with crypto/rand, keeps only their keyed MAC
// (HMAC-SHA-256 under a server secret) in the store, composes the text in the
// requested language, hands it to a carrier, and verifies candidates against
// the store's atomic attempt counting. It knows nothing of HTTP or JSON: the
// Pinpoint wire format lives in package pinpointapi.
package otp

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"time"

	"github.com/otpd/otpd/internal/keyedmac"
	"github.com/otpd/otpd/internal/sms"
	"github.com/otpd/otpd/internal/storage"
)

// Defaults and limits of SendOTPMessage parameters, as Pinpoint documents them.
const (
	DefaultCodeLength      = 6
	MinCodeLength          = 5
	MaxCodeLength          = 8
	DefaultValidity        = 10 // minutes
	MinValidity            = 5
	MaxValidity            = 60
	DefaultAllowedAttempts = 3
	MinAllowedAttempts     = 1
	MaxAllowedAttempts     = 5
	MaxBrandNameLength     = 20
	MaxReferenceIDLength   = 48
	DefaultLanguage        = "en-US"
)

// Config configures a Service. Store, Carrier and MACKey are required.
type Config struct {
	Store   storage.Store
	Carrier sms.Carrier
	// MACKey is the server secret codes are hashed with; at least 32 bytes.
	// It must be the same on every instance that shares a store.
	MACKey []byte
	// KeyReplaced, if set, reports whether the store has taken another
	// code hashing key than MACKey since the Service started (otpd
	// adopt-hmac-key while it ran). While it does, Send and Verify fail
	// with ErrKeyReplaced before they touch the store: a code hashed with
	// MACKey would verify on no server with the store's key, and every
	// right code verified here would count as a wrong guess.
	KeyReplaced func() bool
	// FailureBudget bounds wrong guesses per (application, destination)
	// across codes. Zero means 10 per hour.
	FailureBudget storage.FailureBudget
	// SendTimeout bounds one carrier submission. Zero means 10 seconds.
	SendTimeout time.Duration
	// RetryWindow is how long a send is remembered for client retries that
	// repeat its amz-sdk-invocation-id. Zero means 10 minutes.
	RetryWindow time.Duration
	// AppCacheTTL is how long sends and verifications may use an
	// application as read from the store: changes made through this
	// Service apply at once, changes made by another instance sharing the
	// store within AppCacheTTL. Zero means 1 second; negative reads the
	// store on every request.
	AppCacheTTL time.Duration
	// Observer is told about sends and verifications (metrics); may be nil.
	Observer Observer
	Logger   *slog.Logger // nil means slog.Default()
	Now      func() time.Time
	Rand     io.Reader // source of codes and IDs; nil means crypto/rand
}

// OriginationChecker is implemented by carriers that can tell before a send
// whether they may send from an origination identity to a destination (a
// router whose carriers have allow-lists). Its error completes a sentence
// that starts with "OriginationIdentity", e.g. "+15550100 may not send to
// +44...: the route's carriers may use ...".
type OriginationChecker interface {
	CheckOrigination(appID, destination, from string) error
}

// OutboxCarrier is a carrier whose delivery is an entry in the store's
// development outbox (package outbox). Rather than calling its Send, which
// writes the entry and answers, the Service stores the entry in the same
// write as the code: one write to the store per send instead of two.
type OutboxCarrier interface {
	sms.Carrier
	// Entry returns m as the outbox keeps it, and Receipt what Send would
	// answer once it stored it.
	Entry(m sms.Message) storage.OutboxMessage
	Receipt(m sms.Message) sms.Receipt
}

// Observer is told the outcome of every send and verification, e.g. to count
// them in metrics. It never sees a code.
type Observer interface {
	Sent(deliveryStatus string)
	Verified(outcome storage.Outcome)
	// Delivered counts a delivery report by carrier, status and the
	// destination's country.
	Delivered(carrier, status, country string)
	// StoreCall is told how long one call of the store's method took
	// and whether it failed (an answer such as storage.ErrNotFound, or a
	// caller that gave up, is no failure): the store's share of the
	// requests' time, whichever the backend.
	StoreCall(method string, elapsed time.Duration, failed bool)
}

// StoreMethods returns the names of the store's methods that the service
// calls, as Observer.StoreCall reports them.
func StoreMethods() []string {
	return []string{"CreateApp", "GetApp", "ListApps", "DeleteApp", "UpdateSMSChannel", "UpdateMessageStatus",
		"DestinationLockout", "ClaimSend", "ReleaseSend", "RecordSend", "RecordSendOnce", "VerifyCode"}
}

// storeCalled tells the observer how long the store's method took since
// start, and whether its err is a failure (see Observer.StoreCall).
func (s *Service) storeCalled(method string, start time.Time, err error) {
	failed := err != nil && !errors.Is(err, storage.ErrNotFound) && !errors.Is(err, storage.ErrAlreadyExists) &&
		!errors.Is(err, context.Canceled)
	s.observer.StoreCall(method, time.Since(start), failed)
}

// Service implements the OTP operations. It is safe for concurrent use.
type Service struct {
	store       storage.Store
	carrier     sms.Carrier
	macKey      *keyedmac.Key
	keyReplaced func() bool
	budget      storage.FailureBudget
	sendTimeout time.Duration
	retryWindow time.Duration
	observer    Observer
	apps        *appCache
	log         *slog.Logger
	now         func() time.Time
	rand        io.Reader
}

// MinMACKeyLength is the shortest server secret otpd accepts, in bytes.
const MinMACKeyLength = 32

// NewService checks cfg and returns a Service.
func NewService(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Carrier == nil {
		return nil, errors.New("otp: Store and Carrier are required")
	}
	if len(cfg.MACKey) < MinMACKeyLength {
		return nil, errors.New("otp: the MAC key must be at least 32 bytes")
	}
	s := &Service{
		store:       cfg.Store,
		carrier:     cfg.Carrier,
		macKey:      keyedmac.New(cfg.MACKey),
		keyReplaced: cfg.KeyReplaced,
		budget:      cfg.FailureBudget,
		sendTimeout: cfg.SendTimeout,
		retryWindow: cfg.RetryWindow,
		observer:    cfg.Observer,
		log:         cfg.Logger,
		now:         cfg.Now,
		rand:        cfg.Rand,
	}
	if s.budget.Limit == 0 {
		s.budget.Limit = 10
	}
	if s.budget.Window == 0 {
		s.budget.Window = time.Hour
	}
	if s.sendTimeout == 0 {
		s.sendTimeout = 10 * time.Second
	}
	if s.retryWindow == 0 {
		s.retryWindow = 10 * time.Minute
	}
	switch {
	case cfg.AppCacheTTL == 0:
		s.apps = newAppCache(time.Second)
	case cfg.AppCacheTTL < 0:
		s.apps = newAppCache(0)
	default:
		s.apps = newAppCache(cfg.AppCacheTTL)
	}
	if s.observer == nil {
		s.observer = nopObserver{}
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		s.rand = cryptoRand
	}
	if s.keyReplaced == nil {
		s.keyReplaced = func() bool { return false }
	}
	return s, nil
}

type nopObserver struct{}

func (nopObserver) Sent(string)                           {}
func (nopObserver) Verified(storage.Outcome)              {}
func (nopObserver) Delivered(_, _, _ string)              {}
func (nopObserver) StoreCall(string, time.Duration, bool) {}
