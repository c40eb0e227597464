package main

import (
	"log/slog"
	"os"
	"runtime"
)

// procsAtStart is GOMAXPROCS as the runtime set it at start-up: the CPUs
// otpd may use (its cgroup's limit, if lower), or the GOMAXPROCS
// environment variable.
var procsAtStart = runtime.GOMAXPROCS(0)

// spareProcForFlushes gives Go's scheduler one processor (P) more than
// procsAtStart, for the embedded store's flushes of its log, unless the
// GOMAXPROCS environment variable sets the number.
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
// Setting GOMAXPROCS stops the runtime from following later changes of the
// CPU limit; an operator who needs that sets GOMAXPROCS in the environment.
func spareProcForFlushes(log *slog.Logger) {
	if os.Getenv("GOMAXPROCS") != "" || runtime.GOMAXPROCS(0) == procsAtStart+1 {
		return
	}
	runtime.GOMAXPROCS(procsAtStart + 1)
	log.Info("one scheduler processor more than CPUs, for the embedded store's flushes", "gomaxprocs", procsAtStart+1, "cpus", procsAtStart)
}
