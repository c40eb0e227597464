package storagetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/otpd/otpd/internal/storage"
)

// keepAll is a retention under which only what a test sets goes.
var keepAll = storage.Retention{
	BatchSize:         100,
	FailureWindow:     1000 * time.Hour,
	OutboxMaxAge:      1000 * time.Hour,
	OutboxMaxMessages: 1000,
}

// purgeKinds is how many kinds of record Purge deletes a batch of per call:
// codes, failures, send records, outbox messages and message records.
const purgeKinds = 5

// purgeAll calls Purge the way its callers do, again while it returns at
// least r.BatchSize, and returns the total deleted. Each call must delete at
// most perCall records.
func purgeAll(t *testing.T, s storage.Store, now time.Time, r storage.Retention, perCall int) int {
	t.Helper()
	total := 0
	for calls := 1; ; calls++ {
		n, err := s.Purge(t.Context(), now, r)
		if err != nil {
			t.Fatalf("Purge call %d: %v", calls, err)
		}
		if n > perCall {
			t.Errorf("Purge call %d deleted %d records, want at most %d (batch size %d)", calls, n, perCall, r.BatchSize)
		}
		total += n
		if n < r.BatchSize {
			return total
		}
		if calls == 1000 {
			t.Fatalf("Purge still deletes %d records after %d calls", n, calls)
		}
	}
}

// expectPurged checks the total Purge reported.
func expectPurged(t *testing.T, got, want int) {
	t.Helper()
	if got != want {
		t.Errorf("Purge deleted %d records in all, want %d", got, want)
	}
}

// expiringCodes stores n codes of app to destination that expire at
// expiresAt, with references prefix-0, prefix-1, …, and returns them.
func expiringCodes(t *testing.T, s storage.Store, app storage.App, prefix string, n int, expiresAt time.Time) []storage.Code {
	t.Helper()
	var codes []storage.Code
	for i := range n {
		c := newCode(app, dest1, fmt.Sprintf("%s-%d", prefix, i), "123456")
		c.CreatedAt, c.ExpiresAt = expiresAt.Add(-10*time.Minute), expiresAt
		putCode(t, s, c)
		codes = append(codes, c)
	}
	return codes
}

var purgeTests = []test{
	{"ExpiredCodesGoLiveCodesStay", func(t *testing.T, s storage.Store) {
		app := createApp(t, s, 1)
		now := base.Add(time.Hour)
		kept := storage.ExpiredCodeKept
		var expired, recent, live []storage.Code
		expired = append(expired, expiringCodes(t, s, app, "long-ago", 2, base)...)
		expired = append(expired, expiringCodes(t, s, app, "kept-long-enough", 1, now.Add(-kept))...)
		recent = append(recent, expiringCodes(t, s, app, "kept-1ms-more", 1, now.Add(-kept+time.Millisecond))...)
		recent = append(recent, expiringCodes(t, s, app, "just-now", 1, now)...)
		live = append(live, expiringCodes(t, s, app, "in-1ms", 1, now.Add(time.Millisecond))...)
		live = append(live, expiringCodes(t, s, app, "later", 1, now.Add(time.Hour))...)
		expectPurged(t, purgeAll(t, s, now, keepAll, purgeKinds*keepAll.BatchSize), len(expired))
		for _, c := range expired {
			expectVerify(t, s, "purged code "+c.Key.ReferenceID, attempt(c, "123456", now), storage.OutcomeUnknown)
		}
		// Expired less than ExpiredCodeKept ago: still there, to be told
		// expired rather than unknown.
		for _, c := range recent {
			expectVerify(t, s, "recently expired code "+c.Key.ReferenceID, attempt(c, "123456", now), storage.OutcomeExpired)
		}
		for _, c := range live {
			expectVerify(t, s, "live code "+c.Key.ReferenceID, attempt(c, "123456", now), storage.OutcomeValid)
		}
	}},
	{"FailuresOlderThanTheWindowGo", func(t *testing.T, s storage.Store) {
		app := createApp(t, s, 1)
		c := newCode(app, dest1, "ref", "123456")
		c.AllowedAttempts, c.ExpiresAt = 10, base.Add(3*time.Hour)
		putCode(t, s, c)
		wrongGuesses(t, s, c, base, 4) // base … base+3s: outside the window at now
		expectVerify(t, s, "recent wrong guess", attempt(c, "000000", base.Add(30*time.Minute)), storage.OutcomeWrong)
		now := base.Add(time.Hour + time.Minute)
		wide := storage.FailureBudget{Limit: 2, Window: 3 * time.Hour}
		expectLockout(t, s, "before Purge, over a wide window", app, dest1, now, wide, base.Add(3*time.Second+3*time.Hour))
		r := keepAll
		r.FailureWindow = time.Hour
		expectPurged(t, purgeAll(t, s, now, r, purgeKinds*r.BatchSize), 4)
		expectLockout(t, s, "after Purge, over a wide window", app, dest1, now, wide, time.Time{})
		expectLockout(t, s, "after Purge, the recent failure", app, dest1, now, storage.FailureBudget{Limit: 1, Window: 3 * time.Hour}, base.Add(30*time.Minute+3*time.Hour))
	}},
	{"ExpiredSendRecordsGo", func(t *testing.T, s storage.Store) {
		app := createApp(t, s, 1)
		for _, key := range []string{"gone", "kept"} {
			expectClaim(t, s, "claim "+key, sendClaim(app, key, base), nil, true)
		}
		completeSend(t, s, app, "gone", []byte("gone"), base.Add(10*time.Minute))
		completeSend(t, s, app, "kept", sendResult, base.Add(2*time.Hour))
		now := base.Add(time.Hour)
		expectPurged(t, purgeAll(t, s, now, keepAll, purgeKinds*keepAll.BatchSize), 1)
		expectClaim(t, s, "retry of the live record", sendClaim(app, "kept", now), sendResult, false)
	}},
	{"OutboxTrimmedByAge", func(t *testing.T, s storage.Store) {
		app := createApp(t, s, 1)
		m1 := outboxMessage(app.ID, dest1, 1, base)
		m2 := outboxMessage(app.ID, dest1, 2, base.Add(time.Hour))
		m3 := outboxMessage(app.ID, dest2, 3, base.Add(2*time.Hour))
		appendOutbox(t, s, m1, m2, m3)
		r := keepAll
		r.OutboxMaxAge = 90 * time.Minute
		expectPurged(t, purgeAll(t, s, base.Add(2*time.Hour), r, purgeKinds*r.BatchSize), 1)
		expectMessages(t, "ListOutbox after Purge", listOutbox(t, s, storage.OutboxQuery{}), m2, m3)
	}},
	{"OutboxTrimmedByCount", func(t *testing.T, s storage.Store) {
		app := createApp(t, s, 1)
		var msgs []storage.OutboxMessage
		for i := range 5 {
			msgs = append(msgs, outboxMessage(app.ID, dest1, i, base.Add(time.Duration(i)*time.Second)))
		}
		appendOutbox(t, s, msgs...)
		r := keepAll
		r.OutboxMaxMessages = 2
		expectPurged(t, purgeAll(t, s, base.Add(time.Minute), r, purgeKinds*r.BatchSize), 3)
		expectMessages(t, "ListOutbox after Purge", listOutbox(t, s, storage.OutboxQuery{}), msgs[3], msgs[4])
	}},
	{"MessagesOlderThanTheMaxAgeGo", func(t *testing.T, s storage.Store) {
		app := createApp(t, s, 1)
		now := base.Add(2 * time.Hour)
		var old, kept []storage.MessageRecord
		for i := range 5 {
			m := messageRecord(app.ID, dest1, i, base.Add(time.Duration(i)*time.Minute))
			m.Status, m.UpdatedAt = storage.MessageDelivered, now // a recent report does not keep it
			old = append(old, m)
		}
		old = append(old, messageRecord(app.ID, dest2, 5, now.Add(-time.Hour-time.Millisecond)))
		kept = append(kept, messageRecord(app.ID, dest2, 6, now.Add(-time.Hour))) // exactly the age: not older
		kept = append(kept, messageRecord(app.ID, dest1, 7, now))
		putMessages(t, s, kept...)
		putMessages(t, s, old...)
		r := keepAll
		r.BatchSize, r.MessageMaxAge = 2, time.Hour
		// Only message records are due, so each call deletes at most one
		// batch.
		expectPurged(t, purgeAll(t, s, now, r, r.BatchSize), len(old))
		expectRecords(t, "ListMessages after Purge", listMessages(t, s, storage.MessageQuery{}), kept...)
		for _, m := range old {
			expectNoMessage(t, s, "purged record "+m.MessageID, m.Carrier, m.CarrierMessageID)
		}
		u := report(storage.MessageDelivered, "", now)
		expectRecord(t, "UpdateMessageStatus of a kept record", updateMessage(t, s, kept[0], u), applied(kept[0], u))
	}},
	{"MessagesStayWithoutAMaxAge", func(t *testing.T, s storage.Store) {
		app := createApp(t, s, 1)
		var recs []storage.MessageRecord
		for i := range 3 {
			recs = append(recs, messageRecord(app.ID, dest1, i, base.Add(time.Duration(i)*time.Second)))
		}
		putMessages(t, s, recs...)
		r := keepAll
		r.FailureWindow, r.OutboxMaxAge = time.Hour, time.Hour
		expectPurged(t, purgeAll(t, s, base.Add(100_000*time.Hour), r, purgeKinds*r.BatchSize), 0)
		expectRecords(t, "ListMessages after Purge", listMessages(t, s, storage.MessageQuery{}), recs...)
	}},
	{"BatchSizeIsRespected", func(t *testing.T, s storage.Store) {
		app := createApp(t, s, 1)
		expired := expiringCodes(t, s, app, "expired", 5, base)
		r := keepAll
		r.BatchSize = 2
		// Only codes are due, so each call deletes at most one batch.
		now := base.Add(storage.ExpiredCodeKept + time.Minute)
		expectPurged(t, purgeAll(t, s, now, r, r.BatchSize), len(expired))
		for _, c := range expired {
			expectVerify(t, s, "purged code "+c.Key.ReferenceID, attempt(c, "123456", now), storage.OutcomeUnknown)
		}
	}},
	{"RepeatedCallsFinishTheJob", func(t *testing.T, s storage.Store) {
		app := createApp(t, s, 1)
		now := base.Add(2 * time.Hour)
		expired := expiringCodes(t, s, app, "expired", 7, base)
		live := newCode(app, dest2, "live", "123456")
		live.AllowedAttempts, live.ExpiresAt = 10, now.Add(time.Hour)
		putCode(t, s, live)
		wrongGuesses(t, s, live, base, 5)
		for i := range 3 {
			key := fmt.Sprintf("send-%d", i)
			expectClaim(t, s, "claim "+key, sendClaim(app, key, base), nil, true)
			completeSend(t, s, app, key, []byte(key), base.Add(10*time.Minute))
		}
		var msgs []storage.OutboxMessage
		for i := range 6 {
			msgs = append(msgs, outboxMessage(app.ID, dest1, i, base.Add(time.Duration(i)*time.Second)))
		}
		appendOutbox(t, s, msgs...)

		r := storage.Retention{BatchSize: 2, FailureWindow: time.Hour, OutboxMaxAge: 1000 * time.Hour, OutboxMaxMessages: 1}
		expectPurged(t, purgeAll(t, s, now, r, purgeKinds*r.BatchSize), 7+5+3+5)
		for _, c := range expired {
			expectVerify(t, s, "purged code "+c.Key.ReferenceID, attempt(c, "123456", now), storage.OutcomeUnknown)
		}
		expectLockout(t, s, "failures after Purge", app, dest2, now, storage.FailureBudget{Limit: 1, Window: 1000 * time.Hour}, time.Time{})
		expectMessages(t, "ListOutbox after Purge", listOutbox(t, s, storage.OutboxQuery{}), msgs[5])
		expectVerify(t, s, "live code", attempt(live, "123456", now), storage.OutcomeValid)
	}},
}
