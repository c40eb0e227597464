package storagetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/otpd/otpd/internal/storage"
)

const (
	dest1 = "+15550000001"
	dest2 = "+15550000002"
)

// withBudget returns v under budget b.
func withBudget(v storage.Verification, b storage.FailureBudget) storage.Verification {
	v.Budget = b
	return v
}

var verifyTests = []test{
	{"RightCodeIsValid", func(t *testing.T, s storage.Store) {
		c := newCode(createApp(t, s, 1), dest1, "ref", "123456")
		putCode(t, s, c)
		expectVerify(t, s, "right code", attempt(c, "123456", base), storage.OutcomeValid)
	}},
	{"ValidConsumesTheCode", func(t *testing.T, s storage.Store) {
		c := newCode(createApp(t, s, 1), dest1, "ref", "123456")
		putCode(t, s, c)
		expectVerify(t, s, "right code", attempt(c, "123456", base), storage.OutcomeValid)
		expectVerify(t, s, "right code again", attempt(c, "123456", base.Add(time.Second)), storage.OutcomeConsumed)
		expectVerify(t, s, "wrong code after", attempt(c, "000000", base.Add(2*time.Second)), storage.OutcomeConsumed)
	}},
	{"WrongCodeIsWrongAndCountsOneAttempt", func(t *testing.T, s storage.Store) {
		c := newCode(createApp(t, s, 1), dest1, "ref", "123456")
		c.AllowedAttempts = 2
		putCode(t, s, c)
		expectVerify(t, s, "wrong code", attempt(c, "654321", base), storage.OutcomeWrong)
		expectVerify(t, s, "right code after one wrong of two allowed", attempt(c, "123456", base.Add(time.Second)), storage.OutcomeValid)
	}},
	{"ExpiredAtExactlyExpiresAt", func(t *testing.T, s storage.Store) {
		app := createApp(t, s, 1)
		early := newCode(app, dest1, "early", "123456")
		onTime := newCode(app, dest1, "on-time", "123456")
		putCode(t, s, early)
		putCode(t, s, onTime)
		expectVerify(t, s, "right code 1ms before ExpiresAt", attempt(early, "123456", early.ExpiresAt.Add(-time.Millisecond)), storage.OutcomeValid)
		expectVerify(t, s, "wrong code at ExpiresAt", attempt(onTime, "000000", onTime.ExpiresAt), storage.OutcomeExpired)
		expectVerify(t, s, "right code at ExpiresAt", attempt(onTime, "123456", onTime.ExpiresAt), storage.OutcomeExpired)
		expectVerify(t, s, "right code after ExpiresAt", attempt(onTime, "123456", onTime.ExpiresAt.Add(time.Hour)), storage.OutcomeExpired)
	}},
	{"ExhaustedAfterAllowedAttemptsWrongs", func(t *testing.T, s storage.Store) {
		c := newCode(createApp(t, s, 1), dest1, "ref", "123456")
		putCode(t, s, c)
		wrongGuesses(t, s, c, base, c.AllowedAttempts)
		expectVerify(t, s, "right code after AllowedAttempts wrongs", attempt(c, "123456", base.Add(time.Minute)), storage.OutcomeExhausted)
		expectVerify(t, s, "wrong code after AllowedAttempts wrongs", attempt(c, "000000", base.Add(time.Minute)), storage.OutcomeExhausted)
	}},
	{"UnknownForMissingKey", func(t *testing.T, s storage.Store) {
		app := createApp(t, s, 1)
		c := newCode(app, dest1, "ref", "123456")
		expectVerify(t, s, "no code at all", attempt(c, "123456", base), storage.OutcomeUnknown)
		putCode(t, s, c)
		other := newCode(app, dest1, "other-ref", "123456")
		expectVerify(t, s, "another ReferenceId", attempt(other, "123456", base), storage.OutcomeUnknown)
	}},
	{"UnknownForOtherGeneration", func(t *testing.T, s storage.Store) {
		c := newCode(createApp(t, s, 1), dest1, "ref", "123456")
		c.AllowedAttempts = 1
		putCode(t, s, c)
		stale := attempt(c, "000000", base)
		stale.AppGeneration = "another generation"
		expectVerify(t, s, "wrong code, other generation", stale, storage.OutcomeUnknown)
		stale.Matches = matcher("123456")
		expectVerify(t, s, "right code, other generation", stale, storage.OutcomeUnknown)
		expectVerify(t, s, "right code, its generation, after those attempts", attempt(c, "123456", base), storage.OutcomeValid)
	}},
	{"ThrottledBeforeConsumed", func(t *testing.T, s storage.Store) {
		app := createApp(t, s, 1)
		c := newCode(app, dest1, "ref", "123456")
		putCode(t, s, c)
		expectVerify(t, s, "right code", attempt(c, "123456", base), storage.OutcomeValid)
		other := newCode(app, dest1, "other", "123456")
		other.AllowedAttempts = 5
		putCode(t, s, other)
		wrongGuesses(t, s, other, base, 3)
		budget := storage.FailureBudget{Limit: 3, Window: time.Hour}
		expectVerify(t, s, "consumed code, budget exhausted", withBudget(attempt(c, "123456", base.Add(time.Minute)), budget), storage.OutcomeThrottled)
	}},
	{"ConsumedBeforeExpired", func(t *testing.T, s storage.Store) {
		c := newCode(createApp(t, s, 1), dest1, "ref", "123456")
		putCode(t, s, c)
		expectVerify(t, s, "right code", attempt(c, "123456", base), storage.OutcomeValid)
		expectVerify(t, s, "consumed code at ExpiresAt", attempt(c, "123456", c.ExpiresAt), storage.OutcomeConsumed)
	}},
	{"ExpiredBeforeExhausted", func(t *testing.T, s storage.Store) {
		c := newCode(createApp(t, s, 1), dest1, "ref", "123456")
		c.AllowedAttempts = 1
		putCode(t, s, c)
		wrongGuesses(t, s, c, base, 1)
		expectVerify(t, s, "exhausted code at ExpiresAt", attempt(c, "123456", c.ExpiresAt), storage.OutcomeExpired)
	}},
	{"UnknownBeforeThrottled", func(t *testing.T, s storage.Store) {
		app := createApp(t, s, 1)
		c := newCode(app, dest1, "ref", "123456")
		putCode(t, s, c)
		wrongGuesses(t, s, c, base, 3)
		budget := storage.FailureBudget{Limit: 3, Window: time.Hour}
		missing := newCode(app, dest1, "missing", "123456")
		expectVerify(t, s, "missing code, budget exhausted", withBudget(attempt(missing, "123456", base.Add(time.Minute)), budget), storage.OutcomeUnknown)
		stale := withBudget(attempt(c, "123456", base.Add(time.Minute)), budget)
		stale.AppGeneration = "another generation"
		expectVerify(t, s, "other generation, budget exhausted", stale, storage.OutcomeUnknown)
	}},
	{"OnlyValidAndWrongChangeState", func(t *testing.T, s storage.Store) {
		app := createApp(t, s, 1)
		exhausted := newCode(app, dest1, "exhausted", "123456")
		exhausted.AllowedAttempts = 1
		consumed := newCode(app, dest1, "consumed", "123456")
		expired := newCode(app, dest1, "expired", "123456")
		for _, c := range []storage.Code{exhausted, consumed, expired} {
			putCode(t, s, c)
		}
		wrongGuesses(t, s, exhausted, base, 1) // the one failure recorded
		expectVerify(t, s, "right code", attempt(consumed, "123456", base), storage.OutcomeValid)
		for i := range 3 {
			now := base.Add(time.Duration(i+1) * time.Second)
			expectVerify(t, s, "wrong code on an exhausted code", attempt(exhausted, "000000", now), storage.OutcomeExhausted)
			expectVerify(t, s, "wrong code on a consumed code", attempt(consumed, "000000", now), storage.OutcomeConsumed)
			expectVerify(t, s, "wrong code on an expired code", attempt(expired, "000000", expired.ExpiresAt), storage.OutcomeExpired)
			expectVerify(t, s, "wrong code on a missing code", attempt(newCode(app, dest1, "missing", ""), "000000", now), storage.OutcomeUnknown)
			expectVerify(t, s, "wrong code while throttled", withBudget(attempt(consumed, "000000", now), storage.FailureBudget{Limit: 1, Window: time.Hour}), storage.OutcomeThrottled)
		}
		expectLockout(t, s, "failures recorded", app, dest1, base.Add(time.Minute), storage.FailureBudget{Limit: 2, Window: time.Hour}, time.Time{})
		expectLockout(t, s, "failures recorded", app, dest1, base.Add(time.Minute), storage.FailureBudget{Limit: 1, Window: time.Hour}, base.Add(time.Hour))
	}},
}

var budgetTests = []test{
	{"ThrottledWhenTheBudgetIsExhausted", func(t *testing.T, s storage.Store) {
		c := newCode(createApp(t, s, 1), dest1, "ref", "123456")
		c.AllowedAttempts = 5
		putCode(t, s, c)
		budget := storage.FailureBudget{Limit: 3, Window: time.Hour}
		for i := range 3 {
			expectVerify(t, s, fmt.Sprintf("wrong guess %d", i+1), withBudget(attempt(c, "000000", base.Add(time.Duration(i)*time.Second)), budget), storage.OutcomeWrong)
		}
		expectVerify(t, s, "right code, budget exhausted", withBudget(attempt(c, "123456", base.Add(time.Minute)), budget), storage.OutcomeThrottled)
		expectVerify(t, s, "wrong code, budget exhausted", withBudget(attempt(c, "000000", base.Add(time.Minute)), budget), storage.OutcomeThrottled)
	}},
	{"ThrottledAcrossReferenceIDs", func(t *testing.T, s storage.Store) {
		app := createApp(t, s, 1)
		budget := storage.FailureBudget{Limit: 3, Window: time.Hour}
		var codes []storage.Code
		for _, ref := range []string{"ref-1", "ref-2", "ref-3"} {
			c := newCode(app, dest1, ref, "123456")
			putCode(t, s, c)
			codes = append(codes, c)
		}
		expectVerify(t, s, "wrong guess on ref-1", withBudget(attempt(codes[0], "000000", base), budget), storage.OutcomeWrong)
		expectVerify(t, s, "wrong guess on ref-1", withBudget(attempt(codes[0], "000000", base.Add(time.Second)), budget), storage.OutcomeWrong)
		expectVerify(t, s, "wrong guess on ref-2", withBudget(attempt(codes[1], "000000", base.Add(2*time.Second)), budget), storage.OutcomeWrong)
		expectVerify(t, s, "right code on ref-3", withBudget(attempt(codes[2], "123456", base.Add(time.Minute)), budget), storage.OutcomeThrottled)
		expectVerify(t, s, "right code on ref-1", withBudget(attempt(codes[0], "123456", base.Add(time.Minute)), budget), storage.OutcomeThrottled)
	}},
	{"ThrottledAfterAResend", func(t *testing.T, s storage.Store) {
		app := createApp(t, s, 1)
		c := newCode(app, dest1, "ref", "123456")
		c.AllowedAttempts = 5
		putCode(t, s, c)
		wrongGuesses(t, s, c, base, 3)
		resent := newCode(app, dest1, "ref", "777777")
		resent.CreatedAt = base.Add(time.Minute)
		resent.ExpiresAt = resent.CreatedAt.Add(10 * time.Minute)
		putCode(t, s, resent)
		budget := storage.FailureBudget{Limit: 3, Window: time.Hour}
		expectVerify(t, s, "right code of the resent code", withBudget(attempt(resent, "777777", base.Add(2*time.Minute)), budget), storage.OutcomeThrottled)
	}},
	{"NotThrottledOnceTheWindowHasPassed", func(t *testing.T, s storage.Store) {
		c := newCode(createApp(t, s, 1), dest1, "ref", "123456")
		c.AllowedAttempts = 5
		c.ExpiresAt = base.Add(2 * time.Hour)
		putCode(t, s, c)
		wrongGuesses(t, s, c, base, 3) // at base, base+1s, base+2s
		budget := storage.FailureBudget{Limit: 3, Window: time.Hour}
		expectVerify(t, s, "right code 1ms before the first failure leaves the window", withBudget(attempt(c, "123456", base.Add(time.Hour-time.Millisecond)), budget), storage.OutcomeThrottled)
		expectVerify(t, s, "right code as the first failure leaves the window", withBudget(attempt(c, "123456", base.Add(time.Hour)), budget), storage.OutcomeValid)
	}},
	{"WindowRolls", func(t *testing.T, s storage.Store) {
		c := newCode(createApp(t, s, 1), dest1, "ref", "123456")
		c.AllowedAttempts = 5
		c.ExpiresAt = base.Add(3 * time.Hour)
		putCode(t, s, c)
		budget := storage.FailureBudget{Limit: 3, Window: time.Hour}
		for i, at := range []time.Duration{0, 30 * time.Minute, 40 * time.Minute} {
			expectVerify(t, s, fmt.Sprintf("wrong guess %d", i+1), withBudget(attempt(c, "000000", base.Add(at)), budget), storage.OutcomeWrong)
		}
		// At base+1h the first failure has left: two remain, so one more
		// wrong guess is allowed, and then the budget is exhausted again
		// until base+30m+1h.
		expectVerify(t, s, "wrong guess once the first left", withBudget(attempt(c, "000000", base.Add(time.Hour)), budget), storage.OutcomeWrong)
		expectVerify(t, s, "right code just after", withBudget(attempt(c, "123456", base.Add(time.Hour+time.Millisecond)), budget), storage.OutcomeThrottled)
		expectVerify(t, s, "right code once the second left", withBudget(attempt(c, "123456", base.Add(90*time.Minute)), budget), storage.OutcomeValid)
	}},
}

var isolationTests = []test{
	{"ByApplication", func(t *testing.T, s storage.Store) {
		a := newCode(createApp(t, s, 1), dest1, "ref", "111111")
		b := newCode(createApp(t, s, 2), dest1, "ref", "222222")
		putCode(t, s, a)
		putCode(t, s, b)
		budget := storage.FailureBudget{Limit: 1, Window: time.Hour}
		expectVerify(t, s, "app 2's code on app 1", withBudget(attempt(a, "222222", base), budget), storage.OutcomeWrong)
		expectVerify(t, s, "app 2's code on app 2, app 1's budget exhausted", withBudget(attempt(b, "222222", base), budget), storage.OutcomeValid)
		expectVerify(t, s, "app 1's code on app 1", withBudget(attempt(a, "111111", base), budget), storage.OutcomeThrottled)
		expectVerify(t, s, "app 1's code on app 1, roomy budget", attempt(a, "111111", base), storage.OutcomeValid)
	}},
	{"ByDestination", func(t *testing.T, s storage.Store) {
		app := createApp(t, s, 1)
		a := newCode(app, dest1, "ref", "111111")
		b := newCode(app, dest2, "ref", "222222")
		putCode(t, s, a)
		putCode(t, s, b)
		budget := storage.FailureBudget{Limit: 1, Window: time.Hour}
		expectVerify(t, s, "destination 2's code on destination 1", withBudget(attempt(a, "222222", base), budget), storage.OutcomeWrong)
		expectVerify(t, s, "destination 2's code on destination 2, destination 1's budget exhausted", withBudget(attempt(b, "222222", base), budget), storage.OutcomeValid)
		expectVerify(t, s, "destination 1's code on destination 1", withBudget(attempt(a, "111111", base), budget), storage.OutcomeThrottled)
		expectVerify(t, s, "destination 1's code on destination 1, roomy budget", attempt(a, "111111", base), storage.OutcomeValid)
	}},
	{"ByReferenceID", func(t *testing.T, s storage.Store) {
		app := createApp(t, s, 1)
		a := newCode(app, dest1, "ref-a", "111111")
		a.AllowedAttempts = 1
		b := newCode(app, dest1, "ref-b", "222222")
		b.AllowedAttempts = 1
		c := newCode(app, dest1, "ref-c", "333333")
		for _, x := range []storage.Code{a, b, c} {
			putCode(t, s, x)
		}
		expectVerify(t, s, "ref-b's code on ref-a", attempt(a, "222222", base), storage.OutcomeWrong)
		expectVerify(t, s, "ref-a, exhausted", attempt(a, "111111", base), storage.OutcomeExhausted)
		expectVerify(t, s, "ref-b's code on ref-b", attempt(b, "222222", base), storage.OutcomeValid)
		expectVerify(t, s, "ref-c's code on ref-c, ref-b consumed", attempt(c, "333333", base), storage.OutcomeValid)
	}},
}

var recordSendTests = []test{
	{"StoresTheMessageRecordOutboxAndCompletionWithTheCode", func(t *testing.T, s storage.Store) {
		app := createApp(t, s, 1)
		claim := sendClaim(app, "inv-1", base)
		expectClaim(t, s, "first claim", claim, nil, true)
		c := newCode(app, dest1, "login-1", "123456")
		m := messageRecord(app.ID, dest1, 1, base)
		m.ReferenceID = c.Key.ReferenceID
		o := outboxMessage(app.ID, dest1, 1, base)
		sent := storage.SendRecord{Code: &c, Message: &m, Outbox: &o, Completion: &storage.SendCompletion{AppID: app.ID, Key: claim.Key, Result: sendResult, ExpiresAt: base.Add(10 * time.Minute)}}
		if err := s.RecordSend(t.Context(), sent); err != nil {
			t.Fatalf("RecordSend: %v", err)
		}
		expectRecords(t, "ListMessages", listMessages(t, s, storage.MessageQuery{}), m)
		if got := listOutbox(t, s, storage.OutboxQuery{}); len(got) != 1 || got[0] != o {
			t.Errorf("ListOutbox = %+v, want %+v", got, o)
		}
		expectClaim(t, s, "a retry", sendClaim(app, claim.Key, base.Add(time.Second)), sendResult, false)
		expectVerify(t, s, "the code", attempt(c, "123456", base), storage.OutcomeValid)
	}},
	{"ApplicationGoneStoresNeitherRecordNorCompletion", func(t *testing.T, s storage.Store) {
		app := createApp(t, s, 1)
		claim := sendClaim(app, "inv-1", base)
		expectClaim(t, s, "first claim", claim, nil, true)
		stale := app
		stale.Generation = "another generation"
		c := newCode(stale, dest1, "login-1", "123456")
		m := messageRecord(app.ID, dest1, 1, base)
		o := outboxMessage(app.ID, dest1, 1, base)
		sent := storage.SendRecord{Code: &c, Message: &m, Outbox: &o, Completion: &storage.SendCompletion{AppID: app.ID, Key: claim.Key, Result: sendResult, ExpiresAt: base.Add(10 * time.Minute)}}
		if err := s.RecordSend(t.Context(), sent); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("RecordSend under another generation: error %v, want %v", err, storage.ErrNotFound)
		}
		expectRecords(t, "ListMessages", listMessages(t, s, storage.MessageQuery{}))
		if got := listOutbox(t, s, storage.OutboxQuery{}); len(got) != 0 {
			t.Errorf("ListOutbox = %+v, want nothing", got)
		}
		// Still pending: a retry waits for the lease, then sends afresh.
		expectClaim(t, s, "a retry within the lease", sendClaim(app, claim.Key, base.Add(time.Second)), nil, false)
		expectVerify(t, s, "the code", attempt(newCode(app, dest1, "login-1", "123456"), "123456", base), storage.OutcomeUnknown)
	}},
	{"ReplacementStopsThePreviousCode", func(t *testing.T, s storage.Store) {
		app := createApp(t, s, 1)
		putCode(t, s, newCode(app, dest1, "ref", "111111"))
		c := newCode(app, dest1, "ref", "222222")
		putCode(t, s, c)
		expectVerify(t, s, "previous code", attempt(c, "111111", base), storage.OutcomeWrong)
		expectVerify(t, s, "new code", attempt(c, "222222", base), storage.OutcomeValid)
	}},
	{"ReplacementResetsFailedAttempts", func(t *testing.T, s storage.Store) {
		app := createApp(t, s, 1)
		old := newCode(app, dest1, "ref", "111111")
		old.AllowedAttempts = 2
		putCode(t, s, old)
		wrongGuesses(t, s, old, base, 2)
		expectVerify(t, s, "previous code, exhausted", attempt(old, "111111", base.Add(time.Minute)), storage.OutcomeExhausted)
		c := newCode(app, dest1, "ref", "222222")
		c.AllowedAttempts = 2
		putCode(t, s, c)
		expectVerify(t, s, "wrong guess on the new code", attempt(c, "000000", base.Add(time.Minute)), storage.OutcomeWrong)
		expectVerify(t, s, "new code", attempt(c, "222222", base.Add(time.Minute)), storage.OutcomeValid)
	}},
	{"ReplacementOfAConsumedCodeVerifies", func(t *testing.T, s storage.Store) {
		app := createApp(t, s, 1)
		old := newCode(app, dest1, "ref", "111111")
		putCode(t, s, old)
		expectVerify(t, s, "previous code", attempt(old, "111111", base), storage.OutcomeValid)
		c := newCode(app, dest1, "ref", "222222")
		putCode(t, s, c)
		expectVerify(t, s, "new code", attempt(c, "222222", base.Add(time.Second)), storage.OutcomeValid)
	}},
	{"ReplacementTakesTheNewExpiryAndAttempts", func(t *testing.T, s storage.Store) {
		app := createApp(t, s, 1)
		old := newCode(app, dest1, "ref", "111111")
		old.AllowedAttempts, old.ExpiresAt = 5, base.Add(time.Minute)
		putCode(t, s, old)
		c := newCode(app, dest1, "ref", "222222")
		c.AllowedAttempts, c.CreatedAt, c.ExpiresAt = 1, base.Add(30*time.Second), base.Add(10*time.Minute)
		putCode(t, s, c)
		expectVerify(t, s, "wrong guess after the previous expiry", attempt(c, "000000", base.Add(5*time.Minute)), storage.OutcomeWrong)
		expectVerify(t, s, "new code after its one allowed attempt", attempt(c, "222222", base.Add(5*time.Minute)), storage.OutcomeExhausted)
	}},
}

var lockoutTests = []test{
	{"ZeroWithoutFailures", func(t *testing.T, s storage.Store) {
		app := createApp(t, s, 1)
		expectLockout(t, s, "no failures", app, dest1, base, storage.FailureBudget{Limit: 1, Window: time.Hour}, time.Time{})
	}},
	{"ZeroBelowTheLimit", func(t *testing.T, s storage.Store) {
		app := createApp(t, s, 1)
		c := newCode(app, dest1, "ref", "123456")
		putCode(t, s, c)
		wrongGuesses(t, s, c, base, 2)
		expectLockout(t, s, "2 failures, limit 3", app, dest1, base.Add(time.Minute), storage.FailureBudget{Limit: 3, Window: time.Hour}, time.Time{})
	}},
	{"ExactTimeTheBudgetRegainsRoom", func(t *testing.T, s storage.Store) {
		app := createApp(t, s, 1)
		c := newCode(app, dest1, "ref", "123456")
		c.AllowedAttempts = 5
		putCode(t, s, c)
		for i := range 4 { // at base, +10s, +20s, +30s
			expectVerify(t, s, fmt.Sprintf("wrong guess %d", i+1), attempt(c, "000000", base.Add(time.Duration(i)*10*time.Second)), storage.OutcomeWrong)
		}
		budget := storage.FailureBudget{Limit: 3, Window: time.Hour}
		// The third newest failure, at +10s, leaves the window at +10s+1h.
		want := base.Add(10*time.Second + time.Hour)
		expectLockout(t, s, "4 failures, limit 3", app, dest1, base.Add(40*time.Second), budget, want)
		expectLockout(t, s, "1ms before that", app, dest1, want.Add(-time.Millisecond), budget, want)
		expectLockout(t, s, "at that time", app, dest1, want, budget, time.Time{})
	}},
	{"CountsOnlyTheWindow", func(t *testing.T, s storage.Store) {
		app := createApp(t, s, 1)
		c := newCode(app, dest1, "ref", "123456")
		c.ExpiresAt = base.Add(time.Hour)
		putCode(t, s, c)
		expectVerify(t, s, "wrong guess", attempt(c, "000000", base), storage.OutcomeWrong)
		expectVerify(t, s, "wrong guess", attempt(c, "000000", base.Add(time.Minute)), storage.OutcomeWrong)
		budget := storage.FailureBudget{Limit: 2, Window: time.Hour}
		expectLockout(t, s, "both failures in the window", app, dest1, base.Add(time.Hour-time.Millisecond), budget, base.Add(time.Hour))
		expectLockout(t, s, "the first failure left the window", app, dest1, base.Add(time.Hour), budget, time.Time{})
		// A failure stamped after now (by an instance whose clock runs
		// ahead) counts: the budget is spent until the first leaves.
		expectLockout(t, s, "the second failure is after now", app, dest1, base.Add(30*time.Second), budget, base.Add(time.Hour))
	}},
	{"CountsFailuresUpToTheClockSkewAhead", func(t *testing.T, s storage.Store) {
		// Failures stamped by a clock an hour ahead count only once now is
		// within storage.ClockSkew of them: a clock far off cannot lock a
		// destination out for longer than the window.
		app := createApp(t, s, 1)
		c := newCode(app, dest1, "ref", "123456")
		c.AllowedAttempts = 5
		ahead := base.Add(time.Hour)
		c.ExpiresAt = ahead.Add(time.Hour)
		putCode(t, s, c)
		wrongGuesses(t, s, c, ahead, 3)
		budget := storage.FailureBudget{Limit: 3, Window: time.Hour}
		expectLockout(t, s, "failures an hour ahead of now", app, dest1, base, budget, time.Time{})
		expectVerify(t, s, "right code, failures an hour ahead", withBudget(attempt(c, "123456", base), budget), storage.OutcomeValid)
		// wrongGuesses stamped them at ahead, ahead+1s and ahead+2s.
		third := ahead.Add(2 * time.Second)
		expectLockout(t, s, "the third failure ClockSkew ahead of now", app, dest1, third.Add(-storage.ClockSkew), budget, ahead.Add(time.Hour))
		expectLockout(t, s, "the third failure just over ClockSkew ahead", app, dest1, third.Add(-storage.ClockSkew-time.Millisecond), budget, time.Time{})
	}},
	{"ByApplicationAndDestination", func(t *testing.T, s storage.Store) {
		app := createApp(t, s, 1)
		other := createApp(t, s, 2)
		c := newCode(app, dest1, "ref", "123456")
		putCode(t, s, c)
		wrongGuesses(t, s, c, base, 1)
		budget := storage.FailureBudget{Limit: 1, Window: time.Hour}
		now := base.Add(time.Minute)
		expectLockout(t, s, "the destination that failed", app, dest1, now, budget, base.Add(time.Hour))
		expectLockout(t, s, "another destination", app, dest2, now, budget, time.Time{})
		expectLockout(t, s, "another application", other, dest1, now, budget, time.Time{})
	}},
}
