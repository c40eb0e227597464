//go:build linux

package sqlite

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/otpd/otpd/internal/storage"
)

// mountSmallFS mounts a tmpfs of size (as mount -o size= takes it) on a new
// directory, unmounted when t ends. Mounting needs root: elsewhere the test
// is skipped, and fails in CI, whose machine lets it run.
func mountSmallFS(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("mount a tmpfs of %s to fill (CI runs as root): %v", size, err)
		}
		t.Skipf("skipping: cannot mount a small tmpfs to fill (it needs root): %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir
}

// A disk that fills up fails the writes that find no room, with an error
// that says so, and makes the store not ready and refuse sends until the
// file system has room again, whatever read or empty write comes between;
// it loses nothing that was acknowledged, corrupts nothing, and once space
// is freed the store takes writes again, without a restart.
func TestFullDiskLosesNothingAndRecovers(t *testing.T) {
	dir := mountSmallFS(t, "1m")
	s := openStore(t, filepath.Join(dir, "otpd.db"))
	ctx := t.Context()
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	app := storage.App{ID: "0123456789abcdef0123456789abcdef", Name: "full", Generation: "g"}
	if err := s.CreateApp(ctx, app); err != nil {
		t.Fatalf("CreateApp: %v", err)
	}
	code := func(i int) storage.Code {
		return storage.Code{
			Key:           storage.CodeKey{AppID: app.ID, Destination: fmt.Sprintf("+1555%07d", i), ReferenceID: "login"},
			AppGeneration: app.Generation, MAC: fmt.Appendf(nil, "mac %d", i), AllowedAttempts: 3,
			CreatedAt: now, ExpiresAt: now.Add(time.Hour),
		}
	}
	verify := func(c storage.Code) (storage.Outcome, error) {
		return s.VerifyCode(ctx, storage.Verification{Key: c.Key, AppGeneration: c.AppGeneration, Now: now.Add(time.Minute),
			Budget:  storage.FailureBudget{Limit: 10, Window: time.Hour},
			Matches: func(mac []byte) bool { return string(mac) == string(c.MAC) }})
	}

	if err := s.WritesFailing(ctx); err != nil {
		t.Fatalf("WritesFailing before any failure: %v", err)
	}
	var stored []storage.Code
	var full error
	for i := range 100_000 {
		c := code(i)
		if full = s.RecordSend(ctx, storage.SendRecord{Code: &c}); full != nil {
			break
		}
		stored = append(stored, c)
	}
	if full == nil || !strings.Contains(full.Error(), "database or disk is full") || len(stored) == 0 {
		t.Fatalf("after %d sends on 1 MiB, RecordSend: %v; want it to fail for a full disk", len(stored), full)
	}
	if strings.Contains(full.Error(), "roll back") {
		t.Errorf("the error reports ROLLBACK after SQLite's own: %v", full)
	}
	notReady := func(step string) {
		t.Helper()
		if err := s.WritesFailing(ctx); err == nil || !strings.Contains(err.Error(), "for want of space") {
			t.Errorf("%s: WritesFailing = %v, want the full disk named", step, err)
		}
		if err := s.Ping(ctx); err == nil || !strings.Contains(err.Error(), "for want of space") {
			t.Errorf("%s: Ping = %v, want the store not ready", step, err)
		}
	}
	notReady("full")
	// A verification writes: it fails, or, if its few pages fit in what
	// the failed writes left, consumes the code for good.
	consumedWhileFull := false
	if outcome, err := verify(stored[0]); err == nil {
		if outcome != storage.OutcomeValid {
			t.Errorf("a verification with a full disk answered %v, want it valid or failed", outcome)
		}
		consumedWhileFull = true
	}
	// A write that writes nothing commits on a full disk; it changes
	// nothing to the disk's state.
	if outcome, err := verify(code(len(stored) + 1000)); err != nil || outcome != storage.OutcomeUnknown {
		t.Errorf("a verification of no code: %v, %v; want OutcomeUnknown", outcome, err)
	}
	notReady("after an empty commit")

	// A little space freed is not enough: a write would fill it again.
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_REMOUNT, "size=1088k"); err != nil {
		t.Fatalf("grow the tmpfs a little: %v", err)
	}
	notReady("with 64 KiB freed")

	// Space freed: ready again, and the writes go on.
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_REMOUNT, "size=64m"); err != nil {
		t.Fatalf("grow the tmpfs: %v", err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Errorf("Ping once space is freed: %v", err)
	}
	if c := code(len(stored)); s.RecordSend(ctx, storage.SendRecord{Code: &c}) != nil {
		t.Error("RecordSend once space is freed failed")
	} else {
		stored = append(stored, c)
	}
	// Every code acknowledged before and after is there, as the
	// verification while the disk was full left it.
	for i, c := range stored {
		want := storage.OutcomeValid
		if i == 0 && consumedWhileFull {
			want = storage.OutcomeConsumed
		}
		if outcome, err := verify(c); err != nil || outcome != want {
			t.Fatalf("code for %s: %v, %v; want %v", c.Key.Destination, outcome, err, want)
		}
	}
	var check string
	if err := s.rdb.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Errorf("integrity_check: %q, %v", check, err)
	}
}
