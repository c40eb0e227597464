package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/rueidis"

	"github.com/otpd/otpd/internal/storage"
)

// A message record is kept in three places, in three hash slots:
//
//   - its hash, keyed by its message ID (keys.message), with the fields
//     below; the hash is the truth;
//   - an index entry for its (carrier, carrier message ID), if it has one
//     (keys.carrierMessage), whose value is "<version>\t<message ID>": the
//     version is a value unique to each put (putMessage), also kept in the
//     hash, so that the entry is deleted only by those who deleted that
//     very record;
//   - a member of the listing (keys.messages), "<message ID>\t<destination
//     as JSON>" (a JSON string has no tab: the last tab ends the ID) scored
//     by its CreatedAt in ms, for ListMessages's order, filter and limit,
//     and for trimming.
//
// The atomic operation, UpdateMessageStatus, is one script on the hash: it
// finds the message ID through the index entry, then applies the report
// only if the hash still names that carrier and carrier message ID (the
// index is a hint; the hash decides), in one script. Should the hash name
// another (the record was replaced or gave its carrier message ID up
// meanwhile), it reads the index entry again.
//
// The three are written in an order that leaves, after a crash between
// steps, nothing that misleads and (but for one case) nothing that is never
// cleaned up: a member is added before its hash (so that trimming, which
// walks the listing, finds every hash), and taken away after it; an index
// entry is written after its hash, and deleted before it. A member left
// without its hash, or whose hash now has another destination (a record
// replaced with another destination), is skipped by ListMessages and
// removed by the next trim. The one case: a put that replaced a record with
// another carrier message ID and stopped before deleting the old index
// entry leaves that entry behind, for good; it leads nowhere
// (UpdateMessageStatus checks the hash) and takes a few bytes.
//
// Records are deleted by trimming the oldest members: by age in Purge
// (Retention.MessageMaxAge, which the store learns only then, so the
// records carry no TTL), and by count on every put (Options.MessageCap), so
// that Redis's memory stays bounded even when Purge keeps everything.
// Trimming deletes a record's index entry and its hash only if they are
// still of the version it read, and a member only if its score did not
// change and its record is gone: a record put again meanwhile survives.

// Fields of a message record's hash.
const (
	mfID        = "id"
	mfApp       = "app"
	mfCarrier   = "carrier"
	mfCarrierID = "cmid"
	mfFrom      = "from"
	mfTo        = "to"
	mfRef       = "ref"
	mfCountry   = "country"
	mfStatus    = "status"
	mfCode      = "code"
	mfCreated   = "created"
	mfUpdated   = "updated"
	mfVersion   = "v"
)

// putMessage replaces the record's hash (ARGV: field, value, …) and returns
// the version, carrier, carrier message ID and destination of the record it
// replaced, or an empty array.
var putMessage = newScript(`
local old = redis.call('HMGET', KEYS[1], 'v', 'carrier', 'cmid', 'to')
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV))
if not old[1] then return {} end
return old
`, false)

// indexMessage sets the index entry to ARGV[1] and returns the entry it
// replaced, or nil.
var indexMessage = newScript(`
local prev = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1])
return prev
`, false)

// unindexMessage deletes the index entry if it is ARGV[1].
var unindexMessage = newScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`, false)

// releaseCarrierMessageID empties the record's carrier message ID if it is
// still (ARGV[1] carrier, ARGV[2] carrier message ID): a newer record took it
// over.
var releaseCarrierMessageID = newScript(`
local r = redis.call('HMGET', KEYS[1], 'carrier', 'cmid')
if r[1] == ARGV[1] and r[2] == ARGV[2] then redis.call('HSET', KEYS[1], 'cmid', '') end
return 1
`, false)

// updateMessage applies a report to the record if it is still of (ARGV[1]
// carrier, ARGV[2] carrier message ID), and returns its fields, or nil. ARGV:
// carrier, carrier message ID, status, status code, time (ms). A final
// status is replaced only by another final status.
var updateMessage = newScript(`
local final = {['`+storage.MessageDelivered+`'] = true, ['`+storage.MessageUndelivered+`'] = true, ['`+storage.MessageFailed+`'] = true}
local r = redis.call('HMGET', KEYS[1], 'carrier', 'cmid', 'status')
if r[1] ~= ARGV[1] or r[2] ~= ARGV[2] then return false end
if not (final[r[3]] and not final[ARGV[3]]) then
  redis.call('HSET', KEYS[1], 'status', ARGV[3], 'code', ARGV[4], 'updated', ARGV[5])
end
return redis.call('HGETALL', KEYS[1])
`, false)

// dropMessage deletes the record's hash if its version is ARGV[1], and
// returns 1 if it did.
var dropMessage = newScript(`
if redis.call('HGET', KEYS[1], 'v') == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`, false)

// unlistMessages removes the members ARGV[1], ARGV[3], … whose scores are
// still ARGV[2], ARGV[4], …, and returns how many it removed.
var unlistMessages = newScript(`
local n = 0
for i = 1, #ARGV, 2 do
  if tonumber(redis.call('ZSCORE', KEYS[1], ARGV[i])) == tonumber(ARGV[i + 1]) then
    n = n + redis.call('ZREM', KEYS[1], ARGV[i])
  end
end
return n
`, false)

// listMessages returns the members of the listing, newest first, from rank
// ARGV[3] on: at most ARGV[2] (all if 0), only those that end with ARGV[1]
// if it is not empty. The first element of its answer is the rank to go on
// from, or -1 if it reached the end.
var listMessages = newScript(`
local want, limit, start = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local found = {-1}
while true do
  local page = redis.call('ZREVRANGE', KEYS[1], start, start + 255)
  for i, m in ipairs(page) do
    if want == '' or string.sub(m, -#want) == want then
      found[#found + 1] = m
      if #found - 1 == limit then
        found[1] = start + i
        return found
      end
    end
  end
  if #page < 256 then return found end
  start = start + 256
end
`, true)

// messageLookups bounds how often UpdateMessageStatus reads the index entry
// again after the record it named turned out to be another's: each time,
// a put moved the carrier message ID meanwhile.
const messageLookups = 3

// listMessageCmds returns the commands that begin the put of m (see
// putMessage): they list it, and count the records listed.
func (s *Store) listMessageCmds(m storage.MessageRecord) []rueidis.Completed {
	return []rueidis.Completed{
		s.c.B().Zadd().Key(s.keys.messages()).ScoreMember().ScoreMember(float64(unixMS(m.CreatedAt)), messageMember(m.MessageID, m.DestinationIdentity)).Build(),
		s.c.B().Zcard().Key(s.keys.messages()).Build(),
	}
}

// putMessage stores the record, replacing the one with the same MessageID,
// once listMessageCmds listed it (listed are their results): it replaces
// the record's hash in one script, points the index entry of its carrier
// message ID at it, then cleans up what a replaced record left (its index
// entry, its member), and finally trims the oldest records beyond
// Options.MessageCap. If another record held the same (Carrier,
// CarrierMessageID), the new record takes it over: the other keeps
// everything but its CarrierMessageID, which becomes empty.
func (s *Store) putMessage(ctx context.Context, m storage.MessageRecord, listed []rueidis.RedisResult) error {
	if err := listed[0].Error(); err != nil {
		return fmt.Errorf("list: %w", err)
	}
	count, err := listed[1].AsInt64()
	if err != nil {
		return fmt.Errorf("list: %w", err)
	}

	version := s.uniqueID()
	member := messageMember(m.MessageID, m.DestinationIdentity)
	old, err := putMessage.exec(ctx, s.c, []string{s.keys.message(m.MessageID)},
		mfID, m.MessageID,
		mfApp, m.AppID,
		mfCarrier, m.Carrier,
		mfCarrierID, m.CarrierMessageID,
		mfFrom, m.OriginationIdentity,
		mfTo, m.DestinationIdentity,
		mfRef, m.ReferenceID,
		mfCountry, m.Country,
		mfStatus, m.Status,
		mfCode, m.StatusCode,
		mfCreated, itoa(unixMS(m.CreatedAt)),
		mfUpdated, itoa(unixMS(m.UpdatedAt)),
		mfVersion, version,
	).AsStrSlice()
	if err != nil {
		return err
	}

	if m.CarrierMessageID != "" {
		prev, err := indexMessage.exec(ctx, s.c, []string{s.keys.carrierMessage(m.Carrier, m.CarrierMessageID)},
			indexEntry(version, m.MessageID)).ToString()
		switch {
		case rueidis.IsRedisNil(err):
		case err != nil:
			return fmt.Errorf("index: %w", err)
		default:
			if _, prevID := parseIndexEntry(prev); prevID != m.MessageID {
				err := releaseCarrierMessageID.exec(ctx, s.c, []string{s.keys.message(prevID)}, m.Carrier, m.CarrierMessageID).Error()
				if err != nil {
					return fmt.Errorf("release the carrier message ID of message %s: %w", prevID, err)
				}
			}
		}
	}

	if len(old) == 4 {
		oldVersion, oldCarrier, oldCarrierID, oldTo := old[0], old[1], old[2], old[3]
		if oldCarrierID != "" && (oldCarrier != m.Carrier || oldCarrierID != m.CarrierMessageID) {
			err := unindexMessage.exec(ctx, s.c, []string{s.keys.carrierMessage(oldCarrier, oldCarrierID)},
				indexEntry(oldVersion, m.MessageID)).Error()
			if err != nil {
				return fmt.Errorf("unindex the replaced record: %w", err)
			}
		}
		if oldMember := messageMember(m.MessageID, oldTo); oldMember != member {
			if err := s.c.Do(ctx, s.c.B().Zrem().Key(s.keys.messages()).Member(oldMember).Build()).Error(); err != nil {
				return fmt.Errorf("unlist the replaced record: %w", err)
			}
		}
	}

	if excess := count - int64(s.messageCap); excess > 0 {
		oldest, err := s.c.Do(ctx, s.c.B().Zrange().Key(s.keys.messages()).Min("0").Max(itoa(excess-1)).Withscores().Build()).AsZScores()
		if err != nil {
			return fmt.Errorf("trim: %w", err)
		}
		if _, err := s.dropMessages(ctx, oldest); err != nil {
			return fmt.Errorf("trim: %w", err)
		}
	}
	return nil
}

// UpdateMessageStatus applies the report in one script on the record that
// the index entry of (carrier, carrierMessageID) names, and returns the
// record as it now is.
func (s *Store) UpdateMessageStatus(ctx context.Context, carrier, carrierMessageID string, u storage.MessageStatusUpdate) (storage.MessageRecord, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	m, err := s.updateMessageStatus(ctx, carrier, carrierMessageID, u)
	if err != nil {
		return storage.MessageRecord{}, fmt.Errorf("storage/redis: update the status of message %q at %s: %w", carrierMessageID, carrier, err)
	}
	return m, nil
}

func (s *Store) updateMessageStatus(ctx context.Context, carrier, carrierMessageID string, u storage.MessageStatusUpdate) (storage.MessageRecord, error) {
	if carrierMessageID == "" {
		return storage.MessageRecord{}, storage.ErrNotFound
	}
	tried := ""
	for range messageLookups {
		entry, err := s.c.Do(ctx, s.c.B().Get().Key(s.keys.carrierMessage(carrier, carrierMessageID)).Build()).ToString()
		if rueidis.IsRedisNil(err) {
			return storage.MessageRecord{}, storage.ErrNotFound
		}
		if err != nil {
			return storage.MessageRecord{}, err
		}
		_, id := parseIndexEntry(entry)
		if id == tried {
			// The entry is left over (by a put that did not finish):
			// its record has another carrier message ID.
			return storage.MessageRecord{}, storage.ErrNotFound
		}
		res := updateMessage.exec(ctx, s.c, []string{s.keys.message(id)},
			carrier, carrierMessageID, u.Status, u.StatusCode, itoa(unixMS(u.At)))
		if rueidis.IsRedisNil(res.Error()) {
			tried = id
			continue
		}
		fields, err := res.AsStrMap()
		if err != nil {
			return storage.MessageRecord{}, err
		}
		return decodeMessage(fields)
	}
	return storage.MessageRecord{}, storage.ErrNotFound
}

// ListMessages returns the newest q.Limit records (all if Limit is zero) to
// q.Destination (any if empty), oldest first. A script picks the members
// (filtering by destination in Redis), then their hashes are read in one
// round trip; should some be gone (deleted meanwhile, or left over), the
// script is asked for more.
func (s *Store) ListMessages(ctx context.Context, q storage.MessageQuery) ([]storage.MessageRecord, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	want := ""
	if q.Destination != "" {
		want = "\t" + jsonString(q.Destination)
	}
	limit := max(q.Limit, 0)
	recs := []storage.MessageRecord{} // newest first
	for start := int64(0); start >= 0; {
		need := 0
		if limit > 0 {
			need = limit - len(recs)
		}
		page, err := listMessages.exec(ctx, s.c, []string{s.keys.messages()}, want, itoa(int64(need)), itoa(start)).ToArray()
		if err != nil {
			return nil, fmt.Errorf("storage/redis: list messages: %w", err)
		}
		if len(page) == 0 {
			return nil, errors.New("storage/redis: list messages: empty answer")
		}
		if start, err = page[0].AsInt64(); err != nil {
			return nil, fmt.Errorf("storage/redis: list messages: %w", err)
		}
		members := make([]string, len(page)-1)
		for i, p := range page[1:] {
			if members[i], err = p.ToString(); err != nil {
				return nil, fmt.Errorf("storage/redis: list messages: %w", err)
			}
		}
		found, err := s.messagesOf(ctx, members)
		if err != nil {
			return nil, fmt.Errorf("storage/redis: list messages: %w", err)
		}
		recs = append(recs, found...)
		if limit > 0 && len(recs) >= limit {
			break
		}
	}
	slices.Reverse(recs)
	return recs, nil
}

// messagesOf reads the records of the members, in their order, skipping
// members whose record is gone or has another destination.
func (s *Store) messagesOf(ctx context.Context, members []string) ([]storage.MessageRecord, error) {
	if len(members) == 0 {
		return nil, nil
	}
	cmds := make(rueidis.Commands, len(members))
	for i, member := range members {
		id, _ := parseMember(member)
		cmds[i] = s.c.B().Hgetall().Key(s.keys.message(id)).Build()
	}
	var recs []storage.MessageRecord
	for i, res := range s.c.DoMulti(ctx, cmds...) {
		fields, err := res.AsStrMap()
		if err != nil {
			return nil, err
		}
		if len(fields) == 0 {
			continue
		}
		m, err := decodeMessage(fields)
		if err != nil {
			return nil, fmt.Errorf("message %s: %w", fields[mfID], err)
		}
		if messageMember(m.MessageID, m.DestinationIdentity) != members[i] {
			continue
		}
		recs = append(recs, m)
	}
	return recs, nil
}

// dropMessages deletes the records of the members (with their scores), and
// returns how many members it removed. For each member it reads the
// record's hash; then, in one round trip per step, it deletes the index
// entries of the records that are the member's (same destination), their
// hashes, if still of the version it read, and finally the members whose
// record is gone, if their score did not change.
func (s *Store) dropMessages(ctx context.Context, members []rueidis.ZScore) (int, error) {
	if len(members) == 0 {
		return 0, nil
	}
	reads := make(rueidis.Commands, len(members))
	for i, z := range members {
		id, _ := parseMember(z.Member)
		reads[i] = s.c.B().Hmget().Key(s.keys.message(id)).Field(mfVersion, mfCarrier, mfCarrierID, mfTo).Build()
	}
	var (
		unindex, drop []rueidis.LuaExec
		dropped       []int // the members of drop
		unlist        []string
	)
	for i, res := range s.c.DoMulti(ctx, reads...) {
		vals, err := res.ToArray()
		if err != nil {
			return 0, err
		}
		member, score := members[i].Member, itoa(int64(members[i].Score))
		id, _ := parseMember(member)
		f := make([]string, len(vals))
		for j, v := range vals {
			f[j], _ = v.ToString() // "" for a missing field
		}
		if len(f) != 4 || f[0] == "" || messageMember(id, f[3]) != member {
			unlist = append(unlist, member, score) // left over: no record of its own
			continue
		}
		version, carrier, carrierID := f[0], f[1], f[2]
		if carrierID != "" {
			unindex = append(unindex, rueidis.LuaExec{Keys: []string{s.keys.carrierMessage(carrier, carrierID)}, Args: []string{indexEntry(version, id)}})
		}
		drop = append(drop, rueidis.LuaExec{Keys: []string{s.keys.message(id)}, Args: []string{version}})
		dropped = append(dropped, i)
	}
	for _, res := range unindexMessage.execEach(ctx, s.c, unindex) {
		if err := res.Error(); err != nil {
			return 0, fmt.Errorf("unindex: %w", err)
		}
	}
	for j, res := range dropMessage.execEach(ctx, s.c, drop) {
		n, err := res.AsInt64()
		if err != nil {
			return 0, fmt.Errorf("delete: %w", err)
		}
		if n == 1 { // else put again meanwhile: it stays listed
			z := members[dropped[j]]
			unlist = append(unlist, z.Member, itoa(int64(z.Score)))
		}
	}
	if len(unlist) == 0 {
		return 0, nil
	}
	n, err := unlistMessages.exec(ctx, s.c, []string{s.keys.messages()}, unlist...).AsInt64()
	if err != nil {
		return 0, fmt.Errorf("unlist: %w", err)
	}
	return int(n), nil
}

// purgeMessages deletes at most batch records created before cut, oldest
// first, and returns how many it deleted.
func (s *Store) purgeMessages(ctx context.Context, cut time.Time, batch int) (int, error) {
	oldest, err := s.c.Do(ctx, s.c.B().Zrangebyscore().Key(s.keys.messages()).Min("-inf").Max("("+itoa(unixMS(cut))).
		Withscores().Limit(0, int64(batch)).Build()).AsZScores()
	if err != nil {
		return 0, err
	}
	return s.dropMessages(ctx, oldest)
}

// decodeMessage reads a record's hash; storage.ErrNotFound if it is empty.
func decodeMessage(f map[string]string) (storage.MessageRecord, error) {
	if len(f) == 0 {
		return storage.MessageRecord{}, storage.ErrNotFound
	}
	m := storage.MessageRecord{
		MessageID:           f[mfID],
		AppID:               f[mfApp],
		Carrier:             f[mfCarrier],
		CarrierMessageID:    f[mfCarrierID],
		OriginationIdentity: f[mfFrom],
		DestinationIdentity: f[mfTo],
		ReferenceID:         f[mfRef],
		Country:             f[mfCountry],
		Status:              f[mfStatus],
		StatusCode:          f[mfCode],
	}
	for _, t := range []struct {
		field string
		to    *time.Time
	}{{mfCreated, &m.CreatedAt}, {mfUpdated, &m.UpdatedAt}} {
		ms, err := strconv.ParseInt(f[t.field], 10, 64)
		if err != nil {
			return storage.MessageRecord{}, fmt.Errorf("corrupt field %s %q", t.field, f[t.field])
		}
		*t.to = fromUnixMS(ms)
	}
	return m, nil
}

// messageMember is a record's member of the listing.
func messageMember(messageID, destination string) string {
	return messageID + "\t" + jsonString(destination)
}

// parseMember splits a member of the listing into the message ID and the
// destination's JSON.
func parseMember(member string) (messageID, destinationJSON string) {
	i := strings.LastIndexByte(member, '\t')
	if i < 0 {
		return member, ""
	}
	return member[:i], member[i+1:]
}

// indexEntry is the value of an index entry.
func indexEntry(version, messageID string) string { return version + "\t" + messageID }

// parseIndexEntry splits the value of an index entry.
func parseIndexEntry(entry string) (version, messageID string) {
	version, messageID, _ = strings.Cut(entry, "\t")
	return version, messageID
}

// jsonString is s as a JSON string, which has no tab.
func jsonString(s string) string {
	b, _ := json.Marshal(s) // a string always encodes
	return string(b)
}
