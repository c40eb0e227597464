//go:build unix

package main

import (
	"bufio"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/pinpoint/types"

	"github.com/otpd/otpd/internal/pinpointapi"
)

// gosmpp's SMSC simulator (example/smsc_simulator/smsc.cpp), as
// internal/sms/smpp's TestSimulator runs it: built from the module cache
// with g++, listening on its fixed port 2775. Both tests take the same lock
// file, so that the two packages' test binaries (which go test runs at
// once) never run the simulator together.
const smscSimulatorPort = "2775"

// TestSendOverSMPPWithDeliveryReceipt sends a code through the
// aws-sdk-go-v2 Pinpoint client over an SMPP route to the simulator, waits
// for its delivery receipt and reads the status from the message listing
// and the metrics.
func TestSendOverSMPPWithDeliveryReceipt(t *testing.T) {
	bin := buildSMSCSimulator(t)
	lockSMSCSimulatorPort(t)
	startSMSCSimulator(t, bin)

	// The simulator binds any system_id but "invalid", and answers a
	// destination that contains the system_id with a mobile-originated
	// copy: "otpd-e2e" is in no phone number. SMPP allows a system_id of
	// 15 characters and a password of 8.
	t.Setenv("OTPD_TEST_SMPP_PASSWORD", "e2e-pw")
	path := filepath.Join(t.TempDir(), "carriers.yaml")
	cfg := `
carriers:
  - name: smsc
    type: smpp
    timeout: 5s
    smpp:
      addr: 127.0.0.1:` + smscSimulatorPort + `
      system_id: otpd-e2e
      password_env: OTPD_TEST_SMPP_PASSWORD
      window: 4
      enquire_link: 60s          # the simulator sends receipts only after a quiet second
      submit_timeout: 5s
      registered_delivery: true
routes:
  - carriers: [smsc]
breaker:
  failures: 100
`
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, func(c *config) { c.CarrierConfig = path })
	c := ts.client(t)
	app := createApp(t, c, "smpp")

	res := send(t, c, app, sendParams("smpp-receipt"))
	if res.DeliveryStatus != types.DeliveryStatusSuccessful || aws.ToInt32(res.StatusCode) != 200 {
		t.Fatalf("send over SMPP = %s %d %q, want SUCCESSFUL 200",
			res.DeliveryStatus, aws.ToInt32(res.StatusCode), aws.ToString(res.StatusMessage))
	}
	entries := ts.messages(t)
	if len(entries) != 1 {
		t.Fatalf("messages after the send = %+v, want one", entries)
	}
	sent := entries[0]
	hexID := regexp.MustCompile(`^[0-9a-f]{64}$`) // the simulator's message_id
	if sent.Carrier != "smsc" || !hexID.MatchString(sent.CarrierMessageID) || sent.Status != "SUBMITTED" ||
		sent.DestinationIdentity != testDestination || sent.ReferenceID != "smpp-receipt" || sent.Country != "US" {
		t.Fatalf("message after the send = %+v, want SUBMITTED through smsc with the simulator's message_id", sent)
	}

	// The simulator sends its receipt 3 to 12 s after the submit, once no
	// connection had traffic for a second: a bounded wait, not a timing
	// assertion.
	var got pinpointapi.MessageEntry
	deadline := time.Now().Add(30 * time.Second)
	for {
		entries = ts.messages(t)
		if len(entries) != 1 {
			t.Fatalf("messages while waiting for the receipt = %+v, want one", entries)
		}
		got = entries[0]
		if got.Status != "SUBMITTED" || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if got.Status != "DELIVERED" {
		t.Fatalf("message 30 s after the send = %+v, want DELIVERED by the simulator's receipt", got)
	}
	if got.MessageID != sent.MessageID || got.CarrierMessageID != sent.CarrierMessageID || got.Carrier != "smsc" {
		t.Errorf("the receipt changed the message's identity: %+v, was %+v", got, sent)
	}
	if v := ts.metricValue(t, `otpd_delivery_reports_total{carrier="smsc",country="US",status="DELIVERED"}`); v != 1 {
		t.Errorf("delivery reports counted = %v, want 1", v)
	}

	// The simulator refuses a destination shorter than 8 digits with
	// ESME_RINVDSTADR: Niue's numbers have 7, country code included. Its
	// other refusal, ESME_RSUBMITFAIL, is for the destination "333",
	// which no valid E.164 number is: not tried here.
	p := sendParams("smpp-refused")
	p.DestinationIdentity = aws.String("+6834002")
	res = send(t, c, app, p)
	msg := aws.ToString(res.StatusMessage)
	if res.DeliveryStatus != types.DeliveryStatusPermanentFailure || aws.ToInt32(res.StatusCode) != 400 ||
		!strings.Contains(msg, "ESME_RINVDSTADR") {
		t.Errorf("send to a destination the simulator refuses = %s %d %q, want PERMANENT_FAILURE 400 naming ESME_RINVDSTADR",
			res.DeliveryStatus, aws.ToInt32(res.StatusCode), msg)
	}
	if entries := ts.messages(t); len(entries) != 1 {
		t.Errorf("messages after the refused send = %+v, want only the delivered one", entries)
	}
}

// buildSMSCSimulator compiles gosmpp's smsc.cpp into a temporary directory
// and returns the binary. Without g++ the test is skipped, or fails in CI.
func buildSMSCSimulator(t *testing.T) string {
	t.Helper()
	gxx := requireTool(t, "g++")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", "github.com/linxGnu/gosmpp").Output()
	if err != nil {
		t.Fatalf("go list -m github.com/linxGnu/gosmpp: %v", err)
	}
	src := filepath.Join(strings.TrimSpace(string(out)), "example", "smsc_simulator", "smsc.cpp")
	if _, err := os.Stat(src); err != nil {
		t.Fatalf("gosmpp's SMSC simulator: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "smsc")
	if out, err := exec.CommandContext(ctx, gxx, "-O1", "-w", "-o", bin, src).CombinedOutput(); err != nil {
		t.Fatalf("g++ %s: %v\n%s", src, err, out)
	}
	return bin
}

// lockSMSCSimulatorPort waits, at most two minutes, for the lock on the
// simulator's fixed ports, held until the test ends. It is the lock of
// internal/sms/smpp's lockSimulatorPort: the same file, the same flock.
func lockSMSCSimulatorPort(t *testing.T) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "otpd-smsc-simulator-"+smscSimulatorPort+".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatalf("the simulator's lock file: %v", err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
			f.Close()
			t.Fatalf("lock %s (another test run uses the simulator's port %s): %v", f.Name(), smscSimulatorPort, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Cleanup(func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	})
}

// startSMSCSimulator runs the simulator until the test ends, returning once
// it announced its SMPP port and that port accepts a connection.
func startSMSCSimulator(t *testing.T, bin string) {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Dir = filepath.Dir(bin)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatalf("start the simulator: %v", err)
	}
	var (
		mu      sync.Mutex
		output  []string // its last lines, for failures
		drained = make(chan struct{})
		ready   = make(chan struct{})
	)
	go func() {
		defer close(drained)
		sc := bufio.NewScanner(stdout)
		announced := false
		for sc.Scan() { // read to the end: the simulator must never block on its log
			mu.Lock()
			output = append(output[max(0, len(output)-49):], sc.Text())
			mu.Unlock()
			if !announced && strings.Contains(sc.Text(), "Listening for SMPP on port "+smscSimulatorPort) {
				announced = true
				close(ready)
			}
		}
	}()
	// Registered before startServer's cleanup: cleanups run last-in
	// first-out, so otpd unbinds before the simulator stops.
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		<-drained
		if t.Failed() {
			mu.Lock()
			t.Logf("the simulator's last output:\n%s", strings.Join(output, "\n"))
			mu.Unlock()
		}
	})
	lastOutput := func() string {
		mu.Lock()
		defer mu.Unlock()
		return strings.Join(output, "\n")
	}
	select {
	case <-ready:
	case <-drained:
		msg := "the simulator exited before it listened on port " + smscSimulatorPort + " (is the port in use?):\n" + lastOutput()
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	case <-time.After(10 * time.Second):
		t.Fatal("the simulator did not listen on port " + smscSimulatorPort + " within 10 s:\n" + lastOutput())
	}
	addr := "127.0.0.1:" + smscSimulatorPort
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the simulator announced port %s but %s does not accept: %v", smscSimulatorPort, addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
