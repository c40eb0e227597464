package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"
)

// otpd flush-test flushes in the directory given, with or without busy
// cores, and reports what it measured.
func TestFlushTestCommand(t *testing.T) {
	procs := runtime.GOMAXPROCS(0)
	for _, busy := range []string{"0", "1"} {
		var out bytes.Buffer
		if err := runFlushTest([]string{"--data-dir", t.TempDir(), "--size", "8192", "--duration", "150ms", "--busy", busy}, &out); err != nil {
			t.Fatal(err)
		}
		want := `^flush-test: 8.0 KiB written, then flushed, [1-9][0-9]* times \(` +
			map[string]string{"0": "the cores otherwise idle", "1": "1 of \\d+ cores kept busy"}[busy] +
			`\): mean [0-9.]+ ms, p50 [0-9.]+ ms, p90 [0-9.]+ ms, p99 [0-9.]+ ms, p99.9 [0-9.]+ ms, max [0-9.]+ ms\n$`
		if !regexp.MustCompile(want).MatchString(out.String()) {
			t.Errorf("--busy %s: %q, want it to match %s", busy, out.String(), want)
		}
	}
	if got := runtime.GOMAXPROCS(0); got != procs {
		t.Errorf("GOMAXPROCS %d after the busy cores stopped, want %d as before", got, procs)
	}
}

func TestFlushTestFlagErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for args, want := range map[string]string{
		"--size 100":                             "--size 100: must be 4096 to 16777216 bytes",
		"--size 16777217":                        "--size 16777217: must be",
		"--duration 0s":                          "--duration 0s: must be positive",
		"--duration 11m":                         "--duration 11m0s: must be positive and at most 10m0s",
		"--busy 1000":                            "--busy 1000: must be 0 to",
		"--busy -1":                              "--busy -1: must be 0 to",
		"--data-dir /nonexistent-otpd-flush-dir": "no such file or directory",
		"--data-dir " + file:                     "not a directory",
	} {
		err := runFlushTest(strings.Fields(args), &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one containing %q", args, err, want)
		}
	}
}

// The percentiles are by the nearest rank, as the bench's.
func TestDescribeFlushes(t *testing.T) {
	flushes := make([]time.Duration, 1000)
	for i := range flushes {
		flushes[i] = time.Duration(1000-i) * time.Microsecond // 1 µs to 1 ms, unsorted
	}
	got := describeFlushes(flushes, 40<<10, 0)
	for _, want := range []string{"40.0 KiB written, then flushed, 1000 times", "mean 0.500 ms", "p50 0.500 ms", "p90 0.900 ms", "p99 0.990 ms", "p99.9 0.999 ms", "max 1.000 ms"} {
		if !strings.Contains(got, want) {
			t.Errorf("%q lacks %q", got, want)
		}
	}
	if got := describeFlushes(nil, 4096, 0); got != "flush-test: no flush finished" {
		t.Errorf("no flushes: %q", got)
	}
	// Ten: the nearest rank of p99 and p99.9 is the tenth, of p50 the fifth.
	ten := []time.Duration{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}
	for i := range ten {
		ten[i] *= time.Millisecond
	}
	got = describeFlushes(ten, 4096, 0)
	for _, want := range []string{"p50 5.000 ms", "p90 9.000 ms", "p99 10.000 ms", "p99.9 10.000 ms"} {
		if !strings.Contains(got, want) {
			t.Errorf("%q lacks %q", got, want)
		}
	}
}
