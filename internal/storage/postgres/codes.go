package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/otpd/otpd/internal/storage"
)

// SQL of the codes and of the failure budgets.
const (
	// putCode stores a code under the number of the application with the
	// given ID and generation, replacing any code of the key whatever its
	// state. If there is no such application, the number is NULL and the
	// statement fails the NOT NULL check of app_num; if the application is
	// deleted while it runs, it fails the foreign key check (see
	// isMissingApp). Either failure aborts the transaction it runs in.
	putCode = `INSERT INTO codes
			(app_num, created_at, expires_at, allowed, failed, consumed, destination, reference_id, mac)
		VALUES ((SELECT num FROM apps WHERE id = $1 AND generation = $2), $3, $4, $5, 0, false, $6, $7, $8)
		ON CONFLICT (app_num, destination, reference_id) DO UPDATE SET
			created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at,
			allowed = EXCLUDED.allowed, failed = 0, consumed = false, mac = EXCLUDED.mac`
	beginReadCommitted = `BEGIN ISOLATION LEVEL READ COMMITTED`
	commit             = `COMMIT`
	// lockDestination takes the advisory lock of an (application,
	// destination) failure budget until the transaction ends.
	lockDestination = `SELECT pg_advisory_xact_lock($1)`
	// selectCodeForUpdate finds and locks the code of the application with
	// the given ID and generation.
	selectCodeForUpdate = `SELECT c.app_num, c.mac, c.allowed, c.failed, c.consumed, c.expires_at
		FROM apps a JOIN codes c ON c.app_num = a.num
		WHERE a.id = $1 AND a.generation = $2 AND c.destination = $3 AND c.reference_id = $4
		FOR UPDATE OF c`
	// selectLimitingFailure returns the time of the Limit-th newest
	// failure in (from, to] (the offset is Limit-1), if there are that
	// many: the budget regains room when that failure leaves the window.
	// The range ends storage.ClockSkew after now (see
	// storage.Verification). Failures of another generation belong to
	// another number.
	selectLimitingFailure = `SELECT failed_at FROM failures
		WHERE app_num = (SELECT num FROM apps WHERE id = $1 AND generation = $2)
			AND destination = $3 AND failed_at > $4 AND failed_at <= $5
		ORDER BY failed_at DESC LIMIT 1 OFFSET $6`
	consumeCode = `UPDATE codes SET consumed = true
		WHERE app_num = $1 AND destination = $2 AND reference_id = $3`
	// countFailedAttempt counts a wrong guess on the code and records it
	// against the destination's budget.
	countFailedAttempt = `WITH counted AS (
			UPDATE codes SET failed = failed + 1
			WHERE app_num = $1 AND destination = $2 AND reference_id = $3
		)
		INSERT INTO failures (app_num, destination, failed_at) VALUES ($1, $2, $4)`
)

// recordSendAttempts bounds how often RecordSend tries again after a
// conflict between puts of message records that the lock of their carrier
// message ID does not prevent (see isRetryablePut).
const recordSendAttempts = 5

// RecordSend stores the code, the message record and the completion in one
// transaction of one round trip: a batch runs as one implicit transaction,
// which commits once, at its end, and which an error anywhere rolls back
// whole. It returns storage.ErrNotFound, having stored nothing, if no
// application has the ID r.Code.Key.AppID and the generation
// r.Code.AppGeneration (it was deleted, perhaps re-created, while the code
// was being sent): such a code could never verify.
func (s *Store) RecordSend(ctx context.Context, r storage.SendRecord) error {
	ctx, cancel := s.callContext(ctx)
	defer cancel()
	var err error
	for range recordSendAttempts {
		if err = s.pool.SendBatch(ctx, recordSendBatch(r)).Close(); !isRetryablePut(err) {
			break
		}
	}
	switch {
	case isMissingApp(err):
		return fmt.Errorf("storage/postgres: record send: %w", storage.ErrNotFound)
	case err != nil:
		return fmt.Errorf("storage/postgres: record send: %w", err)
	}
	return nil
}

// recordSendBatch queues the statements of r: the code's, then the message
// record's, the outbox message's and the completion's. The code's row lock is thus taken before
// the lock of the carrier message ID, which no other method takes.
func recordSendBatch(r storage.SendRecord) *pgx.Batch {
	b := &pgx.Batch{}
	if c := r.Code; c != nil {
		k := c.Key
		b.Queue(putCode, k.AppID, c.AppGeneration, ms(c.CreatedAt), ms(c.ExpiresAt),
			c.AllowedAttempts, k.Destination, k.ReferenceID, c.MAC)
	}
	if m := r.Message; m != nil {
		queuePutMessage(b, *m)
	}
	if m := r.Outbox; m != nil {
		queueAppendOutbox(b, *m)
	}
	if done := r.Completion; done != nil {
		queueCompleteSend(b, *done)
	}
	return b
}

// isMissingApp reports whether err is putCode's failure for want of its
// application: the NOT NULL violation of app_num (there is no such
// application) or a foreign key violation (it was deleted while the
// statement ran).
func isMissingApp(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	return pgErr.Code == "23502" && pgErr.ColumnName == "app_num" || pgErr.Code == "23503"
}

// VerifyCode decides one verification attempt in one transaction, atomic for
// every Store on the database: it holds the destination's advisory lock and
// the code's row lock from its first read to its commit. The budget's Limit
// must be at least 1.
func (s *Store) VerifyCode(ctx context.Context, v storage.Verification) (storage.Outcome, error) {
	ctx, cancel := s.callContext(ctx)
	defer cancel()
	if err := checkBudget(v.Budget); err != nil {
		return "", fmt.Errorf("storage/postgres: verify code: %w", err)
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return "", fmt.Errorf("storage/postgres: verify code: %w", err)
	}
	// A connection that an error left inside the transaction is closed on
	// release, not reused, and the server rolls the transaction back.
	defer conn.Release()
	outcome, err := verify(ctx, conn.Conn(), v)
	if err != nil {
		return "", fmt.Errorf("storage/postgres: verify code: %w", err)
	}
	return outcome, nil
}

// storedCode is what VerifyCode reads of a code.
type storedCode struct {
	appNum          int64
	mac             []byte
	allowed, failed int
	consumed        bool
	expiresAt       time.Time
}

// verify applies the rules of storage.Verification, in their order, in a
// transaction of two round trips. The first begins the transaction (read
// committed: each statement sees what was committed before it began), takes
// the destination's lock, then, in statements that start once the lock is
// held, reads and locks the code and reads the budget's count. The second
// writes the outcome, if it changes state, and commits.
func verify(ctx context.Context, conn *pgx.Conn, v storage.Verification) (storage.Outcome, error) {
	k := v.Key
	b := &pgx.Batch{}
	b.Queue(beginReadCommitted)
	b.Queue(lockDestination, destinationLockKey(k.AppID, k.Destination))
	b.Queue(selectCodeForUpdate, k.AppID, v.AppGeneration, k.Destination, k.ReferenceID)
	b.Queue(selectLimitingFailure, k.AppID, v.AppGeneration, k.Destination,
		ms(v.Now.Add(-v.Budget.Window)), ms(v.Now.Add(storage.ClockSkew)), v.Budget.Limit-1)
	br := conn.SendBatch(ctx, b)
	c, found, throttled, err := readVerification(br)
	if err := errors.Join(err, br.Close()); err != nil {
		return "", err
	}

	var outcome storage.Outcome
	end := &pgx.Batch{}
	switch now := ms(v.Now); {
	case !found:
		outcome = storage.OutcomeUnknown
	case throttled:
		outcome = storage.OutcomeThrottled
	case c.consumed:
		outcome = storage.OutcomeConsumed
	case !now.Before(c.expiresAt):
		outcome = storage.OutcomeExpired
	case c.failed >= c.allowed:
		outcome = storage.OutcomeExhausted
	case v.Matches(c.mac):
		outcome = storage.OutcomeValid
		end.Queue(consumeCode, c.appNum, k.Destination, k.ReferenceID)
	default:
		outcome = storage.OutcomeWrong
		end.Queue(countFailedAttempt, c.appNum, k.Destination, k.ReferenceID, now)
	}
	end.Queue(commit)
	if err := commitBatch(ctx, conn, end); err != nil {
		return "", err
	}
	return outcome, nil
}

// commitBatch runs b, whose last statement is a COMMIT, and checks that the
// transaction committed.
func commitBatch(ctx context.Context, conn *pgx.Conn, b *pgx.Batch) error {
	br := conn.SendBatch(ctx, b)
	var (
		tag pgconn.CommandTag
		err error
	)
	for range b.Len() {
		if tag, err = br.Exec(); err != nil {
			break
		}
	}
	if err := errors.Join(err, br.Close()); err != nil {
		return err
	}
	if tag.String() != "COMMIT" {
		return fmt.Errorf("the transaction did not commit (%s)", tag)
	}
	return nil
}

// readVerification reads the results of verify's first batch: the code, whether
// there is one, and whether the destination's budget is exhausted.
func readVerification(br pgx.BatchResults) (c storedCode, found, throttled bool, err error) {
	if _, err := br.Exec(); err != nil {
		return c, false, false, fmt.Errorf("begin: %w", err)
	}
	if _, err := br.Exec(); err != nil {
		return c, false, false, fmt.Errorf("lock the destination: %w", err)
	}
	err = br.QueryRow().Scan(&c.appNum, &c.mac, &c.allowed, &c.failed, &c.consumed, &c.expiresAt)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return c, false, false, fmt.Errorf("read the code: %w", err)
	default:
		found = true
	}
	var limiting time.Time
	err = br.QueryRow().Scan(&limiting)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return c, false, false, fmt.Errorf("count failures: %w", err)
	default:
		throttled = true
	}
	return c, found, throttled, nil
}

// DestinationLockout reports until when the destination's failure budget is
// exhausted, or the zero time, in one statement. The budget's Limit must be
// at least 1.
func (s *Store) DestinationLockout(ctx context.Context, appID, appGeneration, destination string, now time.Time, b storage.FailureBudget) (time.Time, error) {
	ctx, cancel := s.callContext(ctx)
	defer cancel()
	if err := checkBudget(b); err != nil {
		return time.Time{}, fmt.Errorf("storage/postgres: destination lockout: %w", err)
	}
	var limiting time.Time
	err := s.pool.QueryRow(ctx, selectLimitingFailure, appID, appGeneration, destination,
		ms(now.Add(-b.Window)), ms(now.Add(storage.ClockSkew)), b.Limit-1).Scan(&limiting)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("storage/postgres: destination lockout: %w", err)
	}
	return limiting.UTC().Add(b.Window), nil
}

// destinationLockKey returns the key of the advisory lock of an
// (application, destination) budget: a 64-bit FNV-1a hash, the same in every
// otpd version (changing it would let two versions run side by side without
// excluding each other). Two budgets that share a key only take turns.
func destinationLockKey(appID, destination string) int64 {
	h := fnv.New64a()
	h.Write([]byte(appID))
	h.Write([]byte{0})
	h.Write([]byte(destination))
	return int64(h.Sum64())
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
