package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/otpd/otpd/internal/storage"
)

// SQL of the applications.
const (
	appColumns = `id, name, tags, created_ms, generation,
		sms_enabled, sms_sender_id, sms_short_code, sms_version, sms_created_ms, sms_updated_ms`
	insertApp = `INSERT INTO apps (` + appColumns + `)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO NOTHING`
	selectApp  = `SELECT ` + appColumns + ` FROM apps WHERE id = ?`
	selectApps = `SELECT ` + appColumns + ` FROM apps WHERE id > ? ORDER BY id LIMIT ?`
	updateSMS  = `UPDATE apps SET sms_enabled = ?, sms_sender_id = ?, sms_short_code = ?,
		sms_version = ?, sms_updated_ms = ? WHERE id = ?`
	deleteApp         = `DELETE FROM apps WHERE id = ?` // and its codes, by ON DELETE CASCADE
	deleteAppFailures = `DELETE FROM failures WHERE app_id = ?`
	deleteAppSends    = `DELETE FROM sends WHERE app_id = ?`
)

// CreateApp stores a new application, or returns storage.ErrAlreadyExists.
func (s *Store) CreateApp(ctx context.Context, app storage.App) error {
	tags := app.Tags
	if tags == nil {
		tags = map[string]string{}
	}
	tagsJSON, err := json.Marshal(tags)
	if err != nil {
		return fmt.Errorf("storage/sqlite: create app %s: encode tags: %w", app.ID, err)
	}
	err = s.w.do(ctx, func(ctx context.Context, tx *stmts) error {
		res, err := tx.ExecContext(ctx, insertApp, app.ID, app.Name, string(tagsJSON), unixMS(app.CreatedAt), app.Generation,
			app.SMS.Enabled, app.SMS.SenderID, app.SMS.ShortCode, app.SMS.Version, unixMS(app.SMS.CreatedAt), unixMS(app.SMS.UpdatedAt))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			return storage.ErrAlreadyExists
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("storage/sqlite: create app %s: %w", app.ID, err)
	}
	return nil
}

// GetApp returns the application, or storage.ErrNotFound.
func (s *Store) GetApp(ctx context.Context, id string) (storage.App, error) {
	app, err := scanApp(s.reads.QueryRowContext(ctx, selectApp, id))
	if err != nil {
		return storage.App{}, fmt.Errorf("storage/sqlite: get app %s: %w", id, err)
	}
	return app, nil
}

// ListApps returns up to limit applications whose IDs sort after the given
// one, in ascending ID order. A limit of zero or less means no limit.
func (s *Store) ListApps(ctx context.Context, after string, limit int) ([]storage.App, error) {
	if limit <= 0 {
		limit = -1 // SQLite's "no limit"
	}
	rows, err := s.reads.QueryContext(ctx, selectApps, after, limit)
	if err != nil {
		return nil, fmt.Errorf("storage/sqlite: list apps: %w", err)
	}
	defer rows.Close()
	var apps []storage.App
	for rows.Next() {
		app, err := scanApp(rows)
		if err != nil {
			return nil, fmt.Errorf("storage/sqlite: list apps: %w", err)
		}
		apps = append(apps, app)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("storage/sqlite: list apps: %w", err)
	}
	return apps, nil
}

// DeleteApp removes the application with its codes, failure budgets and send
// records, in one transaction, and returns it as it was. Its outbox messages
// stay.
func (s *Store) DeleteApp(ctx context.Context, id string) (storage.App, error) {
	var app storage.App
	err := s.w.do(ctx, func(ctx context.Context, tx *stmts) error {
		var err error
		if app, err = scanApp(tx.QueryRowContext(ctx, selectApp, id)); err != nil {
			return err
		}
		for _, q := range []string{deleteApp, deleteAppFailures, deleteAppSends} {
			if _, err := tx.ExecContext(ctx, q, id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return storage.App{}, fmt.Errorf("storage/sqlite: delete app %s: %w", id, err)
	}
	return app, nil
}

// UpdateSMSChannel applies u to the application's SMS channel, in one
// transaction, and returns the updated application.
func (s *Store) UpdateSMSChannel(ctx context.Context, appID string, u storage.SMSChannelUpdate, now time.Time) (storage.App, error) {
	var app storage.App
	err := s.w.do(ctx, func(ctx context.Context, tx *stmts) error {
		var err error
		if app, err = scanApp(tx.QueryRowContext(ctx, selectApp, appID)); err != nil {
			return err
		}
		sms := &app.SMS
		if u.Enabled != nil {
			sms.Enabled = *u.Enabled
		}
		if u.SenderID != nil {
			sms.SenderID = *u.SenderID
		}
		if u.ShortCode != nil {
			sms.ShortCode = *u.ShortCode
		}
		sms.Version++
		sms.UpdatedAt = fromUnixMS(unixMS(now))
		_, err = tx.ExecContext(ctx, updateSMS, sms.Enabled, sms.SenderID, sms.ShortCode, sms.Version, unixMS(sms.UpdatedAt), appID)
		return err
	})
	if err != nil {
		return storage.App{}, fmt.Errorf("storage/sqlite: update the SMS channel of app %s: %w", appID, err)
	}
	return app, nil
}

// scanApp reads an application selected with appColumns. It returns
// storage.ErrNotFound if there is none.
func scanApp(row interface{ Scan(...any) error }) (storage.App, error) {
	var (
		app                         storage.App
		tags                        string
		created, smsCreated, smsUpd int64
	)
	err := row.Scan(&app.ID, &app.Name, &tags, &created, &app.Generation,
		&app.SMS.Enabled, &app.SMS.SenderID, &app.SMS.ShortCode, &app.SMS.Version, &smsCreated, &smsUpd)
	if errors.Is(err, sql.ErrNoRows) {
		return storage.App{}, storage.ErrNotFound
	}
	if err != nil {
		return storage.App{}, err
	}
	// Stored tags are always a JSON object, so Tags comes back non-nil.
	if err := json.Unmarshal([]byte(tags), &app.Tags); err != nil {
		return storage.App{}, fmt.Errorf("decode the tags of app %s: %w", app.ID, err)
	}
	app.CreatedAt = fromUnixMS(created)
	app.SMS.CreatedAt = fromUnixMS(smsCreated)
	app.SMS.UpdatedAt = fromUnixMS(smsUpd)
	return app, nil
}
