package twilio

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/otpd/otpd/internal/sms"
)

// SignatureHeader is the header in which Twilio signs its requests.
const SignatureHeader = "X-Twilio-Signature"

// maxCallbackBody bounds the body of a status callback; Twilio's are well
// under 2 KiB.
const maxCallbackBody = 64 << 10

// Signature returns the X-Twilio-Signature Twilio sends with a POST to
// fullURL whose form parameters are params, signed with authToken: the
// base64 of the HMAC-SHA1, keyed with the auth token, of fullURL followed
// by each parameter's name and value, without separators, in the order of
// the names (by Unicode code points; the values of a repeated name sorted
// too). fullURL is the URL exactly as Twilio called it, query
// included; params are the form parameters of the body only.
func Signature(authToken, fullURL string, params url.Values) string {
	return base64.StdEncoding.EncodeToString(sign(authToken, fullURL, params))
}

// sign returns the HMAC-SHA1 of Signature.
func sign(authToken, fullURL string, params url.Values) []byte {
	mac := hmac.New(sha1.New, []byte(authToken))
	_, _ = io.WriteString(mac, fullURL)
	for _, name := range slices.Sorted(maps.Keys(params)) {
		values := slices.Clone(params[name])
		slices.Sort(values)
		for _, v := range values {
			_, _ = io.WriteString(mac, name)
			_, _ = io.WriteString(mac, v)
		}
	}
	return mac.Sum(nil)
}

// portSpellings returns rawURL and, when it names no port or its scheme's
// default port, its spelling the other way: the URL Twilio signs may or
// may not spell out the default port, whichever the configuration does.
func portSpellings(rawURL string) []string {
	spellings := []string{rawURL}
	u, err := url.Parse(rawURL)
	if err != nil {
		return spellings
	}
	defaultPort := map[string]string{"https": "443", "http": "80"}[strings.ToLower(u.Scheme)]
	if defaultPort == "" {
		return spellings
	}
	switch u.Port() {
	case "":
		u.Host += ":" + defaultPort
	case defaultPort:
		u.Host = strings.TrimSuffix(u.Host, ":"+defaultPort)
	default:
		return spellings
	}
	return append(spellings, u.String())
}

// states maps Twilio's message statuses to delivery states. A status not
// here (an inbound message's, say) is acknowledged and not reported.
var states = map[string]sms.DeliveryState{
	"queued":      sms.Pending,
	"accepted":    sms.Pending,
	"scheduled":   sms.Pending,
	"sending":     sms.Pending,
	"sent":        sms.Pending,
	"delivered":   sms.Delivered,
	"read":        sms.Delivered,
	"undelivered": sms.Undelivered,
	"failed":      sms.Failed,
	"canceled":    sms.Failed,
}

// CallbackHandler returns the handler of Twilio's status callbacks, to be
// served at the public URL Config.StatusCallbackURL names. For each POST it:
//
//   - checks X-Twilio-Signature against the auth token, the configured
//     StatusCallbackURL (also spelt with or without its default port) and
//     the form parameters of the body, in constant time, and answers 403
//     Forbidden without reporting anything when it does not match (or when
//     no StatusCallbackURL is configured: then nothing can be checked);
//   - reads MessageSid (or SmsSid), MessageStatus (or SmsStatus) and
//     ErrorCode, answering 400 when the first two are missing;
//   - reports to Config.Reporter: delivered and read as sms.Delivered,
//     undelivered as sms.Undelivered, failed and canceled as sms.Failed,
//     queued, accepted, scheduled, sending and sent as sms.Pending, with
//     Code the ErrorCode Twilio gave (e.g. "30003") or else the status
//     itself, and At the time of the callback (Twilio sends none);
//   - answers 204 No Content.
//
// A status it does not know is acknowledged (204) and not reported. Other
// methods get 405, other content types 415, bodies over 64 KiB 413.
//
// The signature covers neither a time nor a nonce, so a captured callback
// can be replayed: it repeats a report, never forges a new one.
func (c *Carrier) CallbackHandler() http.Handler {
	return http.HandlerFunc(c.serveCallback)
}

func (c *Carrier) serveCallback(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "status callbacks are POST requests", http.StatusMethodNotAllowed)
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		http.Error(w, "want a form (application/x-www-form-urlencoded)", http.StatusUnsupportedMediaType)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxCallbackBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			http.Error(w, "the body is too large for a status callback", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "reading the body failed", http.StatusBadRequest)
		return
	}
	params, err := url.ParseQuery(string(body))
	if err != nil {
		http.Error(w, "the body is not a valid form", http.StatusBadRequest)
		return
	}
	if !c.validSignature(r.Header.Get(SignatureHeader), params) {
		http.Error(w, "the "+SignatureHeader+" does not match: otpd checks it against its auth token and the carrier's StatusCallbackURL, which must be exactly the URL Twilio calls",
			http.StatusForbidden)
		return
	}
	sid := first(params, "MessageSid", "SmsSid")
	status := first(params, "MessageStatus", "SmsStatus")
	if !isWord(sid) || status == "" {
		http.Error(w, "MessageSid and MessageStatus are required", http.StatusBadRequest)
		return
	}
	state, known := states[strings.ToLower(status)]
	if known && c.reporter != nil {
		code := params.Get("ErrorCode")
		if !isWord(code) {
			code = strings.ToLower(status)
		}
		c.reporter.Report(r.Context(), sms.DeliveryReport{
			Carrier:          c.name,
			CarrierMessageID: sid,
			State:            state,
			Code:             code,
			At:               c.now().UTC(),
		})
	}
	w.WriteHeader(http.StatusNoContent)
}

// validSignature reports whether signature is Twilio's for a request to
// the status callback URL with params.
func (c *Carrier) validSignature(signature string, params url.Values) bool {
	if c.callbackURL == "" || c.authToken == "" || signature == "" {
		return false
	}
	got, err := base64.StdEncoding.DecodeString(signature)
	if err != nil {
		return false
	}
	match := false
	for _, u := range c.callbackURLs {
		if hmac.Equal(got, sign(c.authToken, u, params)) { // constant time
			match = true
		}
	}
	return match
}

// first returns the value of the first of names that params has.
func first(params url.Values, names ...string) string {
	for _, name := range names {
		if v := params.Get(name); v != "" {
			return v
		}
	}
	return ""
}
