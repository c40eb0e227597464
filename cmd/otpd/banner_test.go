package main

import (
	"encoding/json"
	"strings"
	"syscall"
	"testing"
)

// The endpoint the banner gives clients is the listener's address, or
// loopback in place of every address, which is none to connect to.
func TestClientHostPort(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1:8080":  "127.0.0.1:8080",
		"[::1]:8080":      "[::1]:8080",
		"10.1.2.3:443":    "10.1.2.3:443",
		"0.0.0.0:8093":    "127.0.0.1:8093",
		"[::]:8093":       "127.0.0.1:8093",
		"otpd.local:8080": "otpd.local:8080",
	} {
		if got := clientHostPort(addr); got != want {
			t.Errorf("clientHostPort(%q) = %q, want %q", addr, got, want)
		}
	}
}

// Under --log-format json every line otpd serve writes, on standard output
// and standard error, is a JSON record: no plain-text banner, whose
// information the start-up record holds.
func TestJSONLogsHaveNoBanner(t *testing.T) {
	p := startOtpdProcess(t, freeLoopbackAddr(t), t.TempDir(), "OTPD_LOG_FORMAT=json")
	p.signal(t, syscall.SIGTERM)
	out := p.output.tail(1 << 20)
	var start map[string]any
	for line := range strings.Lines(out) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("a line that is no JSON record: %q", line)
			continue
		}
		if rec["msg"] == "otpd is serving the Pinpoint API" {
			start = rec
		}
	}
	for _, k := range []string{"endpoint", "region", "access_key_id", "secret_access_key", "carrier", "store", "version"} {
		if start[k] == nil || start[k] == "" {
			t.Errorf("the start-up record lacks %s: %v", k, start)
		}
	}
}
