package otp

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"math/big"
	"strconv"

	"github.com/otpd/otpd/internal/keyedmac"
)

var cryptoRand = rand.Reader

// powersOfTen[n] is 10^n for every code length.
var powersOfTen = func() [MaxCodeLength + 1]*big.Int {
	var p [MaxCodeLength + 1]*big.Int
	for n := range p {
		p[n] = new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil)
	}
	return p
}()

// newCode returns a code of n decimal digits (MinCodeLength to
// MaxCodeLength), uniform over all 10^n values, leading zeros included:
// crypto/rand's Int rejects samples rather than reducing them modulo 10^n,
// so there is no modulo bias.
func newCode(r io.Reader, n int) (string, error) {
	v, err := rand.Int(r, powersOfTen[n])
	if err != nil {
		return "", fmt.Errorf("generate code: %w", err)
	}
	var buf [MaxCodeLength]byte
	digits := strconv.AppendUint(buf[:0], v.Uint64(), 10)
	code := make([]byte, n)
	for i := range code[:n-len(digits)] {
		code[i] = '0'
	}
	copy(code[n-len(digits):], digits)
	return string(code), nil
}

// codeMAC returns the keyed hash a code is stored as. It binds the code to
// its application generation, destination and reference, so a stored MAC
// proves nothing about any other code.
func (s *Service) codeMAC(appGeneration, destination, referenceID, code string) []byte {
	var input [256]byte
	b := input[:0]
	for _, part := range [...]string{"otpd-code-v1", appGeneration, destination, referenceID, code} {
		// Length-prefix every part so that no two tuples share an input.
		b = strconv.AppendInt(b, int64(len(part)), 10)
		b = append(b, ':')
		b = append(b, part...)
	}
	return s.macKey.Sum(make([]byte, 0, keyedmac.Size), b)
}

// KeyCheck returns the check of a code hashing key: a keyed hash of a fixed
// input, which tells two keys apart and reveals nothing about either. A
// store keeps the check of the key its codes are hashed with
// (storage.Store.KeyCheck), so that a server given another key refuses to
// start instead of answering false to every right code. (codeMAC's inputs
// begin with a digit, so none is this one.)
func KeyCheck(macKey []byte) string {
	sum := keyedmac.New(macKey).Sum(nil, []byte("otpd-key-check-v1"))
	return "v1:" + hex.EncodeToString(sum[:16])
}

// randomHex returns n random bytes from r, hex-encoded.
func randomHex(r io.Reader, n int) (string, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", fmt.Errorf("read random bytes: %w", err)
	}
	return hex.EncodeToString(b), nil
}
