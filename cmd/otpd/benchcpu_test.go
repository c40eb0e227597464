package main

import (
	"bytes"
	"runtime"
	"strings"
	"testing"
)

func TestParseCPUTimes(t *testing.T) {
	got, err := parseCPUTimes("cpu  183182 7 37112 88147 10692 3 8823 32508 0 0\ncpu0 92324 0 18671 45835 5443 0 2853 15339 0 0\n")
	want := cpuTimes{user: 183182, nice: 7, system: 37112, idle: 88147, iowait: 10692, irq: 3, softirq: 8823, steal: 32508}
	if err != nil || got != want {
		t.Errorf("got %+v, %v; want %+v", got, err, want)
	}
	// A kernel without the steal column.
	if got, err := parseCPUTimes("cpu 1 2 3 4 5 6 7\n"); err != nil || got.softirq != 7 || got.steal != 0 {
		t.Errorf("seven columns: %+v, %v", got, err)
	}
	for _, bad := range []string{"", "intr 1 2 3 4 5 6 7 8", "cpu 1 2 3", "cpu 1 2 x 4 5 6 7 8"} {
		if _, err := parseCPUTimes(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestMachineDelta(t *testing.T) {
	before := cpuTimes{user: 1000, nice: 10, system: 500, idle: 2000, iowait: 100, irq: 5, softirq: 50, steal: 7}
	// 200 ticks: user 100+20, system 20+10+10, idle 20+10, steal 10.
	after := cpuTimes{user: 1100, nice: 30, system: 520, idle: 2020, iowait: 110, irq: 15, softirq: 60, steal: 17}
	m := machineDelta(before, after)
	want := machineFigures{Busy: 80, User: 60, System: 20, Idle: 15, IOWait: 5, Steal: 5}
	if m == nil || *m != want {
		t.Fatalf("got %+v, want %+v", m, want)
	}
	if s := m.describe(); s != "CPUs busy 80.0 % (user 60.0, system 20.0), idle 15.0 % (of which waiting for the disk 5.0), taken by the host 5.0 %" {
		t.Errorf("describe: %q", s)
	}
	if m := machineDelta(after, after); m != nil {
		t.Errorf("no time passed: %+v", m)
	}
	if m := machineDelta(after, before); m != nil {
		t.Errorf("counters went back: %+v", m)
	}
}

// Every run and its ceiling run say how the machine's CPUs spent them, and
// the report prints both.
func TestBenchStartMachine(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the machine's CPU times come from Linux's /proc/stat")
	}
	rows := runBenchJSON(t, "--start", "--workload", "send", "--duration", "1s", "--concurrency", "4")
	r := rows[0]
	for name, m := range map[string]*machineFigures{"run": r.Machine, "ceiling run": r.CeilingMachine} {
		if m == nil {
			t.Fatalf("%s: no machine figures", name)
		}
		// Generator and server kept at least one CPU of those here busy
		// for some of the second. (How the shares add up is
		// TestMachineDelta's.)
		if m.Busy <= 0 || m.IOWait > m.Idle {
			t.Errorf("%s: %+v", name, *m)
		}
	}
	var out bytes.Buffer
	printRunReports(&out, rows)
	for _, want := range []string{"the machine during send c=4: CPUs busy ", "the machine during the ceiling run of send c=4: CPUs busy "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report %q lacks %q", out.String(), want)
		}
	}
}
