package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"sync"
)

// stmts runs queries on a *sql.DB or a *sql.Conn, preparing each query the
// first time it runs and reusing the prepared statement afterwards: SQLite
// takes longer to parse otpd's small statements than to run them.
type stmts struct {
	on preparer

	mu       sync.Mutex
	prepared map[string]*sql.Stmt
}

// preparer is what stmts needs of a *sql.DB or a *sql.Conn.
type preparer interface {
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// newStmts returns the statements of on.
func newStmts(on preparer) *stmts {
	return &stmts{on: on, prepared: map[string]*sql.Stmt{}}
}

// stmt returns query prepared.
func (s *stmts) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.prepared[query]; ok {
		return st, nil
	}
	st, err := s.on.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	s.prepared[query] = st
	return st, nil
}

// ExecContext runs query, a statement that returns no rows.
func (s *stmts) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st, err := s.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

// QueryContext runs query, a statement that returns rows.
func (s *stmts) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := s.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// QueryRowContext runs query, a statement that returns at most one row. If
// query cannot be prepared, it is run unprepared: its *sql.Row then reports
// the error, as a *sql.Row cannot be made to hold one otherwise.
func (s *stmts) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	st, err := s.stmt(ctx, query)
	if err != nil {
		return s.on.QueryRowContext(ctx, query, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

// close closes every prepared statement.
func (s *stmts) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for query, st := range s.prepared {
		errs = append(errs, st.Close())
		delete(s.prepared, query)
	}
	return errors.Join(errs...)
}
