package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"sync"

	"github.com/otpd/otpd/internal/keyedmac"
)

// maxCachedKeys bounds the signing key cache. A key is valid for one day,
// so the cache needs about one entry per active access key.
const maxCachedKeys = 1024

// keyCache holds derived signing keys, ready to sign with. The secret is
// part of the cache key, so a rotated secret never reuses a key derived
// from the old one.
type keyCache struct {
	mu   sync.Mutex
	keys map[keyCacheID]*keyedmac.Key // never changed once stored
}

type keyCacheID struct {
	accessKeyID, secret, date, region, service string
}

// signingKey returns the SigV4 signing key for the secret on date
// (yyyymmdd) in v's region and service, deriving it on a cache miss.
func (v *Verifier) signingKey(accessKeyID, secret, date string) *keyedmac.Key {
	id := keyCacheID{accessKeyID, secret, date, v.Region, v.Service}
	c := &v.keys
	c.mu.Lock()
	key, ok := c.keys[id]
	c.mu.Unlock()
	if ok {
		return key
	}

	derived := deriveSigningKey(secret, date, v.Region, v.Service)
	key = keyedmac.New(derived[:])
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.keys == nil {
		c.keys = make(map[keyCacheID]*keyedmac.Key)
	}
	if len(c.keys) >= maxCachedKeys {
		for old := range c.keys { // evict an arbitrary entry
			delete(c.keys, old)
			break
		}
	}
	c.keys[id] = key
	return key
}

// deriveSigningKey computes the HMAC chain
// "AWS4"+secret → date → region → service → "aws4_request".
func deriveSigningKey(secret, date, region, service string) [sha256.Size]byte {
	key := []byte("AWS4" + secret)
	for _, data := range [...]string{date, region, service, scopeTerminator} {
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(data))
		key = mac.Sum(nil)
	}
	return [sha256.Size]byte(key)
}
