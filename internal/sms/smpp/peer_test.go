package smpp

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/linxGnu/gosmpp/data"
	"github.com/linxGnu/gosmpp/pdu"

	"github.com/otpd/otpd/internal/sms/smstest"
)

// The account of the test SMSC.
const (
	testSystemID = "otpd"
	testPassword = "s3cret"
)

// testSMSC is an SMSC for the tests, written with gosmpp's pdu package: it
// takes bind_transceiver, answers enquire_link and unbind, and decodes every
// submit_sm as an SMSC would, reassembling concatenated messages and
// decoding GSM 03.38 and UCS-2 back to text with gosmpp's own codecs. A
// submit_sm an SMSC would refuse as malformed fails the test. It can send
// deliver_sm (receipts, mobile-originated messages) and unbind, and can be
// steered to refuse, fail, stall, delay its answers or ignore
// enquire_link.
type testSMSC struct {
	t  *testing.T
	ln net.Listener
	wg sync.WaitGroup

	mu           sync.Mutex
	behaviour    smstest.Behaviour
	status       data.CommandStatusType         // when not 0, the answer to every submit_sm
	statusOf     map[int]data.CommandStatusType // the answer to the n-th submit_sm (from 1), when listed
	hold         map[int]chan struct{}          // the answer to the n-th submit_sm waits until its channel is closed
	delay        time.Duration                  // before answering an accepted submit_sm
	muteEnquire  bool                           // leave enquire_link unanswered
	refuseBind   data.CommandStatusType         // when not 0, the answer to every bind
	received     []smstest.Received
	submits      []*pdu.SubmitSM // every submit_sm, in order
	partial      map[concatKey]*concatMsg
	conns        map[*smscConn]bool
	last         *smscConn // the latest bound connection
	binds        int
	enquireLinks int
	unbindResps  int
	inflight     int // accepted submit_sm not yet answered
	maxInflight  int
	nextID       int
	answers      map[int32]chan pdu.PDU // answers to the SMSC's own requests, by sequence number
	nextSeq      int32
}

// concatKey identifies a concatenated message being reassembled.
type concatKey struct {
	from, to   string
	ref, total byte
}

// concatMsg is a concatenated message being reassembled.
type concatMsg struct {
	coding byte
	parts  map[byte][]byte
}

// smscConn is one connection to the test SMSC.
type smscConn struct {
	s     *testSMSC
	conn  net.Conn
	wmu   sync.Mutex
	bound bool // read and written by the connection's goroutine only
}

var _ smstest.Peer = (*testSMSC)(nil)

// startSMSC starts a test SMSC on a loopback port; it stops when the test
// ends.
func startSMSC(t *testing.T) *testSMSC {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	return serveSMSC(t, ln)
}

// startTLSSMSC starts a test SMSC that speaks TLS, with a certificate for
// 127.0.0.1 that the returned pool trusts; it stops when the test ends.
func startTLSSMSC(t *testing.T) (*testSMSC, *x509.CertPool) {
	t.Helper()
	// httptest's server has a certificate for 127.0.0.1: borrow it.
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	certs := srv.TLS.Certificates
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	return serveSMSC(t, tls.NewListener(ln, &tls.Config{Certificates: certs})), pool
}

// serveSMSC serves a test SMSC on ln until the test ends.
func serveSMSC(t *testing.T, ln net.Listener) *testSMSC {
	s := &testSMSC{
		t:       t,
		ln:      ln,
		partial: map[concatKey]*concatMsg{},
		conns:   map[*smscConn]bool{},
		answers: map[int32]chan pdu.PDU{},
		nextSeq: 1000,
	}
	s.wg.Go(s.accept)
	t.Cleanup(func() {
		ln.Close()
		s.dropAll()
		s.wg.Wait()
	})
	return s
}

// Addr returns the SMSC's host:port.
func (s *testSMSC) Addr() string { return s.ln.Addr().String() }

func (s *testSMSC) SetBehaviour(b smstest.Behaviour) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.behaviour = b
}

func (s *testSMSC) Received() []smstest.Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]smstest.Received(nil), s.received...)
}

// set runs f with the SMSC's lock held, to steer it.
func (s *testSMSC) set(f func(s *testSMSC)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

// get returns f's result with the SMSC's lock held.
func get[T any](s *testSMSC, f func(s *testSMSC) T) T {
	s.mu.Lock()
	defer s.mu.Unlock()
	return f(s)
}

// Submits returns every submit_sm the SMSC decoded, in order.
func (s *testSMSC) Submits() []*pdu.SubmitSM {
	return get(s, func(s *testSMSC) []*pdu.SubmitSM { return append([]*pdu.SubmitSM(nil), s.submits...) })
}

func (s *testSMSC) accept() {
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			return
		}
		c := &smscConn{s: s, conn: conn}
		s.mu.Lock()
		s.conns[c] = true
		s.mu.Unlock()
		s.wg.Go(c.serve)
	}
}

// holdAnswer makes the answer to the n-th submit_sm (from 1) wait until
// the returned func is called, or the test ends.
func (s *testSMSC) holdAnswer(t *testing.T, n int) (release func()) {
	held := make(chan struct{})
	release = sync.OnceFunc(func() { close(held) })
	t.Cleanup(release) // before the SMSC stops, which waits for the answer
	s.set(func(s *testSMSC) {
		if s.hold == nil {
			s.hold = map[int]chan struct{}{}
		}
		s.hold[n] = held
	})
	return release
}

// dropAll cuts every connection, as a network failure would.
func (s *testSMSC) dropAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.conn.Close()
	}
}

// write sends p to the carrier.
func (c *smscConn) write(p pdu.PDU) {
	b := pdu.NewBuffer(nil)
	p.Marshal(b)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, _ = c.conn.Write(b.Bytes())
}

// answer answers the request req with resp and status.
func (c *smscConn) answer(req, resp pdu.PDU, status data.CommandStatusType) {
	resp.SetSequenceNumber(req.GetSequenceNumber())
	setStatus(resp, status)
	c.write(resp)
}

// setStatus sets the command_status of the responses the SMSC sends.
func setStatus(p pdu.PDU, status data.CommandStatusType) {
	switch p := p.(type) {
	case *pdu.BindResp:
		p.CommandStatus = status
	case *pdu.SubmitSMResp:
		p.CommandStatus = status
	case *pdu.GenericNack:
		p.CommandStatus = status
	case *pdu.EnquireLinkResp, *pdu.UnbindResp:
	default:
		panic(fmt.Sprintf("setStatus: %T", p))
	}
}

func (c *smscConn) serve() {
	s := c.s
	defer func() {
		c.conn.Close()
		s.mu.Lock()
		delete(s.conns, c)
		if s.last == c {
			s.last = nil
		}
		s.mu.Unlock()
	}()
	r := bufio.NewReader(c.conn)
	for {
		p, err := pdu.Parse(r)
		if err != nil {
			return
		}
		switch p := p.(type) {
		case *pdu.BindRequest:
			s.mu.Lock()
			status := s.refuseBind
			switch {
			case status != 0:
			case c.bound:
				status = data.ESME_RALYBND
			case p.CommandID != data.BIND_TRANSCEIVER:
				s.t.Errorf("the carrier bound with command %v, want bind_transceiver", p.CommandID)
				status = data.ESME_RBINDFAIL
			case p.InterfaceVersion != data.SMPP_V34:
				s.t.Errorf("bind interface_version 0x%02X, want 0x34", p.InterfaceVersion)
			case p.SystemID != testSystemID:
				status = data.ESME_RINVSYSID
			case p.Password != testPassword:
				status = data.ESME_RINVPASWD
			}
			if status == 0 {
				c.bound = true
				s.binds++
				s.last = c
			}
			s.mu.Unlock()
			resp := p.GetResponse().(*pdu.BindResp)
			resp.SystemID = "testsmsc"
			c.answer(p, resp, status)
		case *pdu.EnquireLink:
			s.mu.Lock()
			s.enquireLinks++
			mute := s.muteEnquire
			s.mu.Unlock()
			if !mute {
				c.answer(p, p.GetResponse(), data.ESME_ROK)
			}
		case *pdu.Unbind:
			c.answer(p, p.GetResponse(), data.ESME_ROK)
			return
		case *pdu.SubmitSM:
			if !c.bound {
				c.answer(p, p.GetResponse(), data.ESME_RINVBNDSTS)
				continue
			}
			c.submit(p)
		case *pdu.DeliverSMResp, *pdu.UnbindResp, *pdu.EnquireLinkResp, *pdu.GenericNack:
			s.mu.Lock()
			if _, ok := p.(*pdu.UnbindResp); ok {
				s.unbindResps++
			}
			ch := s.answers[p.GetSequenceNumber()]
			delete(s.answers, p.GetSequenceNumber())
			s.mu.Unlock()
			if ch != nil {
				ch <- p
			}
		default:
			s.t.Errorf("the carrier sent an unexpected %T", p)
			if p.CanResponse() {
				c.answer(p, pdu.NewGenericNack(), data.ESME_RINVCMDID)
			}
		}
	}
}

// submit takes a submit_sm as the SMSC is steered to.
func (c *smscConn) submit(sm *pdu.SubmitSM) {
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	s.submits = append(s.submits, sm)
	status := s.status
	if st, ok := s.statusOf[len(s.submits)]; ok {
		status = st
	}
	switch {
	case status != 0:
	case s.behaviour == smstest.Stall:
		return // never answered
	case s.behaviour == smstest.RejectPermanent:
		status = data.ESME_RINVDSTADR
	case s.behaviour == smstest.FailTemporary:
		status = data.ESME_RSYSERR
	}
	if status != 0 {
		c.answer(sm, sm.GetResponse(), status)
		return
	}
	if err := s.takeLocked(sm); err != nil {
		s.t.Errorf("the SMSC would refuse a submit_sm: %v", err)
		c.answer(sm, sm.GetResponse(), data.ESME_RINVMSGLEN)
		return
	}
	s.nextID++
	resp := sm.GetResponse().(*pdu.SubmitSMResp)
	resp.MessageID = fmt.Sprintf("T%07d", s.nextID)
	if held := s.hold[len(s.submits)]; held != nil {
		s.wg.Go(func() {
			<-held
			c.write(resp)
		})
		return
	}
	if s.delay == 0 {
		c.write(resp)
		return
	}
	s.inflight++
	s.maxInflight = max(s.maxInflight, s.inflight)
	delay := s.delay
	s.wg.Go(func() {
		time.Sleep(delay)
		s.mu.Lock()
		s.inflight--
		s.mu.Unlock()
		c.write(resp)
	})
}

// takeLocked decodes sm as an SMSC would and records the message once all
// its parts arrived; s.mu is held.
func (s *testSMSC) takeLocked(sm *pdu.SubmitSM) error {
	from, err := fromAddress(sm.SourceAddr)
	if err != nil {
		return err
	}
	if sm.DestAddr.Ton() != data.GSM_TON_INTERNATIONAL || sm.DestAddr.Npi() != data.GSM_NPI_ISDN || !digits(sm.DestAddr.Address(), 1, 15) {
		return fmt.Errorf("destination TON %d NPI %d %q, want an international ISDN number", sm.DestAddr.Ton(), sm.DestAddr.Npi(), sm.DestAddr.Address())
	}
	to := "+" + sm.DestAddr.Address()
	enc := sm.Message.Encoding()
	if enc == nil {
		return errors.New("a data_coding other than 0 and 8")
	}
	coding := enc.DataCoding()
	payload, _ := sm.Message.GetMessageData()
	total, seq, ref, concat := sm.Message.UDH().GetConcatInfo()
	if concat != (sm.EsmClass&data.SM_UDH_GSM != 0) {
		return fmt.Errorf("esm_class 0x%02X with a concatenation header %v", sm.EsmClass, concat)
	}
	if err := checkPayload(coding, payload, concat); err != nil {
		return err
	}
	if !concat {
		text, err := decodeText(coding, payload)
		if err != nil {
			return err
		}
		s.received = append(s.received, smstest.Received{From: from, To: to, Text: text})
		return nil
	}
	if total < 2 || seq < 1 || seq > total {
		return fmt.Errorf("concatenation header part %d of %d", seq, total)
	}
	key := concatKey{from: from, to: to, ref: ref, total: total}
	m := s.partial[key]
	if m == nil {
		m = &concatMsg{coding: coding, parts: map[byte][]byte{}}
		s.partial[key] = m
	}
	if m.coding != coding {
		return fmt.Errorf("part %d has data_coding %d, part 1 %d", seq, coding, m.coding)
	}
	if _, dup := m.parts[seq]; dup {
		return fmt.Errorf("part %d of %d (reference %d) arrived twice", seq, total, ref)
	}
	m.parts[seq] = payload
	if len(m.parts) < int(total) {
		return nil
	}
	delete(s.partial, key)
	var whole []byte
	for i := byte(1); i <= total; i++ {
		whole = append(whole, m.parts[i]...)
	}
	text, err := decodeText(coding, whole)
	if err != nil {
		return err
	}
	s.received = append(s.received, smstest.Received{From: from, To: to, Text: text})
	return nil
}

// fromAddress returns the origination identity a source address stands
// for.
func fromAddress(a pdu.Address) (string, error) {
	switch {
	case a.Ton() == data.GSM_TON_INTERNATIONAL && a.Npi() == data.GSM_NPI_ISDN && digits(a.Address(), 1, 15):
		return "+" + a.Address(), nil
	case a.Ton() == data.GSM_TON_NATIONAL && a.Npi() == data.GSM_NPI_ISDN && digits(a.Address(), 1, 20):
		return a.Address(), nil
	case a.Ton() == data.GSM_TON_ALPHANUMERIC && a.Npi() == data.GSM_NPI_UNKNOWN && len(a.Address()) <= 11:
		return a.Address(), nil
	}
	return "", fmt.Errorf("source TON %d NPI %d %q: not an international number, a national short code or an alphanumeric sender ID",
		a.Ton(), a.Npi(), a.Address())
}

// checkPayload checks the user data of one submit_sm against the limits of
// an SMS.
func checkPayload(coding byte, payload []byte, concat bool) error {
	switch coding {
	case data.GSM7BITCoding:
		limit := 160
		if concat {
			limit = 153
		}
		if len(payload) > limit {
			return fmt.Errorf("%d septets of GSM 03.38, more than %d", len(payload), limit)
		}
		if i := bytes.IndexFunc(payload, func(r rune) bool { return r >= 0x80 }); i >= 0 {
			return fmt.Errorf("octet %d is 0x%02X, not an unpacked septet", i, payload[i])
		}
		if n := len(payload); n > 0 && payload[n-1] == 0x1B {
			return errors.New("a part ends with an escape septet: an extension character was split")
		}
	case data.UCS2Coding:
		limit := 140
		if concat {
			limit = 134
		}
		if len(payload) > limit || len(payload)%2 != 0 {
			return fmt.Errorf("%d octets of UCS-2, want an even number up to %d", len(payload), limit)
		}
		if n := len(payload); n >= 2 && payload[n-2] >= 0xD8 && payload[n-2] <= 0xDB {
			return errors.New("a part ends with a high surrogate: a character was split")
		}
	default:
		return fmt.Errorf("data_coding %d, want 0 (GSM 03.38) or 8 (UCS-2)", coding)
	}
	return nil
}

// decodeText decodes user data with gosmpp's codecs, as a handset would.
func decodeText(coding byte, b []byte) (string, error) {
	enc := data.GSM7BIT
	if coding == data.UCS2Coding {
		enc = data.UCS2
	}
	return enc.Decode(b)
}

// request sends p to the carrier on the latest bound connection and returns
// its answer, failing the test if none comes within 5 s.
func (s *testSMSC) request(t *testing.T, p pdu.PDU) pdu.PDU {
	t.Helper()
	ch := make(chan pdu.PDU, 1)
	s.mu.Lock()
	c := s.last
	s.nextSeq++
	p.SetSequenceNumber(s.nextSeq)
	s.answers[s.nextSeq] = ch
	s.mu.Unlock()
	if c == nil {
		t.Fatalf("the SMSC has no bound connection to send %T on", p)
	}
	c.write(p)
	select {
	case resp := <-ch:
		return resp
	case <-time.After(5 * time.Second):
		t.Fatalf("the carrier did not answer %T within 5 s", p)
		return nil
	}
}

// deliver sends a deliver_sm with esm_class, text as its short message and
// the TLVs tlvs, and checks that the carrier acknowledges it.
func (s *testSMSC) deliver(t *testing.T, esmClass byte, text string, tlvs ...pdu.Field) {
	t.Helper()
	if status := s.deliverStatus(t, esmClass, text, tlvs...); status != data.ESME_ROK {
		t.Fatalf("the carrier answered a deliver_sm with command_status 0x%08X, want 0", uint32(status))
	}
}

// deliverStatus sends a deliver_sm as deliver does and returns the
// command_status of the carrier's deliver_sm_resp.
func (s *testSMSC) deliverStatus(t *testing.T, esmClass byte, text string, tlvs ...pdu.Field) data.CommandStatusType {
	t.Helper()
	d := pdu.NewDeliverSM().(*pdu.DeliverSM)
	d.SourceAddr, _ = pdu.NewAddressWithTonNpiAddr(1, 1, "14255550142")
	d.DestAddr, _ = pdu.NewAddressWithTonNpiAddr(1, 1, "18555550142")
	d.EsmClass = esmClass
	if err := d.Message.SetMessageDataWithEncoding([]byte(text), data.GSM7BIT); err != nil {
		t.Fatal(err)
	}
	for _, f := range tlvs {
		d.RegisterOptionalParam(f)
	}
	resp, ok := s.request(t, d).(*pdu.DeliverSMResp)
	if !ok {
		t.Fatalf("the carrier answered a deliver_sm with %#v, want deliver_sm_resp", resp)
	}
	return resp.CommandStatus
}

// unbind sends an unbind and checks that the carrier answers it.
func (s *testSMSC) unbind(t *testing.T) {
	t.Helper()
	if _, ok := s.request(t, pdu.NewUnbind()).(*pdu.UnbindResp); !ok {
		t.Fatal("the carrier did not answer unbind with unbind_resp")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last != nil {
		s.last.conn.Close()
	}
}
