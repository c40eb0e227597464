package storagetest

import (
	"bytes"
	"testing"
	"time"

	"github.com/otpd/otpd/internal/storage"
)

// sendClaim returns a claim of key for app at now, leased for a minute.
func sendClaim(app storage.App, key string, now time.Time) storage.SendClaim {
	return storage.SendClaim{AppID: app.ID, Key: key, Now: now, LeaseUntil: now.Add(time.Minute)}
}

// expectClaim runs ClaimSend and checks its answer.
func expectClaim(t *testing.T, s storage.Store, what string, c storage.SendClaim, wantResult []byte, wantClaimed bool) {
	t.Helper()
	result, claimed, err := s.ClaimSend(t.Context(), c)
	if err != nil {
		t.Fatalf("%s: ClaimSend: %v", what, err)
	}
	if claimed != wantClaimed || (result == nil) != (wantResult == nil) || !bytes.Equal(result, wantResult) {
		t.Errorf("%s: ClaimSend(%s at %v) = %q (nil: %v), claimed %v; want %q (nil: %v), claimed %v",
			what, c.Key, c.Now, result, result == nil, claimed, wantResult, wantResult == nil, wantClaimed)
	}
}

// completeSend completes the send of key for app through RecordSend, with
// no code (as after a refusal by the carrier).
func completeSend(t *testing.T, s storage.Store, app storage.App, key string, result []byte, expiresAt time.Time) {
	t.Helper()
	sent := storage.SendRecord{Completion: &storage.SendCompletion{AppID: app.ID, Key: key, Result: result, ExpiresAt: expiresAt}}
	if err := s.RecordSend(t.Context(), sent); err != nil {
		t.Fatalf("RecordSend completing %s: %v", key, err)
	}
}

// sendResult has bytes that text handling would damage.
var sendResult = []byte("{\"MessageId\":\"m-1\"}\x00\xff\xfe\n\r\t \"'\\ é")

var sendTests = []test{
	{"FirstClaimSucceeds", func(t *testing.T, s storage.Store) {
		app := createApp(t, s, 1)
		expectClaim(t, s, "first claim", sendClaim(app, "inv-1", base), nil, true)
	}},
	{"PendingWithALiveLeaseIsNotClaimed", func(t *testing.T, s storage.Store) {
		app := createApp(t, s, 1)
		first := sendClaim(app, "inv-1", base)
		expectClaim(t, s, "first claim", first, nil, true)
		expectClaim(t, s, "retry at once", sendClaim(app, "inv-1", base), nil, false)
		expectClaim(t, s, "retry 1ms before the lease ends", sendClaim(app, "inv-1", first.LeaseUntil.Add(-time.Millisecond)), nil, false)
	}},
	{"EndedLeaseIsTakenOver", func(t *testing.T, s storage.Store) {
		app := createApp(t, s, 1)
		first := sendClaim(app, "inv-1", base)
		expectClaim(t, s, "first claim", first, nil, true)
		takeover := sendClaim(app, "inv-1", first.LeaseUntil)
		expectClaim(t, s, "claim as the lease ends", takeover, nil, true)
		expectClaim(t, s, "claim during the new lease", sendClaim(app, "inv-1", first.LeaseUntil.Add(time.Second)), nil, false)
		expectClaim(t, s, "claim after the new lease", sendClaim(app, "inv-1", takeover.LeaseUntil), nil, true)
	}},
	{"CompletedResultIsReturnedByteForByte", func(t *testing.T, s storage.Store) {
		app := createApp(t, s, 1)
		expectClaim(t, s, "first claim", sendClaim(app, "inv-1", base), nil, true)
		completeSend(t, s, app, "inv-1", sendResult, base.Add(10*time.Minute))
		expectClaim(t, s, "retry", sendClaim(app, "inv-1", base.Add(time.Second)), sendResult, false)
		expectClaim(t, s, "retry after the lease would have ended", sendClaim(app, "inv-1", base.Add(5*time.Minute)), sendResult, false)
	}},
	{"CompletedRecordExpires", func(t *testing.T, s storage.Store) {
		app := createApp(t, s, 1)
		expectClaim(t, s, "first claim", sendClaim(app, "inv-1", base), nil, true)
		expiresAt := base.Add(10 * time.Minute)
		completeSend(t, s, app, "inv-1", sendResult, expiresAt)
		expectClaim(t, s, "retry 1ms before expiry", sendClaim(app, "inv-1", expiresAt.Add(-time.Millisecond)), sendResult, false)
		expectClaim(t, s, "retry at expiry", sendClaim(app, "inv-1", expiresAt), nil, true)
	}},
	{"ReleaseLetsARetryClaim", func(t *testing.T, s storage.Store) {
		app := createApp(t, s, 1)
		expectClaim(t, s, "first claim", sendClaim(app, "inv-1", base), nil, true)
		if err := s.ReleaseSend(t.Context(), app.ID, "inv-1"); err != nil {
			t.Fatalf("ReleaseSend: %v", err)
		}
		expectClaim(t, s, "retry after release", sendClaim(app, "inv-1", base.Add(time.Second)), nil, true)
	}},
	{"ReleaseWithoutARecordIsNotAnError", func(t *testing.T, s storage.Store) {
		app := createApp(t, s, 1)
		if err := s.ReleaseSend(t.Context(), app.ID, "never-claimed"); err != nil {
			t.Errorf("ReleaseSend of nothing: %v", err)
		}
	}},
	{"ReleaseKeepsACompletedRecord", func(t *testing.T, s storage.Store) {
		app := createApp(t, s, 1)
		expectClaim(t, s, "first claim", sendClaim(app, "inv-1", base), nil, true)
		completeSend(t, s, app, "inv-1", sendResult, base.Add(10*time.Minute))
		if err := s.ReleaseSend(t.Context(), app.ID, "inv-1"); err != nil {
			t.Fatalf("ReleaseSend: %v", err)
		}
		expectClaim(t, s, "retry after a release of the completed record", sendClaim(app, "inv-1", base.Add(time.Second)), sendResult, false)
	}},
	{"IsolatedByApplicationAndKey", func(t *testing.T, s storage.Store) {
		app := createApp(t, s, 1)
		other := createApp(t, s, 2)
		expectClaim(t, s, "first claim", sendClaim(app, "inv-1", base), nil, true)
		expectClaim(t, s, "same key, other application", sendClaim(other, "inv-1", base), nil, true)
		expectClaim(t, s, "other key, same application", sendClaim(app, "inv-2", base), nil, true)
		completeSend(t, s, app, "inv-1", sendResult, base.Add(10*time.Minute))
		expectClaim(t, s, "other application after completion", sendClaim(other, "inv-1", base.Add(time.Second)), nil, false)
	}},
}

// recordOnce runs s's RecordSendOnce (the test is skipped if s has none)
// for c with a code to destination and a completion holding result; it
// checks the answer and returns the code.
func recordOnce(t *testing.T, s storage.Store, what string, c storage.SendClaim, app storage.App, destination string, result, wantResult []byte, wantRecorded bool) storage.Code {
	t.Helper()
	once, ok := s.(storage.SendOnceRecorder)
	if !ok {
		t.Skip("the store does not implement storage.SendOnceRecorder")
	}
	code := longLivedCode(app, destination, c.Key)
	r := storage.SendRecord{
		Code:       &code,
		Completion: &storage.SendCompletion{AppID: c.AppID, Key: c.Key, Result: result, ExpiresAt: c.Now.Add(10 * time.Minute)},
	}
	got, recorded, err := once.RecordSendOnce(t.Context(), c, r)
	if err != nil {
		t.Fatalf("%s: RecordSendOnce: %v", what, err)
	}
	if recorded != wantRecorded || (got == nil) != (wantResult == nil) || !bytes.Equal(got, wantResult) {
		t.Errorf("%s: RecordSendOnce(%s at %v) = %q (nil: %v), recorded %v; want %q (nil: %v), recorded %v",
			what, c.Key, c.Now, got, got == nil, recorded, wantResult, wantResult == nil, wantRecorded)
	}
	return code
}

var sendOnceTests = []test{
	{"FirstSendIsRecordedWithItsCompletion", func(t *testing.T, s storage.Store) {
		app := createApp(t, s, 1)
		code := recordOnce(t, s, "first send", sendClaim(app, "inv-1", base), app, "+14255550100", sendResult, nil, true)
		expectVerify(t, s, "its code", attempt(code, "123456", base.Add(time.Second)), storage.OutcomeValid)
		expectClaim(t, s, "a retry's claim", sendClaim(app, "inv-1", base.Add(time.Second)), sendResult, false)
	}},
	{"RetryGetsTheFirstResultAndStoresNothing", func(t *testing.T, s storage.Store) {
		app := createApp(t, s, 1)
		recordOnce(t, s, "first send", sendClaim(app, "inv-1", base), app, "+14255550100", sendResult, nil, true)
		retry := recordOnce(t, s, "retry", sendClaim(app, "inv-1", base.Add(time.Second)), app, "+14255550101", []byte("the retry's"), sendResult, false)
		expectVerify(t, s, "the retry's code", attempt(retry, "123456", base.Add(2*time.Second)), storage.OutcomeUnknown)
		expectClaim(t, s, "a claim after the retry", sendClaim(app, "inv-1", base.Add(2*time.Second)), sendResult, false)
	}},
	{"LivePendingClaimStoresNothing", func(t *testing.T, s storage.Store) {
		app := createApp(t, s, 1)
		first := sendClaim(app, "inv-1", base)
		expectClaim(t, s, "another instance's claim", first, nil, true)
		code := recordOnce(t, s, "send during its lease", sendClaim(app, "inv-1", base.Add(time.Second)), app, "+14255550100", sendResult, nil, false)
		expectVerify(t, s, "its code", attempt(code, "123456", base.Add(2*time.Second)), storage.OutcomeUnknown)
		recordOnce(t, s, "send once the lease ended", sendClaim(app, "inv-1", first.LeaseUntil), app, "+14255550100", sendResult, nil, true)
	}},
	{"ExpiredCompletionIsReplaced", func(t *testing.T, s storage.Store) {
		app := createApp(t, s, 1)
		recordOnce(t, s, "first send", sendClaim(app, "inv-1", base), app, "+14255550100", sendResult, nil, true)
		later := base.Add(10 * time.Minute)
		second := []byte("the second send's")
		code := recordOnce(t, s, "send at the completion's expiry", sendClaim(app, "inv-1", later), app, "+14255550101", second, nil, true)
		expectVerify(t, s, "the new code", attempt(code, "123456", later.Add(time.Second)), storage.OutcomeValid)
		expectClaim(t, s, "a claim after the second send", sendClaim(app, "inv-1", later.Add(time.Second)), second, false)
	}},
	{"UnknownApplicationStoresNothing", func(t *testing.T, s storage.Store) {
		app := createApp(t, s, 1)
		once, ok := s.(storage.SendOnceRecorder)
		if !ok {
			t.Skip("the store does not implement storage.SendOnceRecorder")
		}
		gone := newApp(2) // never created
		code := longLivedCode(gone, "+14255550100", "ref")
		c := sendClaim(gone, "inv-1", base)
		_, _, err := once.RecordSendOnce(t.Context(), c, storage.SendRecord{
			Code:       &code,
			Completion: &storage.SendCompletion{AppID: gone.ID, Key: c.Key, Result: sendResult, ExpiresAt: base.Add(time.Hour)},
		})
		expectErr(t, "RecordSendOnce for an application that does not exist", err, storage.ErrNotFound)
		expectClaim(t, s, "a claim after the refused send", c, nil, true)
		expectClaim(t, s, "the other application's claim", sendClaim(app, "inv-1", base), nil, true)
	}},
}
