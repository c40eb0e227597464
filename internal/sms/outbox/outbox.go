// Package outbox is the development carrier: instead of texting a phone, it
// keeps each message, code included, in the store, where `otpd outbox` and
// GET /_otpd/outbox show it. It is the default carrier so that otpd works on
// a laptop or in CI with no SMS account; it must never stand in for a real
// carrier in production, since sends report success but reach no phone.
package outbox

import (
	"context"
	"fmt"
	"time"

	"github.com/otpd/otpd/internal/gsm7"
	"github.com/otpd/otpd/internal/sms"
	"github.com/otpd/otpd/internal/storage"
)

// Store is where the outbox keeps messages.
type Store interface {
	AppendOutbox(ctx context.Context, m storage.OutboxMessage) error
}

// Carrier delivers messages into the outbox.
type Carrier struct {
	store Store
	now   func() time.Time
}

var _ sms.Carrier = (*Carrier)(nil)

// New returns an outbox carrier keeping messages in store. now is the clock
// (nil means time.Now).
func New(store Store, now func() time.Time) *Carrier {
	if now == nil {
		now = time.Now
	}
	return &Carrier{store: store, now: now}
}

// Name returns "outbox".
func (c *Carrier) Name() string { return "outbox" }

// Send stores m in the outbox. A store failure is a temporary failure; its
// cause is for the operator's log, not for the client.
func (c *Carrier) Send(ctx context.Context, m sms.Message) (sms.Receipt, error) {
	if err := c.store.AppendOutbox(ctx, c.Entry(m)); err != nil {
		return sms.Receipt{}, fmt.Errorf("the development outbox could not store the message: %w", err)
	}
	return c.Receipt(m), nil
}

// Entry returns m as the outbox keeps it, for a caller that stores it
// itself, in the same write as the message's code (storage.SendRecord), in
// place of Send.
func (c *Carrier) Entry(m sms.Message) storage.OutboxMessage {
	enc, segments := gsm7.Segments(m.Text)
	return storage.OutboxMessage{
		MessageID:           m.ID,
		AppID:               m.AppID,
		OriginationIdentity: m.From,
		DestinationIdentity: m.To,
		ReferenceID:         m.ReferenceID,
		Language:            m.Language,
		Body:                m.Text,
		Encoding:            enc.String(),
		Segments:            segments,
		CreatedAt:           c.now().UTC().Truncate(time.Millisecond),
	}
}

// Receipt is Send's receipt for m.
func (c *Carrier) Receipt(m sms.Message) sms.Receipt { return sms.Receipt{CarrierMessageID: m.ID} }
