package redis

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/otpd/otpd/internal/faultproxy"
	"github.com/otpd/otpd/internal/storage"
	"github.com/otpd/otpd/internal/storage/redis/redistest"
	"github.com/otpd/otpd/internal/storage/storagetest"
)

// The servers the tests use. Redis runs on the developers' machines and in
// CI; the cluster comes from .ci/redis-cluster.
const (
	defaultStandaloneURL = "redis://127.0.0.1:6379/0"
	defaultClusterSeeds  = "127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103"
)

// backend is a Redis the tests run against.
type backend struct {
	name    string
	options func(tb testing.TB) Options
}

var backends = []backend{{"Standalone", standaloneOptions}, {"Cluster", clusterOptions}}

// standaloneOptions returns the options of the standalone Redis
// (OTPD_TEST_REDIS_URL), or skips the test if it is not reachable (fails it
// in CI).
func standaloneOptions(tb testing.TB) Options {
	url := os.Getenv("OTPD_TEST_REDIS_URL")
	if url == "" {
		url = defaultStandaloneURL
	}
	return reachable(tb, "Redis (OTPD_TEST_REDIS_URL)", url)
}

// clusterOptions returns the options of the Redis Cluster
// (OTPD_TEST_REDIS_CLUSTER: seed nodes), or skips the test if it is not
// reachable (fails it in CI).
func clusterOptions(tb testing.TB) Options {
	seeds := os.Getenv("OTPD_TEST_REDIS_CLUSTER")
	if seeds == "" {
		seeds = defaultClusterSeeds
	}
	return reachable(tb, "Redis Cluster (OTPD_TEST_REDIS_CLUSTER, started by .ci/redis-cluster)", "redis-cluster://"+seeds)
}

var probes sync.Map // URL → error, once per test binary

// reachable parses url and checks once that the server answers.
func reachable(tb testing.TB, what, url string) Options {
	tb.Helper()
	opt, err := ParseURL(url)
	if err != nil {
		tb.Fatalf("%s: %v", what, err)
	}
	probe, _ := probes.LoadOrStore(url, sync.OnceValue(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s, err := Open(ctx, opt)
		if err != nil {
			return err
		}
		return s.Close()
	}))
	if err := probe.(func() error)(); err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("%s at %s is required in CI: %v", what, strings.Join(opt.Addrs, ","), err)
		}
		tb.Skipf("%s at %s is not reachable, skipping: %v", what, strings.Join(opt.Addrs, ","), err)
	}
	return opt
}

// freshPrefix returns a key prefix no other test uses: an empty keyspace.
func freshPrefix(tb testing.TB) string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return "otpdtest-" + hex.EncodeToString(b) + ":"
}

// openStore opens a store with opt and registers its cleanup: it deletes
// every key under opt.KeyPrefix, then closes the store.
func openStore(tb testing.TB, opt Options) *Store {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := Open(ctx, opt)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() {
		defer s.Close()
		if err := deleteKeys(s, opt.KeyPrefix); err != nil {
			tb.Errorf("delete the test's keys: %v", err)
		}
	})
	return s
}

// deleteKeys deletes every key that starts with prefix, on every node.
func deleteKeys(s *Store, prefix string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, node := range s.c.Nodes() {
		var cursor uint64
		for {
			entry, err := node.Do(ctx, node.B().Scan().Cursor(cursor).Match(prefix+"*").Count(1000).Build()).AsScanEntry()
			if err != nil {
				return err
			}
			dels := make([]rueidis.Completed, len(entry.Elements))
			for i, key := range entry.Elements {
				dels[i] = s.c.B().Del().Key(key).Build()
			}
			for _, res := range s.c.DoMulti(ctx, dels...) {
				if err := res.Error(); err != nil {
					return err
				}
			}
			if cursor = entry.Cursor; cursor == 0 {
				break
			}
		}
	}
	return nil
}

// ttlStore adds storagetest.TTLReporter to a Store.
type ttlStore struct{ *Store }

func (s ttlStore) TTL(ctx context.Context, r storagetest.Record) (time.Duration, bool, error) {
	var key string
	switch r.Kind {
	case storagetest.CodeRecord:
		key = s.keys.code(r.Key, r.AppGeneration)
	case storagetest.FailuresRecord:
		key = s.keys.failures(r.Key.AppID, r.AppGeneration, r.Key.Destination)
	case storagetest.SendRecord:
		key = s.keys.send(r.Key.AppID, r.SendKey)
	default:
		return 0, false, fmt.Errorf("unknown record kind %d", r.Kind)
	}
	ms, err := s.c.Do(ctx, s.c.B().Pttl().Key(key).Build()).AsInt64()
	switch {
	case err != nil:
		return 0, false, err
	case ms == -2:
		return 0, false, nil
	case ms == -1:
		return 0, true, nil
	}
	return time.Duration(ms) * time.Millisecond, true, nil
}

// withPrefix returns opt with a fresh key prefix.
func withPrefix(tb testing.TB, opt Options) Options {
	opt.KeyPrefix = freshPrefix(tb)
	return opt
}

var suiteOptions = storagetest.Options{ExpiresByTTL: true}

func TestConformance(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			opt := be.options(t)
			storagetest.RunWith(t, func(t *testing.T) storage.Store {
				return ttlStore{openStore(t, withPrefix(t, opt))}
			}, suiteOptions)
		})
	}
}

func TestConformanceShared(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			opt := be.options(t)
			storagetest.RunShared(t, func(t *testing.T) (a, b storage.Store) {
				shared := withPrefix(t, opt)
				return openStore(t, shared), openStore(t, shared)
			})
		})
	}
}

func BenchmarkStore(b *testing.B) {
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			opt := be.options(b)
			storagetest.Bench(b, func(b *testing.B) storage.Store {
				return openStore(b, withPrefix(b, opt))
			})
		})
	}
}

// base is a time for the tests of this file that use injected times.
var base = time.Date(2030, time.March, 4, 5, 6, 7, 0, time.UTC)

// testApp is an application for the tests of this file.
func testApp(n int) storage.App {
	return storage.App{
		ID:         fmt.Sprintf("%032x", n),
		Name:       fmt.Sprintf("app %d", n),
		Tags:       map[string]string{},
		CreatedAt:  base,
		Generation: fmt.Sprintf("gen-%d", n),
		SMS:        storage.SMSChannel{Enabled: true, Version: 1, CreatedAt: base, UpdatedAt: base},
	}
}

// testCode is a code of app whose MAC is mac, valid 10 minutes from base.
func testCode(app storage.App, ref, mac string) storage.Code {
	return storage.Code{
		Key:             storage.CodeKey{AppID: app.ID, Destination: "+15550000001", ReferenceID: ref},
		AppGeneration:   app.Generation,
		MAC:             []byte(mac),
		AllowedAttempts: 3,
		CreatedAt:       base,
		ExpiresAt:       base.Add(10 * time.Minute),
	}
}

// attempt verifies c with a candidate MAC at base, under a roomy budget.
func attempt(c storage.Code, candidate string) storage.Verification {
	return storage.Verification{
		Key: c.Key, AppGeneration: c.AppGeneration, Now: base,
		Budget:  storage.FailureBudget{Limit: 1000, Window: time.Hour},
		Matches: func(stored []byte) bool { return string(stored) == candidate },
	}
}

// recordCode stores c through RecordSend, alone.
func recordCode(t *testing.T, s *Store, c storage.Code) {
	t.Helper()
	must(t, s.RecordSend(t.Context(), storage.SendRecord{Code: &c}))
}

// recordMessage stores m through RecordSend, alone.
func recordMessage(t *testing.T, s *Store, m storage.MessageRecord) {
	t.Helper()
	must(t, s.RecordSend(t.Context(), storage.SendRecord{Message: &m}))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func expectOutcome(t *testing.T, s storage.Store, what string, v storage.Verification, want storage.Outcome) {
	t.Helper()
	got, err := s.VerifyCode(t.Context(), v)
	if err != nil {
		t.Fatalf("%s: VerifyCode: %v", what, err)
	}
	if got != want {
		t.Errorf("%s: VerifyCode = %q, want %q", what, got, want)
	}
}

// TestCodeTTLInRedis checks the time to live Redis itself holds for a code:
// its validity, storage.ExpiredCodeKept and the margin (the conformance
// suite checks the outcomes); and that the failures it caused live the
// budget's window.
func TestCodeTTLInRedis(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			opt := withPrefix(t, be.options(t))
			opt.TTLMargin = 100 * time.Millisecond
			s := openStore(t, opt)
			app := testApp(1)
			must(t, s.CreateApp(t.Context(), app))
			c := testCode(app, "ref", "mac")
			c.CreatedAt = time.Now()
			c.ExpiresAt = c.CreatedAt.Add(1500 * time.Millisecond)
			recordCode(t, s, c)
			wrong := attempt(c, "other")
			wrong.Now = c.CreatedAt
			expectOutcome(t, s, "a wrong guess", wrong, storage.OutcomeWrong)
			record := storagetest.Record{Kind: storagetest.CodeRecord, Key: c.Key, AppGeneration: c.AppGeneration}
			ttl, found, err := ttlStore{s}.TTL(t.Context(), record)
			lives := 1500*time.Millisecond + storage.ExpiredCodeKept
			if err != nil || !found || ttl <= lives-time.Second || ttl > lives+opt.TTLMargin {
				t.Fatalf("TTL of the new code = %v, %v, %v; want about %v (at most %v more)", ttl, found, err, lives, opt.TTLMargin)
			}
			// The failure lives the budget's window (an hour).
			failures := storagetest.Record{Kind: storagetest.FailuresRecord, Key: c.Key, AppGeneration: c.AppGeneration}
			if ttl, found, err := (ttlStore{s}).TTL(t.Context(), failures); err != nil || !found || ttl < 59*time.Minute {
				t.Errorf("the failures: %v, %v, %v; want them kept for the window", ttl, found, err)
			}
		})
	}
}

// TestVerifyDecidesOnTheStateAfterMatches changes the code while Matches
// runs, between VerifyCode's two scripts: the second script decides on the
// state as it is then.
func TestVerifyDecidesOnTheStateAfterMatches(t *testing.T) {
	opt := standaloneOptions(t)
	cases := []struct {
		name string
		// meanwhile runs inside Matches, which returns right.
		meanwhile func(t *testing.T, s *Store, app storage.App, c storage.Code)
		right     bool
		limit     int // the attempt's budget limit; 0: roomy
		want      storage.Outcome
		// after checks the state left.
		after func(t *testing.T, s *Store, app storage.App, c storage.Code)
	}{
		{"ConsumedMeanwhile", func(t *testing.T, s *Store, app storage.App, c storage.Code) {
			expectOutcome(t, s, "the right code, meanwhile", attempt(c, "mac"), storage.OutcomeValid)
		}, true, 0, storage.OutcomeConsumed, nil},
		{"ExhaustedMeanwhile", func(t *testing.T, s *Store, app storage.App, c storage.Code) {
			for range c.AllowedAttempts {
				expectOutcome(t, s, "a wrong guess, meanwhile", attempt(c, "other"), storage.OutcomeWrong)
			}
		}, false, 0, storage.OutcomeExhausted, nil},
		{"BudgetSpentMeanwhile", func(t *testing.T, s *Store, app storage.App, c storage.Code) {
			other := testCode(app, "other-ref", "mac")
			recordCode(t, s, other)
			v := attempt(other, "other")
			v.Budget.Limit = 1
			expectOutcome(t, s, "a wrong guess on another code, meanwhile", v, storage.OutcomeWrong)
		}, true, 1, storage.OutcomeThrottled, nil},
		{"ReplacedMeanwhileRightForTheOldCode", func(t *testing.T, s *Store, app storage.App, c storage.Code) {
			c.MAC = []byte("new mac")
			c.AllowedAttempts = 1
			recordCode(t, s, c)
		}, true, 0, storage.OutcomeWrong, func(t *testing.T, s *Store, app storage.App, c storage.Code) {
			expectOutcome(t, s, "the new code after the counted attempt", attempt(c, "new mac"), storage.OutcomeExhausted)
		}},
		{"ReplacedMeanwhileByTheSameMAC", func(t *testing.T, s *Store, app storage.App, c storage.Code) {
			recordCode(t, s, c)
		}, true, 0, storage.OutcomeValid, nil},
		{"ReplacedMeanwhileWrong", func(t *testing.T, s *Store, app storage.App, c storage.Code) {
			c.MAC = []byte("new mac")
			c.AllowedAttempts = 2
			recordCode(t, s, c)
		}, false, 0, storage.OutcomeWrong, func(t *testing.T, s *Store, app storage.App, c storage.Code) {
			expectOutcome(t, s, "the new code", attempt(c, "new mac"), storage.OutcomeValid)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t, withPrefix(t, opt))
			app := testApp(1)
			must(t, s.CreateApp(t.Context(), app))
			c := testCode(app, "ref", "mac")
			recordCode(t, s, c)
			calls := 0
			v := attempt(c, "mac")
			if tc.limit > 0 {
				v.Budget.Limit = tc.limit
			}
			v.Matches = func(stored []byte) bool {
				calls++
				tc.meanwhile(t, s, app, c)
				return tc.right && string(stored) == "mac"
			}
			expectOutcome(t, s, "the attempt", v, tc.want)
			if calls != 1 {
				t.Errorf("Matches called %d times, want once", calls)
			}
			if tc.after != nil {
				tc.after(t, s, app, c)
			}
		})
	}
}

// TestIndexFollowsConcurrentCreateAndDelete races CreateApp and DeleteApp of
// one ID: afterwards the application is listed if and only if it exists.
func TestIndexFollowsConcurrentCreateAndDelete(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			opt := withPrefix(t, be.options(t))
			a, b := openStore(t, opt), openStore(t, opt)
			app := testApp(7)
			for round := range 20 {
				var wg sync.WaitGroup
				for i := range 8 {
					s := a
					if i%2 == 1 {
						s = b
					}
					wg.Go(func() {
						for range 5 {
							if i%2 == 0 {
								if err := s.CreateApp(t.Context(), app); err != nil && !errors.Is(err, storage.ErrAlreadyExists) {
									t.Errorf("CreateApp: %v", err)
								}
							} else if _, err := s.DeleteApp(t.Context(), app.ID); err != nil && !errors.Is(err, storage.ErrNotFound) {
								t.Errorf("DeleteApp: %v", err)
							}
						}
					})
				}
				wg.Wait()
				_, err := a.GetApp(t.Context(), app.ID)
				exists := err == nil
				list, lerr := a.ListApps(t.Context(), "", 0)
				must(t, lerr)
				if listed := len(list) == 1; listed != exists {
					t.Fatalf("round %d: app exists %v (%v) but listed %v", round, exists, err, listed)
				}
				indexed, ierr := a.c.Do(t.Context(), a.c.B().Zscore().Key(a.keys.apps()).Member(app.ID).Build()).ToString()
				if exists && ierr != nil {
					t.Fatalf("round %d: app exists but its index entry: %v, %v", round, indexed, ierr)
				}
			}
		})
	}
}

func TestRecordSendNeedsItsApplication(t *testing.T) {
	s := openStore(t, withPrefix(t, standaloneOptions(t)))
	app := testApp(1)
	orphan := testCode(app, "ref", "mac")
	expectErr := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("%s: RecordSend = %v, want ErrNotFound", what, err)
		}
	}
	expectErr("no application", s.RecordSend(t.Context(), storage.SendRecord{Code: &orphan}))
	must(t, s.CreateApp(t.Context(), app))
	expectOutcome(t, s, "a code put before its application existed", attempt(orphan, "mac"), storage.OutcomeValid)
	stale := testCode(app, "stale", "mac")
	stale.AppGeneration = "another generation"
	expectErr("another generation", s.RecordSend(t.Context(), storage.SendRecord{Code: &stale}))
	expectOutcome(t, s, "a code of another generation", attempt(stale, "mac"), storage.OutcomeUnknown)
}

func TestListAppsSkipsDanglingIndexEntries(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			s := openStore(t, withPrefix(t, be.options(t)))
			var want []string
			for n := 1; n <= 6; n++ {
				app := testApp(n)
				if n%2 == 0 {
					// An index entry whose hash is gone, as a crash
					// between DeleteApp's two steps leaves.
					must(t, s.index(t.Context(), app.ID))
					continue
				}
				must(t, s.CreateApp(t.Context(), app))
				want = append(want, app.ID)
			}
			var got []string
			after := ""
			for {
				page, err := s.ListApps(t.Context(), after, 2)
				must(t, err)
				if len(page) == 0 {
					break
				}
				if len(page) < 2 && len(got)+len(page) < len(want) {
					t.Errorf("ListApps(%q, 2) = %d apps before the end", after, len(page))
				}
				for _, app := range page {
					got = append(got, app.ID)
				}
				after = page[len(page)-1].ID
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("paged ListApps = %v, want %v", got, want)
			}
		})
	}
}

func TestOutboxIsCappedAndFiltersPastAPage(t *testing.T) {
	opt := withPrefix(t, standaloneOptions(t))
	opt.OutboxCap = 600
	s := openStore(t, opt)
	message := func(n int) storage.OutboxMessage {
		dest := "+15550000001"
		if n%3 == 0 {
			dest = "+15550000003"
		}
		return storage.OutboxMessage{MessageID: fmt.Sprint(n), AppID: "app", DestinationIdentity: dest, Body: "code\t\"" + fmt.Sprint(n),
			Encoding: "GSM-7", Segments: 1, CreatedAt: base.Add(time.Duration(n/2) * time.Millisecond)}
	}
	for n := range 900 {
		must(t, s.AppendOutbox(t.Context(), message(n)))
	}
	all, err := s.ListOutbox(t.Context(), storage.OutboxQuery{})
	must(t, err)
	if len(all) != 600 || all[0].MessageID != "300" || all[599].MessageID != "899" {
		t.Fatalf("after 900 appends under a cap of 600: %d messages, from %s to %s; want 600, from 300 to 899", len(all), all[0].MessageID, all[len(all)-1].MessageID)
	}
	for i, m := range all {
		if want := message(300 + i); m != want {
			t.Fatalf("message %d = %+v, want %+v", i, m, want)
		}
	}
	to3, err := s.ListOutbox(t.Context(), storage.OutboxQuery{Destination: "+15550000003"})
	must(t, err)
	if len(to3) != 200 || to3[0].MessageID != "300" || to3[199].MessageID != "897" {
		t.Errorf("to +15550000003: %d messages; want 200, from 300 to 897", len(to3))
	}
	newest, err := s.ListOutbox(t.Context(), storage.OutboxQuery{Destination: "+15550000003", Limit: 3})
	must(t, err)
	if len(newest) != 3 || newest[0].MessageID != "891" || newest[2].MessageID != "897" {
		t.Errorf("the newest 3 to +15550000003: %+v", newest)
	}
}

// testMessage is message record n to destination, created n seconds after
// base.
func testMessage(n int, destination string) storage.MessageRecord {
	at := base.Add(time.Duration(n) * time.Second)
	return storage.MessageRecord{MessageID: fmt.Sprintf("m%03d", n), AppID: "app", Carrier: "c", CarrierMessageID: fmt.Sprintf("x%03d", n),
		DestinationIdentity: destination, Status: storage.MessageSubmitted, CreatedAt: at, UpdatedAt: at}
}

// messageIDs lists the message IDs of recs.
func messageIDs(recs []storage.MessageRecord) []string {
	var ids []string
	for _, m := range recs {
		ids = append(ids, m.MessageID)
	}
	return ids
}

// keyCount counts the data keys that match pattern on a standalone Redis
// (not the probe key Ping writes).
func keyCount(t *testing.T, s *Store, pattern string) int {
	t.Helper()
	n := 0
	var cursor uint64
	for {
		entry, err := s.c.Do(t.Context(), s.c.B().Scan().Cursor(cursor).Match(pattern).Count(1000).Build()).AsScanEntry()
		must(t, err)
		for _, key := range entry.Elements {
			if key != s.keys.writeProbe() { // Ping's, not data
				n++
			}
		}
		if cursor = entry.Cursor; cursor == 0 {
			return n
		}
	}
}

func TestMessagesAreCapped(t *testing.T) {
	opt := withPrefix(t, standaloneOptions(t))
	opt.MessageCap = 5
	s := openStore(t, opt)
	var recs []storage.MessageRecord
	for n := range 12 {
		m := testMessage(n, fmt.Sprintf("+1555000000%d", n%2))
		if n%4 == 3 {
			m.CarrierMessageID = "" // no index entry
		}
		recs = append(recs, m)
		recordMessage(t, s, m)
	}
	got, err := s.ListMessages(t.Context(), storage.MessageQuery{})
	must(t, err)
	if want := messageIDs(recs[7:]); fmt.Sprint(messageIDs(got)) != fmt.Sprint(want) {
		t.Errorf("after 12 puts under a cap of 5: %v, want %v", messageIDs(got), want)
	}
	for _, m := range recs[:7] {
		if m.CarrierMessageID == "" {
			continue
		}
		if _, err := s.UpdateMessageStatus(t.Context(), m.Carrier, m.CarrierMessageID, storage.MessageStatusUpdate{Status: storage.MessageDelivered}); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("UpdateMessageStatus of trimmed %s: %v, want ErrNotFound", m.MessageID, err)
		}
	}
	if n := keyCount(t, s, opt.KeyPrefix+"msg:*"); n != 5 {
		t.Errorf("%d record hashes, want 5", n)
	}
	if n := keyCount(t, s, opt.KeyPrefix+"carrier-msg:*"); n != 3 { // m007 … m011 but m007 and m011
		t.Errorf("%d index entries, want 3", n)
	}
}

// TestLeftoversOfAnUnfinishedPutAreHarmless makes what a put of a message
// record that stopped between its steps leaves, and checks that listings and reports
// ignore it and that Purge cleans it up without touching the live record.
func TestLeftoversOfAnUnfinishedPutAreHarmless(t *testing.T) {
	opt := withPrefix(t, standaloneOptions(t))
	s := openStore(t, opt)
	live := testMessage(1, "+15550000001")
	recordMessage(t, s, live)
	leftovers := []rueidis.Completed{
		// A member whose hash was never written.
		s.c.B().Zadd().Key(s.keys.messages()).ScoreMember().ScoreMember(float64(unixMS(base)), messageMember("never", "+15550000001")).Build(),
		// The member of the live record under a destination it had
		// before it was put again.
		s.c.B().Zadd().Key(s.keys.messages()).ScoreMember().ScoreMember(float64(unixMS(base)), messageMember(live.MessageID, "+15550000009")).Build(),
		// An index entry for a carrier message ID the live record had
		// before.
		s.c.B().Set().Key(s.keys.carrierMessage(live.Carrier, "before")).Value(indexEntry("v0", live.MessageID)).Build(),
	}
	for _, res := range s.c.DoMulti(t.Context(), leftovers...) {
		must(t, res.Error())
	}
	for _, q := range []storage.MessageQuery{{}, {Limit: 1}, {Destination: "+15550000009"}, {Destination: "+15550000001"}} {
		got, err := s.ListMessages(t.Context(), q)
		must(t, err)
		want := []string{live.MessageID}
		if q.Destination == "+15550000009" {
			want = nil
		}
		if fmt.Sprint(messageIDs(got)) != fmt.Sprint(want) {
			t.Errorf("ListMessages(%+v) = %v, want %v", q, messageIDs(got), want)
		}
	}
	if _, err := s.UpdateMessageStatus(t.Context(), live.Carrier, "before", storage.MessageStatusUpdate{Status: storage.MessageDelivered}); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("UpdateMessageStatus through a left-over index entry: %v, want ErrNotFound", err)
	}
	// The left-over members are a second older than the live record.
	n, err := s.Purge(t.Context(), base.Add(time.Minute+500*time.Millisecond), storage.Retention{BatchSize: 10, MessageMaxAge: time.Minute})
	must(t, err)
	if n != 2 {
		t.Errorf("Purge deleted %d, want the 2 left-over members", n)
	}
	got, err := s.ListMessages(t.Context(), storage.MessageQuery{})
	must(t, err)
	if len(got) != 1 || got[0] != live {
		t.Errorf("ListMessages after Purge = %+v, want the live record", got)
	}
	if card, err := s.c.Do(t.Context(), s.c.B().Zcard().Key(s.keys.messages()).Build()).AsInt64(); err != nil || card != 1 {
		t.Errorf("listing after Purge: %d members (%v), want 1", card, err)
	}
}

// TestPurgeOfMessagesLoadsItsScripts purges message records on a server
// that has forgotten its scripts: the scripts run once per record, in one
// round trip, fall back to EVAL.
func TestPurgeOfMessagesLoadsItsScripts(t *testing.T) {
	s := openStore(t, withPrefix(t, standaloneOptions(t)))
	for n := range 3 {
		recordMessage(t, s, testMessage(n, "+15550000001"))
	}
	must(t, s.c.Do(t.Context(), s.c.B().ScriptFlush().Build()).Error())
	n, err := s.Purge(t.Context(), base.Add(time.Hour), storage.Retention{BatchSize: 10, MessageMaxAge: time.Minute})
	must(t, err)
	if n != 3 {
		t.Errorf("Purge deleted %d, want 3", n)
	}
	if got := keyCount(t, s, s.keys.prefix+"*"); got != 0 {
		t.Errorf("%d keys left after Purge, want none", got)
	}
}

// TestRecordSendLoadsItsScripts records a send on servers that have
// forgotten their scripts: each script, the completion's too, which runs in
// one round trip with other commands, falls back to EVAL.
func TestRecordSendLoadsItsScripts(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			s := openStore(t, withPrefix(t, be.options(t)))
			app := testApp(1)
			must(t, s.CreateApp(t.Context(), app))
			claim := storage.SendClaim{AppID: app.ID, Key: "inv-1", Now: base, LeaseUntil: base.Add(time.Minute)}
			if _, claimed, err := s.ClaimSend(t.Context(), claim); err != nil || !claimed {
				t.Fatalf("ClaimSend = %v, %v; want claimed", claimed, err)
			}
			for _, node := range s.c.Nodes() {
				must(t, node.Do(t.Context(), node.B().ScriptFlush().Build()).Error())
			}
			c, m := testCode(app, "ref", "mac"), testMessage(1, "+15550000001")
			done := storage.SendCompletion{AppID: app.ID, Key: claim.Key, Result: []byte("result"), ExpiresAt: base.Add(10 * time.Minute)}
			must(t, s.RecordSend(t.Context(), storage.SendRecord{Code: &c, Message: &m, Completion: &done}))
			expectOutcome(t, s, "the code", attempt(c, "mac"), storage.OutcomeValid)
			got, err := s.ListMessages(t.Context(), storage.MessageQuery{})
			must(t, err)
			if len(got) != 1 || got[0] != m {
				t.Errorf("ListMessages = %+v, want the record", got)
			}
			claim.Now = base.Add(time.Second)
			if result, claimed, err := s.ClaimSend(t.Context(), claim); err != nil || claimed || string(result) != "result" {
				t.Errorf("ClaimSend of a retry = %q, %v, %v; want the completed result", result, claimed, err)
			}
		})
	}
}

// TestKeysOfADestinationShareASlot asks the cluster for the slots of the
// keys each script uses together.
func TestKeysOfADestinationShareASlot(t *testing.T) {
	s := openStore(t, withPrefix(t, clusterOptions(t)))
	key := storage.CodeKey{AppID: "0123456789abcdef0123456789abcdef", Destination: "+15550000001", ReferenceID: "login {1}:x"}
	groups := [][]string{
		{s.keys.code(key, "gen:{a}"), s.keys.failures(key.AppID, "gen:{a}", key.Destination), s.keys.code(key, "other")},
		{s.keys.app(key.AppID), s.keys.send(key.AppID, "invocation {x}")},
		{s.keys.outbox(), s.keys.outboxSeq()},
	}
	for _, keys := range groups {
		var slots []int64
		for _, k := range keys {
			slot, err := s.c.Do(t.Context(), s.c.B().ClusterKeyslot().Key(k).Build()).AsInt64()
			must(t, err)
			slots = append(slots, slot)
		}
		for i := range slots {
			if slots[i] != slots[0] {
				t.Errorf("keys %q: slots %v, want one", keys, slots)
				break
			}
		}
	}
	other := storage.CodeKey{AppID: key.AppID, Destination: "+15550000002", ReferenceID: "x"}
	spread := map[int64]bool{}
	for i := range 32 {
		other.Destination = fmt.Sprintf("+1555000%04d", i)
		slot, err := s.c.Do(t.Context(), s.c.B().ClusterKeyslot().Key(s.keys.code(other, "g")).Build()).AsInt64()
		must(t, err)
		spread[slot] = true
	}
	if len(spread) < 16 {
		t.Errorf("32 destinations of one application use %d slots, want them spread", len(spread))
	}
}

func TestKeyLayout(t *testing.T) {
	k := keys{prefix: "otpd:"}
	key := storage.CodeKey{AppID: "0123456789abcdef0123456789abcdef", Destination: "+15550000001", ReferenceID: "login-1"}
	for _, tc := range []struct{ got, want string }{
		{k.app(key.AppID), "otpd:app:{0123456789abcdef0123456789abcdef}"},
		{k.apps(), "otpd:apps"},
		{k.code(key, "g1"), "otpd:{0123456789abcdef0123456789abcdef:+15550000001}:code:g1:login-1"},
		{k.failures(key.AppID, "g1", key.Destination), "otpd:{0123456789abcdef0123456789abcdef:+15550000001}:fail:g1"},
		{k.send(key.AppID, "inv:1"), "otpd:send:{0123456789abcdef0123456789abcdef}:inv:1"},
		{k.outbox(), "otpd:{outbox}"},
		{k.outboxSeq(), "otpd:{outbox}:seq"},
		{k.message("0f8c2a4e"), "otpd:msg:{0f8c2a4e}"},
		{k.carrierMessage("twilio", "SM123"), "otpd:carrier-msg:{twilio:SM123}"},
		{k.carrierMessage("a:b}", "c{d"), "otpd:carrier-msg:{a%3Ab%7D:c%7Bd}"},
		{k.messages(), "otpd:{messages}"},
		// Values with the separators cannot end the hash tag or pass for
		// another split of the parts.
		{k.code(storage.CodeKey{AppID: "a}b", Destination: "c:d{", ReferenceID: "e:f"}, "g:h%"), "otpd:{a%7Db:c%3Ad%7B}:code:g%3Ah%25:e:f"},
	} {
		if tc.got != tc.want {
			t.Errorf("key %q, want %q", tc.got, tc.want)
		}
	}
	a := k.code(storage.CodeKey{AppID: "x", Destination: "y", ReferenceID: "r:s"}, "g")
	b := k.code(storage.CodeKey{AppID: "x", Destination: "y", ReferenceID: "s"}, "g:r")
	if a == b {
		t.Errorf("two codes share the key %q", a)
	}
}

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want Options
	}{
		{"redis://127.0.0.1:6379/0", Options{Addrs: []string{"127.0.0.1:6379"}}},
		{"redis://localhost", Options{Addrs: []string{"localhost:6379"}}},
		{"redis://:secret@redis.internal:6380/3", Options{Addrs: []string{"redis.internal:6380"}, Password: "secret", DB: 3}},
		{"redis://otpd:p%40ss@[::1]:6379/", Options{Addrs: []string{"[::1]:6379"}, Username: "otpd", Password: "p@ss"}},
		{"redis-cluster://10.0.0.1:7000,10.0.0.2:7000,10.0.0.3", Options{Addrs: []string{"10.0.0.1:7000", "10.0.0.2:7000", "10.0.0.3:6379"}, Cluster: true}},
		{"redis-cluster://u:p@h1:1,h2:2/0", Options{Addrs: []string{"h1:1", "h2:2"}, Cluster: true, Username: "u", Password: "p"}},
	} {
		got, err := ParseURL(tc.url)
		if err != nil {
			t.Errorf("ParseURL(%q): %v", tc.url, err)
			continue
		}
		if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", tc.want) {
			t.Errorf("ParseURL(%q) = %+v, want %+v", tc.url, got, tc.want)
		}
	}
	for _, bad := range []string{
		"", "127.0.0.1:6379", "http://h:1", "redis://", "redis://h:1/x", "redis://h:99999", "redis://h1:1,h2:2",
		"redis-cluster://h:1/2", "redis://h:1/0?prefix=x", "redis://::1",
	} {
		if _, err := ParseURL(bad); err == nil {
			t.Errorf("ParseURL(%q) = nil error, want one", bad)
		}
	}
	if _, err := ParseURL("redis://user:hunter2@h:1/%zz"); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("ParseURL of a bad URL with a password: %v; want an error without the password", err)
	}
}

func TestOpenRejectsBadOptions(t *testing.T) {
	for _, opt := range []Options{
		{},
		{Addrs: []string{"h:1"}, KeyPrefix: "a{b}:"},
		{Addrs: []string{"h:1", "h:2"}},
		{Addrs: []string{"h:1"}, Cluster: true, DB: 1},
		{Addrs: []string{"h:1"}, DB: -1},
		{Addrs: []string{"h:1"}, Timeout: -time.Second},
		{Addrs: []string{"h:1"}, OutboxCap: -1},
		{Addrs: []string{"h:1"}, MessageCap: -1},
	} {
		if s, err := Open(t.Context(), opt); err == nil {
			s.Close()
			t.Errorf("Open(%+v) = nil error, want one", opt)
		}
	}
}

func TestOpenNamesWhatIsNotThere(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	start := time.Now()
	_, err = Open(t.Context(), Options{Addrs: []string{addr}})
	if err == nil || !strings.Contains(err.Error(), addr) {
		t.Errorf("Open of %s = %v, want an error naming it", addr, err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Open took %v to fail", d)
	}
	opt := standaloneOptions(t)
	opt.Cluster = true
	if s, err := Open(t.Context(), opt); err == nil {
		s.Close()
		t.Errorf("Open of a standalone Redis as a cluster succeeded")
	}
}

func TestClusterIsDetected(t *testing.T) {
	opt := clusterOptions(t)
	opt.Addrs, opt.Cluster = opt.Addrs[:1], false // one seed, no flag
	s := openStore(t, withPrefix(t, opt))
	if !s.Cluster() {
		t.Errorf("a cluster node opened without Cluster: Cluster() = false")
	}
	if standalone := openStore(t, withPrefix(t, standaloneOptions(t))); standalone.Cluster() {
		t.Errorf("a standalone Redis: Cluster() = true")
	}
}

// TestOutage cuts the store off Redis, through a proxy: calls fail within a
// few seconds, and the same store works again once Redis is back.
func TestOutage(t *testing.T) {
	opt := withPrefix(t, standaloneOptions(t))
	p := faultproxy.Start(t, opt.Addrs[0])
	// Keys are deleted through a direct store: the proxied one may be cut.
	openStore(t, opt)
	proxied := opt
	proxied.Addrs = []string{p.Addr()}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	s, err := Open(ctx, proxied)
	must(t, err)
	defer s.Close()

	app := testApp(1)
	must(t, s.CreateApp(t.Context(), app))
	first := testCode(app, "first", "mac")
	recordCode(t, s, first)

	// bound is generous: the calls should fail within Options.Timeout (5s)
	// at most, and at once when connections are refused.
	const bound = 10 * time.Second
	expectFailures := func(what string) {
		t.Helper()
		calls := map[string]func(ctx context.Context) error{
			"Ping": s.Ping,
			"GetApp": func(ctx context.Context) error {
				_, err := s.GetApp(ctx, app.ID)
				if errors.Is(err, storage.ErrNotFound) {
					return nil // a negative answer: wrong
				}
				return err
			},
			"VerifyCode": func(ctx context.Context) error {
				_, err := s.VerifyCode(ctx, attempt(first, "mac"))
				return err
			},
			"RecordSend": func(ctx context.Context) error {
				c := testCode(app, "during", "mac")
				return s.RecordSend(ctx, storage.SendRecord{Code: &c})
			},
			"ClaimSend": func(ctx context.Context) error {
				_, _, err := s.ClaimSend(ctx, storage.SendClaim{AppID: app.ID, Key: "k", Now: base, LeaseUntil: base.Add(time.Minute)})
				return err
			},
		}
		var wg sync.WaitGroup
		for name, call := range calls {
			wg.Go(func() {
				start := time.Now()
				err := call(t.Context())
				took := time.Since(start)
				if err == nil {
					t.Errorf("%s: %s succeeded", what, name)
				} else if took > bound {
					t.Errorf("%s: %s failed after %v, want within %v", what, name, took, bound)
				} else {
					t.Logf("%s: %s failed after %v: %v", what, name, took.Round(time.Millisecond), err)
				}
			})
		}
		wg.Wait()
	}
	expectRecovery := func(what string, ref string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for s.Ping(t.Context()) != nil {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the store still fails 15s after Redis came back", what)
			}
			time.Sleep(100 * time.Millisecond)
		}
		got, err := s.GetApp(t.Context(), app.ID)
		if err != nil || got.ID != app.ID {
			t.Errorf("%s: GetApp = %v, %v", what, got.ID, err)
		}
		c := testCode(app, ref, "mac")
		recordCode(t, s, c)
		expectOutcome(t, s, what+": a new code", attempt(c, "mac"), storage.OutcomeValid)
	}

	p.Set(t, faultproxy.Refuse)
	expectFailures("Redis down")
	p.Set(t, faultproxy.Forward)
	expectRecovery("after Redis came back", "after-down")
	expectOutcome(t, s, "the code put before the outage", attempt(first, "mac"), storage.OutcomeValid)

	p.Set(t, faultproxy.Blackhole)
	expectFailures("Redis hung")
	p.Set(t, faultproxy.Forward)
	expectRecovery("after Redis answered again", "after-hang")
}

// TestDurabilityRisk starts Redis servers of its own with each persistence
// setting and checks what DurabilityRisk reports of them.
func TestDurabilityRisk(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string // in the risk; "" for none
	}{
		{"AppendOnlyFile", []string{"--appendonly", "yes", "--appendfsync", "always"}, ""},
		{"SnapshotsOnly", []string{"--appendonly", "no", "--save", "3600 1"}, "since its last snapshot"},
		{"NoPersistence", []string{"--appendonly", "no", "--save", ""}, "persists nothing"},
		{"FlushesLeftToTheSystem", []string{"--appendonly", "yes", "--appendfsync", "no"}, "(appendfsync no)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := redistest.Start(t, tc.args...)
			s := openStore(t, Options{Addrs: []string{addr}, KeyPrefix: freshPrefix(t)})
			risk, err := s.DurabilityRisk(t.Context())
			if err != nil {
				t.Fatalf("DurabilityRisk: %v", err)
			}
			if (tc.want == "") != (risk == "") || !strings.Contains(risk, tc.want) {
				t.Errorf("DurabilityRisk = %q, want %q", risk, cmp.Or(tc.want, "none"))
			}
		})
	}
}

// Ping fails when Redis answers but refuses writes (out of memory under
// noeviction, as a replica would refuse them), so that /readyz says so.
func TestPingNeedsWrites(t *testing.T) {
	addr := redistest.Start(t, "--maxmemory-policy", "noeviction")
	s := openStore(t, Options{Addrs: []string{addr}, KeyPrefix: freshPrefix(t)})
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	admin := s.c // CONFIG SET through the store's own client
	if err := admin.Do(t.Context(), admin.B().ConfigSet().ParameterValue().ParameterValue("maxmemory", "1").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(t.Context()); err == nil || !strings.Contains(err.Error(), "refuses writes") {
		t.Errorf("Ping of a Redis out of memory: %v, want an error saying it refuses writes", err)
	}
	if err := admin.Do(t.Context(), admin.B().ConfigSet().ParameterValue().ParameterValue("maxmemory", "0").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping once Redis has memory again: %v", err)
	}
}
