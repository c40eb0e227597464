package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/otpd/otpd/internal/storage"
)

// SQL of the send records. A record is pending while its result is NULL.
const (
	selectSend    = `SELECT result IS NOT NULL, result, until_ms FROM sends WHERE app_id = ? AND key = ?`
	putPending    = `INSERT OR REPLACE INTO sends (app_id, key, result, until_ms) VALUES (?, ?, NULL, ?)`
	putCompleted  = `INSERT OR REPLACE INTO sends (app_id, key, result, until_ms) VALUES (?, ?, ?, ?)`
	deletePending = `DELETE FROM sends WHERE app_id = ? AND key = ? AND result IS NULL`
)

// ClaimSend claims the send (c.AppID, c.Key) inside the writer's
// transaction, which makes it atomic for every Store on the database file.
// A record is live while c.Now is before its lease end or expiry. It returns
// once the claim is committed, without waiting for the disk (see
// doUnflushed): a completed record it returns has been committed, and is
// on disk unless the first request is still within the few milliseconds
// between its commit and its answer.
func (s *Store) ClaimSend(ctx context.Context, c storage.SendClaim) ([]byte, bool, error) {
	result, claimed, err := unlessLive(ctx, s.w.doUnflushed, c, func(ctx context.Context, tx *stmts) error {
		_, err := tx.ExecContext(ctx, putPending, c.AppID, c.Key, unixMS(c.LeaseUntil))
		return err
	})
	if err != nil {
		return nil, false, fmt.Errorf("storage/sqlite: claim send: %w", err)
	}
	return result, claimed, nil
}

// RecordSendOnce decides c and records r in one write of the writer's, so
// in one transaction; it returns once that is on disk.
func (s *Store) RecordSendOnce(ctx context.Context, c storage.SendClaim, r storage.SendRecord) ([]byte, bool, error) {
	result, recorded, err := unlessLive(ctx, s.w.do, c, func(ctx context.Context, tx *stmts) error {
		return recordSend(ctx, tx, r)
	})
	if err != nil {
		return nil, false, fmt.Errorf("storage/sqlite: record send once: %w", err)
	}
	return result, recorded, nil
}

// unlessLive runs, through write (the writer's do or doUnflushed), one
// write that runs take unless the send (c.AppID, c.Key) has a live record.
// It returns that record's result (nil while pending) and took=false, or
// took=true once take succeeded.
func unlessLive(ctx context.Context, write func(context.Context, writeFunc) error, c storage.SendClaim, take writeFunc) (result []byte, took bool, err error) {
	// The write may still run after a caller that gave up has returned:
	// it sets only these locals, which are read once the write is done.
	var (
		prior []byte
		taken bool
	)
	err = write(ctx, func(ctx context.Context, tx *stmts) error {
		p, live, err := liveSend(ctx, tx, c)
		prior, taken = p, false // it may run twice (see writeFunc)
		if err != nil || live {
			return err
		}
		if err := take(ctx, tx); err != nil {
			return err
		}
		taken = true
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	return prior, taken, nil
}

// liveSend reports whether the send (c.AppID, c.Key) has a record that is
// live at c.Now, with its result if it is completed (nil while pending).
func liveSend(ctx context.Context, tx *stmts, c storage.SendClaim) (result []byte, live bool, err error) {
	var (
		completed bool
		untilMS   int64
	)
	err = tx.QueryRowContext(ctx, selectSend, c.AppID, c.Key).Scan(&completed, &result, &untilMS)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, false, nil
	case err != nil:
		return nil, false, err
	case unixMS(c.Now) >= untilMS:
		return nil, false, nil
	case !completed:
		return nil, true, nil
	case result == nil:
		return []byte{}, true, nil // an empty result; nil would mean "pending"
	}
	return result, true, nil
}

// completeSend stores the completed record for (done.AppID, done.Key),
// kept until done.ExpiresAt. It stores it even if the pending record is gone
// (released, purged after its lease ended, or taken over): the message went
// out, and a retry should get its result.
func completeSend(ctx context.Context, tx *stmts, done storage.SendCompletion) error {
	result := done.Result
	if result == nil {
		result = []byte{} // NULL would read as pending
	}
	_, err := tx.ExecContext(ctx, putCompleted, done.AppID, done.Key, result, unixMS(done.ExpiresAt))
	return err
}

// ReleaseSend deletes the pending record for (appID, key), if there is one. A
// completed record stays.
func (s *Store) ReleaseSend(ctx context.Context, appID, key string) error {
	err := s.w.doUnflushed(ctx, func(ctx context.Context, tx *stmts) error {
		_, err := tx.ExecContext(ctx, deletePending, appID, key)
		return err
	})
	if err != nil {
		return fmt.Errorf("storage/sqlite: release send: %w", err)
	}
	return nil
}
