// Package sqlite implements storage.Store on one SQLite database file, with the
// pure-Go driver modernc.org/sqlite.
//
// Writes go through a single writer goroutine that owns the only write
// connection and commits queued writes together, one transaction per group,
// while a second goroutine flushes the committed groups to disk, one fsync
// for all the groups committed since the last, before answering their
// callers (see writer). Reads that change nothing use a pool of read-only
// connections, which WAL mode lets run alongside the writer. Several Stores, in
// one process or in many, may open the same file: every write transaction
// begins with BEGIN IMMEDIATE, so SQLite runs them one at a time, and
// busy_timeout makes a writer wait for its turn instead of failing.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/otpd/otpd/internal/storage"
)

// Store is a storage.Store on a SQLite database file. Open it with Open and
// release it with Close.
type Store struct {
	w     *writer
	cp    *checkpointer
	cdb   *sql.DB // holds the checkpointer's one connection
	wdb   *sql.DB // holds the writer's one connection
	rdb   *sql.DB // read-only connections
	reads *stmts  // the statements of rdb

	closeOnce sync.Once
	closeErr  error
}

var (
	_ storage.Store            = (*Store)(nil)
	_ storage.SendOnceRecorder = (*Store)(nil)
)

// Option changes a default of Open.
type Option func(*config)

type config struct {
	busyTimeout time.Duration
	readConns   int
	maxBatch    int
	commitDelay time.Duration
}

// WithBusyTimeout sets how long a connection waits for a lock held by another
// connection (another Store on the same file) before it fails. The default is
// 10 seconds.
func WithBusyTimeout(d time.Duration) Option {
	return func(c *config) { c.busyTimeout = d }
}

// WithReadConns sets the size of the read-only connection pool. The default is
// GOMAXPROCS, and at least 4.
func WithReadConns(n int) Option {
	return func(c *config) { c.readConns = n }
}

// WithMaxBatch sets how many queued writes at most share one transaction. The
// default is 256.
func WithMaxBatch(n int) Option {
	return func(c *config) { c.maxBatch = n }
}

// WithCommitDelay sets how long after a flush of the log began the writer
// may hold the next group back for more writes, when under load and while
// the other goroutines keep queueing writes (see writer.holdBack). The
// default is 500 microseconds; zero never holds a group back.
func WithCommitDelay(d time.Duration) Option {
	return func(c *config) { c.commitDelay = d }
}

// Open opens the SQLite database at path, creating it (and its directory) if
// needed, and brings its schema up to date. The directory is created with
// mode 0700 and the file with mode 0600; SQLite gives its -wal and -shm files
// the file's mode.
func Open(ctx context.Context, path string, opts ...Option) (*Store, error) {
	cfg := config{busyTimeout: 10 * time.Second, readConns: max(4, runtime.GOMAXPROCS(0)), maxBatch: 256, commitDelay: 500 * time.Microsecond}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.readConns < 1 || cfg.maxBatch < 1 || cfg.busyTimeout < 0 || cfg.commitDelay < 0 {
		return nil, fmt.Errorf("storage/sqlite: open %s: read connections and batch size must be positive, busy timeout and commit delay not negative", path)
	}
	path, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("storage/sqlite: open %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("storage/sqlite: create the database directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("storage/sqlite: create the database file: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("storage/sqlite: create the database file: %w", err)
	}

	// The writer begins its transactions IMMEDIATE itself; _txlock makes
	// the migrations' transactions IMMEDIATE too. temp_store(MEMORY) keeps
	// the sub-journals of the writer's savepoints (one per operation) in
	// memory rather than in temporary files: the copies of the pages a
	// savepoint changes would otherwise cost a file write each.
	// cache_size(-32768) gives the writer 32 MiB of pages, SQLite's default
	// being 2 MiB: the indexes every send and verification walk stay in
	// memory rather than being read back from the operating system.
	busy := "busy_timeout(" + strconv.FormatInt(cfg.busyTimeout.Milliseconds(), 10) + ")"
	wdb, err := sql.Open("sqlite", dsn(path, url.Values{
		"_pragma": {busy, "journal_mode(WAL)", "synchronous(FULL)", "foreign_keys(1)", "temp_store(MEMORY)", "cache_size(-32768)"},
		"_txlock": {"immediate"},
	}))
	if err != nil {
		return nil, fmt.Errorf("storage/sqlite: open %s: %w", path, err)
	}
	wdb.SetMaxOpenConns(1)
	conn, err := wdb.Conn(ctx)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("storage/sqlite: open %s: %w", path, err), wdb.Close())
	}
	if err := migrate(ctx, conn); err != nil {
		return nil, errors.Join(fmt.Errorf("storage/sqlite: open %s: %w", path, err), conn.Close(), wdb.Close())
	}

	rdb, err := sql.Open("sqlite", dsn(path, url.Values{
		"_pragma": {busy, "query_only(1)"},
	}))
	if err != nil {
		return nil, errors.Join(fmt.Errorf("storage/sqlite: open read connections to %s: %w", path, err), conn.Close(), wdb.Close())
	}
	rdb.SetMaxOpenConns(cfg.readConns)
	rdb.SetMaxIdleConns(cfg.readConns)
	if err := rdb.PingContext(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("storage/sqlite: open read connections to %s: %w", path, err), rdb.Close(), conn.Close(), wdb.Close())
	}

	cdb, err := sql.Open("sqlite", dsn(path, url.Values{"_pragma": {busy}}))
	if err != nil {
		return nil, errors.Join(fmt.Errorf("storage/sqlite: open the checkpoint connection to %s: %w", path, err), rdb.Close(), conn.Close(), wdb.Close())
	}
	cdb.SetMaxOpenConns(1)

	// The migrations committed with synchronous=FULL; from now on the
	// writer flushes the log itself (see writer), and the checkpointer
	// copies it into the database file (see checkpointer).
	if _, err := conn.ExecContext(ctx, "PRAGMA synchronous=NORMAL; PRAGMA wal_autocheckpoint="+strconv.Itoa(walRestartPages)); err != nil {
		return nil, errors.Join(fmt.Errorf("storage/sqlite: open %s: %w", path, err), cdb.Close(), rdb.Close(), conn.Close(), wdb.Close())
	}
	cp := newCheckpointer(cdb)
	s := &Store{w: newWriter(conn, cfg.maxBatch, cfg.commitDelay, path+"-wal", cp.request), cp: cp, cdb: cdb, wdb: wdb, rdb: rdb, reads: newStmts(rdb)}
	go cp.run()
	s.w.start()
	return s, nil
}

// dsn returns the driver's name for the database file at the absolute path
// with the given parameters: a file: URI, so that any character may appear in
// the path.
func dsn(path string, params url.Values) string {
	u := url.URL{Scheme: "file", Path: path, RawQuery: params.Encode()}
	return u.String()
}

// Ping reports whether the store answers: the writer is running and has not
// failed, and a read connection answers a query.
func (s *Store) Ping(ctx context.Context) error {
	if s.w.isClosed() {
		return fmt.Errorf("storage/sqlite: ping: %w", errClosed)
	}
	if err := s.w.err(); err != nil {
		return fmt.Errorf("storage/sqlite: ping: %w", err)
	}
	if err := s.WritesFailing(ctx); err != nil {
		return fmt.Errorf("storage/sqlite: ping: %w", err)
	}
	if err := s.rdb.PingContext(ctx); err != nil {
		return fmt.Errorf("storage/sqlite: ping: %w", err)
	}
	return nil
}

// Close waits for the queued writes to finish, stops the writer and closes
// every connection. Calls after the first return the first call's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.w.close()
		s.cp.stop()
		s.closeErr = errors.Join(s.w.tx.close(), s.w.conn.Close(), s.wdb.Close(), s.cdb.Close(), s.reads.close(), s.rdb.Close())
		if s.closeErr != nil {
			s.closeErr = fmt.Errorf("storage/sqlite: close: %w", s.closeErr)
		}
	})
	return s.closeErr
}

// Stats reports the writer's work since Open: how many writes shared how
// many commits and flushes (tests check the group commit with it), and how
// long the flushes took. Each counter is read on its own: one may count a
// write or a flush under way that another does not count yet.
type Stats struct {
	Writes    int64         // write operations run, including those that failed
	Commits   int64         // transactions committed
	Flushes   int64         // fsyncs of the write-ahead log: one or more commits each
	FlushTime time.Duration // time spent in them
	// FlushesWithin counts the flushes by how long each took:
	// FlushesWithin[i] those that took at most FlushBounds[i] (and longer
	// than FlushBounds[i-1]); the last element, those that took longer
	// than every bound. Its sum is Flushes.
	FlushesWithin [len(FlushBounds) + 1]int64
	// Checkpoints and CheckpointFailures count the background copies of
	// the log into the database file.
	Checkpoints        int64
	CheckpointFailures int64
}

// FlushBounds are the bounds of Stats.FlushesWithin, in increasing order;
// read it, never change it. A flush waits for the disk: from tens of
// microseconds (a drive whose cache survives a power loss) to tens of
// milliseconds (a busy or networked disk).
var FlushBounds = [...]time.Duration{
	25 * time.Microsecond, 50 * time.Microsecond, 100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
	time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond,
	50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond, time.Second,
}

// Stats returns the writer's counters.
func (s *Store) Stats() Stats {
	st := Stats{
		Writes: s.w.writes.Load(), Commits: s.w.commits.Load(), FlushTime: time.Duration(s.w.flushNS.Load()),
		Checkpoints: s.cp.checkpoints.Load(), CheckpointFailures: s.cp.failures.Load(),
	}
	for i := range st.FlushesWithin {
		st.FlushesWithin[i] = s.w.flushesWithin[i].Load()
		st.Flushes += st.FlushesWithin[i]
	}
	return st
}

// unixMS is how times are stored: integer Unix milliseconds.
func unixMS(t time.Time) int64 { return t.UnixMilli() }

// fromUnixMS turns a stored time back into a UTC time.Time.
func fromUnixMS(ms int64) time.Time { return time.UnixMilli(ms).UTC() }
