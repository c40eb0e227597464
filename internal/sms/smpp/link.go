package smpp

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/linxGnu/gosmpp/data"
	"github.com/linxGnu/gosmpp/pdu"

	"github.com/otpd/otpd/internal/sms"
)

var (
	// errClosed is why there is no link after Close.
	errClosed = errors.New("the SMPP carrier was closed")
	// errNoAnswer resolves a request whose answer did not come in time.
	errNoAnswer = errors.New("no answer from the SMSC within the submit timeout")
	// errUnbound is why a link the SMSC unbound ended.
	errUnbound = errors.New("the SMSC unbound the session")
)

// bindRefused is the SMSC's refusal of bind_transceiver.
type bindRefused struct {
	systemID string
	status   data.CommandStatusType
}

// credentials reports whether the SMSC refused the account itself: a
// configuration error that no retry mends.
func (e *bindRefused) credentials() bool {
	return e.status == data.ESME_RINVSYSID || e.status == data.ESME_RINVPASWD
}

func (e *bindRefused) Error() string {
	return fmt.Sprintf("the SMSC refused bind_transceiver as system_id %q: %s", e.systemID, describeStatus(e.status))
}

// linkFailure is why a link ended.
type linkFailure struct{ cause error }

func (e *linkFailure) Error() string { return "the SMPP link is down: " + e.cause.Error() }
func (e *linkFailure) Unwrap() error { return e.cause }

// frame is one PDU as read from the wire.
type frame struct {
	id     data.CommandIDType
	status data.CommandStatusType
	seq    int32
	p      pdu.PDU // the decoded PDU; nil when gosmpp does not know or cannot decode it
}

// isResponse reports whether f answers a request (generic_nack included).
func (f frame) isResponse() bool {
	return uint32(f.id)&0x80000000 != 0
}

// readFrame reads one PDU from r. It fails only when the stream cannot go
// on: a read error or an impossible command_length. A PDU it cannot decode
// is returned with its header and a nil p, the stream still in step.
func readFrame(r io.Reader) (frame, error) {
	var h [data.PDU_HEADER_SIZE]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return frame{}, err
	}
	header := pdu.ParseHeader(h)
	if header.CommandLength < data.PDU_HEADER_SIZE || header.CommandLength > data.MAX_PDU_LEN {
		return frame{}, fmt.Errorf("invalid command_length %d in a PDU from the SMSC", header.CommandLength)
	}
	raw := make([]byte, header.CommandLength)
	copy(raw, h[:])
	if _, err := io.ReadFull(r, raw[len(h):]); err != nil {
		return frame{}, err
	}
	f := frame{id: header.CommandID, status: header.CommandStatus, seq: header.SequenceNumber}
	if p, err := pdu.CreatePDUFromCmdID(header.CommandID); err == nil && p.Unmarshal(pdu.NewBuffer(raw)) == nil {
		f.p = p
	}
	return f, nil
}

// marshal returns the bytes of p on the wire.
func marshal(p pdu.PDU) []byte {
	b := pdu.NewBuffer(make([]byte, 0, 256))
	p.Marshal(b)
	return b.Bytes()
}

// call is a request awaiting its answer.
type call struct {
	done     chan struct{} // closed once resolved
	timer    *time.Timer   // resolves the call with errNoAnswer; set under link.mu
	release  func()        // frees the call's place in the window, if any
	accepted func(messageID string)
	// sent is set once the whole request is written to the connection.
	// request returns after the write, so for the caller, who reads the
	// outcome, it is final: a call that failed unsent never reached the
	// SMSC whole.
	sent atomic.Bool

	// Set before done is closed.
	id        data.CommandIDType // of the answer
	status    data.CommandStatusType
	messageID string
	err       error // errNoAnswer or a *linkFailure, when no answer came
}

// finish resolves cl with the answer f, or err.
func (cl *call) finish(f frame, err error) {
	cl.id, cl.status, cl.err = f.id, f.status, err
	if resp, ok := f.p.(*pdu.SubmitSMResp); ok {
		cl.messageID = cleanID(resp.MessageID)
	}
	if err == nil && f.id == data.SUBMIT_SM_RESP && f.status == data.ESME_ROK && cl.accepted != nil {
		cl.accepted(cl.messageID)
	}
	if cl.release != nil {
		cl.release()
	}
	close(cl.done)
}

// outcome returns nil if the SMSC accepted the submit_sm of part i of n,
// else the refusal to report; others says whether another part of the
// message reached the SMSC, so that the handset may show it although this
// one was refused. Only the caller of request may ask, once request has
// returned and cl is resolved: then cl.sent is final.
func (cl *call) outcome(i, n int, timeout time.Duration, others bool) error {
	switch {
	case errors.Is(cl.err, errNoAnswer):
		// A write that outlasted the timeout may still have gone out.
		return noAnswer(cl.err, i, n, fmt.Sprintf(" within %v", timeout))
	case cl.err != nil && !cl.sent.Load():
		return notSubmitted(cl.err, i-1, n) // the parts before it were accepted
	case errors.Is(cl.err, errClosed):
		return sms.Refuse(&sms.Error{MayDeliver: true, Status: sms.Temporary, Code: 503,
			Message: "the SMPP carrier was shut down before the SMSC answered" + ofParts(i, n) + "; the SMSC may still deliver the message"}, cl.err)
	case cl.err != nil:
		return sms.Refuse(&sms.Error{MayDeliver: true, Status: sms.Temporary, Code: 503,
			Message: "the connection to the SMSC broke before it answered" + ofParts(i, n) + "; the SMSC may still deliver the message"}, cl.err)
	case cl.id == data.GENERIC_NACK && cl.status == data.ESME_ROK:
		return statusRefusal(data.ESME_RUNKNOWNERR, i, n, others)
	case cl.status != data.ESME_ROK:
		return statusRefusal(cl.status, i, n, others)
	}
	return nil
}

// reached reports whether cl's submit_sm reached the SMSC, which may then
// deliver it: the SMSC accepted it, or no answer came (yet, in time, or
// before the link broke) to a request written whole. A refusal, or a
// request that was never written whole, delivers nothing. Only the caller
// of request may ask, once request has returned.
func (cl *call) reached() bool {
	select {
	case <-cl.done:
	default:
		return cl.sent.Load() // not answered yet
	}
	switch {
	case errors.Is(cl.err, errNoAnswer):
		return true // a write that outlasted the timeout may still have gone out
	case cl.err != nil:
		return cl.sent.Load()
	}
	return cl.id == data.SUBMIT_SM_RESP && cl.status == data.ESME_ROK
}

// cleanID returns a message_id as the SMSC gave it, if it is printable
// ASCII of a sane length, else "".
func cleanID(id string) string {
	if len(id) > 64 || !printableASCII(id) {
		return ""
	}
	return strings.TrimSpace(id)
}

// link is one bound SMPP session.
type link struct {
	conn    net.Conn
	r       *bufio.Reader
	timeout time.Duration // of writes
	// onDeliver takes a deliver_sm or data_sm from the SMSC and returns
	// the command_status to answer it with.
	onDeliver func(pdu.PDU) data.CommandStatusType
	wg        sync.WaitGroup

	wmu sync.Mutex // one PDU written at a time

	mu      sync.Mutex
	seq     int32
	pending map[int32]*call // by sequence_number
	err     *linkFailure    // why the link ended; nil while it is up
	closed  chan struct{}   // closed when the link ends
	probe   chan struct{}   // asks the keep-alive for an enquire_link now
}

// newLink returns the link of a bound connection and starts its reader and
// keep-alive; the bind took sequence number 1.
func newLink(conn net.Conn, r *bufio.Reader, enquireLink, timeout time.Duration, onDeliver func(pdu.PDU) data.CommandStatusType) *link {
	l := &link{
		conn:      conn,
		r:         r,
		timeout:   timeout,
		onDeliver: onDeliver,
		seq:       1,
		pending:   map[int32]*call{},
		closed:    make(chan struct{}),
		probe:     make(chan struct{}, 1),
	}
	l.wg.Go(l.read)
	l.wg.Go(func() { l.keepAlive(enquireLink, timeout) })
	return l
}

// failure returns why the link ended, or nil.
func (l *link) failure() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err == nil {
		return nil
	}
	return l.err
}

// fail ends the link for cause: the connection is closed and every
// request awaiting an answer fails. Only the first call counts.
func (l *link) fail(cause error) {
	l.mu.Lock()
	if l.err != nil {
		l.mu.Unlock()
		return
	}
	l.err = &linkFailure{cause: cause}
	pending := l.pending
	l.pending = nil
	l.mu.Unlock()
	close(l.closed)
	_ = l.conn.Close()
	for _, cl := range pending {
		cl.timer.Stop()
		cl.finish(frame{}, l.err)
	}
}

// request sends p with the next sequence number and returns the call its
// answer resolves, or errNoAnswer after timeout. release and accepted, if
// not nil, are the call's (see call).
func (l *link) request(p pdu.PDU, timeout time.Duration, release func(), accepted func(string)) (*call, error) {
	cl := &call{done: make(chan struct{}), release: release, accepted: accepted}
	l.mu.Lock()
	if l.err != nil {
		err := l.err
		l.mu.Unlock()
		return nil, err
	}
	if l.seq == math.MaxInt32 { // the largest sequence_number: start again
		l.seq = 1
	}
	l.seq++
	seq := l.seq
	p.SetSequenceNumber(seq)
	l.pending[seq] = cl
	cl.timer = time.AfterFunc(timeout, func() {
		if l.settle(seq, frame{}, errNoAnswer) {
			l.probeNow() // a missing answer may be a dead link: check it now
		}
	})
	l.mu.Unlock()
	if err := l.write(p, cl); err != nil {
		l.fail(fmt.Errorf("writing to the SMSC: %w", err))
	}
	return cl, nil
}

// settle resolves the call of sequence number seq with f or err, and
// reports whether there was one.
func (l *link) settle(seq int32, f frame, err error) bool {
	l.mu.Lock()
	cl := l.pending[seq]
	if cl != nil {
		delete(l.pending, seq)
		cl.timer.Stop()
	}
	l.mu.Unlock()
	if cl == nil {
		return false // late (timed out), or not ours
	}
	cl.finish(f, err)
	return true
}

// write writes p, within the write timeout, and marks cl (if any) sent once
// all of p is written.
func (l *link) write(p pdu.PDU, cl *call) error {
	b := marshal(p)
	l.wmu.Lock()
	defer l.wmu.Unlock()
	_ = l.conn.SetWriteDeadline(time.Now().Add(l.timeout))
	_, err := l.conn.Write(b)
	if err == nil && cl != nil {
		cl.sent.Store(true)
	}
	return err
}

// reply answers the request of sequence number seq with p and status.
func (l *link) reply(p pdu.PDU, seq int32, status data.CommandStatusType) {
	p.SetSequenceNumber(seq)
	switch p := p.(type) {
	case *pdu.GenericNack:
		p.CommandStatus = status
	case *pdu.DeliverSMResp:
		p.CommandStatus = status
	case *pdu.DataSMResp:
		p.CommandStatus = status
	}
	if err := l.write(p, nil); err != nil {
		l.fail(fmt.Errorf("writing to the SMSC: %w", err))
	}
}

// probeNow asks the keep-alive for an enquire_link at once.
func (l *link) probeNow() {
	select {
	case l.probe <- struct{}{}:
	default:
	}
}

// read reads and handles the SMSC's PDUs until the link ends.
func (l *link) read() {
	for {
		f, err := readFrame(l.r)
		if err != nil {
			l.fail(fmt.Errorf("reading from the SMSC: %w", err))
			return
		}
		l.handle(f)
	}
}

// handle acts on one PDU from the SMSC.
func (l *link) handle(f frame) {
	switch {
	case f.isResponse():
		l.settle(f.seq, f, nil)
		if f.status == data.ESME_RINVBNDSTS {
			l.fail(errors.New("the SMSC answered ESME_RINVBNDSTS: it does not take otpd for bound"))
		}
	case f.id == data.ENQUIRE_LINK:
		l.reply(pdu.NewEnquireLinkResp(), f.seq, data.ESME_ROK)
	case f.id == data.UNBIND:
		l.reply(pdu.NewUnbindResp(), f.seq, data.ESME_ROK)
		l.fail(errUnbound)
	case f.id == data.DELIVER_SM:
		l.reply(pdu.NewDeliverSMResp(), f.seq, l.delivered(f))
	case f.id == data.DATA_SM:
		l.reply(pdu.NewDataSMResp(), f.seq, l.delivered(f))
	case f.id == data.ALERT_NOTIFICATION:
		// No answer is due, and otpd has no use for it.
	default:
		l.reply(pdu.NewGenericNack(), f.seq, data.ESME_RINVCMDID)
	}
}

// delivered hands the deliver_sm or data_sm f to onDeliver and returns the
// status to answer it with. One that cannot be decoded is acknowledged:
// sending it again would not make it better.
func (l *link) delivered(f frame) data.CommandStatusType {
	if f.p == nil {
		return data.ESME_ROK
	}
	return l.onDeliver(f.p)
}

// keepAlive sends an enquire_link every interval (or when asked through
// probe) and ends the link when one is not answered within timeout.
func (l *link) keepAlive(every, timeout time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-l.closed:
			return
		case <-t.C:
		case <-l.probe:
		}
		cl, err := l.request(pdu.NewEnquireLink(), timeout, nil, nil)
		if err != nil {
			return
		}
		select {
		case <-cl.done:
		case <-l.closed:
			return
		}
		if errors.Is(cl.err, errNoAnswer) {
			l.fail(fmt.Errorf("the SMSC did not answer enquire_link within %v", timeout))
			return
		}
	}
}

// unbind ends the link politely: an unbind, and its answer awaited for at
// most wait.
func (l *link) unbind(wait time.Duration) {
	if cl, err := l.request(pdu.NewUnbind(), wait, nil, nil); err == nil {
		select {
		case <-cl.done:
		case <-l.closed:
		}
	}
	l.fail(errClosed)
	l.wg.Wait()
}

// bind connects to the SMSC and binds as a transceiver, within ctx and the
// submit timeout.
func (c *Carrier) bind(ctx context.Context) (*link, error) {
	ctx, cancel := context.WithTimeout(ctx, c.submitTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return nil, fmt.Errorf("connect to the SMSC at %s: %w", c.addr, err)
	}
	raw := conn
	if deadline, ok := ctx.Deadline(); ok {
		_ = raw.SetDeadline(deadline)
	}
	stop := context.AfterFunc(ctx, func() { _ = raw.SetDeadline(time.Unix(1, 0)) }) // cancelled: unblock
	bound := false
	defer func() {
		stop()
		if !bound {
			_ = raw.Close()
		}
	}()
	if c.tls != nil {
		tc := tls.Client(conn, c.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, fmt.Errorf("TLS handshake with the SMSC at %s: %w", c.addr, err)
		}
		conn = tc
	}
	req := pdu.NewBindRequest(pdu.Transceiver)
	req.SystemID = c.systemID
	req.Password = c.password
	req.SystemType = c.systemType
	req.InterfaceVersion = data.SMPP_V34
	req.SetSequenceNumber(1)
	if _, err := conn.Write(marshal(req)); err != nil {
		return nil, fmt.Errorf("send bind_transceiver to the SMSC at %s: %w", c.addr, err)
	}
	r := bufio.NewReader(conn)
	var resp frame
	for {
		f, err := readFrame(r)
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("the SMSC at %s did not answer bind_transceiver in time: %w", c.addr, ctx.Err())
			}
			return nil, fmt.Errorf("read the answer to bind_transceiver from the SMSC at %s: %w", c.addr, err)
		}
		if f.seq == 1 && (f.id == data.BIND_TRANSCEIVER_RESP || f.id == data.GENERIC_NACK) {
			resp = f
			break
		}
		// Nothing else is due before the answer: ignored.
	}
	switch {
	case resp.status != data.ESME_ROK:
		return nil, &bindRefused{systemID: c.systemID, status: resp.status}
	case resp.id == data.GENERIC_NACK:
		return nil, &bindRefused{systemID: c.systemID, status: data.ESME_RUNKNOWNERR}
	}
	if !stop() {
		return nil, fmt.Errorf("binding to the SMSC at %s: %w", c.addr, ctx.Err())
	}
	_ = raw.SetDeadline(time.Time{})
	bound = true
	return newLink(conn, r, c.enquireLink, c.submitTimeout, c.deliver), nil
}
