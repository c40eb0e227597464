package otp

import (
	"context"
	"errors"
	"time"

	"github.com/otpd/otpd/internal/sms"
	"github.com/otpd/otpd/internal/storage"
)

// Report records a carrier's delivery report on the message it names. It
// implements sms.Reporter. Reports about messages otpd has no record of
// (sent before records were kept, or purged) are logged and dropped.
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
	start := time.Now()
	rec, err := s.store.UpdateMessageStatus(ctx, r.Carrier, r.CarrierMessageID, storage.MessageStatusUpdate{
		Status: status, StatusCode: r.Code, At: at.UTC().Truncate(timeResolution),
	})
	s.storeCalled("UpdateMessageStatus", start, err)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		s.log.InfoContext(ctx, "a delivery report for a message otpd has no record of", "carrier", r.Carrier,
			"carrier_message_id", r.CarrierMessageID, "state", r.State)
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
