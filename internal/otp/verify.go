package otp

import (
	"context"
	"crypto/hmac"
	"fmt"
	"time"

	"github.com/otpd/otpd/internal/phone"
	"github.com/otpd/otpd/internal/storage"
)

// VerifyRequest asks whether a code is right.
type VerifyRequest struct {
	AppID               string
	DestinationIdentity string
	ReferenceID         string
	Otp                 string
}

// Verify reports whether req.Otp is the live code for (application,
// destination, ReferenceId), consuming it if so. Every way of being wrong
// (wrong, expired, consumed, exhausted, unknown, locked out) gives the same
// false answer; the outcome returned alongside says which, for logs and
// metrics only.
func (s *Service) Verify(ctx context.Context, req VerifyRequest) (bool, storage.Outcome, error) {
	if err := checkVerifyRequest(req); err != nil {
		return false, "", err
	}
	if s.keyReplaced() {
		return false, "", ErrKeyReplaced
	}
	app, err := s.cachedApp(ctx, req.AppID)
	if err != nil {
		return false, "", err
	}
	candidate := s.codeMAC(app.Generation, req.DestinationIdentity, req.ReferenceID, req.Otp)
	start := time.Now()
	outcome, err := s.store.VerifyCode(ctx, storage.Verification{
		Key:           storage.CodeKey{AppID: app.ID, Destination: req.DestinationIdentity, ReferenceID: req.ReferenceID},
		AppGeneration: app.Generation,
		Now:           s.now(),
		Budget:        s.budget,
		Matches:       func(stored []byte) bool { return hmac.Equal(stored, candidate) },
	})
	s.storeCalled("VerifyCode", start, err)
	if err != nil {
		return false, "", fmt.Errorf("verify code: %w", err)
	}
	if outcome == storage.OutcomeUnknown {
		// Codes are stored only for destinations that passed
		// checkDestination, so only now can the number be invalid; the
		// full check is spared the requests that find a code.
		if _, err := checkDestination(req.DestinationIdentity); err != nil {
			return false, "", err
		}
	}
	s.observer.Verified(outcome)
	return outcome == storage.OutcomeValid, outcome, nil
}

// checkVerifyRequest checks what can be checked without the store: the
// DestinationIdentity's E.164 syntax, not yet its validity (see Verify).
func checkVerifyRequest(r VerifyRequest) error {
	if r.DestinationIdentity == "" || !phone.IsE164Syntax(r.DestinationIdentity) {
		_, err := checkDestination(r.DestinationIdentity)
		return err
	}
	if err := checkReferenceID(r.ReferenceID); err != nil {
		return err
	}
	if r.Otp == "" {
		return invalid("Otp", "is required: the %d to %d digits the user received", MinCodeLength, MaxCodeLength)
	}
	// The value is never echoed: it may be a code.
	if !phone.IsDigits(r.Otp) {
		return invalid("Otp", "must be %d to %d digits (0-9); got a value with other characters", MinCodeLength, MaxCodeLength)
	}
	if len(r.Otp) < MinCodeLength || len(r.Otp) > MaxCodeLength {
		return invalid("Otp", "must be %d to %d digits (0-9); got %d digits", MinCodeLength, MaxCodeLength, len(r.Otp))
	}
	return nil
}
