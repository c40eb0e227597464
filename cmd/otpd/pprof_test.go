package main

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// The profile server serves the profiles but not the command line (which
// may hold --store's password), and warns when it listens beyond loopback.
func TestProfileServer(t *testing.T) {
	for _, tc := range []struct {
		addr string
		warn bool
	}{{"127.0.0.1:0", false}, {"0.0.0.0:0", true}} {
		var logs bytes.Buffer
		stop, err := startProfiles(tc.addr, slog.New(slog.NewTextHandler(&logs, nil)))
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(`addr=\S*:(\d+)`).FindStringSubmatch(logs.String())
		if m == nil {
			t.Fatalf("no address in the log %q", logs.String())
		}
		base := "http://127.0.0.1:" + m[1] + "/debug/pprof/"
		for path, want := range map[string]int{"": 200, "heap?debug=1": 200, "goroutine?debug=1": 200, "cmdline": 404} {
			resp, err := http.Get(base + path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != want {
				t.Errorf("%s: GET %s: %d, want %d", tc.addr, path, resp.StatusCode, want)
			}
			if path == "cmdline" && !strings.Contains(string(body), "--store may carry a password") {
				t.Errorf("%s: GET cmdline answered %q, want it to say why the command line is not served", tc.addr, body)
			}
		}
		stop()
		if warned := strings.Contains(logs.String(), "level=WARN msg=\"the profile server listens beyond loopback"); warned != tc.warn {
			t.Errorf("%s: warned %v, want %v; log:\n%s", tc.addr, warned, tc.warn, logs.String())
		}
	}
}
