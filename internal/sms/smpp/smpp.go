// Package smpp is a carrier that submits messages to an operator's SMSC
// over SMPP 3.4, bound as a transceiver: one TCP (or TLS) connection that
// carries both the submissions and the SMSC's delivery receipts.
//
// # The link
//
// New binds with bind_transceiver (system_id, password, system_type,
// interface_version 0x34) and keeps the link alive: an enquire_link every
// Config.EnquireLink, answered within Config.SubmitTimeout or the link is
// taken for dead. When the link drops, the SMSC unbinds, or an answer is
// missing, the carrier re-binds by itself, waiting 0.5 s, then 1 s, 2 s ...
// up to 30 s (with jitter) between attempts. While it is not bound, Send
// fails at once with a temporary failure instead of waiting for a timeout,
// so that a router can fail over to another carrier.
//
// New returns an error when the configuration is invalid or when the SMSC
// refuses the first bind (a wrong system_id or password does not fix
// itself). When the SMSC cannot be reached at all, New still returns a
// carrier, which keeps trying in the background: otpd starts while one
// SMSC is down.
//
// # A message
//
// The text travels as GSM 03.38 (data_coding 0, one septet per octet,
// unpacked, as SMSCs expect over SMPP) when every character is in the GSM
// 7-bit alphabet or its extension table, else as UCS-2 (data_coding 8,
// UTF-16BE); see package gsm7. A text longer than one SMS is split by
// gsm7.Split and sent as a concatenated message: one submit_sm per part,
// each with a user data header (IEI 0x00, 8-bit reference) and esm_class
// 0x40. The message is accepted only when the SMSC accepted every part
// (submit_sm_resp with command_status 0); the Receipt's CarrierMessageID
// is the message_id of the first part.
//
// The destination must be E.164 and goes as TON 1 (international), NPI 1
// (ISDN), without the '+'. The origination identity gives the source
// address: an E.164 number is TON 1/NPI 1, a short code (digits only) TON 2
// (national)/NPI 1, and an alphanumeric sender ID (at most 11 printable
// ASCII characters) TON 5 (alphanumeric)/NPI 0. Message.EntityID and
// TemplateID (India's DLT) are not sent: operators want them in TLVs of
// their own, which this carrier does not know.
//
// At most Config.Window submit_sm await their submit_sm_resp at any time,
// and Config.RatePerSecond (if set) spaces the submit_sm out evenly. A
// submit_sm whose answer does not arrive within Config.SubmitTimeout, or
// the caller's deadline, fails as temporary: the SMSC may still deliver
// it.
//
// # Refusals
//
// The command_status of a submit_sm_resp (or generic_nack) maps to the
// refusal otpd reports:
//
//	ESME_RTHROTTLED (0x58), ESME_RMSGQFUL (0x14)            throttled (429)
//	ESME_RSYSERR (0x08), ESME_RSUBMITFAIL (0x45),
//	ESME_RINVBNDSTS (0x04, and the carrier re-binds),
//	ESME_RX_T_APPN (0x64), ESME_RUNKNOWNERR (0xFF),
//	any vendor-specific or unknown status                  temporary (503)
//	ESME_RINVSRCADR (0x0A), ESME_RINVSRCTON/NPI,
//	ESME_RINVSERTYP (0x15), ESME_RINVSYSTYP (0x53),
//	ESME_RSERTYPUNAUTH, ESME_RPROHIBITED, ESME_RSERTYPDENIED,
//	ESME_RINVSRCADDRSUBUNIT: the sender or the account's
//	rights, which another carrier may not share            not permitted (403)
//	ESME_RINVDSTADR (0x0B),
//	ESME_RINVMSGLEN (0x01), ESME_RINVDCS (0x104),
//	ESME_RINVESMCLASS (0x43),
//	ESME_RINVDSTTON/NPI, ESME_RX_P_APPN, ESME_RX_R_APPN,
//	optional parameter errors and the other malformed-request
//	statuses                                               permanent (400)
//	no answer in time, the link down or broken              temporary (503/504)
//
// The refusal's message names the status (e.g. "ESME_RINVDSTADR (0x0000000B,
// invalid destination address)") and, for a concatenated message, the part.
// When the SMSC took another part of that message (an earlier one, or a
// later one awaiting its answer in the window meanwhile), the handset may
// show it, and the code in it: the refusal keeps its class but may deliver
// (sms.Error.MayDeliver), so that otpd keeps the code, as it does when a
// send stops after some parts were submitted.
// The carrier never logs, and never puts in an error, the text it sends.
//
// # Delivery receipts
//
// With Config.RegisteredDelivery every submit_sm asks for a receipt
// (registered_delivery 1). The carrier reads receipts from the
// receipted_message_id and message_state TLVs of a deliver_sm (or
// data_sm), or else from the text "id:... sub:... dlvrd:... submit
// date:... done date:... stat:DELIVRD err:000 text:..." of the short
// message (what follows "text:", which quotes the message and so the code,
// is never read). It passes each to Config.Reporter:
//
//	DELIVRD (message_state 2)                           sms.Delivered
//	UNDELIV, EXPIRED, REJECTD, DELETED (5, 3, 8, 4)     sms.Undelivered
//	ENROUTE, ACCEPTD, UNKNOWN (1, 6, 7), anything else  sms.Pending
//
// The report's CarrierMessageID is the Receipt's (the first part's
// message_id), its MessageID otpd's Message.ID, its Code the stat (and a
// non-zero err, e.g. "UNDELIV err:001"), and its At the time the receipt
// arrived (the receipt's done date has no time zone). A concatenated
// message is decided by the receipts of all its parts: nothing is reported
// of it before the SMSC accepted every part (the receipts of parts that
// come earlier count once it has; intermediate ones are dropped), then it
// is reported Delivered once every part was, and Undelivered as soon as
// one part was not; a repeat of a final receipt is dropped. The
// carrier remembers the messages of the last 72 hours, at most 100 000 of
// them, to match receipts; a receipt it cannot match (say, after a
// restart) is reported with the message_id it names and no MessageID.
// Mobile-originated messages are acknowledged and dropped.
//
// The link's reader does not wait for the Reporter, which may be slow (a
// store under load): it queues each receipt, answers the deliver_sm with
// command_status 0, and one goroutine of the carrier reports the queued
// receipts in the order they came, whichever link brought them. When 1000
// receipts are queued, the next is answered ESME_RX_T_APPN (0x64, a
// temporary error of the receiver), so that the SMSC delivers it again
// later; the carrier logs a warning when that starts, and a line with the
// count when receipts are queued again. Close reports the receipts still
// queued, which the SMSC will not send again, for at most 5 s. A
// deliver_sm or data_sm that cannot be decoded is answered with
// command_status 0: sending it again would not make it better.
package smpp

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/linxGnu/gosmpp/data"
	"github.com/linxGnu/gosmpp/pdu"

	"github.com/otpd/otpd/internal/sms"
)

const (
	defaultName          = "smpp"
	defaultEnquireLink   = 30 * time.Second
	defaultWindow        = 10
	defaultSubmitTimeout = 10 * time.Second

	// The waits between re-bind attempts: minBackoff, doubled after every
	// failed attempt up to maxBackoff, back to minBackoff once a link has
	// stayed up for stableLink.
	minBackoff = 500 * time.Millisecond
	maxBackoff = 30 * time.Second
	stableLink = 10 * time.Second

	// unbindWait is how long Close waits for the SMSC's unbind_resp.
	unbindWait = time.Second

	// SMPP 3.4 field limits, without the terminating NUL.
	maxSystemID   = 15
	maxPassword   = 8
	maxSystemType = 12
	maxSenderID   = 11 // an alphanumeric TP-OA holds 11 characters
	maxAddrDigits = 15 // E.164
	maxParts      = 255
)

// Config configures an SMPP carrier.
type Config struct {
	// Name names the carrier in otpd's logs and metrics: letters, digits,
	// '-', '_' and '.', at most 64. Default "smpp".
	Name string
	// Addr is the SMSC's host:port.
	Addr string
	// SystemID (at most 15 characters), Password (at most 8) and
	// SystemType (at most 12, often empty) identify otpd to the SMSC.
	SystemID   string
	Password   string
	SystemType string
	// TLS, when set, wraps the connection in TLS with this configuration
	// (ServerName defaults to Addr's host).
	TLS *tls.Config
	// EnquireLink is the interval of the keep-alive. Default 30 s.
	EnquireLink time.Duration
	// Window is the most submit_sm that may await their submit_sm_resp at
	// once. Default 10.
	Window int
	// RatePerSecond caps the submit_sm per second (each part of a
	// concatenated message counts); 0 means no cap.
	RatePerSecond float64
	// SubmitTimeout bounds the wait for a submit_sm_resp, an
	// enquire_link_resp and a bind. Default 10 s; a shorter deadline of the
	// caller's context wins.
	SubmitTimeout time.Duration
	// RegisteredDelivery asks the SMSC for a delivery receipt of every
	// message. otpd's configuration file turns it on unless told
	// otherwise; the zero Config asks for none.
	RegisteredDelivery bool
	// Reporter receives the delivery receipts; nil drops them.
	Reporter sms.Reporter
	// Logger hears of the link: when it goes down (a bind that failed
	// included, so that an unreachable or mistyped SMSC shows at start-up)
	// and when it is bound again. nil discards.
	Logger *slog.Logger
	// OnLink, if set, is told whether the carrier (by its name) is bound:
	// once when New has tried the first bind, then at every change. It is
	// called without the carrier's lock, from the goroutine that keeps
	// the link; it should return quickly.
	OnLink func(carrier string, up bool)
}

// Carrier submits messages to an SMSC. It is safe for concurrent use.
type Carrier struct {
	name          string
	addr          string
	systemID      string
	password      string
	systemType    string
	tls           *tls.Config
	enquireLink   time.Duration
	submitTimeout time.Duration
	registered    bool
	reporter      sms.Reporter
	log           *slog.Logger
	onLink        func(carrier string, up bool)

	window   chan struct{} // one token per submit_sm awaiting its answer
	pace     *pacer        // nil: no rate cap
	ref      atomic.Uint32 // concatenation reference numbers
	receipts *tracker
	queue    chan receipt // receipts awaiting reportReceipts; closed once run ends
	refused  atomic.Int64 // receipts refused since the queue was last full

	life context.Context // ends at Close
	stop context.CancelFunc
	done chan struct{} // closed when the session goroutine ends
	once sync.Once

	mu        sync.Mutex
	cur       *link // the bound link, nil while there is none
	down      error // why there is no link
	downSince time.Time
	closed    bool
	told      bool // onLink has been told the link's state
}

var _ sms.Carrier = (*Carrier)(nil)

var validName = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// New checks cfg, binds to the SMSC as a transceiver and returns the
// carrier, which keeps the link up until Close. ctx bounds the first bind
// only. New fails when cfg is invalid, when the SMSC refuses the bind for
// its credentials (ESME_RINVSYSID, ESME_RINVPASWD: no retry can mend
// them), or when ctx ends first. When the SMSC cannot be reached, or
// refuses the bind for another reason (ESME_RBINDFAIL, ESME_RALYBND, a
// session limit: often passing, as when the SMSC restarts), it returns the
// carrier, which keeps re-binding in the background (Send fails as
// temporary meanwhile, so a route fails over).
func New(ctx context.Context, cfg Config) (*Carrier, error) {
	c, err := newCarrier(cfg)
	if err != nil {
		return nil, err
	}
	// The carrier outlives ctx, which bounds the first bind only.
	c.life, c.stop = context.WithCancel(context.Background())
	c.done = make(chan struct{})
	l, err := c.bind(ctx)
	if err != nil {
		var refused *bindRefused
		if errors.As(err, &refused) && refused.credentials() || ctx.Err() != nil {
			c.stop()
			return nil, fmt.Errorf("smpp: %s: %w", c.name, err)
		}
	}
	c.setLink(l, err)
	go c.run(l)
	return c, nil
}

// newCarrier returns an unbound carrier for cfg, or an error naming every
// problem of cfg.
func newCarrier(cfg Config) (*Carrier, error) {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("smpp: "+format, args...))
	}
	name := cfg.Name
	if name == "" {
		name = defaultName
	}
	if !validName.MatchString(name) {
		bad("Name %q must be 1 to 64 letters, digits, '-', '_' or '.': it labels logs and metrics", name)
	}
	if cfg.Addr == "" {
		bad("Addr is required: the SMSC's host:port, like smsc.example.net:2775")
	} else if host, port, err := net.SplitHostPort(cfg.Addr); err != nil || host == "" || port == "" {
		bad("Addr %q must be host:port, like smsc.example.net:2775", cfg.Addr)
	}
	if cfg.SystemID == "" {
		bad("SystemID is required: the account name the SMSC operator gave")
	}
	for _, f := range []struct {
		name, value string
		max         int
		secret      bool
	}{
		{"SystemID", cfg.SystemID, maxSystemID, false},
		{"Password", cfg.Password, maxPassword, true},
		{"SystemType", cfg.SystemType, maxSystemType, false},
	} {
		if len(f.value) > f.max {
			bad("%s has %d characters; SMPP 3.4 allows at most %d", f.name, len(f.value), f.max)
		}
		if !printableASCII(f.value) {
			if f.secret {
				bad("%s must be printable ASCII", f.name) // never shown
			} else {
				bad("%s %q must be printable ASCII", f.name, f.value)
			}
		}
	}
	enquireLink := cfg.EnquireLink
	switch {
	case enquireLink == 0:
		enquireLink = defaultEnquireLink
	case enquireLink < 0:
		bad("EnquireLink %v is negative; leave it 0 for the default of %v", enquireLink, defaultEnquireLink)
	}
	window := cfg.Window
	switch {
	case window == 0:
		window = defaultWindow
	case window < 0:
		bad("Window %d is negative; leave it 0 for the default of %d", window, defaultWindow)
	}
	if cfg.RatePerSecond < 0 || cfg.RatePerSecond != cfg.RatePerSecond {
		bad("RatePerSecond %v must be positive, or 0 for no cap", cfg.RatePerSecond)
	}
	submitTimeout := cfg.SubmitTimeout
	switch {
	case submitTimeout == 0:
		submitTimeout = defaultSubmitTimeout
	case submitTimeout < 0:
		bad("SubmitTimeout %v is negative; leave it 0 for the default of %v", submitTimeout, defaultSubmitTimeout)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	var tlsConfig *tls.Config
	if cfg.TLS != nil {
		tlsConfig = cfg.TLS.Clone()
		if tlsConfig.ServerName == "" {
			host, _, _ := net.SplitHostPort(cfg.Addr) // checked above
			tlsConfig.ServerName = host
		}
	}
	c := &Carrier{
		name:          name,
		addr:          cfg.Addr,
		systemID:      cfg.SystemID,
		password:      cfg.Password,
		systemType:    cfg.SystemType,
		tls:           tlsConfig,
		enquireLink:   enquireLink,
		submitTimeout: submitTimeout,
		registered:    cfg.RegisteredDelivery,
		reporter:      cfg.Reporter,
		log:           cmp.Or(cfg.Logger, slog.New(slog.DiscardHandler)),
		onLink:        cfg.OnLink,
		window:        make(chan struct{}, window),
		pace:          newPacer(cfg.RatePerSecond),
		receipts:      newTracker(),
		queue:         make(chan receipt, receiptQueue),
	}
	c.ref.Store(rand.Uint32())
	return c, nil
}

// Name returns the configured name, "smpp" by default.
func (c *Carrier) Name() string { return c.name }

// Close unbinds from the SMSC and stops re-binding. Sends under way fail as
// temporary. It returns once the delivery receipts still queued are
// reported, or after 5 s more than the unbind takes (see the package
// documentation). It always returns nil, and may be called more than once.
func (c *Carrier) Close() error {
	c.once.Do(func() {
		c.mu.Lock()
		c.closed = true
		c.mu.Unlock()
		c.stop()
	})
	<-c.done
	return nil
}

// run keeps a link bound until Close, starting with l (nil if the first
// bind failed), and reportReceipts going until every link has ended.
func (c *Carrier) run(l *link) {
	defer close(c.done)
	var reporting sync.WaitGroup
	reporting.Go(c.reportReceipts)
	defer reporting.Wait()
	defer close(c.queue) // every link's reader has ended: no receipt comes any more
	delay := minBackoff
	for {
		if l != nil {
			up := time.Now()
			select {
			case <-l.closed:
			case <-c.life.Done():
				l.unbind(unbindWait)
				c.setLink(nil, errClosed)
				return
			}
			c.setLink(nil, l.failure())
			l.wg.Wait()
			if time.Since(up) >= stableLink {
				delay = minBackoff
			}
		}
		// Wait delay ±20%.
		wait := time.Duration(float64(delay) * (0.8 + 0.4*rand.Float64()))
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-c.life.Done():
			t.Stop()
			c.setLink(nil, errClosed)
			return
		}
		delay = min(2*delay, maxBackoff)
		var err error
		l, err = c.bind(c.life)
		c.setLink(l, err)
	}
}

// setLink records the bound link, or why there is none, then logs the
// link's going down and coming back (failed re-binds meanwhile at debug)
// and tells OnLink of a change. It runs on one goroutine at a time (New's,
// then run's), so the log and OnLink hear of the changes in order, outside
// the lock that Send takes.
func (c *Carrier) setLink(l *link, why error) {
	c.mu.Lock()
	wasUp, wasDown, downSince, before := c.cur != nil, c.down != nil, c.downSince, c.down
	stillDown := !wasUp && l == nil && wasDown
	if stillDown {
		c.down = why // keep downSince
	} else {
		c.cur, c.down = l, why
		if l == nil {
			c.downSince = time.Now()
		}
	}
	tell := c.onLink != nil && (!c.told || wasUp != (l != nil))
	c.told = c.told || tell
	c.mu.Unlock()

	closing := errors.Is(why, errClosed)
	switch {
	case stillDown && closing:
	case stillDown && before != nil && why != nil && failureKind(before) != failureKind(why):
		// A new reason (the SMSC is back but refuses the bind, say) is
		// news for the operator; the same one again is not.
		c.log.Warn("re-binding to the SMSC failed for another reason: sends through this carrier fail over until it re-binds",
			"carrier", c.name, "addr", c.addr, "down_for", time.Since(downSince).Round(time.Millisecond), "err", why)
	case stillDown:
		c.log.Debug("re-binding to the SMSC failed", "carrier", c.name, "addr", c.addr, "err", why)
	case l != nil && !wasDown:
		c.log.Info("bound to the SMSC", "carrier", c.name, "addr", c.addr)
	case l != nil:
		c.log.Info("bound to the SMSC again", "carrier", c.name, "addr", c.addr, "down_for", time.Since(downSince).Round(time.Millisecond))
	case !closing:
		c.log.Warn("no link to the SMSC: sends through this carrier fail over until it re-binds", "carrier", c.name, "addr", c.addr, "err", why)
	}
	if tell {
		c.onLink(c.name, l != nil)
	}
}

// failureKind classifies why a link went down or a bind failed, so that a
// new reason can be told from the same one again: error texts differ from
// one attempt to the next (a connection's local port, say).
func failureKind(err error) string {
	var refused *bindRefused
	var ne net.Error
	var dns *net.DNSError
	var tlsErr tls.RecordHeaderError
	var certErr *tls.CertificateVerificationError
	var alert tls.AlertError
	switch {
	case errors.As(err, &refused):
		return "bind refused " + describeStatus(refused.status)
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed"
	case errors.As(err, &dns):
		return "name not resolved"
	case errors.As(err, &tlsErr), errors.As(err, &certErr), errors.As(err, &alert):
		return "TLS"
	case errors.Is(err, errUnbound):
		return "unbound"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	return "other"
}

// current returns the bound link, or the refusal of a send while there is
// none.
func (c *Carrier) current() (*link, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed:
		return nil, sms.Refuse(&sms.Error{Status: sms.Temporary, Code: 503,
			Message: "the SMPP carrier is shut down; the message was not sent"}, errClosed)
	case c.cur == nil:
		since := time.Since(c.downSince).Round(time.Second)
		return nil, sms.Refuse(&sms.Error{Status: sms.Temporary, Code: 503,
			Message: fmt.Sprintf("otpd is not bound to the SMSC (down for %v, re-binding); the message was not sent", since)},
			fmt.Errorf("not bound to %s: %w", c.addr, c.down))
	}
	return c.cur, nil
}

// Send submits m, in as many parts as its text needs, and returns once the
// SMSC accepted or refused every part, or failed to answer in time.
func (c *Carrier) Send(ctx context.Context, m sms.Message) (sms.Receipt, error) {
	src, err := sourceAddress(m.From)
	if err != nil {
		return sms.Receipt{}, err
	}
	dst, err := destinationAddress(m.To)
	if err != nil {
		return sms.Receipt{}, err
	}
	enc, parts, err := encodeText(m.Text)
	if err != nil {
		return sms.Receipt{}, err
	}
	l, err := c.current()
	if err != nil {
		return sms.Receipt{}, err
	}
	var track *tracked
	if c.registered {
		track = c.receipts.begin(m.ID, len(parts))
	}
	ref := byte(c.ref.Add(1))
	calls := make([]*call, 0, len(parts))
	var stopped error // why not every part was submitted
	for i, payload := range parts {
		sm := submitSM(src, dst, enc, payload, c.registered)
		if len(parts) > 1 {
			sm.EsmClass |= data.SM_UDH_GSM
			sm.Message.SetUDH(pdu.UDH{pdu.NewIEConcatMessage(byte(len(parts)), byte(i+1), ref)})
		}
		var accepted func(string)
		if track != nil {
			accepted = func(id string) {
				if by, ok := c.receipts.accepted(track, i, id); ok {
					c.settleLater(by)
				}
			}
		}
		cl, err := c.submit(ctx, l, sm, accepted)
		if err != nil {
			stopped = err
			break
		}
		calls = append(calls, cl)
	}
	answered := awaitAnswers(ctx, calls)
	for i, cl := range calls[:answered] {
		if err := cl.outcome(i+1, len(parts), c.submitTimeout, otherPartReached(calls, i)); err != nil {
			c.receipts.abandon(track)
			return sms.Receipt{}, err
		}
	}
	switch {
	case answered < len(calls):
		// The parts still awaiting an answer keep their place in the
		// window until it comes or times out.
		c.receipts.abandon(track)
		return sms.Receipt{}, noAnswer(ctx.Err(), answered+1, len(parts), "")
	case stopped != nil:
		c.receipts.abandon(track)
		return sms.Receipt{}, notSubmitted(stopped, len(calls), len(parts))
	}
	return sms.Receipt{CarrierMessageID: calls[0].messageID}, nil
}

// awaitAnswers waits for the answers to calls, in order, and returns how
// many came before ctx ended. It goes on waiting after a refusal: whether
// the SMSC took another part of the message decides what the refusal
// means (see otherPartReached).
func awaitAnswers(ctx context.Context, calls []*call) int {
	for i, cl := range calls {
		select {
		case <-cl.done:
		case <-ctx.Done():
			return i
		}
	}
	return len(calls)
}

// otherPartReached reports whether a part of the message other than
// calls[i] reached the SMSC (see call.reached): then the handset may show
// it, and the code it may carry, whatever became of calls[i].
func otherPartReached(calls []*call, i int) bool {
	for j, cl := range calls {
		if j != i && cl.reached() {
			return true
		}
	}
	return false
}

// submit waits for a place in the window and for the rate cap, then sends
// sm on l, returning the call that its answer resolves. accepted, if not
// nil, is called with the message_id when the SMSC accepts sm, before the
// call is resolved.
func (c *Carrier) submit(ctx context.Context, l *link, sm *pdu.SubmitSM, accepted func(messageID string)) (*call, error) {
	select {
	case c.window <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-l.closed:
		return nil, l.failure()
	}
	release := sync.OnceFunc(func() { <-c.window })
	if err := c.pace.wait(ctx); err != nil {
		release()
		return nil, err
	}
	cl, err := l.request(sm, c.submitTimeout, release, accepted)
	if err != nil {
		release()
		return nil, err
	}
	return cl, nil
}

// pacer spaces events out evenly, at most one per every.
type pacer struct {
	every time.Duration
	mu    sync.Mutex
	next  time.Time // when the next event may happen
}

// newPacer returns a pacer of rate events per second, or nil for no cap.
func newPacer(rate float64) *pacer {
	if rate <= 0 {
		return nil
	}
	return &pacer{every: time.Duration(float64(time.Second) / rate)}
}

// wait returns when the next event may happen, or ctx's error if ctx ends
// first. A nil pacer never waits.
func (p *pacer) wait(ctx context.Context) error {
	if p == nil {
		return ctx.Err()
	}
	p.mu.Lock()
	now := time.Now()
	at := p.next
	if at.Before(now) {
		at = now
	}
	p.next = at.Add(p.every)
	p.mu.Unlock()
	d := at.Sub(now)
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		p.mu.Lock()
		if p.next.Equal(at.Add(p.every)) { // nobody came after: give the slot back
			p.next = at
		}
		p.mu.Unlock()
		return ctx.Err()
	}
}

// ofParts returns " (part i of n)" for a concatenated message, else "".
func ofParts(i, n int) string {
	if n <= 1 {
		return ""
	}
	return " (part " + strconv.Itoa(i) + " of " + strconv.Itoa(n) + ")"
}

// noAnswer returns the failure of a submission that got no answer because
// cause (the caller's context, or the submit timeout) ended the wait for
// part i of n.
func noAnswer(cause error, i, n int, within string) error {
	if errors.Is(cause, context.Canceled) {
		return sms.Refuse(&sms.Error{MayDeliver: true, Status: sms.Temporary, Code: 503,
			Message: "the send was cancelled before the SMSC answered" + ofParts(i, n) + "; the SMSC may still deliver the message"}, cause)
	}
	return sms.Refuse(&sms.Error{MayDeliver: true, Status: sms.Temporary, Code: 504,
		Message: "the SMSC did not answer submit_sm" + within + ofParts(i, n) + "; it may still deliver the message"}, cause)
}

// notSubmitted returns the failure of a send that stopped, for cause,
// after submitting sent of n parts, which the SMSC accepted: the parts it
// took may be delivered (MayDeliver).
func notSubmitted(cause error, sent, n int) error {
	what := "the message was not sent"
	if sent > 0 {
		what = fmt.Sprintf("only %d of its %d parts were submitted; the handset may show a partial message", sent, n)
	}
	e := &sms.Error{MayDeliver: sent > 0, Status: sms.Temporary, Code: 503}
	switch {
	case errors.Is(cause, context.Canceled):
		e.Message = "the send was cancelled before it was submitted to the SMSC; " + what
	case errors.Is(cause, context.DeadlineExceeded):
		e.Code = 504
		e.Message = "the deadline passed while waiting for room in the SMPP window or under the rate limit; " + what
	case errors.Is(cause, errClosed):
		e.Message = "the SMPP carrier is shut down; " + what
	default:
		e.Message = "the connection to the SMSC broke; " + what
	}
	return sms.Refuse(e, cause)
}
