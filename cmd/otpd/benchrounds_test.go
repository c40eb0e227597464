package main

import (
	"bytes"
	"runtime"
	"strings"
	"testing"
)

// --rounds runs each concurrency that many times, each round with its own
// ceiling, and repeats the median round.
func TestBenchStartRounds(t *testing.T) {
	rows := runBenchJSON(t, "--start", "--workload", "verify", "--codes", "30", "--duration", "500ms", "--concurrency", "2", "--rounds", "3")
	if len(rows) != 4 {
		t.Fatalf("%d rows, want 3 rounds and their median: %+v", len(rows), rows)
	}
	var ratios []float64
	for i, r := range rows[:3] {
		if r.Round != i+1 || r.Rounds != 0 || r.Requests == 0 || r.Requests > 30 || r.Errors != 0 || r.Ratio <= 0 || r.CeilingRPS <= 0 {
			t.Errorf("round %d: %+v", i+1, r)
		}
		// otpd's own histogram counted this round's verifications: the
		// earlier rounds' are subtracted, and the ceiling is another
		// server.
		if l := r.ServerLatency; len(l) != 1 || l[0].Operation != "VerifyOTPMessage" || l[0].Requests != r.Requests ||
			l[0].P50.WithinMs <= 0 || l[0].P99.WithinMs < l[0].P50.WithinMs {
			t.Errorf("round %d: otpd's own latency %+v, want %d VerifyOTPMessage requests", i+1, l, r.Requests)
		}
		ratios = append(ratios, r.Ratio)
	}
	m := rows[3]
	if m.Round != 0 || m.Rounds != 3 || m.Range == nil || m.Range.Of != "ratio" {
		t.Fatalf("median round %+v", m)
	}
	below, above := 0, 0
	for _, v := range ratios {
		switch {
		case v < m.Ratio:
			below++
		case v > m.Ratio:
			above++
		}
	}
	if below > 1 || above > 1 || m.Range.Min > m.Ratio || m.Ratio > m.Range.Max || m.RPS/m.CeilingRPS != m.Ratio {
		t.Errorf("median round: ratio %v (%v / %v) in [%v, %v]; the rounds' %v", m.Ratio, m.RPS, m.CeilingRPS, m.Range.Min, m.Range.Max, ratios)
	}
}

func TestMedianRound(t *testing.T) {
	round := func(n int, rps, ceil, p99 float64, errs int64) benchRow {
		return benchRow{Workload: "verify", Mode: "closed", Concurrency: 32, Round: n, Requests: int64(rps) * 5, RPS: rps,
			P50ms: p99 / 4, P99ms: p99, CeilingRPS: ceil, Ratio: rps / ceil, Errors: errs, ErrorsByKind: map[string]int64{"timeout": errs}}
	}
	closed := []benchRow{round(1, 10, 40, 4, 1), round(2, 20, 40, 2, 0), round(3, 12, 30, 9, 2)} // ratios 0.25, 0.5, 0.4
	m := medianRound(closed)
	if m.Rounds != 3 || m.Round != 0 || m.RPS != 12 || m.CeilingRPS != 30 || m.Ratio != 0.4 || m.P50ms != 2.25 || m.Requests != 60 ||
		m.Errors != 2 || *m.Range != (figureRange{Of: "ratio", Min: 0.25, Max: 0.5}) {
		t.Errorf("closed loop: %+v, range %+v: want round 3 with the ratios' range", m, m.Range)
	}
	// With an even number of rounds, the worse of the two middle ones.
	if m := medianRound(closed[:2]); m.Ratio != 0.25 || m.Range.Min != 0.25 || m.Range.Max != 0.5 {
		t.Errorf("two rounds: %+v, range %+v: want round 1", m, m.Range)
	}
	// Without a ceiling, rounds rank by req/s.
	bare := []benchRow{{Mode: "closed", Round: 1, RPS: 30}, {Mode: "closed", Round: 2, RPS: 10}, {Mode: "closed", Round: 3, RPS: 20}}
	if m := medianRound(bare); m.RPS != 20 || *m.Range != (figureRange{Of: "rps", Min: 10, Max: 30}) {
		t.Errorf("no ceiling: %+v, range %+v", m, m.Range)
	}

	open := []benchRow{
		{Workload: "send", Mode: "open", Rate: 100, Concurrency: 4, Round: 1, P90ms: 3, P99ms: 12, CeilingLatency: &latencyFigures{P50ms: 0.5, P99ms: 5}},
		{Workload: "send", Mode: "open", Rate: 100, Concurrency: 4, Round: 2, P90ms: 2, P99ms: 8, CeilingLatency: &latencyFigures{P50ms: 0.25, P99ms: 7, Errors: 1}},
	}
	m = medianRound(open)
	if m.P99ms != 12 || m.P90ms != 3 || m.CeilingLatency.P99ms != 5 || *m.Range != (figureRange{Of: "p99_ms", Min: 8, Max: 12}) {
		t.Errorf("open loop: %+v, ceiling %+v, range %+v: want round 1, the worse of two", m, m.CeilingLatency, m.Range)
	}

	var out bytes.Buffer
	closedRows := append(closed, medianRound(closed))
	printBenchTable(&out, append(closedRows, open[0], m))
	printRoundSummaries(&out, []benchRow{medianRound(closed), m, medianRound(bare)})
	for _, want := range []string{"closed #2", "closed median round of 3", "verify c=32 (#3) error timeout: 2",
		"verify c=32 (median round of 3) error timeout: 2",
		"send c=4 (#1): the ceiling server at the same rate: p50 0.50ms, p90 0.00ms, p99 5.00ms",
		"send c=4 (median round of 2): the ceiling server at the same rate: p50 0.50ms",
		"verify c=32 over 3 rounds: ratio median 0.400 (rounds from 0.250 to 0.500)",
		"send c=4 over 2 rounds: p99 median 12.00ms (rounds from 8.00ms to 12.00ms)",
		" c=0 over 3 rounds: req/s median 20 (rounds from 10 to 30)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

// With --preload, the store's figures follow the last round, not the
// median round that repeats one of them.
func TestBenchStartRoundsPreload(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("--preload reads the resident memory from /proc/self/status")
	}
	rows := runBenchJSON(t, "--start", "--preload", "100", "--workload", "verify", "--codes", "10", "--duration", "1m",
		"--concurrency", "2", "--ceiling=false", "--rounds", "2")
	if len(rows) != 3 {
		t.Fatalf("%d rows, want 2 rounds and their median", len(rows))
	}
	if rows[0].Store != nil || rows[1].Store == nil || rows[2].Store != nil || rows[2].Rounds != 2 || rows[2].Range.Of != "rps" {
		t.Errorf("store figures on rows %v %v %v (want the second only); median round %+v", rows[0].Store != nil, rows[1].Store != nil, rows[2].Store != nil, rows[2])
	}
	for i, r := range rows {
		if r.Preload == nil {
			t.Errorf("row %d has no preload report", i)
		}
	}
}
