package main

import (
	"bytes"
	"strings"
	"testing"
)

// --rounds runs each concurrency that many times, each round with its own
// ceiling, and sums them up in a row of medians.
func TestBenchStartRounds(t *testing.T) {
	rows := runBenchJSON(t, "--start", "--workload", "verify", "--codes", "30", "--duration", "500ms", "--concurrency", "2", "--rounds", "3")
	if len(rows) != 4 {
		t.Fatalf("%d rows, want 3 rounds and their summary: %+v", len(rows), rows)
	}
	var requests int64
	for i, r := range rows[:3] {
		if r.Round != i+1 || r.Rounds != 0 || r.Requests == 0 || r.Requests > 30 || r.Errors != 0 || r.Ratio <= 0 || r.CeilingRPS <= 0 {
			t.Errorf("round %d: %+v", i+1, r)
		}
		requests += r.Requests
	}
	s := rows[3]
	if s.Round != 0 || s.Rounds != 3 || s.Requests != requests || s.Errors != 0 || s.Range == nil {
		t.Fatalf("summary %+v", s)
	}
	ratios := []float64{rows[0].Ratio, rows[1].Ratio, rows[2].Ratio}
	if s.Ratio != median(ratios) || s.Range.Min > s.Ratio || s.Ratio > s.Range.Max {
		t.Errorf("summary ratio %v in [%v, %v], rounds' %v", s.Ratio, s.Range.Min, s.Range.Max, ratios)
	}
}

func TestSummarizeRounds(t *testing.T) {
	closed := []benchRow{
		{Workload: "verify", Mode: "closed", Concurrency: 32, Requests: 100, RPS: 10, P99ms: 4, CeilingRPS: 40, Ratio: 0.25, Round: 1,
			Errors: 1, ErrorsByKind: map[string]int64{"timeout": 1}},
		{Workload: "verify", Mode: "closed", Concurrency: 32, Requests: 200, RPS: 20, P99ms: 2, CeilingRPS: 40, Ratio: 0.5, Round: 2},
		{Workload: "verify", Mode: "closed", Concurrency: 32, Requests: 120, RPS: 12, P99ms: 9, CeilingRPS: 30, Ratio: 0.4, Round: 3,
			Errors: 2, ErrorsByKind: map[string]int64{"timeout": 2}},
	}
	s := summarizeRounds(closed)
	if s.Rounds != 3 || s.Round != 0 || s.Requests != 420 || s.RPS != 12 || s.P99ms != 4 || s.CeilingRPS != 40 || s.Ratio != 0.4 ||
		s.Errors != 3 || s.ErrorsByKind["timeout"] != 3 || *s.Range != (figureRange{Min: 0.25, Max: 0.5}) {
		t.Errorf("closed loop: %+v, range %+v", s, s.Range)
	}

	open := []benchRow{
		{Workload: "send", Mode: "open", Rate: 100, Concurrency: 4, P99ms: 12, CeilingLatency: &latencyFigures{P99ms: 5}},
		{Workload: "send", Mode: "open", Rate: 100, Concurrency: 4, P99ms: 8, CeilingLatency: &latencyFigures{P99ms: 7, Errors: 1}},
	}
	s = summarizeRounds(open)
	if s.P99ms != 10 || s.Ratio != 0 || s.CeilingLatency == nil || s.CeilingLatency.P99ms != 6 || s.CeilingLatency.Errors != 1 ||
		*s.Range != (figureRange{Min: 8, Max: 12}) {
		t.Errorf("open loop: %+v, ceiling %+v, range %+v", s, s.CeilingLatency, s.Range)
	}

	var out bytes.Buffer
	printBenchTable(&out, append(closed, summarizeRounds(closed), open[0], summarizeRounds(open)))
	printRoundSummaries(&out, []benchRow{summarizeRounds(closed), summarizeRounds(open)})
	for _, want := range []string{"closed #2", "closed median of 3", "verify c=32 #3 error timeout: 2",
		"send c=4: the ceiling server at the same rate: p50 0.00ms, p90 0.00ms, p99 5.00ms",
		"send c=4 (median of 2): the ceiling server at the same rate: p50 0.00ms, p90 0.00ms, p99 6.00ms", "verify c=32 over 3 rounds: ratio median 0.400 (rounds from 0.250 to 0.500)",
		"send c=4 over 2 rounds: p99 median 10.00ms (rounds from 8.00ms to 12.00ms)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}
