package metrics

import (
	"testing"
	"time"
)

// The writer's flushes come out as a Prometheus histogram: cumulative
// buckets at the bounds given, the flushes over every bound in the count
// only, and the time they took as the sum.
func TestWriterFlushHistogram(t *testing.T) {
	m := New()
	bounds := []time.Duration{100 * time.Microsecond, time.Millisecond, 10 * time.Millisecond}
	m.WatchWriter(bounds, func() WriterStats {
		return WriterStats{Writes: 40, Commits: 20, FlushesWithin: []int64{3, 0, 5, 2}, FlushTime: 90 * time.Millisecond}
	})
	families, err := m.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "otpd_store_log_flush_duration_seconds" {
			continue
		}
		h := f.GetMetric()[0].GetHistogram()
		if h.GetSampleCount() != 10 || h.GetSampleSum() != 0.09 {
			t.Errorf("count %d, sum %v: want 10 flushes in 0.09 s", h.GetSampleCount(), h.GetSampleSum())
		}
		want := []struct {
			le    float64
			count uint64
		}{{0.0001, 3}, {0.001, 3}, {0.01, 8}}
		got := h.GetBucket()
		if len(got) != len(want) {
			t.Fatalf("%d buckets, want %d: %v", len(got), len(want), got)
		}
		for i, b := range got {
			if b.GetUpperBound() != want[i].le || b.GetCumulativeCount() != want[i].count {
				t.Errorf("bucket %d: le %v count %d, want le %v count %d", i, b.GetUpperBound(), b.GetCumulativeCount(), want[i].le, want[i].count)
			}
		}
		return
	}
	t.Fatal("no otpd_store_log_flush_duration_seconds")
}
