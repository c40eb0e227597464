// Package postgres implements storage.Store on PostgreSQL, with pgx/v5 and its
// connection pool, for any number of otpd instances sharing one database.
//
// Every decision is made by one statement or one short transaction, so that
// the database alone decides what concurrent calls from many instances see:
//
//   - VerifyCode runs in a transaction that first takes a transaction-level
//     advisory lock on (application, destination), then locks the code's row
//     (SELECT ... FOR UPDATE). The advisory lock serialises every
//     verification of the destination, so the check of its failure budget and
//     the recording of a wrong guess are one step even across codes; the row
//     lock serialises the verification with RecordSend replacing the code.
//     Locks are always taken in that order, and no other method takes the
//     advisory lock, so verifications cannot deadlock with each other or with
//     RecordSend and DeleteApp.
//   - Codes and failures belong to the application's row number (apps.num,
//     an identity column that never hands out a number twice): a re-created
//     application gets a new number, so its predecessor's codes and failures
//     never match it. Codes hang off it by a foreign key with ON DELETE
//     CASCADE, so RecordSend racing DeleteApp either lands before the delete
//     (and its code goes with it) or fails the foreign key check
//     (storage.ErrNotFound); DeleteApp deletes the failures and send records
//     in the same transaction.
//   - RecordSend stores a send's code, message record and completion in one
//     batch, which runs as one implicit transaction: one round trip, one
//     commit, and nothing stored if any part fails.
//   - Send claims are INSERT ... ON CONFLICT DO UPDATE ... WHERE the record
//     has ended: the row lock of the conflict decides which claim wins.
//   - A message record's status report is one conditional UPDATE ...
//     RETURNING, whose row lock makes concurrent reports take turns. Puts
//     that name the same carrier message ID take turns under a two-key
//     advisory lock of their own (another key space than VerifyCode's), so
//     that each takes the ID over from the record of the one before.
//   - Purge deletes each batch in a statement of its own, skipping rows that
//     other calls hold locked.
//
// Times are stored as timestamptz truncated to the millisecond and returned in
// UTC. The schema is created and upgraded by versioned migrations (schema.go),
// under an advisory lock, when a Store opens.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/otpd/otpd/internal/storage"
)

// DefaultConnectTimeout bounds how long opening one connection may take
// (dialling, TLS and authentication) when the URL does not set
// connect_timeout. While the database is unreachable, calls fail after at
// most this long instead of hanging until the caller gives up.
const DefaultConnectTimeout = 5 * time.Second

// DefaultMaxConns is the size of the connection pool when the URL does not
// set pool_max_conns (or the number of CPUs, if greater). Verifications
// spend most of their time waiting for the database to flush its log, so
// more connections than CPUs pay off (the server commits them in groups);
// a few instances with the default stay well under PostgreSQL's default
// max_connections of 100.
const DefaultMaxConns = 16

// defaultApplicationName is reported to the server (pg_stat_activity) when
// the URL does not set application_name.
const defaultApplicationName = "otpd"

// Store is a storage.Store on a PostgreSQL database. Open it with Open and
// release it with Close.
type Store struct {
	pool *pgxpool.Pool
}

var _ storage.Store = (*Store)(nil)

// Open connects to the PostgreSQL database at url, a postgres:// URL (or a
// keyword/value connection string) as pgx parses it, including its pool_*
// settings (pool_max_conns, pool_max_conn_lifetime, ...). When the URL does
// not say, connect_timeout is DefaultConnectTimeout (a connect_timeout of 0,
// "no limit", counts as not saying: otpd never waits forever for a
// connection), pool_max_conns is DefaultMaxConns, application_name is
// "otpd" and default_transaction_isolation is read committed. Open checks
// that the database answers and brings its schema up to date; it fails if
// the schema is newer than this otpd knows.
//
// The pool reconnects by itself: when the database goes away, calls fail
// with an error (within the connect timeout), and once it is back they
// succeed again, on the same Store.
func Open(ctx context.Context, url string) (*Store, error) {
	cfg, err := parseConfig(url)
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("storage/postgres: open: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("storage/postgres: open: connect: %w", err)
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("storage/postgres: open: %w", err)
	}
	return &Store{pool: pool}, nil
}

// parseConfig parses url and fills in the defaults it does not set.
func parseConfig(url string) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx masks the password in the URL it quotes.
		return nil, fmt.Errorf("storage/postgres: open: %w", err)
	}
	// pgxpool consumes the pool_* settings: look for them in a plain parse.
	// It cannot fail where pgxpool's succeeded.
	plain, err := pgconn.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("storage/postgres: open: %w", err)
	}
	if _, ok := plain.RuntimeParams["pool_max_conns"]; !ok {
		cfg.MaxConns = max(DefaultMaxConns, int32(runtime.NumCPU()))
	}
	cc := cfg.ConnConfig
	if cc.ConnectTimeout == 0 {
		// pgconn bounds the whole connection process, dial included,
		// by ConnectTimeout.
		cc.ConnectTimeout = DefaultConnectTimeout
	}
	if _, ok := cc.RuntimeParams["application_name"]; !ok {
		cc.RuntimeParams["application_name"] = defaultApplicationName
	}
	// Bound, on the server's side, how long a session may sit in an open
	// transaction (an instance cut off mid-verify would otherwise hold a
	// destination's lock for as long as the kernel keeps its connection),
	// wait for a lock, or run a statement.
	for param, value := range map[string]string{
		"idle_in_transaction_session_timeout": "5000",
		"lock_timeout":                        "3000",
		"statement_timeout":                   "10000",
	} {
		if _, ok := cc.RuntimeParams[param]; !ok {
			cc.RuntimeParams[param] = value
		}
	}
	// Notice a dead connection in about 25 s instead of the kernel's hours.
	dialer := &net.Dialer{KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: 10 * time.Second, Interval: 5 * time.Second, Count: 3}}
	cc.DialFunc = dialer.DialContext
	if _, ok := cc.RuntimeParams["default_transaction_isolation"]; !ok {
		// The Store's statements are written for read committed (its
		// transactions ask for it explicitly); a server default of
		// serializable would only add serialization failures.
		cc.RuntimeParams["default_transaction_isolation"] = "read committed"
	}
	return cfg, nil
}

// CallTimeout bounds every call but Purge (whose batches have
// statement_timeout): a call on a connection the network silently dropped
// fails after it instead of waiting for the caller's deadline.
const CallTimeout = 10 * time.Second

// callContext bounds one call by CallTimeout.
func (s *Store) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, CallTimeout)
}

// Ping reports whether the database answers and takes writes: a standby,
// or sessions read-only by default, do not.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := s.callContext(ctx)
	defer cancel()
	var standby, readOnly bool
	err := s.pool.QueryRow(ctx, `SELECT pg_is_in_recovery(), current_setting('transaction_read_only') = 'on'`).Scan(&standby, &readOnly)
	switch {
	case err != nil:
		return fmt.Errorf("storage/postgres: ping: %w", err)
	case standby:
		return errors.New("storage/postgres: the database answers but is a standby, which takes no writes: point --store at the primary")
	case readOnly:
		return errors.New("storage/postgres: the database answers but its sessions are read-only (default_transaction_read_only): otpd must write")
	}
	return nil
}

// PoolStats is the state of a Store's connection pool.
type PoolStats struct {
	Max, Acquired, Idle, Constructing int32
	// Waits counts the calls that found no idle connection and waited
	// for one (while one was made, or one returned), WaitTime their time
	// in all: a pool too small for the load shows here first.
	Waits    int64
	WaitTime time.Duration
	// Opened counts the connections the pool has made.
	Opened int64
}

// PoolStats returns the state of the connection pool now.
func (s *Store) PoolStats() PoolStats {
	st := s.pool.Stat()
	return PoolStats{
		Max: st.MaxConns(), Acquired: st.AcquiredConns(), Idle: st.IdleConns(), Constructing: st.ConstructingConns(),
		Waits: st.EmptyAcquireCount(), WaitTime: st.EmptyAcquireWaitTime(), Opened: st.NewConnsCount(),
	}
}

// Close closes every connection of the pool, waiting for those in use to be
// returned. Calling it again does nothing.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// ms returns t truncated to the millisecond, in UTC: every time is stored
// this way, so that comparisons in SQL and in Go agree.
func ms(t time.Time) time.Time { return time.UnixMilli(t.UnixMilli()).UTC() }
