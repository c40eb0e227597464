package sqlite

import (
	"context"
	"database/sql"
	"sync/atomic"
	"time"
)

// checkpointInterval is the least time between two checkpoints: under load,
// each copies what about that long of writes added to the log.
const checkpointInterval = 100 * time.Millisecond

// walRestartPages is the writer's wal_autocheckpoint: past this many pages
// (16 MiB of 4 KiB pages), a commit checkpoints what the checkpointer has
// not, and the log starts over.
const walRestartPages = 4096

// checkpointer copies the write-ahead log into the database file in the
// background, with PASSIVE checkpoints on a connection of its own, so that
// the writer seldom does it inside a commit: a checkpoint reads the log,
// writes the database file and flushes both, which holds up every write
// queued meanwhile.
//
// A PASSIVE checkpoint never waits for the writer or for readers: it copies
// what no reader still needs. It cannot start the log over, though: only
// the next write transaction after a checkpoint that copied the whole log
// does, and while writes go on without pause the log is never whole at such
// a moment. So the writer's connection keeps SQLite's own checkpoint, at a
// higher threshold (walRestartPages): that one runs inside a commit, finds
// almost everything copied already, copies the rest and lets the log start
// over. A failed background checkpoint is counted and tried again at the
// next request.
type checkpointer struct {
	db       *sql.DB // one connection
	kick     chan struct{}
	stopping chan struct{}
	done     chan struct{}

	checkpoints atomic.Int64
	failures    atomic.Int64
}

func newCheckpointer(db *sql.DB) *checkpointer {
	return &checkpointer{db: db, kick: make(chan struct{}, 1), stopping: make(chan struct{}), done: make(chan struct{})}
}

// request asks for a checkpoint soon; it never blocks.
func (c *checkpointer) request() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// run checkpoints on request, at most once per checkpointInterval, until
// stop.
func (c *checkpointer) run() {
	defer close(c.done)
	for {
		select {
		case <-c.stopping:
			return
		case <-c.kick:
		}
		var busy, logFrames, copied int
		err := c.db.QueryRowContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &logFrames, &copied)
		if err != nil {
			c.failures.Add(1)
		} else {
			c.checkpoints.Add(1)
		}
		select {
		case <-c.stopping:
			return
		case <-time.After(checkpointInterval):
		}
	}
}

// stop ends run, after the checkpoint under way if any.
func (c *checkpointer) stop() {
	close(c.stopping)
	<-c.done
}
