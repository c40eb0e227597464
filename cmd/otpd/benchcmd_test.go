package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
)

// runBenchJSON runs otpd bench with args and --json and decodes its rows.
func runBenchJSON(t *testing.T, args ...string) []benchRow {
	t.Helper()
	var out bytes.Buffer
	if err := runBench(append(args, "--json"), &out); err != nil {
		t.Fatalf("otpd bench %s: %v", strings.Join(args, " "), err)
	}
	var rows []benchRow
	if err := json.Unmarshal(out.Bytes(), &rows); err != nil {
		t.Fatalf("output %q: %v", out.String(), err)
	}
	return rows
}

// TestBenchStartRatePercent runs --rate P%: each round measures the peak
// in closed loop, then runs in open loop at that share of it, and the row
// says against which peak.
func TestBenchStartRatePercent(t *testing.T) {
	rows := runBenchJSON(t, "--start", "--workload", "send", "--rate", "50%", "--duration", "500ms", "--concurrency", "2", "--rounds", "2")
	if len(rows) != 3 {
		t.Fatalf("%d rows, want 2 rounds and their median", len(rows))
	}
	for i, r := range rows {
		// Scheduled is what the generator was told: the rate over 500 ms.
		if r.Mode != "open" || r.RatePercent != 50 || r.PeakRPS <= 0 || r.Rate != math.Round(r.PeakRPS/2) ||
			r.Scheduled != int64(math.Ceil(r.Rate/2)) || r.Requests == 0 || r.Errors != 0 ||
			r.CeilingLatency == nil || r.CeilingLatency.Errors != 0 {
			t.Errorf("row %d: %+v", i, r)
		}
	}
	if rows[0].PeakRPS == rows[1].PeakRPS {
		t.Errorf("both rounds have the peak %v: each round should measure its own", rows[0].PeakRPS)
	}
	if m := rows[2]; m.Rounds != 2 || m.Range == nil || m.Range.Of != "p99_ms" {
		t.Errorf("median round %+v", m)
	}
	var out bytes.Buffer
	printBenchTable(&out, rows[:1])
	printRoundSummaries(&out, rows)
	lo, hi := min(rows[0].PeakRPS, rows[1].PeakRPS), max(rows[0].PeakRPS, rows[1].PeakRPS)
	for _, want := range []string{
		fmt.Sprintf("send c=2 (#1): the rate is 50%% of %.0f req/s, the peak that a closed-loop run measured first", rows[0].PeakRPS),
		fmt.Sprintf("each at 50%% of its own peak: peaks from %.0f to %.0f req/s", lo, hi),
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report %q: want the line %q", out.String(), want)
		}
	}
}

func TestParseRate(t *testing.T) {
	for _, c := range []struct {
		in            string
		rate, percent float64
		ok            bool
	}{
		{"0", 0, 0, true},
		{"2500", 2500, 0, true},
		{"1e3", 1000, 0, true},
		{"70%", 0, 70, true},
		{" 70 % ", 0, 70, true},
		{"100%", 0, 100, true},
		{"0.5%", 0, 0.5, true},
		{"-1", 0, 0, false},
		{"0%", 0, 0, false},
		{"101%", 0, 0, false},
		{"NaN%", 0, 0, false},
		{"NaN", 0, 0, false},
		{"+Inf", 0, 0, false},
		{"x%", 0, 0, false},
		{"", 0, 0, false},
	} {
		var o benchOptions
		err := o.parseRate(c.in)
		if (err == nil) != c.ok || c.ok && (o.rate != c.rate || o.ratePercent != c.percent) {
			t.Errorf("parseRate(%q) = rate %v, percent %v, error %v; want %v, %v, ok %v", c.in, o.rate, o.ratePercent, err, c.rate, c.percent, c.ok)
		}
	}
	// Through the command, a bad rate is one line among the others.
	err := runBench([]string{"--start", "--rate", "70%", "--purge-test", "10", "--workload", "nope"}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "--rate P% and --purge-test exclude each other") || !strings.Contains(err.Error(), "--workload") {
		t.Errorf("error %v: want both the --rate and the --workload refusals", err)
	}
	err = runBench([]string{"--start", "--rate", "101%"}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), `--rate "101%": want a percentage`) {
		t.Errorf("error %v: want --rate named with what it accepts", err)
	}
}

func TestMetricsURLOption(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--start", "--metrics-url", "http://127.0.0.1:9090/metrics"}, "--metrics-url goes with --target only"},
		{[]string{"--target", "http://127.0.0.1:8080", "--access-key-id", "K", "--secret-access-key", "S", "--metrics-url", "127.0.0.1:9090"},
			`--metrics-url "127.0.0.1:9090": want a URL`},
	} {
		if err := runBench(c.args, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("otpd bench %s: error %v, want one saying %q", strings.Join(c.args, " "), err, c.want)
		}
	}
}

func TestBenchStartMix(t *testing.T) {
	rows := runBenchJSON(t, "--start", "--workload", "mix", "--duration", "1s", "--concurrency", "4")
	if len(rows) != 1 {
		t.Fatalf("%d rows", len(rows))
	}
	r := rows[0]
	if r.Workload != "mix" || r.Mode != "closed" || r.Concurrency != 4 {
		t.Fatalf("row %+v", r)
	}
	if r.Requests == 0 || r.Errors != 0 || len(r.ErrorsByKind) != 0 {
		t.Fatalf("requests %d, errors %d %v", r.Requests, r.Errors, r.ErrorsByKind)
	}
	if r.CeilingRPS <= 0 || r.Ratio <= 0 || r.CeilingBytes <= 0 {
		t.Fatalf("no ceiling: %+v", r)
	}
	if r.P50ms <= 0 || r.P50ms > r.P99ms || r.P99ms > r.MaxMs {
		t.Fatalf("latency %+v", r)
	}
}

// With a pool of --codes, the verify workloads end when it is used up, and
// every answer is the expected one: valid for the right code, invalid (not
// locked out) for wrong ones.
func TestBenchStartVerifyPools(t *testing.T) {
	rows := runBenchJSON(t, "--start", "--workload", "verify", "--codes", "40", "--duration", "1m", "--concurrency", "3,5", "--ceiling=false")
	for _, r := range rows {
		if !r.EndedEarly || r.Requests != 40 || r.Errors != 0 || r.CeilingRPS != 0 {
			t.Errorf("verify: %+v", r)
		}
	}
	rows = runBenchJSON(t, "--start", "--workload", "verify-wrong", "--codes", "20", "--duration", "1m", "--concurrency", "4", "--ceiling=false")
	if r := rows[0]; !r.EndedEarly || r.Requests != 20*benchAttempts || r.Errors != 0 {
		t.Errorf("verify-wrong: %+v", r)
	}
}

// In open loop the ceiling server runs at the same rate, and the row shows
// its latency instead of a ratio of throughputs.
func TestBenchStartOpenLoopSend(t *testing.T) {
	rows := runBenchJSON(t, "--start", "--workload", "send", "--rate", "100", "--duration", "500ms", "--concurrency", "4")
	r := rows[0]
	if r.Mode != "open" || r.Scheduled != 50 || r.Requests != 50 || r.Errors != 0 {
		t.Fatalf("%+v", r)
	}
	l := r.CeilingLatency
	if l == nil || l.P50ms <= 0 || l.P50ms > l.P99ms || l.P99ms > l.MaxMs {
		t.Fatalf("ceiling latency %+v", l)
	}
	if r.Ratio != 0 || l.Errors != 0 || r.CeilingRPS < 50 || r.CeilingRPS > 110 {
		t.Fatalf("the ceiling ran at %.1f req/s (want the rate, 100) with %d errors, ratio %v", r.CeilingRPS, l.Errors, r.Ratio)
	}
}

func TestBenchTable(t *testing.T) {
	var out bytes.Buffer
	printBenchTable(&out, []benchRow{{Workload: "send", Mode: "closed", Concurrency: 8, Requests: 10, RPS: 5, CeilingRPS: 50, Ratio: 0.1,
		Errors: 2, ErrorsByKind: map[string]int64{"429 TooManyRequestsException": 2}},
		{Workload: "verify", Mode: "open", Rate: 900, Concurrency: 32, Requests: 9000, RPS: 900, CeilingRPS: 900,
			CeilingLatency: &latencyFigures{P50ms: 0.5, P90ms: 1.5, P99ms: 6.25, MaxMs: 12}}})
	for _, want := range []string{"workload", "req/s", "p99", "ratio", "0.100", "error 429 TooManyRequestsException: 2",
		"verify c=32: the ceiling server at the same rate: p50 0.50ms, p90 1.50ms, p99 6.25ms, max 12.00ms, 0 errors"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}

func TestBenchFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"--start", "--target", "http://127.0.0.1:1"},
		{"--target", "http://127.0.0.1:1", "--access-key-id", "", "--secret-access-key", ""},
		{"--start", "--workload", "nope"},
		{"--start", "--concurrency", "8,x"},
		{"--start", "--concurrency", "0"},
		{"--start", "--rate", "-1"},
		{"--start", "--rate", "0%"},
		{"--start", "--rate", "101%"},
		{"--start", "--rate", "x%"},
		{"--start", "--rate", "70%", "--purge-test", "10"},
		{"--start", "--duration", "0s"},
		{"--start", "extra"},
		{"--start", "--preload", "-1"},
		{"--start", "--purge-test", "-1"},
		{"--start", "--rounds", "0"},
		{"--start", "--rounds", "3", "--purge-test", "10"},
		{"--target", "http://127.0.0.1:1", "--access-key-id", "a", "--secret-access-key", "b", "--preload", "10"},
		{"--target", "http://127.0.0.1:1", "--access-key-id", "a", "--secret-access-key", "b", "--purge-test", "10"},
		{"--start", "--store", "redis://127.0.0.1:6379/0", "--purge-test", "10"},
	} {
		if err := runBench(args, &bytes.Buffer{}); err == nil {
			t.Errorf("otpd bench %q: no error", args)
		}
	}
}
