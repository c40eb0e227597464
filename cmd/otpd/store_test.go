package main

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRedactStoreURL(t *testing.T) {
	for _, tc := range []struct{ in, secret string }{
		{"postgres://otpd:s3cretQ@db/otpd", "s3cretQ"},
		{"postgres://otpd@db/otpd?password=s3cretQ&sslmode=require", "s3cretQ"},
		{"postgres://otpd@db/otpd?sslpassword=s3cretQ", "s3cretQ"},
		{"redis://:s3cretQ@127.0.0.1:6379/0", "s3cretQ"},
		{"redis://:12/34s3cretQ@host:6379/0", "34s3cretQ"}, // '/' in an unencoded password
		{"redis-cluster://u:s3cretQ@10.0.0.1:6379,10.0.0.2:6379", "s3cretQ"},
		// Not a URL: libpq's keyword form.
		{"host=db user=otpd password=s3cretQ", "s3cretQ"},
		{"host=db password='s3cretQ' sslmode=disable", "s3cretQ"},
		// White space after the query, a bad escape, a password in options.
		{"postgres://otpd@127.0.0.1:1/otpd?sslmode=disable password=s3cretQ", "s3cretQ"},
		{"postgres://otpd@127.0.0.1:1/otpd?password=s3cretQ%zz", "s3cretQ"},
		{"postgres://otpd@127.0.0.1:1/otpd?sslmode=disable&password=s3cretQ x", "s3cretQ"},
		{"postgres://otpd:s3c retQ@127.0.0.1:1/otpd", "retQ"},
		{"postgres://otpd@127.0.0.1:1/otpd?options=-c%20password%3Ds3cretQ", "s3cretQ"},
		{"postgres://otpd@127.0.0.1:1/otpd?Password=s3cretQ", "s3cretQ"},
		{"postgres://otpd@127.0.0.1:1/otpd#s3cretQ", "s3cretQ"},
		{"redis://:s3cretQ@127.0.0.1:1/0?password=s3cretQ%zz", "s3cretQ"},
	} {
		got := redactStoreURL(tc.in)
		if strings.Contains(got, tc.secret) {
			t.Errorf("redactStoreURL(%q) = %q: the password shows", tc.in, got)
		}
		if err := checkStoreURL(tc.in); err != nil && strings.Contains(err.Error(), tc.secret) {
			t.Errorf("checkStoreURL(%q) = %v: the password shows", tc.in, err)
		}
	}
	if got := redactStoreURL("postgres://otpd@db.internal/otpd?sslmode=require"); got != "postgres://otpd@db.internal/otpd?sslmode=require" {
		t.Errorf("a URL without a password changed: %q", got)
	}
}

// TestOpenEmbeddedStore checks that only a command that creates something
// creates the embedded database, and that it says when it did.
func TestOpenEmbeddedStore(t *testing.T) {
	ctx := context.Background()
	cfg := config{DataDir: filepath.Join(t.TempDir(), "data")}
	if _, _, err := openStore(ctx, cfg, false); err == nil || !strings.Contains(err.Error(), "no otpd database at") {
		t.Fatalf("open without create in an empty directory: err %v, want one saying there is no database", err)
	}
	for i, wantCreated := range []bool{true, false} {
		st, created, err := openStore(ctx, cfg, true)
		if err != nil {
			t.Fatal(err)
		}
		st.Close()
		if created != wantCreated {
			t.Errorf("open #%d with create: created %v, want %v", i+1, created, wantCreated)
		}
	}
	st, created, err := openStore(ctx, cfg, false)
	if err != nil || created {
		t.Fatalf("open without create once the database exists: created %v, err %v", created, err)
	}
	st.Close()
}

// TestAppsCreateRefusedCreatesNoDatabase checks that an application the
// rules refuse leaves no database behind in a new data directory.
func TestAppsCreateRefusedCreatesNoDatabase(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	err := runApps([]string{"create", "--name", "shop", "--id", "not-hex", "--data-dir", dir})
	if err == nil || !strings.Contains(err.Error(), "Id") {
		t.Fatalf("apps create with a bad ID: err %v, want one naming Id", err)
	}
	if _, err := os.Stat(filepath.Join(dir, databaseFileName)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a refused application left a database behind (stat: %v)", err)
	}
}

// A store value that may hold a secret is never echoed, whatever refuses
// it: otpd serve's check of its form, or the driver's parser when the
// store is opened, whose error otpd wraps.
func TestStoreValueNeverEchoed(t *testing.T) {
	for _, s := range []string{
		"host=db user=otpd password=s3cretQ",
		"postgres://otpd@127.0.0.1:1/otpd?sslmode=disable password=s3cretQ",
		"postgres://otpd@127.0.0.1:1/otpd?password=pa%zzs3cretQ",
		"postgres://otpd@127.0.0.1:1/otpd?sslmode=disable&password=s3cretQ x",
		"postgres://otpd:s3cretQ@127.0.0.1:1/otpd?sslmode=bogus",
		"postgres://otpd:s3c%20retQ@127.0.0.1:1/otpd?connect_timeout=x",
		"redis://:s3cretQ@127.0.0.1:1/0?db=1",
	} {
		t.Setenv("OTPD_HMAC_KEY", strings.Repeat("ab", 32))
		t.Setenv("OTPD_ACCESS_KEY_ID", testAccessKeyID)
		t.Setenv("OTPD_SECRET_ACCESS_KEY", testSecretKey)
		for name, run := range map[string]func() error{
			"otpd serve --check-config": func() error {
				return runServe([]string{"--check-config", "--store", s, "--log-level", "error"})
			},
			"opening the store": func() error {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				st, err := openSharedStore(ctx, s)
				if err == nil {
					st.Close()
				}
				return err
			},
		} {
			err := run()
			if err == nil {
				t.Errorf("%s with --store %q: no error", name, s)
				continue
			}
			for _, secret := range []string{"s3cretQ", "s3c retQ", "retQ"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("%s with a --store holding a password: %v", name, err)
				}
			}
		}
	}
}

// TestStorePasswordNotInUsage: the usage shows --store's default, which
// OTPD_STORE gives, without its password.
func TestStorePasswordNotInUsage(t *testing.T) {
	t.Setenv("OTPD_STORE", "postgres://otpd:s3cretQ@db.internal/otpd")
	var cfg config
	fs := newFlagSet("serve", "")
	serveFlags(fs, &cfg)
	var usage strings.Builder
	fs.SetOutput(&usage)
	fs.PrintDefaults()
	if strings.Contains(usage.String(), "s3cretQ") || !strings.Contains(usage.String(), "postgres://otpd:xxxxx@db.internal/otpd") {
		t.Errorf("the usage shows --store as:\n%s\nwant its default with the password hidden", usage.String())
	}
	if cfg.Store != "postgres://otpd:s3cretQ@db.internal/otpd" {
		t.Errorf("--store = %q, want OTPD_STORE's value", cfg.Store)
	}
}

// TestRedactStoreErrorHidesOnlyThePassword: a driver's error loses the
// store's password where it stands (in a URL's user part, as a password
// parameter's value), but keeps the same text elsewhere: the Docker image's
// password "postgres" must not hide the user and the package names.
func TestRedactStoreErrorHidesOnlyThePassword(t *testing.T) {
	for _, tc := range []struct{ store, msg, want string }{
		{"postgres://postgres:postgres@127.0.0.1:5432/nosuch",
			"storage/postgres: open: connect: failed to connect to `user=postgres database=nosuch`",
			"storage/postgres: open: connect: failed to connect to `user=postgres database=nosuch`"},
		{"postgres://u:5432@127.0.0.1:5432/db", "dial 127.0.0.1:5432 (127.0.0.1): refused", "dial 127.0.0.1:5432 (127.0.0.1): refused"},
		{"postgres://u:s3cretQ@h/db?passfile=/etc/otpd/pgpass", "open /etc/otpd/pgpass: permission denied", "open /etc/otpd/pgpass: permission denied"},
		{"postgres://u:s3cretQ@h/db", "cannot parse `postgres://u:s3cretQ@h/db x`: bad", "cannot parse `postgres://u:xxxxx@h/db x`: bad"},
		{"host=h password=s3cretQ", "cannot parse `host=h password=s3cretQ`: bad", "cannot parse `(hidden: not a URL)`: bad"},
		{"postgres://u@h/db?sslpassword=s3cretQ x", "invalid sslpassword=s3cretQ x", "invalid sslpassword=xxxxx x"},
	} {
		got := redactStoreError(tc.store, errors.New(tc.msg)).Error()
		if got != tc.want {
			t.Errorf("redactStoreError(%q, %q) = %q, want %q", tc.store, tc.msg, got, tc.want)
		}
	}
}

// TestStoreURLWithWhiteSpaceSaysSo: a store URL with a trailing space or
// newline (from an environment file, say) is refused saying so, not with a
// hint about percent-encoding a password it may not have.
func TestStoreURLWithWhiteSpaceSaysSo(t *testing.T) {
	for _, s := range []string{"redis://127.0.0.1:6379/12 ", "redis-cluster://127.0.0.1:7101\n"} {
		err := checkStoreURL(s)
		if err == nil || !strings.Contains(err.Error(), "white space") || strings.Contains(err.Error(), "percent-encode") {
			t.Errorf("checkStoreURL(%q) = %v, want an error naming the white space", s, err)
		}
	}
}
