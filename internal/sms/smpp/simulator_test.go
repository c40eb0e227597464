//go:build unix

package smpp

import (
	"bufio"
	"io"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linxGnu/gosmpp/data"
	"github.com/linxGnu/gosmpp/pdu"

	"github.com/otpd/otpd/internal/faultproxy"
	"github.com/otpd/otpd/internal/gsm7"
	"github.com/otpd/otpd/internal/sms"
	"github.com/otpd/otpd/internal/sms/smscsim"
)

// The simulator's behaviour is described in package smscsim.
const (
	simulatorSystemID = "otpd"
	simulatorPassword = "secret"
)

// TestSimulator runs the carrier against gosmpp's SMSC simulator.
func TestSimulator(t *testing.T) {
	smsc := smscsim.Start(t)
	tap := startTap(t, smsc)
	proxy := faultproxy.Start(t, tap.addr)
	rec := newRecorder()
	c := startCarrier(t, proxy.Addr(), func(cfg *Config) {
		cfg.SystemID, cfg.Password = simulatorSystemID, simulatorPassword
		cfg.SubmitTimeout = 5 * time.Second
		cfg.Reporter = rec
	})
	hexID := regexp.MustCompile(`^[0-9a-f]{64}$`)
	sent := map[string]string{} // CarrierMessageID → otpd's message ID, of the accepted messages

	// sendEcho sends text and checks what the simulator parsed of it, as
	// it echoes it back: the data_coding, and the user data of every part.
	sendEcho := func(t *testing.T, text string, wantCoding byte) {
		t.Helper()
		m := message(text)
		r, err := send(t, c, m)
		if err != nil {
			t.Fatalf("Send: %v", err)
		}
		if !hexID.MatchString(r.CarrierMessageID) {
			t.Errorf("CarrierMessageID = %q, want the simulator's 64 hex digits", r.CarrierMessageID)
		}
		sent[r.CarrierMessageID] = m.ID
		enc, parts := gsm7.Segments(text)
		var whole []byte
		var ref byte
		for i := range parts {
			mo := tap.nextMO(t)
			coding := mo.Message.Encoding().DataCoding()
			ud, _ := mo.Message.GetMessageData()
			if coding != wantCoding {
				t.Errorf("part %d: the simulator took data_coding %d, want %d (%v)", i+1, coding, wantCoding, enc)
			}
			if parts > 1 {
				if len(ud) < 6 || ud[0] != 5 || ud[1] != 0 || ud[2] != 3 || int(ud[4]) != parts || int(ud[5]) != i+1 || (i > 0 && ud[3] != ref) {
					t.Fatalf("part %d: the user data starts % X, want a concatenation header 05 00 03 ref %02X %02X", i+1, ud[:min(6, len(ud))], parts, i+1)
				}
				ref = ud[3]
				ud = ud[6:]
			}
			whole = append(whole, ud...)
		}
		codec := data.GSM7BIT
		if wantCoding == data.UCS2Coding {
			codec = data.UCS2
		}
		got, err := codec.Decode(whole)
		if err != nil || got != text {
			t.Errorf("the simulator's echo decodes to %q (%v), want %q", got, err, text)
		}
	}

	t.Run("GSM", func(t *testing.T) {
		sendEcho(t, "This is your One Time Password: 482913 from ExampleCorp {€}", data.GSM7BITCoding)
	})
	t.Run("UCS2", func(t *testing.T) {
		sendEcho(t, "さくら銀行のワンタイムパスワードは 730415 です", data.UCS2Coding)
	})
	t.Run("Concatenated", func(t *testing.T) {
		sendEcho(t, longGSMText, data.GSM7BITCoding)
		sendEcho(t, strings.Repeat("Esta é a sua senha de uso único: 314159 de Açaí 🚀 ", 4), data.UCS2Coding)
	})
	t.Run("Refusals", func(t *testing.T) {
		for _, tc := range []struct {
			to   string
			want sms.Status
			name string
		}{
			{"+1234567", sms.Permanent, "ESME_RINVDSTADR"},
			{"+333", sms.Temporary, "ESME_RSUBMITFAIL"},
		} {
			m := message(otp("123456"))
			m.To = tc.to
			_, err := send(t, c, m)
			ce := refusalOf(t, err, tc.want, m.Text)
			if !strings.Contains(ce.Message, tc.name) {
				t.Errorf("To %s: Message %q does not name %s", tc.to, ce.Message, tc.name)
			}
		}
	})
	t.Run("DeliveryReceipts", func(t *testing.T) {
		// One Delivered report per message, a concatenated one included,
		// once the simulator had a quiet second and its 3 to 12 s.
		deadline := time.After(25 * time.Second)
		for len(sent) > 0 {
			select {
			case rep := <-rec.ch:
				id, ok := sent[rep.CarrierMessageID]
				if !ok || rep.MessageID != id || rep.State != sms.Delivered || rep.Code != "DELIVRD" || rep.Carrier != "smpp-test" {
					t.Errorf("got report %+v; want DELIVERED DELIVRD for one of %v", rep, sent)
					continue
				}
				delete(sent, rep.CarrierMessageID)
			case <-deadline:
				t.Fatalf("no delivery receipt for %v within 25 s", sent)
			}
		}
		rec.none(t, 100*time.Millisecond)
	})
	t.Run("Rebind", func(t *testing.T) {
		proxy.Set(t, faultproxy.Refuse)
		eventually(t, 2*time.Second, "the carrier did not notice the cut", func() bool {
			_, err := c.current()
			return err != nil
		})
		m := message(otp("123456"))
		start := time.Now()
		_, err := send(t, c, m)
		refusalOf(t, err, sms.Temporary, m.Text)
		if elapsed := time.Since(start); elapsed > 100*time.Millisecond {
			t.Errorf("Send while the link is down took %v, want it to fail at once", elapsed)
		}
		proxy.Set(t, faultproxy.Forward)
		eventually(t, 10*time.Second, "Send does not succeed once the SMSC is back", func() bool {
			_, err := send(t, c, message(otp("123456")))
			return err == nil
		})
	})
	t.Run("EnquireLink", func(t *testing.T) {
		before := tap.count(data.ENQUIRE_LINK_RESP)
		c2 := startCarrier(t, tap.addr, func(cfg *Config) {
			cfg.SystemID, cfg.Password = "otpd-el", simulatorPassword
			cfg.EnquireLink = 100 * time.Millisecond
			cfg.SubmitTimeout = time.Second
		})
		l, _ := c2.current()
		time.Sleep(600 * time.Millisecond)
		if got := tap.count(data.ENQUIRE_LINK_RESP) - before; got < 3 {
			t.Errorf("the simulator answered %d enquire_link in 600 ms, want at least 3 (one per 100 ms)", got)
		}
		if now, err := c2.current(); now != l || err != nil {
			t.Errorf("the link changed while the simulator answered every enquire_link (%v)", err)
		}
		c2.Close()
	})
	t.Run("BindRefused", func(t *testing.T) {
		_, err := New(t.Context(), Config{Addr: smsc, SystemID: "invalid", Password: simulatorPassword})
		if err == nil || !strings.Contains(err.Error(), "ESME_RINVSYSID") {
			t.Errorf("New as system_id \"invalid\": got error %v, want one naming ESME_RINVSYSID", err)
		}
	})
}

// tap is a TCP proxy in front of the simulator that decodes what the
// simulator sends, passing every byte on unchanged.
type tap struct {
	addr   string
	mos    chan *pdu.DeliverSM // mobile-originated deliver_sm, in order
	mu     sync.Mutex
	counts map[data.CommandIDType]int
}

// startTap starts a tap in front of target; it stops when the test ends.
func startTap(t *testing.T, target string) *tap {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tp := &tap{addr: ln.Addr().String(), mos: make(chan *pdu.DeliverSM, 256), counts: map[data.CommandIDType]int{}}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", target)
			if err != nil {
				client.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, client, server)
			mu.Unlock()
			wg.Go(func() {
				_, _ = io.Copy(server, client)
				server.Close()
				client.Close()
			})
			wg.Go(func() {
				pr, pw := io.Pipe()
				wg.Go(func() { tp.decode(pr) })
				_, _ = io.Copy(client, io.TeeReader(server, pw))
				pw.Close()
				server.Close()
				client.Close()
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return tp
}

// decode reads the simulator's PDUs from r until it ends.
func (tp *tap) decode(r io.Reader) {
	defer io.Copy(io.Discard, r) // never stall the copy
	br := bufio.NewReader(r)
	for {
		f, err := readFrame(br)
		if err != nil {
			return
		}
		tp.mu.Lock()
		tp.counts[f.id]++
		tp.mu.Unlock()
		if d, ok := f.p.(*pdu.DeliverSM); ok && d.EsmClass&esmTypeMask == 0 {
			select {
			case tp.mos <- d:
			default:
			}
		}
	}
}

// count returns how many PDUs of command id the simulator sent.
func (tp *tap) count(id data.CommandIDType) int {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return tp.counts[id]
}

// nextMO returns the next mobile-originated deliver_sm of the simulator.
func (tp *tap) nextMO(t *testing.T) *pdu.DeliverSM {
	t.Helper()
	select {
	case d := <-tp.mos:
		return d
	case <-time.After(5 * time.Second):
		t.Fatal("the simulator echoed no message within 5 s")
		return nil
	}
}
