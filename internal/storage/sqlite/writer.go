package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
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
}

// writer runs all of a Store's writes on its one write connection, in groups
// ("group commit"). It takes the first queued operation, then whatever else is
// queued at that moment, up to maxBatch operations; runs them in one BEGIN
// IMMEDIATE transaction with a SAVEPOINT for each; commits once, which is one
// fsync for the whole group; and only then answers each caller. So a caller
// is answered only once its write is durable, and under load many writes
// share each fsync.
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

	mu     sync.RWMutex // read-held while sending on ops, write-held by close
	closed bool
	done   chan struct{} // closed when run returns

	writes  atomic.Int64 // operations run
	commits atomic.Int64 // transactions committed
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

func newWriter(conn *sql.Conn, maxBatch int) *writer {
	return &writer{
		conn:     conn,
		tx:       newStmts(conn),
		ops:      make(chan *writeOp, maxBatch),
		maxBatch: maxBatch,
		done:     make(chan struct{}),
	}
}

// do queues fn and waits until its group has committed. It returns fn's
// error, the group's error, or ctx's error if ctx is done first; in that last
// case fn may still run (or may have run) to completion.
func (w *writer) do(ctx context.Context, fn writeFunc) error {
	op := &writeOp{ctx: ctx, fn: fn, done: make(chan error, 1)}
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

// enqueue hands op to run, unless the writer is closed or op's context ends
// while the queue is full.
func (w *writer) enqueue(op *writeOp) error {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		return errClosed
	}
	select {
	case w.ops <- op:
		return nil
	case <-op.ctx.Done():
		return fmt.Errorf("queueing a write: %w", op.ctx.Err())
	}
}

// run is the writer goroutine. It returns once close has closed the queue
// and every queued operation has been answered.
func (w *writer) run() {
	defer close(w.done)
	batch := make([]*writeOp, 0, w.maxBatch)
	errs := make([]error, w.maxBatch)
	for first := range w.ops {
		batch = w.gather(append(batch[:0], first))
		err := w.runBatch(batch, errs)
		for i, op := range batch {
			if err != nil {
				op.done <- err
			} else {
				op.done <- errs[i]
			}
		}
		clear(batch) // drop the references to the answered operations
	}
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
// waits for it to return.
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
