package main

import (
	"io"
	"log/slog"
	"runtime"
	"testing"
)

// The embedded store gets one scheduler processor more than the runtime
// chose, once however often servers start, and none when the environment
// sets GOMAXPROCS.
func TestSpareProcForFlushes(t *testing.T) {
	t.Cleanup(func() { runtime.GOMAXPROCS(procsAtStart) })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	t.Setenv("GOMAXPROCS", "")
	runtime.GOMAXPROCS(procsAtStart)
	for range 2 {
		spareProcForFlushes(log)
		if got := runtime.GOMAXPROCS(0); got != procsAtStart+1 {
			t.Fatalf("GOMAXPROCS %d, want %d", got, procsAtStart+1)
		}
	}
	t.Setenv("GOMAXPROCS", "1")
	runtime.GOMAXPROCS(procsAtStart)
	spareProcForFlushes(log)
	if got := runtime.GOMAXPROCS(0); got != procsAtStart {
		t.Fatalf("with GOMAXPROCS set: GOMAXPROCS %d, want it left at %d", got, procsAtStart)
	}
}
