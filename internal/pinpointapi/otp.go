package pinpointapi

import (
	"log/slog"
	"net/http"

	"github.com/otpd/otpd/internal/otp"
	"github.com/otpd/otpd/internal/storage"
)

// sendOTPRequest is Pinpoint's SendOTPMessageRequestParameters.
type sendOTPRequest struct {
	AllowedAttempts     *int   `json:"AllowedAttempts"`
	BrandName           string `json:"BrandName"`
	Channel             string `json:"Channel"`
	CodeLength          *int   `json:"CodeLength"`
	DestinationIdentity string `json:"DestinationIdentity"`
	EntityID            string `json:"EntityId"`
	Language            string `json:"Language"`
	OriginationIdentity string `json:"OriginationIdentity"`
	ReferenceID         string `json:"ReferenceId"`
	TemplateID          string `json:"TemplateId"`
	ValidityPeriod      *int   `json:"ValidityPeriod"`
}

type messageResult struct {
	DeliveryStatus string `json:"DeliveryStatus"`
	MessageID      string `json:"MessageId"`
	StatusCode     int    `json:"StatusCode"`
	StatusMessage  string `json:"StatusMessage"`
}

type messageResponse struct {
	ApplicationID string                   `json:"ApplicationId"`
	RequestID     string                   `json:"RequestId"`
	Result        map[string]messageResult `json:"Result"`
}

// verifyOTPRequest is Pinpoint's VerifyOTPMessageRequestParameters.
type verifyOTPRequest struct {
	DestinationIdentity string `json:"DestinationIdentity"`
	Otp                 string `json:"Otp"`
	ReferenceID         string `json:"ReferenceId"`
}

type verificationResponse struct {
	Valid bool `json:"Valid"`
}

func (s *server) sendOTP(w http.ResponseWriter, r *http.Request, body []byte) {
	var req sendOTPRequest
	if err := decode(body, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	res, err := s.Service.Send(r.Context(), otp.SendRequest{
		AppID:               r.PathValue("app"),
		Channel:             req.Channel,
		BrandName:           req.BrandName,
		CodeLength:          req.CodeLength,
		ValidityPeriod:      req.ValidityPeriod,
		AllowedAttempts:     req.AllowedAttempts,
		Language:            req.Language,
		OriginationIdentity: req.OriginationIdentity,
		DestinationIdentity: req.DestinationIdentity,
		ReferenceID:         req.ReferenceID,
		EntityID:            req.EntityID,
		TemplateID:          req.TemplateID,
		InvocationID:        r.Header.Get("amz-sdk-invocation-id"),
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	st := stateOf(r)
	st.detail = append(st.detail, slog.String("delivery_status", res.DeliveryStatus), slog.String("message_id", res.MessageID))
	s.writeJSON(w, r, http.StatusOK, messageResponse{
		ApplicationID: r.PathValue("app"),
		RequestID:     st.id,
		Result: map[string]messageResult{res.Destination: {
			DeliveryStatus: res.DeliveryStatus,
			MessageID:      res.MessageID,
			StatusCode:     res.StatusCode,
			StatusMessage:  res.StatusMessage,
		}},
	})
}

func (s *server) verifyOTP(w http.ResponseWriter, r *http.Request, body []byte) {
	var req verifyOTPRequest
	if err := decode(body, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	valid, outcome, err := s.Service.Verify(r.Context(), otp.VerifyRequest{
		AppID:               r.PathValue("app"),
		DestinationIdentity: req.DestinationIdentity,
		ReferenceID:         req.ReferenceID,
		Otp:                 req.Otp,
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	st := stateOf(r)
	st.detail = append(st.detail, slog.String("outcome", string(outcome)))
	s.writeJSON(w, r, http.StatusOK, verificationResponse{Valid: valid})
}

func (s *server) listOutbox(w http.ResponseWriter, r *http.Request, _ []byte) {
	if s.Outbox == nil {
		s.writeError(w, r, errOutboxNotCarrier)
		return
	}
	destination, limit, err := listQuery(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	msgs, err := s.Outbox.ListOutbox(r.Context(), storage.OutboxQuery{Destination: destination, Limit: limit})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, OutboxEntries(msgs))
}

// OutboxEntry is a development outbox message as `otpd outbox --json` and GET /_otpd/outbox
// show it.
type OutboxEntry struct {
	MessageID           string `json:"MessageId"`
	ApplicationID       string `json:"ApplicationId"`
	OriginationIdentity string `json:"OriginationIdentity"`
	DestinationIdentity string `json:"DestinationIdentity"`
	ReferenceID         string `json:"ReferenceId"`
	Language            string `json:"Language"`
	Body                string `json:"Body"`
	Encoding            string `json:"Encoding"`
	Segments            int    `json:"Segments"`
	CreatedAt           string `json:"CreatedAt"` // ISO 8601 UTC with milliseconds
}

// OutboxEntries converts stored messages to their listed form, in the same order.
func OutboxEntries(msgs []storage.OutboxMessage) []OutboxEntry {
	entries := make([]OutboxEntry, len(msgs))
	for i, m := range msgs {
		entries[i] = OutboxEntry{
			MessageID:           m.MessageID,
			ApplicationID:       m.AppID,
			OriginationIdentity: m.OriginationIdentity,
			DestinationIdentity: m.DestinationIdentity,
			ReferenceID:         m.ReferenceID,
			Language:            m.Language,
			Body:                m.Body,
			Encoding:            m.Encoding,
			Segments:            m.Segments,
			CreatedAt:           isoTime(m.CreatedAt),
		}
	}
	return entries
}
