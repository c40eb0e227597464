package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/pinpoint"
	"github.com/jackc/pgx/v5"

	"github.com/otpd/otpd/internal/accesskeys"
	"github.com/otpd/otpd/internal/faultproxy"
	"github.com/otpd/otpd/internal/storage/redis/redistest"
)

// The shared stores the multi-instance tests use, overridable like the
// storage packages' tests.
func postgresTestURL() string {
	return env("OTPD_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
}

// testHMACKey is the code hashing key every instance of a test shares.
const testHMACKey = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

// requireService checks that a store's server answers on addr. In CI it
// must; elsewhere the test is skipped, saying so.
func requireService(t *testing.T, name, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s at %s is required in CI: %v", name, addr, err)
		}
		t.Skipf("skipping: %s does not answer at %s (%v)", name, addr, err)
	}
	c.Close()
}

// freshPostgres returns a store URL on a new, empty schema of the test
// server, dropped when the test ends.
func freshPostgres(t *testing.T) string {
	t.Helper()
	base := postgresTestURL()
	cfg, err := pgx.ParseConfig(base)
	if err != nil {
		t.Fatal(err)
	}
	requireService(t, "PostgreSQL", net.JoinHostPort(cfg.Host, fmt.Sprint(cfg.Port)))
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect to %s: %v", base, err)
	}
	defer conn.Close(ctx)
	schema := fmt.Sprintf("otpd_cmd_test_%d_%d", os.Getpid(), time.Now().UnixNano())
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), base)
		if err == nil {
			c.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
			c.Close(context.Background())
		}
	})
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "search_path=" + schema
}

// freshRedis starts a Redis server of the test's own, persisting nothing,
// and returns its store URL: the tests never touch a database of the
// developer's Redis.
func freshRedis(t *testing.T) string {
	t.Helper()
	return "redis://" + redistest.Start(t, "--appendonly", "no", "--save", "") + "/0"
}

// sharedEnv is the environment every instance on store gets.
func sharedEnv(store string) []string {
	return []string{"OTPD_STORE=" + store, "OTPD_HMAC_KEY=" + testHMACKey}
}

// instance is one otpd process of a test, with clients for it.
type instance struct {
	*otpdProcess
	api *testServer // for signed raw requests: outbox, metrics
}

func startInstances(t *testing.T, n int, store string) []instance {
	t.Helper()
	var out []instance
	for range n {
		addr := freeLoopbackAddr(t)
		p := startOtpdProcess(t, addr, t.TempDir(), sharedEnv(store)...)
		out = append(out, instance{otpdProcess: p, api: &testServer{
			URL:   "http://" + addr,
			Creds: accesskeys.Pair{AccessKeyID: testAccessKeyID, SecretAccessKey: testSecretKey},
		}})
	}
	return out
}

func TestThreeInstancesOnPostgres(t *testing.T) { testThreeInstances(t, freshPostgres(t)) }

func TestThreeInstancesOnRedis(t *testing.T) { testThreeInstances(t, freshRedis(t)) }

// testThreeInstances runs three otpd processes on one store and checks that
// they behave as one.
func testThreeInstances(t *testing.T, store string) {
	nodes := startInstances(t, 3, store)
	a, b, c := nodes[0], nodes[1], nodes[2]
	ca, cb, cc := a.api.client(t), b.api.client(t), c.api.client(t)
	app := createApp(t, ca, "shared")

	t.Run("send on one, verify on another", func(t *testing.T) {
		send(t, ca, app, sendParams("cross"))
		code := b.api.lastCode(t, testDestination) // the outbox is shared too
		if !verify(t, cb, app, testDestination, "cross", code) {
			t.Fatal("a code sent through A did not verify through B")
		}
		if verify(t, cc, app, testDestination, "cross", code) {
			t.Fatal("a code verified on B verified again on C")
		}
	})

	t.Run("wrong guesses over all three count AllowedAttempts", func(t *testing.T) {
		send(t, cb, app, sendParams("guess"))
		code := c.api.lastCode(t, testDestination)
		wrong := func() float64 {
			sum := 0.0
			for _, n := range nodes {
				sum += n.api.metricValue(t, `otpd_otp_verifications_total{outcome="wrong"}`)
			}
			return sum
		}
		before := wrong()
		var wg sync.WaitGroup
		clients := []*pinpoint.Client{ca, cb, cc}
		for i := range 30 {
			wg.Go(func() {
				if verify(t, clients[i%3], app, testDestination, "guess", wrongCode(code)) {
					t.Error("a wrong code verified")
				}
			})
		}
		wg.Wait()
		if got := wrong() - before; got != 3 {
			t.Errorf("wrong guesses counted over three instances = %v, want exactly 3 (AllowedAttempts)", got)
		}
		if verify(t, ca, app, testDestination, "guess", code) {
			t.Error("the right code verified after its attempts were used up on other instances")
		}
	})

	t.Run("the store's calls in the metrics", func(t *testing.T) {
		scrape := b.api.metrics(t) // B verified the first code
		if n := scrape[`otpd_store_call_duration_seconds_count{method="VerifyCode"}`]; n < 1 {
			t.Errorf("VerifyCode calls timed on B: %v, want at least 1", n)
		}
		if n, ok := scrape[`otpd_store_call_failures_total{method="VerifyCode"}`]; !ok || n != 0 {
			t.Errorf("VerifyCode failures on B: %v (shown: %v), want 0", n, ok)
		}
		_, pool := scrape["otpd_store_connections_max"]
		if postgres := strings.HasPrefix(store, "postgres"); pool != postgres {
			t.Errorf("otpd_store_connections_max shown: %v, want %v (the pool of a PostgreSQL store)", pool, postgres)
		}
		if pool && scrape["otpd_store_connections_opened_total"] < 1 {
			t.Errorf("connections opened: %v, want at least 1", scrape["otpd_store_connections_opened_total"])
		}
	})

	t.Run("a deleted application is gone everywhere", func(t *testing.T) {
		doomed := createApp(t, cc, "doomed")
		send(t, cc, doomed, sendParams("doomed"))
		if _, err := ca.DeleteApp(context.Background(), &pinpoint.DeleteAppInput{ApplicationId: aws.String(doomed)}); err != nil {
			t.Fatal(err)
		}
		_, err := cb.GetApp(context.Background(), &pinpoint.GetAppInput{ApplicationId: aws.String(doomed)})
		wantAPIError(t, err, "NotFoundException")
	})

	t.Run("one instance killed under load", func(t *testing.T) {
		var (
			mu    sync.Mutex
			acked []sentCode
			sent  atomic.Int64
		)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := range 6 {
			node := nodes[w%3]
			cl := node.api.client(t)
			wg.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					ref := fmt.Sprintf("load-%d-%d", w, i)
					sc, err := sendCode(cl, app, testDestination, ref, 3)
					if err != nil {
						if node.otpdProcess == a.otpdProcess {
							continue // the killed instance: refused after the kill, or cut off
						}
						t.Errorf("send through a surviving instance: %v", err)
						return
					}
					sent.Add(1)
					mu.Lock()
					acked = append(acked, sc)
					mu.Unlock()
				}
			})
		}
		waitForSends := func(n int64) {
			deadline := time.Now().Add(30 * time.Second)
			for sent.Load() < n {
				if time.Now().After(deadline) {
					close(stop)
					wg.Wait()
					t.Fatalf("only %d sends acknowledged within 30s, want %d", sent.Load(), n)
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
		waitForSends(30)
		a.kill()
		killedAt := sent.Load()
		waitForSends(killedAt + 30)
		close(stop)
		wg.Wait()
		// Every acknowledged send has its code, verifiable on a survivor.
		entries := b.api.outbox(t, testDestination)
		codes := map[string]string{}
		for _, e := range entries {
			codes[e.MessageID] = codeInBody.FindString(e.Body)
		}
		for i, sc := range acked {
			code, ok := codes[sc.MessageID]
			if !ok {
				t.Fatalf("acknowledged message %s is not in the outbox", sc.MessageID)
			}
			cl := []*instance{&b, &c}[i%2].api.client(t)
			if !verify(t, cl, app, sc.Destination, sc.ReferenceID, code) {
				t.Errorf("acknowledged code %s/%s did not verify on a surviving instance", sc.Destination, sc.ReferenceID)
			}
		}
		t.Logf("%d sends acknowledged across the kill, all verified", len(acked))
	})
}

// TestStoreOutage stops the store under a running instance: requests fail
// with 5xx, readiness says so while liveness holds, and when the store is
// back the same process serves again.
func TestStoreOutage(t *testing.T) {
	t.Run("Redis restarted", func(t *testing.T) {
		redisServer := requireTool(t, "redis-server")
		port := strings.Split(freeLoopbackAddr(t), ":")[1]
		dir := t.TempDir()
		start := func() *exec.Cmd {
			cmd := exec.Command(redisServer, "--bind", "127.0.0.1", "--port", port, "--dir", dir,
				"--appendonly", "yes", "--appendfsync", "always", "--save", "")
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
			waitForPort(t, "127.0.0.1:"+port)
			return cmd
		}
		srv := start()
		testOutage(t, "redis://127.0.0.1:"+port+"/0", func() { srv.Process.Kill(); srv.Wait() }, func() { srv = start() })
	})
	t.Run("PostgreSQL unreachable", func(t *testing.T) {
		store := freshPostgres(t)
		cfg, _ := pgx.ParseConfig(store)
		proxy := faultproxy.Start(t, net.JoinHostPort(cfg.Host, fmt.Sprint(cfg.Port)))
		proxied := strings.Replace(store, fmt.Sprintf("%s:%d", cfg.Host, cfg.Port), proxy.Addr(), 1)
		testOutage(t, proxied, func() { proxy.Set(t, faultproxy.Refuse) }, func() { proxy.Set(t, faultproxy.Forward) })
	})
}

func testOutage(t *testing.T, store string, stopStore, startStore func()) {
	nodes := startInstances(t, 1, store)
	n := nodes[0]
	c := n.api.client(t)
	app := createApp(t, c, "outage")
	send(t, c, app, sendParams("before"))
	code := n.api.lastCode(t, testDestination)

	stopStore()
	began := time.Now()
	resp, body := n.api.do(t, http.MethodPost, "/v1/apps/"+app+"/verify-otp",
		[]byte(`{"DestinationIdentity":"`+testDestination+`","ReferenceId":"before","Otp":"`+code+`"}`), nil)
	elapsed := time.Since(began)
	if resp.StatusCode < 500 {
		t.Fatalf("verify with the store down: %d %s, want a 5xx (and never Valid: true)", resp.StatusCode, body)
	}
	wantErrorResponse(t, resp, body, resp.StatusCode, "InternalServerErrorException", "")
	t.Logf("verify with the store down answered %d after %v", resp.StatusCode, elapsed)
	if elapsed > 20*time.Second {
		t.Errorf("verify with the store down took %v; it must fail fast", elapsed)
	}
	if got := getStatus(t, n.api.URL+"/readyz"); got != http.StatusServiceUnavailable {
		t.Errorf("/readyz with the store down = %d, want 503", got)
	}
	if got := getStatus(t, n.api.URL+"/healthz"); got != http.StatusOK {
		t.Errorf("/healthz with the store down = %d, want 200: the process still serves", got)
	}

	startStore()
	deadline := time.Now().Add(30 * time.Second)
	for getStatus(t, n.api.URL+"/readyz") != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("/readyz did not recover within 30s of the store coming back")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !verify(t, c, app, testDestination, "before", code) {
		t.Error("the code sent before the outage did not verify after it")
	}
}

func getStatus(t *testing.T, url string) int {
	t.Helper()
	hc := &http.Client{Timeout: 20 * time.Second}
	resp, err := hc.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func waitForPort(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
