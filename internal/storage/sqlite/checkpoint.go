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

// checkpointer copies the write-ahead log into the database file in the
// background, with PASSIVE checkpoints on a connection of its own, so that
// the writer never does it inside a commit (its connection has
// wal_autocheckpoint=0): a checkpoint reads the log, writes the database
// file and flushes both, which would hold up every write queued meanwhile.
//
// A PASSIVE checkpoint never waits for the writer or for readers: it copies
// what no reader still needs, and the next write transaction after a
// complete one starts the log over. A failed checkpoint is counted and tried
// again at the next kick.
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
