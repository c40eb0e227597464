package pinpointapi

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otpd/otpd/internal/metrics"
)

// allowAll authenticates every request, for tests of what comes after.
type allowAll struct{}

func (allowAll) Verify(*http.Request, []byte) (string, error) { return "TESTKEY", nil }

// TestPanicBecomesInternalError checks that a handler that panics (here: no
// Service configured) answers 500 in the AWS format rather than dropping
// the connection.
func TestPanicBecomesInternalError(t *testing.T) {
	h := New(Config{Auth: allowAll{}, Metrics: metrics.New(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/v1/apps/0123456789abcdef0123456789abcdef")
	if err != nil {
		t.Fatalf("GET: %v (the connection must not be dropped)", err)
	}
	defer resp.Body.Close()
	var body struct{ Message, RequestID string }
	json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != 500 || resp.Header.Get("X-Amzn-ErrorType") != "InternalServerErrorException" ||
		body.RequestID == "" || body.RequestID != resp.Header.Get("x-amzn-RequestId") || body.Message == "" {
		t.Errorf("got %d %q %+v, want 500 InternalServerErrorException with a message and the request ID",
			resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"), body)
	}
}

// syncBuffer is a bytes.Buffer that the server's goroutines may write while
// the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestAccessLog checks the access log's line for a request: one record at
// the level its status calls for, with the request's ID (the one the client
// got), operation, method, path, status, latency, application, access key
// and error.
func TestAccessLog(t *testing.T) {
	var logs syncBuffer
	h := New(Config{Auth: allowAll{}, Metrics: metrics.New(), Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	srv := httptest.NewServer(h)
	defer srv.Close()
	const app = "0123456789abcdef0123456789abcdef"
	resp, err := http.Get(srv.URL + "/v1/apps/" + app)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var line map[string]any
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if out := logs.String(); strings.Contains(out, "\n") {
			if err := json.Unmarshal([]byte(out), &line); err != nil {
				t.Fatalf("%v: %q", err, out)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no access log line")
		}
	}
	for k, want := range map[string]any{
		"level": "ERROR", "msg": "request", "request_id": resp.Header.Get("x-amzn-RequestId"), "operation": "GetApp",
		"method": "GET", "path": "/v1/apps/" + app, "status": float64(500), "app": app, "access_key": "TESTKEY",
	} {
		if line[k] != want {
			t.Errorf("%s = %v, want %v (line %v)", k, line[k], want, line)
		}
	}
	if err, _ := line["err"].(string); !strings.HasPrefix(err, "panic: ") {
		t.Errorf("err = %q, want the panic", err)
	}
	if _, ok := line["latency_ms"].(float64); !ok {
		t.Errorf("no latency_ms in %v", line)
	}
}

// TestAccessLogLevel checks that the access log keeps the logger's own
// attributes and writes nothing below the logger's level.
func TestAccessLogLevel(t *testing.T) {
	for _, tc := range []struct {
		level slog.Level
		lines int
	}{{slog.LevelError, 1}, {slog.LevelError + 1, 0}} {
		var logs syncBuffer
		logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: tc.level})).With("instance", "a")
		srv := httptest.NewServer(New(Config{Auth: allowAll{}, Metrics: metrics.New(), Logger: logger}))
		resp, err := http.Get(srv.URL + "/v1/apps/0123456789abcdef0123456789abcdef") // a 500: level ERROR
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		srv.Close() // waits for the handler, and so for its log line
		out := logs.String()
		if got := strings.Count(out, "\n"); got != tc.lines {
			t.Fatalf("level %v: %d lines, want %d: %q", tc.level, got, tc.lines, out)
		}
		if tc.lines > 0 && !strings.Contains(out, `"instance":"a"`) {
			t.Errorf("the logger's attributes are lost: %q", out)
		}
	}
}
