// Package faultproxy is a TCP proxy for tests that puts a server out of
// reach and brings it back, so that a test can watch how a client behaves
// while its store is down: refused connections (a server that is down) or
// accepted connections that never answer (a host that is unreachable).
package faultproxy

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// Mode is what the proxy does with connections.
type Mode int

const (
	Forward   Mode = iota // pass them to the server
	Refuse                // refuse them: nothing listens
	Blackhole             // accept them and never answer
)

func (m Mode) String() string {
	switch m {
	case Forward:
		return "forward"
	case Refuse:
		return "refuse"
	case Blackhole:
		return "blackhole"
	}
	return "Mode(?)"
}

// Proxy listens on a loopback port and forwards to a target, as its Mode
// says.
type Proxy struct {
	target string
	addr   string

	mu    sync.Mutex
	mode  Mode
	ln    net.Listener // nil while refusing
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

// Start starts a forwarding proxy to target (host:port) on 127.0.0.1; it is
// stopped when the test ends.
func Start(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("faultproxy: listen: %v", err)
	}
	p := &Proxy{target: target, addr: ln.Addr().String(), conns: map[net.Conn]bool{}}
	p.mu.Lock()
	p.serveLocked(ln)
	p.mu.Unlock()
	t.Cleanup(func() {
		p.Set(t, Refuse)
		p.wg.Wait()
	})
	return p
}

// Addr is the host:port clients connect to instead of the target's.
func (p *Proxy) Addr() string { return p.addr }

// Set switches the proxy to mode. Every connection open through it is cut,
// as a server restart or a network failure would cut it.
func (p *Proxy) Set(t testing.TB, mode Mode) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode = mode
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
	switch {
	case mode == Refuse && p.ln != nil:
		p.ln.Close()
		p.ln = nil
	case mode != Refuse && p.ln == nil:
		ln, err := net.Listen("tcp", p.addr)
		if err != nil {
			t.Fatalf("faultproxy: listen again on %s: %v", p.addr, err)
		}
		p.serveLocked(ln)
	}
}

// serveLocked accepts connections on ln until it is closed; p.mu is held.
func (p *Proxy) serveLocked(ln net.Listener) {
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

// handle forwards c to the target, or holds it silent, as the mode says.
func (p *Proxy) handle(c net.Conn) {
	p.mu.Lock()
	mode := p.mode
	p.conns[c] = true
	p.mu.Unlock()
	if mode != Forward {
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
