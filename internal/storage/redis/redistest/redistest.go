// Package redistest starts Redis servers of a test's own, so that tests
// with settings of their own never touch a Redis someone else uses.
package redistest

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Start runs redis-server with args (its settings, such as "--appendonly",
// "no") on a free loopback port and in a directory of the test's, until the
// test ends, and returns its address. Without redis-server the test is
// skipped, saying so; in CI (CI=true) it fails instead.
func Start(t testing.TB, args ...string) string {
	t.Helper()
	server, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis-server is required in CI but was not found: %v", err)
		}
		t.Skipf("skipping: redis-server is not installed (%v)", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	var out bytes.Buffer
	cmd := exec.Command(server, append([]string{"--bind", "127.0.0.1", "--port", port, "--dir", t.TempDir()}, args...)...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		select {
		case err := <-exited:
			// Another process may have taken the port meanwhile.
			exited <- err
			t.Fatalf("redis-server on %s exited (%v): %s", addr, err, strings.TrimSpace(out.String()))
		default:
		}
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(end) {
			t.Fatalf("redis-server on %s did not start within 10 s: %s", addr, strings.TrimSpace(out.String()))
		}
	}
}
