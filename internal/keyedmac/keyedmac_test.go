package keyedmac

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"testing"
)

// RFC 4231, test case 2: a key shorter than the block, a short message.
func TestSumKnownAnswer(t *testing.T) {
	k := New([]byte("Jefe"))
	got := hex.EncodeToString(k.Sum(nil, []byte("what do ya want for nothing?")))
	const want = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
	if got != want {
		t.Fatalf("Sum = %s, want %s", got, want)
	}
}

// Every Sum, on a fresh or a reused state, matches crypto/hmac keyed anew,
// from many goroutines at once.
func TestSumMatchesHMACConcurrently(t *testing.T) {
	key := bytes.Repeat([]byte{0x5a}, 100) // longer than a block: hashed first
	k := New(key)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				msg := bytes.Repeat([]byte{byte(g), byte(i)}, i%150)
				want := hmac.New(sha256.New, key)
				want.Write(msg)
				if got := k.Sum([]byte("prefix"), msg); !bytes.Equal(got, append([]byte("prefix"), want.Sum(nil)...)) {
					t.Errorf("goroutine %d, message %d: Sum = %x, want prefix + %x", g, i, got, want.Sum(nil))
					return
				}
			}
		})
	}
	wg.Wait()
}

// The key is copied: changing the caller's slice, even before the first
// Sum, changes nothing.
func TestNewCopiesTheKey(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	want := hmac.New(sha256.New, bytes.Clone(key))
	want.Write([]byte("m"))
	k := New(key)
	key[0] ^= 0xff
	if got := k.Sum(nil, []byte("m")); !bytes.Equal(got, want.Sum(nil)) {
		t.Fatalf("Sum = %x after the caller's key changed, want %x", got, want.Sum(nil))
	}
}

// Two Keys never share keyed states.
func TestKeysKeepTheirOwnStates(t *testing.T) {
	a, b := New([]byte("key a")), New([]byte("key b"))
	for range 3 {
		if bytes.Equal(a.Sum(nil, []byte("m")), b.Sum(nil, []byte("m"))) {
			t.Fatal("two keys gave the same MAC")
		}
	}
}

// dst may be msg's own storage.
func TestSumIntoTheMessage(t *testing.T) {
	k := New([]byte("key"))
	msg := []byte("a message longer than thirty-two bytes, to be overwritten")
	want := k.Sum(nil, msg)
	if got := k.Sum(msg[:0], msg); !bytes.Equal(got, want) {
		t.Fatalf("Sum into msg = %x, want %x", got, want)
	}
}

func BenchmarkSum(b *testing.B) {
	k := New(bytes.Repeat([]byte{1}, 32))
	msg := bytes.Repeat([]byte{'m'}, 100)
	var out [Size]byte
	b.ReportAllocs()
	for b.Loop() {
		k.Sum(out[:0], msg)
	}
}

func BenchmarkHMACNew(b *testing.B) {
	key := bytes.Repeat([]byte{1}, 32)
	msg := bytes.Repeat([]byte{'m'}, 100)
	var out [Size]byte
	b.ReportAllocs()
	for b.Loop() {
		h := hmac.New(sha256.New, key)
		h.Write(msg)
		h.Sum(out[:0])
	}
}
