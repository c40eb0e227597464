package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// keyCheckSetting names the code hashing key's check in the settings table.
const keyCheckSetting = "key_check"

const (
	insertSetting  = `INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`
	replaceSetting = `INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value`
	selectSetting  = `SELECT value FROM settings WHERE name = ?`
)

// KeyCheck returns the key check the store holds, first recording check if
// it holds none or if replace is true. A check already held is read on a
// reader connection, with no write (and no flush) at all.
func (s *Store) KeyCheck(ctx context.Context, check string, replace bool) (held string, recorded bool, err error) {
	if !replace {
		if held, err := s.HeldKeyCheck(ctx); err != nil || held != "" {
			return held, false, err
		}
	}
	err = s.w.do(ctx, func(ctx context.Context, tx *stmts) error {
		query := insertSetting
		if replace {
			query = replaceSetting
		}
		res, err := tx.ExecContext(ctx, query, keyCheckSetting, check)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		recorded = n > 0
		return tx.QueryRowContext(ctx, selectSetting, keyCheckSetting).Scan(&held)
	})
	if err != nil {
		return "", false, fmt.Errorf("storage/sqlite: key check: %w", err)
	}
	return held, recorded, nil
}

// HeldKeyCheck returns the key check the store holds, "" if none, from a
// reader connection.
func (s *Store) HeldKeyCheck(ctx context.Context) (string, error) {
	var held string
	err := s.rdb.QueryRowContext(ctx, selectSetting, keyCheckSetting).Scan(&held)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("storage/sqlite: read the key check: %w", err)
	}
	return held, nil
}
