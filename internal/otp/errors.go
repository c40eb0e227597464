package otp

import (
	"errors"
	"fmt"
	"time"
)

// InvalidError reports a request parameter that breaks a rule. Its message
// names the field and the allowed values, for the client.
type InvalidError struct {
	Field   string
	Message string // the whole sentence, starting with the field name
}

func (e *InvalidError) Error() string { return e.Message }

func invalid(field, format string, args ...any) error {
	return &InvalidError{Field: field, Message: field + " " + fmt.Sprintf(format, args...)}
}

// ErrAppNotFound reports an application that does not exist.
var ErrAppNotFound = errors.New("application not found")

// ChannelDisabledError reports a send through a disabled SMS channel.
type ChannelDisabledError struct{ AppID string }

func (e *ChannelDisabledError) Error() string {
	return fmt.Sprintf("The SMS channel of application %s is disabled; enable it with UpdateSmsChannel (Enabled: true) to send codes.", e.AppID)
}

// AppExistsError reports an attempt to create an application whose ID is taken.
type AppExistsError struct{ ID string }

func (e *AppExistsError) Error() string {
	return fmt.Sprintf("An application with ID %s already exists.", e.ID)
}

// LockedOutError reports that a destination's failure budget is exhausted:
// too many wrong codes were tried for it recently.
type LockedOutError struct {
	Destination string
	Until       time.Time
	RetryAfter  time.Duration // from now until Until
	Limit       int
	Window      time.Duration
}

func (e *LockedOutError) Error() string {
	return fmt.Sprintf("Too many failed verifications for %s (%d within %s); sending to it resumes at %s.",
		e.Destination, e.Limit, e.Window, e.Until.UTC().Format(time.RFC3339))
}

// ErrKeyReplaced reports that the store takes another code hashing key than
// the Service's (see Config.KeyReplaced): it can neither send nor verify
// codes until it is restarted with the store's key.
var ErrKeyReplaced = errors.New("the store takes another code hashing key than this server's; restart this server with the store's key")

// ErrStoreCannotWrite reports a send refused before any message went out
// because the store says its writes fail (storage.WriteChecker): the code
// could not be kept, so it would never verify.
var ErrStoreCannotWrite = errors.New("the store cannot write now, so no code was sent")

// ErrSendInProgress reports that a request with the same invocation ID and
// parameters is still being processed; the client should retry later.
var ErrSendInProgress = errors.New("A SendOTPMessage request with the same amz-sdk-invocation-id and parameters is still being processed; retry shortly.")
