package otp

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/otpd/otpd/internal/sms"
	"github.com/otpd/otpd/internal/storage"
)

// Report records a carrier's delivery report on the message it names. It
// implements sms.Reporter. Reports about messages otpd has no record of
// (sent before records were kept, or purged) are logged and dropped, once
// a report that may have overtaken its record had time to find it (see
// updateStatus).
func (s *Service) Report(ctx context.Context, r sms.DeliveryReport) {
	status, ok := reportStatus[r.State]
	if !ok {
		s.log.WarnContext(ctx, "a delivery report with an unknown state", "carrier", r.Carrier, "state", r.State)
		return
	}
	at := r.At
	if at.IsZero() {
		at = s.now()
	}
	rec, err := s.updateStatus(ctx, r, storage.MessageStatusUpdate{
		Status: status, StatusCode: r.Code, At: at.UTC().Truncate(timeResolution),
	})
	switch {
	case errors.Is(err, storage.ErrNotFound):
		s.log.InfoContext(ctx, "a delivery report for a message otpd has no record of", "carrier", r.Carrier,
			"carrier_message_id", r.CarrierMessageID, "message_id", r.MessageID, "state", r.State)
	case err != nil:
		s.log.WarnContext(ctx, "could not record a delivery report", "carrier", r.Carrier,
			"carrier_message_id", r.CarrierMessageID, "err", err)
	default:
		s.observer.Delivered(rec.Carrier, rec.Status, rec.Country)
		s.log.InfoContext(ctx, "delivery report", "app", rec.AppID, "message_id", rec.MessageID, "carrier", rec.Carrier,
			"status", rec.Status, "code", rec.StatusCode, "country", rec.Country)
	}
}

var reportStatus = map[sms.DeliveryState]string{
	sms.Delivered:   storage.MessageDelivered,
	sms.Undelivered: storage.MessageUndelivered,
	sms.Failed:      storage.MessageFailed,
	sms.Pending:     storage.MessagePending,
}

var _ sms.Reporter = (*Service)(nil)

// updateStatus applies u to the record of r's message. A report that
// names otpd's own message ID (its carrier matched it to a message it sent
// lately) may overtake that record, which the send stores only once the
// carrier's Send returned: an SMSC sends its receipt right after its
// submit_sm_resp, on the same connection. While such a report finds no
// record, and the send that would store it may still be under way (see
// recordDue), it is tried again, every 20 ms at first and up to every
// 250 ms, within ctx. Any other report is tried once: its record may have
// been purged, or never stored, and waiting for it would hold up the
// carrier's other reports.
func (s *Service) updateStatus(ctx context.Context, r sms.DeliveryReport, u storage.MessageStatusUpdate) (storage.MessageRecord, error) {
	due, mayCome := s.recordDue(r)
	for wait := 20 * time.Millisecond; ; wait = min(2*wait, 250*time.Millisecond) {
		start := time.Now()
		rec, err := s.store.UpdateMessageStatus(ctx, r.Carrier, r.CarrierMessageID, u)
		s.storeCalled("UpdateMessageStatus", start, err)
		if !errors.Is(err, storage.ErrNotFound) || !mayCome || time.Now().Add(wait).After(due) {
			return rec, err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return rec, err
		case <-t.C:
		}
	}
}

// recordDue returns the time by which the send of r's message has stored
// its record, if it stores one: the send began when its message ID (a
// version 7 UUID) was made, and ends within the send timeout and the
// store's write after it. A report without otpd's message ID, or without
// the carrier's (which no record would match), has no record to wait for.
func (s *Service) recordDue(r sms.DeliveryReport) (due time.Time, mayCome bool) {
	id, err := uuid.Parse(r.MessageID)
	if err != nil || id.Version() != 7 || r.CarrierMessageID == "" {
		return time.Time{}, false
	}
	sec, nsec := id.Time().UnixTime()
	return time.Unix(sec, nsec).Add(s.sendTimeout + afterSendTimeout), true
}
