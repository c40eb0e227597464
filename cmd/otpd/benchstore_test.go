package main

import (
	"bytes"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/otpd/otpd/internal/storage/sqlite"
)

// --preload stores the codes before the runs and reports the store's size
// and the process's memory after the preload and after each run.
func TestBenchStartPreload(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("--preload reads the resident memory from /proc/self/status")
	}
	rows := runBenchJSON(t, "--start", "--preload", "2000", "--workload", "verify", "--codes", "40", "--duration", "1m", "--concurrency", "3", "--ceiling=false")
	if len(rows) != 1 {
		t.Fatalf("%d rows", len(rows))
	}
	r := rows[0]
	if r.Requests != 40 || r.Errors != 0 {
		t.Errorf("verify after the preload: %+v", r)
	}
	p := r.Preload
	if p == nil || r.Store == nil {
		t.Fatalf("no preload or store figures: %+v", r)
	}
	if p.Codes != 2000 || p.Seconds <= 0 || p.CodesPerSecond <= 0 {
		t.Errorf("preload %+v", p)
	}
	// After the preload, its codes; after the run, the pre-sent ones too.
	for _, c := range []struct {
		f     storeFigures
		codes int64
	}{{p.Store, 2000}, {*r.Store, 2040}} {
		f := c.f
		if f.Codes != c.codes || f.DiskFiles[databaseFileName] <= 0 || f.BytesPerCode <= 0 ||
			f.BytesPerCode != float64(f.DiskBytes)/float64(f.Codes) || !strings.Contains(f.DiskNote, "checkpoint") {
			t.Errorf("want %d codes and their size: %+v", c.codes, f)
		}
		if f.RSSBytes <= 0 || f.PeakRSSBytes < f.RSSBytes || f.HeapInUseBytes == 0 || f.HeapLiveBytes == 0 {
			t.Errorf("memory %+v", f)
		}
	}
}

// --purge-test runs the workload twice at each concurrency, the second time
// while the server's purge deletes the expired codes inserted before it.
func TestBenchStartPurgeTest(t *testing.T) {
	rows := runBenchJSON(t, "--start", "--purge-test", "3000", "--workload", "verify", "--rate", "200", "--duration", "1s", "--concurrency", "2", "--ceiling=false")
	if len(rows) != 2 {
		t.Fatalf("%d rows", len(rows))
	}
	for i, phase := range []string{"undisturbed", "purging"} {
		if r := rows[i]; r.Phase != phase || r.Mode != "open" || r.Requests == 0 || r.Errors != 0 || r.P99ms <= 0 {
			t.Errorf("row %d: want a clean %s run: %+v", i, phase, r)
		}
	}
	if rows[0].Purge != nil {
		t.Errorf("purge figures on the undisturbed row: %+v", rows[0].Purge)
	}
	p := rows[1].Purge
	if p == nil {
		t.Fatal("no purge figures")
	}
	if p.ExpiredCodes != 3000 || p.UndisturbedP99ms != rows[0].P99ms || p.PurgingP99ms != rows[1].P99ms || p.P99Ratio <= 0 {
		t.Errorf("p99s %+v", p)
	}
	if p.PurgedDuringRun <= 0 || p.PurgedDuringRun > 3000 || p.LeftAtEnd < 0 || p.OverlapS <= 0 ||
		p.PurgeBeganS > 0 || p.PurgeEndedS <= p.PurgeBeganS {
		t.Errorf("the purge did not overlap the run: %+v", p)
	}
}

func TestBenchStoreReportText(t *testing.T) {
	fig := storeFigures{Codes: 1000, DiskBytes: 250000, DiskFiles: map[string]int64{"otpd.db": 250000}, BytesPerCode: 250,
		DiskNote: "embedded SQLite", WALAsFound: 4 << 20, RSSBytes: 50 << 20, PeakRSSBytes: 60 << 20, HeapInUseBytes: 8 << 20, HeapLiveBytes: 4 << 20}
	var out bytes.Buffer
	printRunReports(&out, []benchRow{
		{Workload: "verify", Concurrency: 8, Phase: "undisturbed", Preload: &preloadReport{Codes: 1000, Seconds: 0.5, CodesPerSecond: 2000, Store: fig},
			ServerLatency: []serverLatency{{Operation: "VerifyOTPMessage", Requests: 10, P50: percentile{Pct: 50, WithinMs: 1}, P99: percentile{Pct: 99, OverMs: 10000}}}},
		{Workload: "verify", Concurrency: 8, Phase: "purging", Seconds: 2, Preload: &preloadReport{Codes: 1000, Store: fig}, Store: &fig,
			Purge: &purgeReport{ExpiredCodes: 1000, UndisturbedP99ms: 2, PurgingP99ms: 5, P99Ratio: 2.5, PurgedDuringRun: 700, LeftAtEnd: 300, PurgeEndedS: 2.5, OverlapS: 2}},
	})
	for _, want := range []string{
		"preload: 1000 live codes stored in 0.5s (2000 codes/s)",
		"store after the preload: 1000 codes, 244.1 KiB on disk (otpd.db 244.1 KiB; embedded SQLite) = 250 bytes per code",
		"the -wal was 4.0 MiB before the checkpoint", "RSS 50.0 MiB, peak 60.0 MiB", "an upper bound on the server's", "Go heap 8.0 MiB in use, 4.0 MiB live",
		"store after verify c=8: 1000 codes",
		"purge under load: p99 2.00 ms undisturbed, 5.00 ms while purging 1000 expired codes (ratio 2.50), 700 codes purged during the run (verify c=8)",
		"300 expired codes were left when the run ended",
		"otpd's own latency during verify c=8 (its handler, from its /metrics): 10 VerifyOTPMessage requests, the median within 1 ms, more than 1 % over 10000 ms",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

// The writer's figures for a run: its flushes' mean, and the bucket bound
// that 99 % of them kept within.
func TestWriterDelta(t *testing.T) {
	// Many fast flushes before the run: a percentile of the whole history
	// instead of the run's would be the first bucket's.
	before := sqlite.Stats{Writes: 7, Commits: 5, Flushes: 5000, FlushTime: time.Second}
	before.FlushesWithin[0] = 5000
	stats := func(flushTime time.Duration, within map[int]int64) sqlite.Stats {
		s := before
		s.Writes += 3000
		s.Commits += 1200
		s.FlushTime += flushTime
		for i, n := range within {
			s.FlushesWithin[i] += n
			s.Flushes += n
		}
		return s
	}
	last := len(sqlite.FlushBounds)
	for _, c := range []struct {
		name   string
		after  sqlite.Stats
		want   writerFigures
		phrase string
	}{
		{"p99 in the 2.5 ms bucket", stats(time.Second, map[int]int64{4: 985, 6: 10, 8: 5}),
			writerFigures{Writes: 3000, Commits: 1200, Flushes: 1000, MeanFlushMs: 1, FlushP99: &percentile{Pct: 99, WithinMs: 2.5}},
			"3000 writes in 1200 commits and 1000 flushes of the log (3.0 writes per flush, 1.00 ms per flush, 99 % within 2.5 ms)"},
		{"exactly 99 % in the first bucket", stats(10*time.Millisecond, map[int]int64{0: 99, 3: 1}),
			writerFigures{Writes: 3000, Commits: 1200, Flushes: 100, MeanFlushMs: 0.1, FlushP99: &percentile{Pct: 99, WithinMs: 0.025}},
			"(30.0 writes per flush, 0.10 ms per flush, 99 % within 0.025 ms)"},
		{"over the last bound", stats(10*time.Second, map[int]int64{3: 98, last: 2}),
			writerFigures{Writes: 3000, Commits: 1200, Flushes: 100, MeanFlushMs: 100, FlushP99: &percentile{Pct: 99, OverMs: 1000}},
			"(30.0 writes per flush, 100.00 ms per flush, more than 1 % over 1000 ms)"},
		{"too few to tell", stats(99*time.Millisecond, map[int]int64{5: 99}),
			writerFigures{Writes: 3000, Commits: 1200, Flushes: 99, MeanFlushMs: 1},
			"(30.3 writes per flush, 1.00 ms per flush)"},
	} {
		got := writerDelta(before, c.after)
		line := got.describe()
		if got.FlushP99 == nil != (c.want.FlushP99 == nil) || got.FlushP99 != nil && *got.FlushP99 != *c.want.FlushP99 {
			t.Errorf("%s: flush p99 %+v, want %+v", c.name, got.FlushP99, c.want.FlushP99)
		}
		got.FlushP99, c.want.FlushP99 = nil, nil
		if *got != c.want {
			t.Errorf("%s: %+v, want %+v", c.name, *got, c.want)
		}
		if !strings.HasSuffix(line, c.phrase) {
			t.Errorf("%s: %q, want it to end in %q", c.name, line, c.phrase)
		}
	}
}
