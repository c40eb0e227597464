// Package route is an sms.Carrier that sends each message through an ordered
// list of carriers chosen by rules, failing over from one to the next.
//
// # Rules
//
// A Rule matches a message by its application (AppID, "" for any), by the
// country of its destination (Countries: ISO 3166-1 alpha-2 codes, compared
// with the region libphonenumber gives the number) and by the start of its
// destination (Prefixes: E.164 prefixes such as "+1" or "+4420"). Every
// condition a rule gives must hold; one it leaves empty holds for every
// message. The first rule that matches decides, so put the most specific
// rules first (an application's own rules before the shared ones, a city's
// prefix before its country) and end with a catch-all rule, one with
// neither AppID, Countries nor Prefixes: a message that no rule matches is
// refused as a permanent failure. New refuses a rule that a catch-all
// before it hides.
//
// Countries are libphonenumber's regions, which are finer than calling
// codes: a Guernsey mobile under +44 is GG, not GB, and +1 covers the US,
// Canada and much of the Caribbean. A number libphonenumber gives no
// country (non-geographic +800 or +882 numbers) matches no Countries rule;
// write a prefix to route by calling code.
//
// # Failover
//
// Send tries the carriers of the matching rule in order, handing each the
// same message (the same ID and text), and stops at the first that accepts
// it. It skips a carrier that may not send from the message's origination
// identity (Carrier.Originations), whose circuit is open, or whose rate
// limit is spent. It goes on to the next carrier only after a failure that
// another carrier may not share: a Temporary, Throttled or NotPermitted
// refusal (the last is about otpd's account with that carrier: its
// credentials, or a sender it does not know), or an error of no known kind
// (a timeout, a broken connection). A Permanent or OptedOut refusal is
// about the message or its recipient and ends the send at once. So does the end of ctx: Send never starts a carrier after the
// caller's deadline. A carrier without a Timeout of its own, when carriers
// follow it, gets a fair share of the time ctx leaves (Carrier.Timeout), so
// that one that hangs leaves the next time to try.
//
// A carrier that did not answer in time may still deliver the message, and
// the next one then delivers it too: the recipient may get the same text,
// with the same code, twice, but never two different codes. Receivers and
// carriers can tell the copies apart by the message ID.
//
// # Circuit breaker and rate limits
//
// Each carrier has a circuit breaker. Failures consecutive temporary
// failures (Temporary or Throttled refusals, unclassified errors, including
// a send that ran out of time, and refusals of otpd's credentials) open its
// circuit; while it is open, Send
// skips the carrier without calling it. Cooldown after it opened, the next
// send may try the carrier once (half-open): if the carrier answers, with
// an acceptance or with a Permanent, OptedOut or NotPermitted refusal, the
// circuit closes; if it fails again, the circuit stays open for another Cooldown.
// Only one such trial is under way at a time. An answer to a send that was
// under way when the circuit opened closes it too. A send its caller
// cancelled proves nothing and is not counted.
//
// A carrier with a RatePerSecond takes at most that many sends per second,
// with bursts of up to Burst, from a token bucket in this process (each
// otpd instance has its own); beyond it Send skips the carrier.
//
// # When no carrier accepts
//
// Send's error is a *SendError listing every carrier it tried or skipped.
// It wraps the last tried carrier's error, so errors.As finds that
// carrier's *sms.Error, and the domain reports its status; except when
// that carrier refused for otpd's account with it (NotPermitted) while
// another failed only for now (Temporary, Throttled, or skipped for its
// open circuit or spent rate limit): then it wraps a Temporary or
// Throttled error, since a retry may succeed. When no carrier
// could be tried at all, the *SendError wraps an *sms.Error of the router's
// own that names the carriers and why each was skipped: Throttled if rate
// limits alone stood in the way, Temporary if an open circuit did, and
// Permanent if no carrier of the route may send from the message's
// origination identity (which CheckOrigination lets the domain refuse
// before any code is made).
//
// The router starts no goroutines: every attempt runs in the caller's.
package route

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nyaruka/phonenumbers"

	"github.com/otpd/otpd/internal/phone"
	"github.com/otpd/otpd/internal/sms"
)

// Rule chooses the carriers of the messages it matches.
type Rule struct {
	// AppID is the application whose messages the rule matches; "" matches
	// every application.
	AppID string
	// Countries are ISO 3166-1 alpha-2 codes (any case) of the
	// destinations the rule matches, compared with the region
	// libphonenumber gives the number; empty matches every country.
	Countries []string
	// Prefixes are E.164 prefixes ("+1", "+4420") of the destinations the
	// rule matches; empty matches every destination.
	Prefixes []string
	// Carriers are the names of the carriers to try, in order. At least
	// one.
	Carriers []string
}

// Carrier is a carrier the router may send through, with what limits its
// use.
type Carrier struct {
	sms.Carrier
	// Originations are the identities the carrier may send from: E.164
	// numbers, short codes, alphanumeric sender IDs, compared exactly, or
	// "*" for any. Empty means any.
	Originations []string
	// RatePerSecond bounds the sends this process makes through the
	// carrier; 0 means unlimited.
	RatePerSecond float64
	// Burst is how many sends may go at once beyond the steady rate; 0
	// means one second's worth (RatePerSecond rounded up). Only with a
	// RatePerSecond.
	Burst int
	// Timeout bounds each attempt on this carrier, so that a carrier that
	// stalls leaves time for the next one. 0 means a fair share: when the
	// caller has a deadline and carriers after this one in the route could
	// be tried (they may send from the message's origination, and neither
	// their circuit nor their rate limit holds them back), the attempt gets
	// the time left divided by the carriers left to try, itself included
	// (so the first of two gets half the send's time); otherwise only the
	// caller's deadline (and the carrier's own timeout) bound it.
	Timeout time.Duration
}

// BreakerConfig configures every carrier's circuit breaker.
type BreakerConfig struct {
	// Failures is how many consecutive temporary failures of a carrier
	// open its circuit. Default 5. A NotPermitted refusal counts only if
	// it refuses otpd's credentials (sms.Error.Credentials): others may be
	// of the request's own sender, which a client chooses; counted, a few
	// requests could shut a carrier out for every application.
	Failures int
	// Cooldown is how long an open circuit keeps the carrier out before one
	// trial send may try it again. Default 30 s.
	Cooldown time.Duration
}

// Defaults of BreakerConfig.
const (
	DefaultFailures = 5
	DefaultCooldown = 30 * time.Second
)

// Config configures a Router.
type Config struct {
	// Name is the router's own name as an sms.Carrier; default "route".
	Name     string
	Carriers []Carrier
	Rules    []Rule
	Breaker  BreakerConfig
	// Observer is told of every attempt and circuit change (metrics); may
	// be nil.
	Observer Observer
	// Now is the clock of circuit breakers and rate limits; nil means
	// time.Now.
	Now func() time.Time
	// Logger is told, as warnings, of every failure after which the send
	// moves on to the next carrier (with the carrier's reason: the send's
	// caller may only see the carrier that accepted) and of every circuit
	// that opens; a circuit that closes is logged at Info. nil logs
	// nothing.
	Logger *slog.Logger
}

// Observer is told what the router does, e.g. to count it in metrics. Its
// methods must be safe for concurrent use, return quickly, and not call the
// Router.
type Observer interface {
	// Attempt reports one carrier's part in one send: outcome is one of
	// the Outcome constants, elapsed how long the carrier took (zero for a
	// skip).
	Attempt(carrier, outcome string, elapsed time.Duration)
	// BreakerState reports that a carrier's circuit opened or closed. New
	// reports every carrier closed.
	BreakerState(carrier string, open bool)
}

// The outcomes of an attempt, as Observer.Attempt and Attempt report them.
const (
	OutcomeAccepted           = "accepted"
	OutcomeRefusedPermanent   = "refused-permanent"
	OutcomeTemporary          = "temporary" // a Temporary refusal or an unclassified error (timeout, connection)
	OutcomeThrottled          = "throttled"
	OutcomeOptedOut           = "opted-out"
	OutcomeNotPermitted       = "refused-not-permitted" // a NotPermitted refusal: otpd's account with the carrier
	OutcomeSkippedOpenCircuit = "skipped-open-circuit"
	OutcomeSkippedRateLimit   = "skipped-rate-limit"
	OutcomeSkippedOrigination = "skipped-origination" // the carrier may not send from the message's From
)

// Outcomes returns every outcome, e.g. to show each metric from the start.
func Outcomes() []string {
	return []string{OutcomeAccepted, OutcomeRefusedPermanent, OutcomeTemporary, OutcomeThrottled, OutcomeOptedOut,
		OutcomeNotPermitted, OutcomeSkippedOpenCircuit, OutcomeSkippedRateLimit, OutcomeSkippedOrigination}
}

// Attempt is one carrier's part in one send.
type Attempt struct {
	Carrier string
	Outcome string        // one of the Outcome constants
	Elapsed time.Duration // how long the carrier took; zero for a skip
	Err     error         // the carrier's error, for a refusal or failure
}

// Delivery is the outcome of a send that a carrier accepted.
type Delivery struct {
	Receipt  sms.Receipt // the accepting carrier's
	Carrier  string      // the accepting carrier's name
	Attempts []Attempt   // every carrier tried or skipped, in order; the last accepted
}

// SendError is the outcome of a send that no carrier accepted. Err is the
// error that decides how the send failed: the last tried carrier's, or the
// router's own when it could try none. Unwrap returns Err, so errors.As
// finds its *sms.Error.
type SendError struct {
	Attempts []Attempt
	Err      error
}

// MayDeliver reports whether a carrier the send tried may still deliver
// the message (sms.MayDeliver of its failure): a first carrier that timed
// out may deliver although the next refused it for good.
func (e *SendError) MayDeliver() bool {
	for _, a := range e.Attempts {
		if a.Err != nil && sms.MayDeliver(a.Err) {
			return true
		}
	}
	return false
}

func (e *SendError) Error() string {
	var b strings.Builder
	b.WriteString("route: ")
	tried := false
	for i, a := range e.Attempts {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(a.Carrier + ": " + a.Outcome)
		if a.Err != nil {
			tried = true
			b.WriteString(" (" + a.Err.Error() + ")")
		}
	}
	if !tried {
		if len(e.Attempts) > 0 {
			b.WriteString("; ")
		}
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *SendError) Unwrap() error { return e.Err }

// OriginationError reports that no carrier of the route for a message may
// send from its origination identity. Its message, for the client, lists
// the identities they may send from.
type OriginationError struct {
	From     string
	Carriers []string // the route's carriers, in order
	Allowed  []string // the identities they may send from, in order, each once
}

func (e *OriginationError) Error() string {
	return fmt.Sprintf("%q cannot be used for this destination: its carriers may send only from %s",
		e.From, strings.Join(e.Allowed, ", "))
}

// Router sends each message through the carriers its rules choose. It is
// safe for concurrent use.
type Router struct {
	name     string
	rules    []rule
	breaker  BreakerConfig
	observer Observer
	now      func() time.Time
	log      *slog.Logger
}

var _ sms.Carrier = (*Router)(nil)

// rule is a Rule, checked and resolved.
type rule struct {
	appID     string
	countries map[string]bool // nil: any
	prefixes  []string        // nil: any
	carriers  []*member
}

// member is a carrier and its state.
type member struct {
	name      string
	carrier   sms.Carrier
	anyOrigin bool
	origins   map[string]bool
	allowed   []string // Originations as configured
	timeout   time.Duration
	rate      float64 // tokens per second; 0: unlimited
	burst     float64

	mu       sync.Mutex
	tokens   float64
	refilled time.Time
	failures int       // consecutive temporary failures while closed
	open     bool      // the circuit is open
	openedAt time.Time // when it opened, or when its last trial failed
	trial    bool      // a half-open trial is under way
}

// Name returns the router's name, "route" by default.
func (r *Router) Name() string { return r.name }

// Send sends m through the carriers of the first rule that matches it, as
// the package documentation describes, and returns the accepting carrier's
// receipt. Deliver tells also which carrier accepted.
func (r *Router) Send(ctx context.Context, m sms.Message) (sms.Receipt, error) {
	d, err := r.Deliver(ctx, m)
	if err != nil {
		return sms.Receipt{}, err
	}
	receipt := d.Receipt
	receipt.Carrier = d.Carrier
	return receipt, nil
}

// Deliver is Send, telling which carrier accepted m and what every carrier
// of the route did. Its error is always a *SendError.
func (r *Router) Deliver(ctx context.Context, m sms.Message) (Delivery, error) {
	rl := r.match(m.AppID, m.To)
	if rl == nil {
		return Delivery{}, &SendError{Err: &sms.Error{Status: sms.Permanent,
			Message: "no route matches this message (" + r.describe(m.AppID, m.To) + "): the operator's rules must end with a catch-all rule"}}
	}
	var (
		attempts []Attempt
		last     error // the last tried carrier's
		forNow   error // the last temporary failure of a tried carrier
		late     bool  // the caller's time ran out before a carrier was started
		skipped  = map[string][]string{}
	)
	for i, c := range rl.carriers {
		if !c.mayOriginate(m.From) {
			attempts = append(attempts, r.skip(c, OutcomeSkippedOrigination))
			skipped[OutcomeSkippedOrigination] = append(skipped[OutcomeSkippedOrigination], c.name)
			continue
		}
		if ctx.Err() != nil {
			late = true // start no carrier once the caller's time is up
			break
		}
		why, trial := c.acquire(r.now(), r.breaker.Cooldown)
		if why != "" {
			attempts = append(attempts, r.skip(c, why))
			skipped[why] = append(skipped[why], c.name)
			continue
		}
		left := 1 // the carriers that could be tried from here: only a carrier without a timeout of its own shares time
		if c.timeout == 0 {
			left += r.couldTry(rl.carriers[i+1:], m.From)
		}
		receipt, a, next := r.try(ctx, c, m, trial, left)
		attempts = append(attempts, a)
		if a.Err == nil {
			return Delivery{Receipt: receipt, Carrier: c.name, Attempts: attempts}, nil
		}
		last = a.Err
		if a.Outcome == OutcomeTemporary || a.Outcome == OutcomeThrottled {
			forNow = a.Err
		}
		if !next {
			break
		}
		if i < len(rl.carriers)-1 {
			r.log.Warn("a carrier did not take the message: the send moves on along its route", "carrier", c.name,
				"message_id", m.ID, "app", m.AppID, "outcome", a.Outcome, "elapsed", a.Elapsed, "err", phone.Mask(a.Err.Error()))
		}
	}
	if last != nil {
		return Delivery{}, &SendError{Attempts: attempts, Err: reported(last, forNow, late, skipped, m.From)}
	}
	if late {
		return Delivery{}, &SendError{Attempts: attempts, Err: fmt.Errorf("no carrier was tried before the send's time ran out: %w", ctx.Err())}
	}
	return Delivery{}, &SendError{Attempts: attempts, Err: noneTried("no carrier could take the message", skipped, m.From)}
}

// reported returns the error a send that no carrier took reports, last
// being the last tried carrier's: last itself, unless it is a NotPermitted
// refusal, which no retry helps until the operator acts, while a retry may
// succeed: another carrier failed for now (forNow), the send's time ran
// out before the next carriers were tried (late), or a carrier was skipped
// for its open circuit or its spent rate limit.
func reported(last, forNow error, late bool, skipped map[string][]string, from string) error {
	var ce *sms.Error
	if !errors.As(last, &ce) || ce.Status != sms.NotPermitted {
		return last
	}
	if forNow != nil {
		return forNow
	}
	if late {
		return &sms.Error{Status: sms.Temporary, Code: 504, Err: last,
			Message: ce.Message + "; the send's time ran out before the next carriers of its route were tried"}
	}
	later := map[string][]string{
		OutcomeSkippedOpenCircuit: skipped[OutcomeSkippedOpenCircuit],
		OutcomeSkippedRateLimit:   skipped[OutcomeSkippedRateLimit],
	}
	if len(later[OutcomeSkippedOpenCircuit])+len(later[OutcomeSkippedRateLimit]) == 0 {
		return last
	}
	e := noneTried(ce.Message+"; the others could not", later, from)
	e.Err = last
	return e
}

// noneTried returns the refusal of a send for which every carrier was
// skipped, lead followed by the reasons they were, each with its carriers.
func noneTried(lead string, skipped map[string][]string, from string) *sms.Error {
	var why []string
	if names := skipped[OutcomeSkippedOpenCircuit]; len(names) > 0 {
		why = append(why, "the circuit of "+strings.Join(names, ", ")+" is open after repeated failures")
	}
	if names := skipped[OutcomeSkippedRateLimit]; len(names) > 0 {
		why = append(why, "the rate limit of "+strings.Join(names, ", ")+" is reached")
	}
	if names := skipped[OutcomeSkippedOrigination]; len(names) > 0 {
		why = append(why, strings.Join(names, ", ")+" may not send from "+fmt.Sprintf("%q", from))
	}
	msg := lead + ": " + strings.Join(why, "; ")
	switch {
	case len(skipped[OutcomeSkippedOpenCircuit]) > 0:
		return &sms.Error{Status: sms.Temporary, Message: msg}
	case len(skipped[OutcomeSkippedRateLimit]) > 0:
		return &sms.Error{Status: sms.Throttled, Message: msg}
	}
	return &sms.Error{Status: sms.Permanent, Message: msg}
}

// skip reports and returns a carrier's skip.
func (r *Router) skip(c *member, outcome string) Attempt {
	if r.observer != nil {
		r.observer.Attempt(c.name, outcome, 0)
	}
	return Attempt{Carrier: c.name, Outcome: outcome}
}

// health is what an attempt's outcome says of its carrier.
type health int

const (
	unknown health = iota // the caller cancelled: nothing to learn
	healthy               // the carrier answered
	failing               // a temporary failure, or otpd's credentials refused
)

// try hands m to c, the first of the left carriers that could still be
// tried, and reports whether a failure is worth another carrier.
func (r *Router) try(ctx context.Context, c *member, m sms.Message, trial bool, left int) (receipt sms.Receipt, a Attempt, next bool) {
	actx, cancel := ctx, context.CancelFunc(func() {})
	if t := c.attemptTimeout(ctx, left); t > 0 {
		actx, cancel = context.WithTimeout(ctx, t)
	}
	start := time.Now()
	receipt, err := c.carrier.Send(actx, m)
	elapsed := time.Since(start)
	cancel()
	outcome, h, next := classify(err)
	if err != nil && errors.Is(ctx.Err(), context.Canceled) {
		h = unknown
	}
	switch c.settle(r.now(), h, trial, r.breaker.Failures, r.observer) {
	case opened:
		r.log.Warn("a carrier's circuit opened after consecutive failures: sends skip it until a trial send after the cooldown",
			"carrier", c.name, "failures", r.breaker.Failures, "cooldown", r.breaker.Cooldown, "err", phone.Mask(err.Error()))
	case closed:
		r.log.Info("a carrier's circuit closed: it answered again", "carrier", c.name)
	}
	if r.observer != nil {
		r.observer.Attempt(c.name, outcome, elapsed)
	}
	return receipt, Attempt{Carrier: c.name, Outcome: outcome, Elapsed: elapsed, Err: err}, next
}

// attemptTimeout is how long an attempt on c may take, with left carriers
// still to try (c included), or 0 for no bound but ctx's: c's Timeout, or,
// without one, a fair share of the time ctx leaves when carriers follow.
// Without it, a carrier whose own timeout (often 10 s, like the send's)
// reached the send's deadline would leave the next carrier no time at all.
func (c *member) attemptTimeout(ctx context.Context, left int) time.Duration {
	if c.timeout > 0 {
		return c.timeout
	}
	deadline, ok := ctx.Deadline()
	if !ok || left < 2 {
		return 0
	}
	return max(time.Until(deadline)/time.Duration(left), time.Millisecond)
}

// classify returns the outcome of an attempt that returned err, what it
// says of the carrier, and whether another carrier is worth trying.
func classify(err error) (outcome string, h health, next bool) {
	if err == nil {
		return OutcomeAccepted, healthy, false
	}
	var ce *sms.Error
	if !errors.As(err, &ce) {
		return OutcomeTemporary, failing, true
	}
	switch ce.Status {
	case sms.Temporary:
		return OutcomeTemporary, failing, true
	case sms.Throttled:
		return OutcomeThrottled, failing, true
	case sms.NotPermitted:
		if ce.Credentials {
			return OutcomeNotPermitted, failing, true // every send would be refused: let the circuit open
		}
		return OutcomeNotPermitted, healthy, true
	case sms.OptedOut:
		return OutcomeOptedOut, healthy, false
	}
	// Permanent, or a status of no known kind: only Temporary, Throttled
	// and NotPermitted are worth another carrier.
	return OutcomeRefusedPermanent, healthy, false
}

// couldTry counts the carriers of cs that a send from from could try now:
// those that may send from it, whose circuit is closed or due for a
// trial, and whose rate limit has a send left. (It takes nothing: another
// send may take the last token first; the count only shares out time.)
func (r *Router) couldTry(cs []*member, from string) int {
	now, n := r.now(), 0
	for _, c := range cs {
		if c.mayOriginate(from) && c.available(now, r.breaker.Cooldown) {
			n++
		}
	}
	return n
}

// available reports whether acquire would let c be tried now, without
// taking anything.
func (c *member) available(now time.Time, cooldown time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	skip, _ := c.check(now, cooldown)
	return skip == ""
}

// acquire decides whether c may be tried now: it returns the outcome of a
// skip, or "" and takes a token, and whether the attempt is the trial of a
// half-open circuit.
func (c *member) acquire(now time.Time, cooldown time.Duration) (skip string, trial bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if skip, trial = c.check(now, cooldown); skip != "" {
		return skip, false
	}
	if c.rate > 0 {
		c.tokens--
	}
	c.trial = c.trial || trial
	return "", trial
}

// check returns why c must be skipped now, if it must, and otherwise
// whether a send would be its circuit's trial. It refills c's token bucket
// and takes nothing from it. c.mu must be held.
func (c *member) check(now time.Time, cooldown time.Duration) (skip string, trial bool) {
	if c.open {
		if c.trial || now.Before(c.openedAt.Add(cooldown)) {
			return OutcomeSkippedOpenCircuit, false
		}
		trial = true
	}
	if c.rate > 0 {
		if now.After(c.refilled) {
			c.tokens = min(c.burst, c.tokens+now.Sub(c.refilled).Seconds()*c.rate)
			c.refilled = now
		}
		if c.tokens < 1 {
			return OutcomeSkippedRateLimit, false
		}
	}
	return "", trial
}

// settle updates c's circuit with an attempt's outcome. It reports a
// change to obs while it holds c's lock, so that changes are reported in
// the order they happened.
func (c *member) settle(now time.Time, h health, trial bool, failures int, obs Observer) circuitChange {
	c.mu.Lock()
	defer c.mu.Unlock()
	if trial {
		c.trial = false
	}
	switch h {
	case healthy:
		c.failures = 0
		if c.open {
			c.open = false
			if obs != nil {
				obs.BreakerState(c.name, false)
			}
			return closed
		}
	case failing:
		if c.open {
			if trial {
				c.openedAt = now // another cooldown
			}
			return unchanged // a late failure of an attempt started before it opened
		}
		c.failures++
		if c.failures >= failures {
			c.open, c.openedAt, c.failures = true, now, 0
			if obs != nil {
				obs.BreakerState(c.name, true)
			}
			return opened
		}
	}
	return unchanged
}

// circuitChange is what an attempt's outcome did to its carrier's circuit.
type circuitChange int

const (
	unchanged circuitChange = iota
	opened
	closed
)

// mayOriginate reports whether c may send from from.
func (c *member) mayOriginate(from string) bool { return c.anyOrigin || c.origins[from] }

// CheckOrigination reports whether a carrier of the route for (appID,
// destination) may send from from: it returns nil if one may, or an
// *OriginationError listing what they may send from. It does not look at
// circuits or rate limits, and returns nil when no rule matches (Send
// refuses such a message as a permanent failure).
func (r *Router) CheckOrigination(appID, destination, from string) error {
	rl := r.match(appID, destination)
	if rl == nil {
		return nil
	}
	e := &OriginationError{From: from}
	seen := map[string]bool{}
	for _, c := range rl.carriers {
		if c.mayOriginate(from) {
			return nil
		}
		e.Carriers = append(e.Carriers, c.name)
		for _, o := range c.allowed {
			if !seen[o] {
				seen[o] = true
				e.Allowed = append(e.Allowed, o)
			}
		}
	}
	return e
}

// match returns the first rule that matches a message of appID to
// destination, or nil.
func (r *Router) match(appID, destination string) *rule {
	region, regionKnown := "", false
	for i := range r.rules {
		rl := &r.rules[i]
		if rl.appID != "" && rl.appID != appID {
			continue
		}
		if rl.prefixes != nil && !hasAnyPrefix(destination, rl.prefixes) {
			continue
		}
		if rl.countries != nil {
			if !regionKnown {
				region, regionKnown = regionOf(destination), true
			}
			if !rl.countries[region] {
				continue
			}
		}
		return rl
	}
	return nil
}

// describe names what a message's route depends on, for a refusal: never
// the whole number.
func (r *Router) describe(appID, destination string) string {
	s := "application " + appID
	if region := regionOf(destination); region != "" {
		s += ", destination country " + region
	} else if n, err := phonenumbers.Parse(destination, ""); err == nil {
		s += fmt.Sprintf(", destination calling code +%d", n.GetCountryCode())
	}
	return s
}

// regionOf returns the ISO 3166-1 alpha-2 region libphonenumber gives an
// E.164 number, or "" if it gives none.
func regionOf(e164 string) string {
	n, err := phonenumbers.Parse(e164, "")
	if err != nil {
		return ""
	}
	region := phonenumbers.GetRegionCodeForNumber(n)
	if len(region) != 2 || region == "ZZ" {
		return "" // "001" for non-geographic numbers, "ZZ" or "" for unknown ones
	}
	return region
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
