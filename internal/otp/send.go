package otp

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/otpd/otpd/internal/phone"
	"github.com/otpd/otpd/internal/sms"
	"github.com/otpd/otpd/internal/storage"
)

// SendRequest asks for a code to be sent. Nil numeric fields take their
// defaults; an empty Language means en-US.
type SendRequest struct {
	AppID               string
	Channel             string
	BrandName           string
	CodeLength          *int
	ValidityPeriod      *int // minutes
	AllowedAttempts     *int
	Language            string
	OriginationIdentity string
	DestinationIdentity string
	ReferenceID         string
	EntityID            string
	TemplateID          string
	// InvocationID is the client's amz-sdk-invocation-id: a retry that
	// repeats it with the same parameters gets the first result and sends
	// nothing. Empty means the request is not de-duplicated.
	InvocationID string
}

// Delivery statuses of a SendResult, as Pinpoint names them.
const (
	StatusSuccessful       = "SUCCESSFUL"
	StatusThrottled        = "THROTTLED"
	StatusTemporaryFailure = "TEMPORARY_FAILURE"
	StatusPermanentFailure = "PERMANENT_FAILURE"
	StatusUnknownFailure   = "UNKNOWN_FAILURE"
	StatusOptOut           = "OPT_OUT"
)

// DeliveryStatuses returns every delivery status a SendResult may have,
// e.g. to show each metric from the start.
func DeliveryStatuses() []string {
	return []string{StatusSuccessful, StatusThrottled, StatusTemporaryFailure, StatusPermanentFailure, StatusUnknownFailure, StatusOptOut}
}

// SendResult is the outcome of a send for its destination.
type SendResult struct {
	Destination    string
	MessageID      string
	DeliveryStatus string
	StatusCode     int
	StatusMessage  string
}

// sendParams is a SendRequest checked and with its defaults applied.
type sendParams struct {
	AppID           string
	BrandName       string
	CodeLength      int
	Validity        int
	AllowedAttempts int
	Language        string
	Origination     string
	Destination     string
	Country         string // ISO 3166 region of Destination, "" if none
	ReferenceID     string
	EntityID        string
	TemplateID      string
}

// MaxDLTIDLength bounds EntityId and TemplateId.
const MaxDLTIDLength = 64

func checkSendRequest(r SendRequest) (sendParams, error) {
	p := sendParams{
		AppID:           r.AppID,
		BrandName:       strings.TrimFunc(r.BrandName, isBlank), // spaces around it would show in the text
		CodeLength:      DefaultCodeLength,
		Validity:        DefaultValidity,
		AllowedAttempts: DefaultAllowedAttempts,
		Language:        DefaultLanguage,
		Origination:     r.OriginationIdentity,
		Destination:     r.DestinationIdentity,
		ReferenceID:     r.ReferenceID,
		EntityID:        r.EntityID,
		TemplateID:      r.TemplateID,
	}
	if r.Channel == "" {
		return p, invalid("Channel", "is required and must be SMS")
	}
	if r.Channel != "SMS" {
		return p, invalid("Channel", "must be SMS, the only channel for one-time passwords; got %q", r.Channel)
	}
	if err := checkBrandName(r.BrandName); err != nil {
		return p, err
	}
	if err := checkRange("CodeLength", r.CodeLength, MinCodeLength, MaxCodeLength, &p.CodeLength); err != nil {
		return p, err
	}
	if err := checkRange("ValidityPeriod", r.ValidityPeriod, MinValidity, MaxValidity, &p.Validity); err != nil {
		return p, err
	}
	if err := checkRange("AllowedAttempts", r.AllowedAttempts, MinAllowedAttempts, MaxAllowedAttempts, &p.AllowedAttempts); err != nil {
		return p, err
	}
	if r.Language != "" {
		tag, ok := canonicalLanguage(r.Language)
		if !ok {
			return p, invalid("Language", "must be one of %v; got %q", Languages(), r.Language)
		}
		p.Language = tag
	}
	if r.OriginationIdentity == "" {
		return p, invalid("OriginationIdentity", "is required: an E.164 phone number, a short code or an alphanumeric sender ID")
	}
	if err := sms.CheckOrigination(r.OriginationIdentity); err != nil {
		return p, invalid("OriginationIdentity", "%s; got %q", err, r.OriginationIdentity)
	}
	var err error
	if p.Country, err = checkDestination(r.DestinationIdentity); err != nil {
		return p, err
	}
	if err := checkReferenceID(r.ReferenceID); err != nil {
		return p, err
	}
	for _, f := range []struct{ field, value string }{{"EntityId", r.EntityID}, {"TemplateId", r.TemplateID}} {
		if n := utf8.RuneCountInString(f.value); n > MaxDLTIDLength {
			return p, invalid(f.field, "must be at most %d characters; got %d", MaxDLTIDLength, n)
		}
		if err := checkNoControl(f.field, f.value); err != nil {
			return p, err
		}
	}
	if err := checkInvocationID(r.InvocationID); err != nil {
		return p, err
	}
	return p, nil
}

// checkBrandName accepts 1 to MaxBrandNameLength characters that are not
// all blank, none of them a control, line-breaking or invisible formatting
// character: the brand goes into the text as it is, where a newline, a NUL
// or a right-to-left override would reach the phone.
func checkBrandName(b string) error {
	switch n := utf8.RuneCountInString(b); {
	case n == 0:
		return invalid("BrandName", "is required: 1 to %d characters", MaxBrandNameLength)
	case n > MaxBrandNameLength:
		return invalid("BrandName", "must be 1 to %d characters; got %d", MaxBrandNameLength, n)
	case strings.IndexFunc(b, isHiddenInText) >= 0:
		return invalid("BrandName", "must not contain control or formatting characters such as a newline, a tab or a direction override; got %q", b)
	case strings.TrimFunc(b, isBlank) == "":
		return invalid("BrandName", "must not be only white space; got %q", b)
	}
	return nil
}

// isHiddenInText reports whether r is a control character, a line or
// paragraph separator, or an invisible formatting character (Unicode's Cf:
// direction overrides, zero-width spaces, …), other than the zero-width
// joiner and non-joiner that Indic and Persian words need.
func isHiddenInText(r rune) bool {
	return unicode.In(r, unicode.Cc, unicode.Zl, unicode.Zp) || unicode.Is(unicode.Cf, r) && !isJoiner(r)
}

// isBlank reports whether r shows as nothing: white space or a joiner.
func isBlank(r rune) bool { return unicode.IsSpace(r) || isJoiner(r) }

// isJoiner reports whether r is the zero-width non-joiner or joiner.
func isJoiner(r rune) bool { return r == '\u200c' || r == '\u200d' }

func checkRange(field string, v *int, lo, hi int, dst *int) error {
	if v == nil {
		return nil
	}
	if *v < lo || *v > hi {
		return invalid(field, "must be an integer from %d to %d; got %d", lo, hi, *v)
	}
	*dst = *v
	return nil
}

// checkDestination checks a DestinationIdentity and returns its ISO 3166
// region ("" if it has none). A refusal echoes the value masked
// (phone.MaskValue), since its message reaches the log too, where a number
// in a shape the log's masking does not recognize ("(425) 555-0142",
// "tel:+14255550142") would show whole.
func checkDestination(d string) (region string, err error) {
	if d == "" {
		return "", invalid("DestinationIdentity", "is required: an E.164 phone number such as +14255550100")
	}
	region, err = phone.ParseE164(d)
	if err != nil {
		return "", invalid("DestinationIdentity", "%s; got %q", err, phone.MaskValue(d))
	}
	return region, nil
}

func checkReferenceID(ref string) error {
	if n := utf8.RuneCountInString(ref); n < 1 || n > MaxReferenceIDLength {
		if n == 0 {
			return invalid("ReferenceId", "is required: 1 to %d characters", MaxReferenceIDLength)
		}
		return invalid("ReferenceId", "must be 1 to %d characters; got %d", MaxReferenceIDLength, n)
	}
	return checkNoControl("ReferenceId", ref)
}

// checkNoControl refuses a control character (Unicode's Cc: NUL, a tab, a
// newline, …) in field's value v: no identifier or name needs one, and
// PostgreSQL's text cannot hold a NUL, so the value would work on one
// store and fail on another.
func checkNoControl(field, v string) error {
	if hasControl(v) {
		return invalid(field, "must not contain control characters such as NUL, a tab or a newline; got %q", v)
	}
	return nil
}

func hasControl(s string) bool { return strings.IndexFunc(s, unicode.IsControl) >= 0 }

// MaxInvocationIDLength bounds the amz-sdk-invocation-id header, which the
// AWS SDKs fill with a UUID (36 characters).
const MaxInvocationIDLength = 64

// checkInvocationID accepts an empty ID (the request is not de-duplicated)
// or 1 to MaxInvocationIDLength printable ASCII characters: it becomes part
// of a key in the store.
func checkInvocationID(id string) error {
	const rule = "(a header) must be 1 to %d printable ASCII characters, such as the UUID the AWS SDKs send; got %s"
	if len(id) > MaxInvocationIDLength {
		return invalid("amz-sdk-invocation-id", rule, MaxInvocationIDLength, fmt.Sprintf("%d bytes", len(id)))
	}
	if strings.IndexFunc(id, func(r rune) bool { return r < ' ' || r > '~' }) >= 0 {
		return invalid("amz-sdk-invocation-id", rule, MaxInvocationIDLength, strconv.Quote(id))
	}
	return nil
}

// afterSendTimeout bounds each store write that follows a carrier's answer
// (storing the code, recording or releasing the send). They run even if the
// client has gone, since the message may be on its way; a send claim's lease
// outlasts the carrier's timeout plus this.
const afterSendTimeout = 10 * time.Second

// timeResolution is the precision of every stored time.
const timeResolution = time.Millisecond

// Send generates a code, texts it to the destination and, once a carrier
// accepted the message, makes it the live code for (application,
// destination, ReferenceId). A refusal by the carrier is not an error: it is
// reported in the SendResult, and the previous code stays as it was.
func (s *Service) Send(ctx context.Context, req SendRequest) (SendResult, error) {
	p, err := checkSendRequest(req)
	if err != nil {
		return SendResult{}, err
	}
	if s.keyReplaced() {
		return SendResult{}, ErrKeyReplaced
	}
	app, err := s.cachedApp(ctx, p.AppID)
	if err != nil {
		return SendResult{}, err
	}
	if !app.SMS.Enabled {
		return SendResult{}, &ChannelDisabledError{AppID: app.ID}
	}
	if oc, ok := s.carrier.(OriginationChecker); ok {
		if err := oc.CheckOrigination(app.ID, p.Destination, p.Origination); err != nil {
			return SendResult{}, &InvalidError{Field: "OriginationIdentity", Message: "OriginationIdentity " + err.Error()}
		}
	}
	if wc, ok := s.store.(storage.WriteChecker); ok {
		if err := wc.WritesFailing(ctx); err != nil {
			return SendResult{}, fmt.Errorf("%w: %w", ErrStoreCannotWrite, err)
		}
	}
	now := s.now()
	start := time.Now()
	until, err := s.store.DestinationLockout(ctx, app.ID, app.Generation, p.Destination, now, s.budget)
	s.storeCalled("DestinationLockout", start, err)
	if err != nil {
		return SendResult{}, fmt.Errorf("check failure budget: %w", err)
	}
	if !until.IsZero() {
		return SendResult{}, &LockedOutError{Destination: p.Destination, Until: until, RetryAfter: until.Sub(now), Limit: s.budget.Limit, Window: s.budget.Window}
	}
	if req.InvocationID == "" {
		return s.send(ctx, app, p, "")
	}
	return s.sendOnce(ctx, app, p, req.InvocationID)
}

// sendOnce sends at most once per (invocation ID, parameters) within the
// retry window, answering repeats with the first result.
func (s *Service) sendOnce(ctx context.Context, app storage.App, p sendParams, invocationID string) (SendResult, error) {
	digest, err := json.Marshal(p)
	if err != nil {
		return SendResult{}, fmt.Errorf("digest request: %w", err)
	}
	sum := sha256.Sum256(append(digest, app.Generation...))
	key := invocationID + ":" + hex.EncodeToString(sum[:16])
	// When the carrier is the development outbox, handing it the message
	// is part of the store's write, so a store that can decide the claim
	// in that same write saves one.
	once, _ := s.store.(storage.SendOnceRecorder)
	if _, ok := s.carrier.(OutboxCarrier); !ok {
		once = nil
	}
	for wait := 20 * time.Millisecond; ; wait = min(2*wait, 250*time.Millisecond) {
		now := s.now()
		claim := storage.SendClaim{
			AppID: app.ID, Key: key, Now: now, LeaseUntil: now.Add(s.sendTimeout + afterSendTimeout + 5*time.Second),
		}
		var (
			prior []byte
			done  bool
		)
		if once != nil {
			res, rec, err := s.deliver(ctx, app, p, key)
			if err != nil {
				return SendResult{}, err
			}
			if prior, done, err = s.recordOnce(ctx, once, claim, app, res, rec); err != nil {
				return SendResult{}, err
			}
			if done {
				return res, nil
			}
		} else {
			start := time.Now()
			prior, done, err = s.store.ClaimSend(ctx, claim)
			s.storeCalled("ClaimSend", start, err)
			if err != nil {
				return SendResult{}, fmt.Errorf("claim send: %w", err)
			}
			if done {
				return s.sendClaimed(ctx, app, p, key)
			}
		}
		if prior != nil {
			var res SendResult
			if err := json.Unmarshal(prior, &res); err != nil {
				return SendResult{}, fmt.Errorf("decode the remembered send: %w", err)
			}
			s.log.InfoContext(ctx, "repeated send answered from its first result", "app", app.ID, "message_id", res.MessageID)
			return res, nil
		}
		// The first request is still under way: wait for its result.
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return SendResult{}, ErrSendInProgress
		case <-t.C:
		}
	}
}

// sendClaimed sends under the claim of key, releasing the claim if nothing
// was recorded as sent.
func (s *Service) sendClaimed(ctx context.Context, app storage.App, p sendParams, key string) (SendResult, error) {
	res, err := s.send(ctx, app, p, key)
	if err != nil {
		s.releaseClaim(ctx, app.ID, key) // nothing was recorded as sent
		return SendResult{}, err
	}
	return res, nil
}

// releaseClaim releases the send claim of key, so that a retry starts
// afresh instead of waiting for a result that will never be recorded. The
// request's context may be done, so the release gets its own.
func (s *Service) releaseClaim(ctx context.Context, appID, key string) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), afterSendTimeout)
	defer cancel()
	start := time.Now()
	err := s.store.ReleaseSend(rctx, appID, key)
	s.storeCalled("ReleaseSend", start, err)
	if err != nil {
		s.log.WarnContext(ctx, "could not release a send claim", "app", appID, "err", err)
	}
}

// send generates the code, hands the message to the carrier and records
// what the carrier's answer leaves behind (see deliver).
func (s *Service) send(ctx context.Context, app storage.App, p sendParams, claimKey string) (SendResult, error) {
	res, rec, err := s.deliver(ctx, app, p, claimKey)
	if err != nil {
		return SendResult{}, err
	}
	if rec != (storage.SendRecord{}) {
		// The carrier has answered: record it even if the client has gone
		// meanwhile, or the user would hold a code that never verifies.
		storeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), afterSendTimeout)
		start := time.Now()
		err = s.store.RecordSend(storeCtx, rec)
		s.storeCalled("RecordSend", start, err)
		cancel()
		if err := s.recorded(ctx, app, rec, err); err != nil {
			return SendResult{}, err
		}
	}
	s.sent(ctx, app, res, rec)
	return res, nil
}

// recordOnce records a send to the development outbox under claim, in one
// write: done is true if it was recorded (or failed: then err says why),
// and otherwise prior is the first send's result, or nil while it is under
// way.
func (s *Service) recordOnce(ctx context.Context, once storage.SendOnceRecorder, claim storage.SendClaim, app storage.App, res SendResult, rec storage.SendRecord) (prior []byte, done bool, err error) {
	storeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), afterSendTimeout)
	start := time.Now()
	prior, recorded, err := once.RecordSendOnce(storeCtx, claim, rec)
	s.storeCalled("RecordSendOnce", start, err)
	cancel()
	if !recorded && err == nil {
		return prior, false, nil
	}
	if err := s.recorded(ctx, app, rec, err); err != nil {
		return nil, true, err
	}
	s.sent(ctx, app, res, rec)
	return nil, true, nil
}

// deliver generates the code and hands the message to the carrier; it
// returns the result for the client and what the carrier's answer leaves
// behind: if it accepted the message, the code and the message's record;
// under a send claim (claimKey not empty), the result, for retries of the
// same request. The development outbox is handed the message in the record
// (as its outbox entry), which delivers it when stored.
func (s *Service) deliver(ctx context.Context, app storage.App, p sendParams, claimKey string) (SendResult, storage.SendRecord, error) {
	var record storage.SendRecord
	code, err := newCode(s.rand, p.CodeLength)
	if err != nil {
		return SendResult{}, record, err
	}
	// A version 7 UUID: it starts with the time, so that message records
	// (keyed by it) are appended to their index rather than scattered.
	id, err := uuid.NewV7FromReader(s.rand)
	if err != nil {
		return SendResult{}, record, fmt.Errorf("message ID: %w", err)
	}
	msgID := id.String()
	msg := sms.Message{
		ID:          msgID,
		AppID:       app.ID,
		From:        p.Origination,
		To:          p.Destination,
		Text:        messageText(p.Language, code, p.BrandName),
		Language:    p.Language,
		ReferenceID: p.ReferenceID,
		EntityID:    p.EntityID,
		TemplateID:  p.TemplateID,
	}
	var (
		receipt sms.Receipt
		sendErr error
	)
	if claimKey == "" && ctx.Err() != nil {
		// The client has gone and nothing would answer its retry with
		// this send's result: a message now would only be a second one.
		return SendResult{}, record, fmt.Errorf("the client went away before the message was sent: %w", ctx.Err())
	}
	if oc, ok := s.carrier.(OutboxCarrier); ok {
		entry := oc.Entry(msg)
		record.Outbox, receipt = &entry, oc.Receipt(msg)
	} else {
		// The send goes on if the client goes (an SDK's read timeout
		// closes the connection, and retries with the same invocation
		// ID): the carrier's answer, not the cancellation, is what is
		// recorded and what the retry is answered with. The request's
		// deadline still holds.
		deadline := time.Now().Add(s.sendTimeout)
		if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
		sendCtx, cancel := context.WithDeadline(context.WithoutCancel(ctx), deadline)
		receipt, sendErr = s.carrier.Send(sendCtx, msg)
		cancel()
	}
	res := resultOf(p.Destination, msgID, sendErr)
	if sendErr != nil {
		s.log.WarnContext(ctx, "the carrier did not take the message", "app", app.ID, "message_id", msgID,
			"carrier", s.carrier.Name(), "delivery_status", res.DeliveryStatus, "err", phone.Mask(sendErr.Error()))
	}
	if claimKey != "" {
		encoded, err := json.Marshal(res)
		if err != nil {
			return SendResult{}, record, fmt.Errorf("encode send result: %w", err)
		}
		record.Completion = &storage.SendCompletion{AppID: app.ID, Key: claimKey, Result: encoded, ExpiresAt: s.now().Add(s.retryWindow)}
	}
	// A carrier that did not say whether it took the message (it did not
	// answer in time, say) may still deliver it: its code is stored, so
	// that it verifies if it arrives, although the send failed. A refused
	// message creates no code and leaves the previous one as it was.
	if sendErr != nil && !sms.MayDeliver(sendErr) {
		return res, record, nil
	}
	now := s.now().UTC().Truncate(timeResolution)
	record.Code = &storage.Code{
		Key:             storage.CodeKey{AppID: app.ID, Destination: p.Destination, ReferenceID: p.ReferenceID},
		AppGeneration:   app.Generation,
		MAC:             s.codeMAC(app.Generation, p.Destination, p.ReferenceID, code),
		AllowedAttempts: p.AllowedAttempts,
		CreatedAt:       now,
		ExpiresAt:       now.Add(time.Duration(p.Validity) * time.Minute),
	}
	if sendErr != nil {
		return res, record, nil // no carrier accepted it: no message record
	}
	record.Message = &storage.MessageRecord{
		MessageID:           msgID,
		AppID:               app.ID,
		Carrier:             cmp.Or(receipt.Carrier, s.carrier.Name()),
		CarrierMessageID:    receipt.CarrierMessageID,
		OriginationIdentity: p.Origination,
		DestinationIdentity: p.Destination,
		ReferenceID:         p.ReferenceID,
		Country:             p.Country,
		Status:              storage.MessageSubmitted,
		CreatedAt:           now,
		UpdatedAt:           now,
	}
	return res, record, nil
}

// recorded turns the store's answer to recording rec into the send's
// error: none if it was stored, or if only a refused send's memory for
// retries was lost.
func (s *Service) recorded(ctx context.Context, app storage.App, rec storage.SendRecord, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, storage.ErrNotFound):
		return ErrAppNotFound // deleted while the message was on its way
	case rec.Code != nil:
		return fmt.Errorf("store code: %w", err)
	}
	// Only the refusal's memory for retries is lost: a retry asks the
	// carrier again, once the claim it would otherwise wait on is gone.
	s.log.WarnContext(ctx, "could not record a refused send for retry de-duplication", "app", app.ID, "err", err)
	if c := rec.Completion; c != nil {
		s.releaseClaim(ctx, c.AppID, c.Key)
	}
	return nil
}

// sent counts a send answered with res, having recorded rec.
func (s *Service) sent(ctx context.Context, app storage.App, res SendResult, rec storage.SendRecord) {
	s.observer.Sent(res.DeliveryStatus)
	if m := rec.Message; m != nil {
		s.log.DebugContext(ctx, "code sent", "app", app.ID, "message_id", m.MessageID,
			"carrier", m.Carrier, "carrier_message_id", m.CarrierMessageID)
	}
}

// resultOf maps a carrier's answer to Pinpoint's per-destination result.
func resultOf(destination, msgID string, err error) SendResult {
	res := SendResult{Destination: destination, MessageID: msgID}
	if err == nil {
		res.DeliveryStatus = StatusSuccessful
		res.StatusCode = 200
		res.StatusMessage = "MessageId: " + msgID
		return res
	}
	var ce *sms.Error
	if !errors.As(err, &ce) {
		res.DeliveryStatus = StatusUnknownFailure
		res.StatusCode = 500
		// The cause may be internal (a store, a connection): it goes to
		// the log, under this MessageId, not to the client.
		res.StatusMessage = "The carrier did not take the message; otpd's log has the cause under MessageId " + msgID + "."
		if errors.Is(err, context.DeadlineExceeded) {
			res.DeliveryStatus = StatusTemporaryFailure
			res.StatusCode = 504
			res.StatusMessage = "The carrier did not answer in time; the message may or may not be delivered."
		}
		return res
	}
	res.StatusCode = ce.Code
	res.StatusMessage = ce.Message
	switch ce.Status {
	case sms.Temporary:
		res.DeliveryStatus = StatusTemporaryFailure
		res.StatusCode = cmp.Or(res.StatusCode, 503)
	case sms.Throttled:
		res.DeliveryStatus = StatusThrottled
		res.StatusCode = cmp.Or(res.StatusCode, 429)
	case sms.Permanent:
		res.DeliveryStatus = StatusPermanentFailure
		res.StatusCode = cmp.Or(res.StatusCode, 400)
	case sms.NotPermitted: // no retry helps until the operator acts
		res.DeliveryStatus = StatusPermanentFailure
		res.StatusCode = cmp.Or(res.StatusCode, 403)
	case sms.OptedOut:
		res.DeliveryStatus = StatusOptOut
		res.StatusCode = cmp.Or(res.StatusCode, 400)
	default:
		res.DeliveryStatus = StatusUnknownFailure
		res.StatusCode = cmp.Or(res.StatusCode, 500)
	}
	return res
}
