package otp

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/otpd/otpd/internal/sms"
	"github.com/otpd/otpd/internal/storage"
)

// Limits of application parameters.
const (
	MaxAppNameLength  = 128
	MaxTags           = 50
	MaxTagKeyLength   = 128
	MaxTagValueLength = 256
)

// reservedTagPrefix begins the tag keys that AWS keeps for itself, in any
// case.
const reservedTagPrefix = "aws:"

// NewApp describes an application to create.
type NewApp struct {
	// ID is the application ID to use: 32 lowercase hex characters. Empty
	// means a new random ID. Operators migrating from Pinpoint set it to keep
	// the IDs their code already uses.
	ID   string
	Name string
	Tags map[string]string
}

// CreateApp creates an application with its SMS channel enabled.
func (s *Service) CreateApp(ctx context.Context, req NewApp) (storage.App, error) {
	if err := CheckNewApp(req); err != nil {
		return storage.App{}, err
	}
	id := req.ID
	if id == "" {
		var err error
		if id, err = randomHex(s.rand, 16); err != nil {
			return storage.App{}, err
		}
	}
	generation, err := randomHex(s.rand, 16)
	if err != nil {
		return storage.App{}, err
	}
	now := s.now().UTC().Truncate(timeResolution)
	tags := req.Tags
	if tags == nil {
		tags = map[string]string{}
	}
	app := storage.App{
		ID:         id,
		Name:       req.Name,
		Tags:       tags,
		CreatedAt:  now,
		Generation: generation,
		SMS:        storage.SMSChannel{Enabled: true, Version: 1, CreatedAt: now, UpdatedAt: now},
	}
	start := time.Now()
	err = s.store.CreateApp(ctx, app)
	s.storeCalled("CreateApp", start, err)
	if err != nil {
		if errors.Is(err, storage.ErrAlreadyExists) {
			return storage.App{}, &AppExistsError{ID: id}
		}
		return storage.App{}, fmt.Errorf("create application: %w", err)
	}
	return app, nil
}

// CheckNewApp reports the first rule of CreateApp that req breaks, as an
// *InvalidError, or nil.
func CheckNewApp(req NewApp) error {
	if req.ID != "" && !IsAppID(req.ID) {
		return invalid("Id", "must be 32 lowercase hexadecimal characters; got %q", req.ID)
	}
	if n := utf8.RuneCountInString(req.Name); n < 1 || n > MaxAppNameLength {
		return invalid("Name", "must be 1 to %d characters; got %d", MaxAppNameLength, n)
	}
	if err := checkNoControl("Name", req.Name); err != nil {
		return err
	}
	if len(req.Tags) > MaxTags {
		return invalid("tags", "may hold at most %d tags; got %d", MaxTags, len(req.Tags))
	}
	for k, v := range req.Tags {
		if n := utf8.RuneCountInString(k); n < 1 || n > MaxTagKeyLength {
			return invalid("tags", "keys must be 1 to %d characters; got %q", MaxTagKeyLength, k)
		}
		if n := utf8.RuneCountInString(v); n > MaxTagValueLength {
			return invalid("tags", "values must be at most %d characters; the value of %q has %d", MaxTagValueLength, k, n)
		}
		if hasControl(k) || hasControl(v) {
			return invalid("tags", "keys and values must not contain control characters such as NUL, a tab or a newline; got %q: %q", k, v)
		}
		if strings.HasPrefix(strings.ToLower(k), reservedTagPrefix) {
			return invalid("tags", "keys must not begin with %q, which AWS reserves; got %q", reservedTagPrefix, k)
		}
	}
	return nil
}

// IsAppID reports whether id has the form of an application ID: 32 lowercase
// hexadecimal characters.
func IsAppID(id string) bool {
	if len(id) != 32 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// App returns the application with the given ID as the store has it now, or
// ErrAppNotFound.
func (s *Service) App(ctx context.Context, id string) (storage.App, error) {
	fetched := time.Now()
	app, err := s.readApp(ctx, id)
	if err == nil {
		s.apps.put(app, fetched)
	}
	return app, err
}

// cachedApp returns the application with the given ID, or ErrAppNotFound,
// as read at most Config.AppCacheTTL ago: for sends and verifications, which
// need it on every request.
func (s *Service) cachedApp(ctx context.Context, id string) (storage.App, error) {
	return s.apps.get(ctx, id, s.readApp)
}

// readApp reads the application with the given ID from the store.
func (s *Service) readApp(ctx context.Context, id string) (storage.App, error) {
	if !IsAppID(id) {
		// No such ID can exist; spare the store the look-up.
		return storage.App{}, ErrAppNotFound
	}
	start := time.Now()
	app, err := s.store.GetApp(ctx, id)
	s.storeCalled("GetApp", start, err)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.App{}, ErrAppNotFound
	}
	if err != nil {
		return storage.App{}, fmt.Errorf("get application: %w", err)
	}
	return app, nil
}

// Apps returns up to limit applications with IDs after the given one, in
// ID order, and whether more follow.
func (s *Service) Apps(ctx context.Context, after string, limit int) ([]storage.App, bool, error) {
	start := time.Now()
	apps, err := s.store.ListApps(ctx, after, limit+1)
	s.storeCalled("ListApps", start, err)
	if err != nil {
		return nil, false, fmt.Errorf("list applications: %w", err)
	}
	if len(apps) > limit {
		return apps[:limit], true, nil
	}
	return apps, false, nil
}

// DeleteApp deletes an application; its codes stop verifying at once.
func (s *Service) DeleteApp(ctx context.Context, id string) (storage.App, error) {
	if !IsAppID(id) {
		return storage.App{}, ErrAppNotFound
	}
	start := time.Now()
	app, err := s.store.DeleteApp(ctx, id)
	s.storeCalled("DeleteApp", start, err)
	s.apps.deleted(id) // whatever the answer: the application may be gone
	if errors.Is(err, storage.ErrNotFound) {
		return storage.App{}, ErrAppNotFound
	}
	if err != nil {
		return storage.App{}, fmt.Errorf("delete application: %w", err)
	}
	return app, nil
}

// UpdateSMSChannel changes an application's SMS channel settings.
func (s *Service) UpdateSMSChannel(ctx context.Context, appID string, u storage.SMSChannelUpdate) (storage.App, error) {
	if u.SenderID != nil && *u.SenderID != "" {
		if err := sms.CheckSenderID(*u.SenderID); err != nil {
			return storage.App{}, invalid("SenderId", "%s; got %q", err, *u.SenderID)
		}
	}
	if u.ShortCode != nil && *u.ShortCode != "" && !sms.IsShortCode(*u.ShortCode) {
		return storage.App{}, invalid("ShortCode", "must be 3 to %d digits; got %q", sms.MaxShortCodeLength, *u.ShortCode)
	}
	if !IsAppID(appID) {
		return storage.App{}, ErrAppNotFound
	}
	start := time.Now()
	app, err := s.store.UpdateSMSChannel(ctx, appID, u, s.now().UTC().Truncate(timeResolution))
	s.storeCalled("UpdateSMSChannel", start, err)
	if errors.Is(err, storage.ErrNotFound) {
		s.apps.deleted(appID)
		return storage.App{}, ErrAppNotFound
	}
	if err != nil {
		return storage.App{}, fmt.Errorf("update SMS channel: %w", err)
	}
	s.apps.put(app, time.Now())
	return app, nil
}
