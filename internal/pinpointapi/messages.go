package pinpointapi

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/otpd/otpd/internal/phone"
	"github.com/otpd/otpd/internal/storage"
)

// MessageEntry is a sent message as `otpd messages --json` and
// GET /_otpd/messages show it: carrier, status and times, never the text.
type MessageEntry struct {
	MessageID           string `json:"MessageId"`
	ApplicationID       string `json:"ApplicationId"`
	Carrier             string `json:"Carrier"`
	CarrierMessageID    string `json:"CarrierMessageId,omitempty"`
	OriginationIdentity string `json:"OriginationIdentity"`
	DestinationIdentity string `json:"DestinationIdentity"`
	ReferenceID         string `json:"ReferenceId"`
	Country             string `json:"Country,omitempty"`
	Status              string `json:"Status"`
	StatusCode          string `json:"StatusCode,omitempty"`
	CreatedAt           string `json:"CreatedAt"`
	UpdatedAt           string `json:"UpdatedAt"`
}

// MessageEntries converts stored records to their listed form, in order.
func MessageEntries(recs []storage.MessageRecord) []MessageEntry {
	out := make([]MessageEntry, len(recs))
	for i, r := range recs {
		out[i] = MessageEntry{
			MessageID:           r.MessageID,
			ApplicationID:       r.AppID,
			Carrier:             r.Carrier,
			CarrierMessageID:    r.CarrierMessageID,
			OriginationIdentity: r.OriginationIdentity,
			DestinationIdentity: r.DestinationIdentity,
			ReferenceID:         r.ReferenceID,
			Country:             r.Country,
			Status:              r.Status,
			StatusCode:          r.StatusCode,
			CreatedAt:           isoTime(r.CreatedAt),
			UpdatedAt:           isoTime(r.UpdatedAt),
		}
	}
	return out
}

// MaxListing bounds one listing of the outbox or of the message records.
const MaxListing = 10000

// CheckListing checks a listing's filter, as GET /_otpd/outbox and
// /_otpd/messages and the otpd outbox and messages commands take it:
// destination empty or an E.164 number, limit 1 to MaxListing. Its error
// names the parameter and what it must be, and echoes a destination masked
// (phone.MaskValue), as the access log may show it.
func CheckListing(destination string, limit int) error {
	if destination != "" && !phone.IsE164Syntax(destination) {
		return fmt.Errorf("destination must be an E.164 number such as +14255550142 (in a URL, +14255550142 is %%2B14255550142); got %q", phone.MaskValue(destination))
	}
	if limit < 1 || limit > MaxListing {
		return fmt.Errorf("limit must be an integer from 1 to %d; got %d", MaxListing, limit)
	}
	return nil
}

// listQuery reads a listing's query parameters (see CheckListing); limit
// defaults to MaxListing.
func listQuery(r *http.Request) (destination string, limit int, err error) {
	q := r.URL.Query()
	destination, limit = q.Get("destination"), MaxListing
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil {
			return "", 0, errBadRequest("limit must be an integer from 1 to %d; got %q", MaxListing, v)
		}
	}
	if err := CheckListing(destination, limit); err != nil {
		return "", 0, errBadRequest("%s", err)
	}
	return destination, limit, nil
}

func (s *server) listMessages(w http.ResponseWriter, r *http.Request, _ []byte) {
	destination, limit, err := listQuery(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	recs, err := s.Messages.ListMessages(r.Context(), storage.MessageQuery{Destination: destination, Limit: limit})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, MessageEntries(recs))
}
