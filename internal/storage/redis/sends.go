package redis

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/rueidis"

	"github.com/otpd/otpd/internal/storage"
)

// A send record is a hash with the fields gen (the generation of the
// application it was made under), done ("0" pending, "1" completed), until
// (the lease's end or the expiry, ms), now (when it was claimed, ms) and
// result. It shares its application's hash slot, so the scripts read the
// application's generation atomically: a record made under another
// generation (the application was deleted) counts as absent.

// fallbackSendTTL is how long a completed record lives when RecordSend
// finds no claim to count from (released or expired meanwhile): otpd's
// de-duplication window.
const fallbackSendTTL = 10 * time.Minute

// claimSend claims the send (KEYS[1]) of the application (KEYS[2]). ARGV:
// now, lease end, TTL (ms). It returns {1, result} for a live completed
// record, {0} for a live pending one, and {2} once it has claimed.
var claimSend = newScript(`
local gen = redis.call('HGET', KEYS[2], 'gen') or ''
local r = redis.call('HMGET', KEYS[1], 'gen', 'done', 'until', 'result')
if r[1] == gen and tonumber(ARGV[1]) < tonumber(r[3]) then
  if r[2] == '1' then return {1, r[4] or ''} end
  return {0}
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'gen', gen, 'done', '0', 'until', ARGV[2], 'now', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {2}
`, false)

// completeSend stores the completed record. ARGV: result, expiry, TTL
// margin (ms), TTL when there is no claim to count from (ms). The record
// keeps the generation of its claim, or takes the application's.
var completeSend = newScript(`
local r = redis.call('HMGET', KEYS[1], 'gen', 'now')
local gen = r[1] or redis.call('HGET', KEYS[2], 'gen') or ''
local ttl = tonumber(ARGV[4])
if r[2] then ttl = math.max(tonumber(ARGV[2]) - tonumber(r[2]), 0) + tonumber(ARGV[3]) end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'gen', gen, 'done', '1', 'until', ARGV[2], 'result', ARGV[1])
redis.call('PEXPIRE', KEYS[1], math.max(math.floor(ttl), 1))
return 1
`, false)

// releaseSend deletes the record if it is pending.
var releaseSend = newScript(`
if redis.call('HGET', KEYS[1], 'done') == '0' then redis.call('DEL', KEYS[1]) end
return 1
`, false)

// ClaimSend claims the send in one script, which stores a pending record
// with a TTL of its lease.
func (s *Store) ClaimSend(ctx context.Context, c storage.SendClaim) (result []byte, claimed bool, err error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	res, err := claimSend.exec(ctx, s.c, []string{s.keys.send(c.AppID, c.Key), s.keys.app(c.AppID)},
		itoa(unixMS(c.Now)), itoa(unixMS(c.LeaseUntil)), itoa(s.ttlMS(c.LeaseUntil.Sub(c.Now)))).ToArray()
	if err != nil {
		return nil, false, fmt.Errorf("storage/redis: claim send: %w", err)
	}
	if len(res) == 0 {
		return nil, false, errors.New("storage/redis: claim send: empty answer")
	}
	state, err := res[0].AsInt64()
	if err != nil {
		return nil, false, fmt.Errorf("storage/redis: claim send: %w", err)
	}
	switch {
	case state == 2:
		return nil, true, nil
	case state == 0:
		return nil, false, nil
	case state == 1 && len(res) == 2:
		b, err := res[1].AsBytes()
		if err != nil {
			return nil, false, fmt.Errorf("storage/redis: claim send: %w", err)
		}
		if b == nil {
			b = []byte{} // an empty result; nil would mean "pending"
		}
		return b, false, nil
	}
	return nil, false, errors.New("storage/redis: claim send: malformed answer")
}

// completeSendWith runs the commands others and, unless done is nil, the
// script that stores done's completed record, in one round trip (on a
// cluster, in parallel on the nodes that own their keys), and returns the
// others' results. The record is stored even if the pending one is gone
// (released, expired or taken over): the carrier answered, and a retry
// should get that answer. Its TTL runs to done.ExpiresAt counted from the
// claim's Now.
func (s *Store) completeSendWith(ctx context.Context, done *storage.SendCompletion, others ...rueidis.Completed) ([]rueidis.RedisResult, error) {
	if done == nil {
		return s.c.DoMulti(ctx, others...), nil
	}
	res, results := completeSend.execMulti(ctx, s.c, []string{s.keys.send(done.AppID, done.Key), s.keys.app(done.AppID)},
		[]string{string(done.Result), itoa(unixMS(done.ExpiresAt)), itoa(s.margin.Milliseconds()), itoa(s.ttlMS(fallbackSendTTL))},
		others...)
	return results, res.Error()
}

// ReleaseSend deletes the pending record, if there is one; a completed one
// stays.
func (s *Store) ReleaseSend(ctx context.Context, appID, key string) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if err := releaseSend.exec(ctx, s.c, []string{s.keys.send(appID, key)}).Error(); err != nil {
		return fmt.Errorf("storage/redis: release send: %w", err)
	}
	return nil
}
