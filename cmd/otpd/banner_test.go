package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/otpd/otpd/internal/accesskeys"
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

// The start-up text's command for the secret, run by a shell, prints the
// secret of the profile it names, also from a file of several profiles
// written by hand.
func TestReadSecretCommand(t *testing.T) {
	dir := t.TempDir()
	one := filepath.Join(dir, "it's one")
	several := filepath.Join(dir, "several")
	only, err := accesskeys.Generate("otpd")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(one, only.AppendProfile([]byte("# a comment\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(several, []byte("[other]\naws_access_key_id=A\naws_secret_access_key=secret-of-other-000\n"+
		" [otpd.2027*x$] # next year\r\nAWS_ACCESS_KEY_ID = B\r\naws_secret_access_key:  secret-of-otpd-0000\r\n"+
		"[otpd]\naws_access_key_id=C\nAWS_Secret_Access_Key\t=\tsecret-of-otpd-plain \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ file, profile, want string }{
		{one, "otpd", only.SecretAccessKey},
		{several, "otpd.2027*x$", "secret-of-otpd-0000"},
		{several, "otpd", "secret-of-otpd-plain"},
		{several, "other", "secret-of-other-000"},
	} {
		word := readSecretCommand(tc.file, tc.profile)
		out, err := exec.Command("sh", "-c", "printf %s "+word).CombinedOutput()
		if err != nil || string(out) != tc.want {
			t.Errorf("profile %q: %s printed %q (%v), want %q", tc.profile, word, out, err, tc.want)
		}
	}
}
