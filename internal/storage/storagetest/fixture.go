package storagetest

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpd/otpd/internal/storage"
)

// base is the suite's "now": every time is derived from it. It has
// millisecond precision, the least every backend keeps.
var base = time.Date(2030, time.March, 4, 5, 6, 7, 890_000_000, time.UTC)

// roomyBudget never throttles the few wrong guesses a test makes.
var roomyBudget = storage.FailureBudget{Limit: 1000, Window: time.Hour}

// newApp returns application number n, not yet stored. Its generation is
// "a", so that a re-created application can be given another.
func newApp(n int) storage.App {
	return storage.App{
		ID:         fmt.Sprintf("%032x", n),
		Name:       fmt.Sprintf("app %d", n),
		Tags:       map[string]string{"team": "identity", "n": fmt.Sprint(n)},
		CreatedAt:  base,
		Generation: fmt.Sprintf("%d-a", n),
		SMS:        storage.SMSChannel{Enabled: true, Version: 1, CreatedAt: base, UpdatedAt: base},
	}
}

// createApp stores application number n and returns it.
func createApp(t *testing.T, s storage.Store, n int) storage.App {
	t.Helper()
	app := newApp(n)
	if err := s.CreateApp(t.Context(), app); err != nil {
		t.Fatalf("CreateApp(%s): %v", app.ID, err)
	}
	return app
}

// macOf stands for the keyed MAC otpd stores: the store only compares it.
func macOf(code string) []byte {
	sum := sha256.Sum256([]byte("otp:" + code))
	return sum[:]
}

// matcher returns a Verification.Matches for the candidate code: a
// constant-time comparison, as otpd does.
func matcher(code string) func(storedMAC []byte) bool {
	candidate := macOf(code)
	return func(storedMAC []byte) bool { return subtle.ConstantTimeCompare(storedMAC, candidate) == 1 }
}

// newCode returns a code of app for (destination, ref) whose value is code,
// with 3 allowed attempts, created at base and valid for 10 minutes.
func newCode(app storage.App, destination, ref, code string) storage.Code {
	return storage.Code{
		Key:             storage.CodeKey{AppID: app.ID, Destination: destination, ReferenceID: ref},
		AppGeneration:   app.Generation,
		MAC:             macOf(code),
		AllowedAttempts: 3,
		CreatedAt:       base,
		ExpiresAt:       base.Add(10 * time.Minute),
	}
}

// longLivedCode returns a code that RecordSend stores with something else
// under test (a message record), valid for a century, so that no Purge of
// the tests deletes it.
func longLivedCode(app storage.App, destination, ref string) storage.Code {
	c := newCode(app, destination, ref, "123456")
	c.ExpiresAt = base.AddDate(100, 0, 0)
	return c
}

// putCode stores c through RecordSend, alone.
func putCode(t *testing.T, s storage.Store, c storage.Code) {
	t.Helper()
	if err := s.RecordSend(t.Context(), storage.SendRecord{Code: &c}); err != nil {
		t.Fatalf("RecordSend(%+v): %v", c.Key, err)
	}
}

// attempt returns a verification of code against c's key and generation at
// now, under the roomy budget.
func attempt(c storage.Code, code string, now time.Time) storage.Verification {
	return storage.Verification{
		Key:           c.Key,
		AppGeneration: c.AppGeneration,
		Now:           now,
		Budget:        roomyBudget,
		Matches:       matcher(code),
	}
}

// verify runs v and checks that Matches was called at most once.
func verify(t *testing.T, s storage.Store, v storage.Verification) storage.Outcome {
	t.Helper()
	var calls atomic.Int32
	matches := v.Matches
	v.Matches = func(stored []byte) bool {
		calls.Add(1)
		return matches(stored)
	}
	got, err := s.VerifyCode(t.Context(), v)
	if err != nil {
		t.Fatalf("VerifyCode(%+v at %v): %v", v.Key, v.Now, err)
	}
	if n := calls.Load(); n > 1 {
		t.Errorf("VerifyCode(%+v) called Matches %d times, want at most once", v.Key, n)
	}
	return got
}

// expectVerify runs v and checks its outcome.
func expectVerify(t *testing.T, s storage.Store, what string, v storage.Verification, want storage.Outcome) {
	t.Helper()
	if got := verify(t, s, v); got != want {
		t.Errorf("%s: VerifyCode = %q, want %q", what, got, want)
	}
}

// wrongGuesses makes n wrong guesses on c, one second apart from start,
// under the roomy budget, each expected to be OutcomeWrong.
func wrongGuesses(t *testing.T, s storage.Store, c storage.Code, start time.Time, n int) {
	t.Helper()
	for i := range n {
		expectVerify(t, s, fmt.Sprintf("wrong guess %d", i+1), attempt(c, "000000", start.Add(time.Duration(i)*time.Second)), storage.OutcomeWrong)
	}
}

// expectErr checks that err is the sentinel want.
func expectErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: error %v, want %v", what, err, want)
	}
}

// expectLockout checks DestinationLockout's answer.
func expectLockout(t *testing.T, s storage.Store, what string, app storage.App, destination string, now time.Time, b storage.FailureBudget, want time.Time) {
	t.Helper()
	got, err := s.DestinationLockout(t.Context(), app.ID, app.Generation, destination, now, b)
	if err != nil {
		t.Fatalf("%s: DestinationLockout: %v", what, err)
	}
	if !got.Equal(want) {
		t.Errorf("%s: DestinationLockout(%s at %v, %+v) = %v, want %v", what, destination, now, b, got, want)
	}
}

// diffApp describes how got differs from want, or returns "". Times compare
// as instants and must be in UTC.
func diffApp(got, want storage.App) string {
	var d []string
	field := func(name string, g, w any) {
		if fmt.Sprint(g) != fmt.Sprint(w) {
			d = append(d, fmt.Sprintf("%s = %v, want %v", name, g, w))
		}
	}
	instant := func(name string, g, w time.Time) {
		if !g.Equal(w) || g.Location() != time.UTC {
			d = append(d, fmt.Sprintf("%s = %v, want %v in UTC", name, g, w))
		}
	}
	field("ID", got.ID, want.ID)
	field("Name", got.Name, want.Name)
	if got.Tags == nil {
		d = append(d, "Tags = nil, want a map")
	}
	field("Tags", got.Tags, want.Tags) // fmt sorts map keys
	instant("CreatedAt", got.CreatedAt, want.CreatedAt)
	field("Generation", got.Generation, want.Generation)
	field("SMS.Enabled", got.SMS.Enabled, want.SMS.Enabled)
	field("SMS.SenderID", got.SMS.SenderID, want.SMS.SenderID)
	field("SMS.ShortCode", got.SMS.ShortCode, want.SMS.ShortCode)
	field("SMS.Version", got.SMS.Version, want.SMS.Version)
	instant("SMS.CreatedAt", got.SMS.CreatedAt, want.SMS.CreatedAt)
	instant("SMS.UpdatedAt", got.SMS.UpdatedAt, want.SMS.UpdatedAt)
	return strings.Join(d, "; ")
}

// expectApp checks that got is want.
func expectApp(t *testing.T, what string, got, want storage.App) {
	t.Helper()
	if d := diffApp(got, want); d != "" {
		t.Errorf("%s: %s\ngot  %+v\nwant %+v", what, d, got, want)
	}
}
