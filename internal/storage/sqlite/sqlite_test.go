package sqlite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpd/otpd/internal/storage"
	"github.com/otpd/otpd/internal/storage/storagetest"
)

// openStore opens the database at path and closes it when tb ends.
func openStore(tb testing.TB, path string, opts ...Option) *Store {
	tb.Helper()
	s, err := Open(tb.Context(), path, opts...)
	if err != nil {
		tb.Fatalf("Open(%s): %v", path, err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store {
		return openStore(t, filepath.Join(t.TempDir(), "otpd.db"))
	})
}

func TestConformanceShared(t *testing.T) {
	storagetest.RunShared(t, func(t *testing.T) (a, b storage.Store) {
		path := filepath.Join(t.TempDir(), "otpd.db")
		return openStore(t, path), openStore(t, path)
	})
}

func BenchmarkStore(b *testing.B) {
	storagetest.Bench(b, func(b *testing.B) storage.Store {
		return openStore(b, filepath.Join(b.TempDir(), "otpd.db"))
	})
}

func TestOpenCreatesPrivateFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a b", "c?d#e%f")
	path := filepath.Join(dir, "otpd.db")
	s := openStore(t, path)
	if err := s.AppendOutbox(t.Context(), storage.OutboxMessage{MessageID: "m"}); err != nil {
		t.Fatalf("AppendOutbox: %v", err)
	}
	for _, f := range []struct {
		path string
		want os.FileMode
	}{{dir, os.ModeDir | 0o700}, {path, 0o600}, {path + "-wal", 0o600}, {path + "-shm", 0o600}} {
		info, err := os.Stat(f.path)
		if err != nil {
			t.Fatalf("Stat: %v", err)
		}
		if got := info.Mode(); got != f.want {
			t.Errorf("mode of %s = %v, want %v", f.path, got, f.want)
		}
	}
}

// schemaVersions returns the versions recorded in schema_migrations.
func schemaVersions(t *testing.T, s *Store) []int {
	t.Helper()
	rows, err := s.rdb.QueryContext(t.Context(), `SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatalf("read schema_migrations: %v", err)
	}
	defer rows.Close()
	var versions []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatalf("read schema_migrations: %v", err)
		}
		versions = append(versions, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("read schema_migrations: %v", err)
	}
	return versions
}

func TestMigrationsAreVersionedAndIdempotent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "otpd.db")
	var want []int
	for v := range migrations {
		want = append(want, v+1)
	}
	app := storage.App{ID: strings.Repeat("a", 32), Name: "kept", Generation: "g"}
	first, err := Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if got := schemaVersions(t, first); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("versions after the first Open = %v, want %v", got, want)
	}
	if err := first.CreateApp(t.Context(), app); err != nil {
		t.Fatalf("CreateApp: %v", err)
	}
	if err := first.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	again := openStore(t, path)
	if got := schemaVersions(t, again); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("versions after reopening = %v, want %v", got, want)
	}
	if _, err := again.GetApp(t.Context(), app.ID); err != nil {
		t.Errorf("GetApp after reopening: %v", err)
	}
}

// TestMigrationUpgradesAVersion1Database rolls a database back to schema
// version 1 (before the message records and the settings) and checks that
// Open upgrades it, keeping its data.
func TestMigrationUpgradesAVersion1Database(t *testing.T) {
	path := filepath.Join(t.TempDir(), "otpd.db")
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	app := storage.App{ID: strings.Repeat("b", 32), Name: "kept", Generation: "g"}
	if err := s.CreateApp(t.Context(), app); err != nil {
		t.Fatalf("CreateApp: %v", err)
	}
	err = s.w.do(t.Context(), func(ctx context.Context, tx *stmts) error {
		for _, q := range []string{`DROP TABLE messages`, `DROP TABLE settings`, `DELETE FROM schema_migrations WHERE version > 1`} {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("%s: %w", q, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("roll back to version 1: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = openStore(t, path)
	if got := schemaVersions(t, s); len(got) != len(migrations) {
		t.Errorf("versions after the upgrade = %v, want 1 to %d", got, len(migrations))
	}
	if _, err := s.GetApp(t.Context(), app.ID); err != nil {
		t.Errorf("GetApp after the upgrade: %v", err)
	}
	m := storage.MessageRecord{MessageID: "m", AppID: app.ID, Carrier: "c", CarrierMessageID: "x", Status: storage.MessageSubmitted}
	c := storage.Code{Key: storage.CodeKey{AppID: app.ID, Destination: "+15550000001", ReferenceID: "ref"}, AppGeneration: app.Generation, MAC: []byte("mac"), AllowedAttempts: 3}
	if err := s.RecordSend(t.Context(), storage.SendRecord{Code: &c, Message: &m}); err != nil {
		t.Fatalf("RecordSend after the upgrade: %v", err)
	}
	if got, err := s.UpdateMessageStatus(t.Context(), "c", "x", storage.MessageStatusUpdate{Status: storage.MessageDelivered}); err != nil || got.Status != storage.MessageDelivered {
		t.Errorf("UpdateMessageStatus after the upgrade = %+v, %v", got, err)
	}
	if held, recorded, err := s.KeyCheck(t.Context(), "check", false); err != nil || held != "check" || !recorded {
		t.Errorf("KeyCheck after the upgrade = %q, recorded %v, %v; want check, recorded", held, recorded, err)
	}
}

func TestNewerSchemaIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "otpd.db")
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	err = s.w.do(t.Context(), func(ctx context.Context, tx *stmts) error {
		_, err := tx.ExecContext(ctx, insertSchemaVersion, len(migrations)+1)
		return err
	})
	if err != nil {
		t.Fatalf("record a future version: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s, err = Open(t.Context(), path)
	if err == nil {
		s.Close()
		t.Fatal("Open of a database from a newer otpd succeeded, want an error")
	}
	if !strings.Contains(err.Error(), "newer") {
		t.Errorf("Open of a newer database: error %q, want it to say the schema is newer", err)
	}
	t.Logf("error: %v", err)
}

func TestPragmas(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "otpd.db"), WithBusyTimeout(3*time.Second), WithReadConns(1))
	// synchronous=NORMAL (1): the writer flushes the log itself before it
	// answers (TestEveryAnsweredWriteWasFlushed).
	want := map[string]string{"journal_mode": "wal", "synchronous": "1", "foreign_keys": "1", "busy_timeout": "3000", "temp_store": "2", "wal_autocheckpoint": "4096", "cache_size": "-32768"}
	got := map[string]string{}
	err := s.w.do(t.Context(), func(ctx context.Context, tx *stmts) error {
		for name := range want {
			var v string
			if err := tx.QueryRowContext(ctx, "PRAGMA "+name).Scan(&v); err != nil {
				return fmt.Errorf("PRAGMA %s: %w", name, err)
			}
			got[name] = v
		}
		return nil
	})
	if err != nil {
		t.Fatalf("read the writer's pragmas: %v", err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("writer pragmas = %v, want %v", got, want)
	}
	var queryOnly string
	if err := s.rdb.QueryRowContext(t.Context(), "PRAGMA query_only").Scan(&queryOnly); err != nil {
		t.Fatalf("PRAGMA query_only: %v", err)
	}
	if queryOnly != "1" {
		t.Errorf("read connection: query_only = %s, want 1", queryOnly)
	}
	if _, err := s.rdb.ExecContext(t.Context(), `DELETE FROM apps`); err == nil {
		t.Error("a read connection wrote, want it refused")
	}
}

func TestEveryAnsweredWriteWasFlushed(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "otpd.db"))
	var flushedBefore []int64
	for i := range 3 {
		err := s.w.do(t.Context(), func(ctx context.Context, tx *stmts) error {
			flushedBefore = append(flushedBefore, s.Stats().Flushes)
			_, err := tx.ExecContext(ctx, "INSERT INTO sends (app_id, key, result, until_ms) VALUES ('a', ?, NULL, 0)", i)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Stats().Flushes; got <= flushedBefore[i] {
			t.Fatalf("write %d answered after %d flushes, as many as before it ran", i, got)
		}
	}
}

func TestFlushBucket(t *testing.T) {
	last := len(FlushBounds)
	for _, c := range []struct {
		d    time.Duration
		want int
	}{
		{0, 0},
		{FlushBounds[0], 0},
		{FlushBounds[0] + 1, 1},
		{time.Millisecond, 5},
		{time.Millisecond + 1, 6},
		{FlushBounds[last-1], last - 1},
		{FlushBounds[last-1] + 1, last},
		{time.Hour, last},
	} {
		if got := flushBucket(c.d); got != c.want {
			t.Errorf("flushBucket(%s) = %d, want %d", c.d, got, c.want)
		}
	}
}

// TestFlushesAreCountedByDuration: a single write's flush is counted in the
// bucket its own duration falls in. (On tmpfs every flush falls in the
// first bucket, so only a real disk tells buckets apart here;
// TestFlushBucket covers the bucketing itself.)
func TestFlushesAreCountedByDuration(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "otpd.db"))
	for i := range 5 {
		before := s.Stats()
		err := s.w.do(t.Context(), func(ctx context.Context, tx *stmts) error {
			_, err := tx.ExecContext(ctx, "INSERT INTO sends (app_id, key, result, until_ms) VALUES ('a', ?, NULL, 0)", i)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		after := s.Stats()
		if n := after.Flushes - before.Flushes; n != 1 {
			t.Fatalf("write %d: %d flushes, want 1", i, n)
		}
		took := after.FlushTime - before.FlushTime
		for b := range after.FlushesWithin {
			want := int64(0)
			if b == flushBucket(took) {
				want = 1
			}
			if got := after.FlushesWithin[b] - before.FlushesWithin[b]; got != want {
				t.Errorf("write %d, a flush of %s: bucket %d counted %d, want %d (%v)", i, took, b, got, want, after.FlushesWithin)
			}
		}
	}
}

// TestTheLogStaysBounded: under writes without pause, checkpoints still
// start the write-ahead log over, so that it does not grow without end.
func TestTheLogStaysBounded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "otpd.db")
	s := openStore(t, path)
	app := storage.App{ID: strings.Repeat("a", 32), Name: "busy", Generation: "g"}
	if err := s.CreateApp(t.Context(), app); err != nil {
		t.Fatal(err)
	}
	const goroutines, each = 32, 400
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				c := storage.Code{
					Key:           storage.CodeKey{AppID: app.ID, Destination: fmt.Sprintf("+1555%07d", g*each+i), ReferenceID: "ref"},
					AppGeneration: app.Generation, MAC: bytes.Repeat([]byte{byte(i)}, 32), AllowedAttempts: 3,
				}
				if err := s.RecordSend(t.Context(), storage.SendRecord{Code: &c}); err != nil {
					t.Error(err)
					return
				}
				if _, err := s.DestinationLockout(t.Context(), app.ID, app.Generation, c.Key.Destination, time.Now(), storage.FailureBudget{Limit: 3, Window: time.Hour}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	info, err := os.Stat(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	const limit = 32 << 20
	if info.Size() > limit {
		t.Errorf("the write-ahead log is %d bytes after %d writes, want at most %d", info.Size(), goroutines*each, limit)
	}
	t.Logf("write-ahead log: %d bytes after %d writes", info.Size(), goroutines*each)
}

func TestTheLogIsCheckpointedInTheBackground(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "otpd.db"))
	app := storage.App{ID: strings.Repeat("a", 32), Name: "checkpointed", Generation: "g"}
	if err := s.CreateApp(t.Context(), app); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); s.Stats().Checkpoints == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint 10s after a write: %+v", s.Stats())
		}
	}
	if st := s.Stats(); st.CheckpointFailures != 0 {
		t.Errorf("checkpoints failed: %+v", st)
	}
}

func TestAFailedFlushStopsTheWriter(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "otpd.db"))
	s.w.walPath = filepath.Join(t.TempDir(), "missing", "otpd.db-wal") // the first flush cannot open it
	app := storage.App{ID: strings.Repeat("a", 32), Name: "unflushed", Generation: "g"}
	if err := s.CreateApp(t.Context(), app); err == nil || !strings.Contains(err.Error(), "flush") {
		t.Fatalf("CreateApp with a log that cannot be flushed: error %v, want one about the flush", err)
	}
	if err := s.Ping(t.Context()); err == nil {
		t.Error("Ping after a failed flush succeeded, want an error")
	}
	app.ID = strings.Repeat("b", 32)
	if err := s.CreateApp(t.Context(), app); err == nil || !strings.Contains(err.Error(), "flush") {
		t.Errorf("CreateApp after a failed flush: error %v, want the flush's", err)
	}
}

func TestGroupCommitBatches(t *testing.T) {
	const maxBatch = 16
	s, app := openWithApp(t, WithMaxBatch(maxBatch))
	before := s.Stats()
	const goroutines, each = 64, 10
	recordCodes(t, t.Context(), s, app, goroutines, each)
	after := s.Stats()
	writes, commits := after.Writes-before.Writes, after.Commits-before.Commits
	t.Logf("%d writes in %d commits (%.1f writes per commit), %d flushes", writes, commits, float64(writes)/float64(commits), after.Flushes-before.Flushes)
	if writes != goroutines*each {
		t.Errorf("writes = %d, want %d", writes, goroutines*each)
	}
	if commits >= writes || commits < writes/maxBatch {
		t.Errorf("commits = %d for %d concurrent writes, want fewer, but at least one per %d writes", commits, writes, maxBatch)
	}
}

// openWithApp opens a store in a new directory with opts and creates an
// application in it.
func openWithApp(t *testing.T, opts ...Option) (*Store, storage.App) {
	t.Helper()
	s := openStore(t, filepath.Join(t.TempDir(), "otpd.db"), opts...)
	app := storage.App{ID: strings.Repeat("a", 32), Name: t.Name(), Generation: "g"}
	if err := s.CreateApp(t.Context(), app); err != nil {
		t.Fatalf("CreateApp: %v", err)
	}
	return s, app
}

// recordCodes stores codes for goroutines destinations at once, each
// destination's each codes one after the other.
func recordCodes(t *testing.T, ctx context.Context, s *Store, app storage.App, goroutines, each int) {
	t.Helper()
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				c := storage.Code{
					Key:           storage.CodeKey{AppID: app.ID, Destination: fmt.Sprintf("+1555%07d", g), ReferenceID: fmt.Sprint(i)},
					AppGeneration: app.Generation, MAC: []byte("mac"), AllowedAttempts: 3,
				}
				if err := s.RecordSend(ctx, storage.SendRecord{Code: &c}); err != nil {
					t.Errorf("RecordSend: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestCommitDelayDoesNotHoldBackWaitingWriters: when every writer is
// waiting for the open group, no write is on its way, and the group is
// flushed without waiting out the delay.
func TestCommitDelayDoesNotHoldBackWaitingWriters(t *testing.T) {
	s, app := openWithApp(t, WithCommitDelay(time.Hour))
	// Held back for the delay, a write would end the test with its
	// deadline; closing the store lets the writer go on.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	before := s.Stats()
	recordCodes(t, ctx, s, app, 64, 5)
	after := s.Stats()
	t.Logf("%d writes in %d flushes", after.Writes-before.Writes, after.Flushes-before.Flushes)
}

func TestCommitDelayDoesNotHoldBackALoneWriter(t *testing.T) {
	s, app := openWithApp(t, WithCommitDelay(time.Hour))
	// Each write waits for its flush; a write held back for the delay
	// would end the test with its deadline.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for i := range 20 {
		c := storage.Code{
			Key:           storage.CodeKey{AppID: app.ID, Destination: "+15550000001", ReferenceID: fmt.Sprint(i)},
			AppGeneration: app.Generation, MAC: []byte("mac"), AllowedAttempts: 3,
		}
		if err := s.RecordSend(ctx, storage.SendRecord{Code: &c}); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
}

// holdWriter makes s's writer wait, inside a transaction, until release is
// called; it returns once the writer is held.
func holdWriter(t *testing.T, s *Store) (release func()) {
	t.Helper()
	held, done := make(chan struct{}), make(chan struct{})
	var holding sync.Once // the writer may run a write twice
	go s.w.do(context.Background(), func(ctx context.Context, tx *stmts) error {
		holding.Do(func() { close(held) })
		<-done
		return nil
	})
	<-held
	var once sync.Once
	release = func() { once.Do(func() { close(done) }) }
	t.Cleanup(release)
	return release
}

// waitQueued waits until n operations are queued for s's writer.
func waitQueued(t *testing.T, s *Store, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); len(s.w.ops) < n; {
		if time.Now().After(deadline) {
			t.Fatalf("%d writes queued, want %d", len(s.w.ops), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestFailedWriteRollsBackOnlyItself(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "otpd.db"))
	release := holdWriter(t, s)
	commits := s.Stats().Commits
	errBoom := errors.New("boom")
	ids := []string{strings.Repeat("1", 32), strings.Repeat("2", 32), strings.Repeat("3", 32)}
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		waitQueued(t, s, i) // queue them in order
		wg.Go(func() {
			errs[i] = s.w.do(t.Context(), func(ctx context.Context, tx *stmts) error {
				if _, err := tx.ExecContext(ctx, insertApp, id, "n", "{}", 0, "g", true, "", "", 1, 0, 0); err != nil {
					return err
				}
				if i == 1 {
					return errBoom
				}
				return nil
			})
		})
	}
	waitQueued(t, s, len(ids))
	release()
	wg.Wait()
	for i, id := range ids {
		_, err := s.GetApp(t.Context(), id)
		if i == 1 {
			if !errors.Is(errs[i], errBoom) || !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("failing write: error %v, then GetApp error %v; want boom, then not found", errs[i], err)
			}
			continue
		}
		if errs[i] != nil || err != nil {
			t.Errorf("write %d: error %v, then GetApp error %v; want both nil", i, errs[i], err)
		}
	}
	// The three queued writes joined the held write's open group.
	if got := s.Stats().Commits - commits; got != 1 {
		t.Errorf("%d commits, want 1: the held write's, shared by the three queued", got)
	}
}

// storedCode stores a code of app with the MAC mac, created at now.
func storedCode(t *testing.T, s *Store, app storage.App, mac string) (c storage.Code, now time.Time) {
	t.Helper()
	now = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	c = storage.Code{
		Key:           storage.CodeKey{AppID: app.ID, Destination: "+15550000001", ReferenceID: "ref"},
		AppGeneration: app.Generation, MAC: []byte(mac), AllowedAttempts: 3, CreatedAt: now, ExpiresAt: now.Add(10 * time.Minute),
	}
	if err := s.RecordSend(t.Context(), storage.SendRecord{Code: &c}); err != nil {
		t.Fatalf("RecordSend: %v", err)
	}
	return c, now
}

// TestVerificationRunAgainAsksMatchesOnce: a verification in a group that
// the writer runs again, because a later write of the group failed, still
// asks Matches once (storage.Verification promises at most once).
func TestVerificationRunAgainAsksMatchesOnce(t *testing.T) {
	s, app := openWithApp(t)
	c, now := storedCode(t, s, app, "mac")
	release := holdWriter(t, s)
	var asked atomic.Int32
	var outcome storage.Outcome
	var verifyErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		outcome, verifyErr = s.VerifyCode(t.Context(), storage.Verification{
			Key: c.Key, AppGeneration: app.Generation, Now: now, Budget: storage.FailureBudget{Limit: 10, Window: time.Hour},
			Matches: func(mac []byte) bool { asked.Add(1); return bytes.Equal(mac, c.MAC) },
		})
	})
	waitQueued(t, s, 1)
	stale := c // of a deleted generation: RecordSend fails, and the group runs again
	stale.Key.ReferenceID, stale.AppGeneration = "other", "deleted"
	var recordErr error
	wg.Go(func() { recordErr = s.RecordSend(t.Context(), storage.SendRecord{Code: &stale}) })
	waitQueued(t, s, 2)
	release()
	wg.Wait()
	if verifyErr != nil || outcome != storage.OutcomeValid {
		t.Errorf("VerifyCode = %q, %v; want valid", outcome, verifyErr)
	}
	if !errors.Is(recordErr, storage.ErrNotFound) {
		t.Errorf("RecordSend of a deleted generation: %v, want %v", recordErr, storage.ErrNotFound)
	}
	if n := asked.Load(); n != 1 {
		t.Errorf("Matches asked %d times, want once", n)
	}
}

// TestRerunRunsAgainAWriteGivenUpSinceItRan: when a group runs again
// because a later write failed, a write that ran the first time is run
// again even if its caller has given up since, so that the writes after it
// see the database they saw the first time (a verification then finds the
// same code, and Matches is asked once).
func TestRerunRunsAgainAWriteGivenUpSinceItRan(t *testing.T) {
	s, app := openWithApp(t)
	c, now := storedCode(t, s, app, "old")
	release := holdWriter(t, s)
	var wg sync.WaitGroup
	replaceCtx, giveUp := context.WithCancel(t.Context())
	defer giveUp()
	replacement := c
	replacement.MAC = []byte("new")
	wg.Go(func() { s.RecordSend(replaceCtx, storage.SendRecord{Code: &replacement}) })
	waitQueued(t, s, 1)
	var asked []string
	var outcome storage.Outcome
	wg.Go(func() {
		outcome, _ = s.VerifyCode(t.Context(), storage.Verification{
			Key: c.Key, AppGeneration: app.Generation, Now: now, Budget: storage.FailureBudget{Limit: 10, Window: time.Hour},
			Matches: func(mac []byte) bool {
				asked = append(asked, string(mac))
				giveUp() // the replacement's caller gives up after it ran
				return string(mac) == "new"
			},
		})
	})
	waitQueued(t, s, 2)
	stale := c // of a deleted generation: RecordSend fails, and the group runs again
	stale.Key.ReferenceID, stale.AppGeneration = "other", "deleted"
	wg.Go(func() { s.RecordSend(t.Context(), storage.SendRecord{Code: &stale}) })
	waitQueued(t, s, 3)
	release()
	wg.Wait()
	if len(asked) != 1 || asked[0] != "new" || outcome != storage.OutcomeValid {
		t.Errorf("Matches asked about %q, outcome %q; want once, about the replacement, valid", asked, outcome)
	}
}

func TestWriteGivenUpWhileQueuedDoesNotRun(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "otpd.db"))
	release := holdWriter(t, s)
	ctx, cancel := context.WithCancel(t.Context())
	app := storage.App{ID: strings.Repeat("a", 32), Name: "given up", Generation: "g"}
	errc := make(chan error, 1)
	go func() { errc <- s.CreateApp(ctx, app) }()
	waitQueued(t, s, 1)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("CreateApp given up: error %v, want context.Canceled", err)
	}
	release()
	// A write queued after it runs after it: once it is done, so is the
	// given-up one.
	if err := s.AppendOutbox(t.Context(), storage.OutboxMessage{MessageID: "after"}); err != nil {
		t.Fatalf("AppendOutbox: %v", err)
	}
	if _, err := s.GetApp(t.Context(), app.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetApp of the given-up app: error %v, want not found", err)
	}
}

func TestSecondHandleWaitsForTheLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "otpd.db")
	a, b := openStore(t, path), openStore(t, path)
	release := holdWriter(t, a) // a holds the database's write lock
	app := storage.App{ID: strings.Repeat("b", 32), Name: "waited", Generation: "g"}
	errc := make(chan error, 1)
	go func() { errc <- b.CreateApp(t.Context(), app) }()
	select {
	case err := <-errc:
		t.Fatalf("CreateApp on b returned %v while a held the write lock, want it to wait", err)
	case <-time.After(300 * time.Millisecond):
	}
	release()
	if err := <-errc; err != nil {
		t.Fatalf("CreateApp on b after a released the lock: %v", err)
	}
	if _, err := a.GetApp(t.Context(), app.ID); err != nil {
		t.Errorf("GetApp on a: %v", err)
	}
}

func TestBusyTimeoutEnds(t *testing.T) {
	path := filepath.Join(t.TempDir(), "otpd.db")
	a, b := openStore(t, path), openStore(t, path, WithBusyTimeout(50*time.Millisecond))
	holdWriter(t, a) // until the test ends
	app := storage.App{ID: strings.Repeat("b", 32), Name: "impatient", Generation: "g"}
	if err := b.CreateApp(t.Context(), app); err == nil {
		t.Error("CreateApp on b while a held the write lock past b's busy timeout succeeded, want an error")
	} else {
		t.Logf("error: %v", err)
	}
}

func TestCloseFinishesQueuedWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "otpd.db")
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	release := holdWriter(t, s)
	const n = 10
	errs := make(chan error, n)
	for i := range n {
		go func() {
			errs <- s.AppendOutbox(t.Context(), storage.OutboxMessage{MessageID: fmt.Sprint(i)})
		}()
	}
	waitQueued(t, s, n)
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	release()
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("write queued before Close: %v", err)
		}
	}
	if err := s.RecordSend(t.Context(), storage.SendRecord{}); !errors.Is(err, errClosed) {
		t.Errorf("RecordSend after Close: error %v, want %v", err, errClosed)
	}
	if err := s.Ping(t.Context()); err == nil {
		t.Error("Ping after Close succeeded, want an error")
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}

	again := openStore(t, path)
	msgs, err := again.ListOutbox(t.Context(), storage.OutboxQuery{})
	if err != nil || len(msgs) != n {
		t.Errorf("ListOutbox after reopening = %d messages, %v; want %d", len(msgs), err, n)
	}
}

func TestInvalidArgumentsAreErrors(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "otpd.db"))
	if _, err := s.VerifyCode(t.Context(), storage.Verification{Budget: storage.FailureBudget{Window: time.Hour}}); err == nil {
		t.Error("VerifyCode with a zero budget limit succeeded, want an error")
	}
	if _, err := s.DestinationLockout(t.Context(), "app", "gen", "+15550000001", time.Now(), storage.FailureBudget{}); err == nil {
		t.Error("DestinationLockout with a zero budget limit succeeded, want an error")
	}
	if _, err := s.Purge(t.Context(), time.Now(), storage.Retention{}); err == nil {
		t.Error("Purge with a zero batch size succeeded, want an error")
	}
}

func TestRecordSendNeedsItsApplication(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "otpd.db"))
	app := storage.App{ID: strings.Repeat("a", 32), Name: "first", Generation: "g1"}
	if err := s.CreateApp(t.Context(), app); err != nil {
		t.Fatalf("CreateApp: %v", err)
	}
	c := storage.Code{
		Key:           storage.CodeKey{AppID: app.ID, Destination: "+15550000001", ReferenceID: "ref"},
		AppGeneration: "g0", MAC: []byte("mac"), AllowedAttempts: 3,
	}
	if err := s.RecordSend(t.Context(), storage.SendRecord{Code: &c}); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("RecordSend under another generation: error %v, want %v", err, storage.ErrNotFound)
	}
	c.Key.AppID = strings.Repeat("b", 32)
	if err := s.RecordSend(t.Context(), storage.SendRecord{Code: &c}); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("RecordSend of a missing application: error %v, want %v", err, storage.ErrNotFound)
	}
}

func TestApplicationNumbersAreNeverReused(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "otpd.db"))
	app := storage.App{ID: strings.Repeat("a", 32), Name: "first", Generation: "g1"}
	var nums []int64
	for range 2 {
		if err := s.CreateApp(t.Context(), app); err != nil {
			t.Fatalf("CreateApp: %v", err)
		}
		var num int64
		if err := s.rdb.QueryRowContext(t.Context(), `SELECT num FROM apps WHERE id = ?`, app.ID).Scan(&num); err != nil {
			t.Fatalf("read the application number: %v", err)
		}
		nums = append(nums, num)
		if _, err := s.DeleteApp(t.Context(), app.ID); err != nil {
			t.Fatalf("DeleteApp: %v", err)
		}
	}
	if nums[0] == nums[1] {
		t.Errorf("a re-created application got number %d again, want a new one", nums[1])
	}
}

// TestBytesPerCode measures the disk space a live code takes, indexes
// included, with realistic keys: a UUID ReferenceId and a 32-character
// generation.
func TestBytesPerCode(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "otpd.db"))
	app := storage.App{ID: "0123456789abcdef0123456789abcdef", Name: "sized", Generation: "fedcba9876543210fedcba9876543210"}
	if err := s.CreateApp(t.Context(), app); err != nil {
		t.Fatalf("CreateApp: %v", err)
	}
	const codes, goroutines = 5000, 50
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := g; i < codes; i += goroutines {
				c := storage.Code{
					Key: storage.CodeKey{AppID: app.ID, Destination: fmt.Sprintf("+4477009%05d", i),
						ReferenceID: fmt.Sprintf("%08x-1234-4567-89ab-cdef01234567", i*7919)},
					AppGeneration: app.Generation, MAC: make([]byte, 32), AllowedAttempts: 3,
					CreatedAt: now, ExpiresAt: now.Add(time.Duration(i%600) * time.Second),
				}
				if err := s.RecordSend(t.Context(), storage.SendRecord{Code: &c}); err != nil {
					t.Errorf("RecordSend: %v", err)
				}
			}
		})
	}
	wg.Wait()
	var bytes int64
	err := s.rdb.QueryRowContext(t.Context(), `SELECT SUM(pgsize) FROM dbstat WHERE name IN ('codes', 'codes_by_expiry')`).Scan(&bytes)
	if err != nil {
		t.Fatalf("read dbstat: %v", err)
	}
	perCode := float64(bytes) / codes
	t.Logf("%d codes take %d bytes: %.0f bytes per code", codes, bytes, perCode)
	if perCode >= 300 {
		t.Errorf("%.0f bytes per live code, want under 300", perCode)
	}
}

// MeasureFlushes flushes at least once, again and again for its duration,
// stops when its context ends, and leaves no file behind.
func TestMeasureFlushes(t *testing.T) {
	dir := t.TempDir()
	began := time.Now()
	flushes, err := MeasureFlushes(t.Context(), dir, 40<<10, 100*time.Millisecond)
	elapsed := time.Since(began)
	if err != nil {
		t.Fatal(err)
	}
	if len(flushes) < 1 {
		t.Fatal("no flush")
	}
	var total time.Duration
	for _, d := range flushes {
		if d <= 0 {
			t.Fatalf("a flush took %s", d)
		}
		total += d
	}
	if total > elapsed { // one after the other, within the call
		t.Errorf("the flushes took %s in all, within a call of %s", total, elapsed)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
	if _, err := MeasureFlushes(t.Context(), filepath.Join(dir, "missing"), 4096, time.Millisecond); err == nil {
		t.Error("a missing directory measured")
	}
	if _, err := MeasureFlushes(t.Context(), dir, 0, time.Millisecond); err == nil {
		t.Error("size 0 measured")
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if flushes, err := MeasureFlushes(ctx, dir, 4096, time.Hour); !errors.Is(err, context.Canceled) || len(flushes) != 0 {
		t.Errorf("with its context ended: %d flushes, error %v", len(flushes), err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("left behind after the context ended: %v", left)
	}
}
