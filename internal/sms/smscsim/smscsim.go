//go:build unix

// Package smscsim builds and runs, for tests, the SMSC simulator shipped in
// the gosmpp module (example/smsc_simulator/smsc.cpp): an SMPP peer otpd did
// not write. It is compiled from the module cache with g++ at test time and
// never committed. Its ports are fixed in its source (SMPP on 2775, admin on
// 8775, every interface), so Start holds a machine-wide lock while it runs:
// test binaries of several packages, which go test runs at once, take turns.
//
// What the simulator does, as its source shows: it binds any system_id but
// "invalid" (ESME_RINVSYSID); it answers enquire_link; it accepts a submit_sm
// with a random 64-hex-digit message_id, except a destination of "333"
// (ESME_RSUBMITFAIL) or shorter than 8 digits (ESME_RINVDSTADR); it echoes
// every accepted short message back as a mobile-originated deliver_sm; and
// 3 to 12 s later, when registered_delivery was asked for, it sends a
// delivery receipt, but only after a second without traffic on any of its
// connections.
package smscsim

import (
	"bufio"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Port is the simulator's fixed SMPP port.
const Port = "2775"

// Start builds and runs the simulator until the test ends and returns its
// SMPP address once it accepts connections. Without g++ the test is skipped,
// or fails in CI (CI=true).
func Start(t testing.TB) string {
	t.Helper()
	bin := build(t)
	lockPort(t)
	run(t, bin)
	return "127.0.0.1:" + Port
}

// build compiles gosmpp's smsc.cpp into a temporary directory
// and returns the binary. Without g++ the test is skipped, or fails in CI.
func build(t testing.TB) string {
	t.Helper()
	gxx, err := exec.LookPath("g++")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("g++ is not installed; CI must run the tests against gosmpp's SMSC simulator (apt-get install g++)")
		}
		t.Skip("skipping: g++ is not installed to build gosmpp's SMSC simulator (in CI, with CI=true, this fails instead)")
	}
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

// lockPort waits, at most two minutes, for the lock on the
// simulator's fixed ports, held until the test ends.
func lockPort(t testing.TB) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "otpd-smsc-simulator-"+Port+".lock"), os.O_CREATE|os.O_RDWR, 0o600)
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
			t.Fatalf("lock %s (another test run uses the simulator's port %s): %v", f.Name(), Port, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Cleanup(func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	})
}

// run runs the simulator until the test ends, returning once
// it announced its SMPP port and that port accepts a connection.
func run(t testing.TB, bin string) {
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
			if !announced && strings.Contains(sc.Text(), "Listening for SMPP on port "+Port) {
				announced = true
				close(ready)
			}
		}
	}()
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
		msg := "the simulator exited before it listened on port " + Port + " (is the port in use?):\n" + lastOutput()
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	case <-time.After(10 * time.Second):
		t.Fatal("the simulator did not listen on port " + Port + " within 10 s:\n" + lastOutput())
	}
	addr := "127.0.0.1:" + Port
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the simulator announced port %s but %s does not accept: %v", Port, addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
