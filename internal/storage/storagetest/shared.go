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
