package storagetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/otpd/otpd/internal/storage"
)

var appTests = []test{
	{"CreateThenGetReturnsTheApp", func(t *testing.T, s storage.Store) {
		app := newApp(1)
		app.SMS.SenderID, app.SMS.ShortCode = "OTPD", "12345"
		if err := s.CreateApp(t.Context(), app); err != nil {
			t.Fatalf("CreateApp: %v", err)
		}
		got, err := s.GetApp(t.Context(), app.ID)
		if err != nil {
			t.Fatalf("GetApp: %v", err)
		}
		expectApp(t, "GetApp", got, app)
	}},
	{"CreateExistingIsErrAlreadyExists", func(t *testing.T, s storage.Store) {
		first := createApp(t, s, 1)
		second := newApp(1)
		second.Name, second.Generation = "impostor", "other"
		expectErr(t, "CreateApp with an existing ID", s.CreateApp(t.Context(), second), storage.ErrAlreadyExists)
		got, err := s.GetApp(t.Context(), first.ID)
		if err != nil {
			t.Fatalf("GetApp: %v", err)
		}
		expectApp(t, "GetApp after the refused CreateApp", got, first)
	}},
	{"GetMissingIsErrNotFound", func(t *testing.T, s storage.Store) {
		createApp(t, s, 1)
		_, err := s.GetApp(t.Context(), newApp(2).ID)
		expectErr(t, "GetApp of a missing app", err, storage.ErrNotFound)
	}},
	{"TagsRoundTrip", func(t *testing.T, s storage.Store) {
		app := newApp(1)
		app.Tags = map[string]string{"env": "prod", "empty": "", "unicode ✓": "日本語 \"quoted\"", "a:b/c": "x=y&z"}
		if err := s.CreateApp(t.Context(), app); err != nil {
			t.Fatalf("CreateApp: %v", err)
		}
		got, err := s.GetApp(t.Context(), app.ID)
		if err != nil {
			t.Fatalf("GetApp: %v", err)
		}
		expectApp(t, "GetApp", got, app)
	}},
	{"NilTagsComeBackEmpty", func(t *testing.T, s storage.Store) {
		app := newApp(1)
		app.Tags = nil
		if err := s.CreateApp(t.Context(), app); err != nil {
			t.Fatalf("CreateApp: %v", err)
		}
		got, err := s.GetApp(t.Context(), app.ID)
		if err != nil {
			t.Fatalf("GetApp: %v", err)
		}
		if got.Tags == nil || len(got.Tags) != 0 {
			t.Errorf("GetApp: Tags = %#v, want an empty, non-nil map", got.Tags)
		}
		list, err := s.ListApps(t.Context(), "", 10)
		if err != nil {
			t.Fatalf("ListApps: %v", err)
		}
		if len(list) != 1 || list[0].Tags == nil || len(list[0].Tags) != 0 {
			t.Errorf("ListApps = %+v, want one app with an empty, non-nil Tags map", list)
		}
	}},
	{"TimesAreUTCWithMillisecondPrecision", func(t *testing.T, s storage.Store) {
		elsewhere := time.FixedZone("UTC+05:30", 5*3600+30*60)
		exact := newApp(1)
		exact.CreatedAt = base.In(elsewhere)
		exact.SMS.CreatedAt = base.Add(time.Millisecond).In(elsewhere)
		exact.SMS.UpdatedAt = base.Add(2 * time.Millisecond).In(elsewhere)
		if err := s.CreateApp(t.Context(), exact); err != nil {
			t.Fatalf("CreateApp: %v", err)
		}
		got, err := s.GetApp(t.Context(), exact.ID)
		if err != nil {
			t.Fatalf("GetApp: %v", err)
		}
		expectApp(t, "millisecond times given in another zone", got, exact)

		fine := newApp(2)
		fine.CreatedAt = base.Add(123456 * time.Nanosecond).In(elsewhere)
		if err := s.CreateApp(t.Context(), fine); err != nil {
			t.Fatalf("CreateApp: %v", err)
		}
		got, err = s.GetApp(t.Context(), fine.ID)
		if err != nil {
			t.Fatalf("GetApp: %v", err)
		}
		if d := got.CreatedAt.Sub(fine.CreatedAt).Abs(); d >= time.Millisecond || got.CreatedAt.Location() != time.UTC {
			t.Errorf("sub-millisecond CreatedAt: got %v, want %v to the millisecond, in UTC", got.CreatedAt, fine.CreatedAt)
		}
	}},
}

var listAppsTests = []test{
	{"EmptyStoreListsNothing", func(t *testing.T, s storage.Store) {
		got, err := s.ListApps(t.Context(), "", 10)
		if err != nil {
			t.Fatalf("ListApps: %v", err)
		}
		if len(got) != 0 {
			t.Errorf("ListApps = %d apps, want 0", len(got))
		}
	}},
	{"AscendingIDOrder", func(t *testing.T, s storage.Store) {
		for _, n := range []int{3, 1, 5, 2, 4} {
			createApp(t, s, n)
		}
		got, err := s.ListApps(t.Context(), "", 10)
		if err != nil {
			t.Fatalf("ListApps: %v", err)
		}
		expectIDs(t, `ListApps("", 10)`, got, 1, 2, 3, 4, 5)
		for i, app := range got {
			expectApp(t, fmt.Sprintf("ListApps[%d]", i), app, newApp(i+1))
		}
	}},
	{"PagesByAfterAndLimit", func(t *testing.T, s storage.Store) {
		for _, n := range []int{5, 4, 3, 2, 1} {
			createApp(t, s, n)
		}
		pages := []struct {
			after int // 0: ""
			want  []int
		}{{0, []int{1, 2}}, {2, []int{3, 4}}, {4, []int{5}}, {5, nil}}
		for _, p := range pages {
			after := ""
			if p.after != 0 {
				after = newApp(p.after).ID
			}
			got, err := s.ListApps(t.Context(), after, 2)
			if err != nil {
				t.Fatalf("ListApps: %v", err)
			}
			expectIDs(t, fmt.Sprintf("ListApps(after app %d, 2)", p.after), got, p.want...)
		}
	}},
	{"AfterNeedNotExist", func(t *testing.T, s storage.Store) {
		for _, n := range []int{0x10, 0x20, 0x30} {
			createApp(t, s, n)
		}
		got, err := s.ListApps(t.Context(), newApp(0x15).ID, 10)
		if err != nil {
			t.Fatalf("ListApps: %v", err)
		}
		expectIDs(t, "ListApps(after a missing ID, 10)", got, 0x20, 0x30)
	}},
}

// expectIDs checks that apps are applications number want, in that order.
func expectIDs(t *testing.T, what string, apps []storage.App, want ...int) {
	t.Helper()
	var got, wantIDs []string
	for _, a := range apps {
		got = append(got, a.ID)
	}
	for _, n := range want {
		wantIDs = append(wantIDs, newApp(n).ID)
	}
	if fmt.Sprint(got) != fmt.Sprint(wantIDs) {
		t.Errorf("%s: IDs %v, want %v", what, got, wantIDs)
	}
}

var deleteAppTests = []test{
	{"ReturnsTheAppAsItWas", func(t *testing.T, s storage.Store) {
		app := createApp(t, s, 1)
		updated, err := s.UpdateSMSChannel(t.Context(), app.ID, storage.SMSChannelUpdate{Enabled: new(false)}, base.Add(time.Minute))
		if err != nil {
			t.Fatalf("UpdateSMSChannel: %v", err)
		}
		got, err := s.DeleteApp(t.Context(), app.ID)
		if err != nil {
			t.Fatalf("DeleteApp: %v", err)
		}
		expectApp(t, "DeleteApp", got, updated)
	}},
	{"DeletedAppIsGone", func(t *testing.T, s storage.Store) {
		app := createApp(t, s, 1)
		other := createApp(t, s, 2)
		if _, err := s.DeleteApp(t.Context(), app.ID); err != nil {
			t.Fatalf("DeleteApp: %v", err)
		}
		_, err := s.GetApp(t.Context(), app.ID)
		expectErr(t, "GetApp after DeleteApp", err, storage.ErrNotFound)
		_, err = s.DeleteApp(t.Context(), app.ID)
		expectErr(t, "DeleteApp again", err, storage.ErrNotFound)
		list, err := s.ListApps(t.Context(), "", 10)
		if err != nil {
			t.Fatalf("ListApps: %v", err)
		}
		expectIDs(t, "ListApps after DeleteApp", list, 2)
		if _, err := s.GetApp(t.Context(), other.ID); err != nil {
			t.Errorf("GetApp of the other app: %v", err)
		}
	}},
	{"MissingIsErrNotFound", func(t *testing.T, s storage.Store) {
		_, err := s.DeleteApp(t.Context(), newApp(1).ID)
		expectErr(t, "DeleteApp of a missing app", err, storage.ErrNotFound)
	}},
	{"CodesAnswerUnknown", func(t *testing.T, s storage.Store) {
		app := createApp(t, s, 1)
		c := newCode(app, "+15550000001", "ref", "123456")
		putCode(t, s, c)
		if _, err := s.DeleteApp(t.Context(), app.ID); err != nil {
			t.Fatalf("DeleteApp: %v", err)
		}
		expectVerify(t, s, "right code of a deleted app", attempt(c, "123456", base), storage.OutcomeUnknown)
	}},
	{"RecreatedAppDoesNotReviveCodes", func(t *testing.T, s storage.Store) {
		app := createApp(t, s, 1)
		old := newCode(app, "+15550000001", "ref", "123456")
		putCode(t, s, old)
		if _, err := s.DeleteApp(t.Context(), app.ID); err != nil {
			t.Fatalf("DeleteApp: %v", err)
		}
		again := newApp(1)
		again.Generation = "1-b"
		if err := s.CreateApp(t.Context(), again); err != nil {
			t.Fatalf("CreateApp again: %v", err)
		}
		underNew := attempt(old, "123456", base)
		underNew.AppGeneration = again.Generation
		expectVerify(t, s, "old code under the new generation", underNew, storage.OutcomeUnknown)
		expectVerify(t, s, "old code under the old generation", attempt(old, "123456", base), storage.OutcomeUnknown)

		fresh := newCode(again, "+15550000001", "ref", "654321")
		putCode(t, s, fresh)
		expectVerify(t, s, "new code of the new app", attempt(fresh, "654321", base), storage.OutcomeValid)
	}},
	{"FailureBudgetsAndSendRecordsGo", func(t *testing.T, s storage.Store) {
		app := createApp(t, s, 1)
		c := newCode(app, "+15550000001", "ref", "123456")
		c.AllowedAttempts = 5
		putCode(t, s, c)
		wrongGuesses(t, s, c, base, 3)
		budget := storage.FailureBudget{Limit: 3, Window: time.Hour}
		expectLockout(t, s, "before DeleteApp", app, c.Key.Destination, base.Add(time.Minute), budget, base.Add(time.Hour))
		claim := storage.SendClaim{AppID: app.ID, Key: "invocation", Now: base, LeaseUntil: base.Add(time.Minute)}
		if _, claimed, err := s.ClaimSend(t.Context(), claim); err != nil || !claimed {
			t.Fatalf("ClaimSend = %v, %v; want claimed", claimed, err)
		}
		completeSend(t, s, app, claim.Key, []byte("result"), base.Add(10*time.Minute))

		if _, err := s.DeleteApp(t.Context(), app.ID); err != nil {
			t.Fatalf("DeleteApp: %v", err)
		}
		again := newApp(1)
		again.Generation = "1-b"
		if err := s.CreateApp(t.Context(), again); err != nil {
			t.Fatalf("CreateApp again: %v", err)
		}
		expectLockout(t, s, "after DeleteApp and CreateApp", app, c.Key.Destination, base.Add(time.Minute), budget, time.Time{})
		claim.Now = base.Add(time.Minute)
		result, claimed, err := s.ClaimSend(t.Context(), claim)
		if err != nil || !claimed || result != nil {
			t.Errorf("ClaimSend after DeleteApp and CreateApp = %q, %v, %v; want nil, true, nil", result, claimed, err)
		}
	}},
	{"OutboxMessagesStay", func(t *testing.T, s storage.Store) {
		app := createApp(t, s, 1)
		m := outboxMessage(app.ID, "+15550000001", 1, base)
		if err := s.AppendOutbox(t.Context(), m); err != nil {
			t.Fatalf("AppendOutbox: %v", err)
		}
		if _, err := s.DeleteApp(t.Context(), app.ID); err != nil {
			t.Fatalf("DeleteApp: %v", err)
		}
		got, err := s.ListOutbox(t.Context(), storage.OutboxQuery{})
		if err != nil {
			t.Fatalf("ListOutbox: %v", err)
		}
		expectMessages(t, "ListOutbox after DeleteApp", got, m)
	}},
}

var updateSMSTests = []test{
	{"IncrementsVersionAndSetsUpdatedAt", func(t *testing.T, s storage.Store) {
		app := createApp(t, s, 1)
		now := base.Add(time.Hour)
		got, err := s.UpdateSMSChannel(t.Context(), app.ID, storage.SMSChannelUpdate{Enabled: new(false), SenderID: new("OTPD")}, now)
		if err != nil {
			t.Fatalf("UpdateSMSChannel: %v", err)
		}
		want := app
		want.SMS.Enabled, want.SMS.SenderID, want.SMS.Version, want.SMS.UpdatedAt = false, "OTPD", 2, now
		expectApp(t, "UpdateSMSChannel", got, want)
		stored, err := s.GetApp(t.Context(), app.ID)
		if err != nil {
			t.Fatalf("GetApp: %v", err)
		}
		expectApp(t, "GetApp after UpdateSMSChannel", stored, want)

		later := now.Add(time.Minute)
		got, err = s.UpdateSMSChannel(t.Context(), app.ID, storage.SMSChannelUpdate{}, later)
		if err != nil {
			t.Fatalf("UpdateSMSChannel: %v", err)
		}
		want.SMS.Version, want.SMS.UpdatedAt = 3, later
		expectApp(t, "empty UpdateSMSChannel", got, want)
	}},
	{"NilFieldsStay", func(t *testing.T, s storage.Store) {
		app := newApp(1)
		app.SMS.SenderID, app.SMS.ShortCode = "OTPD", "12345"
		if err := s.CreateApp(t.Context(), app); err != nil {
			t.Fatalf("CreateApp: %v", err)
		}
		want := app
		steps := []struct {
			u     storage.SMSChannelUpdate
			apply func()
		}{
			{storage.SMSChannelUpdate{Enabled: new(false)}, func() { want.SMS.Enabled = false }},
			{storage.SMSChannelUpdate{SenderID: new("")}, func() { want.SMS.SenderID = "" }},
			{storage.SMSChannelUpdate{ShortCode: new("999")}, func() { want.SMS.ShortCode = "999" }},
			{storage.SMSChannelUpdate{Enabled: new(true), SenderID: new("NEW"), ShortCode: new("")}, func() {
				want.SMS.Enabled, want.SMS.SenderID, want.SMS.ShortCode = true, "NEW", ""
			}},
		}
		for i, step := range steps {
			now := base.Add(time.Duration(i+1) * time.Minute)
			got, err := s.UpdateSMSChannel(t.Context(), app.ID, step.u, now)
			if err != nil {
				t.Fatalf("UpdateSMSChannel %d: %v", i+1, err)
			}
			step.apply()
			want.SMS.Version, want.SMS.UpdatedAt = i+2, now
			expectApp(t, fmt.Sprintf("UpdateSMSChannel %d", i+1), got, want)
		}
	}},
	{"MissingIsErrNotFound", func(t *testing.T, s storage.Store) {
		_, err := s.UpdateSMSChannel(t.Context(), newApp(1).ID, storage.SMSChannelUpdate{Enabled: new(false)}, base)
		expectErr(t, "UpdateSMSChannel of a missing app", err, storage.ErrNotFound)
	}},
}
