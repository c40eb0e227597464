package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/pinpoint"
)

// selfSignedCert writes a certificate for 127.0.0.1 and its key as PEM
// files and returns their paths and a pool that trusts the certificate.
func selfSignedCert(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	pool = writeSelfSignedCert(t, certFile, keyFile, 1, time.Now().Add(time.Hour))
	return certFile, keyFile, pool
}

// writeSelfSignedCert writes a certificate for 127.0.0.1, with serial and
// notAfter, and a new key for it, each into its file by a rename (as tools
// that renew certificates do), and returns a pool that trusts the
// certificate.
func writeSelfSignedCert(t *testing.T, certFile, keyFile string, serial int64, notAfter time.Time) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	notBefore := time.Now().Add(-time.Hour)
	if notAfter.Before(notBefore) {
		notBefore = notAfter.Add(-time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "otpd test"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	replaceFile(t, keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	replaceFile(t, certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}

// replaceFile replaces the file at path with one holding data, by a rename.
func replaceFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path+".new", data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
}

func TestServeTLS(t *testing.T) {
	certFile, keyFile, pool := selfSignedCert(t)
	ts := startServer(t, func(c *config) { c.TLSCert, c.TLSKey = certFile, keyFile })
	if !strings.HasPrefix(ts.URL, "https://") {
		t.Fatalf("URL = %s, want https", ts.URL)
	}
	c := pinpoint.New(pinpoint.Options{
		Region:       testRegion,
		BaseEndpoint: aws.String(ts.URL),
		Credentials:  credentials.NewStaticCredentialsProvider(ts.Creds.AccessKeyID, ts.Creds.SecretAccessKey, ""),
		Retryer:      aws.NopRetryer{},
		HTTPClient:   &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}},
	})
	app := createApp(t, c, "over-tls")
	// HTTP/2 is offered, as net/http does when it serves TLS.
	h2 := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
	if resp, err := h2.Get(ts.URL + "/healthz"); err != nil {
		t.Errorf("GET /healthz over HTTP/2: %v", err)
	} else if resp.Body.Close(); resp.Proto != "HTTP/2.0" {
		t.Errorf("a client that offers HTTP/2 got %s", resp.Proto)
	}
	if _, err := c.GetApp(context.Background(), &pinpoint.GetAppInput{ApplicationId: aws.String(app)}); err != nil {
		t.Fatalf("GetApp over TLS: %v", err)
	}
	// Plain HTTP to the TLS port gets net/http's 400, never a served page.
	if resp, err := http.Get("http://" + strings.TrimPrefix(ts.URL, "https://") + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("the TLS listener answered plain HTTP")
		}
	}
}

func TestAppsCreateWhileServing(t *testing.T) {
	ts := startServer(t, nil)
	bin := buildOtpd(t)
	const id = "5e1f0c2a9b8d47e6a3c2b1d0e9f8a7b6"
	out, err := exec.Command(bin, "apps", "create", "--name", "Migrated", "--id", id, "--data-dir", ts.DataDir).Output()
	if err != nil {
		t.Fatalf("otpd apps create: %v", err)
	}
	var created applicationResponse
	if err := json.Unmarshal(out, &created); err != nil {
		t.Fatalf("otpd apps create printed %s: %v", out, err)
	}
	checkApp(t, "otpd apps create", created, "Migrated")
	if created.Id != id {
		t.Fatalf("otpd apps create made %s, want the ID given, %s", created.Id, id)
	}
	// The running server sees it at once, and can send with it.
	c := ts.client(t)
	got, err := c.GetApp(context.Background(), &pinpoint.GetAppInput{ApplicationId: aws.String(id)})
	if err != nil {
		t.Fatalf("GetApp of an application created by the CLI: %v", err)
	}
	if aws.ToString(got.ApplicationResponse.Name) != "Migrated" {
		t.Errorf("Name = %q, want Migrated", aws.ToString(got.ApplicationResponse.Name))
	}
	send(t, c, id, sendParams("migrated"))
	if !verify(t, c, id, testDestination, "migrated", ts.lastCode(t, testDestination)) {
		t.Error("a code sent with a migrated application ID did not verify")
	}

	for _, tc := range []struct{ args, want string }{
		{"--name Again --id " + id, "already exists"},
		{"--name Bad --id ABCDEF", "32 lowercase hexadecimal"},
		{"--id " + id, "--name is required"},
	} {
		cmd := exec.Command(bin, append([]string{"apps", "create", "--data-dir", ts.DataDir}, strings.Fields(tc.args)...)...)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), tc.want) {
			t.Errorf("otpd apps create %s: err %v, output %q; want a failure mentioning %q", tc.args, err, out, tc.want)
		}
	}
	list, err := exec.Command(bin, "apps", "list", "--data-dir", ts.DataDir).Output()
	if err != nil || !strings.Contains(string(list), id) {
		t.Errorf("otpd apps list: %v, %s; want it to list %s", err, list, id)
	}
}

// TestShutdownFinishesRequestsInFlight starts a request, begins the
// shutdown while the request's body is still arriving, and checks that the
// request is answered in full.
func TestShutdownFinishesRequestsInFlight(t *testing.T) {
	cfg := testConfig(t.TempDir())
	ss := startServing(t, cfg, slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})))

	body := []byte(`{"Name":"in-flight"}`)
	req, _ := http.NewRequest(http.MethodPost, "http://"+ss.addr+"/v1/apps", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(t.Context(), aws.Credentials{AccessKeyID: testAccessKeyID, SecretAccessKey: testSecretKey},
		req, hex.EncodeToString(sum[:]), "mobiletargeting", testRegion, time.Now()); err != nil {
		t.Fatal(err)
	}
	var wire bytes.Buffer
	if err := req.Write(&wire); err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", ss.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	raw := wire.Bytes()
	cut := len(raw) - len(body)/2
	conn.Write(raw[:cut])
	ss.waitInFlight(t, 1) // the handler is reading the body
	ss.stop()             // SIGTERM's effect: begin the graceful shutdown
	time.Sleep(100 * time.Millisecond)
	conn.Write(raw[cut:])
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		t.Fatalf("the request in flight was not answered: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Errorf("the request in flight got %d, want 201", resp.StatusCode)
	}
	if err := ss.wait(t); err != nil {
		t.Errorf("serve returned %v, want nil after a graceful shutdown", err)
	}
}

// serving is otpd serving on a loopback port until stop, as runServe
// serves until a signal.
type serving struct {
	addr string
	srv  *server
	stop context.CancelFunc
	done chan error
}

// startServing serves cfg with log, with the test's access key pair.
func startServing(t *testing.T, cfg config, log *slog.Logger) *serving {
	t.Helper()
	t.Setenv("OTPD_ACCESS_KEY_ID", testAccessKeyID)
	t.Setenv("OTPD_SECRET_ACCESS_KEY", testSecretKey)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s, err := newServer(ctx, cfg, log, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ss := &serving{addr: ln.Addr().String(), srv: s, stop: cancel, done: make(chan error, 1)}
	go func() { ss.done <- s.serve(ctx, ln) }()
	return ss
}

// waitInFlight waits until the server handles n requests.
func (ss *serving) waitInFlight(t *testing.T, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); len(ss.srv.inFlight.Requests()) != n; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the server handles %d requests, want %d", len(ss.srv.inFlight.Requests()), n)
		}
	}
}

// wait returns serve's error once it has returned after stop.
func (ss *serving) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-ss.done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not return after the shutdown")
		return nil
	}
}

// TestShutdownNamesAbandonedRequests: a request still running when the
// shutdown timeout ends is abandoned, and the log says which.
func TestShutdownNamesAbandonedRequests(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.ShutdownTimeout = 200 * time.Millisecond
	var logs lockedBuffer
	ss := startServing(t, cfg, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn})))
	conn, err := net.Dial("tcp", ss.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// A body that never ends keeps the request in flight.
	io.WriteString(conn, "POST /v1/apps HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
	ss.waitInFlight(t, 1)
	ss.stop()
	if err := ss.wait(t); err != nil {
		t.Errorf("serve returned %v, want nil", err)
	}
	out := logs.tail(1 << 20)
	for _, want := range []string{"are abandoned; a message they sent may not verify\" timeout=200ms requests=1", `msg="abandoned request" request_id=`, "operation=CreateApp"} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %q:\n%s", want, out)
		}
	}
}

func TestSIGTERMStopsCleanly(t *testing.T) {
	p := startOtpdProcess(t, freeLoopbackAddr(t), t.TempDir())
	p.signal(t, syscall.SIGTERM)
	if p.err != nil {
		t.Errorf("otpd serve exited with %v after SIGTERM, want status 0", p.err)
	}
	if out := p.output.tail(4096); !strings.Contains(out, "shutting down") {
		t.Errorf("no shutdown log line in:\n%s", out)
	}
}

// A second signal ends otpd at once, as the first signal's would, and the
// log names the requests it abandons, as after the shutdown timeout.
func TestSecondSignalNamesAbandonedRequests(t *testing.T) {
	addr := freeLoopbackAddr(t)
	p := startOtpdProcess(t, addr, t.TempDir())
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// The server answers 100 Continue when the handler reads the body:
	// the request is then in flight, and stays so, its body never sent.
	io.WriteString(conn, "POST /v1/apps HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 100\r\n\r\n")
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || !strings.Contains(line, "100 Continue") {
		t.Fatalf("read %q, %v; want 100 Continue", line, err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(p.output.tail(1<<20), "shutting down"); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no shutdown log line after SIGTERM:\n%s", p.output.tail(4096))
		}
	}
	p.signal(t, syscall.SIGTERM) // the second
	var exit *exec.ExitError
	if !errors.As(p.err, &exit) || !exit.Sys().(syscall.WaitStatus).Signaled() || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGTERM {
		t.Errorf("otpd serve exited with %v after a second SIGTERM, want to be ended by the signal", p.err)
	}
	out := p.output.tail(1 << 20)
	for _, want := range []string{`msg="a second signal ends otpd at once: requests still in flight are abandoned; a message they sent may not verify" signal=terminated requests=1`,
		`msg="abandoned request" request_id=`, "operation=CreateApp"} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %q:\n%s", want, out)
		}
	}
}

func TestProfilesOnlyWhereAsked(t *testing.T) {
	pprofAddr := freeLoopbackAddr(t)
	ts := startServer(t, func(c *config) { c.PprofAddr = pprofAddr })
	waitForPort(t, pprofAddr) // serve starts it, in its own goroutine here
	if got := getStatus(t, "http://"+pprofAddr+"/debug/pprof/heap?debug=1"); got != http.StatusOK {
		t.Errorf("heap profile on --pprof-addr: %d, want 200", got)
	}
	if got := getStatus(t, ts.URL+"/debug/pprof/heap"); got != http.StatusNotFound {
		t.Errorf("the API listener serves profiles: %d, want 404", got)
	}
	plain := startServer(t, nil)
	if got := getStatus(t, plain.URL+"/debug/pprof/"); got != http.StatusNotFound {
		t.Errorf("profiles without --pprof-addr: %d, want 404", got)
	}
}

// The JSON log writes durations as Go does ("30s"), not as nanoseconds.
func TestJSONLogDurations(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.LogFormat = "json"
	var out bytes.Buffer
	cfg.loggerTo(&out).Info("shutting down", "timeout", 30*time.Second)
	if !strings.Contains(out.String(), `"timeout":"30s"`) {
		t.Errorf("log %s: want the duration as \"30s\"", out.String())
	}
}

// TestFatalErrorsInJSONLogs: under --log-format json, the error that stops
// otpd is a JSON record like every other line it writes, whether it comes
// before the server starts (a bad flag value, an address it cannot listen
// on) or not; under text logs it stays one plain line.
func TestFatalErrorsInJSONLogs(t *testing.T) {
	bin := buildOtpd(t)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"invalid configuration", []string{"--send-timeout", "-1s"}, "--send-timeout -1s"},
		{"cannot listen", []string{"--addr", "127.0.0.1:99999"}, "invalid port"},
		{"a flag that does not parse", []string{"--send-timeout", "10x"}, `invalid value "10x" for flag -send-timeout`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"serve", "--log-format", "json", "--data-dir", t.TempDir()}, tc.args...)
			cmd := exec.Command(bin, args...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
				t.Fatalf("otpd %s: %v, want exit status 2", strings.Join(args, " "), err)
			}
			var last map[string]any
			for line := range strings.Lines(stderr.String()) {
				last = nil
				if err := json.Unmarshal([]byte(line), &last); err != nil {
					t.Errorf("a line otpd wrote is not JSON: %q", line)
				}
			}
			if last["level"] != "ERROR" || last["msg"] != "otpd stopped on an error" || !strings.Contains(fmt.Sprint(last["err"]), tc.want) {
				t.Errorf("the last record is %v; want an ERROR, otpd stopped on an error, whose err says %q", last, tc.want)
			}

			text := exec.Command(bin, append([]string{"serve", "--data-dir", t.TempDir()}, tc.args...)...)
			out, _ := text.CombinedOutput()
			if !strings.Contains(string(out), "otpd: ") || !strings.Contains(string(out), tc.want) {
				t.Errorf("under text logs otpd wrote %q; want a plain line otpd: … saying %q", out, tc.want)
			}
		})
	}
}

// TestTLSHandshakeFailuresAreLogged: net/http's text about a failed TLS
// handshake becomes a record with the client's address and the cause; a
// client that only connects and leaves (a load balancer's TCP check) is
// logged at debug level, one that refuses otpd's certificate as a warning.
func TestTLSHandshakeFailuresAreLogged(t *testing.T) {
	certFile, keyFile, _ := selfSignedCert(t)
	var out lockedBuffer
	log := slog.New(slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ts := startServerLogging(t, func(c *config) { c.TLSCert, c.TLSKey = certFile, keyFile }, log)
	addr := strings.TrimPrefix(ts.URL, "https://")

	leaving, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	leaving.Close()
	distrusting, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := tls.Client(distrusting, &tls.Config{ServerName: "127.0.0.1"}).Handshake(); err == nil {
		t.Fatal("a client without otpd's certificate in its pool completed the handshake")
	}
	distrusting.Close()

	want := map[string]string{ // by remote_addr: the level
		leaving.LocalAddr().String():     "DEBUG",
		distrusting.LocalAddr().String(): "WARN",
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := map[string]string{}
		for line := range strings.Lines(out.tail(1 << 20)) {
			var r struct {
				Level, Msg, Err string
				RemoteAddr      string `json:"remote_addr"`
			}
			if json.Unmarshal([]byte(line), &r) == nil && r.Msg == "TLS handshake failed" {
				got[r.RemoteAddr] = r.Level
				if r.RemoteAddr == distrusting.LocalAddr().String() && !strings.Contains(r.Err, "remote error") {
					t.Errorf("the refused certificate's record says err %q, want the client's alert (remote error …)", r.Err)
				}
			}
		}
		if len(got) == len(want) && got[leaving.LocalAddr().String()] == "DEBUG" && got[distrusting.LocalAddr().String()] == "WARN" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("TLS handshake records by client address and level: %v; want %v\nlog:\n%s", got, want, out.tail(4000))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// With --metrics-addr, /metrics moves to its own listener, with /healthz
// and /readyz; the API keeps its probes but no longer serves /metrics.
func TestMetricsOnTheirOwnAddress(t *testing.T) {
	metricsAddr := freeLoopbackAddr(t)
	ts := startServer(t, func(c *config) { c.MetricsAddr = metricsAddr })
	waitForPort(t, metricsAddr)
	ops := &testServer{URL: "http://" + metricsAddr}
	for url, want := range map[string]int{
		ops.URL + "/metrics": http.StatusOK, ops.URL + "/healthz": http.StatusOK, ops.URL + "/readyz": http.StatusOK,
		ops.URL + "/v1/apps": http.StatusNotFound,
		ts.URL + "/metrics":  http.StatusNotFound, ts.URL + "/healthz": http.StatusOK, ts.URL + "/readyz": http.StatusOK,
	} {
		if got := getStatus(t, url); got != want {
			t.Errorf("GET %s: %d, want %d", url, got, want)
		}
	}
	// The API's requests are counted in the metrics served elsewhere.
	c := ts.client(t)
	send(t, c, createApp(t, c, "elsewhere"), sendParams("m"))
	if v := ops.metricValue(t, `otpd_otp_sends_total{delivery_status="SUCCESSFUL"}`); v != 1 {
		t.Errorf("sends SUCCESSFUL on --metrics-addr = %v, want 1", v)
	}
}
