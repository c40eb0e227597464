package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/otpd/otpd/internal/storage"
)

// SQL of the codes and of the failure budgets.
const (
	putCode = `INSERT OR REPLACE INTO codes
		(app_id, destination, reference_id, generation, mac, allowed, failed, consumed, created_ms, expires_ms)
		VALUES (?, ?, ?, ?, ?, ?, 0, 0, ?, ?)`
	selectCode = `SELECT generation, mac, allowed, failed, consumed, expires_ms FROM codes
		WHERE app_id = ? AND destination = ? AND reference_id = ?`
	consumeCode = `UPDATE codes SET consumed = 1
		WHERE app_id = ? AND destination = ? AND reference_id = ?`
	countFailedAttempt = `UPDATE codes SET failed = failed + 1
		WHERE app_id = ? AND destination = ? AND reference_id = ?`
	insertFailure = `INSERT INTO failures (app_id, destination, at_ms) VALUES (?, ?, ?)`
	// selectLimitingFailure returns the time of the Limit-th newest failure
	// in the window (from, to] (the offset is Limit-1), if there are that
	// many: the budget regains room when that failure leaves the window.
	selectLimitingFailure = `SELECT at_ms FROM failures
		WHERE app_id = ? AND destination = ? AND at_ms > ? AND at_ms <= ?
		ORDER BY at_ms DESC LIMIT 1 OFFSET ?`
)

// PutCode makes c the one live code for its key, replacing any previous one.
func (s *Store) PutCode(ctx context.Context, c storage.Code) error {
	k := c.Key
	err := s.w.do(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, putCode, k.AppID, k.Destination, k.ReferenceID, c.AppGeneration, c.MAC,
			c.AllowedAttempts, unixMS(c.CreatedAt), unixMS(c.ExpiresAt))
		return err
	})
	if err != nil {
		return fmt.Errorf("storage/sqlite: put code: %w", err)
	}
	return nil
}

// VerifyCode decides one verification attempt inside the writer's
// transaction, which makes it atomic for every Store on the database file.
// The budget's Limit must be at least 1.
func (s *Store) VerifyCode(ctx context.Context, v storage.Verification) (storage.Outcome, error) {
	if err := checkBudget(v.Budget); err != nil {
		return "", fmt.Errorf("storage/sqlite: verify code: %w", err)
	}
	var outcome storage.Outcome
	err := s.w.do(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		outcome, err = verify(ctx, tx, v)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("storage/sqlite: verify code: %w", err)
	}
	return outcome, nil
}

// verify applies the rules of storage.Verification, in their order.
func verify(ctx context.Context, tx *sql.Tx, v storage.Verification) (storage.Outcome, error) {
	k := v.Key
	var (
		generation      string
		mac             []byte
		allowed, failed int
		consumed        bool
		expiresMS       int64
	)
	err := tx.QueryRowContext(ctx, selectCode, k.AppID, k.Destination, k.ReferenceID).
		Scan(&generation, &mac, &allowed, &failed, &consumed, &expiresMS)
	if errors.Is(err, sql.ErrNoRows) {
		return storage.OutcomeUnknown, nil
	}
	if err != nil {
		return "", err
	}
	if generation != v.AppGeneration {
		return storage.OutcomeUnknown, nil
	}
	until, err := lockout(ctx, tx, k.AppID, k.Destination, v.Now, v.Budget)
	if err != nil {
		return "", err
	}
	switch {
	case !until.IsZero():
		return storage.OutcomeThrottled, nil
	case consumed:
		return storage.OutcomeConsumed, nil
	case unixMS(v.Now) >= expiresMS:
		return storage.OutcomeExpired, nil
	case failed >= allowed:
		return storage.OutcomeExhausted, nil
	}
	if v.Matches(mac) {
		if _, err := tx.ExecContext(ctx, consumeCode, k.AppID, k.Destination, k.ReferenceID); err != nil {
			return "", err
		}
		return storage.OutcomeValid, nil
	}
	if _, err := tx.ExecContext(ctx, countFailedAttempt, k.AppID, k.Destination, k.ReferenceID); err != nil {
		return "", err
	}
	if _, err := tx.ExecContext(ctx, insertFailure, k.AppID, k.Destination, unixMS(v.Now)); err != nil {
		return "", err
	}
	return storage.OutcomeWrong, nil
}

// DestinationLockout reports until when the destination's failure budget is
// exhausted, or the zero time. It reads through a read-only connection. The
// budget's Limit must be at least 1.
func (s *Store) DestinationLockout(ctx context.Context, appID, destination string, now time.Time, b storage.FailureBudget) (time.Time, error) {
	if err := checkBudget(b); err != nil {
		return time.Time{}, fmt.Errorf("storage/sqlite: destination lockout: %w", err)
	}
	until, err := lockout(ctx, s.rdb, appID, destination, now, b)
	if err != nil {
		return time.Time{}, fmt.Errorf("storage/sqlite: destination lockout: %w", err)
	}
	return until, nil
}

// lockout returns the zero time if fewer than b.Limit failures of
// (appID, destination) lie in (now-b.Window, now], and otherwise the time at
// which the Limit-th newest of them leaves the window.
func lockout(ctx context.Context, q interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}, appID, destination string, now time.Time, b storage.FailureBudget) (time.Time, error) {
	var atMS int64
	err := q.QueryRowContext(ctx, selectLimitingFailure, appID, destination,
		unixMS(now.Add(-b.Window)), unixMS(now), b.Limit-1).Scan(&atMS)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, err
	}
	return fromUnixMS(atMS).Add(b.Window), nil
}

// checkBudget rejects a budget whose Limit is below 1: the contract's rules
// cannot be applied to it (no count of failures is ever "below 0"), and
// reading it as "no budget" would silently drop a security control.
func checkBudget(b storage.FailureBudget) error {
	if b.Limit < 1 {
		return fmt.Errorf("failure budget limit is %d, must be at least 1", b.Limit)
	}
	return nil
}
