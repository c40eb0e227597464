package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/otpd/otpd/internal/storage"
)

// SQL of the message records. Records are ordered by created_ms, then by
// message_id. A listing takes the newest records that match, up to its
// limit, and returns them oldest first. An empty carrier message ID is
// stored as NULL, so that records without one never collide in
// messages_by_carrier_id, and is never found by a report.
const (
	messageColumns = `message_id, app_id, carrier, carrier_message_id, origination, destination,
		reference_id, country, status, status_code, created_ms, updated_ms`
	selectMessageColumns = `message_id, app_id, carrier, COALESCE(carrier_message_id, ''), origination, destination,
		reference_id, country, status, status_code, created_ms, updated_ms`
	// releaseCarrierMessageID takes the carrier message ID away from any
	// other record that holds it: the record being put takes it over.
	releaseCarrierMessageID = `UPDATE messages SET carrier_message_id = NULL
		WHERE carrier = ? AND carrier_message_id = ? AND message_id <> ?`
	putMessage = `INSERT INTO messages (` + messageColumns + `)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (message_id) DO UPDATE SET
			app_id = excluded.app_id, carrier = excluded.carrier, carrier_message_id = excluded.carrier_message_id,
			origination = excluded.origination, destination = excluded.destination,
			reference_id = excluded.reference_id, country = excluded.country,
			status = excluded.status, status_code = excluded.status_code,
			created_ms = excluded.created_ms, updated_ms = excluded.updated_ms`
	// finalStatuses are the statuses that only another final status
	// replaces.
	finalStatuses = `'` + storage.MessageDelivered + `', '` + storage.MessageUndelivered + `', '` + storage.MessageFailed + `'`
	// updateMessageStatus applies a report (?3 status, ?4 code, ?5 time)
	// to the record of (?1 carrier, ?2 carrier message ID), unless the
	// record's status is final and the report's is not.
	updateMessageStatus = `UPDATE messages SET status = ?3, status_code = ?4, updated_ms = ?5
		WHERE carrier = ?1 AND carrier_message_id = ?2
		AND NOT (status IN (` + finalStatuses + `) AND ?3 NOT IN (` + finalStatuses + `))`
	selectMessageByCarrierID = `SELECT ` + selectMessageColumns + ` FROM messages
		WHERE carrier = ? AND carrier_message_id = ?`
	selectMessages = `SELECT ` + selectMessageColumns + ` FROM (
		SELECT * FROM messages
		ORDER BY created_ms DESC, message_id DESC LIMIT ?
	) ORDER BY created_ms, message_id`
	selectMessagesTo = `SELECT ` + selectMessageColumns + ` FROM (
		SELECT * FROM messages WHERE destination = ?
		ORDER BY created_ms DESC, message_id DESC LIMIT ?
	) ORDER BY created_ms, message_id`
)

// putMessageRecord stores the record, replacing the one with the same
// MessageID. If another record holds the same (Carrier, CarrierMessageID),
// the new record takes it over: the other keeps everything but its
// CarrierMessageID, which becomes empty, and reports reach the new record.
func putMessageRecord(ctx context.Context, tx *stmts, m storage.MessageRecord) error {
	carrierMessageID := nullIfEmpty(m.CarrierMessageID)
	if carrierMessageID != nil {
		if _, err := tx.ExecContext(ctx, releaseCarrierMessageID, m.Carrier, carrierMessageID, m.MessageID); err != nil {
			return err
		}
	}
	_, err := tx.ExecContext(ctx, putMessage, m.MessageID, m.AppID, m.Carrier, carrierMessageID,
		m.OriginationIdentity, m.DestinationIdentity, m.ReferenceID, m.Country, m.Status, m.StatusCode,
		unixMS(m.CreatedAt), unixMS(m.UpdatedAt))
	return err
}

// UpdateMessageStatus applies the report and reads the record back, in one
// write: the writer's transaction makes it atomic for every Store on the
// database file.
func (s *Store) UpdateMessageStatus(ctx context.Context, carrier, carrierMessageID string, u storage.MessageStatusUpdate) (storage.MessageRecord, error) {
	if carrierMessageID == "" {
		return storage.MessageRecord{}, fmt.Errorf("storage/sqlite: update the status of message %q at %s: %w", carrierMessageID, carrier, storage.ErrNotFound)
	}
	var m storage.MessageRecord
	err := s.w.do(ctx, func(ctx context.Context, tx *stmts) error {
		if _, err := tx.ExecContext(ctx, updateMessageStatus, carrier, carrierMessageID, u.Status, u.StatusCode, unixMS(u.At)); err != nil {
			return err
		}
		var err error
		m, err = scanMessage(tx.QueryRowContext(ctx, selectMessageByCarrierID, carrier, carrierMessageID))
		return err
	})
	if err != nil {
		return storage.MessageRecord{}, fmt.Errorf("storage/sqlite: update the status of message %q at %s: %w", carrierMessageID, carrier, err)
	}
	return m, nil
}

// ListMessages returns the newest q.Limit records (all if Limit is zero) to
// q.Destination (any if empty), oldest first.
func (s *Store) ListMessages(ctx context.Context, q storage.MessageQuery) ([]storage.MessageRecord, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = -1 // SQLite's "no limit"
	}
	var (
		rows *sql.Rows
		err  error
	)
	if q.Destination == "" {
		rows, err = s.reads.QueryContext(ctx, selectMessages, limit)
	} else {
		rows, err = s.reads.QueryContext(ctx, selectMessagesTo, q.Destination, limit)
	}
	if err != nil {
		return nil, fmt.Errorf("storage/sqlite: list messages: %w", err)
	}
	defer rows.Close()
	var recs []storage.MessageRecord
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return nil, fmt.Errorf("storage/sqlite: list messages: %w", err)
		}
		recs = append(recs, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("storage/sqlite: list messages: %w", err)
	}
	return recs, nil
}

// scanMessage reads a record selected with selectMessageColumns. It returns
// storage.ErrNotFound if there is none.
func scanMessage(row interface{ Scan(...any) error }) (storage.MessageRecord, error) {
	var (
		m                  storage.MessageRecord
		created, updatedMS int64
	)
	err := row.Scan(&m.MessageID, &m.AppID, &m.Carrier, &m.CarrierMessageID, &m.OriginationIdentity, &m.DestinationIdentity,
		&m.ReferenceID, &m.Country, &m.Status, &m.StatusCode, &created, &updatedMS)
	if errors.Is(err, sql.ErrNoRows) {
		return storage.MessageRecord{}, storage.ErrNotFound
	}
	if err != nil {
		return storage.MessageRecord{}, err
	}
	m.CreatedAt = fromUnixMS(created)
	m.UpdatedAt = fromUnixMS(updatedMS)
	return m, nil
}

// nullIfEmpty returns nil (NULL) for "", s otherwise.
func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}
