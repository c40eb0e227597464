package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// cpuTimes is the machine's CPU time since boot by state, summed over its
// CPUs, in clock ticks: the first line of Linux's /proc/stat.
type cpuTimes struct {
	user, nice, system, idle, iowait, irq, softirq, steal uint64
}

// readCPUTimes reads /proc/stat; ok is false where there is none (not
// Linux) or it cannot be read, and the report then leaves the machine out.
func readCPUTimes() (t cpuTimes, ok bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}, false
	}
	t, err = parseCPUTimes(string(b))
	return t, err == nil
}

// parseCPUTimes reads the "cpu" line of a /proc/stat. Its columns are
// user, nice, system, idle, iowait, irq, softirq, steal, then guest times
// that user and nice already include; kernels before 2.6.11 lack steal.
func parseCPUTimes(stat string) (cpuTimes, error) {
	line, _, _ := strings.Cut(stat, "\n")
	fields := strings.Fields(line)
	if len(fields) < 8 || fields[0] != "cpu" {
		return cpuTimes{}, fmt.Errorf("/proc/stat: first line %q is not the machine's cpu line", line)
	}
	var v [8]uint64
	for i := range v {
		if i+1 >= len(fields) {
			break
		}
		n, err := strconv.ParseUint(fields[i+1], 10, 64)
		if err != nil {
			return cpuTimes{}, fmt.Errorf("/proc/stat: cpu line %q: %w", line, err)
		}
		v[i] = n
	}
	return cpuTimes{user: v[0], nice: v[1], system: v[2], idle: v[3], iowait: v[4], irq: v[5], softirq: v[6], steal: v[7]}, nil
}

// machineFigures is how the machine's CPUs spent a run, in per cent of
// their time, whoever used them: the generator, otpd and anything else
// running. Busy is user (nice included) and system (interrupts included);
// Idle includes IOWait, the idle time with a disk request outstanding;
// Steal is the time a virtual machine's host gave its CPUs to others,
// which on a shared host is the usual cause of a run slower than the ones
// around it.
type machineFigures struct {
	Busy   float64 `json:"busy_pct"`
	User   float64 `json:"user_pct"`
	System float64 `json:"system_pct"`
	Idle   float64 `json:"idle_pct"`
	IOWait float64 `json:"iowait_pct"`
	Steal  float64 `json:"steal_pct"`
}

// machineDelta returns the shares between two readings, or nil if no time
// passed (the kernel counts in ticks of 10 ms or so) or a counter went
// back.
func machineDelta(before, after cpuTimes) *machineFigures {
	var d [8]uint64
	a, b := after.fields(), before.fields()
	var total uint64
	for i := range d {
		if a[i] < b[i] {
			return nil
		}
		d[i] = a[i] - b[i]
		total += d[i]
	}
	if total == 0 {
		return nil
	}
	pct := func(ticks ...uint64) float64 {
		var n uint64
		for _, t := range ticks {
			n += t
		}
		return 100 * float64(n) / float64(total)
	}
	user, nice, system, idle, iowait, irq, softirq, steal := d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]
	return &machineFigures{
		Busy: pct(user, nice, system, irq, softirq), User: pct(user, nice), System: pct(system, irq, softirq),
		Idle: pct(idle, iowait), IOWait: pct(iowait), Steal: pct(steal),
	}
}

func (t cpuTimes) fields() [8]uint64 {
	return [8]uint64{t.user, t.nice, t.system, t.idle, t.iowait, t.irq, t.softirq, t.steal}
}

func (m *machineFigures) describe() string {
	return fmt.Sprintf("CPUs busy %.1f %% (user %.1f, system %.1f), idle %.1f %% (of which waiting for the disk %.1f), taken by the host %.1f %%",
		m.Busy, m.User, m.System, m.Idle, m.IOWait, m.Steal)
}

// machineDuring returns how the machine's CPUs spent the time fn took.
func machineDuring(fn func()) *machineFigures {
	before, ok := readCPUTimes()
	fn()
	after, ok2 := readCPUTimes()
	if !ok || !ok2 {
		return nil
	}
	return machineDelta(before, after)
}
