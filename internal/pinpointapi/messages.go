package pinpointapi

import (
	"net/http"
	"strconv"

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

// listLimit reads a listing's limit query parameter: 1 to max, default max.
func listLimit(r *http.Request, max int) (int, error) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return max, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > max {
		return 0, errBadRequest("limit must be an integer from 1 to %d; got %q", max, v)
	}
	return n, nil
}

// maxMessageListing bounds one listing of messages.
const maxMessageListing = 10000

func (s *server) listMessages(w http.ResponseWriter, r *http.Request, _ []byte) {
	limit, err := listLimit(r, maxMessageListing)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	recs, err := s.Messages.ListMessages(r.Context(), storage.MessageQuery{Destination: r.URL.Query().Get("destination"), Limit: limit})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, MessageEntries(recs))
}
