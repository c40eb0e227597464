package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	rtmetrics "runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	_ "modernc.org/sqlite" // the "sqlite" driver, for sqliteDisk's connection of its own

	"github.com/otpd/otpd/internal/otp"
	"github.com/otpd/otpd/internal/storage"
)

// The storage-scale measurements of otpd bench: --preload (memory and disk
// per live code) and --purge-test (latency while the purge deletes expired
// codes). Both insert codes straight into the in-process server's store.

// insertWorkers is how many goroutines insert the codes of --preload and
// --purge-test at once: the embedded store's largest commit group (the
// default of sqlite.WithMaxBatch), so that each fsync commits as many codes
// as it can (three times the rate of 64 on a 2-core machine).
const insertWorkers = 256

// insertAttempts is the AllowedAttempts of the codes the bench inserts.
const insertAttempts = 3

// purgeTestInterval is the in-process server's --purge-interval with
// --purge-test, the least otpd accepts: once the gate is released, the purge
// loop's next call comes within it.
const purgeTestInterval = time.Second

// purgeDrainLimit bounds how long --purge-test waits, after a run, for the
// purge to delete the expired codes it has not yet deleted.
const purgeDrainLimit = 10 * time.Minute

// benchProgressEvery is how often long inserts and waits report progress.
const benchProgressEvery = 5 * time.Second

// checkpointTries is how often sqliteDisk asks for its checkpoint, 100 ms
// apart, while another checkpoint (the store's own) is under way.
const checkpointTries = 20

// storeFigures are the sizes --preload reports: of the store, and of the
// whole bench process (the server and the load generator together, so an
// upper bound on the server's).
type storeFigures struct {
	Codes          int64            `json:"codes,omitempty"`              // codes stored, live or not; 0: not counted (Redis)
	DiskBytes      int64            `json:"disk_bytes,omitempty"`         // the sum of DiskFiles
	DiskFiles      map[string]int64 `json:"disk_files,omitempty"`         // by file, or by relation
	BytesPerCode   float64          `json:"bytes_per_code,omitempty"`     // DiskBytes / Codes
	DiskNote       string           `json:"disk_note"`                    // how the sizes were taken, or why there are none
	WALAsFound     int64            `json:"wal_bytes_as_found,omitempty"` // embedded SQLite: the -wal before the bench's checkpoint
	RSSBytes       int64            `json:"rss_bytes"`                    // VmRSS of the bench process
	PeakRSSBytes   int64            `json:"peak_rss_bytes"`               // VmHWM of the bench process
	HeapInUseBytes uint64           `json:"go_heap_in_use_bytes"`         // spans of the Go heap holding objects
	HeapLiveBytes  uint64           `json:"go_heap_live_bytes"`           // live objects as of the last GC
}

// preloadReport is what --preload did, and the figures right after it.
type preloadReport struct {
	Codes          int          `json:"codes"`
	Seconds        float64      `json:"seconds"`
	CodesPerSecond float64      `json:"codes_per_second"`
	Store          storeFigures `json:"store"`
}

// purgeReport is what --purge-test measured at one concurrency. It goes with
// the run made while the purge deleted the expired codes; times are seconds
// from that run's start. The counts are of the records the purge deleted:
// the expired codes, since nothing else the bench stores expires within 10
// minutes (send records are kept for otp.Config.RetryWindow, the outbox
// limits are raised, no failure leaves the failure window).
type purgeReport struct {
	ExpiredCodes     int     `json:"expired_codes"` // inserted before the run
	InsertSeconds    float64 `json:"insert_seconds"`
	UndisturbedP99ms float64 `json:"undisturbed_p99_ms"`
	PurgingP99ms     float64 `json:"purging_p99_ms"`
	P99Ratio         float64 `json:"p99_ratio"`         // PurgingP99ms / UndisturbedP99ms
	PurgedDuringRun  int64   `json:"purged_during_run"` // by purge calls that ended within the run
	LeftAtEnd        int64   `json:"left_at_end"`       // not yet purged when the run ended
	PurgeBeganS      float64 `json:"purge_began_s"`     // the first purge call
	PurgeEndedS      float64 `json:"purge_ended_s"`     // the call that found less than a batch left
	OverlapS         float64 `json:"overlap_s"`         // of the purge with the run
}

// instrument prepares the in-process server s, before it serves, for
// --purge-test: its purge loop runs every purgeTestInterval and through a
// purgeGate, held until the bench releases it for a purging run.
func (b *bench) instrument(s *server) {
	if b.opts.purgeTest == 0 {
		return
	}
	s.cfg.PurgeInterval = purgeTestInterval
	b.purge = &purgeGate{Store: s.store, held: true, changed: make(chan struct{})}
	s.store = b.purge
}

// runConcurrency makes the runs at concurrency c: --rounds of them and,
// with more than one, their median round; or with --purge-test two. With
// --preload, every row carries the preload's report and the last run the
// store's figures right after it.
func (b *bench) runConcurrency(ctx context.Context, c int) ([]benchRow, error) {
	var rows []benchRow
	if b.opts.purgeTest > 0 {
		var err error
		if rows, err = b.purgeTest(ctx, c); err != nil {
			return nil, err
		}
	} else {
		var err error
		if rows, err = b.runRounds(ctx, c); err != nil {
			return nil, err
		}
	}
	if b.preloaded == nil {
		return rows, nil
	}
	fig, err := b.storeFigures(ctx)
	if err != nil {
		return nil, fmt.Errorf("--preload: %w", err)
	}
	fmt.Fprintf(b.log, "otpd bench: store after the run at concurrency %d: %s\n", c, fig.describe())
	for i := range rows {
		rows[i].Preload = b.preloaded
	}
	last := len(rows) - 1
	if rows[last].Rounds > 0 {
		last-- // the median round repeats a run; the figures follow the last one
	}
	rows[last].Store = &fig
	return rows, nil
}

// preloadCodes is --preload: it stores that many live codes, valid for the
// longest validity otpd allows, and measures the store and the process.
func (b *bench) preloadCodes(ctx context.Context) error {
	if _, _, err := processMemory(); err != nil {
		return fmt.Errorf("--preload: %w", err)
	}
	n := b.opts.preload
	now := time.Now().UTC().Truncate(time.Millisecond)
	took, err := b.putCodes(ctx, "preload", n, "p", now, now.Add(otp.MaxValidity*time.Minute))
	if err != nil {
		return fmt.Errorf("--preload: %w", err)
	}
	fig, err := b.storeFigures(ctx)
	if err != nil {
		return fmt.Errorf("--preload: %w", err)
	}
	fmt.Fprintf(b.log, "otpd bench: store after the preload: %s\n", fig.describe())
	b.preloaded = &preloadReport{Codes: n, Seconds: took.Seconds(), CodesPerSecond: float64(n) / took.Seconds(), Store: fig}
	return nil
}

// purgeTest is --purge-test at concurrency c. With the purge held (the server
// purges nothing), it runs the workload once undisturbed, inserts the expired
// codes and pre-sends the workload's codes; then it releases the purge, waits
// for its first call and runs the workload again while the purge goes on. It
// returns both rows, the second with its purgeReport and the first's ceiling
// (a ceiling measured while the purge goes on would be disturbed too), once
// the purge has deleted every expired code.
//
// The undisturbed run is made without purging at all, not with the purge
// loop finding nothing every second: with the embedded store that alone can
// cost latency under load (about three times the p99, at 3,000
// verifications per second on a 2-core machine), which would blur what the
// expired codes cost.
func (b *bench) purgeTest(ctx context.Context, c int) ([]benchRow, error) {
	n := b.opts.purgeTest
	if err := b.purge.hold(ctx); err != nil {
		return nil, err
	}
	undisturbed, err := b.runOne(ctx, c)
	if err != nil {
		return nil, err
	}
	undisturbed.Phase = "undisturbed"
	// Expired long enough ago for the purge to take them at once.
	expires := time.Now().UTC().Truncate(time.Millisecond).Add(-storage.ExpiredCodeKept - time.Minute)
	took, err := b.putCodes(ctx, fmt.Sprintf("expired codes for concurrency %d", c), n,
		fmt.Sprintf("x%d-", b.runs.Load()), expires.Add(-otp.MaxValidity*time.Minute), expires)
	if err != nil {
		return nil, fmt.Errorf("--purge-test: %w", err)
	}
	builder, err := b.workload(ctx, c, b.opts.rate)
	if err != nil {
		return nil, err
	}
	if err := b.purge.release(ctx); err != nil {
		return nil, err
	}
	start := time.Now()
	row, err := b.measure(ctx, c, builder, b.opts.rate, false)
	if err != nil {
		return nil, err
	}
	end := time.Now()
	row.Phase = "purging"
	row.CeilingRPS, row.CeilingBytes, row.CeilingLatency = undisturbed.CeilingRPS, undisturbed.CeilingBytes, undisturbed.CeilingLatency
	if row.CeilingRPS > 0 && b.opts.rate <= 0 {
		row.Ratio = row.RPS / row.CeilingRPS
	}
	ended, err := b.waitPurged(ctx, n)
	if err != nil {
		return nil, err
	}
	began, byStart, _ := b.purge.progress(start)
	_, byEnd, _ := b.purge.progress(end)
	rep := &purgeReport{
		ExpiredCodes: n, InsertSeconds: took.Seconds(),
		UndisturbedP99ms: undisturbed.P99ms, PurgingP99ms: row.P99ms,
		PurgedDuringRun: byEnd - byStart, LeftAtEnd: max(int64(n)-byEnd, 0),
		PurgeBeganS: began.Sub(start).Seconds(), PurgeEndedS: ended.Sub(start).Seconds(),
		OverlapS: max(minTime(end, ended).Sub(maxTime(start, began)), 0).Seconds(),
	}
	if undisturbed.P99ms > 0 {
		rep.P99Ratio = row.P99ms / undisturbed.P99ms
	}
	if rep.PurgedDuringRun == 0 {
		fmt.Fprintf(b.log, "otpd bench: --purge-test at concurrency %d: the purge deleted nothing during the run, so its p99 says nothing about the purge\n", c)
	}
	row.Purge = rep
	return []benchRow{undisturbed, row}, nil
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// waitPurged waits, for at most purgeDrainLimit, until the purge loop has
// caught up since the gate's release (a call deleted less than a batch), and
// returns when the call that caught up ended.
func (b *bench) waitPurged(ctx context.Context, n int) (time.Time, error) {
	wctx, cancel := context.WithTimeout(ctx, purgeDrainLimit)
	defer cancel()
	stop := reportEvery(func() {
		_, deleted, _ := b.purge.progress(time.Now())
		fmt.Fprintf(b.log, "otpd bench: waiting for the purge: %d of %d expired codes deleted\n", deleted, n)
	})
	err := b.purge.wait(wctx, func(g *purgeGate) bool { return len(g.calls) > 0 && g.calls[len(g.calls)-1].caughtUp })
	stop()
	if err != nil && ctx.Err() == nil {
		return time.Time{}, fmt.Errorf("--purge-test: the purge had not deleted the %d expired codes %s after the run", n, purgeDrainLimit)
	}
	if err != nil {
		return time.Time{}, err
	}
	_, _, caughtUp := b.purge.progress(time.Now())
	return caughtUp, nil
}

// putCodes stores n codes of the bench application straight through the
// in-process server's store, from insertWorkers goroutines at once, as a send
// stores its code: the i-th goes to benchDestination(i) with ReferenceId
// prefix+i, a random MAC of the size the service stores (HMAC-SHA256),
// AllowedAttempts insertAttempts, created at created to expire at expires.
// It reports progress as what and returns how long it took.
func (b *bench) putCodes(ctx context.Context, what string, n int, prefix string, created, expires time.Time) (time.Duration, error) {
	app, err := b.store.GetApp(ctx, b.appID)
	if err != nil {
		return 0, fmt.Errorf("%s: read the bench application: %w", what, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	began := time.Now()
	var (
		next, stored atomic.Int64
		wg           sync.WaitGroup
		errOnce      sync.Once
		putErr       error
	)
	stop := reportEvery(func() {
		k := stored.Load()
		fmt.Fprintf(b.log, "otpd bench: %s: %d of %d codes stored (%.0f codes/s)\n", what, k, n, float64(k)/time.Since(began).Seconds())
	})
	for range min(insertWorkers, n) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				mac := make([]byte, sha256.Size)
				rand.Read(mac)
				c := storage.Code{
					Key:           storage.CodeKey{AppID: app.ID, Destination: benchDestination(i), ReferenceID: prefix + strconv.Itoa(i)},
					AppGeneration: app.Generation, MAC: mac, AllowedAttempts: insertAttempts, CreatedAt: created, ExpiresAt: expires,
				}
				if err := b.store.RecordSend(ctx, storage.SendRecord{Code: &c}); err != nil {
					errOnce.Do(func() { putErr = err; cancel() })
					return
				}
				stored.Add(1)
			}
		})
	}
	wg.Wait()
	stop()
	if putErr != nil {
		return 0, fmt.Errorf("%s: store a code: %w", what, putErr)
	}
	took := time.Since(began)
	fmt.Fprintf(b.log, "otpd bench: %s: %d codes stored in %s (%.0f codes/s)\n", what, n, took.Round(time.Millisecond), float64(n)/took.Seconds())
	return took, nil
}

// reportEvery calls report every benchProgressEvery until stop is called.
func reportEvery(report func()) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(benchProgressEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				report()
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// storeFigures measures the process, then the store: how many codes it
// holds and its size, as far as the bench can tell for the kind of store.
func (b *bench) storeFigures(ctx context.Context) (storeFigures, error) {
	var (
		f   storeFigures
		err error
	)
	if f.RSSBytes, f.PeakRSSBytes, err = processMemory(); err != nil {
		return f, err
	}
	f.HeapInUseBytes, f.HeapLiveBytes = goHeap()
	switch scheme, _, _ := strings.Cut(b.opts.store, "://"); scheme {
	case "":
		f.Codes, f.WALAsFound, f.DiskFiles, f.DiskNote, err = sqliteDisk(ctx, filepath.Join(b.dataDir, databaseFileName))
	case schemePostgres, schemePostgresql:
		f.Codes, f.DiskFiles, f.DiskNote, err = postgresDisk(ctx, b.opts.store)
	default:
		f.DiskNote = "Redis: its memory and persistence are the Redis server's business; codes not counted"
	}
	if err != nil {
		return f, fmt.Errorf("measure the store: %w", err)
	}
	for _, size := range f.DiskFiles {
		f.DiskBytes += size
	}
	if f.Codes > 0 {
		f.BytesPerCode = float64(f.DiskBytes) / float64(f.Codes)
	}
	return f, nil
}

// sqliteDisk counts the codes in the embedded database at path and sizes its
// files (the database, its -wal and its -shm), on a connection of its own,
// after asking SQLite for a checkpoint that copies the write-ahead log into
// the database file and truncates the log (PRAGMA wal_checkpoint(TRUNCATE)),
// so that the database file holds every code once. It also returns the size
// of the -wal as found, before the checkpoint: the server leaves it that
// large on disk until a checkpoint truncates it. When the checkpoint cannot
// complete, the note says so and the sizes are as they are.
func sqliteDisk(ctx context.Context, path string) (codes, walAsFound int64, files map[string]int64, note string, err error) {
	path, err = filepath.Abs(path)
	if err != nil {
		return 0, 0, nil, "", err
	}
	if walAsFound, err = fileSize(path + "-wal"); err != nil {
		return 0, 0, nil, "", err
	}
	dsn := url.URL{Scheme: "file", Path: path, RawQuery: url.Values{"_pragma": {"busy_timeout(10000)"}}.Encode()}
	db, err := sql.Open("sqlite", dsn.String())
	if err != nil {
		return 0, 0, nil, "", err
	}
	defer db.Close()
	note = "embedded SQLite: the database, -wal and -shm files, after a WAL checkpoint (TRUNCATE)"
	for try := 1; ; try++ {
		var busy, logPages, copied int
		if err := db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logPages, &copied); err != nil {
			return 0, 0, nil, "", fmt.Errorf("checkpoint %s: %w", path, err)
		}
		if busy == 0 {
			break
		}
		// -1 pages: another checkpoint was under way; ask again.
		if logPages >= 0 || try == checkpointTries {
			note = fmt.Sprintf("embedded SQLite: the database, -wal and -shm files as they are (the WAL checkpoint could not complete after %d tries: %d of %d log pages copied)", try, copied, logPages)
			break
		}
		select {
		case <-ctx.Done():
			return 0, 0, nil, "", ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM codes").Scan(&codes); err != nil {
		return 0, 0, nil, "", fmt.Errorf("count the codes in %s: %w", path, err)
	}
	files = make(map[string]int64)
	for _, name := range []string{path, path + "-wal", path + "-shm"} {
		if files[filepath.Base(name)], err = fileSize(name); err != nil {
			return 0, 0, nil, "", err
		}
	}
	return codes, walAsFound, files, note, nil
}

// fileSize is the size of the file at path, 0 if there is none.
func fileSize(path string) (int64, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// postgresDisk counts the codes in the PostgreSQL store at storeURL and sizes
// their table with its indexes and TOAST (pg_total_relation_size), in the
// first schema of the URL's search_path, where the store keeps its tables.
func postgresDisk(ctx context.Context, storeURL string) (codes int64, files map[string]int64, note string, err error) {
	pool, err := pgxpool.New(ctx, storeURL)
	if err != nil {
		return 0, nil, "", fmt.Errorf("connect to %s: %w", redactStoreURL(storeURL), redactStoreError(storeURL, err))
	}
	defer pool.Close()
	var size int64
	if err := pool.QueryRow(ctx, "SELECT (SELECT count(*) FROM codes), pg_total_relation_size('codes')").Scan(&codes, &size); err != nil {
		return 0, nil, "", fmt.Errorf("size the codes table: %w", err)
	}
	return codes, map[string]int64{"codes table": size},
		"PostgreSQL: pg_total_relation_size of the codes table (rows, indexes, TOAST; not the server's WAL)", nil
}

// processMemory returns the bench process's resident memory and its peak
// (VmRSS and VmHWM of /proc/self/status), in bytes.
func processMemory() (rss, peak int64, err error) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, 0, fmt.Errorf("resident memory (Linux only): %w", err)
	}
	for line := range strings.Lines(string(data)) {
		key, value, _ := strings.Cut(line, ":")
		var dst *int64
		switch key {
		case "VmRSS":
			dst = &rss
		case "VmHWM":
			dst = &peak
		default:
			continue
		}
		fields := strings.Fields(value)
		if len(fields) != 2 || fields[1] != "kB" {
			return 0, 0, fmt.Errorf("/proc/self/status: unexpected %s line %q", key, strings.TrimSpace(line))
		}
		kb, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/self/status: %s: %w", key, err)
		}
		*dst = kb << 10
	}
	if rss == 0 || peak == 0 {
		return 0, 0, errors.New("/proc/self/status: no VmRSS or VmHWM")
	}
	return rss, peak, nil
}

// goHeap returns the Go heap's spans in use (objects and the free space in
// their spans: MemStats.HeapInuse) and its live objects as of the last GC.
func goHeap() (inUse, live uint64) {
	s := []rtmetrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/unused:bytes"},
		{Name: "/gc/heap/live:bytes"},
	}
	rtmetrics.Read(s)
	return s[0].Value.Uint64() + s[1].Value.Uint64(), s[2].Value.Uint64()
}

// describe is the figures on one line.
func (f storeFigures) describe() string {
	var sb strings.Builder
	if f.Codes > 0 {
		fmt.Fprintf(&sb, "%d codes, %s on disk (", f.Codes, byteSize(f.DiskBytes))
		for i, name := range slices.Sorted(maps.Keys(f.DiskFiles)) {
			if i > 0 {
				sb.WriteString(" + ")
			}
			fmt.Fprintf(&sb, "%s %s", name, byteSize(f.DiskFiles[name]))
		}
		fmt.Fprintf(&sb, "; %s) = %.0f bytes per code; ", f.DiskNote, f.BytesPerCode)
		if f.WALAsFound > 0 {
			fmt.Fprintf(&sb, "the -wal was %s before the checkpoint; ", byteSize(f.WALAsFound))
		}
	} else {
		fmt.Fprintf(&sb, "%s; ", f.DiskNote)
	}
	fmt.Fprintf(&sb, "bench process (server and load generator together: an upper bound on the server's) RSS %s, peak %s; Go heap %s in use, %s live",
		byteSize(f.RSSBytes), byteSize(f.PeakRSSBytes), byteSize(int64(f.HeapInUseBytes)), byteSize(int64(f.HeapLiveBytes)))
	return sb.String()
}

// byteSize is n bytes for people: B, KiB or MiB.
func byteSize(n int64) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

// purgeGate stands between the in-process server's purge loop and its store
// with --purge-test; Purge is all it changes, and the loop is Purge's only
// caller. While held, Purge deletes nothing and returns 0, so that expired
// codes can be inserted without the loop deleting them as they arrive; once
// released, it passes the calls on and records each.
type purgeGate struct {
	storage.Store
	mu      sync.Mutex
	held    bool
	busy    bool          // a call is under way
	began   time.Time     // when the first call since the last release began
	calls   []purgeCall   // the calls since the last release, in order
	changed chan struct{} // closed, and replaced, whenever a call begins or ends
}

// purgeCall is one call of the purge loop through the gate.
type purgeCall struct {
	ended    time.Time
	deleted  int
	caughtUp bool // it deleted less than a batch, without error: nothing was left
}

// Purge passes the call on unless the gate is held.
func (g *purgeGate) Purge(ctx context.Context, now time.Time, r storage.Retention) (int, error) {
	g.mu.Lock()
	if g.held {
		g.mu.Unlock()
		return 0, nil
	}
	g.busy = true
	if g.began.IsZero() {
		g.began = time.Now()
	}
	g.signal()
	g.mu.Unlock()
	n, err := g.Store.Purge(ctx, now, r)
	g.mu.Lock()
	defer g.mu.Unlock()
	g.busy = false
	g.calls = append(g.calls, purgeCall{ended: time.Now(), deleted: n, caughtUp: err == nil && n < r.BatchSize})
	g.signal()
	return n, err
}

// signal wakes the waiters; g.mu is held.
func (g *purgeGate) signal() {
	close(g.changed)
	g.changed = make(chan struct{})
}

// hold stops the purge: it returns once no call is under way.
func (g *purgeGate) hold(ctx context.Context) error {
	g.mu.Lock()
	g.held = true
	g.mu.Unlock()
	return g.wait(ctx, func(g *purgeGate) bool { return !g.busy })
}

// release lets the purge go again, forgets the calls before, and returns
// once the purge loop's next call has begun.
func (g *purgeGate) release(ctx context.Context) error {
	g.mu.Lock()
	g.held, g.began, g.calls = false, time.Time{}, nil
	g.mu.Unlock()
	return g.wait(ctx, func(g *purgeGate) bool { return !g.began.IsZero() })
}

// wait returns once done, called with g.mu held, is true, or ctx is done.
func (g *purgeGate) wait(ctx context.Context, done func(*purgeGate) bool) error {
	for {
		g.mu.Lock()
		ok, changed := done(g), g.changed
		g.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// progress returns, of the calls since the last release: when the first
// began, how many records those that ended by the time by deleted, and when
// the first of those that caught up ended (zero if none did).
func (g *purgeGate) progress(by time.Time) (began time.Time, deleted int64, caughtUp time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, c := range g.calls {
		if c.ended.After(by) {
			break
		}
		deleted += int64(c.deleted)
		if c.caughtUp && caughtUp.IsZero() {
			caughtUp = c.ended
		}
	}
	return g.began, deleted, caughtUp
}
