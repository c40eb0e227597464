package main

import "testing"

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
