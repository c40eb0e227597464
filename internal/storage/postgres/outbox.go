package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/otpd/otpd/internal/storage"
)

// SQL of the development outbox. Messages are ordered by created_at, then by
// arrival (seq). A listing takes the newest messages that match, up to its
// limit (NULL: all), and returns them oldest first.
const (
	outboxColumns = `message_id, app_id, origination, destination, reference_id, language, body, encoding, segments, created_at`
	insertOutbox  = `INSERT INTO outbox (` + outboxColumns + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`
	selectOutbox  = `SELECT ` + outboxColumns + ` FROM (
			SELECT seq, ` + outboxColumns + ` FROM outbox
			ORDER BY created_at DESC, seq DESC LIMIT $1
		) newest ORDER BY created_at, seq`
	selectOutboxTo = `SELECT ` + outboxColumns + ` FROM (
			SELECT seq, ` + outboxColumns + ` FROM outbox WHERE destination = $1
			ORDER BY created_at DESC, seq DESC LIMIT $2
		) newest ORDER BY created_at, seq`
)

// AppendOutbox stores a message delivered to the development outbox.
func (s *Store) AppendOutbox(ctx context.Context, m storage.OutboxMessage) error {
	ctx, cancel := s.callContext(ctx)
	defer cancel()
	b := &pgx.Batch{}
	queueAppendOutbox(b, m)
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("storage/postgres: append to the outbox: %w", err)
	}
	return nil
}

// queueAppendOutbox queues the statement that appends m.
func queueAppendOutbox(b *pgx.Batch, m storage.OutboxMessage) {
	b.Queue(insertOutbox, m.MessageID, m.AppID, m.OriginationIdentity, m.DestinationIdentity,
		m.ReferenceID, m.Language, m.Body, m.Encoding, m.Segments, ms(m.CreatedAt))
}

// ListOutbox returns the newest q.Limit messages (all if Limit is zero) to
// q.Destination (any if empty), oldest first.
func (s *Store) ListOutbox(ctx context.Context, q storage.OutboxQuery) ([]storage.OutboxMessage, error) {
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
		rows, err = s.pool.Query(ctx, selectOutbox, limit)
	} else {
		rows, err = s.pool.Query(ctx, selectOutboxTo, q.Destination, limit)
	}
	if err != nil {
		return nil, fmt.Errorf("storage/postgres: list the outbox: %w", err)
	}
	defer rows.Close()
	var msgs []storage.OutboxMessage
	for rows.Next() {
		var m storage.OutboxMessage
		if err := rows.Scan(&m.MessageID, &m.AppID, &m.OriginationIdentity, &m.DestinationIdentity,
			&m.ReferenceID, &m.Language, &m.Body, &m.Encoding, &m.Segments, &m.CreatedAt); err != nil {
			return nil, fmt.Errorf("storage/postgres: list the outbox: %w", err)
		}
		m.CreatedAt = m.CreatedAt.UTC()
		msgs = append(msgs, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("storage/postgres: list the outbox: %w", err)
	}
	return msgs, nil
}
