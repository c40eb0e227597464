package pinpointapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"

	"github.com/otpd/otpd/internal/otp"
	"github.com/otpd/otpd/internal/sigv4"
)

// apiError is an error response the API layer itself decides on.
type apiError struct {
	status  int
	code    string
	message string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

var (
	errUnknownRoute = &apiError{http.StatusNotFound, "NotFoundException",
		"No operation matches this path. otpd serves the Pinpoint application, SMS channel and OTP operations under /v1/apps, and PhoneNumberValidate at /v1/phone/number/validate."}
	errMethodNotAllowed = &apiError{http.StatusMethodNotAllowed, "MethodNotAllowedException",
		"This method is not allowed on this path; the Allow header lists the methods that are."}
	errOutboxNotCarrier = &apiError{http.StatusNotFound, "NotFoundException",
		"The development outbox is not this server's carrier, so it holds no messages."}
)

func errPayloadTooLarge(limit int64) error {
	return &apiError{http.StatusRequestEntityTooLarge, "PayloadTooLargeException",
		fmt.Sprintf("The request body is larger than the %d bytes this server accepts.", limit)}
}

func errBadRequest(format string, args ...any) error {
	return &apiError{http.StatusBadRequest, "BadRequestException", fmt.Sprintf(format, args...)}
}

// errorResponse is the AWS REST-JSON error body.
type errorResponse struct {
	Message   string `json:"Message"`
	RequestID string `json:"RequestID"`
}

// writeError answers with err in the AWS error format: the status and
// X-Amzn-ErrorType from the table below, and a body whose Message is meant
// for the client. Causes the client need not see are logged instead.
func (s *server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	st := stateOf(r)
	status, code, message := s.translate(r, err)
	if status >= 500 || st.err == nil {
		st.err = err
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h["X-Amzn-ErrorType"] = []string{code} // spelled as AWS spells it
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(errorResponse{Message: message, RequestID: st.id})
}

// translate is the one table from errors to status, code and message.
func (s *server) translate(r *http.Request, err error) (status int, code, message string) {
	var (
		api       *apiError
		auth      *sigv4.Error
		invalid   *otp.InvalidError
		disabled  *otp.ChannelDisabledError
		exists    *otp.AppExistsError
		lockedOut *otp.LockedOutError
	)
	switch {
	case errors.As(err, &api):
		return api.status, api.code, api.message
	case errors.As(err, &auth):
		return http.StatusForbidden, auth.Code, auth.Message
	case errors.As(err, &invalid):
		return http.StatusBadRequest, "BadRequestException", invalid.Message
	case errors.Is(err, otp.ErrAppNotFound):
		return http.StatusNotFound, "NotFoundException",
			fmt.Sprintf("Application not found: no application has the ID %q.", r.PathValue("app"))
	case errors.As(err, &disabled):
		return http.StatusBadRequest, "BadRequestException", disabled.Error()
	case errors.As(err, &exists):
		return http.StatusBadRequest, "BadRequestException", exists.Error()
	case errors.As(err, &lockedOut):
		wait := max(1, int(math.Ceil(lockedOut.RetryAfter.Seconds())))
		stateOf(r).w.Header().Set("Retry-After", strconv.Itoa(wait))
		return http.StatusTooManyRequests, "TooManyRequestsException", lockedOut.Error()
	case errors.Is(err, otp.ErrSendInProgress):
		return http.StatusTooManyRequests, "TooManyRequestsException", otp.ErrSendInProgress.Error()
	case errors.Is(err, otp.ErrKeyReplaced):
		return http.StatusInternalServerError, "InternalServerErrorException",
			"This otpd server hashes codes with a key its store no longer takes: it cannot send or verify codes until it is restarted. Retry, through another server if there is one."
	case errors.Is(err, otp.ErrStoreCannotWrite):
		return http.StatusInternalServerError, "InternalServerErrorException",
			"otpd cannot store codes now (its log has the cause under this request ID), so no message was sent. Retry later, through another server if there is one."
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusInternalServerError, "InternalServerErrorException",
			"The request did not finish in time; the store may be unavailable. Retry later."
	default:
		return http.StatusInternalServerError, "InternalServerErrorException",
			"otpd could not complete the request; its log has the cause under this request ID. Retry later."
	}
}
