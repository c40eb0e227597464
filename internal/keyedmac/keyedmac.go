// Package keyedmac computes HMAC-SHA256 under one key many times over.
//
// Keying an HMAC costs two SHA-256 blocks and several allocations, as much
// as hashing a short message. A Key keeps keyed states in a pool and resets one
// for each message, so that a server hashing every request under the same
// key pays only for the message.
package keyedmac

import (
	"crypto/hmac"
	"crypto/sha256"
	"hash"
	"sync"
)

// Size is the length of a MAC in bytes.
const Size = sha256.Size

// Key is an HMAC-SHA256 key ready for use, made by New (the zero Key is
// not). It is safe for concurrent use.
type Key struct {
	states sync.Pool // of hash.Hash keyed with the key
}

// New returns a Key for key, ready for use. It keeps its own copy of key.
func New(key []byte) *Key {
	key = append([]byte(nil), key...)
	return &Key{states: sync.Pool{New: func() any { return hmac.New(sha256.New, key) }}}
}

// Sum appends the HMAC-SHA256 of msg to dst and returns the result. dst and
// msg may overlap: msg is read in full before dst is written.
func (k *Key) Sum(dst, msg []byte) []byte {
	h := k.states.Get().(hash.Hash)
	h.Reset()
	h.Write(msg)
	dst = h.Sum(dst)
	k.states.Put(h)
	return dst
}
