package main

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/pinpoint"

	"github.com/otpd/otpd/internal/accesskeys"
)

// testClock is the OTP domain's clock in tests: real time plus an offset
// that a test can move forward, so expiry needs no sleeping.
type testClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}

// testServer is a real otpd serving real HTTP on a loopback port.
type testServer struct {
	URL     string
	DataDir string
	Clock   *testClock
	Creds   accesskeys.Pair
	srv     *server
}

// Test credentials, passed to otpd through its environment variables.
const (
	testAccessKeyID = "OTPDTESTACCESSKEY001"
	testSecretKey   = "otpd-test-secret-key-0123456789abcdefghij"
	testRegion      = "us-east-1"
)

// startServer starts otpd in-process on 127.0.0.1 with a fresh data
// directory. edit may change the configuration first. Errors it logs go to
// the test's log.
func startServer(t *testing.T, edit func(*config)) *testServer {
	t.Helper()
	return startServerLogging(t, edit, slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelError})))
}

// startServerLogging is startServer logging to log.
func startServerLogging(t *testing.T, edit func(*config), log *slog.Logger) *testServer {
	t.Helper()
	if os.Getenv("OTPD_ACCESS_KEYS_FILE") == "" {
		t.Setenv("OTPD_ACCESS_KEY_ID", testAccessKeyID)
		t.Setenv("OTPD_SECRET_ACCESS_KEY", testSecretKey)
	}
	cfg := testConfig(t.TempDir())
	if edit != nil {
		edit(&cfg)
	}
	if err := cfg.validate(); err != nil {
		t.Fatalf("test configuration: %v", err)
	}
	clock := &testClock{}
	ctx, cancel := context.WithCancel(context.Background())
	s, err := newServer(ctx, cfg, log, clock.Now)
	if err != nil {
		cancel()
		t.Fatalf("newServer: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	scheme := "http://"
	if cfg.TLSCert != "" {
		scheme = "https://"
	}
	return &testServer{URL: scheme + ln.Addr().String(), DataDir: cfg.DataDir, Clock: clock, Creds: s.accessKeys.first(), srv: s}
}

// testConfig is the configuration `otpd serve` has with no flags, on dataDir.
func testConfig(dataDir string) config {
	var cfg config
	fs := newFlagSet("serve", "")
	serveFlags(fs, &cfg)
	if err := fs.Parse([]string{"--data-dir", dataDir, "--addr", "127.0.0.1:0"}); err != nil {
		panic(err)
	}
	return cfg
}

// client returns an aws-sdk-go-v2 Pinpoint client pointed at the server.
func (ts *testServer) client(t *testing.T) *pinpoint.Client {
	t.Helper()
	return pinpointClientFor(t, ts.URL)
}

// pinpointClientFor is testServer.client for any URL: the test key pair, no
// retries, and a connection pool of its own, closed when the test ends.
func pinpointClientFor(t *testing.T, url string) *pinpoint.Client {
	t.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: 16}
	t.Cleanup(tr.CloseIdleConnections)
	return pinpoint.New(pinpoint.Options{
		Region:       testRegion,
		BaseEndpoint: aws.String(url),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: testAccessKeyID, SecretAccessKey: testSecretKey, Source: "otpd test"}, nil
		}),
		Retryer:    aws.NopRetryer{},
		HTTPClient: &http.Client{Transport: tr, Timeout: 20 * time.Second},
	})
}

// testWriter sends server logs to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

// requireTool finds an external program a test drives. In CI (CI=true) a
// missing tool fails the test; elsewhere the test is skipped, saying why.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required in CI but was not found: %v", name, err)
		}
		t.Skipf("skipping: %s is not installed (%v)", name, err)
	}
	return path
}

// wrongCode is a code of the same length that differs from code.
func wrongCode(code string) string {
	b := []byte(code)
	b[len(b)-1] = '0' + (b[len(b)-1]-'0'+1)%10
	return string(b)
}
