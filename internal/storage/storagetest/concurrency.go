package storagetest

import (
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpd/otpd/internal/storage"
)

// race runs n goroutines that all call f (with their index) as close to the
// same moment as possible, and waits for them.
func race(n int, f func(i int)) {
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			f(i)
		})
	}
	close(start)
	wg.Wait()
}

// handle returns the handle goroutine i uses: a and b in turn.
func handle(i int, a, b storage.Store) storage.Store {
	if i%2 == 0 {
		return a
	}
	return b
}

// tally counts the outcomes of concurrent verifications.
type tally struct {
	mu sync.Mutex
	n  map[storage.Outcome]int
}

// verify runs v on s from a goroutine of race and counts its outcome.
func (tl *tally) verify(t *testing.T, s storage.Store, v storage.Verification) {
	got, err := s.VerifyCode(t.Context(), v)
	if err != nil {
		t.Errorf("VerifyCode(%+v): %v", v.Key, err)
		return
	}
	tl.mu.Lock()
	defer tl.mu.Unlock()
	if tl.n == nil {
		tl.n = map[storage.Outcome]int{}
	}
	tl.n[got]++
}

// expect checks the counts.
func (tl *tally) expect(t *testing.T, what string, want map[storage.Outcome]int) {
	t.Helper()
	if !maps.Equal(tl.n, want) {
		t.Errorf("%s: outcomes %v, want %v", what, tl.n, want)
	}
}

var concurrencyTests = []sharedTest{
	{"WrongGuessesNeverExceedAllowedAttempts", func(t *testing.T, a, b storage.Store) {
		c := newCode(createApp(t, a, 1), dest1, "ref", "123456")
		c.AllowedAttempts = 3
		putCode(t, a, c)
		var tl tally
		race(64, func(i int) { tl.verify(t, handle(i, a, b), attempt(c, "000000", base)) })
		tl.expect(t, "64 concurrent wrong guesses, 3 allowed", map[storage.Outcome]int{storage.OutcomeWrong: 3, storage.OutcomeExhausted: 61})
	}},
	{"RightCodeIsValidExactlyOnce", func(t *testing.T, a, b storage.Store) {
		app := createApp(t, a, 1)
		const codes = 8
		var tl tally
		for j := range codes {
			putCode(t, a, newCode(app, dest1, fmt.Sprintf("ref-%d", j), "123456"))
		}
		// Goroutine i verifies every code, starting with code i%8: each
		// code is verified by four goroutines at first, then by the others.
		race(32, func(i int) {
			for j := range codes {
				c := newCode(app, dest1, fmt.Sprintf("ref-%d", (i+j)%codes), "123456")
				tl.verify(t, handle(i, a, b), attempt(c, "123456", base))
			}
		})
		tl.expect(t, "32 concurrent right codes on each of 8 codes", map[storage.Outcome]int{storage.OutcomeValid: codes, storage.OutcomeConsumed: 31 * codes})
	}},
	{"FailureBudgetIsNeverOverspent", func(t *testing.T, a, b storage.Store) {
		app := createApp(t, a, 1)
		var codes []storage.Code
		for i := range 64 {
			c := newCode(app, dest1, fmt.Sprintf("ref-%d", i), "123456")
			putCode(t, a, c)
			codes = append(codes, c)
		}
		budget := storage.FailureBudget{Limit: 5, Window: time.Hour}
		var tl tally
		// Each request read its clock before it waited its turn, so they
		// reach the store a few milliseconds apart, in no order: a failure
		// stamped after a request's now counts against it too.
		race(64, func(i int) {
			now := base.Add(time.Duration(i%8) * time.Millisecond)
			tl.verify(t, handle(i, a, b), withBudget(attempt(codes[i], "000000", now), budget))
		})
		tl.expect(t, "64 concurrent wrong guesses on 64 codes, budget 5", map[storage.Outcome]int{storage.OutcomeWrong: 5, storage.OutcomeThrottled: 59})
	}},
	{"SendIsClaimedExactlyOnce", func(t *testing.T, a, b storage.Store) {
		app := createApp(t, a, 1)
		const keys = 16
		var (
			mu      sync.Mutex
			claimed = map[string]int{}
		)
		// Goroutine i claims every key, starting with key i%16: each key
		// is claimed by two goroutines at first, then by the others.
		race(32, func(i int) {
			for j := range keys {
				key := fmt.Sprintf("inv-%d", (i+j)%keys)
				result, ok, err := handle(i, a, b).ClaimSend(t.Context(), sendClaim(app, key, base))
				if err != nil || result != nil {
					t.Errorf("ClaimSend(%s) = %q, %v, %v; want a nil result and no error", key, result, ok, err)
				}
				if ok {
					mu.Lock()
					claimed[key]++
					mu.Unlock()
				}
			}
		})
		for j := range keys {
			if key := fmt.Sprintf("inv-%d", j); claimed[key] != 1 {
				t.Errorf("32 concurrent claims of send %s: claimed %d times, want once", key, claimed[key])
			}
		}
	}},
	{"ReplacedCodeNeverVerifies", func(t *testing.T, a, b storage.Store) {
		// One writer replaces the code again and again, on each handle in
		// turn, and after each replacement waits for the verifiers, on
		// both handles, to try the code it replaced, which must never
		// verify, and the newest code, which may.
		app := createApp(t, a, 1)
		budget := storage.FailureBudget{Limit: 1 << 20, Window: time.Hour} // never throttles
		const puts, triesEach = 50, 8
		var (
			mu     sync.Mutex
			stored []storage.Code // in the order RecordSend returned
			values []string
			tried  = map[int]int{} // by how many codes were stored when tried
			done   = make(chan struct{})
		)
		put := func(k int) {
			value := fmt.Sprintf("%06d", 100000+k)
			c := newCode(app, dest1, "ref", value)
			c.AllowedAttempts = 10_000 // the tries of replaced codes never exhaust it
			putCode(t, handle(k, a, b), c)
			mu.Lock()
			stored, values = append(stored, c), append(values, value)
			mu.Unlock()
		}
		triedSince := func(n int) int {
			mu.Lock()
			defer mu.Unlock()
			return tried[n]
		}
		put(0)
		put(1)
		var valid atomic.Int64
		race(9, func(i int) {
			if i == 0 {
				defer close(done)
				for k := 2; k < puts; k++ {
					put(k)
					for triedSince(k+1) < triesEach && !t.Failed() {
						time.Sleep(50 * time.Microsecond)
					}
				}
				return
			}
			s := handle(i, a, b)
			for {
				select {
				case <-done:
					return
				default:
				}
				mu.Lock()
				n := len(stored)
				replaced, newest, staleValue, newestValue := stored[n-2], stored[n-1], values[n-2], values[n-1]
				mu.Unlock()
				if verify(t, s, withBudget(attempt(replaced, staleValue, base), budget)) == storage.OutcomeValid {
					t.Errorf("code %s verified after the code that replaced it was stored", staleValue)
				}
				if verify(t, s, withBudget(attempt(newest, newestValue, base), budget)) == storage.OutcomeValid {
					valid.Add(1)
				}
				mu.Lock()
				tried[n]++
				mu.Unlock()
			}
		})
		t.Logf("%d codes replaced, each tried at least %d times after; %d newest codes verified", puts-2, triesEach, valid.Load())
	}},
	{"DeleteAppRacingSendsAndVerifications", func(t *testing.T, a, b storage.Store) {
		// Codes of an application are stored and verified, on both
		// handles, while it is deleted: nothing fails but a RecordSend
		// that finds it gone, and once it is deleted and created again
		// under another generation, none of its codes verifies and no
		// failure of it counts.
		app := createApp(t, a, 1)
		code := func(i int) storage.Code {
			c := newCode(app, fmt.Sprintf("+1555000%04d", i%4), fmt.Sprintf("ref-%d", i%8), "123456")
			c.AllowedAttempts = 5
			return c
		}
		for i := range 8 {
			putCode(t, a, code(i))
		}
		budget := storage.FailureBudget{Limit: 1000, Window: time.Hour}
		race(25, func(i int) {
			if i == 24 {
				if _, err := b.DeleteApp(t.Context(), app.ID); err != nil {
					t.Errorf("DeleteApp: %v", err)
				}
				return
			}
			s := handle(i, a, b)
			for j := range 20 {
				c := code(i + j)
				if i%3 == 0 {
					if err := s.RecordSend(t.Context(), storage.SendRecord{Code: &c}); err != nil && !errors.Is(err, storage.ErrNotFound) {
						t.Errorf("RecordSend during DeleteApp: %v", err)
					}
					continue
				}
				value := "000000" // a wrong guess, counted against the budget
				if j%4 == 0 {
					value = "123456"
				}
				if _, err := s.VerifyCode(t.Context(), withBudget(attempt(c, value, base), budget)); err != nil {
					t.Errorf("VerifyCode during DeleteApp: %v", err)
				}
			}
		})
		again := newApp(1)
		again.Generation = "1-b"
		if err := a.CreateApp(t.Context(), again); err != nil {
			t.Fatalf("CreateApp again: %v", err)
		}
		for i := range 8 {
			c := code(i)
			for _, s := range []storage.Store{a, b} {
				expectVerify(t, s, "a code of the deleted app", attempt(c, "123456", base), storage.OutcomeUnknown)
				underNew := attempt(c, "123456", base)
				underNew.AppGeneration = again.Generation
				expectVerify(t, s, "a code of the deleted app, under the new generation", underNew, storage.OutcomeUnknown)
			}
			if i < 4 {
				expectLockout(t, b, "a destination of the deleted app", again, c.Key.Destination, base, storage.FailureBudget{Limit: 1, Window: time.Hour}, time.Time{})
			}
		}
	}},
	{"RecordSendAndVerifyCodeNeverFail", func(t *testing.T, a, b storage.Store) {
		app := createApp(t, a, 1)
		putCode(t, a, newCode(app, dest1, "ref", "100000"))
		race(32, func(i int) {
			s := handle(i/2, a, b)
			for j := range 10 {
				code := fmt.Sprintf("1%05d", (i*10+j)%7)
				c := newCode(app, dest1, "ref", code)
				if i%2 == 0 {
					if err := s.RecordSend(t.Context(), storage.SendRecord{Code: &c}); err != nil {
						t.Errorf("RecordSend: %v", err)
					}
					continue
				}
				got, err := s.VerifyCode(t.Context(), attempt(c, code, base))
				if err != nil {
					t.Errorf("VerifyCode: %v", err)
					continue
				}
				switch got {
				case storage.OutcomeValid, storage.OutcomeWrong, storage.OutcomeConsumed, storage.OutcomeExhausted:
				default:
					t.Errorf("VerifyCode of a live key = %q, want valid, wrong, consumed or exhausted", got)
				}
			}
		})
		c := newCode(app, dest1, "ref", "999999")
		putCode(t, b, c)
		expectVerify(t, a, "a code put after the race", attempt(c, "999999", base), storage.OutcomeValid)
	}},
}
