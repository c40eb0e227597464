package storagetest

import (
	"sync"
	"testing"

	"github.com/otpd/otpd/internal/storage"
)

// keyCheck calls s.KeyCheck and fails the test on an error.
func keyCheck(t *testing.T, s storage.Store, check string, replace bool) string {
	t.Helper()
	held, err := s.KeyCheck(t.Context(), check, replace)
	if err != nil {
		t.Fatalf("KeyCheck(%q, %v): %v", check, replace, err)
	}
	return held
}

var keyCheckTests = []test{
	{"TheFirstIsKept", func(t *testing.T, s storage.Store) {
		if got := keyCheck(t, s, "check-1", false); got != "check-1" {
			t.Errorf("KeyCheck on an empty store = %q, want the check given, check-1", got)
		}
		if got := keyCheck(t, s, "check-2", false); got != "check-1" {
			t.Errorf("KeyCheck with another check = %q, want the first, check-1", got)
		}
	}},
	{"ReplaceReplaces", func(t *testing.T, s storage.Store) {
		keyCheck(t, s, "check-1", false)
		if got := keyCheck(t, s, "check-2", true); got != "check-2" {
			t.Errorf("KeyCheck with replace = %q, want the new check, check-2", got)
		}
		if got := keyCheck(t, s, "check-3", false); got != "check-2" {
			t.Errorf("KeyCheck after a replace = %q, want the replacement, check-2", got)
		}
	}},
	{"ReplaceOnAnEmptyStore", func(t *testing.T, s storage.Store) {
		if got := keyCheck(t, s, "check-1", true); got != "check-1" {
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
		var wg sync.WaitGroup
		for i := range held {
			s := a
			if i%2 == 1 {
				s = b
			}
			wg.Go(func() {
				var err error
				if held[i], err = s.KeyCheck(t.Context(), "check-"+string(rune('a'+i)), false); err != nil {
					t.Errorf("KeyCheck %d: %v", i, err)
				}
			})
		}
		wg.Wait()
		for i, h := range held {
			if h != held[0] || h == "" {
				t.Fatalf("concurrent KeyChecks returned %q and %q (call %d): want one check for all", held[0], h, i)
			}
		}
		if got := keyCheck(t, b, "later", false); got != held[0] {
			t.Errorf("KeyCheck on b afterwards = %q, want the winner, %q", got, held[0])
		}
	}},
}
