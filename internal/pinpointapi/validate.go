package pinpointapi

import (
	"log/slog"
	"net/http"
	"strconv"

	"github.com/otpd/otpd/internal/phone"
)

// numberValidateRequest is Pinpoint's NumberValidateRequest.
type numberValidateRequest struct {
	IsoCountryCode *string `json:"IsoCountryCode"`
	PhoneNumber    *string `json:"PhoneNumber"`
}

// numberValidateResponse is Pinpoint's NumberValidateResponse. A field the
// data cannot fill is left out, never sent as null or "": County and ZipCode
// always are, since libphonenumber has no such data. PhoneTypeCode is always
// sent (0 is MOBILE).
type numberValidateResponse struct {
	Carrier                     string `json:"Carrier,omitempty"`
	City                        string `json:"City,omitempty"`
	CleansedPhoneNumberE164     string `json:"CleansedPhoneNumberE164,omitempty"`
	CleansedPhoneNumberNational string `json:"CleansedPhoneNumberNational,omitempty"`
	Country                     string `json:"Country,omitempty"`
	CountryCodeIso2             string `json:"CountryCodeIso2,omitempty"`
	CountryCodeNumeric          string `json:"CountryCodeNumeric,omitempty"`
	OriginalCountryCodeIso2     string `json:"OriginalCountryCodeIso2,omitempty"`
	OriginalPhoneNumber         string `json:"OriginalPhoneNumber,omitempty"`
	PhoneType                   string `json:"PhoneType"`
	PhoneTypeCode               int    `json:"PhoneTypeCode"`
	Timezone                    string `json:"Timezone,omitempty"`
}

// validatePhoneNumber is PhoneNumberValidate. A number that cannot be parsed
// or is not valid is not an error: Pinpoint answers it with PhoneType
// INVALID. Only a missing PhoneNumber and a malformed IsoCountryCode are.
func (s *server) validatePhoneNumber(w http.ResponseWriter, r *http.Request, body []byte) {
	var req numberValidateRequest
	if err := decode(body, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.PhoneNumber == nil || *req.PhoneNumber == "" {
		s.writeError(w, r, errBadRequest("PhoneNumber is required: the phone number to validate, best in E.164 form (for example +14255550142), or in national form with IsoCountryCode."))
		return
	}
	iso := ""
	if req.IsoCountryCode != nil {
		iso = *req.IsoCountryCode
	}
	d, err := phone.Describe(*req.PhoneNumber, iso)
	if err != nil {
		s.writeError(w, r, errBadRequest("IsoCountryCode %s; got %q.", err, iso))
		return
	}
	st := stateOf(r)
	st.detail = append(st.detail, slog.String("phone_type", d.Type.String()))
	resp := numberValidateResponse{
		Carrier:                     d.Carrier,
		City:                        d.City,
		CleansedPhoneNumberE164:     d.E164,
		CleansedPhoneNumberNational: d.National,
		Country:                     d.Country,
		CountryCodeIso2:             d.ISOCountryCode,
		OriginalCountryCodeIso2:     d.OriginalISOCountryCode,
		OriginalPhoneNumber:         d.OriginalNumber,
		PhoneType:                   d.Type.String(),
		PhoneTypeCode:               int(d.Type), // phone.Type is numbered as PhoneTypeCode
		Timezone:                    d.TimeZone,
	}
	if d.CallingCode != 0 {
		resp.CountryCodeNumeric = strconv.Itoa(d.CallingCode)
	}
	s.writeJSON(w, r, http.StatusOK, resp)
}
