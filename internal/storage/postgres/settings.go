package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// keyCheckSetting names the code hashing key's check in the settings table.
const keyCheckSetting = "key_check"

const (
	insertSetting  = `INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`
	replaceSetting = `INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value`
	selectSetting  = `SELECT value FROM settings WHERE name = $1`
)

// KeyCheck returns the key check the store holds, first recording check if
// it holds none or if replace is true. It reads first, so that a role that
// may only read the settings starts once a check is there. The read after an
// insert is a statement of its own: an insert that met another server's,
// still in flight, waits for it to commit, and only a later statement sees
// that row.
func (s *Store) KeyCheck(ctx context.Context, check string, replace bool) (held string, recorded bool, err error) {
	ctx, cancel := s.callContext(ctx)
	defer cancel()
	if replace {
		if _, err := s.pool.Exec(ctx, replaceSetting, keyCheckSetting, check); err != nil {
			return "", false, fmt.Errorf("storage/postgres: record the key check: %w", err)
		}
		return check, true, nil
	}
	if held, err := s.HeldKeyCheck(ctx); err != nil || held != "" {
		return held, false, err
	}
	tag, err := s.pool.Exec(ctx, insertSetting, keyCheckSetting, check)
	if err != nil {
		return "", false, fmt.Errorf("storage/postgres: record the key check: %w", err)
	}
	held, err = s.HeldKeyCheck(ctx)
	return held, err == nil && tag.RowsAffected() > 0, err
}

// HeldKeyCheck returns the key check the store holds, "" if none.
func (s *Store) HeldKeyCheck(ctx context.Context) (string, error) {
	ctx, cancel := s.callContext(ctx)
	defer cancel()
	var held string
	err := s.pool.QueryRow(ctx, selectSetting, keyCheckSetting).Scan(&held)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("storage/postgres: read the key check: %w", err)
	}
	return held, nil
}

// DurabilityRisk reads fsync and synchronous_commit, as the store's
// sessions have them (the URL may set the latter): fsync off loses writes
// in any crash of the machine, synchronous_commit off acknowledges commits
// before they are flushed.
func (s *Store) DurabilityRisk(ctx context.Context) (string, error) {
	ctx, cancel := s.callContext(ctx)
	defer cancel()
	var fsync, syncCommit string
	if err := s.pool.QueryRow(ctx, `SELECT current_setting('fsync'), current_setting('synchronous_commit')`).Scan(&fsync, &syncCommit); err != nil {
		return "", fmt.Errorf("storage/postgres: read fsync and synchronous_commit: %w", err)
	}
	var risks []string
	if fsync == "off" {
		risks = append(risks, "PostgreSQL never forces its writes to disk (fsync off): a crash of the machine can lose acknowledged writes, or corrupt the database")
	}
	if syncCommit == "off" {
		risks = append(risks, "PostgreSQL acknowledges commits before flushing them (synchronous_commit off): a crash of the server can lose the last moments of writes (up to 3 × wal_writer_delay), so used codes may verify again and failed attempts be forgotten")
	}
	return strings.Join(risks, "; "), nil
}
