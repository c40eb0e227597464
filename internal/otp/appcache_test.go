package otp

import (
	"context"
	"crypto/rand"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/otpd/otpd/internal/storage"
	"github.com/otpd/otpd/internal/storage/sqlite"
)

// twoInstances returns two Services on one database, as two otpd instances
// sharing a store, with the given application cache TTLs, and an
// application created through the first.
func twoInstances(t *testing.T, ttlA, ttlB time.Duration) (a, b *Service, ca, cb *scriptedCarrier, appID string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "otpd.db")
	key := make([]byte, 32)
	rand.Read(key)
	open := func(ttl time.Duration, carrier *scriptedCarrier) *Service {
		st, err := sqlite.Open(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		svc, err := NewService(Config{Store: st, Carrier: carrier, MACKey: key, AppCacheTTL: ttl})
		if err != nil {
			t.Fatal(err)
		}
		return svc
	}
	ca, cb = &scriptedCarrier{answers: []error{nil}}, &scriptedCarrier{answers: []error{nil}}
	a, b = open(ttlA, ca), open(ttlB, cb)
	app, err := a.CreateApp(context.Background(), NewApp{Name: "cached"})
	if err != nil {
		t.Fatal(err)
	}
	return a, b, ca, cb, app.ID
}

func disable(t *testing.T, svc *Service, appID string) {
	t.Helper()
	off := false
	if _, err := svc.UpdateSMSChannel(context.Background(), appID, storage.SMSChannelUpdate{Enabled: &off}); err != nil {
		t.Fatal(err)
	}
}

func TestChangesThroughTheServiceApplyAtOnce(t *testing.T) {
	a, _, _, _, app := twoInstances(t, time.Hour, time.Hour)
	ctx := context.Background()
	if _, err := a.Send(ctx, sendRequest(app)); err != nil { // caches the application
		t.Fatal(err)
	}
	disable(t, a, app)
	var disabled *ChannelDisabledError
	if _, err := a.Send(ctx, sendRequest(app)); !errors.As(err, &disabled) {
		t.Fatalf("send right after disabling the channel: %v, want ChannelDisabledError", err)
	}
	if _, err := a.DeleteApp(ctx, app); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Send(ctx, sendRequest(app)); !errors.Is(err, ErrAppNotFound) {
		t.Fatalf("send right after deleting the application: %v, want ErrAppNotFound", err)
	}
	if _, _, err := a.Verify(ctx, VerifyRequest{AppID: app, DestinationIdentity: "+14255550142", ReferenceID: "ref", Otp: "123456"}); !errors.Is(err, ErrAppNotFound) {
		t.Fatalf("verify right after deleting the application: %v, want ErrAppNotFound", err)
	}
}

func TestAnotherInstanceSeesChangesWithinTheTTL(t *testing.T) {
	const ttl = 50 * time.Millisecond
	a, b, _, _, app := twoInstances(t, ttl, ttl)
	ctx := context.Background()
	if _, err := b.Send(ctx, sendRequest(app)); err != nil { // b caches the application
		t.Fatal(err)
	}
	disable(t, a, app)
	time.Sleep(2 * ttl) // b's entry is now older than its TTL, whatever the scheduling
	var disabled *ChannelDisabledError
	if _, err := b.Send(ctx, sendRequest(app)); !errors.As(err, &disabled) {
		t.Fatalf("send on the other instance after its TTL: %v, want ChannelDisabledError", err)
	}
}

// TestDeletedElsewhereNeverVerifies: while another instance still holds a
// deleted application, its codes do not verify and a new code for it is
// refused once the carrier took it.
func TestDeletedElsewhereNeverVerifies(t *testing.T) {
	a, b, _, cb, app := twoInstances(t, time.Hour, time.Hour)
	ctx := context.Background()
	if _, err := b.Send(ctx, sendRequest(app)); err != nil {
		t.Fatal(err)
	}
	code := cb.lastCode(t)
	if _, err := a.DeleteApp(ctx, app); err != nil {
		t.Fatal(err)
	}
	if verifies(t, b, app, code) {
		t.Error("a code of an application deleted on another instance verified")
	}
	if _, err := b.Send(ctx, sendRequest(app)); !errors.Is(err, ErrAppNotFound) {
		t.Errorf("send for an application deleted on another instance: %v, want ErrAppNotFound", err)
	}
}

func TestNegativeTTLReadsTheStoreEveryTime(t *testing.T) {
	a, b, _, _, app := twoInstances(t, time.Hour, -1)
	ctx := context.Background()
	if _, err := b.Send(ctx, sendRequest(app)); err != nil {
		t.Fatal(err)
	}
	disable(t, a, app)
	var disabled *ChannelDisabledError
	if _, err := b.Send(ctx, sendRequest(app)); !errors.As(err, &disabled) {
		t.Fatalf("send without a cache right after another instance disabled the channel: %v, want ChannelDisabledError", err)
	}
}
