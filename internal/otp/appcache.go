package otp

import (
	"context"
	"sync"
	"time"

	"github.com/otpd/otpd/internal/storage"
)

// appCache keeps the applications that sends and verifications read, so
// that the hot paths do not read the store for them on every request.
//
// It is exact for changes made through its own Service, which evicts or
// replaces the entry (DeleteApp, UpdateSMSChannel). A change made by another
// instance on a shared store is seen here once the entry is older than ttl:
// until then this instance may still send for an application deleted, or
// with its channel disabled, elsewhere. Even then no code crosses
// applications: a deleted application's codes never verify (the store checks
// the generation inside its atomic section), and a code sent for it is
// refused when stored (ErrAppNotFound).
//
// Only applications that exist are kept, so the cache holds at most as many
// entries as there are applications. Ages are measured on the monotonic
// clock, never the Service's injected one.
type appCache struct {
	ttl time.Duration // 0 disables the cache

	mu   sync.RWMutex
	apps map[string]cachedApp
}

type cachedApp struct {
	app     storage.App
	fetched time.Time
	// gone marks an application deleted through this Service: readings
	// fetched before then are stale and not kept.
	gone bool
}

func newAppCache(ttl time.Duration) *appCache {
	return &appCache{ttl: ttl, apps: map[string]cachedApp{}}
}

// get returns the application with the given ID, from the cache if its entry
// is younger than ttl, else through fetch (whose answer it keeps).
func (c *appCache) get(ctx context.Context, id string, fetch func(context.Context, string) (storage.App, error)) (storage.App, error) {
	if c.ttl <= 0 {
		return fetch(ctx, id)
	}
	c.mu.RLock()
	e, ok := c.apps[id]
	c.mu.RUnlock()
	if ok && !e.gone && time.Since(e.fetched) < c.ttl {
		return e.app, nil
	}
	fetched := time.Now()
	app, err := fetch(ctx, id)
	if err != nil {
		return app, err
	}
	c.put(app, fetched)
	return app, nil
}

// put keeps app as read at fetched, unless what is kept for it is newer.
func (c *appCache) put(app storage.App, fetched time.Time) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.apps[app.ID]; ok && e.fetched.After(fetched) {
		return
	}
	c.apps[app.ID] = cachedApp{app: app, fetched: fetched}
}

// deleted records that the application was deleted now, so that no reading
// fetched before is kept.
func (c *appCache) deleted(id string) {
	if c.ttl <= 0 {
		return
	}
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.apps[id] = cachedApp{app: storage.App{ID: id}, fetched: now, gone: true}
	// Forget the marks that no reading can predate any more, so that they
	// do not pile up.
	for k, e := range c.apps {
		if e.gone && now.Sub(e.fetched) > time.Minute {
			delete(c.apps, k)
		}
	}
}
