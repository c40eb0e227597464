package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/otpd/otpd/internal/storage"
	"github.com/otpd/otpd/internal/storage/storagetest"
)

// defaultTestURL is the server the tests use unless OTPD_TEST_POSTGRES_URL
// names another.
const defaultTestURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// testURL returns the URL of the test server.
func testURL() string {
	if u := os.Getenv("OTPD_TEST_POSTGRES_URL"); u != "" {
		return u
	}
	return defaultTestURL
}

// redacted returns u with its password masked, for messages.
func redacted(u string) string {
	if p, err := url.Parse(u); err == nil {
		return p.Redacted()
	}
	return "(an unparsable URL)"
}

var (
	probeOnce sync.Once
	probeErr  error
)

// requireServer skips tb, or fails it when CI=true, if the test server does
// not answer. The server is probed once per test binary.
func requireServer(tb testing.TB) {
	tb.Helper()
	probeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := adminConnect(ctx)
		if err != nil {
			probeErr = err
			return
		}
		probeErr = conn.Close(ctx)
	})
	if probeErr == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		tb.Fatalf("PostgreSQL at %s is required in CI (set OTPD_TEST_POSTGRES_URL): %v", redacted(testURL()), probeErr)
	}
	tb.Skipf("PostgreSQL at %s does not answer (set OTPD_TEST_POSTGRES_URL to run these tests): %v", redacted(testURL()), probeErr)
}

// adminConnect opens a connection to the test server, ignoring the pool
// settings of its URL.
func adminConnect(ctx context.Context) (*pgx.Conn, error) {
	cfg, err := pgxpool.ParseConfig(testURL())
	if err != nil {
		return nil, err
	}
	return pgx.ConnectConfig(ctx, cfg.ConnConfig)
}

// adminExec runs sql on a connection of its own to the test server.
func adminExec(tb testing.TB, sql string, args ...any) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := adminConnect(ctx)
	if err != nil {
		tb.Fatalf("connect to %s: %v", redacted(testURL()), err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		tb.Fatalf("%s: %v", sql, err)
	}
}

// freshDatabase creates an empty schema, dropped when tb ends, and returns
// the test server's URL with search_path set to it: a fresh, empty database
// for the Stores opened on that URL.
func freshDatabase(tb testing.TB) string {
	tb.Helper()
	requireServer(tb)
	schema := "otpd_test_" + hex.EncodeToString(randomBytes(8))
	ident := pgx.Identifier{schema}.Sanitize()
	adminExec(tb, "CREATE SCHEMA "+ident)
	tb.Cleanup(func() { adminExec(tb, "DROP SCHEMA "+ident+" CASCADE") })
	return withParams(tb, testURL(), map[string]string{"search_path": schema})
}

// withParams returns the URL u with the query parameters set.
func withParams(tb testing.TB, u string, params map[string]string) string {
	tb.Helper()
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "postgres" && p.Scheme != "postgresql") {
		tb.Fatalf("OTPD_TEST_POSTGRES_URL must be a postgres:// URL, got %s", redacted(u))
	}
	q := p.Query()
	for k, v := range params {
		q.Set(k, v)
	}
	p.RawQuery = q.Encode()
	return p.String()
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// openStore opens a Store on u and closes it when tb ends.
func openStore(tb testing.TB, u string) *Store {
	tb.Helper()
	s, err := Open(tb.Context(), u)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	requireServer(t)
	storagetest.Run(t, func(t *testing.T) storage.Store {
		return openStore(t, freshDatabase(t))
	})
}

func TestConformanceShared(t *testing.T) {
	requireServer(t)
	storagetest.RunShared(t, func(t *testing.T) (a, b storage.Store) {
		u := freshDatabase(t)
		return openStore(t, u), openStore(t, u)
	})
}

func BenchmarkStore(b *testing.B) {
	requireServer(b)
	storagetest.Bench(b, func(b *testing.B) storage.Store {
		return openStore(b, freshDatabase(b))
	})
}

// schemaVersions returns the versions recorded in schema_migrations.
func schemaVersions(t *testing.T, s *Store) []int {
	t.Helper()
	rows, err := s.pool.Query(t.Context(), `SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatalf("read schema_migrations: %v", err)
	}
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		t.Fatalf("read schema_migrations: %v", err)
	}
	return versions
}

// allVersions returns 1 … len(migrations).
func allVersions() []int {
	var want []int
	for v := range migrations {
		want = append(want, v+1)
	}
	return want
}

func TestMigrationsAreVersionedAndIdempotent(t *testing.T) {
	u := freshDatabase(t)
	app := storage.App{ID: strings.Repeat("a", 32), Name: "kept", Generation: "g"}
	first, err := Open(t.Context(), u)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if got := schemaVersions(t, first); fmt.Sprint(got) != fmt.Sprint(allVersions()) {
		t.Errorf("versions after the first Open = %v, want %v", got, allVersions())
	}
	if err := first.CreateApp(t.Context(), app); err != nil {
		t.Fatalf("CreateApp: %v", err)
	}
	if err := first.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	again := openStore(t, u)
	if got := schemaVersions(t, again); fmt.Sprint(got) != fmt.Sprint(allVersions()) {
		t.Errorf("versions after reopening = %v, want %v", got, allVersions())
	}
	if _, err := again.GetApp(t.Context(), app.ID); err != nil {
		t.Errorf("GetApp after reopening: %v", err)
	}
}

func TestConcurrentOpensMigrateOnce(t *testing.T) {
	u := freshDatabase(t)
	const n = 4
	stores := make([]*Store, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			stores[i], errs[i] = Open(t.Context(), u)
		})
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Errorf("Open %d of %d at once: %v", i+1, n, errs[i])
			continue
		}
		t.Cleanup(func() { stores[i].Close() })
	}
	if t.Failed() {
		return
	}
	if got := schemaVersions(t, stores[0]); fmt.Sprint(got) != fmt.Sprint(allVersions()) {
		t.Errorf("versions after %d concurrent Opens = %v, want %v", n, got, allVersions())
	}
	// Every handle works on the one schema.
	app := storage.App{ID: strings.Repeat("b", 32), Name: "shared", Generation: "g"}
	if err := stores[1].CreateApp(t.Context(), app); err != nil {
		t.Fatalf("CreateApp: %v", err)
	}
	for i, s := range stores {
		if _, err := s.GetApp(t.Context(), app.ID); err != nil {
			t.Errorf("GetApp on handle %d: %v", i, err)
		}
	}
}

// TestMigrationUpgradesAVersion1Schema rolls a schema back to version 1
// (before the message records and the settings) and checks that Open
// upgrades it, keeping its data.
func TestMigrationUpgradesAVersion1Schema(t *testing.T) {
	u := freshDatabase(t)
	s, err := Open(t.Context(), u)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	app := storage.App{ID: strings.Repeat("c", 32), Name: "kept", Generation: "g"}
	if err := s.CreateApp(t.Context(), app); err != nil {
		t.Fatalf("CreateApp: %v", err)
	}
	for _, q := range []string{`DROP TABLE messages`, `DROP TABLE settings`, `DELETE FROM schema_migrations WHERE version > 1`} {
		if _, err := s.pool.Exec(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = openStore(t, u)
	if got := schemaVersions(t, s); fmt.Sprint(got) != fmt.Sprint(allVersions()) {
		t.Errorf("versions after the upgrade = %v, want %v", got, allVersions())
	}
	if _, err := s.GetApp(t.Context(), app.ID); err != nil {
		t.Errorf("GetApp after the upgrade: %v", err)
	}
	m := storage.MessageRecord{MessageID: "m", AppID: app.ID, Carrier: "c", CarrierMessageID: "x", Status: storage.MessageSubmitted}
	c := storage.Code{Key: storage.CodeKey{AppID: app.ID, Destination: "+15550000001", ReferenceID: "ref"}, AppGeneration: app.Generation, MAC: []byte("mac"), AllowedAttempts: 3}
	if err := s.RecordSend(t.Context(), storage.SendRecord{Code: &c, Message: &m}); err != nil {
		t.Fatalf("RecordSend after the upgrade: %v", err)
	}
	if got, err := s.UpdateMessageStatus(t.Context(), "c", "x", storage.MessageStatusUpdate{Status: storage.MessageDelivered}); err != nil || got.Status != storage.MessageDelivered {
		t.Errorf("UpdateMessageStatus after the upgrade = %+v, %v", got, err)
	}
	if held, recorded, err := s.KeyCheck(t.Context(), "check", false); err != nil || held != "check" || !recorded {
		t.Errorf("KeyCheck after the upgrade = %q, recorded %v, %v; want check, recorded", held, recorded, err)
	}
}

func TestNewerSchemaIsRefused(t *testing.T) {
	u := freshDatabase(t)
	s, err := Open(t.Context(), u)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	newer := len(migrations) + 1
	if _, err := s.pool.Exec(t.Context(), `INSERT INTO schema_migrations (version) VALUES ($1)`, newer); err != nil {
		t.Fatalf("record a newer version: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	again, err := Open(t.Context(), u)
	if err == nil {
		again.Close()
		t.Fatal("Open of a newer schema succeeded, want an error")
	}
	for _, want := range []string{fmt.Sprintf("schema version %d", newer), "newer", "upgrade otpd"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Open of a newer schema: error %q, want it to say %q", err, want)
		}
	}
}

func TestParseConfigDefaults(t *testing.T) {
	cfg, err := parseConfig("postgres://otpd@db.example:5432/otpd")
	if err != nil {
		t.Fatalf("parseConfig: %v", err)
	}
	cc := cfg.ConnConfig
	if cc.ConnectTimeout != DefaultConnectTimeout {
		t.Errorf("ConnectTimeout = %v, want the default %v", cc.ConnectTimeout, DefaultConnectTimeout)
	}
	if want := max(DefaultMaxConns, int32(runtime.NumCPU())); cfg.MaxConns != want {
		t.Errorf("MaxConns = %d, want the default %d", cfg.MaxConns, want)
	}
	if got := cc.RuntimeParams["application_name"]; got != "otpd" {
		t.Errorf("application_name = %q, want otpd", got)
	}
	if got := cc.RuntimeParams["default_transaction_isolation"]; got != "read committed" {
		t.Errorf("default_transaction_isolation = %q, want read committed", got)
	}

	cfg, err = parseConfig("postgres://otpd@db.example:5432/otpd?connect_timeout=2&pool_max_conns=7&pool_max_conn_lifetime=5m&application_name=edge")
	if err != nil {
		t.Fatalf("parseConfig: %v", err)
	}
	if got := cfg.ConnConfig.ConnectTimeout; got != 2*time.Second {
		t.Errorf("ConnectTimeout = %v, want the URL's 2s", got)
	}
	if cfg.MaxConns != 7 || cfg.MaxConnLifetime != 5*time.Minute {
		t.Errorf("MaxConns, MaxConnLifetime = %d, %v; want the URL's 7, 5m", cfg.MaxConns, cfg.MaxConnLifetime)
	}
	if got := cfg.ConnConfig.RuntimeParams["application_name"]; got != "edge" {
		t.Errorf("application_name = %q, want the URL's edge", got)
	}
}

func TestOpenErrorsHideThePassword(t *testing.T) {
	const password = "s3cret-pw"
	for _, u := range []string{
		"postgres://otpd:" + password + "@127.0.0.1:notaport/otpd",
		"postgres://otpd:" + password + "@127.0.0.1:1/otpd?sslmode=disable", // nothing listens on port 1
	} {
		s, err := Open(t.Context(), u)
		if err == nil {
			s.Close()
			t.Errorf("Open(%s) succeeded, want an error", redacted(u))
			continue
		}
		if strings.Contains(err.Error(), password) {
			t.Errorf("Open(%s): error %q shows the password", redacted(u), err)
		}
	}
}

func TestInvalidArgumentsAreErrors(t *testing.T) {
	s := openStore(t, freshDatabase(t))
	if _, err := s.VerifyCode(t.Context(), storage.Verification{Budget: storage.FailureBudget{Window: time.Hour}}); err == nil {
		t.Error("VerifyCode with a zero budget limit succeeded, want an error")
	}
	if _, err := s.DestinationLockout(t.Context(), "app", "gen", "+15550000001", time.Now(), storage.FailureBudget{}); err == nil {
		t.Error("DestinationLockout with a zero budget limit succeeded, want an error")
	}
	if _, err := s.Purge(t.Context(), time.Now(), storage.Retention{}); err == nil {
		t.Error("Purge with a zero batch size succeeded, want an error")
	}
}

func TestRecordSendNeedsItsApplication(t *testing.T) {
	s := openStore(t, freshDatabase(t))
	app := storage.App{ID: strings.Repeat("a", 32), Name: "first", Generation: "g1"}
	if err := s.CreateApp(t.Context(), app); err != nil {
		t.Fatalf("CreateApp: %v", err)
	}
	c := storage.Code{
		Key:           storage.CodeKey{AppID: app.ID, Destination: "+15550000001", ReferenceID: "ref"},
		AppGeneration: "g0", MAC: []byte("mac"), AllowedAttempts: 3,
	}
	if err := s.RecordSend(t.Context(), storage.SendRecord{Code: &c}); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("RecordSend under another generation: error %v, want %v", err, storage.ErrNotFound)
	}
	c.Key.AppID = strings.Repeat("b", 32)
	if err := s.RecordSend(t.Context(), storage.SendRecord{Code: &c}); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("RecordSend of a missing application: error %v, want %v", err, storage.ErrNotFound)
	}
}

func TestApplicationNumbersAreNeverReused(t *testing.T) {
	s := openStore(t, freshDatabase(t))
	app := storage.App{ID: strings.Repeat("a", 32), Name: "first", Generation: "g1"}
	var nums []int64
	for range 2 {
		if err := s.CreateApp(t.Context(), app); err != nil {
			t.Fatalf("CreateApp: %v", err)
		}
		var num int64
		if err := s.pool.QueryRow(t.Context(), `SELECT num FROM apps WHERE id = $1`, app.ID).Scan(&num); err != nil {
			t.Fatalf("read the application number: %v", err)
		}
		nums = append(nums, num)
		if _, err := s.DeleteApp(t.Context(), app.ID); err != nil {
			t.Fatalf("DeleteApp: %v", err)
		}
	}
	if nums[0] == nums[1] {
		t.Errorf("a re-created application got number %d again, want a new one", nums[1])
	}
}

// TestDeleteAppRacesVerifyAndRecordSend deletes an application while codes
// of it are being verified and stored, from two handles: nothing may
// deadlock or fail (but RecordSend with storage.ErrNotFound once the
// application is gone), and nothing of the application may survive the
// deletion.
func TestDeleteAppRacesVerifyAndRecordSend(t *testing.T) {
	u := freshDatabase(t)
	a, b := openStore(t, u), openStore(t, u)
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	budget := storage.FailureBudget{Limit: 1000, Window: time.Hour}
	for round := range 10 {
		app := storage.App{ID: strings.Repeat("c", 32), Name: "raced", Generation: fmt.Sprintf("g%d", round)}
		if err := a.CreateApp(t.Context(), app); err != nil {
			t.Fatalf("CreateApp: %v", err)
		}
		code := func(i int) storage.Code {
			return storage.Code{
				Key:           storage.CodeKey{AppID: app.ID, Destination: fmt.Sprintf("+1555000%04d", i%4), ReferenceID: fmt.Sprintf("ref-%d", i%8)},
				AppGeneration: app.Generation, MAC: []byte("right"), AllowedAttempts: 5,
				CreatedAt: now, ExpiresAt: now.Add(time.Hour),
			}
		}
		for i := range 8 {
			c := code(i)
			if err := a.RecordSend(t.Context(), storage.SendRecord{Code: &c}); err != nil {
				t.Fatalf("RecordSend: %v", err)
			}
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		for g := range 24 {
			s := a
			if g%2 == 1 {
				s = b
			}
			wg.Go(func() {
				<-start
				for i := range 20 {
					c := code(g + i)
					if g%3 == 0 {
						if err := s.RecordSend(t.Context(), storage.SendRecord{Code: &c}); err != nil && !errors.Is(err, storage.ErrNotFound) {
							t.Errorf("RecordSend during DeleteApp: %v", err)
						}
						continue
					}
					v := storage.Verification{Key: c.Key, AppGeneration: c.AppGeneration, Now: now, Budget: budget,
						Matches: func(mac []byte) bool { return i%4 == 0 && string(mac) == "right" }}
					if _, err := s.VerifyCode(t.Context(), v); err != nil {
						t.Errorf("VerifyCode during DeleteApp: %v", err)
					}
				}
			})
		}
		wg.Go(func() {
			<-start
			time.Sleep(time.Duration(round) * time.Millisecond)
			if _, err := b.DeleteApp(t.Context(), app.ID); err != nil {
				t.Errorf("DeleteApp: %v", err)
			}
		})
		close(start)
		wg.Wait()
		if t.Failed() {
			return
		}
		var codes, failures int
		err := a.pool.QueryRow(t.Context(), `SELECT (SELECT count(*) FROM codes), (SELECT count(*) FROM failures)`).Scan(&codes, &failures)
		if err != nil {
			t.Fatalf("count what is left: %v", err)
		}
		if codes != 0 || failures != 0 {
			t.Fatalf("round %d: %d codes and %d failures outlived DeleteApp, want none", round, codes, failures)
		}
	}
}

// TestBytesPerCode measures the space a live code takes, indexes included,
// with realistic keys: a UUID ReferenceId and a 32-character generation. The
// codes are stored by RecordSend's statement, in one pipelined batch:
// RecordSends from many connections at once would make PostgreSQL extend the table by
// many pages ahead, which a small table never fills.
func TestBytesPerCode(t *testing.T) {
	s := openStore(t, freshDatabase(t))
	app := storage.App{ID: "0123456789abcdef0123456789abcdef", Name: "sized", Generation: "fedcba9876543210fedcba9876543210"}
	if err := s.CreateApp(t.Context(), app); err != nil {
		t.Fatalf("CreateApp: %v", err)
	}
	const codes = 10000
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	b := &pgx.Batch{}
	for i := range codes {
		b.Queue(putCode, app.ID, app.Generation, now, now.Add(time.Duration(i%600)*time.Second), 3,
			fmt.Sprintf("+4477009%05d", i), fmt.Sprintf("%08x-1234-4567-89ab-cdef01234567", i*7919), make([]byte, 32))
	}
	if err := s.pool.SendBatch(t.Context(), b).Close(); err != nil {
		t.Fatalf("store %d codes: %v", codes, err)
	}
	var heap, total int64
	err := s.pool.QueryRow(t.Context(), `SELECT pg_relation_size('codes'), pg_total_relation_size('codes')`).Scan(&heap, &total)
	if err != nil {
		t.Fatalf("read the size of codes: %v", err)
	}
	perCode := float64(total) / codes
	t.Logf("%d codes take %d bytes (table %d, indexes %d): %.0f bytes per code", codes, total, heap, total-heap, perCode)
	if perCode >= 400 {
		t.Errorf("%.0f bytes per live code, want under 400", perCode)
	}
}

// TestPurgeSparesCodesReplacedMeanwhile replaces expired codes with live
// ones while Purge deletes expired codes, from two handles: every
// replacement must survive.
func TestPurgeSparesCodesReplacedMeanwhile(t *testing.T) {
	u := freshDatabase(t)
	a, b := openStore(t, u), openStore(t, u)
	base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	app := storage.App{ID: strings.Repeat("d", 32), Name: "purged", Generation: "g"}
	if err := a.CreateApp(t.Context(), app); err != nil {
		t.Fatalf("CreateApp: %v", err)
	}
	const codes = 400
	code := func(i int, mac string, expiresAt time.Time) storage.Code {
		return storage.Code{
			Key:           storage.CodeKey{AppID: app.ID, Destination: fmt.Sprintf("+1555%07d", i), ReferenceID: "ref"},
			AppGeneration: app.Generation, MAC: []byte(mac), AllowedAttempts: 3, CreatedAt: base, ExpiresAt: expiresAt,
		}
	}
	for i := range codes {
		c := code(i, "old", base)
		if err := a.RecordSend(t.Context(), storage.SendRecord{Code: &c}); err != nil {
			t.Fatalf("RecordSend: %v", err)
		}
	}
	now := base.Add(storage.ExpiredCodeKept + time.Minute) // the old codes are due
	retention := storage.Retention{BatchSize: 7, FailureWindow: time.Hour, OutboxMaxAge: time.Hour, OutboxMaxMessages: 100}
	var (
		wg       sync.WaitGroup
		replaced = make(chan struct{})
	)
	for g := range 8 {
		wg.Go(func() {
			for i := g; i < codes; i += 8 {
				c := code(i, "new", now.Add(time.Hour))
				if err := a.RecordSend(t.Context(), storage.SendRecord{Code: &c}); err != nil {
					t.Errorf("RecordSend: %v", err)
				}
			}
		})
	}
	var purgers sync.WaitGroup
	for range 2 {
		purgers.Go(func() {
			for {
				select {
				case <-replaced:
					return
				default:
				}
				if _, err := b.Purge(t.Context(), now, retention); err != nil {
					t.Errorf("Purge: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(replaced)
	purgers.Wait()
	for i := range codes {
		c := code(i, "new", now.Add(time.Hour))
		v := storage.Verification{Key: c.Key, AppGeneration: c.AppGeneration, Now: now,
			Budget: storage.FailureBudget{Limit: 10, Window: time.Hour}, Matches: func(mac []byte) bool { return string(mac) == "new" }}
		if got, err := a.VerifyCode(t.Context(), v); err != nil || got != storage.OutcomeValid {
			t.Fatalf("code %d, replaced while Purge ran: VerifyCode = %q, %v; want %q", i, got, err, storage.OutcomeValid)
		}
	}
}

// TestPurgeSkipsLockedRows holds the row lock of an expired code, as a
// verification does, and checks that Purge neither waits for it nor deletes
// it, and deletes the rest.
func TestPurgeSkipsLockedRows(t *testing.T) {
	s := openStore(t, freshDatabase(t))
	base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	app := storage.App{ID: strings.Repeat("e", 32), Name: "locked", Generation: "g"}
	if err := s.CreateApp(t.Context(), app); err != nil {
		t.Fatalf("CreateApp: %v", err)
	}
	for i := range 3 {
		c := storage.Code{
			Key:           storage.CodeKey{AppID: app.ID, Destination: "+15550000001", ReferenceID: fmt.Sprintf("ref-%d", i)},
			AppGeneration: app.Generation, MAC: []byte("mac"), AllowedAttempts: 3, CreatedAt: base, ExpiresAt: base,
		}
		if err := s.RecordSend(t.Context(), storage.SendRecord{Code: &c}); err != nil {
			t.Fatalf("RecordSend: %v", err)
		}
	}
	tx, err := s.pool.Begin(t.Context())
	if err != nil {
		t.Fatalf("Begin: %v", err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(t.Context(), `SELECT 1 FROM codes WHERE reference_id = 'ref-1' FOR UPDATE`); err != nil {
		t.Fatalf("lock a code: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	now := base.Add(storage.ExpiredCodeKept + time.Minute)
	n, err := s.Purge(ctx, now, storage.Retention{BatchSize: 10})
	if err != nil {
		t.Fatalf("Purge while a code is locked: %v", err)
	}
	if n != 2 {
		t.Errorf("Purge while one of 3 expired codes is locked deleted %d, want 2", n)
	}
	if err := tx.Rollback(t.Context()); err != nil {
		t.Fatalf("Rollback: %v", err)
	}
	if n, err := s.Purge(t.Context(), now, storage.Retention{BatchSize: 10}); err != nil || n != 1 {
		t.Errorf("Purge once the lock is gone = %d, %v; want 1, nil", n, err)
	}
}

// TestRecordSendWaitingOnDeleteAppIsErrNotFound runs RecordSend while a
// deletion of its application is under way and not yet committed:
// RecordSend waits for it (the foreign key check), and once it commits,
// answers storage.ErrNotFound and stores nothing: no code, no message
// record, no send record.
func TestRecordSendWaitingOnDeleteAppIsErrNotFound(t *testing.T) {
	name := "otpd_test_" + hex.EncodeToString(randomBytes(6))
	s := openStore(t, withParams(t, freshDatabase(t), map[string]string{"application_name": name}))
	app := storage.App{ID: strings.Repeat("f", 32), Name: "deleted", Generation: "g", Tags: map[string]string{}}
	if err := s.CreateApp(t.Context(), app); err != nil {
		t.Fatalf("CreateApp: %v", err)
	}
	tx, err := s.pool.Begin(t.Context())
	if err != nil {
		t.Fatalf("Begin: %v", err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(t.Context(), `DELETE FROM apps WHERE id = $1`, app.ID); err != nil {
		t.Fatalf("delete the app: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
		done <- s.RecordSend(t.Context(), storage.SendRecord{
			Code: &storage.Code{
				Key:           storage.CodeKey{AppID: app.ID, Destination: "+15550000001", ReferenceID: "ref"},
				AppGeneration: app.Generation, MAC: []byte("mac"), AllowedAttempts: 3, CreatedAt: now, ExpiresAt: now.Add(time.Hour),
			},
			Message: &storage.MessageRecord{MessageID: "m", AppID: app.ID, Carrier: "c", CarrierMessageID: "x",
				DestinationIdentity: "+15550000001", ReferenceID: "ref", Status: storage.MessageSubmitted, CreatedAt: now, UpdatedAt: now},
			Completion: &storage.SendCompletion{AppID: app.ID, Key: "inv-1", Result: []byte("result"), ExpiresAt: now.Add(10 * time.Minute)},
		})
	}()
	// Wait until RecordSend waits for the deletion's row lock. (Not inside tx:
	// a transaction sees pg_stat_activity as it was when it first looked.)
	for deadline := time.Now().Add(10 * time.Second); ; {
		var waiting int
		err := s.pool.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity
			WHERE application_name = $1 AND wait_event_type = 'Lock'`, name).Scan(&waiting)
		if err != nil {
			t.Fatalf("read pg_stat_activity: %v", err)
		}
		if waiting > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("RecordSend did not wait for the uncommitted deletion of its application")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := tx.Commit(t.Context()); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if err := <-done; !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("RecordSend racing DeleteApp: error %v, want %v", err, storage.ErrNotFound)
	}
	var codes, messages, sends int
	err = s.pool.QueryRow(t.Context(), `SELECT (SELECT count(*) FROM codes), (SELECT count(*) FROM messages), (SELECT count(*) FROM sends)`).
		Scan(&codes, &messages, &sends)
	if err != nil {
		t.Fatalf("count what is stored: %v", err)
	}
	if codes != 0 || messages != 0 || sends != 0 {
		t.Errorf("%d codes, %d message records and %d send records stored for a deleted application, want none", codes, messages, sends)
	}
}

// TestOpenNeedsNoCreatePrivilegeOnceUpToDate opens an up-to-date schema as
// a role that may only read and write its tables, as a least-privileged
// otpd would.
func TestOpenNeedsNoCreatePrivilegeOnceUpToDate(t *testing.T) {
	u := freshDatabase(t)
	s, err := Open(t.Context(), u)
	if err != nil {
		t.Fatalf("Open to migrate: %v", err)
	}
	s.Close()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatalf("parse the URL: %v", err)
	}
	schema := pgx.Identifier{p.Query().Get("search_path")}.Sanitize()
	role := "otpd_test_role_" + hex.EncodeToString(randomBytes(6))
	adminExec(t, "CREATE ROLE "+role+" LOGIN")
	t.Cleanup(func() {
		adminExec(t, "DROP OWNED BY "+role)
		adminExec(t, "DROP ROLE "+role)
	})
	adminExec(t, "GRANT USAGE ON SCHEMA "+schema+" TO "+role)
	adminExec(t, "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "+schema+" TO "+role)
	p.User = url.User(role)
	limited, err := Open(t.Context(), p.String())
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && strings.HasPrefix(pgErr.Code, "28") {
		t.Skipf("the test server does not let the new role in without a password: %v", err)
	}
	if err != nil {
		t.Fatalf("Open as a role without CREATE: %v", err)
	}
	defer limited.Close()
	app := storage.App{ID: strings.Repeat("a", 32), Name: "limited", Generation: "g"}
	if err := limited.CreateApp(t.Context(), app); err != nil {
		t.Fatalf("CreateApp as a role without CREATE: %v", err)
	}
	if _, _, err := limited.KeyCheck(t.Context(), "check", false); err != nil {
		t.Fatalf("KeyCheck as a role without CREATE: %v", err)
	}
	// Once a check is there, reading the settings is enough.
	adminExec(t, "REVOKE INSERT, UPDATE, DELETE ON "+schema+".settings FROM "+role)
	if held, recorded, err := limited.KeyCheck(t.Context(), "check", false); err != nil || held != "check" || recorded {
		t.Fatalf("KeyCheck as a role that may only read the settings = %q, recorded %v, %v; want check, not recorded", held, recorded, err)
	}
}

// TestDurabilityRisk checks that synchronous_commit off, as a session may
// set it from the URL, is reported, and on is not.
func TestDurabilityRisk(t *testing.T) {
	u := freshDatabase(t)
	for mode, want := range map[string]string{"on": "", "local": "", "off": "(synchronous_commit off)"} {
		s := openStore(t, withParams(t, u, map[string]string{"synchronous_commit": mode}))
		risk, err := s.DurabilityRisk(t.Context())
		if err != nil {
			t.Fatalf("DurabilityRisk with synchronous_commit %s: %v", mode, err)
		}
		if (want == "") != (risk == "") || !strings.Contains(risk, want) {
			t.Errorf("DurabilityRisk with synchronous_commit %s = %q, want %q", mode, risk, want)
		}
	}
}

// TestPingRefusesReadOnlySessions: a database whose sessions are read-only
// (default_transaction_read_only, as on a replica promoted by hand or a
// database an operator froze) answers, but takes no writes: Ping, on which
// /readyz relies, says so.
func TestPingRefusesReadOnlySessions(t *testing.T) {
	u := freshDatabase(t)
	writable := openStore(t, u) // migrates the schema
	if err := writable.Ping(t.Context()); err != nil {
		t.Fatalf("Ping of a writable database: %v", err)
	}
	readOnly := openStore(t, withParams(t, u, map[string]string{"default_transaction_read_only": "on"}))
	if err := readOnly.Ping(t.Context()); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("Ping with read-only sessions = %v, want an error saying the sessions are read-only", err)
	}
}
