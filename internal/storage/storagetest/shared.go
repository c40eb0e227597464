package storagetest

import (
	"testing"
	"time"

	"github.com/otpd/otpd/internal/storage"
)

// visibilityTests check that what one handle did is visible at once through
// the other.
var visibilityTests = []sharedTest{
	{"AppCreatedOnAIsVisibleOnB", func(t *testing.T, a, b storage.Store) {
		app := createApp(t, a, 1)
		got, err := b.GetApp(t.Context(), app.ID)
		if err != nil {
			t.Fatalf("GetApp on b: %v", err)
		}
		expectApp(t, "GetApp on b", got, app)
		list, err := b.ListApps(t.Context(), "", 10)
		if err != nil {
			t.Fatalf("ListApps on b: %v", err)
		}
		expectIDs(t, "ListApps on b", list, 1)
		expectErr(t, "CreateApp of the same ID on b", b.CreateApp(t.Context(), newApp(1)), storage.ErrAlreadyExists)
	}},
	{"AppDeletedOnAIsGoneOnB", func(t *testing.T, a, b storage.Store) {
		app := createApp(t, a, 1)
		c := newCode(app, dest1, "ref", "123456")
		putCode(t, a, c)
		if _, err := b.GetApp(t.Context(), app.ID); err != nil {
			t.Fatalf("GetApp on b before DeleteApp: %v", err)
		}
		if _, err := a.DeleteApp(t.Context(), app.ID); err != nil {
			t.Fatalf("DeleteApp on a: %v", err)
		}
		_, err := b.GetApp(t.Context(), app.ID)
		expectErr(t, "GetApp on b after DeleteApp on a", err, storage.ErrNotFound)
		expectVerify(t, b, "code on b after DeleteApp on a", attempt(c, "123456", base), storage.OutcomeUnknown)
	}},
	{"SMSChannelUpdatedOnAIsSeenOnB", func(t *testing.T, a, b storage.Store) {
		app := createApp(t, a, 1)
		updated, err := a.UpdateSMSChannel(t.Context(), app.ID, storage.SMSChannelUpdate{Enabled: new(false)}, base.Add(time.Minute))
		if err != nil {
			t.Fatalf("UpdateSMSChannel on a: %v", err)
		}
		got, err := b.GetApp(t.Context(), app.ID)
		if err != nil {
			t.Fatalf("GetApp on b: %v", err)
		}
		expectApp(t, "GetApp on b after UpdateSMSChannel on a", got, updated)
		again, err := b.UpdateSMSChannel(t.Context(), app.ID, storage.SMSChannelUpdate{}, base.Add(2*time.Minute))
		if err != nil {
			t.Fatalf("UpdateSMSChannel on b: %v", err)
		}
		if again.SMS.Version != 3 || again.SMS.Enabled {
			t.Errorf("UpdateSMSChannel on b: SMS %+v, want version 3 and disabled", again.SMS)
		}
	}},
	{"CodePutOnAVerifiesOnB", func(t *testing.T, a, b storage.Store) {
		c := newCode(createApp(t, a, 1), dest1, "ref", "123456")
		putCode(t, a, c)
		expectVerify(t, b, "right code on b", attempt(c, "123456", base), storage.OutcomeValid)
		expectVerify(t, a, "right code again on a", attempt(c, "123456", base), storage.OutcomeConsumed)
	}},
	{"FailuresOnACountOnB", func(t *testing.T, a, b storage.Store) {
		app := createApp(t, a, 1)
		c := newCode(app, dest1, "ref", "123456")
		putCode(t, a, c)
		wrongGuesses(t, a, c, base, 2)
		budget := storage.FailureBudget{Limit: 2, Window: time.Hour}
		expectLockout(t, b, "DestinationLockout on b", app, dest1, base.Add(time.Minute), budget, base.Add(time.Hour))
		expectVerify(t, b, "right code on b", withBudget(attempt(c, "123456", base.Add(time.Minute)), budget), storage.OutcomeThrottled)
	}},
	{"FailuresOnAWhoseClockRunsAheadCountOnB", func(t *testing.T, a, b storage.Store) {
		// a's clock runs 2 s ahead of b's: at the same moment, a stamps its
		// failures 2 s later than b's now. Were they not counted until b's
		// clock caught up, each instance would grant a budget of its own.
		app := createApp(t, a, 1)
		budget := storage.FailureBudget{Limit: 3, Window: time.Hour}
		onA, onB := newCode(app, dest1, "r1", "123456"), newCode(app, dest1, "r2", "123456")
		onA.AllowedAttempts, onB.AllowedAttempts = 5, 5
		putCode(t, a, onA)
		putCode(t, a, onB)
		aheadNow := base.Add(2 * time.Second)
		for range 3 {
			expectVerify(t, a, "wrong guess on a", withBudget(attempt(onA, "000000", aheadNow), budget), storage.OutcomeWrong)
		}
		expectLockout(t, b, "DestinationLockout on b", app, dest1, base, budget, aheadNow.Add(time.Hour))
		expectVerify(t, b, "wrong guess on b", withBudget(attempt(onB, "000000", base), budget), storage.OutcomeThrottled)
		expectVerify(t, b, "right code on b", withBudget(attempt(onB, "123456", base), budget), storage.OutcomeThrottled)
	}},
	{"SendClaimedOnAIsPendingOnB", func(t *testing.T, a, b storage.Store) {
		app := createApp(t, a, 1)
		expectClaim(t, a, "claim on a", sendClaim(app, "inv-1", base), nil, true)
		expectClaim(t, b, "claim on b", sendClaim(app, "inv-1", base), nil, false)
		completeSend(t, a, app, "inv-1", sendResult, base.Add(10*time.Minute))
		expectClaim(t, b, "claim on b after completion on a", sendClaim(app, "inv-1", base.Add(time.Second)), sendResult, false)
	}},
	{"OutboxAppendedOnAIsListedOnB", func(t *testing.T, a, b storage.Store) {
		m := outboxMessage(createApp(t, a, 1).ID, dest1, 1, base)
		appendOutbox(t, a, m)
		expectMessages(t, "ListOutbox on b", listOutbox(t, b, storage.OutboxQuery{}), m)
	}},
}
