package pinpointapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/otpd/otpd/internal/metrics"
	"github.com/otpd/otpd/internal/sigv4"
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

// getWithLog serves one GET of path on a server whose logger writes JSON
// at level, with the attribute instance=a, and returns what it logged and
// the request ID the client got.
func getWithLog(t *testing.T, level slog.Level, path string) (logs, requestID string) {
	t.Helper()
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: level})).With("instance", "a")
	srv := httptest.NewServer(New(Config{Auth: allowAll{}, Metrics: metrics.New(), Logger: logger}))
	resp, err := http.Get(srv.URL + path)
	if err != nil {
		srv.Close()
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	srv.Close() // waits for the handler, and so for its log line
	return buf.String(), resp.Header.Get("x-amzn-RequestId")
}

// TestAccessLog checks the access log's line for a request: one record at
// the level its status calls for, with the request's ID (the one the client
// got), operation, method, path, status, latency, application, access key,
// error and the logger's own attributes.
func TestAccessLog(t *testing.T) {
	const app = "0123456789abcdef0123456789abcdef"
	out, requestID := getWithLog(t, slog.LevelInfo, "/v1/apps/"+app) // a 500: no Service
	var line map[string]any
	if err := json.Unmarshal([]byte(out), &line); err != nil || strings.Count(out, "\n") != 1 {
		t.Fatalf("want one JSON line, got %q (%v)", out, err)
	}
	for k, want := range map[string]any{
		"level": "ERROR", "msg": "request", "request_id": requestID, "operation": "GetApp", "method": "GET",
		"path": "/v1/apps/" + app, "status": float64(500), "app": app, "access_key": "TESTKEY", "instance": "a",
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

// TestAccessLogLevel checks that the access log writes nothing below the
// logger's level.
func TestAccessLogLevel(t *testing.T) {
	if out, _ := getWithLog(t, slog.LevelError+1, "/v1/apps/0123456789abcdef0123456789abcdef"); out != "" {
		t.Errorf("an ERROR line was logged by a logger above ERROR: %q", out)
	}
}

// TestTruncatedBodyIsTheClientsError sends a body shorter than its
// Content-Length and closes its side: the answer is a 400, logged as a
// warning, not a server error that anyone could raise without credentials.
func TestTruncatedBodyIsTheClientsError(t *testing.T) {
	var logs bytes.Buffer
	m := metrics.New()
	srv := httptest.NewServer(New(Config{Auth: allowAll{}, Metrics: m, Logger: slog.New(slog.NewJSONHandler(&logs, nil))}))
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "POST /v1/apps/0123456789abcdef0123456789abcdef/verify-otp HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
	conn.(*net.TCPConn).CloseWrite()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	srv.Close() // waits for the handler, and so for its log line
	if resp.StatusCode != 400 || resp.Header.Get("X-Amzn-ErrorType") != "BadRequestException" || !strings.Contains(string(body), "The request body was cut short") {
		t.Errorf("got %d %q %s, want 400 BadRequestException saying the body was cut short", resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"), body)
	}
	if strings.Contains(string(body), "127.0.0.1") || strings.Contains(string(body), "EOF") {
		t.Errorf("the answer %s shows the cause, which is the log's", body)
	}
	if !strings.Contains(logs.String(), `"level":"WARN"`) || strings.Contains(logs.String(), `"level":"ERROR"`) || !strings.Contains(logs.String(), "unexpected EOF") {
		t.Errorf("log %s: want a warning with the cause, no error", logs.String())
	}
}

// A request is in flight from its start to its answer, and no longer.
func TestInFlight(t *testing.T) {
	var f InFlight
	release := make(chan struct{})
	srv := httptest.NewServer(New(Config{Auth: allowAll{}, Metrics: metrics.New(), Logger: slog.New(slog.DiscardHandler), InFlight: &f,
		Ready: func(context.Context) error { <-release; return nil }}))
	defer srv.Close()
	answered := make(chan error, 1)
	go func() {
		resp, err := http.Get(srv.URL + "/readyz")
		if err == nil {
			resp.Body.Close()
		}
		answered <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for len(f.Requests()) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if reqs := f.Requests(); len(reqs) != 1 || reqs[0].Operation != "Readyz" || reqs[0].ID == "" {
		t.Errorf("in flight: %+v, want the Readyz request", reqs)
	}
	close(release)
	if err := <-answered; err != nil {
		t.Fatal(err)
	}
	if reqs := f.Requests(); len(reqs) != 0 {
		t.Errorf("in flight after the answer: %+v, want none", reqs)
	}
}

// The access log carries the SDK's invocation ID, which ties a retry to
// the attempt before it; one too long to be an SDK's is cut short.
func TestAccessLogInvocationID(t *testing.T) {
	var logs bytes.Buffer
	srv := httptest.NewServer(New(Config{Auth: allowAll{}, Metrics: metrics.New(), Logger: slog.New(slog.NewJSONHandler(&logs, nil))}))
	for _, id := range []string{"9a1f2b3c-0000-4000-8000-000000000001", strings.Repeat("x", 65)} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/nowhere", nil) // a 404, which is logged
		req.Header.Set("amz-sdk-invocation-id", id)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	srv.Close()
	if got := logs.String(); !strings.Contains(got, `"invocation_id":"9a1f2b3c-0000-4000-8000-000000000001"`) || strings.Contains(got, strings.Repeat("x", 65)) {
		t.Errorf("log %s: want the SDK's invocation ID, and not the 65-character one", got)
	}
}

// refuseAll refuses every signature, naming the key the request claimed.
type refuseAll struct{}

func (refuseAll) Verify(*http.Request, []byte) (string, error) {
	return "", &sigv4.Error{Code: "InvalidSignatureException", Message: "The request signature we calculated does not match.", AccessKeyID: "OTPDCLAIMEDKEY000001"}
}

// A refused signature's claimed key is logged apart from proved keys, and
// not shown to the client.
func TestRefusedSignatureLogsTheClaimedKey(t *testing.T) {
	var logs bytes.Buffer
	srv := httptest.NewServer(New(Config{Auth: refuseAll{}, Metrics: metrics.New(), Logger: slog.New(slog.NewJSONHandler(&logs, nil))}))
	resp, err := http.Post(srv.URL+"/v1/apps", "application/json", strings.NewReader(`{"Name":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	srv.Close()
	if resp.StatusCode != 403 || strings.Contains(string(body), "OTPDCLAIMEDKEY000001") {
		t.Errorf("got %d %s: want 403 without the key", resp.StatusCode, body)
	}
	if got := logs.String(); !strings.Contains(got, `"claimed_access_key":"OTPDCLAIMEDKEY000001"`) || strings.Contains(got, `"access_key"`) {
		t.Errorf("log %s: want the claimed key as claimed_access_key only", got)
	}
}

// An unready server logs why when the reason changes, not at every probe,
// and says when it is ready again; every probe is still counted.
func TestReadyzLogsChangesOnly(t *testing.T) {
	storeDown := errors.New("the store does not answer: connection refused")
	keyReplaced := &NotReady{Reason: "the store took another code hashing key"}
	// The same reason through a new connection each time: only the local
	// port differs. Another host of the store is another reason.
	reset := func(port int, host string) error {
		return fmt.Errorf("read tcp 127.0.0.1:%d->%s:5432: read: connection reset by peer", port, host)
	}
	script := []error{storeDown, storeDown, storeDown, nil, nil, keyReplaced, keyReplaced,
		reset(40112, "10.0.0.1"), reset(40113, "10.0.0.1"), reset(9, "10.0.0.1"), reset(40114, "10.0.0.2")}
	var (
		logs bytes.Buffer
		next int
	)
	srv := httptest.NewServer(New(Config{Auth: allowAll{}, Metrics: metrics.New(), Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
		Ready: func(context.Context) error { next++; return script[next-1] }}))
	for range script {
		resp, err := http.Get(srv.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	srv.Close() // waits for the handlers, and so for their log lines
	var got []string
	for line := range strings.Lines(logs.String()) {
		var r struct{ Level, Msg, Operation, Err string }
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		got = append(got, r.Level+" "+r.Msg+" "+r.Err)
	}
	want := []string{
		"ERROR request " + storeDown.Error(),
		"INFO ready again: /readyz answers 200 ",
		"ERROR request " + keyReplaced.Error(),
		"ERROR request " + reset(40112, "10.0.0.1").Error(),
		"ERROR request " + reset(40114, "10.0.0.2").Error(),
	}
	if !slices.Equal(got, want) {
		t.Errorf("log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// The API's and the operations' listeners log /readyz's changes once
// between them, and the operations' requests are not in flight as API
// requests are.
func TestOperationsShareTheReadinessLog(t *testing.T) {
	var (
		logs bytes.Buffer
		f    InFlight
	)
	entered, release := make(chan struct{}, 2), make(chan struct{})
	api, ops := Handlers(Config{Auth: allowAll{}, Metrics: metrics.New(), Logger: slog.New(slog.NewJSONHandler(&logs, nil)), InFlight: &f,
		Ready: func(context.Context) error {
			entered <- struct{}{}
			<-release
			return errors.New("the store does not answer")
		}})
	apiSrv, opsSrv := httptest.NewServer(api), httptest.NewServer(ops)
	answered := make(chan struct{})
	go func() {
		defer close(answered)
		if resp, err := http.Get(opsSrv.URL + "/readyz"); err == nil {
			resp.Body.Close()
		}
	}()
	<-entered // the probe is being answered
	if reqs := f.Requests(); len(reqs) != 0 {
		t.Errorf("in flight during a probe of the operations' listener: %+v, want none", reqs)
	}
	close(release)
	<-answered
	if resp, err := http.Get(apiSrv.URL + "/readyz"); err == nil {
		resp.Body.Close()
	}
	apiSrv.Close()
	opsSrv.Close()
	if n := strings.Count(logs.String(), "the store does not answer"); n != 1 {
		t.Errorf("the reason was logged %d times over both listeners, want once:\n%s", n, logs.String())
	}
}

// A listing's destination that is no E.164 number is echoed masked, to the
// client and in the log, whatever its shape.
func TestListingEchoesDestinationMasked(t *testing.T) {
	out, _ := getWithLog(t, slog.LevelInfo, "/_otpd/messages?destination=tel:%2B14255550142")
	if strings.Contains(out, "5550142") || !strings.Contains(out, `tel:+1425*******`) {
		t.Errorf("log %s: want the destination masked", out)
	}
	srv := httptest.NewServer(New(Config{Auth: allowAll{}, Metrics: metrics.New(), Logger: slog.New(slog.DiscardHandler)}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/_otpd/messages?destination=(425)%20555-0142")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(body), `(425) 5**-****`) || strings.Contains(string(body), "555-0142") {
		t.Errorf("got %d %s, want 400 echoing the destination masked", resp.StatusCode, body)
	}
}

// claimAny refuses every signature, naming the key the test sets as the
// one the request claimed.
type claimAny struct{ key string }

func (c claimAny) Verify(*http.Request, []byte) (string, error) {
	return "", &sigv4.Error{Code: "InvalidSignatureException", Message: "The request signature we calculated does not match.", AccessKeyID: c.key}
}

// What a request chose and the access log shows (method, path, application
// ID, claimed access key, invocation ID) is bounded, and a control or
// format character in it (a direction override, a newline) is written as
// an escape, never raw, in JSON and text logs alike: anyone can send them.
func TestAccessLogBoundsAndEscapesRequestValues(t *testing.T) {
	long := strings.Repeat("a", 100_000)
	for _, format := range []string{"json", "text"} {
		t.Run(format, func(t *testing.T) {
			var logs bytes.Buffer // read once srv.Close has waited for the handlers
			var h slog.Handler = slog.NewJSONHandler(&logs, nil)
			if format == "text" {
				h = slog.NewTextHandler(&logs, nil)
			}
			srv := httptest.NewServer(New(Config{Auth: claimAny{"AKID\u202e" + long}, Metrics: metrics.New(), Logger: slog.New(h)}))
			do := func(method, path, invocationID string) {
				t.Helper()
				req, err := http.NewRequest(method, srv.URL+path, strings.NewReader("{}"))
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("amz-sdk-invocation-id", invocationID)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
			}
			do("POST", "/v1/apps/"+long+"/otp", "id\u202e"+long)           // the app, the claimed key
			do("GET", "/"+long, "x")                                       // an unknown path
			do("GET", "/v1/evil%E2%80%AEgnp.exe%0Aforged=1", "9a1f\u202e") // bidi override, newline
			do(strings.Repeat("M", 10_000), "/", "x")                      // an unknown method
			srv.Close()
			out := logs.String()
			lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			if len(lines) != 4 {
				t.Fatalf("want 4 lines, got %d:\n%.3000s", len(lines), out)
			}
			for _, line := range lines {
				if len(line) > 2000 {
					t.Errorf("a line of %d bytes: %.600s...", len(line), line)
				}
			}
			if strings.ContainsRune(out, '\u202e') {
				t.Errorf("the log holds a raw U+202E:\n%.3000s", out)
			}
			// JSON writes an escape's backslash as \\, and so does text
			// in a quoted value.
			shown := strings.ReplaceAll(out, `\\`, `\`)
			for _, want := range []string{`evil\u202egnp.exe\nforged=1`, `9a1f\u202e`, `id\u202eaaa`, `AKID\u202eaaa`,
				`a...(100013 bytes)`, `a...(100000 bytes)`, "M...(10000 bytes)"} {
				if !strings.Contains(shown, want) {
					t.Errorf("the log lacks %s:\n%.3000s", want, out)
				}
			}
		})
	}
}
