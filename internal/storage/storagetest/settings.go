package storagetest

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/otpd/otpd/internal/storage"
)

// keyCheck calls s.KeyCheck, fails the test on an error and checks that
// it says it recorded check when, and only when, it holds check afterwards
// and wantRecorded.
func keyCheck(t *testing.T, s storage.Store, check string, replace, wantRecorded bool) string {
	t.Helper()
	held, recorded, err := s.KeyCheck(t.Context(), check, replace)
	if err != nil {
		t.Fatalf("KeyCheck(%q, %v): %v", check, replace, err)
	}
	if recorded != wantRecorded {
		t.Errorf("KeyCheck(%q, %v): recorded %v, want %v", check, replace, recorded, wantRecorded)
	}
	return held
}

// heldKeyCheck calls s.HeldKeyCheck and fails the test on an error.
func heldKeyCheck(t *testing.T, s storage.Store) string {
	t.Helper()
	held, err := s.HeldKeyCheck(t.Context())
	if err != nil {
		t.Fatalf("HeldKeyCheck: %v", err)
	}
	return held
}

var keyCheckTests = []test{
	{"HeldIsReadOnly", func(t *testing.T, s storage.Store) {
		if got := heldKeyCheck(t, s); got != "" {
			t.Errorf("HeldKeyCheck on an empty store = %q, want \"\"", got)
		}
		if got := heldKeyCheck(t, s); got != "" {
			t.Errorf("HeldKeyCheck again = %q: the first call recorded something", got)
		}
		keyCheck(t, s, "check-1", false, true)
		if got := heldKeyCheck(t, s); got != "check-1" {
			t.Errorf("HeldKeyCheck after KeyCheck = %q, want check-1", got)
		}
		keyCheck(t, s, "check-2", true, true)
		if got := heldKeyCheck(t, s); got != "check-2" {
			t.Errorf("HeldKeyCheck after a replacement = %q, want check-2", got)
		}
	}},
	{"TheFirstIsKept", func(t *testing.T, s storage.Store) {
		if got := keyCheck(t, s, "check-1", false, true); got != "check-1" {
			t.Errorf("KeyCheck on an empty store = %q, want the check given, check-1", got)
		}
		if got := keyCheck(t, s, "check-1", false, false); got != "check-1" {
			t.Errorf("KeyCheck with the same check = %q, want check-1", got)
		}
		if got := keyCheck(t, s, "check-2", false, false); got != "check-1" {
			t.Errorf("KeyCheck with another check = %q, want the first, check-1", got)
		}
	}},
	{"ReplaceReplaces", func(t *testing.T, s storage.Store) {
		keyCheck(t, s, "check-1", false, true)
		if got := keyCheck(t, s, "check-2", true, true); got != "check-2" {
			t.Errorf("KeyCheck with replace = %q, want the new check, check-2", got)
		}
		if got := keyCheck(t, s, "check-3", false, false); got != "check-2" {
			t.Errorf("KeyCheck after a replace = %q, want the replacement, check-2", got)
		}
	}},
	{"ReplaceOnAnEmptyStore", func(t *testing.T, s storage.Store) {
		if got := keyCheck(t, s, "check-1", true, true); got != "check-1" {
			t.Errorf("KeyCheck with replace on an empty store = %q, want check-1", got)
		}
	}},
}

// keyCheckSharedTests run on two handles on one database: servers starting
// at once on a new store.
var keyCheckSharedTests = []sharedTest{
	{"OneCheckWinsAcrossHandles", func(t *testing.T, a, b storage.Store) {
		const n = 8
		held := make([]string, 2*n)
		var (
			wg       sync.WaitGroup
			recorded atomic.Int32
		)
		for i := range held {
			s := a
			if i%2 == 1 {
				s = b
			}
			wg.Go(func() {
				h, r, err := s.KeyCheck(t.Context(), "check-"+string(rune('a'+i)), false)
				if err != nil {
					t.Errorf("KeyCheck %d: %v", i, err)
				}
				if r {
					recorded.Add(1)
				}
				held[i] = h
			})
		}
		wg.Wait()
		for i, h := range held {
			if h != held[0] || h == "" {
				t.Fatalf("concurrent KeyChecks returned %q and %q (call %d): want one check for all", held[0], h, i)
			}
		}
		if n := recorded.Load(); n != 1 {
			t.Errorf("%d concurrent KeyChecks said they recorded their check, want 1", n)
		}
		if got := keyCheck(t, b, "later", false, false); got != held[0] {
			t.Errorf("KeyCheck on b afterwards = %q, want the winner, %q", got, held[0])
		}
	}},
}
