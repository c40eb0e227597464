package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
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
type writeFunc func(ctx context.Context, tx *stmts) error

// writeOp is a queued writeFunc and the way back to its caller.
type writeOp struct {
	ctx  context.Context // the caller's: the operation is skipped if it is done before its turn
	fn   writeFunc
	done chan error // buffered, so that the writer never waits for a caller
	// unflushed answers the caller once the group committed, without
	// waiting for the flush (see doUnflushed).
	unflushed bool
}

// writer runs all of a Store's writes on its one write connection, in groups
// ("group commit"). It takes the first queued operation, then whatever else is
// queued at that moment, up to maxBatch operations; runs them in one BEGIN
// IMMEDIATE transaction with a SAVEPOINT for each; and commits once.
//
// Its connection commits with synchronous=NORMAL, which writes the group to
// the write-ahead log without waiting for the disk; a second goroutine (sync)
// then fsyncs the log and only then answers the group's callers. So a caller
// is answered only once its write is durable, as with synchronous=FULL, but
// the next group runs while the disk flushes the previous ones, and one fsync
// serves every group committed meanwhile. SQLite keeps the log's frames in
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
	wal      *os.File              // opened by sync at its first flush
	groups   chan *group           // committed by run, waiting for sync
	failed   atomic.Pointer[error] // the flush that failed: every later write fails

	mu     sync.RWMutex // read-held while sending on ops, write-held by close
	closed bool
	done   chan struct{} // closed when sync returns, after run

	writes  atomic.Int64 // operations run
	commits atomic.Int64 // transactions committed
	flushes atomic.Int64 // fsyncs of the log
}

// group is a transaction's operations and their outcome, until answered.
type group struct {
	ops  []*writeOp
	errs []error // errs[i] is ops[i]'s own error
	err  error   // the transaction's, which every operation gets
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
// flushes the log itself.
func newWriter(conn *sql.Conn, maxBatch int, walPath string) *writer {
	return &writer{
		conn:     conn,
		tx:       newStmts(conn),
		ops:      make(chan *writeOp, maxBatch),
		maxBatch: maxBatch,
		walPath:  walPath,
		groups:   make(chan *group, 64),
		done:     make(chan struct{}),
	}
}

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

// run is the writer goroutine. It answers the unflushed operations of every
// group it committed (or failed to), hands the group to sync for the others,
// and returns once close has closed the queue and every queued operation has
// been run.
func (w *writer) run() {
	defer close(w.groups)
	for first := range w.ops {
		g := &group{ops: w.gather(append(make([]*writeOp, 0, w.maxBatch), first))}
		g.errs = make([]error, len(g.ops))
		g.err = w.runBatch(g.ops, g.errs)
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
			w.groups <- g
		}
	}
}

// sync is the goroutine that answers callers. It takes the groups run has
// handed over, all those waiting at once; flushes the log once if any of
// them committed; and answers their operations. It returns, closing done,
// after the last group.
func (w *writer) sync() {
	defer close(w.done)
	defer func() {
		if w.wal != nil {
			w.wal.Close()
		}
	}()
	var waiting []*group
	for g := range w.groups {
		waiting = append(waiting[:0], g)
	gather:
		for {
			select {
			case g, ok := <-w.groups:
				if !ok {
					break gather
				}
				waiting = append(waiting, g)
			default:
				break gather
			}
		}
		var flushErr error
		for _, g := range waiting {
			if g.err == nil {
				flushErr = w.flush()
				break
			}
		}
		for _, g := range waiting {
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
		clear(waiting) // drop the references to the answered groups
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
	err := w.flushLog()
	if err != nil {
		err = fmt.Errorf("flush the write-ahead log to disk, so stop writing: %w", err)
		w.failed.Store(&err)
		return err
	}
	w.flushes.Add(1)
	return nil
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

// gather adds to batch the operations already queued, without waiting, up to
// maxBatch in all.
func (w *writer) gather(batch []*writeOp) []*writeOp {
	for len(batch) < w.maxBatch {
		select {
		case op, ok := <-w.ops:
			if !ok {
				return batch
			}
			batch = append(batch, op)
		default:
			return batch
		}
	}
	return batch
}

// runBatch runs batch in one transaction, setting errs[i] to the error of
// batch[i] alone. It returns an error if the transaction failed as a whole.
func (w *writer) runBatch(batch []*writeOp, errs []error) error {
	ctx := context.Background()
	if _, err := w.tx.ExecContext(ctx, beginImmediate); err != nil {
		return fmt.Errorf("begin a write transaction: %w", err)
	}
	for i, op := range batch {
		var err error
		if errs[i], err = w.apply(ctx, op); err != nil {
			return w.rollback(ctx, err)
		}
	}
	if _, err := w.tx.ExecContext(ctx, commit); err != nil {
		return w.rollback(ctx, fmt.Errorf("commit: %w", err))
	}
	w.commits.Add(1)
	return nil
}

// rollback ends the transaction after cause and returns cause. After some
// errors SQLite has rolled back already; ROLLBACK then fails, saying that no
// transaction is active, and that is reported with cause.
func (w *writer) rollback(ctx context.Context, cause error) error {
	if _, err := w.tx.ExecContext(ctx, rollback); err != nil {
		return errors.Join(cause, fmt.Errorf("roll back: %w", err))
	}
	return cause
}

// apply runs op in a savepoint. opErr is op's own error, whose changes are
// rolled back; err reports that the transaction is broken.
func (w *writer) apply(ctx context.Context, op *writeOp) (opErr, err error) {
	if err := op.ctx.Err(); err != nil {
		return fmt.Errorf("write given up before it ran: %w", err), nil
	}
	w.writes.Add(1)
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
		return nil, fmt.Errorf("roll back a savepoint after %v: %w", opErr, err)
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
