package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// migrations are the schema's versions: migrations[i] takes the schema from
// version i to version i+1. Append only; never edit a migration that shipped.
//
// Times are integer Unix milliseconds. Codes, the bulk of the data, are kept
// compact: a live code is one WITHOUT ROWID row keyed by (application number,
// destination, ReferenceId) and one entry in the expiry index that Purge
// walks. The application number stands for both the application's ID and its
// generation: AUTOINCREMENT never hands out a number twice, so an application
// re-created with the same ID gets a new number, and its predecessor's codes
// can never match it.
var migrations = []string{
	// 1: the initial schema.
	`CREATE TABLE apps (
		num            INTEGER PRIMARY KEY AUTOINCREMENT,
		id             TEXT NOT NULL UNIQUE,
		name           TEXT NOT NULL,
		tags           TEXT NOT NULL, -- JSON object
		created_ms     INTEGER NOT NULL,
		generation     TEXT NOT NULL,
		sms_enabled    INTEGER NOT NULL,
		sms_sender_id  TEXT NOT NULL,
		sms_short_code TEXT NOT NULL,
		sms_version    INTEGER NOT NULL,
		sms_created_ms INTEGER NOT NULL,
		sms_updated_ms INTEGER NOT NULL
	);

	CREATE TABLE codes (
		app_num      INTEGER NOT NULL REFERENCES apps (num) ON DELETE CASCADE,
		destination  TEXT NOT NULL,
		reference_id TEXT NOT NULL,
		mac          BLOB NOT NULL,
		allowed      INTEGER NOT NULL, -- failed verifications tolerated
		failed       INTEGER NOT NULL, -- failed verifications counted
		consumed     INTEGER NOT NULL, -- 1 once verified
		created_ms   INTEGER NOT NULL,
		expires_ms   INTEGER NOT NULL,
		PRIMARY KEY (app_num, destination, reference_id)
	) WITHOUT ROWID;
	CREATE INDEX codes_by_expiry ON codes (expires_ms);

	-- One row per wrong guess, for the rolling per-destination budget.
	CREATE TABLE failures (
		app_id      TEXT NOT NULL,
		destination TEXT NOT NULL,
		at_ms       INTEGER NOT NULL
	);
	CREATE INDEX failures_by_destination ON failures (app_id, destination, at_ms);
	CREATE INDEX failures_by_time ON failures (at_ms);

	-- Send de-duplication: pending while result is NULL, until_ms being the
	-- end of the lease; completed otherwise, until_ms being the expiry.
	CREATE TABLE sends (
		app_id   TEXT NOT NULL,
		key      TEXT NOT NULL,
		result   BLOB,
		until_ms INTEGER NOT NULL,
		PRIMARY KEY (app_id, key)
	) WITHOUT ROWID;
	CREATE INDEX sends_by_expiry ON sends (until_ms);

	CREATE TABLE outbox (
		seq         INTEGER PRIMARY KEY, -- order of arrival, breaks ties of created_ms
		message_id  TEXT NOT NULL,
		app_id      TEXT NOT NULL,
		origination TEXT NOT NULL,
		destination TEXT NOT NULL,
		reference_id TEXT NOT NULL,
		language    TEXT NOT NULL,
		body        TEXT NOT NULL,
		encoding    TEXT NOT NULL,
		segments    INTEGER NOT NULL,
		created_ms  INTEGER NOT NULL
	);
	CREATE INDEX outbox_by_time ON outbox (created_ms);
	CREATE INDEX outbox_by_destination ON outbox (destination, created_ms);`,

	// 2: records of the messages handed to carriers. A record without a
	// carrier message ID (the carrier gave none, or a newer record took it
	// over) has NULL there, which the unique index lets any number of
	// records share. WITHOUT ROWID: the indexes hold the primary key, so
	// (created_ms, message_id) orders the listings.
	`CREATE TABLE messages (
		message_id         TEXT NOT NULL PRIMARY KEY,
		app_id             TEXT NOT NULL,
		carrier            TEXT NOT NULL,
		carrier_message_id TEXT,
		origination        TEXT NOT NULL,
		destination        TEXT NOT NULL,
		reference_id       TEXT NOT NULL,
		country            TEXT NOT NULL,
		status             TEXT NOT NULL,
		status_code        TEXT NOT NULL,
		created_ms         INTEGER NOT NULL,
		updated_ms         INTEGER NOT NULL
	) WITHOUT ROWID;
	CREATE UNIQUE INDEX messages_by_carrier_id ON messages (carrier, carrier_message_id);
	CREATE INDEX messages_by_time ON messages (created_ms);
	CREATE INDEX messages_by_destination ON messages (destination, created_ms);`,

	// 3: the store's settings, such as the code hashing key's check.
	`CREATE TABLE settings (
		name  TEXT NOT NULL PRIMARY KEY,
		value TEXT NOT NULL
	) WITHOUT ROWID;`,
}

// SQL of the migration bookkeeping.
const (
	createMigrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)`
	selectSchemaVersion   = `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`
	insertSchemaVersion   = `INSERT INTO schema_migrations (version) VALUES (?)`
)

// migrate brings the schema to the newest version, each migration in a
// transaction of its own. Several processes may open the database at once:
// each migration's transaction begins IMMEDIATE and checks the version
// first, so every migration runs exactly once. It fails if the database's
// schema is newer than this binary knows.
func migrate(ctx context.Context, conn *sql.Conn) error {
	if _, err := conn.ExecContext(ctx, createMigrationsTable); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	for version := 1; version <= len(migrations); version++ {
		if err := migrateTo(ctx, conn, version); err != nil {
			return err
		}
	}
	return nil
}

// migrateTo applies the migration to version, unless the database is already
// there or beyond. It fails if the database is newer than the last migration.
func migrateTo(ctx context.Context, conn *sql.Conn, version int) (err error) {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate to schema version %d: %w", version, err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, tx.Rollback())
		}
	}()
	var current int
	if err := tx.QueryRowContext(ctx, selectSchemaVersion).Scan(&current); err != nil {
		return fmt.Errorf("read the schema version: %w", err)
	}
	if current > len(migrations) {
		return newerSchemaError(current)
	}
	if current >= version {
		return tx.Rollback()
	}
	if _, err := tx.ExecContext(ctx, migrations[version-1]); err != nil {
		return fmt.Errorf("migrate to schema version %d: %w", version, err)
	}
	if _, err := tx.ExecContext(ctx, insertSchemaVersion, version); err != nil {
		return fmt.Errorf("record schema version %d: %w", version, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate to schema version %d: %w", version, err)
	}
	return nil
}

func newerSchemaError(current int) error {
	return fmt.Errorf("the database has schema version %d, newer than the %d this otpd knows: upgrade otpd", current, len(migrations))
}
