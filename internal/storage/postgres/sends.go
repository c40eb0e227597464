package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/otpd/otpd/internal/storage"
)

// SQL of the send records. A record is pending while its result is NULL; it
// is live while the time is before its until_at (the end of the lease, or
// the expiry of the completed record).
const (
	// claimSend stores a pending record unless a live one exists: the
	// conflict's row lock makes concurrent claims take turns, and the
	// WHERE lets only a claim that finds the record ended take it over.
	claimSend = `INSERT INTO sends AS s (app_id, key, until_at, result) VALUES ($1, $2, $4, NULL)
		ON CONFLICT (app_id, key) DO UPDATE SET until_at = EXCLUDED.until_at, result = NULL
		WHERE s.until_at <= $3`
	// selectLiveSend reads the live record that kept claimSend from
	// claiming.
	selectLiveSend = `SELECT result IS NOT NULL, result FROM sends
		WHERE app_id = $1 AND key = $2 AND until_at > $3`
	putCompleted = `INSERT INTO sends (app_id, key, until_at, result) VALUES ($1, $2, $3, $4)
		ON CONFLICT (app_id, key) DO UPDATE SET until_at = EXCLUDED.until_at, result = EXCLUDED.result`
	deletePending = `DELETE FROM sends WHERE app_id = $1 AND key = $2 AND result IS NULL`
)

// claimAttempts bounds how often ClaimSend tries again when the live record
// that refused its claim is gone before it could be read (released or
// purged meanwhile): each try means another call changed the record.
const claimAttempts = 5

// ClaimSend claims the send (c.AppID, c.Key). The claim is one statement; a
// refused claim then reads the live record that refused it, and starts over
// in the rare case that the record went in between.
func (s *Store) ClaimSend(ctx context.Context, c storage.SendClaim) (result []byte, claimed bool, err error) {
	ctx, cancel := s.callContext(ctx)
	defer cancel()
	now := ms(c.Now)
	for range claimAttempts {
		tag, err := s.pool.Exec(ctx, claimSend, c.AppID, c.Key, now, ms(c.LeaseUntil))
		if err != nil {
			return nil, false, fmt.Errorf("storage/postgres: claim send: %w", err)
		}
		if tag.RowsAffected() == 1 {
			return nil, true, nil
		}
		var completed bool
		err = s.pool.QueryRow(ctx, selectLiveSend, c.AppID, c.Key, now).Scan(&completed, &result)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			continue
		case err != nil:
			return nil, false, fmt.Errorf("storage/postgres: claim send: %w", err)
		case !completed:
			return nil, false, nil
		case result == nil:
			return []byte{}, false, nil // an empty result; nil would mean "pending"
		default:
			return result, false, nil
		}
	}
	return nil, false, fmt.Errorf("storage/postgres: claim send: the record changed %d times while being claimed", claimAttempts)
}

// queueCompleteSend queues the statement that stores the completed record
// for (done.AppID, done.Key), kept until done.ExpiresAt. It stores it even
// if the pending record is gone (released, purged after its lease ended, or
// taken over): the carrier answered, and a retry should get that answer.
func queueCompleteSend(b *pgx.Batch, done storage.SendCompletion) {
	result := done.Result
	if result == nil {
		result = []byte{} // NULL would read as pending
	}
	b.Queue(putCompleted, done.AppID, done.Key, ms(done.ExpiresAt), result)
}

// ReleaseSend deletes the pending record for (appID, key), if there is one. A
// completed record stays.
func (s *Store) ReleaseSend(ctx context.Context, appID, key string) error {
	ctx, cancel := s.callContext(ctx)
	defer cancel()
	if _, err := s.pool.Exec(ctx, deletePending, appID, key); err != nil {
		return fmt.Errorf("storage/postgres: release send: %w", err)
	}
	return nil
}
