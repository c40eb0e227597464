package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/otpd/otpd/internal/storage"
)

// SQL of Purge. Each statement deletes at most one batch (the last
// parameter) of rows, found through an index.
const (
	purgeCodes = `DELETE FROM codes WHERE (app_num, destination, reference_id) IN (
		SELECT app_num, destination, reference_id FROM codes WHERE expires_ms <= ? LIMIT ?)`
	purgeFailures = `DELETE FROM failures WHERE rowid IN (
		SELECT rowid FROM failures WHERE at_ms <= ? LIMIT ?)`
	purgeSends = `DELETE FROM sends WHERE (app_id, key) IN (
		SELECT app_id, key FROM sends WHERE until_ms <= ? LIMIT ?)`
	purgeMessages = `DELETE FROM messages WHERE message_id IN (
		SELECT message_id FROM messages WHERE created_ms < ? LIMIT ?)`
	// selectOutboxCut returns the newest message beyond the newest N (the
	// offset): it and everything older go.
	selectOutboxCut = `SELECT created_ms, seq FROM outbox
		ORDER BY created_ms DESC, seq DESC LIMIT 1 OFFSET ?`
	// purgeOutbox deletes the oldest messages up to and including the
	// position (created_ms, seq).
	purgeOutbox = `DELETE FROM outbox WHERE seq IN (
		SELECT seq FROM outbox WHERE (created_ms, seq) <= (?, ?)
		ORDER BY created_ms, seq LIMIT ?)`
)

// Purge deletes one batch of each kind of record that no longer matters at
// now: codes that expired storage.ExpiredCodeKept or longer before now;
// failures at or before now-r.FailureWindow; send records whose expiry (completed) or lease end
// (pending: its owner is gone) is at or before now; outbox messages older
// than r.OutboxMaxAge or beyond the newest r.OutboxMaxMessages; message
// records older than r.MessageMaxAge (by their CreatedAt). A zero
// FailureWindow, OutboxMaxAge, OutboxMaxMessages or MessageMaxAge disables
// its rule (keeps everything); r.BatchSize must be at least 1.
//
// Each kind is one write of its own through the writer, so the writer never
// spends longer than one batch on Purge before it serves other writes.
func (s *Store) Purge(ctx context.Context, now time.Time, r storage.Retention) (int, error) {
	if r.BatchSize < 1 {
		return 0, fmt.Errorf("storage/sqlite: purge: batch size is %d, must be at least 1", r.BatchSize)
	}
	nowMS := unixMS(now)
	steps := []purgeStep{
		{"codes", deleteBatch(purgeCodes, unixMS(now.Add(-storage.ExpiredCodeKept)), r.BatchSize)},
		{"send records", deleteBatch(purgeSends, nowMS, r.BatchSize)},
		{"outbox messages", func(ctx context.Context, tx *stmts) (sql.Result, error) {
			cutMS, cutSeq, err := outboxCut(ctx, tx, now, r)
			if err != nil {
				return nil, err
			}
			return tx.ExecContext(ctx, purgeOutbox, cutMS, cutSeq, r.BatchSize)
		}},
	}
	if r.FailureWindow > 0 {
		steps = append(steps, purgeStep{"failures", deleteBatch(purgeFailures, unixMS(now.Add(-r.FailureWindow)), r.BatchSize)})
	}
	if r.MessageMaxAge > 0 {
		// Strictly older than the age.
		steps = append(steps, purgeStep{"message records", deleteBatch(purgeMessages, unixMS(now.Add(-r.MessageMaxAge)), r.BatchSize)})
	}
	total := 0
	for _, step := range steps {
		var n int64
		err := s.w.doUnflushed(ctx, func(ctx context.Context, tx *stmts) error {
			res, err := step.del(ctx, tx)
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
		if err != nil {
			return total, fmt.Errorf("storage/sqlite: purge %s: %w", step.what, err)
		}
		total += int(n)
	}
	return total, nil
}

// purgeStep deletes one batch of one kind of record.
type purgeStep struct {
	what string
	del  func(ctx context.Context, tx *stmts) (sql.Result, error)
}

// deleteBatch returns a purge step's deletion that runs query with args.
func deleteBatch(query string, args ...any) func(ctx context.Context, tx *stmts) (sql.Result, error) {
	return func(ctx context.Context, tx *stmts) (sql.Result, error) {
		return tx.ExecContext(ctx, query, args...)
	}
}

// outboxCut returns the position (created_ms, seq) of the newest outbox
// message to delete under r at now; a position before every message if none.
func outboxCut(ctx context.Context, tx *stmts, now time.Time, r storage.Retention) (cutMS, cutSeq int64, err error) {
	cutMS, cutSeq = math.MinInt64, math.MinInt64
	if r.OutboxMaxAge > 0 {
		// Strictly older than the age: every message before that millisecond.
		cutMS, cutSeq = unixMS(now.Add(-r.OutboxMaxAge))-1, math.MaxInt64
	}
	if r.OutboxMaxMessages > 0 {
		var ms, seq int64
		err := tx.QueryRowContext(ctx, selectOutboxCut, r.OutboxMaxMessages).Scan(&ms, &seq)
		switch {
		case errors.Is(err, sql.ErrNoRows): // no more than the maximum
		case err != nil:
			return 0, 0, err
		case ms > cutMS || ms == cutMS && seq > cutSeq:
			cutMS, cutSeq = ms, seq
		}
	}
	return cutMS, cutSeq, nil
}
