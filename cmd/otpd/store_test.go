package main

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRedactStoreURL(t *testing.T) {
	for _, tc := range []struct{ in, secret string }{
		{"postgres://otpd:s3cretQ@db/otpd", "s3cretQ"},
		{"postgres://otpd@db/otpd?password=s3cretQ&sslmode=require", "s3cretQ"},
		{"postgres://otpd@db/otpd?sslpassword=s3cretQ", "s3cretQ"},
		{"redis://:s3cretQ@127.0.0.1:6379/0", "s3cretQ"},
		{"redis://:12/34s3cretQ@host:6379/0", "34s3cretQ"}, // '/' in an unencoded password
		{"redis-cluster://u:s3cretQ@10.0.0.1:6379,10.0.0.2:6379", "s3cretQ"},
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
