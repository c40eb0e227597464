package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/otpd/otpd/internal/storage"
)

// SQL of Purge. Each statement deletes at most one batch (the last
// parameter) of rows, found through an index, and is a transaction of its
// own. The batch is picked and locked by a subquery (FOR UPDATE, which
// checks the condition again on the newest version of a row that changed
// meanwhile: a code replaced, a send claimed anew), skipping rows that other
// calls hold (SKIP LOCKED: Purge never waits for a verification, and never
// makes one wait for more than its own batch); the deletion then finds the
// locked rows by ctid, a TID scan.
const (
	purgeCodes = `DELETE FROM codes WHERE ctid = ANY (ARRAY(
			SELECT ctid FROM codes WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED
		))`
	purgeFailures = `DELETE FROM failures WHERE ctid = ANY (ARRAY(
			SELECT ctid FROM failures WHERE failed_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED
		))`
	purgeSends = `DELETE FROM sends WHERE ctid = ANY (ARRAY(
			SELECT ctid FROM sends WHERE until_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED
		))`
	// purgeMessages deletes records strictly older than $1. The lock
	// checks the age again on a record replaced meanwhile.
	purgeMessages = `DELETE FROM messages WHERE ctid = ANY (ARRAY(
			SELECT ctid FROM messages WHERE created_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED
		))`
	// selectOutboxCut returns the newest message beyond the newest N (the
	// offset): it and everything older go.
	selectOutboxCut = `SELECT created_at, seq FROM outbox
		ORDER BY created_at DESC, seq DESC LIMIT 1 OFFSET $1`
	// purgeOutbox deletes the oldest messages up to and including the
	// position (created_at, seq). Messages never change.
	purgeOutbox = `DELETE FROM outbox WHERE seq = ANY (ARRAY(
			SELECT seq FROM outbox WHERE (created_at, seq) <= ($1, $2)
			ORDER BY created_at, seq LIMIT $3
		))`
)

// Purge deletes one batch of each kind of record that no longer matters at
// now: codes that expired storage.ExpiredCodeKept or longer before now;
// failures at or before
// now-r.FailureWindow; send records whose expiry (completed) or lease end
// (pending: its owner is gone) is at or before now; outbox messages older
// than r.OutboxMaxAge or beyond the newest r.OutboxMaxMessages; message
// records older than r.MessageMaxAge (by their CreatedAt). A zero
// FailureWindow, OutboxMaxAge, OutboxMaxMessages or MessageMaxAge disables
// its rule (keeps everything); r.BatchSize must be at least 1.
//
// Each batch is one statement, committed on its own: the rows it locks are
// locked only while it runs.
func (s *Store) Purge(ctx context.Context, now time.Time, r storage.Retention) (int, error) {
	if r.BatchSize < 1 {
		return 0, fmt.Errorf("storage/postgres: purge: batch size is %d, must be at least 1", r.BatchSize)
	}
	type step struct {
		what  string
		query string
		args  []any
	}
	steps := []step{
		{"codes", purgeCodes, []any{ms(now.Add(-storage.ExpiredCodeKept)), r.BatchSize}},
		{"send records", purgeSends, []any{ms(now), r.BatchSize}},
	}
	if r.FailureWindow > 0 {
		steps = append(steps, step{"failures", purgeFailures, []any{ms(now.Add(-r.FailureWindow)), r.BatchSize}})
	}
	if r.MessageMaxAge > 0 {
		steps = append(steps, step{"message records", purgeMessages, []any{ms(now.Add(-r.MessageMaxAge)), r.BatchSize}})
	}
	total := 0
	for _, st := range steps {
		tag, err := s.pool.Exec(ctx, st.query, st.args...)
		if err != nil {
			return total, fmt.Errorf("storage/postgres: purge %s: %w", st.what, err)
		}
		total += int(tag.RowsAffected())
	}
	n, err := s.purgeOutbox(ctx, now, r)
	total += n
	if err != nil {
		return total, fmt.Errorf("storage/postgres: purge outbox messages: %w", err)
	}
	return total, nil
}

// purgeOutbox deletes one batch of the outbox messages that r does not keep
// at now.
func (s *Store) purgeOutbox(ctx context.Context, now time.Time, r storage.Retention) (int, error) {
	var (
		cutAt  time.Time
		cutSeq int64
		cut    bool
	)
	if r.OutboxMaxAge > 0 {
		// Strictly older than the age: every message before that
		// millisecond.
		cutAt, cutSeq, cut = ms(now.Add(-r.OutboxMaxAge)).Add(-time.Millisecond), math.MaxInt64, true
	}
	if r.OutboxMaxMessages > 0 {
		var (
			at  time.Time
			seq int64
		)
		err := s.pool.QueryRow(ctx, selectOutboxCut, r.OutboxMaxMessages).Scan(&at, &seq)
		switch {
		case errors.Is(err, pgx.ErrNoRows): // no more than the maximum
		case err != nil:
			return 0, err
		case !cut || at.After(cutAt) || at.Equal(cutAt) && seq > cutSeq:
			cutAt, cutSeq, cut = at, seq, true
		}
	}
	if !cut {
		return 0, nil
	}
	tag, err := s.pool.Exec(ctx, purgeOutbox, cutAt, cutSeq, r.BatchSize)
	if err != nil {
		return 0, err
	}
	return int(tag.RowsAffected()), nil
}
