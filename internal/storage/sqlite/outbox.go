package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/otpd/otpd/internal/storage"
)

// SQL of the development outbox. Messages are ordered by created_ms, then by
// arrival (seq). A listing takes the newest messages that match, up to its
// limit, and returns them oldest first.
const (
	outboxColumns = `message_id, app_id, origination, destination, reference_id, language, body, encoding, segments, created_ms`
	insertOutbox  = `INSERT INTO outbox (` + outboxColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	selectOutbox  = `SELECT ` + outboxColumns + ` FROM (
		SELECT seq, ` + outboxColumns + ` FROM outbox
		ORDER BY created_ms DESC, seq DESC LIMIT ?
	) ORDER BY created_ms, seq`
	selectOutboxTo = `SELECT ` + outboxColumns + ` FROM (
		SELECT seq, ` + outboxColumns + ` FROM outbox WHERE destination = ?
		ORDER BY created_ms DESC, seq DESC LIMIT ?
	) ORDER BY created_ms, seq`
)

// AppendOutbox stores a message delivered to the development outbox.
func (s *Store) AppendOutbox(ctx context.Context, m storage.OutboxMessage) error {
	err := s.w.do(ctx, func(ctx context.Context, tx *stmts) error {
		return appendOutbox(ctx, tx, m)
	})
	if err != nil {
		return fmt.Errorf("storage/sqlite: append to the outbox: %w", err)
	}
	return nil
}

func appendOutbox(ctx context.Context, tx *stmts, m storage.OutboxMessage) error {
	_, err := tx.ExecContext(ctx, insertOutbox, m.MessageID, m.AppID, m.OriginationIdentity, m.DestinationIdentity,
		m.ReferenceID, m.Language, m.Body, m.Encoding, m.Segments, unixMS(m.CreatedAt))
	return err
}

// ListOutbox returns the newest q.Limit messages (all if Limit is zero) to
// q.Destination (any if empty), oldest first.
func (s *Store) ListOutbox(ctx context.Context, q storage.OutboxQuery) ([]storage.OutboxMessage, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = -1 // SQLite's "no limit"
	}
	var (
		rows *sql.Rows
		err  error
	)
	if q.Destination == "" {
		rows, err = s.reads.QueryContext(ctx, selectOutbox, limit)
	} else {
		rows, err = s.reads.QueryContext(ctx, selectOutboxTo, q.Destination, limit)
	}
	if err != nil {
		return nil, fmt.Errorf("storage/sqlite: list the outbox: %w", err)
	}
	defer rows.Close()
	var msgs []storage.OutboxMessage
	for rows.Next() {
		var (
			m         storage.OutboxMessage
			createdMS int64
		)
		if err := rows.Scan(&m.MessageID, &m.AppID, &m.OriginationIdentity, &m.DestinationIdentity,
			&m.ReferenceID, &m.Language, &m.Body, &m.Encoding, &m.Segments, &createdMS); err != nil {
			return nil, fmt.Errorf("storage/sqlite: list the outbox: %w", err)
		}
		m.CreatedAt = fromUnixMS(createdMS)
		msgs = append(msgs, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("storage/sqlite: list the outbox: %w", err)
	}
	return msgs, nil
}
