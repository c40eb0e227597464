package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/pinpoint"
	"github.com/aws/aws-sdk-go-v2/service/pinpoint/types"
	"github.com/jackc/pgx/v5"

	"github.com/otpd/otpd/internal/accesskeys"
	"github.com/otpd/otpd/internal/pinpointapi"
	"github.com/otpd/otpd/internal/storage"
)

func TestSecretFileCreatedOnceUnderConcurrentStarts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secret")
	var created atomic.Int32
	results := make([][]byte, 16)
	var wg sync.WaitGroup
	for i := range results {
		wg.Go(func() {
			data, c, err := readOrCreateSecretFile(path, func() ([]byte, error) { return fmt.Appendf(nil, "secret-%d\n", i), nil })
			if err != nil {
				t.Errorf("start %d: %v", i, err)
			}
			if c {
				created.Add(1)
			}
			results[i] = data
		})
	}
	wg.Wait()
	if created.Load() != 1 {
		t.Errorf("%d starts created the file, want exactly 1", created.Load())
	}
	onDisk, _ := os.ReadFile(path)
	for i, r := range results {
		if !bytes.Equal(r, onDisk) {
			t.Errorf("start %d read %q, the file holds %q", i, r, onDisk)
		}
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	if looseSecretFile(path) {
		t.Error("a 0600 file is reported loose")
	}
	os.Chmod(path, 0o644)
	if !looseSecretFile(path) {
		t.Error("a 0644 file is not reported loose")
	}
	leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".secret.*"))
	if len(leftovers) != 0 {
		t.Errorf("temporary files left behind: %v", leftovers)
	}
}

func TestGeneratedKeysPersist(t *testing.T) {
	t.Setenv("OTPD_ACCESS_KEY_ID", "")
	t.Setenv("OTPD_SECRET_ACCESS_KEY", "")
	t.Setenv("OTPD_HMAC_KEY", "")
	t.Setenv("OTPD_HMAC_KEY_FILE", "")
	t.Setenv("OTPD_ACCESS_KEYS_FILE", "")
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	keys, err := loadAccessKeys(dir, log)
	first := keys.first()
	if err != nil || !keys.generated || len(keys.ring.Pairs()) != 1 || first.Profile != "otpd" || len(first.AccessKeyID) != 20 || len(first.SecretAccessKey) != 40 {
		t.Fatalf("first start: %+v generated=%v err=%v; want one new 20/40-character pair, profile otpd", keys.ring.Pairs(), keys.generated, err)
	}
	keys, err = loadAccessKeys(dir, log)
	if err != nil || keys.generated || keys.first() != first {
		t.Errorf("restart: %+v generated=%v err=%v; want the same pair, read back", keys.ring.Pairs(), keys.generated, err)
	}
	k1, _, created, err := loadHMACKey(dir)
	if err != nil || len(k1) != 32 || !created {
		t.Fatalf("HMAC key: %d bytes, generated %v, %v; want 32 new bytes", len(k1), created, err)
	}
	k2, _, createdAgain, _ := loadHMACKey(dir)
	if !bytes.Equal(k1, k2) || createdAgain {
		t.Errorf("the HMAC key at restart: the same %v, generated again %v; want the same, read back", bytes.Equal(k1, k2), createdAgain)
	}
}

func TestHMACKeyFromEnvironment(t *testing.T) {
	t.Setenv("OTPD_HMAC_KEY", strings.Repeat("ab", 31))
	if _, _, _, err := loadHMACKey(t.TempDir()); err == nil || !strings.Contains(err.Error(), "at least 32 bytes") {
		t.Errorf("a 31-byte key: %v, want a refusal naming the minimum", err)
	}
	t.Setenv("OTPD_HMAC_KEY", strings.Repeat("ab", 32))
	if key, src, generated, err := loadHMACKey(t.TempDir()); err != nil || len(key) != 32 || src != "OTPD_HMAC_KEY" || generated {
		t.Errorf("a 32-byte key: %d bytes from %q, %v", len(key), src, err)
	}
	file := filepath.Join(t.TempDir(), "hmac")
	if err := os.WriteFile(file, []byte(strings.Repeat("cd", 32)), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("OTPD_HMAC_KEY_FILE", file)
	cfg := testConfig(t.TempDir())
	if err := cfg.validate(); err == nil || !strings.Contains(err.Error(), "both set") {
		t.Errorf("OTPD_HMAC_KEY and OTPD_HMAC_KEY_FILE both set: %v, want a refusal", err)
	}
	t.Setenv("OTPD_HMAC_KEY", "")
	if key, src, generated, err := loadHMACKey(t.TempDir()); err != nil || len(key) != 32 || src != file || generated {
		t.Errorf("OTPD_HMAC_KEY_FILE alone: %d bytes from %q, %v", len(key), src, err)
	}
}

func TestConfigReportsEveryProblem(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Addr = "nonsense"
	cfg.Region = "US East"
	cfg.TLSCert, cfg.TLSKey = "/nonexistent/cert.pem", "/nonexistent/key.pem"
	cfg.FailureLimit = 0
	t.Setenv("OTPD_HMAC_KEY", "abcd")
	err := cfg.validate()
	if err == nil {
		t.Fatal("an invalid configuration was accepted")
	}
	for _, want := range []string{"--addr", "--region", "--tls-cert", "--failure-limit", "OTPD_HMAC_KEY: "} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not mention %s:\n%v", want, err)
		}
	}
}

func TestSharedStoreNeedsSharedSecrets(t *testing.T) {
	for _, v := range []string{"OTPD_HMAC_KEY", "OTPD_HMAC_KEY_FILE", "OTPD_ACCESS_KEY_ID", "OTPD_SECRET_ACCESS_KEY", "OTPD_ACCESS_KEYS_FILE"} {
		t.Setenv(v, "")
	}
	cfg := testConfig(t.TempDir())
	cfg.Store = "redis://127.0.0.1:1/0" // never reached: the secrets are checked first
	_, err := newServer(t.Context(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), time.Now)
	if err == nil {
		t.Fatal("otpd started on a shared store with secrets of its own making")
	}
	for _, want := range []string{"OTPD_HMAC_KEY", "OTPD_ACCESS_KEY_ID"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal does not name %s: %v", want, err)
		}
	}
	t.Setenv("OTPD_HMAC_KEY", testHMACKey)
	t.Setenv("OTPD_ACCESS_KEY_ID", testAccessKeyID)
	t.Setenv("OTPD_SECRET_ACCESS_KEY", testSecretKey)
	if _, err := newServer(t.Context(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), time.Now); err == nil ||
		strings.Contains(err.Error(), "same secrets") {
		t.Errorf("with the secrets set, the error should be about the unreachable store, got %v", err)
	}
	// A file of pairs instead of the pair.
	t.Setenv("OTPD_ACCESS_KEY_ID", "")
	t.Setenv("OTPD_SECRET_ACCESS_KEY", "")
	file := filepath.Join(t.TempDir(), "access-keys")
	pair, _ := accesskeys.Generate("otpd")
	if err := os.WriteFile(file, pair.AppendProfile(nil), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("OTPD_ACCESS_KEYS_FILE", file)
	if _, err := newServer(t.Context(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), time.Now); err == nil ||
		strings.Contains(err.Error(), "same secrets") {
		t.Errorf("with OTPD_ACCESS_KEYS_FILE set, the error should be about the unreachable store, got %v", err)
	}
}

// TestStoreKeepsItsHMACKey checks that a server given a code hashing key
// other than the one a store's codes are hashed with refuses to start, on
// every store, and that otpd adopt-hmac-key replaces the store's key.
func TestStoreKeepsItsHMACKey(t *testing.T) {
	keyA, keyB := strings.Repeat("a1", 32), strings.Repeat("b2", 32)
	for _, tc := range []struct {
		name  string
		store func(t *testing.T) string
	}{
		{"embedded", func(*testing.T) string { return "" }},
		{"PostgreSQL", freshPostgres},
		{"Redis", freshRedis},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("OTPD_ACCESS_KEY_ID", testAccessKeyID)
			t.Setenv("OTPD_SECRET_ACCESS_KEY", testSecretKey)
			cfg := testConfig(t.TempDir())
			cfg.Store = tc.store(t)
			storeArgs := []string{"--data-dir", cfg.DataDir, "--store", cfg.Store}
			start := func(key string) error {
				t.Setenv("OTPD_HMAC_KEY", key)
				s, err := newServer(t.Context(), cfg, slog.New(slog.DiscardHandler), time.Now)
				if err == nil {
					s.store.Close()
				}
				return err
			}
			const refused = "is not the one this store's codes are hashed with"
			if err := start(keyA); err != nil {
				t.Fatalf("the first start: %v", err)
			}
			if err := start(keyA); err != nil {
				t.Fatalf("a restart with the same key: %v", err)
			}
			if err := start(keyB); err == nil || !strings.Contains(err.Error(), refused) || !strings.Contains(err.Error(), "OTPD_HMAC_KEY") {
				t.Fatalf("a start with another key: err %v, want one saying %q and naming OTPD_HMAC_KEY", err, refused)
			}
			t.Setenv("OTPD_HMAC_KEY", keyB)
			if err := runAdoptHMACKey(storeArgs); err != nil {
				t.Fatalf("adopt-hmac-key: %v", err)
			}
			if err := start(keyB); err != nil {
				t.Fatalf("a start with the adopted key: %v", err)
			}
			if err := start(keyA); err == nil || !strings.Contains(err.Error(), refused) {
				t.Fatalf("a start with the key replaced: err %v, want one saying %q", err, refused)
			}
		})
	}
}

// TestMissingHMACKeyFileBesideADatabase checks that a data directory whose
// database was used with a generated key, but whose hmac.key has gone (moved
// out, as the README advises, without OTPD_HMAC_KEY_FILE), is refused rather
// than given a new key, and that naming the moved file lets it start.
func TestMissingHMACKeyFileBesideADatabase(t *testing.T) {
	t.Setenv("OTPD_HMAC_KEY", "")
	t.Setenv("OTPD_HMAC_KEY_FILE", "")
	cfg := testConfig(t.TempDir())
	start := func() error {
		s, err := newServer(t.Context(), cfg, slog.New(slog.DiscardHandler), time.Now)
		if err == nil {
			s.store.Close()
		}
		return err
	}
	if err := start(); err != nil {
		t.Fatalf("the first start: %v", err)
	}
	keyFile := filepath.Join(cfg.DataDir, hmacKeyFileName)
	moved := filepath.Join(t.TempDir(), "otpd-hmac")
	if err := os.Rename(keyFile, moved); err != nil {
		t.Fatal(err)
	}
	if err := start(); err == nil || !strings.Contains(err.Error(), "OTPD_HMAC_KEY_FILE") {
		t.Fatalf("a start without the key file: err %v, want one naming OTPD_HMAC_KEY_FILE", err)
	}
	if _, err := os.Stat(keyFile); !os.IsNotExist(err) {
		t.Errorf("the refused start left a key file behind (stat: %v)", err)
	}
	t.Setenv("OTPD_HMAC_KEY_FILE", moved)
	if err := start(); err != nil {
		t.Fatalf("a start with OTPD_HMAC_KEY_FILE naming the moved key: %v", err)
	}
	// Starting over: adopt-hmac-key makes a new key and the store takes it.
	t.Setenv("OTPD_HMAC_KEY_FILE", "")
	if err := runAdoptHMACKey([]string{"--data-dir", cfg.DataDir}); err != nil {
		t.Fatalf("adopt-hmac-key without a key: %v", err)
	}
	if _, err := os.Stat(keyFile); err != nil {
		t.Fatalf("adopt-hmac-key made no key: %v", err)
	}
	if err := start(); err != nil {
		t.Fatalf("a start with the key adopt-hmac-key made: %v", err)
	}
	t.Setenv("OTPD_HMAC_KEY_FILE", moved)
	if err := start(); err == nil {
		t.Fatal("a start with the replaced key succeeded")
	}
}

// TestStoreWithAppsButNoKeyCheckWarns checks that the first server to start
// on a store with applications but no key check (made by an earlier otpd,
// or by otpd apps create) says loudly that its key is now the store's.
func TestStoreWithAppsButNoKeyCheckWarns(t *testing.T) {
	t.Setenv("OTPD_HMAC_KEY", strings.Repeat("c3", 32))
	cfg := testConfig(t.TempDir())
	if err := runApps([]string{"create", "--name", "shop", "--data-dir", cfg.DataDir}); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	s, err := newServer(t.Context(), cfg, slog.New(slog.NewTextHandler(&logs, nil)), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	s.store.Close()
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "every instance must use this key") {
		t.Errorf("no warning that the store took this server's key; the log:\n%s", logs.String())
	}
}

// TestReplacedKeyMakesARunningServerUnready checks that a server whose
// store takes another key while it runs reports itself not ready and
// refuses sends and verifications (a right code is neither consumed nor
// counted as a wrong guess), and is ready again once the store takes its
// key back.
func TestReplacedKeyMakesARunningServerUnready(t *testing.T) {
	t.Setenv("OTPD_HMAC_KEY", "")
	t.Setenv("OTPD_HMAC_KEY_FILE", "")
	ts := startServer(t, nil)
	readyz := func() (int, string) { return readyzAfterRecheck(t, ts) }
	if status, body := readyz(); status != http.StatusOK {
		t.Fatalf("/readyz at start: %d %s", status, body)
	}
	c := ts.client(t)
	app := createApp(t, c, "stale")
	params := sendParams("before")
	params.AllowedAttempts = aws.Int32(1) // a wrong guess would use it up
	send(t, c, app, params)
	code := ts.lastCode(t, testDestination)
	t.Setenv("OTPD_HMAC_KEY", strings.Repeat("d4", 32))
	if err := runAdoptHMACKey([]string{"--data-dir", ts.DataDir}); err != nil {
		t.Fatal(err)
	}
	if status, body := readyz(); status != http.StatusServiceUnavailable || !strings.Contains(body, "another code hashing key") {
		t.Errorf("/readyz once the store takes another key: %d %s, want 503 saying so", status, body)
	}
	_, err := c.VerifyOTPMessage(t.Context(), &pinpoint.VerifyOTPMessageInput{
		ApplicationId: aws.String(app),
		VerifyOTPMessageRequestParameters: &types.VerifyOTPMessageRequestParameters{
			DestinationIdentity: aws.String(testDestination), ReferenceId: aws.String("before"), Otp: aws.String(code),
		},
	})
	wantAPIError(t, err, "InternalServerErrorException", "key its store no longer takes")
	texted := len(ts.outbox(t, testDestination))
	_, err = c.SendOTPMessage(t.Context(), &pinpoint.SendOTPMessageInput{ApplicationId: aws.String(app), SendOTPMessageRequestParameters: sendParams("during")})
	wantAPIError(t, err, "InternalServerErrorException", "key its store no longer takes")
	if n := len(ts.outbox(t, testDestination)); n != texted {
		t.Errorf("the refused send texted a code: %d messages in the outbox, %d before", n, texted)
	}
	// A store that loses its check meanwhile does not get the stale
	// server's key back; a server with the store's key records it again.
	forgetKeyCheck := func() {
		t.Helper()
		db, err := sql.Open("sqlite", filepath.Join(ts.DataDir, databaseFileName))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.Exec(`DELETE FROM settings`); err != nil {
			t.Fatal(err)
		}
	}
	forgetKeyCheck()
	if status, _ := readyz(); status != http.StatusServiceUnavailable {
		t.Errorf("/readyz of a stale server once the store lost its check: %d, want 503", status)
	}
	if held, _ := ts.srv.store.HeldKeyCheck(t.Context()); held != "" {
		t.Errorf("the stale server recorded its key (%s) in a store that had lost its check", held)
	}
	t.Setenv("OTPD_HMAC_KEY", "") // the data directory's hmac.key, the server's
	if err := runAdoptHMACKey([]string{"--data-dir", ts.DataDir}); err != nil {
		t.Fatal(err)
	}
	if status, body := readyz(); status != http.StatusOK {
		t.Errorf("/readyz once the store takes the server's key back: %d %s, want 200", status, body)
	}
	if !verify(t, c, app, testDestination, "before", code) {
		t.Error("the code sent before the key was replaced does not verify once it is back: the stale server spent its one attempt")
	}
	forgetKeyCheck()
	if status, body := readyz(); status != http.StatusOK {
		t.Errorf("/readyz once the store lost the server's own check: %d %s, want 200", status, body)
	}
	if held, _ := ts.srv.store.HeldKeyCheck(t.Context()); held != ts.srv.keys.check {
		t.Errorf("the store's check after a recheck = %q, want the server's own recorded again", held)
	}
}

// otpd serve --check-config refuses the keys otpd serve would refuse, with
// the other problems at once, touching nothing; a key otpd serve would
// generate on first start is no problem.
func TestCheckConfigChecksTheKeys(t *testing.T) {
	for _, v := range []string{"OTPD_HMAC_KEY", "OTPD_HMAC_KEY_FILE", "OTPD_ACCESS_KEY_ID", "OTPD_SECRET_ACCESS_KEY", "OTPD_ACCESS_KEYS_FILE"} {
		t.Setenv(v, "")
	}
	dir := filepath.Join(t.TempDir(), "data")
	check := func(args ...string) error {
		t.Helper()
		return runServe(append([]string{"--check-config", "--data-dir", dir, "--log-level", "error"}, args...))
	}
	if err := check(); err != nil {
		t.Errorf("--check-config with keys to generate: %v, want none", err)
	}
	notHex := filepath.Join(t.TempDir(), "hmac")
	if err := os.WriteFile(notHex, []byte("nothex\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		env  map[string]string
		want []string
	}{
		{map[string]string{"OTPD_ACCESS_KEY_ID": "OTPDKEY", "OTPD_SECRET_ACCESS_KEY": "short", "OTPD_HMAC_KEY_FILE": filepath.Join(t.TempDir(), "missing")},
			[]string{"OTPD_SECRET_ACCESS_KEY: the secret access key must be at least 16 characters", "OTPD_HMAC_KEY_FILE: open ", "--send-timeout 1m0s"}},
		{map[string]string{"OTPD_ACCESS_KEY_ID": "OTPD/KEY", "OTPD_SECRET_ACCESS_KEY": testSecretKey},
			[]string{"OTPD_ACCESS_KEY_ID: the access key ID holds '/' at character 5", "--send-timeout 1m0s"}},
		{map[string]string{"OTPD_ACCESS_KEY_ID": testAccessKeyID, "OTPD_SECRET_ACCESS_KEY": testSecretKey, "OTPD_ACCESS_KEYS_FILE": notHex},
			[]string{"OTPD_ACCESS_KEYS_FILE and OTPD_ACCESS_KEY_ID/OTPD_SECRET_ACCESS_KEY are both set", "--send-timeout 1m0s"}},
		{map[string]string{"OTPD_ACCESS_KEYS_FILE": notHex},
			[]string{"OTPD_ACCESS_KEYS_FILE: " + notHex + ": line 1: want a [profile] or a setting", "--send-timeout 1m0s"}},
		{map[string]string{"OTPD_ACCESS_KEYS_FILE": filepath.Dir(notHex)},
			[]string{"OTPD_ACCESS_KEYS_FILE: " + filepath.Dir(notHex) + " is a directory, not a regular file", "--send-timeout 1m0s"}},
		{map[string]string{"OTPD_ACCESS_KEY_ID": "OTPDKEY", "OTPD_HMAC_KEY_FILE": notHex},
			[]string{"set both OTPD_ACCESS_KEY_ID and OTPD_SECRET_ACCESS_KEY, or neither", "OTPD_HMAC_KEY_FILE " + notHex + ": want hex", "--send-timeout 1m0s"}},
	} {
		for k, v := range tc.env {
			t.Setenv(k, v)
		}
		err := check("--send-timeout", "60s")
		for _, want := range tc.want {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("--check-config with %v: %v, want %q among the problems", tc.env, err, want)
			}
		}
		// otpd serve refuses the same settings, before it starts (the key
		// file it reads later, once: see TestHMACKeyFileIsReadOnce).
		err = runServe([]string{"--data-dir", dir, "--log-level", "error", "--addr", "127.0.0.1:0", "--send-timeout", "60s"})
		for _, want := range tc.want {
			if strings.HasPrefix(want, "OTPD_HMAC_KEY_FILE") || strings.HasPrefix(want, "OTPD_ACCESS_KEYS_FILE: ") {
				continue
			}
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("otpd serve with %v: %v, want %q among the problems", tc.env, err, want)
			}
		}
		for k := range tc.env {
			t.Setenv(k, "")
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("--check-config touched the data directory (stat: %v)", err)
	}
	// otpd serve reads OTPD_ACCESS_KEYS_FILE when it starts, and refuses
	// one that holds no pair, naming it.
	t.Setenv("OTPD_ACCESS_KEYS_FILE", notHex)
	err := runServe([]string{"--data-dir", t.TempDir(), "--log-level", "error", "--addr", "127.0.0.1:0"})
	if want := "OTPD_ACCESS_KEYS_FILE: " + notHex + ": line 1: want a [profile] or a setting"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("otpd serve with a broken OTPD_ACCESS_KEYS_FILE: %v, want %q", err, want)
	}
	t.Setenv("OTPD_ACCESS_KEYS_FILE", "")
	// Keys in the data directory that otpd serve could not read.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, hmacKeyFileName), []byte("nothex\n"), 0o600)
	os.WriteFile(filepath.Join(dir, credentialsFileName), []byte("[otpd]\n"), 0o600)
	err = check()
	for _, want := range []string{"code hashing key: " + filepath.Join(dir, hmacKeyFileName) + ": want hex", "access key pairs: " + filepath.Join(dir, credentialsFileName) + ": no key pair"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("--check-config with broken keys in the data directory: %v, want %q among the problems", err, want)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("--check-config left %d files in the data directory, want the 2 there were", len(entries))
	}
}

// A PostgreSQL store whose schema is dropped under a running server (and
// created again, empty) answers, but every request fails: the server
// reports itself not ready, logging why once, until the store can be read
// again.
func TestDroppedSchemaMakesARunningServerUnready(t *testing.T) {
	store := freshPostgres(t)
	t.Setenv("OTPD_HMAC_KEY", testHMACKey)
	t.Setenv("OTPD_HMAC_KEY_FILE", "")
	var logs lockedBuffer
	ts := startServerLogging(t, func(c *config) { c.Store = store }, slog.New(slog.NewTextHandler(&logs, nil)))
	readyz := func() (int, string) { return readyzAfterRecheck(t, ts) }
	if status, body := readyz(); status != http.StatusOK {
		t.Fatalf("/readyz at start: %d %s", status, body)
	}
	_, schema, _ := strings.Cut(store, "search_path=")
	conn, err := pgx.Connect(t.Context(), postgresTestURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), "DROP SCHEMA "+schema+" CASCADE; CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if status, body := readyz(); status != http.StatusServiceUnavailable || !strings.Contains(body, "cannot read") {
			t.Errorf("/readyz once the schema is gone: %d %s, want 503 saying the store cannot be read", status, body)
		}
	}
	var probes []string
	for line := range strings.Lines(logs.tail(1 << 20)) {
		if strings.Contains(line, "operation=Readyz") {
			probes = append(probes, line)
		}
	}
	if len(probes) != 1 || !strings.Contains(probes[0], `relation \"settings\" does not exist`) {
		t.Errorf("want the first failing probe logged with its cause, and no other: %q", probes)
	}
	// The schema made again (as any otpd opening the store does): ready,
	// the server's key recorded again.
	st, err := openSharedStore(t.Context(), store)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	if status, body := readyz(); status != http.StatusOK {
		t.Errorf("/readyz once the schema is back: %d %s, want 200", status, body)
	}
	if !strings.Contains(logs.tail(1<<20), "ready again") {
		t.Errorf("no \"ready again\" in the log:\n%s", logs.tail(1<<20))
	}
	if held, err := ts.srv.store.HeldKeyCheck(t.Context()); err != nil || held != ts.srv.keys.check {
		t.Errorf("the store's check once the schema is back = %q, %v; want the server's own recorded again", held, err)
	}
}

// blipStore fails HeldKeyCheck as many times as failures says, then
// answers; Ping always answers.
type blipStore struct {
	storage.Store
	failures atomic.Int32
}

func (s *blipStore) Ping(context.Context) error { return nil }

func (s *blipStore) HeldKeyCheck(context.Context) (string, error) {
	if s.failures.Add(-1) >= 0 {
		return "", errors.New("a blip")
	}
	return "v1:check", nil
}

// A key check that a recheck could not read but the next probe can (a
// brief blip) fails no probe; one that a probe cannot read either does.
func TestKeyCheckBlipDoesNotMakeUnready(t *testing.T) {
	st := &blipStore{}
	w := &keyWatch{st: st, check: "v1:check", log: slog.New(slog.DiscardHandler)}
	st.failures.Store(1)
	w.recheck(t.Context())
	if err := w.ready(t.Context()); err != nil {
		t.Errorf("ready after a blip that has passed: %v, want nil", err)
	}
	st.failures.Store(2)
	w.recheck(t.Context())
	var notReady *pinpointapi.NotReady
	if err := w.ready(t.Context()); !errors.As(err, &notReady) || !strings.Contains(err.Error(), "a blip") {
		t.Errorf("ready while the check cannot be read: %v, want NotReady with the cause", err)
	}
	if err := w.ready(t.Context()); err != nil {
		t.Errorf("ready once the check can be read again: %v, want nil", err)
	}
}

// A flag wins over its variable: a malformed variable whose flag is given
// is no problem; one whose flag is not is named as the variable, and so is
// a value out of range that came from the environment.
func TestEnvironmentProblemsNameTheVariable(t *testing.T) {
	t.Setenv("OTPD_SEND_TIMEOUT", "abc")
	t.Setenv("OTPD_FAILURE_LIMIT", "0")
	t.Setenv("OTPD_PURGE_INTERVAL", "10ms")
	t.Setenv("OTPD_MAX_BODY_BYTES", "lots")
	t.Setenv("OTPD_LOG_LEVEL", "loud")
	parse := func(args ...string) error {
		t.Helper()
		var cfg config
		fs := newFlagSet("serve", "")
		serveFlags(fs, &cfg)
		if err := fs.Parse(append([]string{"--data-dir", t.TempDir()}, args...)); err != nil {
			t.Fatal(err)
		}
		return cfg.validate()
	}
	err := parse("--send-timeout", "5s", "--failure-limit", "3", "--max-body-bytes", "100")
	if err == nil {
		t.Fatal("want problems")
	}
	got := err.Error()
	for _, want := range []string{`OTPD_PURGE_INTERVAL="10ms": want at least 1s`, `OTPD_LOG_LEVEL="loud": want debug`, "--max-body-bytes 100: want at least 1024"} {
		if !strings.Contains(got, want) {
			t.Errorf("the problems lack %q:\n%s", want, got)
		}
	}
	for _, notWant := range []string{"OTPD_SEND_TIMEOUT", "send-timeout", "failure-limit", "OTPD_FAILURE_LIMIT", "OTPD_MAX_BODY_BYTES", "--purge-interval", "--log-level"} {
		if strings.Contains(got, notWant) {
			t.Errorf("the problems name %s, which the flag overrides or the environment set:\n%s", notWant, got)
		}
	}
	if err := parse(); err == nil || !strings.Contains(err.Error(), `OTPD_SEND_TIMEOUT="abc": want a duration`) ||
		!strings.Contains(err.Error(), `OTPD_FAILURE_LIMIT="0": want at least 1`) || !strings.Contains(err.Error(), `OTPD_MAX_BODY_BYTES="lots": want an integer`) {
		t.Errorf("without the flags: %v, want the variables named", err)
	}
}

// readyzAfterRecheck has ts's key watch read the store's key check, as its
// 10 s timer would, and returns /readyz's answer.
func readyzAfterRecheck(t *testing.T, ts *testServer) (int, string) {
	t.Helper()
	ts.srv.keys.recheck(t.Context())
	resp, err := http.Get(ts.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestHMACKeyFileIsReadOnce: OTPD_HMAC_KEY_FILE may name a pipe (a process
// substitution, /dev/stdin), which gives its content to one read only: the
// settings' check must leave it to loadHMACKey.
func TestHMACKeyFileIsReadOnce(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "hmac.key")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("OTPD_HMAC_KEY", "")
	t.Setenv("OTPD_HMAC_KEY_FILE", fifo)
	go func() {
		w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		if err != nil {
			t.Error(err)
			return
		}
		defer w.Close()
		io.WriteString(w, testHMACKey+"\n")
	}()
	cfg := testConfig(t.TempDir())
	if err := cfg.validate(); err != nil {
		t.Fatalf("validate: %v", err)
	}
	type loaded struct {
		key    []byte
		source string
		err    error
	}
	done := make(chan loaded, 1)
	go func() {
		key, source, _, err := loadHMACKey(cfg.DataDir)
		done <- loaded{key, source, err}
	}()
	var got loaded
	select {
	case got = <-done:
	case <-time.After(10 * time.Second):
		// Had validate read the pipe, loadHMACKey waits for a writer that
		// will never come: be that writer, with nothing to say.
		if w, err := os.OpenFile(fifo, os.O_WRONLY, 0); err == nil {
			w.Close()
		}
		got = <-done
	}
	if got.err != nil || hex.EncodeToString(got.key) != testHMACKey || got.source != fifo {
		t.Errorf("loadHMACKey after validate = %x, %q, %v; want the pipe's key", got.key, got.source, got.err)
	}
}
