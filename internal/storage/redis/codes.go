package redis

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/redis/rueidis"

	"github.com/otpd/otpd/internal/storage"
)

// A code is a hash with the fields mac, allowed (attempts), failed
// (attempts), consumed ("0"/"1") and expires (ms). Its key names the
// application's generation, so a code of another generation is simply
// absent.

// putCode replaces the code. ARGV: mac, allowed attempts, expires, TTL (ms).
var putCode = newScript(`
redis.call('HSET', KEYS[1], 'mac', ARGV[1], 'allowed', ARGV[2], 'failed', '0', 'consumed', '0', 'expires', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
`, false)

// verifyRead applies rules 1 to 5 of storage.Verification to the code
// (KEYS[1]) and its destination's failures (KEYS[2]). ARGV: now, the
// window's exclusive lower bound "(ms", the budget's limit, the window's
// upper bound (storage.ClockSkew after now; see storage.Verification). It returns
// {outcome}, or {"check", mac} when rules 6 and 7 are to decide.
var verifyRead = newScript(`
local c = redis.call('HMGET', KEYS[1], 'mac', 'allowed', 'failed', 'consumed', 'expires')
if not c[1] then return {'unknown'} end
if redis.call('ZCOUNT', KEYS[2], ARGV[2], ARGV[4]) >= tonumber(ARGV[3]) then return {'throttled'} end
if c[4] == '1' then return {'consumed'} end
if tonumber(ARGV[1]) >= tonumber(c[5]) then return {'expired'} end
if tonumber(c[3]) >= tonumber(c[2]) then return {'exhausted'} end
return {'check', c[1]}
`, true)

// verifyWrite decides the attempt for good: it applies rules 1 to 5 again
// to the code as it is now, then rule 6 if ARGV[5] is "1" (Matches was true
// for the MAC ARGV[4]) and the code still has that MAC, else rule 7. ARGV:
// now, "(window start", limit, mac, matched, failure member, failures' TTL
// (ms), the score at and below which failures no longer matter, the
// window's upper bound.
var verifyWrite = newScript(`
local c = redis.call('HMGET', KEYS[1], 'mac', 'allowed', 'failed', 'consumed', 'expires')
if not c[1] then return 'unknown' end
if redis.call('ZCOUNT', KEYS[2], ARGV[2], ARGV[9]) >= tonumber(ARGV[3]) then return 'throttled' end
if c[4] == '1' then return 'consumed' end
if tonumber(ARGV[1]) >= tonumber(c[5]) then return 'expired' end
if tonumber(c[3]) >= tonumber(c[2]) then return 'exhausted' end
if ARGV[5] == '1' and c[1] == ARGV[4] then
  redis.call('HSET', KEYS[1], 'consumed', '1')
  return 'valid'
end
redis.call('HINCRBY', KEYS[1], 'failed', 1)
redis.call('ZADD', KEYS[2], ARGV[1], ARGV[6])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[8])
redis.call('PEXPIRE', KEYS[2], ARGV[7])
return 'wrong'
`, false)

// RecordSend stores the code first, as putCode does; then, unless the
// code's application is gone, the message record and the completion, the
// completion in the same round trip as the first step of the message
// record's put. They live in other hash slots than the code, so they cannot
// be one script with it; an error may leave the code stored without them.
func (s *Store) RecordSend(ctx context.Context, r storage.SendRecord) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if c := r.Code; c != nil {
		if err := s.putCode(ctx, *c); err != nil {
			return fmt.Errorf("storage/redis: record send: %w", err)
		}
	}
	if m := r.Outbox; m != nil {
		if err := s.appendOutbox(ctx, *m); err != nil {
			return fmt.Errorf("storage/redis: record send: outbox: %w", err)
		}
	}
	if err := s.putMessageAndCompletion(ctx, r.Message, r.Completion); err != nil {
		return fmt.Errorf("storage/redis: record send: %w", err)
	}
	return nil
}

// putCode replaces the code in one script, with a TTL of its validity and
// storage.ExpiredCodeKept.
// Alongside, in the same round trip, it reads the application's generation:
// if the application is gone or has another generation it returns
// storage.ErrNotFound (the code it stored then never verifies: VerifyCode
// checks the generation too, and the TTL removes it).
func (s *Store) putCode(ctx context.Context, c storage.Code) error {
	res, others := putCode.execMulti(ctx, s.c, []string{s.keys.code(c.Key, c.AppGeneration)},
		[]string{string(c.MAC), itoa(int64(c.AllowedAttempts)), itoa(unixMS(c.ExpiresAt)), itoa(s.ttlMS(c.ExpiresAt.Sub(c.CreatedAt) + storage.ExpiredCodeKept))},
		s.generationCmd(c.Key.AppID))
	if err := res.Error(); err != nil {
		return fmt.Errorf("code: %w", err)
	}
	current, err := generation(others[0])
	if err != nil {
		return fmt.Errorf("code: %w", err)
	}
	if current != c.AppGeneration {
		return fmt.Errorf("code: app %s generation %s: %w", c.Key.AppID, c.AppGeneration, storage.ErrNotFound)
	}
	return nil
}

// putMessageAndCompletion stores m and done, either of which may be nil.
// The completion's script runs in the same round trip as the commands that
// list m (on a cluster, in parallel on the nodes that own their keys).
func (s *Store) putMessageAndCompletion(ctx context.Context, m *storage.MessageRecord, done *storage.SendCompletion) error {
	var listing []rueidis.Completed
	if m != nil {
		listing = s.listMessageCmds(*m)
	}
	listed, err := s.completeSendWith(ctx, done, listing...)
	if err != nil {
		return fmt.Errorf("send record: %w", err)
	}
	if m == nil {
		return nil
	}
	if err := s.putMessage(ctx, *m, listed); err != nil {
		return fmt.Errorf("message record %s: %w", m.MessageID, err)
	}
	return nil
}

// generationCmd reads the application's generation.
func (s *Store) generationCmd(appID string) rueidis.Completed {
	return s.c.B().Hget().Key(s.keys.app(appID)).Field(fGeneration).Build()
}

// generation returns what generationCmd read: "" if there is no such
// application (a generation is never empty).
func generation(res rueidis.RedisResult) (string, error) {
	gen, err := res.ToString()
	if rueidis.IsRedisNil(err) {
		return "", nil
	}
	return gen, err
}

// VerifyCode decides one attempt. Matches runs in Go, between two scripts:
//
//  1. verifyRead applies rules 1-5 and, if none decides, returns the stored
//     MAC; in the same round trip the application's generation is read,
//     and an attempt under any other generation is OutcomeUnknown;
//  2. Matches is called once, on that MAC;
//  3. verifyWrite applies rules 1-5 again to the code as it is then, and
//     rule 6 or 7. It consumes the code only if Matches was true and the
//     code still holds the MAC that Matches saw; otherwise the attempt is a
//     wrong guess (rule 7).
//
// verifyWrite is the attempt's one atomic decision: between the scripts
// other attempts may have counted failures, consumed the code or spent the
// budget, and it sees all of that. The MAC check keeps a stale Matches from
// deciding: when the code was replaced in between (RecordSend), a true
// Matches on the old MAC proves the candidate differs from the new one (the
// MACs differ), so rule 7 is exact; a false Matches is also taken as a wrong
// guess against the new code, which would be wrong only if a guess made
// before the new code existed happened to equal it.
func (s *Store) VerifyCode(ctx context.Context, v storage.Verification) (storage.Outcome, error) {
	if v.Budget.Limit < 1 {
		return "", fmt.Errorf("storage/redis: verify code: failure budget limit is %d, must be at least 1", v.Budget.Limit)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	keys := []string{s.keys.code(v.Key, v.AppGeneration), s.keys.failures(v.Key.AppID, v.AppGeneration, v.Key.Destination)}
	nowMS := unixMS(v.Now)
	windowMS := v.Budget.Window.Milliseconds()
	now, from, limit := itoa(nowMS), "("+itoa(nowMS-windowMS), itoa(int64(v.Budget.Limit))
	to := itoa(nowMS + storage.ClockSkew.Milliseconds())

	res, others := verifyRead.execMulti(ctx, s.c, keys, []string{now, from, limit, to}, s.generationCmd(v.Key.AppID))
	current, err := generation(others[0])
	if err != nil {
		return "", fmt.Errorf("storage/redis: verify code: %w", err)
	}
	read, err := res.ToArray()
	if err != nil {
		return "", fmt.Errorf("storage/redis: verify code: %w", err)
	}
	if current != v.AppGeneration {
		return storage.OutcomeUnknown, nil
	}
	outcome, err := read[0].ToString()
	if err != nil {
		return "", fmt.Errorf("storage/redis: verify code: %w", err)
	}
	if outcome != "check" {
		return toOutcome(outcome)
	}
	if len(read) != 2 {
		return "", errors.New("storage/redis: verify code: malformed answer")
	}
	mac, err := read[1].ToString()
	if err != nil {
		return "", fmt.Errorf("storage/redis: verify code: %w", err)
	}
	matched := v.Matches([]byte(mac))

	outcome, err = verifyWrite.exec(ctx, s.c, keys, now, from, limit, mac, flag(matched), s.uniqueID(),
		itoa(s.ttlMS(v.Budget.Window)), itoa(nowMS-windowMS-s.margin.Milliseconds()), to).ToString()
	if err != nil {
		return "", fmt.Errorf("storage/redis: verify code: %w", err)
	}
	return toOutcome(outcome)
}

// toOutcome checks an outcome a script returned.
func toOutcome(s string) (storage.Outcome, error) {
	if o := storage.Outcome(s); slices.Contains(storage.Outcomes(), o) {
		return o, nil
	}
	return "", fmt.Errorf("storage/redis: verify code: unexpected outcome %q", s)
}

// DestinationLockout reads the Limit-th newest failure in the window, with
// the application's generation in the same round trip: failures of any
// generation but the application's current one never count.
func (s *Store) DestinationLockout(ctx context.Context, appID, appGeneration, destination string, now time.Time, b storage.FailureBudget) (time.Time, error) {
	if b.Limit < 1 {
		return time.Time{}, fmt.Errorf("storage/redis: destination lockout: failure budget limit is %d, must be at least 1", b.Limit)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	nowMS := unixMS(now)
	res := s.c.DoMulti(ctx,
		s.generationCmd(appID),
		s.c.B().Zrevrangebyscore().Key(s.keys.failures(appID, appGeneration, destination)).
			Max(itoa(nowMS+storage.ClockSkew.Milliseconds())).Min("("+itoa(nowMS-b.Window.Milliseconds())).
			Withscores().Limit(int64(b.Limit-1), 1).Build())
	current, err := generation(res[0])
	if err != nil {
		return time.Time{}, fmt.Errorf("storage/redis: destination lockout: %w", err)
	}
	scores, err := res[1].AsZScores()
	if err != nil {
		return time.Time{}, fmt.Errorf("storage/redis: destination lockout: %w", err)
	}
	if current != appGeneration || len(scores) == 0 {
		return time.Time{}, nil
	}
	return fromUnixMS(int64(scores[0].Score)).Add(b.Window), nil
}
