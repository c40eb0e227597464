package smpp

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/linxGnu/gosmpp/data"
	"github.com/linxGnu/gosmpp/pdu"

	"github.com/otpd/otpd/internal/sms"
)

// The TLVs of a delivery receipt (SMPP 3.4 §5.3.2). gosmpp calls 0x0427
// TagMessageStateOption.
const (
	tagReceiptedMessageID pdu.Tag = 0x001E
	tagMessageState       pdu.Tag = 0x0427
	tagNetworkErrorCode   pdu.Tag = 0x0423
)

// esm_class message types (bits 2 to 5) of a deliver_sm that reports on
// a message: an SMSC delivery receipt, an intermediate notification.
const (
	esmTypeMask         = 0x3C
	esmDeliveryReceipt  = 0x04
	esmIntermediateNote = 0x20
)

// How long, and for how many messages, the carrier remembers what it sent
// to match receipts.
const (
	trackFor = 72 * time.Hour
	trackMax = 100_000
)

// The receipts the links' readers queue for the Reporter.
const (
	// reportTimeout bounds a call of the Reporter.
	reportTimeout = 5 * time.Second
	// receiptQueue is how many receipts may await the Reporter; beyond,
	// the SMSC is asked to deliver them again later. At 100 receipts a
	// second it holds ten seconds' worth: two of the slowest reports.
	receiptQueue = 1000
	// drainWait bounds how long Close goes on reporting the receipts
	// still queued, which the SMSC was told otpd had received.
	drainWait = 5 * time.Second
)

// statStates maps the stat of a receipt's text (SMPP 3.4 Appendix B) to
// the state otpd records.
var statStates = map[string]sms.DeliveryState{
	"DELIVRD": sms.Delivered,
	"UNDELIV": sms.Undelivered,
	"EXPIRED": sms.Undelivered,
	"REJECTD": sms.Undelivered,
	"DELETED": sms.Undelivered,
	"ENROUTE": sms.Pending,
	"ACCEPTD": sms.Pending,
	"UNKNOWN": sms.Pending,
}

// messageStates maps the message_state TLV (SMPP 3.4 §5.2.28) to the stat
// of the text format.
var messageStates = map[byte]string{
	1: "ENROUTE",
	2: "DELIVRD",
	3: "EXPIRED",
	4: "DELETED",
	5: "UNDELIV",
	6: "ACCEPTD",
	7: "UNKNOWN",
	8: "REJECTD",
}

// receipt is a delivery receipt as the SMSC gave it.
type receipt struct {
	id    string // the message_id of the part it reports on
	stat  string // e.g. "DELIVRD"
	err   string // the err field of the text, e.g. "000"
	state sms.DeliveryState
	at    time.Time // when it arrived
}

// code returns the receipt's status for operators, e.g. "DELIVRD" or
// "UNDELIV err:001".
func (r receipt) code() string {
	if r.err != "" && strings.Trim(r.err, "0") != "" {
		return r.stat + " err:" + r.err
	}
	return r.stat
}

// parseReceipt returns the delivery receipt that p (a deliver_sm or
// data_sm) carries, if it is one. The TLVs win over the text.
func parseReceipt(p pdu.PDU) (receipt, bool) {
	var (
		tlvs   map[pdu.Tag]pdu.Field
		isRcpt bool
		text   []byte
	)
	switch p := p.(type) {
	case *pdu.DeliverSM:
		tlvs = p.OptionalParameters
		t := p.EsmClass & esmTypeMask
		isRcpt = t == esmDeliveryReceipt || t == esmIntermediateNote
		text, _ = p.Message.GetMessageData()
	case *pdu.DataSM:
		tlvs = p.OptionalParameters
		t := p.EsmClass & esmTypeMask
		isRcpt = t == esmDeliveryReceipt || t == esmIntermediateNote
	default:
		return receipt{}, false
	}
	var r receipt
	if f, ok := tlvs[tagReceiptedMessageID]; ok {
		r.id = cleanID(strings.TrimRight(string(f.Data), "\x00"))
		isRcpt = true
	}
	if !isRcpt {
		return receipt{}, false // a mobile-originated message
	}
	id, stat, errCode := parseReceiptText(string(text))
	if r.id == "" {
		r.id = id
	}
	r.stat, r.err = stat, errCode
	if f, ok := tlvs[tagMessageState]; ok && len(f.Data) == 1 {
		if s, ok := messageStates[f.Data[0]]; ok {
			r.stat = s
		}
	}
	if r.id == "" {
		return receipt{}, false
	}
	if r.stat == "" {
		r.stat = "UNKNOWN"
	}
	r.state = statStates[r.stat]
	if r.state == "" {
		r.state = sms.Pending // a stat SMPP does not define: not final
	}
	return r, true
}

// parseReceiptText returns the id, stat and err fields of a receipt's text,
// "id:IIIIIIIIII sub:SSS dlvrd:DDD submit date:YYMMDDhhmm done
// date:YYMMDDhhmm stat:DDDDDDD err:E text:...", keys in any case. It never
// reads past "text:", which quotes the message.
func parseReceiptText(s string) (id, stat, errCode string) {
	lower := strings.ToLower(s)
	if i := strings.Index(lower, "text:"); i >= 0 {
		s, lower = s[:i], lower[:i]
	}
	field := func(key string) string {
		for from := 0; ; {
			i := strings.Index(lower[from:], key)
			if i < 0 {
				return ""
			}
			i += from
			if i == 0 || lower[i-1] == ' ' {
				v := s[i+len(key):]
				if j := strings.IndexAny(v, " \x00"); j >= 0 {
					v = v[:j]
				}
				return v
			}
			from = i + len(key)
		}
	}
	id = cleanID(field("id:"))
	stat = strings.ToUpper(field("stat:"))
	if len(stat) > 16 || !printableASCII(stat) {
		stat = ""
	}
	errCode = field("err:")
	if len(errCode) > 16 || !printableASCII(errCode) {
		errCode = ""
	}
	return id, stat, errCode
}

// deliver handles a deliver_sm or data_sm from the SMSC, on the link's
// reader, and returns the command_status to answer it with. A delivery
// receipt is queued for reportReceipts, so that a slow Reporter (a store
// that takes its time) never holds up the reading of the SMSC's answers
// and keep-alives: ESME_ROK. When the queue is full it is refused for now
// with ESME_RX_T_APPN, a temporary error of the receiver, so that the
// SMSC delivers it again later. Anything else is acknowledged and
// dropped.
func (c *Carrier) deliver(p pdu.PDU) data.CommandStatusType {
	r, ok := parseReceipt(p)
	if !ok || c.reporter == nil {
		return data.ESME_ROK
	}
	r.at = time.Now()
	select {
	case c.queue <- r:
		if n := c.refused.Swap(0); n > 0 {
			c.log.Info("delivery receipts are queued for recording again", "carrier", c.name, "refused", n)
		}
		return data.ESME_ROK
	default:
		// The first refusal of a run is news for the operator; the
		// others are counted in the line that ends the run.
		if c.refused.Add(1) == 1 {
			c.log.Warn("delivery receipts arrive faster than they are recorded: the SMSC is asked to deliver them again later (ESME_RX_T_APPN)",
				"carrier", c.name, "queued", receiptQueue)
		}
		return data.ESME_RX_T_APPN
	}
}

// reportReceipts settles the receipts the links queue and reports them, in
// the order they arrived, until the queue is closed. The receipts still
// queued at Close were acknowledged to the SMSC, which will not send them
// again: they are reported too, for at most drainWait, and the rest are
// dropped.
func (c *Carrier) reportReceipts() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop := context.AfterFunc(c.life, func() { time.AfterFunc(drainWait, cancel) })
	defer stop()
	dropped := 0
	for r := range c.queue {
		if ctx.Err() != nil {
			dropped++
			continue
		}
		c.report(ctx, r)
	}
	if dropped > 0 {
		c.log.Warn("delivery receipts were dropped at shutdown: the Reporter did not record them in time",
			"carrier", c.name, "dropped", dropped, "wait", drainWait)
	}
}

// settleLater asks the reporting goroutine to settle the tracked message
// with a part of message_id id, which its receipts so far decide (see
// tracker.accepted): a receipt with no news of its own (sms.Pending) makes
// settle report the decided state. It runs on a link's reader, as deliver
// does, so the queue is open.
func (c *Carrier) settleLater(id string) {
	select {
	case c.queue <- receipt{id: id, state: sms.Pending, at: time.Now()}:
	default:
		c.log.Warn("a delivery report was dropped: the queue of receipts is full", "carrier", c.name, "carrier_message_id", id)
	}
}

// report passes r to the Reporter, unless the tracker drops it.
func (c *Carrier) report(ctx context.Context, r receipt) {
	report, ok := c.receipts.settle(r)
	if !ok {
		return
	}
	report.Carrier = c.name
	report.At = r.at
	ctx, cancel := context.WithTimeout(ctx, reportTimeout)
	defer cancel()
	c.reporter.Report(ctx, report)
}

// tracker remembers the messages sent, to match their receipts.
type tracker struct {
	mu    sync.Mutex
	parts map[string]*tracked // by the message_id of each part
	queue []*tracked          // oldest first
}

// tracked is one message whose receipts are awaited, or were.
type tracked struct {
	msgID string
	ids   []string // of the parts, as the SMSC accepts them ("" until then, or if it gave none)
	// unaccepted counts the parts the SMSC has not accepted yet. Until it
	// has accepted every one, the message is not decided: the receipt of
	// one part says nothing of the others, the message's CarrierMessageID
	// (the first part's) may be unknown, and Send has not returned.
	unaccepted  int
	delivered   map[string]string // the code of each part's Delivered receipt, by message_id
	undelivered string            // the code of the first receipt of a part not delivered
	done        bool              // reported final, or its send failed: receipts are dropped
	at          time.Time
}

// final returns the state m's receipts so far decide, and its code: once
// the SMSC accepted every part, Undelivered if one part was not delivered,
// Delivered if every part that it gave a message_id was. ok is false while
// the message is not decided.
func (m *tracked) final() (state sms.DeliveryState, code string, ok bool) {
	switch {
	case m.unaccepted > 0:
		return "", "", false
	case m.undelivered != "":
		return sms.Undelivered, m.undelivered, true
	}
	for _, id := range m.ids {
		if id == "" {
			continue // accepted without a message_id: no receipt can name it
		}
		c, ok := m.delivered[id]
		if !ok {
			return "", "", false
		}
		code = c
	}
	return sms.Delivered, code, code != ""
}

func newTracker() *tracker {
	return &tracker{parts: map[string]*tracked{}}
}

// begin starts tracking the message msgID of n parts.
func (t *tracker) begin(msgID string, n int) *tracked {
	m := &tracked{msgID: msgID, ids: make([]string, n), unaccepted: n, delivered: map[string]string{}, at: time.Now()}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.queue = append(t.queue, m)
	for len(t.queue) > trackMax || time.Since(t.queue[0].at) > trackFor {
		t.forgetLocked(t.queue[0])
		t.queue[0] = nil
		t.queue = t.queue[1:]
	}
	return m
}

// forgetLocked stops matching m's receipts; t.mu is held.
func (t *tracker) forgetLocked(m *tracked) {
	for _, id := range m.ids {
		if t.parts[id] == m {
			delete(t.parts, id)
		}
	}
}

// accepted records that the SMSC accepted part i of m as id (or without a
// usable message_id, ""). When that makes m whole and the receipts that
// came before already decide it (the part just accepted has no message_id,
// so no receipt of it will follow), it returns the message_id of another
// part, to settle m by (see Carrier.settleLater).
func (t *tracker) accepted(m *tracked, i int, id string) (settleBy string, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	m.unaccepted--
	if id != "" {
		m.ids[i] = id
		t.parts[id] = m // even when done: its receipts are then dropped
	}
	if m.unaccepted > 0 || m.done {
		return "", false
	}
	if _, _, decided := m.final(); !decided {
		return "", false
	}
	for _, id := range m.ids {
		if id != "" {
			return id, true
		}
	}
	return "", false
}

// abandon drops m's receipts: its send failed. m may be nil.
func (t *tracker) abandon(m *tracked) {
	if m == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	m.done = true
}

// settle returns the report r makes, and false if it makes none: a receipt
// of a message the SMSC has not accepted whole, or not yet decided by the
// receipts of all its parts (see tracked.final), or already reported final
// or whose send failed. A final receipt of a part that makes no report
// still counts when a later receipt decides the message.
func (t *tracker) settle(r receipt) (sms.DeliveryReport, bool) {
	report := sms.DeliveryReport{CarrierMessageID: r.id, State: r.state, Code: r.code()}
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.parts[r.id]
	if m == nil {
		return report, true // not ours to match: as the SMSC says
	}
	if m.done {
		return report, false
	}
	switch r.state {
	case sms.Delivered:
		m.delivered[r.id] = report.Code
	case sms.Undelivered:
		if m.undelivered == "" {
			m.undelivered = report.Code
		}
	}
	if m.unaccepted > 0 {
		return report, false // not a whole message yet, not even an intermediate report
	}
	report.CarrierMessageID = m.ids[0]
	report.MessageID = m.msgID
	if state, code, ok := m.final(); ok {
		report.State, report.Code = state, code
		m.done = true // final: repeats are dropped until m is forgotten
		return report, true
	}
	return report, r.state == sms.Pending // a part's final receipt waits for the other parts
}
