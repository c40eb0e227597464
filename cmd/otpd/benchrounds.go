package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
)

// runRounds is a run at concurrency c repeated --rounds times, each round
// with its own ceiling run right after it, followed, with more than one
// round, by their median round (see medianRound). On a shared machine a
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
		rows = append(rows, medianRound(rows))
	}
	return rows, nil
}

// medianRound returns the row that sums up rounds, the runs of one workload
// at one concurrency: a copy of the median round, so that all its figures
// come from one run (its req/s divided by its ceiling's is its ratio), with
// Rounds set and Range the spread of the rounds' figure that ranks them.
// Rounds rank by their ratio to the ceiling in closed loop (by req/s
// without a ceiling run) and by their p99 in open loop. With an even number
// of rounds it is the worse of the two middle ones.
func medianRound(rounds []benchRow) benchRow {
	of, figure := "ratio", func(r benchRow) float64 { return r.Ratio }
	switch {
	case rounds[0].Mode == "open":
		// Negated, so that the ranking goes from worse to better.
		of, figure = "p99_ms", func(r benchRow) float64 { return -r.P99ms }
	case !slices.ContainsFunc(rounds, func(r benchRow) bool { return r.Ratio > 0 }):
		of, figure = "rps", func(r benchRow) float64 { return r.RPS }
	}
	ranked := slices.Clone(rounds)
	slices.SortStableFunc(ranked, func(a, b benchRow) int { return cmp.Compare(figure(a), figure(b)) })
	m := ranked[(len(ranked)-1)/2]
	m.Round, m.Rounds = 0, len(rounds)
	lo, hi := figure(ranked[0]), figure(ranked[len(ranked)-1])
	if of == "p99_ms" {
		lo, hi = -hi, -lo
	}
	m.Range = &figureRange{Of: of, Min: lo, Max: hi}
	return m
}

// figureRange is the smallest and the largest of the rounds' figure that
// ranks them (Of: "ratio", "rps" or "p99_ms").
type figureRange struct {
	Of  string  `json:"of"`
	Min float64 `json:"min"`
	Max float64 `json:"max"`
}

// roundTag is how the report marks a round of --rounds ("#2") or their
// median round ("median round of 5"), or "" for a row of neither.
func (r benchRow) roundTag() string {
	switch {
	case r.Round > 0:
		return fmt.Sprintf("#%d", r.Round)
	case r.Rounds > 0:
		return fmt.Sprintf("median round of %d", r.Rounds)
	}
	return ""
}

// printRoundSummaries prints, for each median round, the figure that ranked
// the rounds and their range.
func printRoundSummaries(out io.Writer, rows []benchRow) {
	for _, r := range rows {
		if r.Rounds == 0 {
			continue
		}
		g := r.Range
		prefix := fmt.Sprintf("  %s c=%d over %d rounds:", r.Workload, r.Concurrency, r.Rounds)
		switch g.Of {
		case "ratio":
			fmt.Fprintf(out, "%s ratio median %.3f (rounds from %.3f to %.3f)\n", prefix, r.Ratio, g.Min, g.Max)
		case "rps":
			fmt.Fprintf(out, "%s req/s median %.0f (rounds from %.0f to %.0f)\n", prefix, r.RPS, g.Min, g.Max)
		case "p99_ms":
			fmt.Fprintf(out, "%s p99 median %.2fms (rounds from %.2fms to %.2fms)%s\n", prefix, r.P99ms, g.Min, g.Max, peaksOf(rows, r))
		}
	}
}

// peaksOf describes, for the median round m of runs at --rate P%, the
// peaks its rounds measured (each ran at its own share), or "" without
// --rate P%.
func peaksOf(rows []benchRow, m benchRow) string {
	if m.RatePercent == 0 {
		return ""
	}
	lo, hi := m.PeakRPS, m.PeakRPS
	for _, r := range rows {
		if r.Round > 0 && r.Workload == m.Workload && r.Concurrency == m.Concurrency {
			lo, hi = min(lo, r.PeakRPS), max(hi, r.PeakRPS)
		}
	}
	return fmt.Sprintf(", each at %g%% of its own peak: peaks from %.0f to %.0f req/s", m.RatePercent, lo, hi)
}
