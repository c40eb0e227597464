package postgres

import (
	"context"
	"fmt"
)

// keyCheckSetting names the code hashing key's check in the settings table.
const keyCheckSetting = "key_check"

const (
	insertSetting  = `INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`
	replaceSetting = `INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value`
	selectSetting  = `SELECT value FROM settings WHERE name = $1`
)

// KeyCheck returns the key check the store holds, first recording check if
// it holds none or if replace is true. The read is a statement of its own,
// after the insert: an insert that met another server's, still in flight,
// waits for it to commit, and only a later statement sees that row.
func (s *Store) KeyCheck(ctx context.Context, check string, replace bool) (string, error) {
	ctx, cancel := s.callContext(ctx)
	defer cancel()
	query := insertSetting
	if replace {
		query = replaceSetting
	}
	if _, err := s.pool.Exec(ctx, query, keyCheckSetting, check); err != nil {
		return "", fmt.Errorf("storage/postgres: key check: %w", err)
	}
	var held string
	if err := s.pool.QueryRow(ctx, selectSetting, keyCheckSetting).Scan(&held); err != nil {
		return "", fmt.Errorf("storage/postgres: key check: %w", err)
	}
	return held, nil
}

// DurabilityRisk reads synchronous_commit, as the store's sessions have it
// (the URL may set it): off acknowledges commits before they are flushed.
func (s *Store) DurabilityRisk(ctx context.Context) (string, error) {
	ctx, cancel := s.callContext(ctx)
	defer cancel()
	var mode string
	if err := s.pool.QueryRow(ctx, `SHOW synchronous_commit`).Scan(&mode); err != nil {
		return "", fmt.Errorf("storage/postgres: read synchronous_commit: %w", err)
	}
	if mode == "off" {
		return "PostgreSQL acknowledges commits before flushing them (synchronous_commit off): a crash of the server can lose the last moments of writes (up to 3 × wal_writer_delay), so used codes may verify again and failed attempts be forgotten", nil
	}
	return "", nil
}
