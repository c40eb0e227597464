package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/otpd/otpd/internal/storage"
)

// SQL of the message records. Records are ordered by created_at, then by
// message_id. A listing takes the newest records that match, up to its limit
// (NULL: all), and returns them oldest first. An empty carrier message ID is
// stored as NULL, so that records without one never collide in
// messages_by_carrier_id, and is never found by a report.
const (
	messageColumns = `message_id, app_id, carrier, carrier_message_id, origination, destination,
		reference_id, country, status, status_code, created_at, updated_at`
	selectMessageColumns = `message_id, app_id, carrier, COALESCE(carrier_message_id, ''), origination, destination,
		reference_id, country, status, status_code, created_at, updated_at`
	// lockCarrierMessageID takes the advisory lock of a (carrier, carrier
	// message ID) until the transaction ends: puts that name the same
	// carrier message ID take turns, each releasing it from the record of
	// the one before (which read committed lets the next statement see).
	// The two-key form never collides with VerifyCode's one-key locks.
	lockCarrierMessageID = `SELECT pg_advisory_xact_lock($1, $2)`
	// releaseCarrierMessageID takes the carrier message ID away from any
	// other record that holds it: the record being put takes it over.
	releaseCarrierMessageID = `UPDATE messages SET carrier_message_id = NULL
		WHERE carrier = $1 AND carrier_message_id = $2 AND message_id <> $3`
	putMessage = `INSERT INTO messages (` + messageColumns + `)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
		ON CONFLICT (message_id) DO UPDATE SET
			app_id = EXCLUDED.app_id, carrier = EXCLUDED.carrier, carrier_message_id = EXCLUDED.carrier_message_id,
			origination = EXCLUDED.origination, destination = EXCLUDED.destination,
			reference_id = EXCLUDED.reference_id, country = EXCLUDED.country,
			status = EXCLUDED.status, status_code = EXCLUDED.status_code,
			created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at`
	// finalStatuses are the statuses that only another final status
	// replaces.
	finalStatuses = `'` + storage.MessageDelivered + `', '` + storage.MessageUndelivered + `', '` + storage.MessageFailed + `'`
	// keepStatus is true when the report ($3) must not replace the
	// record's status: the record's is final and the report's is not.
	keepStatus = `(status IN (` + finalStatuses + `) AND $3::text NOT IN (` + finalStatuses + `))`
	// updateMessageStatus applies a report ($3 status, $4 code, $5 time)
	// to the record of ($1 carrier, $2 carrier message ID) and returns the
	// record as it now is, in one statement. The rule is decided on the
	// newest version of the row (the UPDATE locks it and, in read
	// committed, re-reads it after a concurrent update), so concurrent
	// reports take turns and a final status is never lost. A kept status
	// is written back as it was.
	updateMessageStatus = `UPDATE messages SET
			status      = CASE WHEN ` + keepStatus + ` THEN status ELSE $3 END,
			status_code = CASE WHEN ` + keepStatus + ` THEN status_code ELSE $4 END,
			updated_at  = CASE WHEN ` + keepStatus + ` THEN updated_at ELSE $5 END
		WHERE carrier = $1 AND carrier_message_id = $2
		RETURNING ` + selectMessageColumns
	selectMessages = `SELECT ` + selectMessageColumns + ` FROM (
			SELECT * FROM messages
			ORDER BY created_at DESC, message_id DESC LIMIT $1
		) newest ORDER BY created_at, message_id`
	selectMessagesTo = `SELECT ` + selectMessageColumns + ` FROM (
			SELECT * FROM messages WHERE destination = $1
			ORDER BY created_at DESC, message_id DESC LIMIT $2
		) newest ORDER BY created_at, message_id`
)

// messageLockClass is the first key of the advisory locks of carrier
// message IDs ("otpm" in ASCII); the second is carrierLockKey.
const messageLockClass = 0x6f74706d

// queuePutMessage queues the statements that store the record, replacing
// the one with the same MessageID. If another record holds the same
// (Carrier, CarrierMessageID), the new record takes it over: the other
// keeps everything but its CarrierMessageID, which becomes empty, and
// reports reach the new record. Puts of one carrier message ID take turns
// under an advisory lock, so that each sees, and releases, the record of
// the one before.
func queuePutMessage(b *pgx.Batch, m storage.MessageRecord) {
	var carrierMessageID *string // NULL if empty
	if m.CarrierMessageID != "" {
		carrierMessageID = &m.CarrierMessageID
		b.Queue(lockCarrierMessageID, messageLockClass, carrierLockKey(m.Carrier, m.CarrierMessageID))
		b.Queue(releaseCarrierMessageID, m.Carrier, carrierMessageID, m.MessageID)
	}
	b.Queue(putMessage, m.MessageID, m.AppID, m.Carrier, carrierMessageID, m.OriginationIdentity, m.DestinationIdentity,
		m.ReferenceID, m.Country, m.Status, m.StatusCode, ms(m.CreatedAt), ms(m.UpdatedAt))
}

// carrierLockKey returns the second key of the advisory lock of (carrier,
// carrierMessageID): a 32-bit FNV-1a hash, the same in every otpd version.
// Two carrier message IDs that share a key only take turns.
func carrierLockKey(carrier, carrierMessageID string) int32 {
	h := fnv.New32a()
	h.Write([]byte(carrier))
	h.Write([]byte{0})
	h.Write([]byte(carrierMessageID))
	return int32(h.Sum32())
}

// isRetryablePut reports whether err is a unique violation of the carrier
// message ID or a deadlock: the conflicts that puts of records trading
// carrier message IDs run into on each other's rows, which another attempt
// resolves.
func isRetryablePut(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	return pgErr.Code == "23505" && pgErr.ConstraintName == "messages_by_carrier_id" || pgErr.Code == "40P01"
}

// UpdateMessageStatus applies the report in one statement (see
// updateMessageStatus) and returns the record as it now is.
func (s *Store) UpdateMessageStatus(ctx context.Context, carrier, carrierMessageID string, u storage.MessageStatusUpdate) (storage.MessageRecord, error) {
	if carrierMessageID == "" {
		return storage.MessageRecord{}, fmt.Errorf("storage/postgres: update the status of message %q at %s: %w", carrierMessageID, carrier, storage.ErrNotFound)
	}
	ctx, cancel := s.callContext(ctx)
	defer cancel()
	m, err := scanMessage(s.pool.QueryRow(ctx, updateMessageStatus, carrier, carrierMessageID, u.Status, u.StatusCode, ms(u.At)))
	if err != nil {
		return storage.MessageRecord{}, fmt.Errorf("storage/postgres: update the status of message %q at %s: %w", carrierMessageID, carrier, err)
	}
	return m, nil
}

// ListMessages returns the newest q.Limit records (all if Limit is zero) to
// q.Destination (any if empty), oldest first.
func (s *Store) ListMessages(ctx context.Context, q storage.MessageQuery) ([]storage.MessageRecord, error) {
	ctx, cancel := s.callContext(ctx)
	defer cancel()
	var limit *int // NULL: LIMIT ALL
	if q.Limit > 0 {
		limit = &q.Limit
	}
	var (
		rows pgx.Rows
		err  error
	)
	if q.Destination == "" {
		rows, err = s.pool.Query(ctx, selectMessages, limit)
	} else {
		rows, err = s.pool.Query(ctx, selectMessagesTo, q.Destination, limit)
	}
	if err != nil {
		return nil, fmt.Errorf("storage/postgres: list messages: %w", err)
	}
	defer rows.Close()
	var recs []storage.MessageRecord
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return nil, fmt.Errorf("storage/postgres: list messages: %w", err)
		}
		recs = append(recs, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("storage/postgres: list messages: %w", err)
	}
	return recs, nil
}

// scanMessage reads a record selected with selectMessageColumns. It returns
// storage.ErrNotFound if there is none.
func scanMessage(row pgx.Row) (storage.MessageRecord, error) {
	var m storage.MessageRecord
	err := row.Scan(&m.MessageID, &m.AppID, &m.Carrier, &m.CarrierMessageID, &m.OriginationIdentity, &m.DestinationIdentity,
		&m.ReferenceID, &m.Country, &m.Status, &m.StatusCode, &m.CreatedAt, &m.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return storage.MessageRecord{}, storage.ErrNotFound
	}
	if err != nil {
		return storage.MessageRecord{}, err
	}
	m.CreatedAt = m.CreatedAt.UTC()
	m.UpdatedAt = m.UpdatedAt.UTC()
	return m, nil
}
