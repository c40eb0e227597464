package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/rueidis"

	"github.com/otpd/otpd/internal/storage"
)

// Fields of an application's hash.
const (
	fID         = "id"
	fName       = "name"
	fTags       = "tags" // a JSON object
	fCreated    = "created"
	fGeneration = "gen"
	fSMSEnabled = "sms_enabled" // "1" or "0"
	fSenderID   = "sms_sender_id"
	fShortCode  = "sms_short_code"
	fSMSVersion = "sms_version"
	fSMSCreated = "sms_created"
	fSMSUpdated = "sms_updated"
)

// createApp stores the application (ARGV: field, value, …) unless its key
// exists. It returns 1 if it stored it, 0 if it existed.
var createApp = newScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
`, false)

// deleteApp deletes the application and returns its fields, or nil.
var deleteApp = newScript(`
local app = redis.call('HGETALL', KEYS[1])
if #app == 0 then return false end
redis.call('DEL', KEYS[1])
return app
`, false)

// updateSMS applies an update to the SMS channel of the application and
// returns its fields, or nil if there is none. ARGV: enabled ("", "0" or
// "1"), set sender ID ("0"/"1"), sender ID, set short code, short code,
// now.
var updateSMS = newScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
if ARGV[1] ~= '' then redis.call('HSET', KEYS[1], 'sms_enabled', ARGV[1]) end
if ARGV[2] == '1' then redis.call('HSET', KEYS[1], 'sms_sender_id', ARGV[3]) end
if ARGV[4] == '1' then redis.call('HSET', KEYS[1], 'sms_short_code', ARGV[5]) end
redis.call('HINCRBY', KEYS[1], 'sms_version', 1)
redis.call('HSET', KEYS[1], 'sms_updated', ARGV[6])
return redis.call('HGETALL', KEYS[1])
`, false)

// CreateApp stores the application's hash, then adds its ID to the index
// (another slot, so another command). The hash is the truth: a listing skips
// index entries without one, and an entry missing after a crash between the
// two steps is added again by any later CreateApp of the same ID.
func (s *Store) CreateApp(ctx context.Context, app storage.App) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	tags := app.Tags
	if tags == nil {
		tags = map[string]string{}
	}
	tagsJSON, err := json.Marshal(tags)
	if err != nil {
		return fmt.Errorf("storage/redis: create app %s: encode tags: %w", app.ID, err)
	}
	created, err := createApp.exec(ctx, s.c, []string{s.keys.app(app.ID)},
		fID, app.ID,
		fName, app.Name,
		fTags, string(tagsJSON),
		fCreated, itoa(unixMS(app.CreatedAt)),
		fGeneration, app.Generation,
		fSMSEnabled, flag(app.SMS.Enabled),
		fSenderID, app.SMS.SenderID,
		fShortCode, app.SMS.ShortCode,
		fSMSVersion, strconv.Itoa(app.SMS.Version),
		fSMSCreated, itoa(unixMS(app.SMS.CreatedAt)),
		fSMSUpdated, itoa(unixMS(app.SMS.UpdatedAt)),
	).AsInt64()
	if err != nil {
		return fmt.Errorf("storage/redis: create app %s: %w", app.ID, err)
	}
	if err := s.index(ctx, app.ID); err != nil {
		return fmt.Errorf("storage/redis: create app %s: index: %w", app.ID, err)
	}
	if created == 0 {
		return fmt.Errorf("storage/redis: create app %s: %w", app.ID, storage.ErrAlreadyExists)
	}
	return nil
}

// index adds the ID to the index of the applications.
func (s *Store) index(ctx context.Context, id string) error {
	return s.c.Do(ctx, s.c.B().Zadd().Key(s.keys.apps()).ScoreMember().ScoreMember(0, id).Build()).Error()
}

// GetApp returns the application, or storage.ErrNotFound.
func (s *Store) GetApp(ctx context.Context, id string) (storage.App, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	fields, err := s.c.Do(ctx, s.c.B().Hgetall().Key(s.keys.app(id)).Build()).AsStrMap()
	if err != nil {
		return storage.App{}, fmt.Errorf("storage/redis: get app %s: %w", id, err)
	}
	app, err := decodeApp(fields)
	if err != nil {
		return storage.App{}, fmt.Errorf("storage/redis: get app %s: %w", id, err)
	}
	return app, nil
}

// ListApps returns up to limit applications whose IDs sort after the given
// one, in ascending ID order; a limit of zero or less means no limit. It
// pages through the index and skips IDs whose application is gone (deleted
// between the index and the hash, or left by a crash).
func (s *Store) ListApps(ctx context.Context, after string, limit int) ([]storage.App, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	apps := []storage.App{}
	for {
		page := int64(100)
		if limit > 0 {
			page = int64(limit - len(apps))
		}
		min := "-"
		if after != "" {
			min = "(" + after
		}
		ids, err := s.c.Do(ctx, s.c.B().Zrangebylex().Key(s.keys.apps()).Min(min).Max("+").Limit(0, page).Build()).AsStrSlice()
		if err != nil {
			return nil, fmt.Errorf("storage/redis: list apps: %w", err)
		}
		if len(ids) == 0 {
			return apps, nil
		}
		cmds := make(rueidis.Commands, len(ids))
		for i, id := range ids {
			cmds[i] = s.c.B().Hgetall().Key(s.keys.app(id)).Build()
		}
		for i, res := range s.c.DoMulti(ctx, cmds...) {
			fields, err := res.AsStrMap()
			if err != nil {
				return nil, fmt.Errorf("storage/redis: list apps: %w", err)
			}
			if len(fields) == 0 {
				continue
			}
			app, err := decodeApp(fields)
			if err != nil {
				return nil, fmt.Errorf("storage/redis: list apps: app %s: %w", ids[i], err)
			}
			apps = append(apps, app)
		}
		if int64(len(ids)) < page || limit > 0 && len(apps) >= limit {
			return apps, nil
		}
		after = ids[len(ids)-1]
	}
}

// DeleteApp deletes the application's hash, in one script, then its index
// entry. Its codes and failures are keyed by its generation, which no
// application has any more: they never count again and expire by TTL. Its
// send records name the generation they were made under, which no longer
// matches. If the application was created again between the two steps, the
// index entry is put back.
//
// VerifyCode checks the application's generation in its first round trip
// and decides in its second: an attempt that checked before DeleteApp
// deleted the hash may still consume the code afterwards. Such an attempt
// overlaps the DeleteApp call, so it is ordered before it; every attempt
// that starts after DeleteApp returned answers OutcomeUnknown.
func (s *Store) DeleteApp(ctx context.Context, id string) (storage.App, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	key := s.keys.app(id)
	res := deleteApp.exec(ctx, s.c, []string{key})
	if rueidis.IsRedisNil(res.Error()) {
		return storage.App{}, fmt.Errorf("storage/redis: delete app %s: %w", id, storage.ErrNotFound)
	}
	fields, err := res.AsStrMap()
	if err != nil {
		return storage.App{}, fmt.Errorf("storage/redis: delete app %s: %w", id, err)
	}
	app, err := decodeApp(fields)
	if err != nil {
		return storage.App{}, fmt.Errorf("storage/redis: delete app %s: %w", id, err)
	}
	if err := s.c.Do(ctx, s.c.B().Zrem().Key(s.keys.apps()).Member(id).Build()).Error(); err != nil {
		return storage.App{}, fmt.Errorf("storage/redis: delete app %s: unindex: %w", id, err)
	}
	exists, err := s.c.Do(ctx, s.c.B().Exists().Key(key).Build()).AsInt64()
	if err == nil && exists == 1 {
		err = s.index(ctx, id)
	}
	if err != nil {
		return storage.App{}, fmt.Errorf("storage/redis: delete app %s: reindex: %w", id, err)
	}
	return app, nil
}

// UpdateSMSChannel applies u to the application's SMS channel in one script.
func (s *Store) UpdateSMSChannel(ctx context.Context, appID string, u storage.SMSChannelUpdate, now time.Time) (storage.App, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	enabled := ""
	if u.Enabled != nil {
		enabled = flag(*u.Enabled)
	}
	setSender, sender := optional(u.SenderID)
	setShort, short := optional(u.ShortCode)
	res := updateSMS.exec(ctx, s.c, []string{s.keys.app(appID)}, enabled, setSender, sender, setShort, short, itoa(unixMS(now)))
	if rueidis.IsRedisNil(res.Error()) {
		return storage.App{}, fmt.Errorf("storage/redis: update the SMS channel of app %s: %w", appID, storage.ErrNotFound)
	}
	fields, err := res.AsStrMap()
	if err != nil {
		return storage.App{}, fmt.Errorf("storage/redis: update the SMS channel of app %s: %w", appID, err)
	}
	app, err := decodeApp(fields)
	if err != nil {
		return storage.App{}, fmt.Errorf("storage/redis: update the SMS channel of app %s: %w", appID, err)
	}
	return app, nil
}

// decodeApp reads an application's hash; storage.ErrNotFound if it is
// empty.
func decodeApp(f map[string]string) (storage.App, error) {
	if len(f) == 0 {
		return storage.App{}, storage.ErrNotFound
	}
	app := storage.App{
		ID:         f[fID],
		Name:       f[fName],
		Generation: f[fGeneration],
		SMS: storage.SMSChannel{
			Enabled:   f[fSMSEnabled] == "1",
			SenderID:  f[fSenderID],
			ShortCode: f[fShortCode],
		},
	}
	if err := json.Unmarshal([]byte(f[fTags]), &app.Tags); err != nil || app.Tags == nil {
		return storage.App{}, fmt.Errorf("corrupt tags %q", f[fTags])
	}
	var err error
	number := func(field string) int64 {
		n, e := strconv.ParseInt(f[field], 10, 64)
		if e != nil && err == nil {
			err = fmt.Errorf("corrupt field %s %q", field, f[field])
		}
		return n
	}
	app.CreatedAt = fromUnixMS(number(fCreated))
	app.SMS.Version = int(number(fSMSVersion))
	app.SMS.CreatedAt = fromUnixMS(number(fSMSCreated))
	app.SMS.UpdatedAt = fromUnixMS(number(fSMSUpdated))
	if err != nil {
		return storage.App{}, err
	}
	return app, nil
}

// flag encodes a bool.
func flag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// optional encodes an optional string as (set, value).
func optional(p *string) (set, value string) {
	if p == nil {
		return "0", ""
	}
	return "1", *p
}
