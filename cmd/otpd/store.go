package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"unicode"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/otpd/otpd/internal/storage"
	"github.com/otpd/otpd/internal/storage/postgres"
	"github.com/otpd/otpd/internal/storage/redis"
	"github.com/otpd/otpd/internal/storage/sqlite"
)

// databaseFileName is the embedded database in the data directory.
const databaseFileName = "otpd.db"

// The stores otpd can use, by the scheme of --store. Without --store, the
// embedded SQLite database in --data-dir.
const (
	schemePostgres     = "postgres"
	schemePostgresql   = "postgresql"
	schemeRedis        = "redis"
	schemeRedisCluster = "redis-cluster"
)

// checkStoreURL checks the form of --store, for validate. No problem it
// reports shows the value whole (see redactStoreURL): a value that is no
// URL is not shown at all.
func checkStoreURL(s string) error {
	if s == "" {
		return nil
	}
	scheme, _, ok := strings.Cut(s, "://")
	switch {
	case !ok || !isSchemeName(scheme):
		return errors.New("--store is not a URL (its value is not shown, since it may hold a password): want a URL such as postgres://user@host/db or redis://host:6379/0")
	case scheme == schemePostgres || scheme == schemePostgresql:
		// pgx's parser, as the store's open would run it, connecting to
		// nothing: so that --check-config refuses what otpd serve would.
		if _, err := pgxpool.ParseConfig(s); err != nil {
			return fmt.Errorf("--store %s: %v", redactStoreURL(s), redactStoreError(s, err))
		}
		return nil
	case scheme == schemeRedis || scheme == schemeRedisCluster:
		if _, err := redis.ParseURL(s); err != nil {
			shown := redactStoreURL(s)
			if hasSpaceOrControl(s) {
				return fmt.Errorf("--store %s: remove it (a trailing space or newline from an environment file, say)", shown)
			}
			if strings.Contains(shown, "(hidden") {
				return fmt.Errorf("--store %s: percent-encode the password ('/', '@', ':' and '%%' in it end the host part)", shown)
			}
			return fmt.Errorf("--store %s: %v", shown, redactStoreError(s, err))
		}
		return nil
	}
	return fmt.Errorf("--store %s: unknown scheme %q (want postgres, redis or redis-cluster)", redactStoreURL(s), scheme)
}

func hasSpaceOrControl(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0
}

// isSchemeName reports whether s can be a URL's scheme (RFC 3986: a letter,
// then letters, digits, '+', '-' and '.'), and so shown.
func isSchemeName(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for i, c := range []byte(s) {
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !letter && (i == 0 || !(c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return false
		}
	}
	return true
}

// openStore opens the configured store: the shared one named by --store,
// or the embedded database in --data-dir. The embedded database is created
// only when create is true, and then created tells so; otherwise a missing
// one is an error, so that a command run from the wrong directory says so
// instead of showing an empty store.
func openStore(ctx context.Context, cfg config, create bool) (st storage.Store, created bool, err error) {
	if cfg.Store != "" {
		st, err = openSharedStore(ctx, cfg.Store)
		return st, false, err
	}
	path := filepath.Join(cfg.DataDir, databaseFileName)
	_, statErr := os.Stat(path)
	if statErr != nil && !create {
		return nil, false, fmt.Errorf("no otpd database at %s (%v): pass the --data-dir (or --store) that otpd serve uses", path, statErr)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, false, fmt.Errorf("create data directory: %w", err)
	}
	if st, err = sqlite.Open(ctx, path); err != nil {
		return nil, false, fmt.Errorf("open the embedded database: %w", err)
	}
	return st, errors.Is(statErr, fs.ErrNotExist), nil
}

func openSharedStore(ctx context.Context, s string) (storage.Store, error) {
	if err := checkStoreURL(s); err != nil {
		return nil, err
	}
	scheme, _, _ := strings.Cut(s, "://")
	var (
		st  storage.Store
		err error
	)
	switch scheme {
	case schemePostgres, schemePostgresql:
		st, err = postgres.Open(ctx, s)
	case schemeRedis, schemeRedisCluster:
		var opt redis.Options
		if opt, err = redis.ParseURL(s); err == nil {
			st, err = redis.Open(ctx, opt)
		}
	default:
		err = fmt.Errorf("unknown scheme %q", scheme)
	}
	if err != nil {
		return nil, fmt.Errorf("open the store %s: %w", redactStoreURL(s), redactStoreError(s, err))
	}
	return st, nil
}

// redactStoreURL hides a password in a store URL, for messages and logs:
// in the user part, and the value of every query parameter that names a
// password, secret or token, or that holds a '=' itself (libpq's options,
// say, "-c password=..."). A value that is no URL is not shown; a URL that
// does not parse whole (white space in it, a bad %-escape, a password that
// was not percent-encoded, which can put part of it anywhere) is shown as
// its scheme alone.
func redactStoreURL(s string) string {
	scheme, _, ok := strings.Cut(s, "://")
	if !ok || !isSchemeName(scheme) {
		return "(hidden: not a URL)"
	}
	opaque := scheme + "://(hidden: the URL is malformed)"
	if hasSpaceOrControl(s) {
		return scheme + "://(hidden: the URL has white space or a control character in it)"
	}
	u, err := url.Parse(s)
	if err != nil || strings.Contains(u.Path, "@") || strings.Contains(u.RawQuery, "@") || u.Opaque != "" || u.Fragment != "" {
		return opaque
	}
	q, err := url.ParseQuery(u.RawQuery) // u.Query would drop a malformed pair silently
	if err != nil {
		return opaque
	}
	for k, vs := range q {
		for i, v := range vs {
			if isSecretParam(k) || strings.Contains(v, "=") {
				vs[i] = "xxxxx"
			}
		}
	}
	if len(q) > 0 {
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// isSecretParam reports whether a store URL's parameter k may hold a
// secret: password, sslpassword, and any other it might be (but not
// passfile, which names a file).
func isSecretParam(k string) bool { return secretName.MatchString(k) }

// secretWords are what in a parameter's name says it holds a secret.
const secretWords = `password|secret|token`

var secretName = regexp.MustCompile(`(?i)` + secretWords)

// redactStoreError returns err, an error about the store URL s (from the
// store's driver, which may quote s as it was given: pgx does when it
// cannot parse it), with s hidden in its message, and every password of s
// where it can stand: in a URL's user part (":password@") or as the value
// of a parameter that names a password. (Not wherever its text appears: a
// password "postgres" would hide "storage/postgres" and "user=postgres".)
// It still unwraps to err.
func redactStoreError(s string, err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	redacted := strings.ReplaceAll(msg, s, redactStoreURL(s))
	for _, pw := range userPasswords(s) {
		redacted = strings.ReplaceAll(redacted, ":"+pw+"@", ":xxxxx@")
	}
	redacted = secretValue.ReplaceAllStringFunc(redacted, func(m string) string {
		name, _, _ := strings.Cut(m, "=")
		return name + "=xxxxx"
	})
	if redacted == msg {
		return err
	}
	return &redactedError{msg: redacted, err: err}
}

// secretValue finds the values of parameters that name a secret (see
// secretWords), in a URL's query or in libpq's keyword form, quoted or not.
var secretValue = regexp.MustCompile(`(?i)[a-z_]*(?:` + secretWords + `)[a-z_]*\s*=\s*('[^']*'|[^&\s]*)`)

// userPasswords returns the password of s's user part (up to the last '@',
// since one that was not percent-encoded may hold '/' or '@'), as written
// and as percent-decoded, or none.
func userPasswords(s string) []string {
	_, rest, _ := strings.Cut(s, "://")
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return nil
	}
	_, pw, ok := strings.Cut(rest[:at], ":")
	if !ok || pw == "" {
		return nil
	}
	found := []string{pw}
	for _, unescape := range []func(string) (string, error){url.QueryUnescape, url.PathUnescape} {
		if d, err := unescape(pw); err == nil && d != pw && d != "" {
			found = append(found, d)
		}
	}
	return found
}

// redactedError is an error whose message had secrets taken out.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// requireSharedSecrets refuses to run several instances on a shared store
// with secrets each would generate for itself.
func requireSharedSecrets() error {
	var missing []string
	if os.Getenv("OTPD_HMAC_KEY") == "" && os.Getenv("OTPD_HMAC_KEY_FILE") == "" {
		missing = append(missing, "OTPD_HMAC_KEY or OTPD_HMAC_KEY_FILE (the code hashing key: an instance with another key could verify no code the others sent)")
	}
	if (os.Getenv("OTPD_ACCESS_KEY_ID") == "" || os.Getenv("OTPD_SECRET_ACCESS_KEY") == "") && os.Getenv("OTPD_ACCESS_KEYS_FILE") == "" {
		missing = append(missing, "OTPD_ACCESS_KEY_ID and OTPD_SECRET_ACCESS_KEY, or OTPD_ACCESS_KEYS_FILE (the key pairs clients sign with, the same on every instance)")
	}
	if len(missing) == 0 {
		return nil
	}
	return errors.New("with a shared --store every instance must be given the same secrets; set " + strings.Join(missing, ", and "))
}
