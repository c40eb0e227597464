package main

import (
	"io"
	"log/slog"
	"runtime"
	"testing"
)

// The embedded store gets one scheduler processor more than the runtime
// chose, once however often servers start, and none when the environment
// sets GOMAXPROCS (as the runtime reads it).
func TestSpareProcForFlushes(t *testing.T) {
	if procsAtStart < runtime.NumCPU() {
		t.Skipf("GOMAXPROCS %d is below the %d CPUs here (a quota, or GOMAXPROCS set): otpd adds no processor then", procsAtStart, runtime.NumCPU())
	}
	prev := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(prev); spareProcs.Store(0) })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, env := range []string{"", "0", "auto"} { // what the runtime ignores
		t.Setenv("GOMAXPROCS", env)
		runtime.GOMAXPROCS(procsAtStart)
		spareProcs.Store(0)
		for range 2 {
			spareProcForFlushes(log)
			if got := runtime.GOMAXPROCS(0); got != procsAtStart+1 {
				t.Fatalf("GOMAXPROCS=%q: GOMAXPROCS %d, want %d", env, got, procsAtStart+1)
			}
		}
	}
	t.Setenv("GOMAXPROCS", "1")
	runtime.GOMAXPROCS(procsAtStart)
	spareProcs.Store(0)
	spareProcForFlushes(log)
	if got := runtime.GOMAXPROCS(0); got != procsAtStart {
		t.Fatalf("with GOMAXPROCS set: GOMAXPROCS %d, want it left at %d", got, procsAtStart)
	}
}
