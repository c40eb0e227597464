package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"

	"github.com/otpd/otpd/internal/loadgen"
	"github.com/otpd/otpd/internal/pinpointapi"
	"github.com/otpd/otpd/internal/storage"
	"github.com/otpd/otpd/internal/storage/sqlite"
)

const benchHelp = `otpd bench [flags]

Drives otpd over real HTTP with SigV4-signed requests and reports requests
per second, latency p50/p90/p99/max and errors by kind. Either --target a
running otpd (with its key pair: --access-key-id/--secret-access-key or
OTPD_ACCESS_KEY_ID/OTPD_SECRET_ACCESS_KEY) or --start one in-process on
127.0.0.1 (a temporary data directory, or --store, a store of the bench's own,
which takes the bench's code hashing key; the development outbox as carrier; a
failure budget high enough never to lock out).

Closed loop (default): --concurrency workers, each with its own keep-alive
connection, send requests back to back for --duration. Open loop (--rate R):
requests are due at R per second over the same workers whatever the
completions, and latency counts from when each was due. --rate P% (such as
70%) runs the workload first in closed loop at the same concurrency, without
a ceiling run, to measure its peak, then in open loop at P% of it (rounded
to whole requests per second), in every run and round: a rate taken from an
earlier run can be a different share of the peak by the time it runs on a
machine whose speed drifts. A verify workload pre-sends codes for each of
the two.

Workloads (--workload):
  send          SendOTPMessage, a fresh ReferenceId each time: code generation,
                hashing, storing and the outbox carrier.
  verify        VerifyOTPMessage with the right code, a fresh code each time:
                the consume path. Codes are pre-sent (for 3 x --duration, or
                --codes of them, or enough for --rate) and read back first;
                if the pool runs out before --duration the run ends early
                (marked "early" in the report).
  verify-wrong  VerifyOTPMessage with wrong codes spread over many pre-sent
                codes (at most 5 guesses each, their AllowedAttempts): the
                attempt path, not the exhausted one. Against --target the
                server's --failure-limit (per application and phone number)
                still applies; guesses are spread over many numbers.
  mix           per worker: SendOTPMessage, read the code back (not counted:
                from the store with --start, GET /_otpd/outbox against
                --target), then VerifyOTPMessage with the right code, after a
                wrong one a third of the time; a new phone number each
                time.

--ceiling (default on) also drives a bare net/http server answering a
constant JSON body of the size otpd answered, with the same generator,
requests and concurrency, and shows otpd's req/s as a ratio of the
ceiling's. In open loop it drives it at the same rate and shows its latency
instead: what the machine and the generator alone add to any server's, the
floor under otpd's. With --start on the embedded store, otpd runs as 'otpd
serve' does, with one scheduler processor more than CPUs (GOMAXPROCS; see
docs/performance.md), which the generator shares: the ceiling is then
measured both with it and without, and the better of the two counts (which
can only lower otpd's ratio).

After the table, "otpd's own latency" gives, for each operation of each
run, the bucket bounds of otpd's /metrics histogram of request latency
(read before and after the run) that the median and 99 % of the run's
requests kept within: the time inside otpd's handler, from the request's
headers read to the answer handed to net/http. Where the percentiles
above are well over these, the time went elsewhere: the connection, the
kernel, the generator, a wait for a core, or, in open loop, a wait behind
an earlier answer on the same connection. Against --target, other clients'
requests count too. A target whose /metrics is on its own --metrics-addr
needs --metrics-url. If /metrics cannot be read, the bench says so once and
goes on without these figures.

--rounds N (at most 100; not with --purge-test) repeats each run N times,
each round followed by its own ceiling run, then repeats the median round
("median round of N": all its figures from that one round) and prints the
range of the rounds' ratios to the ceiling (closed loop; req/s with
--ceiling=false) or of their p99s (open loop). With an even N it is the worse
of the two middle rounds. On a shared machine one ratio moves by several
hundredths from run to run; the median of alternating rounds is the figure
to quote.

Storage at scale (with --start; the codes go straight into the server's store
from 256 goroutines at once, a random 32-byte MAC each, over 10,000 numbers):
  --preload N     before the runs, store N live codes (valid for 60 minutes,
                  AllowedAttempts 3) and report, after the preload and after
                  each run: the codes stored, the store's size on disk and
                  bytes per code (embedded SQLite: the database, -wal and -shm
                  files after a WAL checkpoint, and the -wal as found before
                  it; PostgreSQL: the codes table with its indexes; Redis: not
                  measured), the resident memory of the bench process (VmRSS
                  and its peak VmHWM: the server and the load generator
                  together, so an upper bound on the server's) and the Go
                  heap. The workload's own codes are pre-sent as usual,
                  besides.
  --purge-test N  at each concurrency, with the server's purge held (it
                  purges nothing), run the workload once undisturbed, store N
                  codes that expired long enough ago to be purged at once (a
                  minute past the 10 minutes expired codes are kept) and
                  pre-send the workload's
                  codes; then release the purge (every second: --purge-interval
                  1s), wait for its first call and run the workload again while
                  it deletes them. Reports both p99s and their ratio, the codes
                  purged during the run, when the purge began and ended
                  relative to the run and how many expired codes were left at
                  its end. The second row reuses the first's ceiling. Most
                  telling with --workload verify --rate R (not P%). Not
                  with a Redis --store, which expires codes itself.`

// benchOptions are the flags of otpd bench.
type benchOptions struct {
	target, accessKeyID, secretKey, region string
	metricsURL                             string // with --target: otpd's /metrics, if not at the target's
	start                                  bool
	store                                  string
	workload                               string
	concurrency                            []int
	duration                               time.Duration
	rateFlag                               string  // --rate as given, read by check
	rate                                   float64 // requests per second, 0 unless --rate R
	ratePercent                            float64 // --rate P%: of the closed-loop peak, 0 unless given
	ceiling                                bool
	codes                                  int
	jsonOut                                bool
	preload                                int // live codes to store before the runs
	purgeTest                              int // expired codes to purge during a second run
	rounds                                 int // runs at each concurrency, each with its ceiling
}

// benchRow is one run as the report shows it.
type benchRow struct {
	Workload string  `json:"workload"`
	Mode     string  `json:"mode"` // closed or open
	Rate     float64 `json:"rate,omitempty"`
	// PeakRPS is, with --rate P%, the req/s of the closed-loop run at the
	// start of this one, of which Rate is RatePercent per cent.
	PeakRPS      float64          `json:"peak_rps,omitempty"`
	RatePercent  float64          `json:"rate_percent,omitempty"`
	Concurrency  int              `json:"concurrency"`
	Requests     int64            `json:"requests"`
	Seconds      float64          `json:"seconds"`
	RPS          float64          `json:"rps"`
	P50ms        float64          `json:"p50_ms"`
	P90ms        float64          `json:"p90_ms"`
	P99ms        float64          `json:"p99_ms"`
	MaxMs        float64          `json:"max_ms"`
	Errors       int64            `json:"errors"`
	ErrorsByKind map[string]int64 `json:"errors_by_kind"`
	EndedEarly   bool             `json:"ended_early,omitempty"`
	Scheduled    int64            `json:"scheduled,omitempty"`
	CeilingRPS   float64          `json:"ceiling_rps,omitempty"`
	CeilingBytes int              `json:"ceiling_body_bytes,omitempty"`
	Ratio        float64          `json:"ratio_to_ceiling,omitempty"` // closed loop only
	// CeilingLatency, in open loop, is the ceiling server's latency at the
	// same rate: what the machine and the generator alone add to any
	// server's, the floor of otpd's.
	CeilingLatency *latencyFigures `json:"ceiling_latency,omitempty"`
	Phase          string          `json:"phase,omitempty"`   // --purge-test: undisturbed or purging
	Preload        *preloadReport  `json:"preload,omitempty"` // --preload: the same on every row
	Store          *storeFigures   `json:"store,omitempty"`   // --preload: right after this run
	Purge          *purgeReport    `json:"purge,omitempty"`   // --purge-test: on the purging row
	Writer         *writerFigures  `json:"writer,omitempty"`  // the embedded store's writer during the run
	// Machine is how the machine's CPUs spent the run, and CeilingMachine
	// the ceiling's run (Linux only).
	Machine        *machineFigures `json:"machine,omitempty"`
	CeilingMachine *machineFigures `json:"ceiling_machine,omitempty"`
	// ServerLatency is otpd's own latency during the run, from its /metrics.
	ServerLatency []serverLatency `json:"server_latency,omitempty"`
	// Round numbers the runs of --rounds (from 1). Rounds marks the row
	// that sums them up, a copy of their median round (see medianRound),
	// and Range there is the spread of the figure that ranked them.
	Round  int          `json:"round,omitempty"`
	Rounds int          `json:"rounds,omitempty"`
	Range  *figureRange `json:"range,omitempty"`
}

// latencyFigures are a run's latency percentiles, in milliseconds.
type latencyFigures struct {
	P50ms float64 `json:"p50_ms"`
	P90ms float64 `json:"p90_ms"`
	P99ms float64 `json:"p99_ms"`
	MaxMs float64 `json:"max_ms"`
	// Errors counts failed and unsent requests (a generator that fell
	// behind the rate).
	Errors int64 `json:"errors,omitempty"`
}

// writerFigures is what the embedded store's writer did during a run: how
// many writes shared how many commits and flushes of its log, and how long
// a flush took: on average, and, over at least flushesForP99 flushes, the
// 99th percentile read off the store's buckets (sqlite.FlushBounds). With
// --start on the embedded store only.
type writerFigures struct {
	Writes      int64       `json:"writes"`
	Commits     int64       `json:"commits"`
	Flushes     int64       `json:"flushes"`
	MeanFlushMs float64     `json:"mean_flush_ms"`
	FlushP99    *percentile `json:"flush_p99,omitempty"`
}

// flushesForP99 is the fewest flushes whose 99th percentile writerFigures
// gives: of fewer, it is the slowest.
const flushesForP99 = 100

// writerStats is the embedded store's view of its writer.
type writerStats interface{ Stats() sqlite.Stats }

// writerDelta returns what the writer did between two readings.
func writerDelta(before, after sqlite.Stats) *writerFigures {
	f := &writerFigures{Writes: after.Writes - before.Writes, Commits: after.Commits - before.Commits, Flushes: after.Flushes - before.Flushes}
	if f.Flushes == 0 {
		return f
	}
	f.MeanFlushMs = ms((after.FlushTime - before.FlushTime) / time.Duration(f.Flushes))
	if f.Flushes < flushesForP99 {
		return f
	}
	flushes, ok := flushCounts(after).since(flushCounts(before))
	if ok {
		p99 := flushes.percentile(99)
		f.FlushP99 = &p99
	}
	return f
}

// flushCounts is the writer's flushes by duration as a histogram.
func flushCounts(s sqlite.Stats) latencyCounts {
	return latencyCounts{bounds: sqlite.FlushBounds[:], counts: s.FlushesWithin[:]}
}

func (f *writerFigures) describe() string {
	perFlush := 0.0
	if f.Flushes > 0 {
		perFlush = float64(f.Writes) / float64(f.Flushes)
	}
	line := fmt.Sprintf("%d writes in %d commits and %d flushes of the log (%.1f writes per flush, %.2f ms per flush",
		f.Writes, f.Commits, f.Flushes, perFlush, f.MeanFlushMs)
	if f.FlushP99 != nil {
		line += ", " + f.FlushP99.describe()
	}
	return line + ")"
}

// runBench is `otpd bench`.
func runBench(args []string, out io.Writer) error {
	var o benchOptions
	fs := newFlagSet("bench", benchHelp)
	fs.StringVar(&o.target, "target", "", "URL of a running otpd to drive, such as http://127.0.0.1:8080")
	fs.StringVar(&o.metricsURL, "metrics-url", "", "with --target: otpd's /metrics when it is on --metrics-addr, such as http://127.0.0.1:9090/metrics (default: the target's)")
	fs.StringVar(&o.accessKeyID, "access-key-id", os.Getenv("OTPD_ACCESS_KEY_ID"), "with --target: the access key ID to sign with (OTPD_ACCESS_KEY_ID)")
	fs.StringVar(&o.secretKey, "secret-access-key", os.Getenv("OTPD_SECRET_ACCESS_KEY"), "with --target: the secret access key (OTPD_SECRET_ACCESS_KEY)")
	fs.StringVar(&o.region, "region", env("OTPD_REGION", "us-east-1"), "with --target: the region otpd accepts (OTPD_REGION)")
	fs.BoolVar(&o.start, "start", false, "start otpd in-process on 127.0.0.1 instead of --target")
	fs.StringVar(&o.store, "store", "", "with --start: a shared store URL instead of a temporary embedded database (one for the bench only: it takes the bench's HMAC key)")
	fs.StringVar(&o.workload, "workload", "send", "send, verify, verify-wrong or mix")
	conc := fs.String("concurrency", "32", "workers (connections); a list such as 8,32,128 runs each")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "how long each run lasts")
	fs.StringVar(&o.rateFlag, "rate", "0", "`R or P%`: open loop at R requests per second (0: closed loop), or at P% of the closed-loop peak measured at the start of each run")
	fs.BoolVar(&o.ceiling, "ceiling", true, "also measure a bare net/http server with the same generator and print the ratio")
	fs.IntVar(&o.codes, "codes", 0, "verify workloads: codes to pre-send (0: enough for --rate, or as many as --duration of sending gives)")
	fs.BoolVar(&o.jsonOut, "json", false, "print the results as JSON")
	fs.IntVar(&o.preload, "preload", 0, "with --start: live codes to store before the runs; reports memory and disk per code")
	fs.IntVar(&o.purgeTest, "purge-test", 0, "with --start: expired codes for the server to purge during a second run at each concurrency")
	fs.IntVar(&o.rounds, "rounds", 1, "runs at each concurrency, each followed by its ceiling run; more than one adds their median round")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var err error
	if o.concurrency, err = parseConcurrency(*conc); err != nil {
		return err
	}
	if err := o.check(); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	b := &bench{opts: o, log: os.Stderr}
	if o.start {
		done, err := b.startServer(ctx)
		if err != nil {
			return err
		}
		defer done()
	} else {
		b.baseURL = strings.TrimRight(o.target, "/")
		b.signer = loadgen.NewSigner(o.accessKeyID, o.secretKey, o.region, "mobiletargeting")
	}
	b.metricsURL = cmp.Or(o.metricsURL, b.baseURL+"/metrics")
	b.client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 30 * time.Second}
	defer b.client.CloseIdleConnections()
	if b.appID, err = b.createApp(ctx); err != nil {
		return err
	}
	if o.preload > 0 {
		if err := b.preloadCodes(ctx); err != nil {
			return err
		}
	}
	var rows []benchRow
	for _, c := range o.concurrency {
		got, err := b.runConcurrency(ctx, c)
		if err != nil {
			return err
		}
		rows = append(rows, got...)
	}
	if o.jsonOut {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	printBenchTable(out, rows)
	printRoundSummaries(out, rows)
	printRunReports(out, rows)
	return nil
}

// parseRate reads --rate: requests per second (0 for closed loop), or a
// percentage of the peak ("70%"), which each run measures in closed loop
// at its start (see runAtShareOfPeak).
func (o *benchOptions) parseRate(s string) error {
	o.rate, o.ratePercent = 0, 0
	if p, ok := strings.CutSuffix(strings.TrimSpace(s), "%"); ok {
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || !(v > 0 && v <= 100) {
			return errors.New("want a percentage of the peak above 0% and at most 100%, such as 70%")
		}
		o.ratePercent = v
		return nil
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return errors.New("want 0 (closed loop), a rate in requests per second, or a percentage of the peak such as 70%")
	}
	o.rate = v
	return nil
}

func parseConcurrency(s string) ([]int, error) {
	var cs []int
	for part := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(part))
		if err != nil || n < 1 || n > 100000 {
			return nil, fmt.Errorf("--concurrency %q: want positive integers separated by commas, such as 8,32,128", s)
		}
		cs = append(cs, n)
	}
	return cs, nil
}

func (o *benchOptions) check() error {
	var errs []error
	switch {
	case o.start && o.target != "":
		errs = append(errs, errors.New("--start and --target exclude each other"))
	case !o.start && o.target == "":
		errs = append(errs, errors.New("want --target URL (a running otpd) or --start"))
	case o.target != "":
		if u, err := url.Parse(o.target); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("--target %q: want a URL such as http://127.0.0.1:8080", o.target))
		}
		if o.accessKeyID == "" || o.secretKey == "" {
			errs = append(errs, errors.New("--target needs the server's key pair: --access-key-id and --secret-access-key (or OTPD_ACCESS_KEY_ID and OTPD_SECRET_ACCESS_KEY)"))
		}
		if o.store != "" {
			errs = append(errs, errors.New("--store goes with --start only"))
		}
		if u, err := url.Parse(o.metricsURL); o.metricsURL != "" && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "") {
			errs = append(errs, fmt.Errorf("--metrics-url %q: want a URL such as http://127.0.0.1:9090/metrics", o.metricsURL))
		}
	case o.metricsURL != "":
		errs = append(errs, errors.New("--metrics-url goes with --target only"))
	}
	if o.store != "" {
		if err := checkStoreURL(o.store); err != nil {
			errs = append(errs, err)
		}
	}
	switch o.workload {
	case "send", "verify", "verify-wrong", "mix":
	default:
		errs = append(errs, fmt.Errorf("--workload %q: want send, verify, verify-wrong or mix", o.workload))
	}
	if o.duration <= 0 {
		errs = append(errs, fmt.Errorf("--duration %s: want a positive duration", o.duration))
	}
	if err := o.parseRate(o.rateFlag); err != nil {
		errs = append(errs, fmt.Errorf("--rate %q: %w", o.rateFlag, err))
	}
	if o.ratePercent > 0 && o.purgeTest != 0 {
		errs = append(errs, errors.New("--rate P% and --purge-test exclude each other: give the purge test a rate in requests per second"))
	}
	if o.codes < 0 {
		errs = append(errs, fmt.Errorf("--codes %d: want 0 (automatic) or more", o.codes))
	}
	if o.preload < 0 {
		errs = append(errs, fmt.Errorf("--preload %d: want 0 (none) or more live codes", o.preload))
	}
	if o.purgeTest < 0 {
		errs = append(errs, fmt.Errorf("--purge-test %d: want 0 (none) or more expired codes", o.purgeTest))
	}
	if o.rounds < 1 || o.rounds > 100 {
		errs = append(errs, fmt.Errorf("--rounds %d: want 1 to 100", o.rounds))
	}
	if o.rounds > 1 && o.purgeTest != 0 {
		errs = append(errs, errors.New("--rounds and --purge-test exclude each other: a purge test runs its own pair of runs"))
	}
	if !o.start && (o.preload != 0 || o.purgeTest != 0) {
		errs = append(errs, errors.New("--preload and --purge-test go with --start only: they store codes straight into the server's store"))
	}
	if scheme, _, _ := strings.Cut(o.store, "://"); o.purgeTest != 0 && (scheme == schemeRedis || scheme == schemeRedisCluster) {
		errs = append(errs, errors.New("--purge-test: a Redis store expires codes itself, and otpd's purge deletes none; use the embedded store or a postgres:// --store"))
	}
	return errors.Join(errs...)
}

// bench is one invocation's state.
type bench struct {
	opts    benchOptions
	log     io.Writer
	baseURL string
	// metricsURL is otpd's /metrics: baseURL's, or --metrics-url.
	metricsURL string
	signer     *loadgen.Signer
	client     *http.Client
	store      storage.Store // with --start
	dataDir    string        // with --start: the in-process server's
	appID      string
	runs       atomic.Int64 // distinguishes ReferenceIds across runs

	preloaded *preloadReport // with --preload, once done
	purge     *purgeGate     // with --purge-test: in front of the server's purge loop
	// noLatencies is set once otpd's /metrics could not be read: no
	// serverLatency figures then.
	noLatencies bool
}

// startServer starts otpd in-process as --start says; done stops it.
func (b *bench) startServer(ctx context.Context) (done func(), err error) {
	var cfg config
	fs := newFlagSet("serve", "")
	serveFlags(fs, &cfg)
	dir, err := os.MkdirTemp("", "otpd-bench-")
	if err != nil {
		return nil, err
	}
	// Every listener but the API's off, whatever the environment says: the
	// bench reads otpd's /metrics from the API's address.
	if err := fs.Parse([]string{"--data-dir", dir, "--addr", "127.0.0.1:0", "--store", b.opts.store,
		"--log-level", "error", "--config", "", "--metrics-addr", "", "--pprof-addr", ""}); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	cfg.FailureLimit = math.MaxInt32 // never lock out: verify-wrong measures the attempt path
	cfg.adoptHMACKey = true          // a store of the bench's own, perhaps benched before with another key
	cfg.OutboxMaxMessages = math.MaxInt32
	if err := cfg.validate(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("--start: %w", err)
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s, err := newServer(sctx, cfg, slog.New(slog.NewTextHandler(b.log, &slog.HandlerOptions{Level: slog.LevelWarn})), time.Now)
	if err != nil {
		cancel()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("--start: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		s.close()
		os.RemoveAll(dir)
		return nil, err
	}
	b.instrument(s)
	served := make(chan error, 1)
	go func() { served <- s.serve(sctx, ln) }()
	b.baseURL = "http://" + ln.Addr().String()
	b.signer = loadgen.NewSigner(s.accessKeys.first().AccessKeyID, s.accessKeys.first().SecretAccessKey, cfg.Region, "mobiletargeting")
	b.store = s.store
	b.dataDir = dir
	fmt.Fprintf(b.log, "otpd bench: started otpd on %s (store: %s)\n", b.baseURL, storeName(b.opts.store))
	return func() {
		cancel()
		if err := <-served; err != nil {
			fmt.Fprintln(b.log, "otpd bench: the in-process otpd:", err)
		}
		os.RemoveAll(dir)
	}, nil
}

func storeName(s string) string {
	if s == "" {
		return "embedded SQLite in a temporary directory"
	}
	return redactStoreURL(s)
}

// call sends one signed request outside the measurement.
func (b *bench) call(ctx context.Context, method, path string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, b.baseURL+path, strings.NewReader(string(body)))
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if err := b.signer.Sign(ctx, req, loadgen.PayloadHash(body)); err != nil {
		return nil, err
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(data)))
	}
	return data, nil
}

func (b *bench) createApp(ctx context.Context) (string, error) {
	data, err := b.call(ctx, http.MethodPost, "/v1/apps", []byte(`{"Name":"otpd-bench"}`))
	if err != nil {
		return "", fmt.Errorf("create the bench application: %w", err)
	}
	var app pinpointapi.ApplicationResponse
	if err := json.Unmarshal(data, &app); err != nil || app.ID == "" {
		return "", fmt.Errorf("create the bench application: unexpected answer %q", data)
	}
	return app.ID, nil
}

// benchDestination is the i-th of 10,000 valid US numbers the bench sends to.
func benchDestination(i int) string { return fmt.Sprintf("+1425555%04d", i%10000) }

const (
	benchOrigination = "+18555550142"
	benchCodeLength  = 6
	benchAttempts    = 5 // AllowedAttempts of pre-sent codes: the most Pinpoint allows
)

func sendBody(dest, ref string) []byte {
	return fmt.Appendf(nil, `{"Channel":"SMS","BrandName":"Bench","OriginationIdentity":%q,"DestinationIdentity":%q,"ReferenceId":%q,"CodeLength":%d,"AllowedAttempts":%d}`,
		benchOrigination, dest, ref, benchCodeLength, benchAttempts)
}

// sdkHeaders are the headers every AWS SDK adds to a request: a new
// invocation ID per call (which otpd uses to answer a retried send with its
// first result) and the attempt number.
func sdkHeaders() http.Header {
	return http.Header{
		"Amz-Sdk-Invocation-Id": {uuid.NewString()},
		"Amz-Sdk-Request":       {"attempt=1; max=3"},
	}
}

func verifyBody(dest, ref, code string) []byte {
	return fmt.Appendf(nil, `{"DestinationIdentity":%q,"ReferenceId":%q,"Otp":%q}`, dest, ref, code)
}

var benchCodeRE = regexp.MustCompile(`\b[0-9]{6}\b`)

// issuedCode is a pre-sent code, read back from the outbox.
type issuedCode struct {
	dest, ref, code string
	body            []byte // the right VerifyOTPMessage body
	hash            string
}

// presendFactor × --duration is how long verify workloads pre-send codes
// for, without --codes or --rate.
const presendFactor = 3

// presendBatch is how many codes go to one destination, read back with one
// outbox listing.
const presendBatch = 1000

// presend sends codes with c concurrent senders until it has want codes
// (want > 0) or until budget has passed (want == 0), and reads them back.
func (b *bench) presend(ctx context.Context, run int64, want, c int, budget time.Duration) ([]issuedCode, error) {
	var pool []issuedCode
	began := time.Now()
	for batch := 0; ; batch++ {
		if want > 0 && len(pool) >= want || want == 0 && batch > 0 && time.Since(began) >= budget {
			break
		}
		n := presendBatch
		if want > 0 {
			n = min(n, want-len(pool))
		}
		dest := benchDestination(int(run)*1000 + batch)
		refs := make([]string, n)
		for i := range refs {
			refs[i] = fmt.Sprintf("b%d-%d-%d", run, batch, i)
		}
		var (
			next    atomic.Int64
			wg      sync.WaitGroup
			errOnce sync.Once
			sendErr error
		)
		for range min(c, n) {
			wg.Go(func() {
				for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
					if _, err := b.call(ctx, http.MethodPost, "/v1/apps/"+b.appID+"/otp", sendBody(dest, refs[i])); err != nil {
						errOnce.Do(func() { sendErr = err })
						return
					}
				}
			})
		}
		wg.Wait()
		if sendErr != nil {
			return nil, fmt.Errorf("pre-send codes: %w", sendErr)
		}
		entries, err := b.outbox(ctx, dest, n)
		if err != nil {
			return nil, fmt.Errorf("read pre-sent codes back: %w", err)
		}
		got := 0
		for _, e := range entries {
			code := benchCodeRE.FindString(e.Body)
			if code == "" || !strings.HasPrefix(e.ReferenceID, fmt.Sprintf("b%d-%d-", run, batch)) {
				continue
			}
			body := verifyBody(dest, e.ReferenceID, code)
			pool = append(pool, issuedCode{dest: dest, ref: e.ReferenceID, code: code, body: body, hash: loadgen.PayloadHash(body)})
			got++
		}
		if got != n {
			return nil, fmt.Errorf("read pre-sent codes back: the outbox holds %d of the %d codes sent to %s (is the development outbox the carrier?)", got, n, dest)
		}
	}
	return pool, nil
}

// outbox lists the newest limit messages to dest: from the store with
// --start, else from GET /_otpd/outbox.
func (b *bench) outbox(ctx context.Context, dest string, limit int) ([]pinpointapi.OutboxEntry, error) {
	if b.store != nil {
		msgs, err := b.store.ListOutbox(ctx, storage.OutboxQuery{Destination: dest, Limit: limit})
		if err != nil {
			return nil, err
		}
		return pinpointapi.OutboxEntries(msgs), nil
	}
	data, err := b.call(ctx, http.MethodGet, "/_otpd/outbox?destination="+url.QueryEscape(dest)+"&limit="+strconv.Itoa(limit), nil)
	if err != nil {
		return nil, err
	}
	var entries []pinpointapi.OutboxEntry
	if err := json.Unmarshal(data, &entries); err != nil {
		return nil, fmt.Errorf("GET /_otpd/outbox: %w", err)
	}
	return entries, nil
}

func wantValid(want bool) func([]byte) string {
	needle := `"Valid":false`
	if want {
		needle = `"Valid":true`
	}
	return func(body []byte) string {
		if !strings.Contains(string(body), needle) {
			return "unexpected answer: want " + needle
		}
		return ""
	}
}

// workload builds the requests of one run with c workers, at rate requests
// per second (0: closed loop), pre-sending codes first when it needs them.
func (b *bench) workload(ctx context.Context, c int, rate float64) (loadgen.Builder, error) {
	run := b.runs.Add(1)
	sendPath := "/v1/apps/" + b.appID + "/otp"
	verifyPath := "/v1/apps/" + b.appID + "/verify-otp"
	o := b.opts
	switch o.workload {
	case "send":
		counters := make([]int, c)
		return loadgen.BuilderFunc(func(_ context.Context, w int) (*loadgen.Request, error) {
			counters[w]++
			body := sendBody(benchDestination(w), fmt.Sprintf("s%d-%d-%d", run, w, counters[w]))
			return &loadgen.Request{Method: http.MethodPost, Path: sendPath, Body: body, Header: sdkHeaders()}, nil
		}), nil
	case "verify", "verify-wrong":
		perCode := 1
		if o.workload == "verify-wrong" {
			perCode = benchAttempts
		}
		// Without --codes: enough for --rate, or else as many codes as
		// sending for presendFactor × --duration gives (verifying is
		// usually faster than sending).
		want, budget := o.codes, presendFactor*o.duration/time.Duration(perCode)
		if want == 0 && rate > 0 {
			want = int(math.Ceil(rate*o.duration.Seconds()))/perCode + c
		}
		began := time.Now()
		pool, err := b.presend(ctx, run, want, max(c, 32), budget)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(b.log, "otpd bench: pre-sent and read back %d codes in %s\n", len(pool), time.Since(began).Round(time.Millisecond))
		var next atomic.Int64
		total := int64(len(pool) * perCode)
		if o.workload == "verify" {
			check := wantValid(true)
			return loadgen.BuilderFunc(func(_ context.Context, _ int) (*loadgen.Request, error) {
				i := next.Add(1) - 1
				if i >= total {
					return nil, loadgen.ErrExhausted
				}
				p := pool[i]
				return &loadgen.Request{Method: http.MethodPost, Path: verifyPath, Body: p.body, PayloadHash: p.hash, Check: check, Header: sdkHeaders()}, nil
			}), nil
		}
		// Wrong guesses: round r guesses the right code with its last digit
		// moved by r+1, so never right. Bodies and hashes are precomputed.
		wrong := make([][]loadgen.Request, benchAttempts)
		check := wantValid(false)
		for r := range wrong {
			wrong[r] = make([]loadgen.Request, len(pool))
			for i, p := range pool {
				g := []byte(p.code)
				g[len(g)-1] = '0' + (g[len(g)-1]-'0'+byte(r)+1)%10
				body := verifyBody(p.dest, p.ref, string(g))
				wrong[r][i] = loadgen.Request{Method: http.MethodPost, Path: verifyPath, Body: body, PayloadHash: loadgen.PayloadHash(body), Check: check, Header: sdkHeaders()}
			}
		}
		return loadgen.BuilderFunc(func(_ context.Context, _ int) (*loadgen.Request, error) {
			i := next.Add(1) - 1
			if i >= total {
				return nil, loadgen.ErrExhausted
			}
			return &wrong[i/int64(len(pool))][i%int64(len(pool))], nil
		}), nil
	default: // mix
		type state struct {
			n         int
			phase     int // 0 send, 1 wrong guess, 2 right code
			dest, ref string
			code      string
			rng       *rand.Rand
		}
		states := make([]*state, c)
		for w := range states {
			states[w] = &state{rng: rand.New(rand.NewPCG(uint64(run), uint64(w)))}
		}
		right, wrongCheck := wantValid(true), wantValid(false)
		return loadgen.BuilderFunc(func(ctx context.Context, w int) (*loadgen.Request, error) {
			s := states[w]
			if s.phase == 1 || s.phase == 2 {
				if s.code == "" { // read the code of the send before, outside the timing
					entries, err := b.outbox(ctx, s.dest, 1)
					if err != nil {
						return nil, fmt.Errorf("read a code back: %w", err)
					}
					if len(entries) == 0 || entries[0].ReferenceID != s.ref {
						s.phase = 0 // that send failed (counted): send again
					} else if s.code = benchCodeRE.FindString(entries[0].Body); s.code == "" {
						return nil, fmt.Errorf("no %d-digit code in %q", benchCodeLength, entries[0].Body)
					}
				}
			}
			switch s.phase {
			case 1:
				s.phase = 2
				g := []byte(s.code)
				g[len(g)-1] = '0' + (g[len(g)-1]-'0'+1)%10
				return &loadgen.Request{Method: http.MethodPost, Path: verifyPath, Body: verifyBody(s.dest, s.ref, string(g)), Check: wrongCheck, Header: sdkHeaders()}, nil
			case 2:
				s.phase = 0
				return &loadgen.Request{Method: http.MethodPost, Path: verifyPath, Body: verifyBody(s.dest, s.ref, s.code), Check: right, Header: sdkHeaders()}, nil
			}
			s.n++
			// A new number each time, distinct across workers at any one
			// time, so that the newest outbox message to it is the
			// worker's own and wrong guesses are spread over 10,000
			// numbers (a --target's failure budget is per number).
			s.dest = benchDestination(5000 + w + c*s.n)
			s.ref = fmt.Sprintf("m%d-%d-%d", run, w, s.n)
			s.code = ""
			s.phase = 2
			if s.rng.IntN(3) == 0 {
				s.phase = 1
			}
			return &loadgen.Request{Method: http.MethodPost, Path: sendPath, Body: sendBody(s.dest, s.ref), Header: sdkHeaders()}, nil
		}), nil
	}
}

// firstRequest remembers the first request built, for the ceiling run.
type firstRequest struct {
	loadgen.Builder
	once sync.Once
	req  loadgen.Request
}

func (f *firstRequest) Build(ctx context.Context, w int) (*loadgen.Request, error) {
	r, err := f.Builder.Build(ctx, w)
	if err == nil {
		f.once.Do(func() { f.req = *r })
	}
	return r, err
}

// runOne builds the workload at concurrency c and measures it.
func (b *bench) runOne(ctx context.Context, c int) (benchRow, error) {
	if b.opts.ratePercent > 0 {
		return b.runAtShareOfPeak(ctx, c)
	}
	builder, err := b.workload(ctx, c, b.opts.rate)
	if err != nil {
		return benchRow{}, err
	}
	return b.measure(ctx, c, builder, b.opts.rate, b.opts.ceiling)
}

// runAtShareOfPeak is a run at --rate P%: the workload in closed loop at
// concurrency c, without a ceiling run, then in open loop at P% of the
// req/s that reached (rounded to a whole request per second), with its
// ceiling run as usual. The row is the open loop's, with the peak it was
// measured against. Measuring the peak in every run keeps the share what it
// says on a machine whose speed drifts, where a rate taken from an earlier
// run may be 60 % of the peak by the time it runs, or 85 %. (A verify
// workload pre-sends the open loop's codes between the two, since how many
// it needs depends on the peak.) A peak run with errors, or that ran out of
// codes, measured no peak: that is an error.
func (b *bench) runAtShareOfPeak(ctx context.Context, c int) (benchRow, error) {
	builder, err := b.workload(ctx, c, 0)
	if err != nil {
		return benchRow{}, err
	}
	peak, err := b.measure(ctx, c, builder, 0, false)
	if err != nil {
		return benchRow{}, err
	}
	what := fmt.Sprintf("%s at concurrency %d: the closed-loop run that measures the peak for --rate %g%%", b.opts.workload, c, b.opts.ratePercent)
	switch {
	case peak.Errors > 0:
		return benchRow{}, fmt.Errorf("%s had %d errors (%v), so its req/s is no peak", what, peak.Errors, peak.ErrorsByKind)
	case peak.EndedEarly:
		return benchRow{}, fmt.Errorf("%s ran out of pre-sent codes, so its req/s is no peak (raise --codes)", what)
	}
	rate := math.Round(b.opts.ratePercent / 100 * peak.RPS)
	if rate < 1 {
		return benchRow{}, fmt.Errorf("%s reached %.1f req/s, of which %g%% rounds to %.0f req/s: want at least 1", what, peak.RPS, b.opts.ratePercent, rate)
	}
	fmt.Fprintf(b.log, "otpd bench: %s at concurrency %d: peak %.0f req/s in closed loop, so %g%% is %.0f/s\n", b.opts.workload, c, peak.RPS, b.opts.ratePercent, rate)
	if builder, err = b.workload(ctx, c, rate); err != nil {
		return benchRow{}, err
	}
	row, err := b.measure(ctx, c, builder, rate, b.opts.ceiling)
	if err != nil {
		return benchRow{}, err
	}
	row.PeakRPS, row.RatePercent = peak.RPS, b.opts.ratePercent
	return row, nil
}

// measure runs builder's requests at concurrency c, closed loop or at rate
// requests per second, and, with ceiling, the ceiling server after them.
func (b *bench) measure(ctx context.Context, c int, builder loadgen.Builder, rate float64, ceiling bool) (benchRow, error) {
	o := b.opts
	first := &firstRequest{Builder: builder}
	ws, _ := b.store.(writerStats)
	var before sqlite.Stats
	if ws != nil {
		before = ws.Stats()
	}
	latenciesBefore := b.latencies(ctx)
	var res loadgen.Result
	var err error
	machine := machineDuring(func() {
		res, err = loadgen.Run(ctx, loadgen.Config{BaseURL: b.baseURL, Concurrency: c, Duration: o.duration, Rate: rate, Signer: b.signer, Builder: first})
	})
	if err != nil {
		return benchRow{}, err
	}
	latenciesAfter := b.latencies(ctx)
	row := benchRow{
		Workload: o.workload, Mode: "closed", Rate: rate, Concurrency: c,
		Requests: res.Requests, Seconds: res.Elapsed.Seconds(), RPS: res.RPS(),
		P50ms: ms(res.Latency.P50), P90ms: ms(res.Latency.P90), P99ms: ms(res.Latency.P99), MaxMs: ms(res.Latency.Max),
		Errors: res.Errors, ErrorsByKind: res.ByKind, EndedEarly: res.Early, Scheduled: res.Scheduled,
		Machine: machine,
	}
	if ws != nil {
		row.Writer = writerDelta(before, ws.Stats())
	}
	if latenciesBefore != nil && latenciesAfter != nil {
		var incomparable []string
		row.ServerLatency, incomparable = serverLatencies(latenciesBefore, latenciesAfter, workloadOperations(o.workload))
		for _, op := range incomparable {
			fmt.Fprintf(b.log, "otpd bench: otpd's own latency of %s is not reported for this run: its histogram changed buckets or went back (a restart?)\n", op)
		}
	}
	if rate > 0 {
		row.Mode = "open"
	}
	if res.Early {
		fmt.Fprintf(b.log, "otpd bench: %s at concurrency %d ran out of pre-sent codes after %s (raise --codes)\n", o.workload, c, res.Elapsed.Round(time.Millisecond))
	}
	if ceiling && res.Requests > 0 {
		ceil, size, err := b.ceiling(ctx, c, rate, first.req, res.MeanBodyBytes())
		if err != nil {
			return benchRow{}, err
		}
		row.CeilingRPS, row.CeilingBytes, row.CeilingMachine = ceil.RPS(), size, ceil.machine
		switch {
		case rate > 0:
			row.CeilingLatency = &latencyFigures{P50ms: ms(ceil.Latency.P50), P90ms: ms(ceil.Latency.P90), P99ms: ms(ceil.Latency.P99), MaxMs: ms(ceil.Latency.Max), Errors: ceil.Errors}
		case row.CeilingRPS > 0:
			row.Ratio = res.RPS() / row.CeilingRPS
		}
	}
	return row, nil
}

// ceilingRun is a run of the ceiling server: the generator's result and
// how the machine's CPUs spent it.
type ceilingRun struct {
	loadgen.Result
	machine *machineFigures
}

// ceiling drives a bare net/http server answering a constant JSON body of
// size bytes with req at concurrency c, closed loop or, with a rate, open
// loop at that rate (otpd's run's), and returns the run and the body's
// size.
func (b *bench) ceiling(ctx context.Context, c int, rate float64, req loadgen.Request, size int) (ceilingRun, int, error) {
	body := constantBody(size)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return ceilingRun{}, 0, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	}), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	req.Check = nil
	run := func() (ceilingRun, error) {
		var res ceilingRun
		var err error
		res.machine = machineDuring(func() {
			res.Result, err = loadgen.Run(ctx, loadgen.Config{
				BaseURL: "http://" + ln.Addr().String(), Concurrency: c, Duration: b.opts.duration, Rate: rate, Signer: b.signer,
				Builder: loadgen.BuilderFunc(func(context.Context, int) (*loadgen.Request, error) { return &req, nil }),
			})
		})
		// In open loop a ceiling that falls behind the rate is a figure
		// (its errors are shown with its latency), not a failure.
		if err == nil && res.Errors > 0 && rate <= 0 {
			err = fmt.Errorf("the ceiling server failed %d requests: %v", res.Errors, res.ByKind)
		}
		return res, err
	}
	res, err := run()
	if err != nil {
		return ceilingRun{}, 0, err
	}
	// An in-process embedded store runs with a spare scheduler processor
	// (spareProcForFlushes), which the ceiling's generator shares: measure
	// the ceiling with the runtime's own number too, and keep the better,
	// which can only lower otpd's ratio.
	if procs := runtime.GOMAXPROCS(0); spareProcs.Load() != 0 && procs == int(spareProcs.Load()) {
		runtime.GOMAXPROCS(procsAtStart)
		defer runtime.GOMAXPROCS(procs)
		other, err := run()
		if err != nil {
			return ceilingRun{}, 0, err
		}
		if rate > 0 && other.Latency.P99 < res.Latency.P99 || rate <= 0 && other.RPS() > res.RPS() {
			res = other
		}
	}
	return res, len(body), nil
}

// constantBody is a JSON object of exactly size bytes (at least its minimum).
func constantBody(size int) []byte {
	const open, end = `{"Pad":"`, `"}`
	pad := max(size-len(open)-len(end), 0)
	return []byte(open + strings.Repeat("x", pad) + end)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// formatMs writes milliseconds as short as they are exact.
func formatMs(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// label names the row in the lines that follow the table: its workload,
// its concurrency and, with --rounds, its round or the median round.
func (r benchRow) label() string {
	l := fmt.Sprintf("%s c=%d", r.Workload, r.Concurrency)
	if tag := r.roundTag(); tag != "" {
		l += " (" + tag + ")"
	}
	return l
}

func printBenchTable(out io.Writer, rows []benchRow) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "workload\tmode\tconc\trequests\treq/s\tp50\tp90\tp99\tmax\terrors\tceiling req/s\tratio\t")
	for _, r := range rows {
		mode := r.Mode
		if r.Mode == "open" {
			mode = fmt.Sprintf("open@%g/s", r.Rate)
		}
		if r.EndedEarly {
			mode += " (early)"
		}
		if r.Phase != "" {
			mode += " " + r.Phase
		}
		if tag := r.roundTag(); tag != "" {
			mode += " " + tag
		}
		ceil, ratio := "-", "-"
		if r.CeilingRPS > 0 && r.CeilingLatency == nil { // in open loop, the rate: its latency follows the table
			ceil = fmt.Sprintf("%.0f", r.CeilingRPS)
		}
		if r.Ratio > 0 {
			ratio = fmt.Sprintf("%.3f", r.Ratio)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.0f\t%.2fms\t%.2fms\t%.2fms\t%.2fms\t%d\t%s\t%s\t\n",
			r.Workload, mode, r.Concurrency, r.Requests, r.RPS, r.P50ms, r.P90ms, r.P99ms, r.MaxMs, r.Errors, ceil, ratio)
	}
	tw.Flush()
	for _, r := range rows {
		if r.RatePercent > 0 {
			fmt.Fprintf(out, "  %s: the rate is %g%% of %.0f req/s, the peak that a closed-loop run measured first\n", r.label(), r.RatePercent, r.PeakRPS)
		}
		if l := r.CeilingLatency; l != nil {
			fmt.Fprintf(out, "  %s: the ceiling server at the same rate: p50 %.2fms, p90 %.2fms, p99 %.2fms, max %.2fms, %d errors\n",
				r.label(), l.P50ms, l.P90ms, l.P99ms, l.MaxMs, l.Errors)
		}
		for _, k := range slices.Sorted(maps.Keys(r.ErrorsByKind)) {
			fmt.Fprintf(out, "  %s error %s: %d\n", r.label(), k, r.ErrorsByKind[k])
		}
	}
}

// printRunReports prints, after the table, otpd's own latency and what
// the embedded store's writer did in each run, and what --preload and
// --purge-test measured.
func printRunReports(out io.Writer, rows []benchRow) {
	if len(rows) > 0 && rows[0].Preload != nil {
		p := rows[0].Preload
		fmt.Fprintf(out, "preload: %d live codes stored in %.1fs (%.0f codes/s)\n", p.Codes, p.Seconds, p.CodesPerSecond)
		fmt.Fprintf(out, "store after the preload: %s\n", p.Store.describe())
	}
	for _, r := range rows {
		for _, l := range r.ServerLatency {
			fmt.Fprintf(out, "otpd's own latency during %s (its handler, from its /metrics): %s\n", r.label(), l.describe())
		}
		if r.Writer != nil {
			fmt.Fprintf(out, "embedded store during %s: %s\n", r.label(), r.Writer.describe())
		}
		if r.Machine != nil {
			fmt.Fprintf(out, "the machine during %s: %s\n", r.label(), r.Machine.describe())
		}
		if r.CeilingMachine != nil {
			fmt.Fprintf(out, "the machine during the ceiling run of %s: %s\n", r.label(), r.CeilingMachine.describe())
		}
		if r.Store != nil {
			fmt.Fprintf(out, "store after %s: %s\n", r.label(), r.Store.describe())
		}
		if p := r.Purge; p != nil {
			fmt.Fprintf(out, "purge under load: p99 %.2f ms undisturbed, %.2f ms while purging %d expired codes (ratio %.2f), %d codes purged during the run (%s c=%d)\n",
				p.UndisturbedP99ms, p.PurgingP99ms, p.ExpiredCodes, p.P99Ratio, p.PurgedDuringRun, r.Workload, r.Concurrency)
			fmt.Fprintf(out, "  the purge ran from %+.2fs to %+.2fs of the run's %.2fs (%.2fs of overlap); %d expired codes were left when the run ended; inserting them took %.1fs\n",
				p.PurgeBeganS, p.PurgeEndedS, r.Seconds, p.OverlapS, p.LeftAtEnd, p.InsertSeconds)
		}
	}
}
