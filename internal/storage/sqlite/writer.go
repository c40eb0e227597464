package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	sqlitedriver "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// errClosed answers every write and Ping made after Close.
var errClosed = errors.New("store is closed")

// writeFunc is one write operation. It runs inside the writer's transaction,
// within a savepoint of its own: if it returns an error, its changes are
// rolled back and the rest of the batch goes on. tx runs its statements.
//
// ctx is the writer's own context, never the caller's: an interrupted
// statement makes SQLite roll back the whole transaction, the other callers'
// writes included, so a caller that gives up must not interrupt one.
//
// A writeFunc may run twice, the second time after its first changes were
// rolled back (see add): it must do nothing but run its statements and set
// its results.
type writeFunc func(ctx context.Context, tx *stmts) error

// writeOp is a queued writeFunc and the way back to its caller.
type writeOp struct {
	ctx  context.Context // the caller's: the operation is skipped if it is done before its turn (but not before a rerun, see add)
	fn   writeFunc
	done chan error // buffered, so that the writer never waits for a caller
	// unflushed answers the caller once the group committed, without
	// waiting for the flush (see doUnflushed).
	unflushed bool
}

// writer runs all of a Store's writes on its one write connection, in groups
// ("group commit"): one BEGIN IMMEDIATE transaction per group, a SAVEPOINT
// for each operation in it, one commit.
//
// Its connection commits with synchronous=NORMAL, which writes the group to
// the write-ahead log without waiting for the disk; a second goroutine (sync)
// then fsyncs the log and only then answers the group's callers. So a caller
// is answered only once its write is durable, as with synchronous=FULL, but
// operations keep running while the disk flushes: the group grows, in its
// open transaction, until sync is ready for it (see run). Under load, each
// flush thus covers every write queued during the one before, and each page
// those writes change goes to the log once. SQLite keeps the log's frames in
// commit order, so a flush that covers a group covers every group before it;
// and since the writer's connection stays open, the log file is never
// deleted or replaced under the open file that sync flushes.
//
// If the transaction fails as a whole (BEGIN or COMMIT fails, or a savepoint
// cannot be released or rolled back), every operation of the group gets the
// error and none of them took effect.
//
// The writer issues BEGIN, COMMIT and ROLLBACK itself, rather than through a
// *sql.Tx, so that the statements it prepares on its connection serve every
// transaction.
//
// The Store owns the writer: Open starts run, Close calls close, which lets
// run finish the queued operations and return.
type writer struct {
	conn     *sql.Conn
	tx       *stmts // the statements of conn
	ops      chan *writeOp
	maxBatch int
	walPath  string
	wal      *os.File // opened by sync at its first flush
	// committed holds the groups run committed and sync has not taken
	// yet; run never waits to add one. run signals each addition on
	// added, and closes it when it returns.
	committedMu sync.Mutex
	committed   []*group
	added       chan struct{}
	ready       chan lastFlush        // sync waits for a group: run commits its own
	failed      atomic.Pointer[error] // the flush that failed: every later write fails
	// full: a write failed for want of space (SQLITE_FULL) since the
	// store last found room on the disk (Store.WritesFailing).
	full        atomic.Bool
	flushed     func()        // called after every flush (asks for a checkpoint)
	commitDelay time.Duration // see holdBack

	mu     sync.RWMutex // read-held while sending on ops, write-held by close
	closed bool
	done   chan struct{} // closed when sync returns, after run

	writes  atomic.Int64 // operations run
	commits atomic.Int64 // transactions committed
	// flushesWithin counts the fsyncs of the log that succeeded by
	// duration, as Stats.FlushesWithin does, and flushNS the time they took.
	flushNS       atomic.Int64
	flushesWithin [len(FlushBounds) + 1]atomic.Int64
}

// group is a transaction's operations and their outcome, until answered.
type group struct {
	ops     []*writeOp
	errs    []error // errs[i] is ops[i]'s own error
	err     error   // the transaction's, which every operation gets
	guarded bool    // operations run in savepoints (see add)
}

// SQL of the writer's transactions. One savepoint is open at a time, so one
// name serves.
const (
	beginImmediate    = `BEGIN IMMEDIATE`
	commit            = `COMMIT`
	rollback          = `ROLLBACK`
	savepoint         = `SAVEPOINT op`
	releaseSavepoint  = `RELEASE op`
	rollbackSavepoint = `ROLLBACK TO op`
)

// newWriter returns the writer of conn, whose database's write-ahead log is
// the file at walPath. conn must commit with synchronous=NORMAL: the writer
// flushes the log itself, and calls flushed after each flush. Under load, a
// group may wait for more writes until commitDelay after the last flush
// began (see holdBack).
func newWriter(conn *sql.Conn, maxBatch int, commitDelay time.Duration, walPath string, flushed func()) *writer {
	return &writer{
		conn:        conn,
		tx:          newStmts(conn),
		ops:         make(chan *writeOp, maxBatch),
		maxBatch:    maxBatch,
		commitDelay: commitDelay,
		walPath:     walPath,
		flushed:     flushed,
		added:       make(chan struct{}, 1),
		ready:       make(chan lastFlush),
		done:        make(chan struct{}),
	}
}

// lastFlush is what sync tells run with each offer to take a group: when
// its last flush began and how many writes it covered.
type lastFlush struct {
	start  time.Time
	writes int
}

// busyFlush is the number of writes a flush must cover for the writer to
// take the load as heavy and hold the next group back (see holdBack).
const busyFlush = 4

// quietYields is how many times in a row holdBack lets the other
// goroutines run without a write arriving before it takes them to have
// none to give.
const quietYields = 3

// start starts the writer's goroutines.
func (w *writer) start() {
	go w.run()
	go w.sync()
}

// do queues fn and waits until its group has committed and is on disk. It
// returns fn's error, the group's error, or ctx's error if ctx is done
// first; in that last case fn may still run (or may have run) to completion.
func (w *writer) do(ctx context.Context, fn writeFunc) error {
	return w.wait(ctx, &writeOp{ctx: ctx, fn: fn, done: make(chan error, 1)})
}

// doUnflushed is do without waiting for the disk: it returns once fn's
// group has committed, when every connection sees its effect. It is for
// writes whose loss in a power failure does no harm, being undone by the
// loss anyway: a send claim (after the crash, a retry would send again even
// if the claim had survived, once its lease ended), its release, a purge.
// The flush of any later write covers it.
func (w *writer) doUnflushed(ctx context.Context, fn writeFunc) error {
	return w.wait(ctx, &writeOp{ctx: ctx, fn: fn, done: make(chan error, 1), unflushed: true})
}

func (w *writer) wait(ctx context.Context, op *writeOp) error {
	if err := w.enqueue(op); err != nil {
		return err
	}
	select {
	case err := <-op.done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("waiting for a write: %w", ctx.Err())
	}
}

// enqueue hands op to run, unless the writer is closed or has failed, or
// op's context ends while the queue is full.
func (w *writer) enqueue(op *writeOp) error {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		return errClosed
	}
	if err := w.err(); err != nil {
		return err
	}
	select {
	case w.ops <- op:
		return nil
	case <-op.ctx.Done():
		return fmt.Errorf("queueing a write: %w", op.ctx.Err())
	}
}

// run is the writer goroutine. It opens a transaction for the first queued
// operation and runs every operation queued meanwhile in it, until one of
// these commits the group: sync is ready for it (so the group grows while
// the disk flushes the one before), it has maxBatch operations, or the
// queue is closed. (An operation answered at commit waits for that commit
// like the others: committing early for it would write the pages it shares
// with the rest of the group to the log twice.) It then answers the unflushed
// operations itself, hands the group to sync for the others, and returns
// once close has closed the queue and every queued operation has been run.
func (w *writer) run() {
	defer close(w.added)
	var (
		g      *group // the open group, nil if none
		closed bool
	)
	take := func(op *writeOp, ok bool) {
		switch {
		case !ok:
			closed = true
		case g == nil:
			if g = w.begin(op); g != nil {
				w.add(g, op)
			}
		default:
			w.add(g, op)
		}
	}
	for !closed || g != nil {
		if g == nil {
			op, ok := <-w.ops
			take(op, ok)
			continue
		}
		// What is queued joins the group before anything else.
	drain:
		for !closed && len(g.ops) < w.maxBatch && g.err == nil {
			select {
			case op, ok := <-w.ops:
				take(op, ok)
			default:
				break drain
			}
		}
		if closed || len(g.ops) >= w.maxBatch || g.err != nil {
			w.commit(g)
			g = nil
			continue
		}
		select {
		case op, ok := <-w.ops:
			take(op, ok)
		case last := <-w.ready:
			if !closed && g.err == nil {
				w.holdBack(last, g, take)
			}
			w.commit(g)
			g = nil
		}
	}
}

// holdBack lets the open group g grow before sync flushes it, while that
// pays, as PostgreSQL's commit_delay does: a flush, with its commit, its
// fsync and the wake-ups it costs, then serves more writes. It holds back
// only under load, when the last flush covered at least busyFlush writes,
// and at most until commitDelay after that flush began. Meanwhile it yields
// the processor to the other goroutines, taking the writes they queue
// (through take), and stops as soon as quietYields yields in a row bring
// none: then the writes to come are waiting for this very group, or the
// cores are idle, and waiting longer would only delay them. So the delay
// applies when the cores are busy with requests on their way to the store,
// which is when the flushes it saves are worth more than the latency it
// adds. (Yields rather than a timer: Go's timers wake no sooner than a
// millisecond when the process is otherwise idle.)
func (w *writer) holdBack(last lastFlush, g *group, take func(*writeOp, bool)) {
	if w.commitDelay <= 0 || last.writes < busyFlush {
		return
	}
	deadline := last.start.Add(w.commitDelay)
	for quiet := 0; quiet < quietYields && len(g.ops) < w.maxBatch && g.err == nil && time.Now().Before(deadline); {
		runtime.Gosched()
		select {
		case op, ok := <-w.ops:
			take(op, ok)
			if !ok {
				return
			}
			quiet = 0
		default:
			quiet++
		}
	}
}

// begin opens a transaction for a group starting with op. If it cannot, it
// answers op with the error and returns nil.
func (w *writer) begin(op *writeOp) *group {
	if _, err := w.tx.ExecContext(context.Background(), beginImmediate); err != nil {
		op.done <- fmt.Errorf("begin a write transaction: %w", err)
		return nil
	}
	return &group{ops: make([]*writeOp, 0, 16), errs: make([]error, 0, 16)}
}

// add runs op in g's transaction. If the transaction breaks, it is rolled
// back and g.err set: the group is then committed (that is, answered) at
// once.
//
// Operations run bare at first, without a savepoint of their own, since
// almost none fails. When one fails, the transaction may hold part of its
// changes: add then rolls the group back and runs its operations again, each
// in a savepoint, and so on for the rest of the group. (An operation may thus
// run twice; its writeFunc sees the same database both times, since the
// rerun runs again every operation that ran, even one whose caller has
// given up since: that one's write commits, as it would have without the
// rerun.)
func (w *writer) add(g *group, op *writeOp) {
	g.ops = append(g.ops, op)
	g.errs = append(g.errs, nil)
	if g.err != nil {
		return // g.err answers it
	}
	w.writes.Add(1)
	ctx := context.Background()
	if g.guarded {
		var err error
		if g.errs[len(g.errs)-1], err = w.apply(ctx, op, false); err != nil {
			g.err = w.rollback(ctx, err)
		}
		return
	}
	if err := op.ctx.Err(); err != nil {
		g.errs[len(g.errs)-1] = fmt.Errorf("write given up before it ran: %w", err)
		return
	}
	if op.fn(ctx, w.tx) == nil {
		return
	}
	g.guarded = true
	if err := w.rerun(ctx, g); err != nil {
		g.err = w.rollback(ctx, err)
	}
}

// rerun rolls back g's transaction and runs its operations again in a new
// one, each in a savepoint.
func (w *writer) rerun(ctx context.Context, g *group) error {
	if _, err := w.tx.ExecContext(ctx, rollback); err != nil && !rolledBackAlready(err) {
		return fmt.Errorf("roll back to run the group in savepoints: %w", err)
	}
	if _, err := w.tx.ExecContext(ctx, beginImmediate); err != nil {
		return fmt.Errorf("begin a write transaction: %w", err)
	}
	for i, op := range g.ops {
		var err error
		ran := g.errs[i] == nil // else it was given up before it ran
		if g.errs[i], err = w.apply(ctx, op, ran); err != nil {
			return err
		}
	}
	return nil
}

// commit commits g, unless its transaction broke, answers its unflushed
// operations and hands the others to sync.
func (w *writer) commit(g *group) {
	if g.err == nil {
		if _, err := w.tx.ExecContext(context.Background(), commit); err != nil {
			g.err = w.rollback(context.Background(), fmt.Errorf("commit: %w", err))
		} else {
			w.commits.Add(1)
		}
	}
	if isFull(g.err) || slices.ContainsFunc(g.errs, isFull) {
		w.full.Store(true)
	}
	flushed := 0
	for i, op := range g.ops {
		if !op.unflushed {
			g.ops[flushed], g.errs[flushed] = op, g.errs[i]
			flushed++
			continue
		}
		if g.err != nil {
			op.done <- g.err
		} else {
			op.done <- g.errs[i]
		}
	}
	if flushed > 0 {
		g.ops, g.errs = g.ops[:flushed], g.errs[:flushed]
		w.committedMu.Lock()
		w.committed = append(w.committed, g)
		w.committedMu.Unlock()
		select {
		case w.added <- struct{}{}:
		default: // sync has a signal pending already
		}
	}
}

// sync is the goroutine that answers callers. While it has nothing to
// flush, it tells run it is ready for a group. It takes every group run has
// committed since it last looked, flushes the log once if any of them
// committed, and answers their operations. It returns, closing done, once run
// has returned and its last group is answered.
func (w *writer) sync() {
	defer close(w.done)
	defer func() {
		if w.wal != nil {
			w.wal.Close()
		}
	}()
	var (
		taken []*group
		last  lastFlush
	)
	for {
		more := true
		select {
		case _, more = <-w.added:
		case w.ready <- last:
			continue // run commits its group and adds it
		}
		w.committedMu.Lock()
		taken, w.committed = w.committed, taken[:0]
		w.committedMu.Unlock()
		last = lastFlush{start: time.Now()}
		for _, g := range taken {
			last.writes += len(g.ops)
		}
		w.answer(taken)
		clear(taken) // drop the references to the answered groups
		if !more {
			return
		}
	}
}

// answer flushes the log if any of the groups committed, then answers their
// operations.
func (w *writer) answer(groups []*group) {
	var flushErr error
	for _, g := range groups {
		if g.err == nil {
			flushErr = w.flush()
			break
		}
	}
	for _, g := range groups {
		for i, op := range g.ops {
			switch {
			case g.err != nil:
				op.done <- g.err
			case flushErr != nil:
				op.done <- flushErr
			default:
				op.done <- g.errs[i]
			}
		}
	}
}

// flush makes every committed group durable: it fsyncs the log. If that
// fails, the writer fails for good: after a failed fsync the kernel may have
// dropped the pages it could not write, so no later write could be answered
// as durable.
func (w *writer) flush() error {
	if err := w.err(); err != nil {
		return err
	}
	start := time.Now()
	err := w.flushLog()
	if err != nil {
		err = fmt.Errorf("flush the write-ahead log to disk, so stop writing: %w", err)
		w.failed.Store(&err)
		return err
	}
	took := time.Since(start)
	w.flushNS.Add(int64(took))
	w.flushesWithin[flushBucket(took)].Add(1)
	w.flushed()
	return nil
}

// flushBucket returns the index in Stats.FlushesWithin that counts a flush
// that took d.
func flushBucket(d time.Duration) int {
	i, _ := slices.BinarySearch(FlushBounds[:], d) // the first bound at least d
	return i
}

func (w *writer) flushLog() error {
	if w.wal == nil {
		f, err := os.OpenFile(w.walPath, os.O_RDWR, 0)
		if err != nil {
			return err
		}
		w.wal = f
	}
	return syncData(w.wal)
}

// err returns the error the writer failed with, or nil.
func (w *writer) err() error {
	if p := w.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// rollback ends the transaction after cause and returns cause, with the
// failure of ROLLBACK if it failed.
func (w *writer) rollback(ctx context.Context, cause error) error {
	if _, err := w.tx.ExecContext(ctx, rollback); err != nil && !rolledBackAlready(err) {
		return errors.Join(cause, fmt.Errorf("roll back: %w", err))
	}
	return cause
}

// rolledBackAlready reports whether err is ROLLBACK's failure for want of a
// transaction: after some errors (a full disk, an I/O error, no memory)
// SQLite rolls the transaction back by itself, which is what ROLLBACK was
// to do.
func rolledBackAlready(err error) bool {
	var e *sqlitedriver.Error
	return errors.As(err, &e) && e.Code() == sqlite3.SQLITE_ERROR && strings.Contains(e.Error(), "no transaction is active")
}

// isFull reports whether err is SQLite's SQLITE_FULL: the file system had
// no room for what a transaction wrote (ENOSPC; a quota exceeded, EDQUOT,
// is an I/O error to SQLite).
func isFull(err error) bool {
	var e *sqlitedriver.Error
	return errors.As(err, &e) && e.Code()&0xff == sqlite3.SQLITE_FULL
}

// apply runs op in a savepoint, unless it has not run yet (ran is false)
// and its caller has given up. opErr is op's own error, whose changes are
// rolled back; err reports that the transaction is broken.
func (w *writer) apply(ctx context.Context, op *writeOp, ran bool) (opErr, err error) {
	if err := op.ctx.Err(); err != nil && !ran {
		return fmt.Errorf("write given up before it ran: %w", err), nil
	}
	if _, err := w.tx.ExecContext(ctx, savepoint); err != nil {
		return nil, fmt.Errorf("open a savepoint: %w", err)
	}
	if opErr = op.fn(ctx, w.tx); opErr == nil {
		if _, err := w.tx.ExecContext(ctx, releaseSavepoint); err != nil {
			return nil, fmt.Errorf("release a savepoint: %w", err)
		}
		return nil, nil
	}
	if _, err := w.tx.ExecContext(ctx, rollbackSavepoint); err != nil {
		if strings.Contains(err.Error(), "no such savepoint") {
			// SQLite rolled the whole transaction back after opErr
			// (a full disk): that breaks it, for opErr's reason.
			return nil, opErr
		}
		return nil, fmt.Errorf("roll back a savepoint after %w: %w", opErr, err)
	}
	if _, err := w.tx.ExecContext(ctx, releaseSavepoint); err != nil {
		return nil, fmt.Errorf("release a savepoint: %w", err)
	}
	return opErr, nil
}

// close stops accepting operations, lets run finish the queued ones and
// waits until sync has answered them.
func (w *writer) close() {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.ops)
	}
	w.mu.Unlock()
	<-w.done
}

// isClosed reports whether close has been called.
func (w *writer) isClosed() bool {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.closed
}
