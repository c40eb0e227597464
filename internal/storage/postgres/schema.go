package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migrations are the schema's versions: migrations[i] takes the schema from
// version i to version i+1. Append only; never edit a migration that shipped.
// Each runs inside the migration transaction, so it must not use statements
// that refuse to run in one (CREATE INDEX CONCURRENTLY).
//
// The tables live in the first schema of the connection's search_path, so
// several otpd deployments may share a database, each in its own schema (a
// schema of its own also keeps otpd's schema_migrations apart from other
// tools' tables of that name). Once the schema is up to date, Open needs no
// privilege to create anything.
//
// Times are timestamptz, truncated to the millisecond by the Store. Codes, the
// bulk of the data, are kept compact: fixed-width columns first (no alignment
// padding), keys in the "C" collation (byte comparison, no locale), and room
// left in each page (fillfactor) so that the update of a verification can
// stay on the page (a HOT update, which touches no index).
var migrations = []string{
	// 1: the initial schema.
	`CREATE TABLE apps (
		num            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
		id             text COLLATE "C" NOT NULL UNIQUE,
		generation     text NOT NULL,
		name           text NOT NULL,
		tags           json NOT NULL, -- an object of strings
		created_at     timestamptz NOT NULL,
		sms_enabled    boolean NOT NULL,
		sms_sender_id  text NOT NULL,
		sms_short_code text NOT NULL,
		sms_version    integer NOT NULL,
		sms_created_at timestamptz NOT NULL,
		sms_updated_at timestamptz NOT NULL
	);

	-- A code belongs to the number of its application, which stands for the
	-- application's ID and generation together: numbers are never reused.
	CREATE TABLE codes (
		app_num      bigint NOT NULL REFERENCES apps (num) ON DELETE CASCADE,
		created_at   timestamptz NOT NULL,
		expires_at   timestamptz NOT NULL,
		allowed      smallint NOT NULL, -- failed verifications tolerated
		failed       smallint NOT NULL, -- failed verifications counted
		consumed     boolean NOT NULL,  -- true once verified
		destination  text COLLATE "C" NOT NULL,
		reference_id text COLLATE "C" NOT NULL,
		mac          bytea NOT NULL,
		PRIMARY KEY (app_num, destination, reference_id)
	) WITH (fillfactor = 90);
	CREATE INDEX codes_by_expiry ON codes (expires_at);

	-- One row per wrong guess, for the rolling per-destination budget. No
	-- foreign key: VerifyCode records failures while it holds a code's row
	-- lock, and a key check would then lock the application's row too, in
	-- the opposite order to DeleteApp. DeleteApp deletes them itself.
	CREATE TABLE failures (
		app_num     bigint NOT NULL,
		failed_at   timestamptz NOT NULL,
		destination text COLLATE "C" NOT NULL
	);
	CREATE INDEX failures_by_destination ON failures (app_num, destination, failed_at);
	CREATE INDEX failures_by_time ON failures (failed_at);

	-- Send de-duplication: pending while result is NULL, until_at being the
	-- end of the lease; completed otherwise, until_at being the expiry.
	CREATE TABLE sends (
		app_id   text COLLATE "C" NOT NULL,
		key      text COLLATE "C" NOT NULL,
		until_at timestamptz NOT NULL,
		result   bytea,
		PRIMARY KEY (app_id, key)
	);
	CREATE INDEX sends_by_until ON sends (until_at);

	CREATE TABLE outbox (
		seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, -- breaks ties of created_at
		created_at   timestamptz NOT NULL,
		segments     integer NOT NULL,
		message_id   text NOT NULL,
		app_id       text NOT NULL,
		origination  text NOT NULL,
		destination  text COLLATE "C" NOT NULL,
		reference_id text NOT NULL,
		language     text NOT NULL,
		body         text NOT NULL,
		encoding     text NOT NULL
	);
	CREATE INDEX outbox_by_time ON outbox (created_at, seq);
	CREATE INDEX outbox_by_destination ON outbox (destination, created_at, seq);`,

	// 2: records of the messages handed to carriers. A record without a
	// carrier message ID (the carrier gave none, or a newer record took it
	// over) has NULL there, which the unique index lets any number of
	// records share. Reports change only unindexed columns, so with room
	// left in each page their updates can stay on the page (HOT).
	`CREATE TABLE messages (
		created_at         timestamptz NOT NULL,
		updated_at         timestamptz NOT NULL,
		message_id         text COLLATE "C" PRIMARY KEY,
		app_id             text NOT NULL,
		carrier            text COLLATE "C" NOT NULL,
		carrier_message_id text COLLATE "C",
		origination        text NOT NULL,
		destination        text COLLATE "C" NOT NULL,
		reference_id       text NOT NULL,
		country            text NOT NULL,
		status             text NOT NULL,
		status_code        text NOT NULL
	) WITH (fillfactor = 90);
	CREATE UNIQUE INDEX messages_by_carrier_id ON messages (carrier, carrier_message_id);
	CREATE INDEX messages_by_time ON messages (created_at, message_id);
	CREATE INDEX messages_by_destination ON messages (destination, created_at, message_id);`,

	// 3: the store's settings, such as the code hashing key's check.
	`CREATE TABLE settings (
		name  text COLLATE "C" PRIMARY KEY,
		value text NOT NULL
	);`,
}

// readCommitted are the options of the Store's pgx transactions: each
// statement sees what was committed before it began, in particular by the
// previous holder of a lock the transaction waited for.
var readCommitted = pgx.TxOptions{IsoLevel: pgx.ReadCommitted}

// migrationLockClass is the first key of the advisory lock that migrations
// hold ("otpd" in ASCII); the second is a hash of the schema's name. The
// two-key form never collides with VerifyCode's one-key locks.
const migrationLockClass = 0x6f747064

// SQL of the migration bookkeeping.
const (
	lockMigrations = `SELECT pg_advisory_xact_lock($1, hashtext(COALESCE(current_schema(), '')))`
	// selectMigrationsTable reports whether the first schema of the
	// search_path has the bookkeeping table: a schema that is up to date
	// then needs no CREATE privilege.
	selectMigrationsTable = `SELECT to_regclass(quote_ident(current_schema()) || '.schema_migrations') IS NOT NULL`
	createMigrationsTable = `CREATE TABLE schema_migrations (
		version    integer PRIMARY KEY,
		applied_at timestamptz NOT NULL DEFAULT now()
	)`
	selectSchemaVersion = `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`
	insertSchemaVersion = `INSERT INTO schema_migrations (version) VALUES ($1)`
)

// migrate brings the schema to the newest version in one transaction that
// holds an advisory lock for the schema: instances starting at once take
// turns, and each finds the work of those before it done. DDL is
// transactional in PostgreSQL, so a failed migration leaves nothing behind.
// It fails if the schema is newer than this binary knows.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	err := pgx.BeginTxFunc(ctx, pool, readCommitted, func(tx pgx.Tx) error {
		// Read committed: each statement after the lock sees what the
		// previous holder committed.
		if _, err := tx.Exec(ctx, lockMigrations, migrationLockClass); err != nil {
			return fmt.Errorf("lock the schema: %w", err)
		}
		var exists bool
		if err := tx.QueryRow(ctx, selectMigrationsTable).Scan(&exists); err != nil {
			return fmt.Errorf("look for schema_migrations: %w", err)
		}
		if !exists {
			if _, err := tx.Exec(ctx, createMigrationsTable); err != nil {
				return fmt.Errorf("create schema_migrations: %w", err)
			}
		}
		var current int
		if err := tx.QueryRow(ctx, selectSchemaVersion).Scan(&current); err != nil {
			return fmt.Errorf("read the schema version: %w", err)
		}
		if current > len(migrations) {
			return newerSchemaError(current)
		}
		for version := current + 1; version <= len(migrations); version++ {
			if _, err := tx.Exec(ctx, migrations[version-1]); err != nil {
				return fmt.Errorf("migrate to schema version %d: %w", version, err)
			}
			if _, err := tx.Exec(ctx, insertSchemaVersion, version); err != nil {
				return fmt.Errorf("record schema version %d: %w", version, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// newerSchemaError reports a schema newer than this binary's migrations.
func newerSchemaError(current int) error {
	return fmt.Errorf("the database has schema version %d, newer than the %d this otpd knows: upgrade otpd", current, len(migrations))
}
