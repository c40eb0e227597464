package storagetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/otpd/otpd/internal/storage"
)

// RecordKind is a kind of record that a backend with Options.ExpiresByTTL
// lets expire by itself.
type RecordKind int

// The kinds of record TTLReporter reports on.
const (
	// CodeRecord is the code of Record.Key under Record.AppGeneration.
	CodeRecord RecordKind = iota + 1
	// FailuresRecord is the failure budget of (Record.Key.AppID,
	// Record.Key.Destination) under Record.AppGeneration: the wrong guesses
	// recorded there.
	FailuresRecord
	// SendRecord is the send record of (Record.Key.AppID, Record.SendKey).
	SendRecord
)

// Record names one record for TTLReporter.
type Record struct {
	Kind          RecordKind
	Key           storage.CodeKey // for a send record, only AppID
	AppGeneration string          // for codes and failures
	SendKey       string          // for a send record
}

// TTLReporter is implemented by the stores of backends that run the suite
// with Options.ExpiresByTTL (or by a wrapper of such a store, in the
// backend's tests).
type TTLReporter interface {
	// TTL reports how long r has left to live. found is false if the store
	// holds no such record; a record that never expires has a ttl <= 0.
	TTL(ctx context.Context, r Record) (ttl time.Duration, found bool, err error)
}

// expectTTL checks that the record is stored and lives about want: no less
// than 10 seconds under it (the test's own duration), no more than a minute
// over it (a backend's margin for clocks that differ).
func expectTTL(t *testing.T, s storage.Store, what string, r Record, want time.Duration) {
	t.Helper()
	reporter, ok := s.(TTLReporter)
	if !ok {
		t.Fatalf("the store %T runs with ExpiresByTTL but does not implement storagetest.TTLReporter", s)
	}
	ttl, found, err := reporter.TTL(t.Context(), r)
	if err != nil {
		t.Fatalf("%s: TTL: %v", what, err)
	}
	switch {
	case !found:
		t.Errorf("%s: the record is not stored, want it to live %v", what, want)
	case ttl <= 0:
		t.Errorf("%s: the record never expires, want it to live %v", what, want)
	case ttl < want-10*time.Second || ttl > want+time.Minute:
		t.Errorf("%s: the record lives %v, want %v (up to a minute more)", what, ttl, want)
	}
}

// expectNoRecord checks that the store holds no such record.
func expectNoRecord(t *testing.T, s storage.Store, what string, r Record) {
	t.Helper()
	reporter, ok := s.(TTLReporter)
	if !ok {
		t.Fatalf("the store %T runs with ExpiresByTTL but does not implement storagetest.TTLReporter", s)
	}
	if _, found, err := reporter.TTL(t.Context(), r); err != nil {
		t.Fatalf("%s: TTL: %v", what, err)
	} else if found {
		t.Errorf("%s: the record is stored, want none", what)
	}
}

// codeRecord names c.
func codeRecord(c storage.Code) Record {
	return Record{Kind: CodeRecord, Key: c.Key, AppGeneration: c.AppGeneration}
}

// failuresRecord names the failures of app at destination.
func failuresRecord(app storage.App, destination string) Record {
	return Record{Kind: FailuresRecord, Key: storage.CodeKey{AppID: app.ID, Destination: destination}, AppGeneration: app.Generation}
}

// sendRecord names the send record of app under key.
func sendRecord(app storage.App, key string) Record {
	return Record{Kind: SendRecord, Key: storage.CodeKey{AppID: app.ID}, SendKey: key}
}

// pickTests returns the tests of tests with the given names, in that order.
func pickTests(tests []test, names ...string) []test {
	var picked []test
	for _, name := range names {
		found := false
		for _, tc := range tests {
			if tc.name == name {
				picked, found = append(picked, tc), true
			}
		}
		if !found {
			panic(fmt.Sprintf("storagetest: no test %q", name))
		}
	}
	return picked
}

// purgeTTLTests replace purgeTests for backends with ExpiresByTTL: what
// Purge would delete carries a TTL instead, and Purge trims the outbox and
// the message records as for every backend.
var purgeTTLTests = append([]test{
	{"CodesLiveTheirValidityAndExpiredCodeKept", func(t *testing.T, s storage.Store) {
		app := createApp(t, s, 1)
		short := newCode(app, dest1, "short", "123456")
		long := newCode(app, dest1, "long", "123456")
		long.ExpiresAt = base.Add(2 * time.Hour)
		consumed := newCode(app, dest1, "consumed", "123456")
		guessed := newCode(app, dest1, "guessed", "123456")
		for _, c := range []storage.Code{short, long, consumed, guessed} {
			putCode(t, s, c)
		}
		expectVerify(t, s, "right code", attempt(consumed, "123456", base), storage.OutcomeValid)
		wrongGuesses(t, s, guessed, base, 1)
		replaced := newCode(app, dest2, "replaced", "111111")
		putCode(t, s, replaced)
		replaced.MAC, replaced.CreatedAt, replaced.ExpiresAt = macOf("222222"), base.Add(time.Minute), base.Add(31*time.Minute)
		putCode(t, s, replaced)

		// A code lives its validity, then storage.ExpiredCodeKept.
		kept := storage.ExpiredCodeKept
		expectTTL(t, s, "a code valid 10 minutes", codeRecord(short), 10*time.Minute+kept)
		expectTTL(t, s, "a code valid 2 hours", codeRecord(long), 2*time.Hour+kept)
		expectTTL(t, s, "a consumed code (it answers consumed until it is gone)", codeRecord(consumed), 10*time.Minute+kept)
		expectTTL(t, s, "a code after a wrong guess", codeRecord(guessed), 10*time.Minute+kept)
		expectTTL(t, s, "a replaced code, which lives as long as its replacement", codeRecord(replaced), 30*time.Minute+kept)
		expectNoRecord(t, s, "a code never stored", codeRecord(newCode(app, dest1, "missing", "123456")))

		now := base.Add(time.Hour)
		expectPurged(t, purgeAll(t, s, now, keepAll, purgeKinds*keepAll.BatchSize), 0)
		expectVerify(t, s, "an expired code, until its TTL ends", attempt(short, "123456", now), storage.OutcomeExpired)
		expectVerify(t, s, "a live code after Purge", attempt(long, "123456", now), storage.OutcomeValid)
	}},
	{"FailuresLiveTheWindow", func(t *testing.T, s storage.Store) {
		app := createApp(t, s, 1)
		c := newCode(app, dest1, "ref", "123456")
		c.AllowedAttempts = 5
		putCode(t, s, c)
		expectNoRecord(t, s, "failures before any", failuresRecord(app, dest1))
		expectVerify(t, s, "wrong guess under a 1-hour window", withBudget(attempt(c, "000000", base), storage.FailureBudget{Limit: 10, Window: time.Hour}), storage.OutcomeWrong)
		expectTTL(t, s, "failures after a wrong guess under a 1-hour window", failuresRecord(app, dest1), time.Hour)
		expectVerify(t, s, "wrong guess under a 3-hour window", withBudget(attempt(c, "000000", base.Add(time.Second)), storage.FailureBudget{Limit: 10, Window: 3 * time.Hour}), storage.OutcomeWrong)
		expectTTL(t, s, "failures after a wrong guess under a 3-hour window", failuresRecord(app, dest1), 3*time.Hour)

		r := keepAll
		r.FailureWindow = time.Hour
		expectPurged(t, purgeAll(t, s, base.Add(2*time.Hour), r, purgeKinds*r.BatchSize), 0)
		expectLockout(t, s, "both failures, after Purge", app, dest1, base.Add(time.Minute), storage.FailureBudget{Limit: 2, Window: 3 * time.Hour}, base.Add(3*time.Hour))
	}},
	{"SendRecordsLiveTheirLeaseOrExpiry", func(t *testing.T, s storage.Store) {
		app := createApp(t, s, 1)
		expectClaim(t, s, "claim pending", sendClaim(app, "pending", base), nil, true)
		long := storage.SendClaim{AppID: app.ID, Key: "long", Now: base, LeaseUntil: base.Add(5 * time.Minute)}
		expectClaim(t, s, "claim long", long, nil, true)
		expectClaim(t, s, "claim completed", sendClaim(app, "completed", base), nil, true)
		completeSend(t, s, app, "completed", sendResult, base.Add(10*time.Minute))
		expectClaim(t, s, "claim released", sendClaim(app, "released", base), nil, true)
		if err := s.ReleaseSend(t.Context(), app.ID, "released"); err != nil {
			t.Fatalf("ReleaseSend: %v", err)
		}

		expectTTL(t, s, "a pending record leased for a minute", sendRecord(app, "pending"), time.Minute)
		expectTTL(t, s, "a pending record leased for 5 minutes", sendRecord(app, "long"), 5*time.Minute)
		expectTTL(t, s, "a record completed to expire 10 minutes after its claim", sendRecord(app, "completed"), 10*time.Minute)
		expectNoRecord(t, s, "a released record", sendRecord(app, "released"))

		expectPurged(t, purgeAll(t, s, base.Add(time.Hour), keepAll, purgeKinds*keepAll.BatchSize), 0)
		expectClaim(t, s, "retry of the completed record", sendClaim(app, "completed", base.Add(5*time.Minute)), sendResult, false)
	}},
	{"RepeatedCallsFinishTheOutbox", func(t *testing.T, s storage.Store) {
		app := createApp(t, s, 1)
		now := base.Add(2 * time.Hour)
		expired := expiringCodes(t, s, app, "expired", 3, base)
		live := newCode(app, dest2, "live", "123456")
		live.AllowedAttempts, live.ExpiresAt = 10, now.Add(time.Hour)
		putCode(t, s, live)
		wrongGuesses(t, s, live, base, 5)
		var msgs []storage.OutboxMessage
		for i := range 6 {
			msgs = append(msgs, outboxMessage(app.ID, dest1, i, base.Add(time.Duration(i)*time.Second)))
		}
		appendOutbox(t, s, msgs...)

		r := storage.Retention{BatchSize: 2, FailureWindow: time.Hour, OutboxMaxAge: 1000 * time.Hour, OutboxMaxMessages: 1}
		expectPurged(t, purgeAll(t, s, now, r, purgeKinds*r.BatchSize), 5)
		expectMessages(t, "ListOutbox after Purge", listOutbox(t, s, storage.OutboxQuery{}), msgs[5])
		for _, c := range expired {
			expectVerify(t, s, "expired code "+c.Key.ReferenceID, attempt(c, "123456", now), storage.OutcomeExpired)
		}
		expectVerify(t, s, "live code", attempt(live, "123456", now), storage.OutcomeValid)
	}},
}, pickTests(purgeTests, "OutboxTrimmedByAge", "OutboxTrimmedByCount",
	"MessagesOlderThanTheMaxAgeGo", "MessagesStayWithoutAMaxAge")...)
