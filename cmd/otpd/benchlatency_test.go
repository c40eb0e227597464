package main

import (
	"math"
	"slices"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

func TestBoundOfPercentile(t *testing.T) {
	bounds := []time.Duration{time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond}
	for _, c := range []struct {
		counts []int64
		pct    int64
		want   time.Duration
		ok     bool
	}{
		{[]int64{50, 49, 1, 0}, 50, time.Millisecond, true},
		{[]int64{49, 51, 0, 0}, 50, 5 * time.Millisecond, true},
		{[]int64{90, 9, 1, 0}, 99, 5 * time.Millisecond, true}, // exactly 99 %
		{[]int64{90, 8, 2, 0}, 99, 10 * time.Millisecond, true},
		{[]int64{90, 8, 0, 2}, 99, 0, false}, // 2 % over every bound
		{[]int64{0, 0, 0, 0}, 99, time.Millisecond, true},
	} {
		got, ok := boundOfPercentile(bounds, c.counts, c.pct)
		if got != c.want || ok != c.ok {
			t.Errorf("boundOfPercentile(%v, %d) = %s, %v; want %s, %v", c.counts, c.pct, got, ok, c.want, c.ok)
		}
	}
}

func TestHistogramCounts(t *testing.T) {
	bucket := func(le float64, n uint64) *dto.Bucket { return &dto.Bucket{UpperBound: &le, CumulativeCount: &n} }
	count := uint64(12)
	h := &dto.Histogram{SampleCount: &count, Bucket: []*dto.Bucket{
		bucket(0.0005, 2), bucket(0.001, 7), bucket(0.0025, 7), bucket(math.Inf(+1), 12),
	}}
	c := histogramCounts(h)
	wantBounds := []time.Duration{500 * time.Microsecond, time.Millisecond, 2500 * time.Microsecond}
	if !slices.Equal(c.bounds, wantBounds) || !slices.Equal(c.counts, []int64{2, 5, 0, 5}) {
		t.Errorf("histogramCounts = %v %v, want %v [2 5 0 5]", c.bounds, c.counts, wantBounds)
	}
}

// serverLatencies counts what happened between two scrapes, for the
// workload's operations only, and leaves out an operation with none.
func TestServerLatencies(t *testing.T) {
	bounds := []time.Duration{time.Millisecond, 5 * time.Millisecond}
	before := map[string]latencyCounts{
		"VerifyOTPMessage": {bounds, []int64{1000, 10, 0}},
		"SendOTPMessage":   {bounds, []int64{5, 0, 0}},
	}
	after := map[string]latencyCounts{
		"VerifyOTPMessage": {bounds, []int64{1050, 60, 0}},   // 50 and 50 more
		"SendOTPMessage":   {bounds, []int64{5, 0, 0}},       // none
		"CreateApp":        {bounds, []int64{1, 0, 0}},       // not the workload's
		"Other":            {bounds, []int64{100, 100, 100}}, // nor this
	}
	got := serverLatencies(before, after, []string{"SendOTPMessage", "VerifyOTPMessage"})
	want := []serverLatency{{Operation: "VerifyOTPMessage", Requests: 100, P50WithinMs: 1, P99WithinMs: 5}}
	if !slices.Equal(got, want) {
		t.Fatalf("serverLatencies = %+v, want %+v", got, want)
	}
	if line := got[0].describe(); line != "100 VerifyOTPMessage requests, the median within 1 ms, 99 % within 5 ms" {
		t.Errorf("describe = %q", line)
	}
	// An operation first seen after the run (no series before it).
	got = serverLatencies(map[string]latencyCounts{}, map[string]latencyCounts{"SendOTPMessage": {bounds, []int64{0, 1, 99}}}, []string{"SendOTPMessage"})
	want = []serverLatency{{Operation: "SendOTPMessage", Requests: 100}}
	if !slices.Equal(got, want) {
		t.Fatalf("first seen: %+v, want %+v", got, want)
	}
	if line := got[0].describe(); line != "100 SendOTPMessage requests, the median over the histogram's last bound, 99 % over the histogram's last bound" {
		t.Errorf("describe = %q", line)
	}
}
