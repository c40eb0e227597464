package otp

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/big"
)

var cryptoRand = rand.Reader

// newCode returns a code of n decimal digits, uniform over all 10^n values
// (leading zeros included): crypto/rand's Int rejects samples rather than
// reducing them modulo 10^n, so there is no modulo bias.
func newCode(r io.Reader, n int) (string, error) {
	limit := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil)
	v, err := rand.Int(r, limit)
	if err != nil {
		return "", fmt.Errorf("generate code: %w", err)
	}
	return fmt.Sprintf("%0*d", n, v), nil
}

// codeMAC returns the keyed hash a code is stored as. It binds the code to
// its application generation, destination and reference, so a stored MAC
// proves nothing about any other code.
func (s *Service) codeMAC(appGeneration, destination, referenceID, code string) []byte {
	m := hmac.New(sha256.New, s.macKey)
	for _, part := range []string{"otpd-code-v1", appGeneration, destination, referenceID, code} {
		// Length-prefix every part so that no two tuples share an input.
		fmt.Fprintf(m, "%d:%s", len(part), part)
	}
	return m.Sum(nil)
}

// randomHex returns n random bytes from r, hex-encoded.
func randomHex(r io.Reader, n int) (string, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", fmt.Errorf("read random bytes: %w", err)
	}
	return hex.EncodeToString(b), nil
}
