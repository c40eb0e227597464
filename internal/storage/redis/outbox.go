package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/otpd/otpd/internal/storage"
)

// The outbox is one sorted set: the score is the message's CreatedAt (ms),
// the member "<seq>\t<destination>\t<message>": seq, 16 hex digits from a
// counter, orders messages of one millisecond by arrival; destination is the
// JSON string of the destination (no tab in it), for ListOutbox's filter;
// message is the JSON of the message.

// appendOutbox adds a message and trims the outbox to its newest ARGV[3].
// ARGV: score, "<destination>\t<message>", cap.
var appendOutbox = newScript(`
local seq = redis.call('INCR', KEYS[2])
redis.call('ZADD', KEYS[1], ARGV[1], string.format('%016x', seq) .. '\t' .. ARGV[2])
local extra = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[3])
if extra > 0 then redis.call('ZREMRANGEBYRANK', KEYS[1], 0, extra - 1) end
return 1
`, false)

// listOutbox returns the newest messages, newest first: at most ARGV[2] (all
// if 0), only those whose member starts, after the seq, with ARGV[1] if it
// is not empty.
var listOutbox = newScript(`
local want, limit = ARGV[1], tonumber(ARGV[2])
if want == '' then return redis.call('ZREVRANGE', KEYS[1], 0, limit - 1) end
local found, start = {}, 0
while true do
  local page = redis.call('ZREVRANGE', KEYS[1], start, start + 255)
  for _, m in ipairs(page) do
    if string.sub(m, 18, 17 + #want) == want then
      found[#found + 1] = m
      if #found == limit then return found end
    end
  end
  if #page < 256 then return found end
  start = start + 256
end
`, true)

// purgeOutbox deletes, oldest first, at most ARGV[3] messages that are older
// than ARGV[1] (a score bound "(ms", or "" for no age limit) or beyond the
// newest ARGV[2] (0: no count limit), and returns how many it deleted.
var purgeOutbox = newScript(`
local cut = 0
if ARGV[1] ~= '' then cut = redis.call('ZCOUNT', KEYS[1], '-inf', ARGV[1]) end
local keep = tonumber(ARGV[2])
if keep > 0 then cut = math.max(cut, redis.call('ZCARD', KEYS[1]) - keep) end
cut = math.min(cut, tonumber(ARGV[3]))
if cut <= 0 then return 0 end
return redis.call('ZREMRANGEBYRANK', KEYS[1], 0, cut - 1)
`, false)

// outboxJSON is how a message is stored.
type outboxJSON struct {
	MessageID   string `json:"id"`
	AppID       string `json:"app"`
	Origination string `json:"from"`
	Destination string `json:"to"`
	ReferenceID string `json:"ref"`
	Language    string `json:"lang"`
	Body        string `json:"body"`
	Encoding    string `json:"enc"`
	Segments    int    `json:"seg"`
	CreatedMS   int64  `json:"at"`
}

// AppendOutbox stores the message and trims the outbox to the newest
// Options.OutboxCap messages, in one script.
func (s *Store) AppendOutbox(ctx context.Context, m storage.OutboxMessage) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if err := s.appendOutbox(ctx, m); err != nil {
		return fmt.Errorf("storage/redis: append to the outbox: %w", err)
	}
	return nil
}

// appendOutbox appends m in one script.
func (s *Store) appendOutbox(ctx context.Context, m storage.OutboxMessage) error {
	body, err := json.Marshal(outboxJSON{
		MessageID: m.MessageID, AppID: m.AppID, Origination: m.OriginationIdentity, Destination: m.DestinationIdentity,
		ReferenceID: m.ReferenceID, Language: m.Language, Body: m.Body, Encoding: m.Encoding, Segments: m.Segments,
		CreatedMS: unixMS(m.CreatedAt),
	})
	if err != nil {
		return err
	}
	return appendOutbox.exec(ctx, s.c, []string{s.keys.outbox(), s.keys.outboxSeq()},
		itoa(unixMS(m.CreatedAt)), destinationTag(m.DestinationIdentity)+string(body), itoa(int64(s.outboxCap))).Error()
}

// destinationTag is the part of a member between the seq and the message.
func destinationTag(destination string) string {
	b, _ := json.Marshal(destination) // a string always encodes
	return string(b) + "\t"
}

// ListOutbox returns the newest q.Limit messages (all if Limit is zero) to
// q.Destination (any if empty), oldest first, from one script.
func (s *Store) ListOutbox(ctx context.Context, q storage.OutboxQuery) ([]storage.OutboxMessage, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	want := ""
	if q.Destination != "" {
		want = destinationTag(q.Destination)
	}
	members, err := listOutbox.exec(ctx, s.c, []string{s.keys.outbox()}, want, itoa(int64(max(q.Limit, 0)))).AsStrSlice()
	if err != nil {
		return nil, fmt.Errorf("storage/redis: list the outbox: %w", err)
	}
	msgs := make([]storage.OutboxMessage, 0, len(members))
	for _, member := range slices.Backward(members) {
		m, err := decodeOutbox(member)
		if err != nil {
			return nil, fmt.Errorf("storage/redis: list the outbox: %w", err)
		}
		msgs = append(msgs, m)
	}
	return msgs, nil
}

// decodeOutbox reads a member of the outbox.
func decodeOutbox(member string) (storage.OutboxMessage, error) {
	parts := strings.SplitN(member, "\t", 3)
	if len(parts) != 3 {
		return storage.OutboxMessage{}, errors.New("corrupt outbox member")
	}
	var j outboxJSON
	if err := json.Unmarshal([]byte(parts[2]), &j); err != nil {
		return storage.OutboxMessage{}, fmt.Errorf("corrupt outbox message: %w", err)
	}
	return storage.OutboxMessage{
		MessageID: j.MessageID, AppID: j.AppID, OriginationIdentity: j.Origination, DestinationIdentity: j.Destination,
		ReferenceID: j.ReferenceID, Language: j.Language, Body: j.Body, Encoding: j.Encoding, Segments: j.Segments,
		CreatedAt: fromUnixMS(j.CreatedMS),
	}, nil
}

// Purge has nothing to do for codes, failures and send records, which
// expire by TTL. It deletes at most r.BatchSize outbox messages, oldest
// first, that are older than r.OutboxMaxAge or beyond the newest
// r.OutboxMaxMessages, and at most r.BatchSize message records, oldest
// first, older than r.MessageMaxAge (a zero rule keeps everything), and
// returns how many it deleted.
func (s *Store) Purge(ctx context.Context, now time.Time, r storage.Retention) (int, error) {
	if r.BatchSize < 1 {
		return 0, fmt.Errorf("storage/redis: purge: batch size is %d, must be at least 1", r.BatchSize)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	older := ""
	if r.OutboxMaxAge > 0 {
		older = "(" + itoa(unixMS(now.Add(-r.OutboxMaxAge)))
	}
	n, err := purgeOutbox.exec(ctx, s.c, []string{s.keys.outbox()}, older, itoa(int64(max(r.OutboxMaxMessages, 0))), itoa(int64(r.BatchSize))).AsInt64()
	if err != nil {
		return 0, fmt.Errorf("storage/redis: purge outbox messages: %w", err)
	}
	total := int(n)
	if r.MessageMaxAge > 0 {
		n, err := s.purgeMessages(ctx, now.Add(-r.MessageMaxAge), r.BatchSize)
		total += n
		if err != nil {
			return total, fmt.Errorf("storage/redis: purge message records: %w", err)
		}
	}
	return total, nil
}
