package main

import (
	"context"
	"fmt"
	"io"
	"slices"
)

// runRounds is a run at concurrency c repeated --rounds times, each round
// with its own ceiling run right after it, followed, with more than one
// round, by their summary (see summarizeRounds). On a shared machine a
// single ratio moves by several hundredths from run to run; the median of
// rounds that alternate otpd and the ceiling is the figure to quote.
func (b *bench) runRounds(ctx context.Context, c int) ([]benchRow, error) {
	n := b.opts.rounds
	rows := make([]benchRow, 0, n+1)
	for round := 1; round <= n; round++ {
		row, err := b.runOne(ctx, c)
		if err != nil {
			return nil, err
		}
		if n > 1 {
			row.Round = round
		}
		rows = append(rows, row)
	}
	if n > 1 {
		rows = append(rows, summarizeRounds(rows))
	}
	return rows, nil
}

// summarizeRounds returns the row that sums up rounds, the runs of one
// workload at one concurrency: requests and errors added up; req/s, the
// latency percentiles, the ceiling's req/s and latency and the ratio each the
// median of the rounds' (so not necessarily one round's figures), with the
// range of the ratio (closed loop) or of the p99 (open loop).
func summarizeRounds(rounds []benchRow) benchRow {
	first := rounds[0]
	s := benchRow{
		Workload: first.Workload, Mode: first.Mode, Rate: first.Rate, Concurrency: first.Concurrency,
		Rounds: len(rounds), ErrorsByKind: map[string]int64{}, CeilingBytes: first.CeilingBytes,
	}
	field := func(get func(benchRow) float64) []float64 {
		vs := make([]float64, len(rounds))
		for i, r := range rounds {
			vs[i] = get(r)
		}
		return vs
	}
	for _, r := range rounds {
		s.Requests += r.Requests
		s.Scheduled += r.Scheduled
		s.Seconds += r.Seconds
		s.Errors += r.Errors
		s.EndedEarly = s.EndedEarly || r.EndedEarly
		for k, v := range r.ErrorsByKind {
			s.ErrorsByKind[k] += v
		}
	}
	s.RPS = median(field(func(r benchRow) float64 { return r.RPS }))
	s.P50ms = median(field(func(r benchRow) float64 { return r.P50ms }))
	s.P90ms = median(field(func(r benchRow) float64 { return r.P90ms }))
	p99s := field(func(r benchRow) float64 { return r.P99ms })
	s.P99ms = median(p99s)
	s.MaxMs = median(field(func(r benchRow) float64 { return r.MaxMs }))
	s.CeilingRPS = median(field(func(r benchRow) float64 { return r.CeilingRPS }))
	if first.Ratio > 0 {
		ratios := field(func(r benchRow) float64 { return r.Ratio })
		s.Ratio = median(ratios)
		s.Range = &figureRange{Min: slices.Min(ratios), Max: slices.Max(ratios)}
	}
	if first.CeilingLatency != nil {
		ceil := func(get func(latencyFigures) float64) float64 {
			return median(field(func(r benchRow) float64 { return get(*r.CeilingLatency) }))
		}
		var errs int64
		for _, r := range rounds {
			errs += r.CeilingLatency.Errors
		}
		s.CeilingLatency = &latencyFigures{
			P50ms:  ceil(func(l latencyFigures) float64 { return l.P50ms }),
			P90ms:  ceil(func(l latencyFigures) float64 { return l.P90ms }),
			P99ms:  ceil(func(l latencyFigures) float64 { return l.P99ms }),
			MaxMs:  ceil(func(l latencyFigures) float64 { return l.MaxMs }),
			Errors: errs,
		}
	}
	if first.Mode == "open" {
		s.Range = &figureRange{Min: slices.Min(p99s), Max: slices.Max(p99s)}
	}
	return s
}

// figureRange is the smallest and the largest of the rounds' figures that a
// summary row's median stands for.
type figureRange struct {
	Min float64 `json:"min"`
	Max float64 `json:"max"`
}

// median is the middle value of vs, or the mean of the two middle ones.
func median(vs []float64) float64 {
	s := slices.Clone(vs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// printRoundSummaries prints, for each summary row, the median the report
// quotes and the range of the rounds.
func printRoundSummaries(out io.Writer, rows []benchRow) {
	for _, r := range rows {
		if r.Rounds == 0 || r.Range == nil {
			continue
		}
		switch {
		case r.Ratio > 0:
			fmt.Fprintf(out, "  %s c=%d over %d rounds: ratio median %.3f (rounds from %.3f to %.3f)\n",
				r.Workload, r.Concurrency, r.Rounds, r.Ratio, r.Range.Min, r.Range.Max)
		case r.Mode == "open":
			fmt.Fprintf(out, "  %s c=%d over %d rounds: p99 median %.2fms (rounds from %.2fms to %.2fms)\n",
				r.Workload, r.Concurrency, r.Rounds, r.P99ms, r.Range.Min, r.Range.Max)
		}
	}
}
