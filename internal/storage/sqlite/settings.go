package sqlite

import (
	"context"
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
// it holds none or if replace is true.
func (s *Store) KeyCheck(ctx context.Context, check string, replace bool) (string, error) {
	var held string
	err := s.w.do(ctx, func(ctx context.Context, tx *stmts) error {
		query := insertSetting
		if replace {
			query = replaceSetting
		}
		if _, err := tx.ExecContext(ctx, query, keyCheckSetting, check); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, selectSetting, keyCheckSetting).Scan(&held)
	})
	if err != nil {
		return "", fmt.Errorf("storage/sqlite: key check: %w", err)
	}
	return held, nil
}
