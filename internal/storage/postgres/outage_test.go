package postgres

import (
	"context"
	"errors"
	"net"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/otpd/otpd/internal/faultproxy"
	"github.com/otpd/otpd/internal/storage"
)

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
func viaProxy(t *testing.T, u string, p *faultproxy.Proxy) string {
	t.Helper()
	host, port, _ := net.SplitHostPort(p.Addr())
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
	p := faultproxy.Start(t, serverAddr(t, u))
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
	if err := s.RecordSend(t.Context(), storage.SendRecord{Code: &down}); err != nil {
		t.Fatalf("RecordSend: %v", err)
	}

	for _, mode := range []faultproxy.Mode{faultproxy.Refuse, faultproxy.Blackhole} {
		t.Run(mode.String(), func(t *testing.T) {
			p.Set(t, mode)
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

			p.Set(t, faultproxy.Forward)
			waitForPing(t, s)
			if _, err := s.GetApp(t.Context(), app.ID); err != nil {
				t.Errorf("GetApp once the database is back: %v", err)
			}
			c := code("after-" + mode.String())
			if err := s.RecordSend(t.Context(), storage.SendRecord{Code: &c}); err != nil {
				t.Fatalf("RecordSend once the database is back: %v", err)
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
