package main

import (
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
)

// procsAtStart is GOMAXPROCS as the runtime set it at start-up: the number
// of CPUs, or less under a CPU quota (rounded up, at least 2), or the
// GOMAXPROCS environment variable.
var procsAtStart = runtime.GOMAXPROCS(0)

// spareProcs is the GOMAXPROCS that spareProcForFlushes set, 0 until it
// did.
var spareProcs atomic.Int32

// spareProcForFlushes gives Go's scheduler one processor (P) more than
// procsAtStart, for the embedded store's flushes of its log, unless the
// GOMAXPROCS environment variable sets the number or a CPU quota (or
// anything else) holds procsAtStart below the machine's CPUs.
//
// A flush is an fdatasync, a system call that blocks its thread for 0.1 to
// 1 ms, thousands of times a second under load. While a thread is in a
// system call its P stays taken until the runtime's monitor hands it to
// another thread, which takes up to some 100 µs: meanwhile a core sits
// idle while requests wait to run. With one P more than cores, the others
// keep every core busy while one waits for the disk. Measured on 2 CPUs
// (docs/performance.md): a flush simulated by a 150 µs system call that
// uses no CPU cost verifications 35 % of their throughput, the same wait
// outside a system call nothing, and the spare P brought back 22 to 35 %.
//
// Under a quota the extra P would let the process run past the quota in
// bursts, which the kernel answers by throttling it for the rest of its
// period: a worse stall than the one it saves. Setting GOMAXPROCS, here or
// in the environment, stops the runtime from following later changes of
// the CPU limit, which is why a quota leaves it alone.
func spareProcForFlushes(log *slog.Logger) {
	if gomaxprocsInEnv() || procsAtStart < runtime.NumCPU() || runtime.GOMAXPROCS(0) == int(spareProcs.Load()) {
		return
	}
	runtime.GOMAXPROCS(procsAtStart + 1)
	spareProcs.Store(int32(procsAtStart + 1))
	log.Info("one scheduler processor more than CPUs, for the embedded store's flushes", "gomaxprocs", procsAtStart+1, "cpus", runtime.NumCPU())
}

// gomaxprocsInEnv reports whether the GOMAXPROCS environment variable sets
// the number, as the runtime reads it: a positive integer.
func gomaxprocsInEnv() bool {
	n, err := strconv.ParseInt(os.Getenv("GOMAXPROCS"), 10, 32)
	return err == nil && n > 0
}
