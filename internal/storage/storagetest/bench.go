package storagetest

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpd/otpd/internal/storage"
)

// benchGoroutines is about how many goroutines call the store at once in
// Bench: the concurrency of a busy otpd instance.
const benchGoroutines = 32

// benchBudget is otpd's default failure budget.
var benchBudget = storage.FailureBudget{Limit: 10, Window: time.Hour}

// Bench measures the store operations otpd's requests make, from about 32
// goroutines at once (b.RunParallel), the load under which a backend's
// batching shows. open returns a fresh, empty store (the backend registers
// its cleanup with b.Cleanup). Every sub-benchmark reports its rate per
// second besides ns/op:
//
//   - RecordSend: storing a new code, alone;
//   - VerifyCode: storing a code, then verifying it with the right value;
//   - VerifyWrong: storing a code, then a wrong guess on it;
//   - SendVerifyPair: what one SendOTPMessage through the development
//     outbox and its VerifyOTPMessage ask of the store (DestinationLockout;
//     RecordSendOnce with the code, the message record, the outbox message
//     and the completion where the store is a storage.SendOnceRecorder,
//     ClaimSend then RecordSend elsewhere; VerifyCode), reported as
//     pairs/s. The application is not read: otpd caches it.
func Bench(b *testing.B, open func(b *testing.B) storage.Store) {
	b.Run("RecordSend", func(b *testing.B) {
		s, app := benchStore(b, open)
		runParallel(b, "puts/s", func(i int64) error {
			c := benchCode(app, i)
			return s.RecordSend(b.Context(), storage.SendRecord{Code: &c})
		})
	})
	b.Run("VerifyCode", func(b *testing.B) {
		s, app := benchStore(b, open)
		runParallel(b, "verifies/s", func(i int64) error {
			return putThenVerify(b, s, benchCode(app, i), "123456", storage.OutcomeValid)
		})
	})
	b.Run("VerifyWrong", func(b *testing.B) {
		s, app := benchStore(b, open)
		runParallel(b, "verifies/s", func(i int64) error {
			return putThenVerify(b, s, benchCode(app, i), "000000", storage.OutcomeWrong)
		})
	})
	b.Run("SendVerifyPair", func(b *testing.B) {
		s, app := benchStore(b, open)
		runParallel(b, "pairs/s", func(i int64) error {
			return sendThenVerify(b, s, app.ID, benchCode(app, i))
		})
	})
}

// benchStore opens a store holding one application.
func benchStore(b *testing.B, open func(b *testing.B) storage.Store) (storage.Store, storage.App) {
	b.Helper()
	s := open(b)
	app := newApp(1)
	if err := s.CreateApp(b.Context(), app); err != nil {
		b.Fatalf("CreateApp: %v", err)
	}
	return s, app
}

// benchCode returns code number i of app: a key of its own, the value
// 123456.
func benchCode(app storage.App, i int64) storage.Code {
	return newCode(app, fmt.Sprintf("+1555%07d", i%10_000_000), fmt.Sprintf("ref-%d", i), "123456")
}

// runParallel runs op b.N times in all from about benchGoroutines
// goroutines, each call with a number of its own, and reports the rate as
// unit.
func runParallel(b *testing.B, unit string, op func(i int64) error) {
	procs := runtime.GOMAXPROCS(0)
	b.SetParallelism((benchGoroutines + procs - 1) / procs)
	var next atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := op(next.Add(1)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), unit)
}

// putThenVerify stores c, then verifies code against it, expecting want.
func putThenVerify(b *testing.B, s storage.Store, c storage.Code, code string, want storage.Outcome) error {
	if err := s.RecordSend(b.Context(), storage.SendRecord{Code: &c}); err != nil {
		return err
	}
	got, err := s.VerifyCode(b.Context(), withBudget(attempt(c, code, base), benchBudget))
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("VerifyCode = %q, want %q", got, want)
	}
	return nil
}

// sendThenVerify makes the store calls of a send of c through the
// development outbox (under a retry key) and of its verification with the
// right value.
func sendThenVerify(b *testing.B, s storage.Store, appID string, c storage.Code) error {
	ctx := b.Context()
	until, err := s.DestinationLockout(ctx, appID, c.AppGeneration, c.Key.Destination, base, benchBudget)
	if err != nil || !until.IsZero() {
		return fmt.Errorf("DestinationLockout = %v, %v; want zero, nil", until, err)
	}
	key := "invocation-" + c.Key.ReferenceID
	claim := storage.SendClaim{AppID: appID, Key: key, Now: base, LeaseUntil: base.Add(time.Minute)}
	once, isOnce := s.(storage.SendOnceRecorder)
	if !isOnce {
		if _, claimed, err := s.ClaimSend(ctx, claim); err != nil || !claimed {
			return fmt.Errorf("ClaimSend = %v, %v; want claimed", claimed, err)
		}
	}
	messageID := "message-" + c.Key.ReferenceID
	r := storage.SendRecord{
		Code: &c,
		Outbox: &storage.OutboxMessage{
			MessageID: messageID, AppID: appID, OriginationIdentity: "+18555550142", DestinationIdentity: c.Key.Destination,
			ReferenceID: c.Key.ReferenceID, Language: "en-US", Body: "This is your One Time Password: 123456 from Bench",
			Encoding: "GSM-7", Segments: 1, CreatedAt: base,
		},
		Message: &storage.MessageRecord{
			MessageID: messageID, AppID: appID, Carrier: "outbox", CarrierMessageID: messageID,
			OriginationIdentity: "+18555550142", DestinationIdentity: c.Key.Destination, ReferenceID: c.Key.ReferenceID,
			Country: "US", Status: storage.MessageSubmitted, CreatedAt: base, UpdatedAt: base,
		},
		Completion: &storage.SendCompletion{AppID: appID, Key: key, Result: []byte(`{"DeliveryStatus":"SUCCESSFUL","StatusCode":200}`), ExpiresAt: base.Add(10 * time.Minute)},
	}
	if isOnce {
		if _, recorded, err := once.RecordSendOnce(ctx, claim, r); err != nil || !recorded {
			return fmt.Errorf("RecordSendOnce = %v, %v; want recorded", recorded, err)
		}
	} else if err := s.RecordSend(ctx, r); err != nil {
		return err
	}
	got, err := s.VerifyCode(ctx, withBudget(attempt(c, "123456", base.Add(time.Second)), benchBudget))
	if err != nil {
		return err
	}
	if got != storage.OutcomeValid {
		return fmt.Errorf("VerifyCode = %q, want valid", got)
	}
	return nil
}
