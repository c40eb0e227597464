package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"

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

// checkStoreURL checks the form of --store, for validate.
func checkStoreURL(s string) error {
	if s == "" {
		return nil
	}
	scheme, _, ok := strings.Cut(s, "://")
	switch {
	case !ok:
		return fmt.Errorf("--store %s: want a URL such as postgres://user@host/db or redis://host:6379/0", redactStoreURL(s))
	case scheme == schemePostgres || scheme == schemePostgresql:
		return nil
	case scheme == schemeRedis || scheme == schemeRedisCluster:
		if _, err := redis.ParseURL(s); err != nil {
			shown := redactStoreURL(s)
			if strings.Contains(shown, "(hidden") {
				return fmt.Errorf("--store %s: percent-encode the password ('/', '@', ':' and '%%' in it end the host part)", shown)
			}
			return fmt.Errorf("--store %s: %v", shown, err)
		}
		return nil
	}
	return fmt.Errorf("--store %s: unknown scheme %q (want postgres, redis or redis-cluster)", redactStoreURL(s), scheme)
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
		return nil, fmt.Errorf("open the store %s: %w", redactStoreURL(s), err)
	}
	return st, nil
}

// redactStoreURL hides a password in a store URL, for messages and logs:
// in the user part and in password query parameters. A URL whose password
// was not percent-encoded can put part of it anywhere; such a URL is shown
// as its scheme alone.
func redactStoreURL(s string) string {
	scheme, _, _ := strings.Cut(s, "://")
	opaque := scheme + "://(hidden: the URL is malformed)"
	u, err := url.Parse(s)
	if err != nil || strings.Contains(u.Path, "@") || strings.Contains(u.RawQuery, "@") || u.Opaque != "" {
		return opaque
	}
	q := u.Query()
	for _, k := range []string{"password", "sslpassword"} {
		if q.Has(k) {
			q.Set(k, "xxxxx")
		}
	}
	if len(q) > 0 {
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// requireSharedSecrets refuses to run several instances on a shared store
// with secrets each would generate for itself.
func requireSharedSecrets() error {
	var missing []string
	if os.Getenv("OTPD_HMAC_KEY") == "" && os.Getenv("OTPD_HMAC_KEY_FILE") == "" {
		missing = append(missing, "OTPD_HMAC_KEY or OTPD_HMAC_KEY_FILE (the code hashing key: an instance with another key could verify no code the others sent)")
	}
	if os.Getenv("OTPD_ACCESS_KEY_ID") == "" || os.Getenv("OTPD_SECRET_ACCESS_KEY") == "" {
		missing = append(missing, "OTPD_ACCESS_KEY_ID and OTPD_SECRET_ACCESS_KEY (the key pair clients sign with, the same on every instance)")
	}
	if len(missing) == 0 {
		return nil
	}
	return errors.New("with a shared --store every instance must be given the same secrets; set " + strings.Join(missing, ", and "))
}
