package postgres

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/otpd/otpd/internal/storage"
)

// proxyMode is what a proxy does with connections.
type proxyMode int

const (
	forward   proxyMode = iota // pass them to the server
	refuse                     // refuse them: nothing listens (a server that is down)
	blackhole                  // accept them and never answer (a host that is unreachable)
)

func (m proxyMode) String() string {
	return [...]string{"forward", "refuse", "blackhole"}[m]
}

// proxy is a TCP proxy on 127.0.0.1 in front of the test server, which a
// test can take down and bring back while Stores are connected through it.
type proxy struct {
	target string // host:port of the server
	addr   string // host:port the proxy listens on

	mu    sync.Mutex
	mode  proxyMode
	ln    net.Listener // nil while refusing
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

// startProxy starts a forwarding proxy to target, stopped when t ends.
func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy: listen: %v", err)
	}
	p := &proxy{target: target, addr: ln.Addr().String(), conns: map[net.Conn]bool{}}
	p.serve(ln)
	t.Cleanup(func() {
		p.set(t, refuse)
		p.wg.Wait()
	})
	return p
}

// set switches the proxy to mode. Every connection open through it is cut,
// as a server restart or a network failure would cut it.
func (p *proxy) set(t *testing.T, mode proxyMode) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode = mode
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
	switch {
	case mode == refuse && p.ln != nil:
		p.ln.Close()
		p.ln = nil
	case mode != refuse && p.ln == nil:
		ln, err := net.Listen("tcp", p.addr)
		if err != nil {
			t.Fatalf("proxy: listen again on %s: %v", p.addr, err)
		}
		p.serveLocked(ln)
	}
}

func (p *proxy) serve(ln net.Listener) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.serveLocked(ln)
}

// serveLocked accepts connections on ln until it is closed; p.mu is held.
func (p *proxy) serveLocked(ln net.Listener) {
	p.ln = ln
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.handle(c)
		}
	})
}

// handle forwards c to the server, or holds it silent, as the mode says.
func (p *proxy) handle(c net.Conn) {
	p.mu.Lock()
	mode := p.mode
	p.conns[c] = true
	p.mu.Unlock()
	if mode != forward {
		return // blackhole: held open, unanswered, until the mode changes
	}
	p.wg.Go(func() {
		s, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			c.Close()
			return
		}
		p.mu.Lock()
		if !p.conns[c] { // cut while dialling
			p.mu.Unlock()
			s.Close()
			return
		}
		p.conns[s] = true
		p.mu.Unlock()
		var pipes sync.WaitGroup
		pipe := func(dst, src net.Conn) {
			io.Copy(dst, src)
			dst.Close()
			src.Close()
		}
		pipes.Go(func() { pipe(s, c) })
		pipes.Go(func() { pipe(c, s) })
		pipes.Wait()
	})
}

// serverAddr returns host:port of the test server, or skips t if it is
// reached through a Unix socket.
func serverAddr(t *testing.T, u string) string {
	t.Helper()
	cfg, err := pgx.ParseConfig(u)
	if err != nil {
		t.Fatalf("parse the test URL: %v", err)
	}
	if len(cfg.Host) > 0 && cfg.Host[0] == '/' {
		t.Skipf("the test server is reached through a Unix socket (%s): no TCP proxy", cfg.Host)
	}
	return net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))
}

// viaProxy returns u with its host and port replaced by the proxy's.
func viaProxy(t *testing.T, u string, p *proxy) string {
	t.Helper()
	host, port, _ := net.SplitHostPort(p.addr)
	return withHost(t, u, host, port)
}

// outageBound is how long a call may take while the database is away: well
// above DefaultConnectTimeout, well below "hanging".
const outageBound = 15 * time.Second

// TestOutageFailsFastAndRecovers runs a Store through a proxy that is taken
// down (connections refused, or accepted and never answered) and brought
// back: while it is down, calls fail with an error of their own well before
// the caller's deadline; once it is back, the same Store works again.
func TestOutageFailsFastAndRecovers(t *testing.T) {
	u := freshDatabase(t)
	p := startProxy(t, serverAddr(t, u))
	s := openStore(t, viaProxy(t, u, p))

	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	app := storage.App{ID: "0123456789abcdef0123456789abcdef", Name: "outage", Generation: "g"}
	if err := s.CreateApp(t.Context(), app); err != nil {
		t.Fatalf("CreateApp: %v", err)
	}
	code := func(ref string) storage.Code {
		return storage.Code{
			Key:           storage.CodeKey{AppID: app.ID, Destination: "+15550000001", ReferenceID: ref},
			AppGeneration: app.Generation, MAC: []byte("mac"), AllowedAttempts: 3,
			CreatedAt: now, ExpiresAt: now.Add(time.Hour),
		}
	}
	verification := func(c storage.Code) storage.Verification {
		return storage.Verification{Key: c.Key, AppGeneration: c.AppGeneration, Now: now,
			Budget: storage.FailureBudget{Limit: 10, Window: time.Hour}, Matches: func(mac []byte) bool { return string(mac) == "mac" }}
	}
	down := code("during-outage")
	if err := s.PutCode(t.Context(), down); err != nil {
		t.Fatalf("PutCode: %v", err)
	}

	for _, mode := range []proxyMode{refuse, blackhole} {
		t.Run(mode.String(), func(t *testing.T) {
			p.set(t, mode)
			calls := map[string]func(ctx context.Context) error{
				"GetApp": func(ctx context.Context) error {
					_, err := s.GetApp(ctx, app.ID)
					return err
				},
				"VerifyCode": func(ctx context.Context) error {
					outcome, err := s.VerifyCode(ctx, verification(down))
					if err == nil {
						t.Errorf("VerifyCode while the database is away = %q, want an error", outcome)
					}
					return err
				},
				"Ping": func(ctx context.Context) error { return s.Ping(ctx) },
				"Open": func(ctx context.Context) error {
					s2, err := Open(ctx, viaProxy(t, u, p))
					if err == nil {
						s2.Close()
					}
					return err
				},
			}
			var wg sync.WaitGroup
			for name, call := range calls {
				wg.Go(func() {
					ctx, cancel := context.WithTimeout(t.Context(), outageBound)
					defer cancel()
					begun := time.Now()
					err := call(ctx)
					took := time.Since(begun)
					switch {
					case err == nil:
						t.Errorf("%s while the database is away succeeded, want an error", name)
					case ctx.Err() != nil:
						t.Errorf("%s while the database is away ended only at the caller's deadline (%v): %v", name, took, err)
					case errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrAlreadyExists):
						t.Errorf("%s while the database is away: %v, want an error that is not a negative answer", name, err)
					default:
						t.Logf("%s failed after %v: %v", name, took.Round(time.Millisecond), err)
					}
				})
			}
			wg.Wait()

			p.set(t, forward)
			waitForPing(t, s)
			if _, err := s.GetApp(t.Context(), app.ID); err != nil {
				t.Errorf("GetApp once the database is back: %v", err)
			}
			c := code("after-" + mode.String())
			if err := s.PutCode(t.Context(), c); err != nil {
				t.Fatalf("PutCode once the database is back: %v", err)
			}
			if got, err := s.VerifyCode(t.Context(), verification(c)); err != nil || got != storage.OutcomeValid {
				t.Errorf("VerifyCode once the database is back = %q, %v; want %q", got, err, storage.OutcomeValid)
			}
		})
	}
	// The verification attempted during the outages changed nothing.
	if got, err := s.VerifyCode(t.Context(), verification(down)); err != nil || got != storage.OutcomeValid {
		t.Errorf("VerifyCode of the code tried during the outages = %q, %v; want %q", got, err, storage.OutcomeValid)
	}
}

// waitForPing waits until s answers again, for at most outageBound.
func waitForPing(t *testing.T, s *Store) {
	t.Helper()
	deadline := time.Now().Add(outageBound)
	for {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		err := s.Ping(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the Store does not answer %v after the database came back: %v", outageBound, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// withHost returns the URL u with its host and port replaced.
func withHost(t *testing.T, u, host, port string) string {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatalf("parse the test URL: %v", err)
	}
	p.Host = net.JoinHostPort(host, port)
	return p.String()
}
