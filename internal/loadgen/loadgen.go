// Package loadgen is otpd's HTTP load generator: it drives a server with
// SigV4-signed requests, closed-loop or open-loop, and measures throughput,
// latency percentiles and errors by kind.
//
// Closed loop: N workers, each with its own keep-alive connection, issue
// requests back to back for a duration; throughput is what the server
// sustains at that concurrency.
//
// Open loop: requests are scheduled at a fixed rate R/s, spread over the N
// workers (slot k is due at start + k/R), whatever the completions. A worker
// that falls behind issues its overdue requests at once, and latency is
// measured from the scheduled start, not the actual one, so that a stalled
// server is charged for the requests it delayed (no coordinated omission).
//
// Requests are built by a caller-supplied function and signed with
// aws-sdk-go-v2's SigV4 signer (one signer shared by all workers; a
// precomputed payload hash is used when the caller supplies one).
package loadgen

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// ErrExhausted, returned by a Builder, ends the run early: the workload has
// nothing more to send (for example, its pool of codes is used up).
var ErrExhausted = errors.New("loadgen: workload exhausted")

// Request is one HTTP request to send.
type Request struct {
	Method string
	Path   string // path and query, appended to Config.BaseURL
	Body   []byte
	Header http.Header // extra headers; Content-Type defaults to application/json
	// PayloadHash is the hex SHA-256 of Body; computed when empty. Callers
	// that send the same body many times should precompute it.
	PayloadHash string
	// Check, when set, inspects a 2xx answer and returns the kind of error
	// it shows ("" when the answer is as expected).
	Check func(body []byte) string
}

// Builder returns the next request of worker w (0 <= w < concurrency). It
// is called by worker w only, so per-worker state needs no locking; state
// shared across workers must be safe for concurrent use. Done, when set,
// is called after the request completes with its 2xx body (nil otherwise),
// before the worker's next Build; the time it takes is not counted.
type Builder interface {
	Build(ctx context.Context, w int) (*Request, error)
}

// BuilderFunc adapts a function to Builder.
type BuilderFunc func(ctx context.Context, w int) (*Request, error)

// Build calls f.
func (f BuilderFunc) Build(ctx context.Context, w int) (*Request, error) { return f(ctx, w) }

// Signer signs requests for one service, region and key pair.
type Signer struct {
	signer  *v4.Signer
	creds   aws.Credentials
	service string
	region  string
}

// NewSigner returns a signer for service (otpd: "mobiletargeting") in region.
func NewSigner(accessKeyID, secretAccessKey, region, service string) *Signer {
	return &Signer{
		signer:  v4.NewSigner(),
		creds:   aws.Credentials{AccessKeyID: accessKeyID, SecretAccessKey: secretAccessKey, Source: "otpd bench"},
		service: service,
		region:  region,
	}
}

// Sign signs r, whose body hashes to payloadHash (hex SHA-256).
func (s *Signer) Sign(ctx context.Context, r *http.Request, payloadHash string) error {
	r.Header.Set("X-Amz-Content-Sha256", payloadHash)
	return s.signer.SignHTTP(ctx, s.creds, r, payloadHash, s.service, s.region, time.Now())
}

// PayloadHash is the hex SHA-256 of body, as SigV4 wants it.
func PayloadHash(body []byte) string {
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:])
}

// Config is one run.
type Config struct {
	BaseURL     string // scheme://host:port
	Concurrency int    // workers, one connection each
	Duration    time.Duration
	// Rate, when > 0, makes the run open-loop at Rate requests per second.
	Rate float64
	// Signer signs every request; nil sends them unsigned.
	Signer  *Signer
	Builder Builder
	// Timeout bounds one request; zero means 30 seconds.
	Timeout time.Duration
	// Drain bounds how long an open-loop run may go on past Duration to
	// issue requests that were due before it; the ones still unsent are
	// counted as errors of kind "not sent (generator behind)". Zero means
	// Duration/2 + 5s.
	Drain time.Duration
}

// Result is what a run measured.
type Result struct {
	Requests  int64 // requests completed, successful or not
	Errors    int64 // of those, failed ones (plus unsent ones in open loop)
	ByKind    map[string]int64
	Elapsed   time.Duration // from the start to the last completion
	Early     bool          // the workload was exhausted before Duration
	Latency   Percentiles   // over every completed request
	BodyBytes int64         // response body bytes read, in all
	Scheduled int64         // open loop: requests due within Duration
}

// RPS is completed requests per second.
func (r Result) RPS() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// MeanBodyBytes is the mean size of a response body.
func (r Result) MeanBodyBytes() int {
	if r.Requests == 0 {
		return 0
	}
	return int(r.BodyBytes / r.Requests)
}

// Percentiles of latency.
type Percentiles struct {
	P50, P90, P99, P999, Max time.Duration
}

// ComputePercentiles sorts samples in place and returns their p50, p90,
// p99, p99.9 and maximum, by the nearest-rank method.
func ComputePercentiles(samples []time.Duration) Percentiles {
	if len(samples) == 0 {
		return Percentiles{}
	}
	slices.Sort(samples)
	rank := func(p float64) time.Duration {
		// nearest rank: the smallest sample with at least p% at or below it
		i := int(float64(len(samples))*p/100+0.9999999) - 1
		return samples[min(max(i, 0), len(samples)-1)]
	}
	return Percentiles{P50: rank(50), P90: rank(90), P99: rank(99), P999: rank(99.9), Max: samples[len(samples)-1]}
}

// worker is one connection's state and tallies.
type worker struct {
	id      int
	client  *http.Client
	samples []time.Duration
	kinds   map[string]int64
	n, errs int64
	bytes   int64
	buf     bytes.Buffer
	last    time.Time
}

// Run drives the server as cfg says until cfg.Duration has passed, ctx is
// done or the Builder is exhausted.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if cfg.Concurrency < 1 {
		return Result{}, fmt.Errorf("loadgen: concurrency %d: want at least 1", cfg.Concurrency)
	}
	if cfg.Duration <= 0 {
		return Result{}, fmt.Errorf("loadgen: duration %s: want a positive duration", cfg.Duration)
	}
	if cfg.Builder == nil {
		return Result{}, errors.New("loadgen: no Builder")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.Drain == 0 {
		cfg.Drain = cfg.Duration/2 + 5*time.Second
	}
	expect := 1024
	if cfg.Rate > 0 {
		expect = int(cfg.Rate*cfg.Duration.Seconds())/cfg.Concurrency + 16
	}
	workers := make([]*worker, cfg.Concurrency)
	for i := range workers {
		tr := &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        1,
			MaxIdleConnsPerHost: 1,
			MaxConnsPerHost:     1,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		}
		workers[i] = &worker{
			id:      i,
			client:  &http.Client{Transport: tr, Timeout: cfg.Timeout},
			samples: make([]time.Duration, 0, min(expect, 1<<20)),
			kinds:   map[string]int64{},
		}
	}
	defer func() {
		for _, w := range workers {
			w.client.CloseIdleConnections()
		}
	}()

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		early    atomic.Bool
		buildErr error
		errOnce  sync.Once
	)
	stop := func(err error) {
		if errors.Is(err, ErrExhausted) {
			early.Store(true) // requests in flight finish; no more start
			return
		}
		errOnce.Do(func() { buildErr = err })
		cancel()
	}
	start := time.Now()
	deadline := start.Add(cfg.Duration)
	var scheduled int64
	var wg sync.WaitGroup
	if cfg.Rate <= 0 {
		for _, w := range workers {
			wg.Go(func() {
				for runCtx.Err() == nil && !early.Load() && time.Now().Before(deadline) {
					if err := w.one(runCtx, cfg, time.Now()); err != nil {
						stop(err)
						return
					}
				}
			})
		}
	} else {
		interval := float64(time.Second) / cfg.Rate
		// slots k = 0, 1, ... due at k*interval, before Duration
		scheduled = int64(math.Ceil(cfg.Duration.Seconds()*cfg.Rate - 1e-9))
		hardStop := deadline.Add(cfg.Drain)
		for _, w := range workers {
			wg.Go(func() {
				for k := int64(w.id); k < scheduled; k += int64(cfg.Concurrency) {
					due := start.Add(time.Duration(float64(k) * interval))
					if d := time.Until(due); d > 0 {
						t := time.NewTimer(d)
						select {
						case <-runCtx.Done():
							t.Stop()
						case <-t.C:
						}
					}
					if runCtx.Err() != nil || early.Load() || time.Now().After(hardStop) {
						if runCtx.Err() == nil && !early.Load() {
							unsent := (scheduled - k + int64(cfg.Concurrency) - 1) / int64(cfg.Concurrency)
							w.errs += unsent
							w.kinds["not sent (generator behind)"] += unsent
						}
						return
					}
					if err := w.one(runCtx, cfg, due); err != nil {
						stop(err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	res := Result{ByKind: map[string]int64{}, Early: early.Load(), Scheduled: scheduled}
	var all []time.Duration
	var last time.Time
	for _, w := range workers {
		res.Requests += w.n
		res.Errors += w.errs
		res.BodyBytes += w.bytes
		for k, v := range w.kinds {
			res.ByKind[k] += v
		}
		all = append(all, w.samples...)
		if w.last.After(last) {
			last = w.last
		}
	}
	if last.IsZero() {
		last = time.Now()
	}
	res.Elapsed = last.Sub(start)
	res.Latency = ComputePercentiles(all)
	if buildErr != nil {
		return res, buildErr
	}
	return res, ctx.Err()
}

// one builds, signs and sends one request whose latency counts from begin,
// and tallies it. It returns only the Builder's errors.
func (w *worker) one(ctx context.Context, cfg Config, begin time.Time) error {
	req, err := cfg.Builder.Build(ctx, w.id)
	if err != nil {
		if ctx.Err() != nil {
			return nil // the run is ending; a Builder may notice it first
		}
		return err
	}
	hreq, err := http.NewRequestWithContext(ctx, req.Method, cfg.BaseURL+req.Path, bytes.NewReader(req.Body))
	if err != nil {
		return fmt.Errorf("loadgen: build request: %w", err)
	}
	for k, v := range req.Header {
		hreq.Header[k] = v
	}
	if len(req.Body) > 0 && hreq.Header.Get("Content-Type") == "" {
		hreq.Header.Set("Content-Type", "application/json")
	}
	if cfg.Signer != nil {
		hash := req.PayloadHash
		if hash == "" {
			hash = PayloadHash(req.Body)
		}
		if err := cfg.Signer.Sign(ctx, hreq, hash); err != nil {
			return fmt.Errorf("loadgen: sign: %w", err)
		}
	}
	resp, err := w.client.Do(hreq)
	var kind string
	if err == nil {
		w.buf.Reset()
		_, err = w.buf.ReadFrom(resp.Body)
		resp.Body.Close()
		if err == nil {
			kind = Classify(resp.StatusCode, resp.Header, nil)
			if kind == "" && req.Check != nil {
				kind = req.Check(w.buf.Bytes())
			}
		}
	}
	end := time.Now()
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			return nil // cut short by the end of the run: not counted
		}
		kind = Classify(0, nil, err)
	}
	w.n++
	w.bytes += int64(w.buf.Len())
	w.samples = append(w.samples, end.Sub(begin))
	w.last = end
	if kind != "" {
		w.errs++
		w.kinds[kind]++
	}
	return nil
}

// Classify names the kind of error an answer or a transport error shows:
// "" for a 2xx answer, the X-Amzn-ErrorType of an AWS error (with its
// status), "HTTP <status>" for another non-2xx answer, and "transport: ..."
// for a request that got no answer.
func Classify(status int, h http.Header, err error) string {
	if err != nil {
		var nerr net.Error
		switch {
		case errors.Is(err, context.DeadlineExceeded), errors.As(err, &nerr) && nerr.Timeout():
			return "transport: timeout"
		case errors.Is(err, syscall.ECONNREFUSED):
			return "transport: connection refused"
		case errors.Is(err, syscall.ECONNRESET):
			return "transport: connection reset"
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return "transport: connection closed"
		default:
			return "transport: other"
		}
	}
	if status >= 200 && status < 300 {
		return ""
	}
	if t := h.Get("X-Amzn-ErrorType"); t != "" {
		// AWS may append ":http://..." to the type.
		if i := bytes.IndexByte([]byte(t), ':'); i > 0 {
			t = t[:i]
		}
		return strconv.Itoa(status) + " " + t
	}
	return "HTTP " + strconv.Itoa(status)
}
