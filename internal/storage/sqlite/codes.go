package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/otpd/otpd/internal/storage"
)

// SQL of the codes and of the failure budgets.
const (
	// putCode stores a code under the number of the application with the
	// given ID and generation, if there is one.
	putCode = `INSERT OR REPLACE INTO codes
		(app_num, destination, reference_id, mac, allowed, failed, consumed, created_ms, expires_ms)
		SELECT num, ?, ?, ?, ?, 0, 0, ?, ? FROM apps WHERE id = ? AND generation = ?`
	// selectCodeAndLockout finds a code of the application with the given
	// ID (?1) and generation (?2) for the destination (?3) and reference
	// (?4), with the time of the failure that exhausts the destination's
	// budget, as selectLimitingFailure finds it (after ?5, at most ?6,
	// offset ?7), or NULL: one statement for the two reads of a
	// verification.
	selectCodeAndLockout = `SELECT c.app_num, c.mac, c.allowed, c.failed, c.consumed, c.expires_ms,
			(SELECT f.at_ms FROM failures f
				WHERE f.app_id = ?1 AND f.destination = ?3 AND f.at_ms > ?5 AND f.at_ms <= ?6
				ORDER BY f.at_ms DESC LIMIT 1 OFFSET ?7)
		FROM apps a JOIN codes c ON c.app_num = a.num
		WHERE a.id = ?1 AND a.generation = ?2 AND c.destination = ?3 AND c.reference_id = ?4`
	consumeCode = `UPDATE codes SET consumed = 1
		WHERE app_num = ? AND destination = ? AND reference_id = ?`
	countFailedAttempt = `UPDATE codes SET failed = failed + 1
		WHERE app_num = ? AND destination = ? AND reference_id = ?`
	insertFailure = `INSERT INTO failures (app_id, destination, at_ms) VALUES (?, ?, ?)`
	// selectLimitingFailure returns the time of the Limit-th newest failure
	// in (from, to] (the offset is Limit-1), if there are that many: the
	// budget regains room when that failure leaves the window. The range
	// ends storage.ClockSkew after now (see storage.Verification).
	selectLimitingFailure = `SELECT at_ms FROM failures
		WHERE app_id = ? AND destination = ? AND at_ms > ? AND at_ms <= ?
		ORDER BY at_ms DESC LIMIT 1 OFFSET ?`
)

// RecordSend stores the code, the message record, the outbox message and
// the completion in one write, so in one transaction. It returns storage.ErrNotFound, and stores
// nothing, if no application has the ID r.Code.Key.AppID and the generation
// r.Code.AppGeneration (it was deleted, perhaps re-created, while the code
// was being sent): such a code could never verify.
func (s *Store) RecordSend(ctx context.Context, r storage.SendRecord) error {
	err := s.w.do(ctx, func(ctx context.Context, tx *stmts) error {
		return recordSend(ctx, tx, r)
	})
	if err != nil {
		return fmt.Errorf("storage/sqlite: record send: %w", err)
	}
	return nil
}

// recordSend stores r in the writer's transaction.
func recordSend(ctx context.Context, tx *stmts, r storage.SendRecord) error {
	if c := r.Code; c != nil {
		if err := putCodeOf(ctx, tx, *c); err != nil {
			return err
		}
	}
	if m := r.Message; m != nil {
		if err := putMessageRecord(ctx, tx, *m); err != nil {
			return fmt.Errorf("message record %s: %w", m.MessageID, err)
		}
	}
	if m := r.Outbox; m != nil {
		if err := appendOutbox(ctx, tx, *m); err != nil {
			return fmt.Errorf("outbox: %w", err)
		}
	}
	if done := r.Completion; done != nil {
		if err := completeSend(ctx, tx, *done); err != nil {
			return fmt.Errorf("send record: %w", err)
		}
	}
	return nil
}

// putCodeOf stores c under its application's number, or returns
// storage.ErrNotFound if no application has c's ID and generation.
func putCodeOf(ctx context.Context, tx *stmts, c storage.Code) error {
	k := c.Key
	res, err := tx.ExecContext(ctx, putCode, k.Destination, k.ReferenceID, c.MAC, c.AllowedAttempts,
		unixMS(c.CreatedAt), unixMS(c.ExpiresAt), k.AppID, c.AppGeneration)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return storage.ErrNotFound
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
	v.Matches = matchOnce(v.Matches)
	var outcome storage.Outcome
	err := s.w.do(ctx, func(ctx context.Context, tx *stmts) error {
		var err error
		outcome, err = verify(ctx, tx, v)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("storage/sqlite: verify code: %w", err)
	}
	return outcome, nil
}

// matchOnce returns matches, asked at most once per stored MAC: the writer
// runs a write again when another in its group failed (writer.add), and
// storage.Verification promises that Matches is called at most once. The
// rerun finds the same MAC, the row being as the group's earlier writes
// left it both times; were it another, it would be asked about that one.
func matchOnce(matches func(storedMAC []byte) bool) func(storedMAC []byte) bool {
	var asked, matched bool
	var askedMAC []byte
	return func(storedMAC []byte) bool {
		if !asked || !bytes.Equal(storedMAC, askedMAC) {
			asked, askedMAC, matched = true, bytes.Clone(storedMAC), matches(storedMAC)
		}
		return matched
	}
}

// verify applies the rules of storage.Verification, in their order. Rules 1
// and 2 are one lookup: codes hang off the number of the application with
// the verification's ID and generation, and the failure budget is read
// alongside.
func verify(ctx context.Context, tx *stmts, v storage.Verification) (storage.Outcome, error) {
	k := v.Key
	var (
		appNum, expiresMS int64
		mac               []byte
		allowed, failed   int
		consumed          bool
		limitingMS        sql.NullInt64
	)
	err := tx.QueryRowContext(ctx, selectCodeAndLockout, k.AppID, v.AppGeneration, k.Destination, k.ReferenceID,
		unixMS(v.Now.Add(-v.Budget.Window)), unixMS(v.Now.Add(storage.ClockSkew)), v.Budget.Limit-1).
		Scan(&appNum, &mac, &allowed, &failed, &consumed, &expiresMS, &limitingMS)
	if errors.Is(err, sql.ErrNoRows) {
		return storage.OutcomeUnknown, nil
	}
	if err != nil {
		return "", err
	}
	switch {
	case limitingMS.Valid:
		return storage.OutcomeThrottled, nil
	case consumed:
		return storage.OutcomeConsumed, nil
	case unixMS(v.Now) >= expiresMS:
		return storage.OutcomeExpired, nil
	case failed >= allowed:
		return storage.OutcomeExhausted, nil
	}
	if v.Matches(mac) {
		if _, err := tx.ExecContext(ctx, consumeCode, appNum, k.Destination, k.ReferenceID); err != nil {
			return "", err
		}
		return storage.OutcomeValid, nil
	}
	if _, err := tx.ExecContext(ctx, countFailedAttempt, appNum, k.Destination, k.ReferenceID); err != nil {
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
func (s *Store) DestinationLockout(ctx context.Context, appID, _, destination string, now time.Time, b storage.FailureBudget) (time.Time, error) {
	if err := checkBudget(b); err != nil {
		return time.Time{}, fmt.Errorf("storage/sqlite: destination lockout: %w", err)
	}
	until, err := lockout(ctx, s.reads, appID, destination, now, b)
	if err != nil {
		return time.Time{}, fmt.Errorf("storage/sqlite: destination lockout: %w", err)
	}
	return until, nil
}

// lockout returns the zero time if fewer than b.Limit failures of
// (appID, destination) lie in (now-b.Window, now+storage.ClockSkew], and
// otherwise the time at which the Limit-th newest of them leaves the
// window.
func lockout(ctx context.Context, q *stmts, appID, destination string, now time.Time, b storage.FailureBudget) (time.Time, error) {
	var atMS int64
	err := q.QueryRowContext(ctx, selectLimitingFailure, appID, destination,
		unixMS(now.Add(-b.Window)), unixMS(now.Add(storage.ClockSkew)), b.Limit-1).Scan(&atMS)
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
