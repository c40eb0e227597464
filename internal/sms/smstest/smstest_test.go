package smstest

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/otpd/otpd/internal/gsm7"
	"github.com/otpd/otpd/internal/sms"
)

// direct is the simplest carrier there is: it hands each message to an
// in-process peer, split into parts the way an SMPP carrier would, and
// keeps every rule of the suite. It checks the suite itself.
type direct struct{ peer *partsPeer }

func (c *direct) Name() string { return "direct" }

func (c *direct) Send(ctx context.Context, m sms.Message) (sms.Receipt, error) {
	enc, _ := gsm7.Segments(m.Text)
	return c.peer.submit(ctx, m.From, m.To, gsm7.Split(m.Text, enc))
}

// partsPeer reassembles the parts of each message and answers as told.
type partsPeer struct {
	mu        sync.Mutex
	behaviour Behaviour
	received  []Received
	done      chan struct{} // closed when the test ends: releases stalled submissions
}

func (p *partsPeer) SetBehaviour(b Behaviour) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.behaviour = b
}

func (p *partsPeer) Received() []Received {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Received(nil), p.received...)
}

func (p *partsPeer) submit(ctx context.Context, from, to string, parts []string) (sms.Receipt, error) {
	p.mu.Lock()
	b := p.behaviour
	p.mu.Unlock()
	switch b {
	case RejectPermanent:
		return sms.Receipt{}, &sms.Error{Status: sms.Permanent, Code: 400, Message: "invalid destination number"}
	case FailTemporary:
		return sms.Receipt{}, &sms.Error{Status: sms.Temporary, Code: 503, Message: "service unavailable"}
	case Stall:
		select {
		case <-ctx.Done():
			return sms.Receipt{}, ctx.Err()
		case <-p.done:
			return sms.Receipt{}, context.Canceled
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.received = append(p.received, Received{From: from, To: to, Text: strings.Join(parts, "")})
	return sms.Receipt{CarrierMessageID: "direct-1"}, nil
}

func TestRunPassesACarrierThatKeepsTheRules(t *testing.T) {
	Run(t, func(t *testing.T) (sms.Carrier, Peer) {
		p := &partsPeer{done: make(chan struct{})}
		t.Cleanup(func() { close(p.done) })
		return &direct{peer: p}, p
	})
}

// TestFixtures checks that the suite's texts are what its rules say.
func TestFixtures(t *testing.T) {
	for _, tc := range []struct {
		name          string
		text          string
		chars         int
		enc           gsm7.Encoding
		segments      int
		secondPartHas string // what must open the second part
	}{
		{"longGSM", longGSM, 400, gsm7.GSM7, 3, "€"},
		{"longUCS2", longUCS2, 200, gsm7.UCS2, 4, "🚀"},
	} {
		if got := utf8.RuneCountInString(tc.text); got != tc.chars {
			t.Errorf("%s has %d characters, want %d", tc.name, got, tc.chars)
		}
		enc, n := gsm7.Segments(tc.text)
		if enc != tc.enc || n != tc.segments {
			t.Errorf("gsm7.Segments(%s) = %v, %d; want %v, %d", tc.name, enc, n, tc.enc, tc.segments)
		}
		if parts := gsm7.Split(tc.text, enc); len(parts) < 2 || !strings.HasPrefix(parts[1], tc.secondPartHas) {
			t.Errorf("the second part of %s does not start with %q: parts %q", tc.name, tc.secondPartHas, parts)
		}
	}
	for _, tc := range nonASCII {
		if enc := gsm7.EncodingOf(tc.text); enc != gsm7.UCS2 {
			t.Errorf("gsm7.EncodingOf(%q) = %v, want %v", tc.text, enc, gsm7.UCS2)
		}
		if !strings.Contains(tc.text, tc.code) {
			t.Errorf("%q does not contain its code %s", tc.text, tc.code)
		}
	}
	if enc := gsm7.EncodingOf(otpText("123456")); enc != gsm7.GSM7 {
		t.Errorf("gsm7.EncodingOf(otpText) = %v, want %v", enc, gsm7.GSM7)
	}
}

func TestBehaviourString(t *testing.T) {
	for b, want := range map[Behaviour]string{
		Accept: "Accept", RejectPermanent: "RejectPermanent", FailTemporary: "FailTemporary",
		Stall: "Stall", Behaviour(9): "Behaviour(9)",
	} {
		if got := b.String(); got != want {
			t.Errorf("Behaviour(%d).String() = %q, want %q", int(b), got, want)
		}
	}
}

// mutants are carriers that each break one rule, with the subtests that
// must catch them.
var mutants = map[string]struct {
	carrier func(p *partsPeer) sms.Carrier
	catch   []string
}{
	"echoes-text": {
		func(p *partsPeer) sms.Carrier {
			return mutant{p, func(ctx context.Context, m sms.Message) (sms.Receipt, error) {
				r, err := (&direct{p}).Send(ctx, m)
				if ce, ok := err.(*sms.Error); ok {
					ce.Message += ": " + m.Text
				}
				return r, err
			}}
		},
		[]string{"PermanentRefusal", "TemporaryFailure"},
	},
	"permanent-as-temporary": {
		func(p *partsPeer) sms.Carrier {
			return mutant{p, func(ctx context.Context, m sms.Message) (sms.Receipt, error) {
				r, err := (&direct{p}).Send(ctx, m)
				if ce, ok := err.(*sms.Error); ok {
					ce.Status = sms.Temporary
				}
				return r, err
			}}
		},
		[]string{"PermanentRefusal"},
	},
	"ignores-ctx": {
		func(p *partsPeer) sms.Carrier {
			return mutant{p, func(ctx context.Context, m sms.Message) (sms.Receipt, error) {
				return (&direct{p}).Send(context.WithoutCancel(ctx), m)
			}}
		},
		[]string{"Stall", "RecoversAfterStall"},
	},
	"timeout-as-permanent": {
		func(p *partsPeer) sms.Carrier {
			return mutant{p, func(ctx context.Context, m sms.Message) (sms.Receipt, error) {
				r, err := (&direct{p}).Send(ctx, m)
				if err != nil && ctx.Err() != nil {
					err = &sms.Error{Status: sms.Permanent, Message: "no answer"}
				}
				return r, err
			}}
		},
		[]string{"Stall"},
	},
	"drops-astral": {
		func(p *partsPeer) sms.Carrier {
			return mutant{p, func(ctx context.Context, m sms.Message) (sms.Receipt, error) {
				m.Text = strings.Map(func(r rune) rune {
					if r > 0xFFFF {
						return '?'
					}
					return r
				}, m.Text)
				return (&direct{p}).Send(ctx, m)
			}}
		},
		[]string{"NonASCIIText", "LongText"},
	},
	"first-part-only": {
		func(p *partsPeer) sms.Carrier {
			return mutant{p, func(ctx context.Context, m sms.Message) (sms.Receipt, error) {
				enc, _ := gsm7.Segments(m.Text)
				return p.submit(ctx, m.From, m.To, gsm7.Split(m.Text, enc)[:1])
			}}
		},
		[]string{"LongText"},
	},
	"sends-twice": {
		func(p *partsPeer) sms.Carrier {
			return mutant{p, func(ctx context.Context, m sms.Message) (sms.Receipt, error) {
				_, _ = (&direct{p}).Send(ctx, m)
				return (&direct{p}).Send(ctx, m)
			}}
		},
		[]string{"Accepted", "ConcurrentSends", "OriginationIdentities"},
	},
	"loses-sender": {
		func(p *partsPeer) sms.Carrier {
			return mutant{p, func(ctx context.Context, m sms.Message) (sms.Receipt, error) {
				if !strings.HasPrefix(m.From, "+") {
					m.From = "+" + m.From
				}
				return (&direct{p}).Send(ctx, m)
			}}
		},
		[]string{"OriginationIdentities"},
	},
}

// mutant is a direct carrier whose Send is replaced.
type mutant struct {
	peer *partsPeer
	send func(ctx context.Context, m sms.Message) (sms.Receipt, error)
}

func (c mutant) Name() string { return "mutant" }

func (c mutant) Send(ctx context.Context, m sms.Message) (sms.Receipt, error) { return c.send(ctx, m) }

// TestMutant runs the suite on the mutant named by $SMSTEST_MUTANT, in the
// process TestSuiteCatchesMutants starts.
func TestMutant(t *testing.T) {
	name := os.Getenv("SMSTEST_MUTANT")
	if name == "" {
		t.Skip("runs only from TestSuiteCatchesMutants")
	}
	Run(t, func(t *testing.T) (sms.Carrier, Peer) {
		p := &partsPeer{done: make(chan struct{})}
		t.Cleanup(func() { close(p.done) })
		return mutants[name].carrier(p), p
	})
}

// TestSuiteCatchesMutants checks that each rule fails a carrier that breaks
// it.
func TestSuiteCatchesMutants(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a test process per mutant")
	}
	for name, m := range mutants {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0], "-test.run=^TestMutant$", "-test.v")
			cmd.Env = append(os.Environ(), "SMSTEST_MUTANT="+name)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed the mutant %q; want it to fail %v\n%s", name, m.catch, out)
			}
			for _, rule := range m.catch {
				if !strings.Contains(string(out), "--- FAIL: TestMutant/"+rule+" ") {
					t.Errorf("the suite did not fail the mutant %q in %s\n%s", name, rule, out)
				}
			}
		})
	}
}
