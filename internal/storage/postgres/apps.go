package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/otpd/otpd/internal/storage"
)

// SQL of the applications.
const (
	appColumns = `id, name, tags, created_at, generation,
		sms_enabled, sms_sender_id, sms_short_code, sms_version, sms_created_at, sms_updated_at`
	insertApp = `INSERT INTO apps (` + appColumns + `)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
		ON CONFLICT (id) DO NOTHING`
	selectApp  = `SELECT ` + appColumns + ` FROM apps WHERE id = $1`
	selectApps = `SELECT ` + appColumns + ` FROM apps WHERE id > $1 ORDER BY id LIMIT $2`
	// updateSMS changes the fields given (NULL keeps a field) and bumps the
	// version, in one statement: the row lock of the UPDATE makes
	// concurrent updates take turns, each seeing the one before.
	updateSMS = `UPDATE apps SET
			sms_enabled    = COALESCE($2, sms_enabled),
			sms_sender_id  = COALESCE($3, sms_sender_id),
			sms_short_code = COALESCE($4, sms_short_code),
			sms_version    = sms_version + 1,
			sms_updated_at = $5
		WHERE id = $1
		RETURNING ` + appColumns
	// deleteApp deletes the application and, by ON DELETE CASCADE, its
	// codes, waiting for verifications that hold a code's row lock.
	deleteApp         = `DELETE FROM apps WHERE id = $1 RETURNING num, ` + appColumns
	deleteAppFailures = `DELETE FROM failures WHERE app_num = $1`
	deleteAppSends    = `DELETE FROM sends WHERE app_id = $1`
)

// CreateApp stores a new application, or returns storage.ErrAlreadyExists.
func (s *Store) CreateApp(ctx context.Context, app storage.App) error {
	ctx, cancel := s.callContext(ctx)
	defer cancel()
	tags := app.Tags
	if tags == nil {
		tags = map[string]string{}
	}
	tagsJSON, err := json.Marshal(tags)
	if err != nil {
		return fmt.Errorf("storage/postgres: create app %s: encode tags: %w", app.ID, err)
	}
	tag, err := s.pool.Exec(ctx, insertApp, app.ID, app.Name, string(tagsJSON), ms(app.CreatedAt), app.Generation,
		app.SMS.Enabled, app.SMS.SenderID, app.SMS.ShortCode, app.SMS.Version, ms(app.SMS.CreatedAt), ms(app.SMS.UpdatedAt))
	if err != nil {
		return fmt.Errorf("storage/postgres: create app %s: %w", app.ID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("storage/postgres: create app %s: %w", app.ID, storage.ErrAlreadyExists)
	}
	return nil
}

// GetApp returns the application, or storage.ErrNotFound.
func (s *Store) GetApp(ctx context.Context, id string) (storage.App, error) {
	ctx, cancel := s.callContext(ctx)
	defer cancel()
	app, err := scanApp(s.pool.QueryRow(ctx, selectApp, id))
	if err != nil {
		return storage.App{}, fmt.Errorf("storage/postgres: get app %s: %w", id, err)
	}
	return app, nil
}

// ListApps returns up to limit applications whose IDs sort after the given
// one, in ascending ID order (bytewise: IDs are in the "C" collation). A
// limit of zero or less means no limit.
func (s *Store) ListApps(ctx context.Context, after string, limit int) ([]storage.App, error) {
	ctx, cancel := s.callContext(ctx)
	defer cancel()
	var lim *int // NULL: LIMIT ALL
	if limit > 0 {
		lim = &limit
	}
	rows, err := s.pool.Query(ctx, selectApps, after, lim)
	if err != nil {
		return nil, fmt.Errorf("storage/postgres: list apps: %w", err)
	}
	defer rows.Close()
	var apps []storage.App
	for rows.Next() {
		app, err := scanApp(rows)
		if err != nil {
			return nil, fmt.Errorf("storage/postgres: list apps: %w", err)
		}
		apps = append(apps, app)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("storage/postgres: list apps: %w", err)
	}
	return apps, nil
}

// DeleteApp removes the application with its codes, failures and send
// records, in one transaction, and returns it as it was. Its outbox messages
// stay.
func (s *Store) DeleteApp(ctx context.Context, id string) (storage.App, error) {
	ctx, cancel := s.callContext(ctx)
	defer cancel()
	var app storage.App
	err := pgx.BeginTxFunc(ctx, s.pool, readCommitted, func(tx pgx.Tx) error {
		var (
			num int64
			err error
		)
		if app, err = scanApp(tx.QueryRow(ctx, deleteApp, id), &num); err != nil {
			return err
		}
		// Read committed: this statement runs after the cascade waited
		// for verifications holding code rows, and so sees the failures
		// they recorded.
		if _, err := tx.Exec(ctx, deleteAppFailures, num); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, deleteAppSends, id)
		return err
	})
	if err != nil {
		return storage.App{}, fmt.Errorf("storage/postgres: delete app %s: %w", id, err)
	}
	return app, nil
}

// UpdateSMSChannel applies u to the application's SMS channel, in one
// statement, and returns the updated application.
func (s *Store) UpdateSMSChannel(ctx context.Context, appID string, u storage.SMSChannelUpdate, now time.Time) (storage.App, error) {
	ctx, cancel := s.callContext(ctx)
	defer cancel()
	app, err := scanApp(s.pool.QueryRow(ctx, updateSMS, appID, u.Enabled, u.SenderID, u.ShortCode, ms(now)))
	if err != nil {
		return storage.App{}, fmt.Errorf("storage/postgres: update the SMS channel of app %s: %w", appID, err)
	}
	return app, nil
}

// scanApp reads an application selected with appColumns, after the
// destinations in first, if any. It returns storage.ErrNotFound if there is
// none.
func scanApp(row pgx.Row, first ...any) (storage.App, error) {
	var (
		app  storage.App
		tags []byte
	)
	dest := append(first, &app.ID, &app.Name, &tags, &app.CreatedAt, &app.Generation,
		&app.SMS.Enabled, &app.SMS.SenderID, &app.SMS.ShortCode, &app.SMS.Version, &app.SMS.CreatedAt, &app.SMS.UpdatedAt)
	err := row.Scan(dest...)
	if errors.Is(err, pgx.ErrNoRows) {
		return storage.App{}, storage.ErrNotFound
	}
	if err != nil {
		return storage.App{}, err
	}
	// Stored tags are always a JSON object, so Tags comes back non-nil.
	if err := json.Unmarshal(tags, &app.Tags); err != nil {
		return storage.App{}, fmt.Errorf("decode the tags of app %s: %w", app.ID, err)
	}
	if app.Tags == nil {
		app.Tags = map[string]string{}
	}
	app.CreatedAt = app.CreatedAt.UTC()
	app.SMS.CreatedAt = app.SMS.CreatedAt.UTC()
	app.SMS.UpdatedAt = app.SMS.UpdatedAt.UTC()
	return app, nil
}
