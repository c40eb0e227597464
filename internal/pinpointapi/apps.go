package pinpointapi

import (
	"encoding/base64"
	"net/http"
	"strconv"

	"github.com/otpd/otpd/internal/otp"
	"github.com/otpd/otpd/internal/storage"
)

// ApplicationResponse is Pinpoint's ApplicationResponse shape.
type ApplicationResponse struct {
	Arn          string            `json:"Arn"`
	ID           string            `json:"Id"`
	Name         string            `json:"Name"`
	Tags         map[string]string `json:"tags"`
	CreationDate string            `json:"CreationDate"`
}

// AppResponse renders an application as Pinpoint does, with its ARN in the
// given region and account.
func AppResponse(app storage.App, region, accountID string) ApplicationResponse {
	tags := app.Tags
	if tags == nil {
		tags = map[string]string{}
	}
	return ApplicationResponse{
		Arn:          "arn:aws:mobiletargeting:" + region + ":" + accountID + ":apps/" + app.ID,
		ID:           app.ID,
		Name:         app.Name,
		Tags:         tags,
		CreationDate: isoTime(app.CreatedAt),
	}
}

type createApplicationRequest struct {
	Name *string           `json:"Name"`
	Tags map[string]string `json:"tags"`
}

type applicationsResponse struct {
	Item      []ApplicationResponse `json:"Item"`
	NextToken string                `json:"NextToken,omitempty"`
}

// Paging of GetApps.
const (
	defaultPageSize = 100
	maxPageSize     = 1000
)

func (s *server) createApp(w http.ResponseWriter, r *http.Request, body []byte) {
	var req createApplicationRequest
	if err := decode(body, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Name == nil {
		s.writeError(w, r, errBadRequest("Name is required: the display name of the application, 1 to %d characters.", otp.MaxAppNameLength))
		return
	}
	app, err := s.Service.CreateApp(r.Context(), otp.NewApp{Name: *req.Name, Tags: req.Tags})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	stateOf(r).appID = app.ID
	s.writeJSON(w, r, http.StatusCreated, AppResponse(app, s.Region, s.AccountID))
}

func (s *server) getApp(w http.ResponseWriter, r *http.Request, _ []byte) {
	app, err := s.Service.App(r.Context(), r.PathValue("app"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, AppResponse(app, s.Region, s.AccountID))
}

func (s *server) deleteApp(w http.ResponseWriter, r *http.Request, _ []byte) {
	app, err := s.Service.DeleteApp(r.Context(), r.PathValue("app"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, AppResponse(app, s.Region, s.AccountID))
}

// getApps pages through applications in ID order. The token is the last ID
// of the previous page, encoded so clients treat it as opaque.
func (s *server) getApps(w http.ResponseWriter, r *http.Request, _ []byte) {
	q := r.URL.Query()
	size := defaultPageSize
	if v := q.Get("page-size"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPageSize {
			s.writeError(w, r, errBadRequest("page-size must be an integer from 1 to %d; got %q", maxPageSize, v))
			return
		}
		size = n
	}
	after := ""
	if t := q.Get("token"); t != "" {
		raw, err := base64.RawURLEncoding.DecodeString(t)
		if err != nil || !otp.IsAppID(string(raw)) {
			s.writeError(w, r, errBadRequest("token is not a NextToken returned by GetApps; got %q", t))
			return
		}
		after = string(raw)
	}
	apps, more, err := s.Service.Apps(r.Context(), after, size)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	resp := applicationsResponse{Item: make([]ApplicationResponse, len(apps))}
	for i, app := range apps {
		resp.Item[i] = AppResponse(app, s.Region, s.AccountID)
	}
	if more {
		resp.NextToken = base64.RawURLEncoding.EncodeToString([]byte(apps[len(apps)-1].ID))
	}
	s.writeJSON(w, r, http.StatusOK, resp)
}

// smsChannelResponse is Pinpoint's SMSChannelResponse shape.
type smsChannelResponse struct {
	ApplicationID                  string `json:"ApplicationId"`
	CreationDate                   string `json:"CreationDate"`
	Enabled                        bool   `json:"Enabled"`
	HasCredential                  bool   `json:"HasCredential"`
	ID                             string `json:"Id"`
	IsArchived                     bool   `json:"IsArchived"`
	LastModifiedDate               string `json:"LastModifiedDate"`
	Platform                       string `json:"Platform"`
	PromotionalMessagesPerSecond   int    `json:"PromotionalMessagesPerSecond"`
	TransactionalMessagesPerSecond int    `json:"TransactionalMessagesPerSecond"`
	SenderID                       string `json:"SenderId,omitempty"`
	ShortCode                      string `json:"ShortCode,omitempty"`
	Version                        int    `json:"Version"`
}

// Pinpoint's default SMS sending rates, reported as Pinpoint reports them.
const (
	promotionalPerSecond   = 20
	transactionalPerSecond = 20
)

func smsChannel(app storage.App) smsChannelResponse {
	return smsChannelResponse{
		ApplicationID:                  app.ID,
		CreationDate:                   isoTime(app.SMS.CreatedAt),
		Enabled:                        app.SMS.Enabled,
		ID:                             "sms",
		LastModifiedDate:               isoTime(app.SMS.UpdatedAt),
		Platform:                       "SMS",
		PromotionalMessagesPerSecond:   promotionalPerSecond,
		TransactionalMessagesPerSecond: transactionalPerSecond,
		SenderID:                       app.SMS.SenderID,
		ShortCode:                      app.SMS.ShortCode,
		Version:                        app.SMS.Version,
	}
}

type smsChannelRequest struct {
	Enabled   *bool   `json:"Enabled"`
	SenderID  *string `json:"SenderId"`
	ShortCode *string `json:"ShortCode"`
}

func (s *server) getSMSChannel(w http.ResponseWriter, r *http.Request, _ []byte) {
	app, err := s.Service.App(r.Context(), r.PathValue("app"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, smsChannel(app))
}

func (s *server) updateSMSChannel(w http.ResponseWriter, r *http.Request, body []byte) {
	var req smsChannelRequest
	if err := decode(body, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	app, err := s.Service.UpdateSMSChannel(r.Context(), r.PathValue("app"), storage.SMSChannelUpdate{
		Enabled: req.Enabled, SenderID: req.SenderID, ShortCode: req.ShortCode,
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, smsChannel(app))
}
