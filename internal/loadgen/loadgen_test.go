package loadgen

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpd/otpd/internal/sigv4"
)

const (
	testKeyID  = "LOADGENTESTKEY000001"
	testSecret = "loadgen-test-secret-0123456789abcdefghij"
)

type oneKey struct{}

func (oneKey) Secret(id string) (string, bool) { return testSecret, id == testKeyID }

// countingServer answers 200 to requests whose SigV4 signature verifies, 403
// otherwise, and counts both.
func countingServer(t *testing.T, delay time.Duration) (*httptest.Server, *atomic.Int64, *atomic.Int64) {
	t.Helper()
	var ok, bad atomic.Int64
	v := &sigv4.Verifier{Region: "us-east-1", Service: "mobiletargeting", Keys: oneKey{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if _, err := v.Verify(r, body); err != nil {
			bad.Add(1)
			w.Header().Set("X-Amzn-ErrorType", "InvalidSignatureException")
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, err.Error())
			return
		}
		time.Sleep(delay)
		ok.Add(1)
		io.WriteString(w, `{"Valid":true}`)
	}))
	t.Cleanup(srv.Close)
	return srv, &ok, &bad
}

func fixed(body string) Builder {
	b := []byte(body)
	req := &Request{Method: http.MethodPost, Path: "/v1/apps/x/verify-otp", Body: b, PayloadHash: PayloadHash(b)}
	return BuilderFunc(func(context.Context, int) (*Request, error) { return req, nil })
}

func signer() *Signer { return NewSigner(testKeyID, testSecret, "us-east-1", "mobiletargeting") }

func TestClosedLoopCountsEveryRequestAndSigns(t *testing.T) {
	srv, ok, bad := countingServer(t, 0)
	var unhashed atomic.Int64
	b := BuilderFunc(func(_ context.Context, w int) (*Request, error) {
		unhashed.Add(1)
		return &Request{Method: http.MethodPost, Path: "/p?w=" + strconv.Itoa(w), Body: []byte(`{"w":` + strconv.Itoa(w) + `}`)}, nil
	})
	res, err := Run(context.Background(), Config{BaseURL: srv.URL, Concurrency: 4, Duration: 300 * time.Millisecond, Signer: signer(), Builder: b})
	if err != nil {
		t.Fatal(err)
	}
	if bad.Load() != 0 {
		t.Fatalf("%d requests failed signature verification", bad.Load())
	}
	if res.Requests == 0 || res.Requests != ok.Load() || res.Requests != unhashed.Load() {
		t.Fatalf("result counts %d requests, server %d, builder %d", res.Requests, ok.Load(), unhashed.Load())
	}
	if res.Errors != 0 || len(res.ByKind) != 0 {
		t.Fatalf("errors: %d %v", res.Errors, res.ByKind)
	}
	if res.Latency.Max <= 0 || res.Latency.P50 > res.Latency.P99 || res.Latency.P99 > res.Latency.Max {
		t.Fatalf("latency %+v", res.Latency)
	}
	if res.MeanBodyBytes() != len(`{"Valid":true}`) {
		t.Fatalf("mean body %d", res.MeanBodyBytes())
	}
}

func TestOpenLoopSendsExactlyTheScheduledRequests(t *testing.T) {
	srv, ok, _ := countingServer(t, 0)
	res, err := Run(context.Background(), Config{BaseURL: srv.URL, Concurrency: 4, Duration: 500 * time.Millisecond, Rate: 200,
		Signer: signer(), Builder: fixed(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Scheduled != 100 || res.Requests != 100 || ok.Load() != 100 || res.Errors != 0 {
		t.Fatalf("scheduled %d, completed %d, server saw %d, errors %v", res.Scheduled, res.Requests, ok.Load(), res.ByKind)
	}
}

// A server slower than the schedule: latency counts from when each request
// was due, so the last ones carry the whole backlog.
func TestOpenLoopChargesTheBacklog(t *testing.T) {
	srv, ok, _ := countingServer(t, 50*time.Millisecond)
	res, err := Run(context.Background(), Config{BaseURL: srv.URL, Concurrency: 1, Duration: 300 * time.Millisecond, Rate: 100,
		Signer: signer(), Builder: fixed(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 30 || ok.Load() != 30 {
		t.Fatalf("completed %d, server saw %d; want the 30 scheduled", res.Requests, ok.Load())
	}
	// The 30th was due at 290ms and could start only after 29 × 50ms.
	if res.Latency.Max < 29*50*time.Millisecond-290*time.Millisecond {
		t.Fatalf("max latency %s: the backlog is not counted", res.Latency.Max)
	}
}

func TestOpenLoopCountsUnsentRequests(t *testing.T) {
	srv, _, _ := countingServer(t, 100*time.Millisecond)
	res, err := Run(context.Background(), Config{BaseURL: srv.URL, Concurrency: 1, Duration: 100 * time.Millisecond, Rate: 100,
		Drain: time.Millisecond, Signer: signer(), Builder: fixed(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	unsent := res.ByKind["not sent (generator behind)"]
	if unsent == 0 || res.Requests+unsent != 10 || res.Errors != unsent {
		t.Fatalf("completed %d, unsent %d, errors %d; want 10 in all", res.Requests, unsent, res.Errors)
	}
}

func TestExhaustedBuilderEndsTheRun(t *testing.T) {
	srv, ok, _ := countingServer(t, 0)
	var n atomic.Int64
	inner := fixed(`{}`)
	b := BuilderFunc(func(ctx context.Context, w int) (*Request, error) {
		if n.Add(1) > 10 {
			return nil, ErrExhausted
		}
		return inner.Build(ctx, w)
	})
	res, err := Run(context.Background(), Config{BaseURL: srv.URL, Concurrency: 3, Duration: time.Minute, Signer: signer(), Builder: b})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Early || res.Requests != 10 || ok.Load() != 10 {
		t.Fatalf("early %v, completed %d, server saw %d", res.Early, res.Requests, ok.Load())
	}
}

func TestBuilderErrorStopsTheRun(t *testing.T) {
	srv, _, _ := countingServer(t, 0)
	boom := errors.New("boom")
	_, err := Run(context.Background(), Config{BaseURL: srv.URL, Concurrency: 2, Duration: time.Minute,
		Builder: BuilderFunc(func(context.Context, int) (*Request, error) { return nil, boom })})
	if !errors.Is(err, boom) {
		t.Fatalf("err %v, want boom", err)
	}
}

func TestErrorsByKind(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch n.Add(1) % 4 {
		case 0:
			w.Header()["X-Amzn-ErrorType"] = []string{"TooManyRequestsException:http://internal.amazon.com/coral/"}
			w.WriteHeader(http.StatusTooManyRequests)
		case 1:
			w.WriteHeader(http.StatusBadGateway)
		case 2:
			io.WriteString(w, `{"Valid":false}`)
		default:
			io.WriteString(w, `{"Valid":true}`)
		}
	}))
	defer srv.Close()
	check := func(body []byte) string {
		if string(body) != `{"Valid":true}` {
			return "wrong answer"
		}
		return ""
	}
	req := &Request{Method: http.MethodGet, Path: "/", Check: check}
	res, err := Run(context.Background(), Config{BaseURL: srv.URL, Concurrency: 1, Duration: time.Minute,
		Builder: BuilderFunc(func(context.Context, int) (*Request, error) {
			if n.Load() >= 8 {
				return nil, ErrExhausted
			}
			return req, nil
		})})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"429 TooManyRequestsException": 2, "HTTP 502": 2, "wrong answer": 2}
	if res.Requests != 8 || res.Errors != 6 || len(res.ByKind) != len(want) {
		t.Fatalf("requests %d, errors %d, by kind %v", res.Requests, res.Errors, res.ByKind)
	}
	for k, v := range want {
		if res.ByKind[k] != v {
			t.Errorf("%s: %d, want %d (all: %v)", k, res.ByKind[k], v, res.ByKind)
		}
	}
}

func TestTransportErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	res, err := Run(context.Background(), Config{BaseURL: "http://" + addr, Concurrency: 1, Duration: 50 * time.Millisecond, Builder: fixed(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests == 0 || res.Errors != res.Requests || res.ByKind["transport: connection refused"] != res.Requests {
		t.Fatalf("requests %d, errors %v", res.Requests, res.ByKind)
	}
	if got := Classify(0, nil, context.DeadlineExceeded); got != "transport: timeout" {
		t.Errorf("deadline: %q", got)
	}
	if got := Classify(0, nil, io.ErrUnexpectedEOF); got != "transport: connection closed" {
		t.Errorf("EOF: %q", got)
	}
	if got := Classify(204, http.Header{}, nil); got != "" {
		t.Errorf("204: %q", got)
	}
}

func TestPercentiles(t *testing.T) {
	var s []time.Duration
	for i := 100; i >= 1; i-- { // unsorted on purpose
		s = append(s, time.Duration(i)*time.Millisecond)
	}
	p := ComputePercentiles(s)
	want := Percentiles{P50: 50 * time.Millisecond, P90: 90 * time.Millisecond, P99: 99 * time.Millisecond, P999: 100 * time.Millisecond, Max: 100 * time.Millisecond}
	if p != want {
		t.Fatalf("got %+v, want %+v", p, want)
	}
	if p := ComputePercentiles([]time.Duration{7}); p != (Percentiles{7, 7, 7, 7, 7}) {
		t.Fatalf("one sample: %+v", p)
	}
	if p := ComputePercentiles(nil); p != (Percentiles{}) {
		t.Fatalf("no samples: %+v", p)
	}
	// 10 samples: p50 is the 5th, p90 the 9th, p99 and p99.9 the 10th.
	ten := []time.Duration{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}
	if p := ComputePercentiles(ten); p != (Percentiles{5, 9, 10, 10, 10}) {
		t.Fatalf("ten samples: %+v", p)
	}
	// 1,000 samples: p99.9 is the 999th, below the maximum.
	var thousand []time.Duration
	for i := 1000; i >= 1; i-- {
		thousand = append(thousand, time.Duration(i))
	}
	if p := ComputePercentiles(thousand); p.P999 != 999 || p.Max != 1000 {
		t.Fatalf("a thousand samples: %+v", p)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []Config{
		{Concurrency: 0, Duration: time.Second, Builder: fixed("")},
		{Concurrency: 1, Duration: 0, Builder: fixed("")},
		{Concurrency: 1, Duration: time.Second},
	} {
		if _, err := Run(context.Background(), cfg); err == nil {
			t.Errorf("%+v: no error", cfg)
		}
	}
}
