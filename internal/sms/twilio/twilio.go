// Package twilio is a carrier that sends otpd's text messages through
// Twilio Programmable Messaging, over Twilio's REST API, and receives
// Twilio's status callbacks as delivery reports.
//
// # Sending
//
// For each message the carrier makes one request:
//
//	POST {BaseURL}/2010-04-01/Accounts/{AccountSID}/Messages.json
//	Authorization: Basic base64(AccountSID:AuthToken) or base64(APIKeySID:APIKeySecret)
//	Content-Type: application/x-www-form-urlencoded
//
//	To=+14255550142&Body=...&From=+18555550142[&StatusCallback=...]
//
// From is the message's origination identity (Pinpoint's
// OriginationIdentity), or Config.From when the message has none. With a
// Config.MessagingServiceSID the request names the Messaging Service
// (MessagingServiceSid) instead of a From, and Twilio picks the sender from
// the service's pool: the message's origination identity is then not used.
// StatusCallback is Config.StatusCallbackURL, when set.
//
// # Twilio's answer
//
//	answer                                          sms.Error Status
//	2xx (201 and a Message resource)                none: Receipt{CarrierMessageID: the "SM..." sid}
//	HTTP 429, or Twilio error 20429, 14107, 21611   Throttled
//	Twilio error 21610 (the recipient sent STOP)    OptedOut
//	408, 3xx (never followed), 5xx, error 21730     Temporary
//	401, 403, error 20003, 20404, 21212, 21606,     NotPermitted (the account's credentials,
//	21608, 21612, 21660                             numbers or trial: another carrier may take it)
//	other 4xx (21211, 21408, 21614, 21617…)         Permanent
//	no answer in time (or cancelled), or the        Temporary, MayDeliver (Twilio may still deliver)
//	connection broke after the request was sent
//	connection failure before the request was sent  Temporary
//
// The sms.Error's Code is the HTTP status, and its Message names Twilio's
// error code with its meaning and the page of Twilio's documentation that
// explains it. Neither the Message nor the error ever holds the text or its
// code: what Twilio says is passed on only with the text and its digits
// redacted, and the carrier never logs what it sends. An error's cause, for
// the operator's log, is reachable through errors.Unwrap.
//
// # Delivery reports
//
// CallbackHandler serves Twilio's status callbacks (the StatusCallback
// URL): it checks the X-Twilio-Signature of each request against the auth
// token and Config.StatusCallbackURL, and hands each report to
// Config.Reporter. See CallbackHandler and Signature.
package twilio

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/otpd/otpd/internal/sms"
)

const (
	defaultName    = "twilio"
	defaultBaseURL = "https://api.twilio.com"
	defaultTimeout = 10 * time.Second
	userAgent      = "otpd-twilio/1"
	// apiVersion is the version of Twilio's REST API in every path.
	apiVersion = "2010-04-01"
	// maxRead is how much of a response body the carrier reads.
	maxRead = 64 << 10
	// maxShown is how much of what Twilio says a refusal shows.
	maxShown = 200
	// maxSID bounds the message SID a 2xx answer gives.
	maxSID = 64
)

// Config configures a Twilio carrier.
type Config struct {
	// Name names the carrier in otpd's logs and metrics: letters, digits,
	// '-', '_' and '.', at most 64. Default "twilio".
	Name string
	// AccountSID is the Twilio account ("AC" and 32 hex digits), in the
	// path of every request.
	AccountSID string
	// AuthToken is the account's auth token (32 hex digits). It
	// authenticates requests unless an API key is given, and it is the key
	// of Twilio's signatures on status callbacks, so it is required
	// whenever StatusCallbackURL is set.
	AuthToken string
	// APIKeySID ("SK" and 32 hex digits) and APIKeySecret, both or
	// neither, authenticate requests instead of the auth token.
	APIKeySID, APIKeySecret string
	// From is the sender of messages that have no origination identity:
	// an E.164 number, a short code, or an alphanumeric sender ID. Give
	// From or MessagingServiceSID, not both.
	From string
	// MessagingServiceSID ("MG" and 32 hex digits) sends every message
	// through that Messaging Service, which picks the sender.
	MessagingServiceSID string
	// StatusCallbackURL is the public URL at which Twilio reaches
	// CallbackHandler, exactly as Twilio calls it (scheme, host, port,
	// path, query): Twilio signs that URL. Optional: without it Twilio
	// sends no status callbacks and CallbackHandler refuses every request.
	StatusCallbackURL string
	// BaseURL is the address of Twilio's REST API, https; default
	// https://api.twilio.com. Tests point it elsewhere (http only for a
	// loopback host).
	BaseURL string
	// Timeout bounds each request, from connecting to reading the answer;
	// a shorter deadline of the caller's context wins. Default 10 s.
	Timeout time.Duration
	// Client makes the requests; nil means a client of otpd's own. Its
	// redirect policy is replaced: the carrier never follows a redirect.
	Client *http.Client
	// Reporter receives the delivery reports of status callbacks; nil
	// drops them.
	Reporter sms.Reporter
	// Logger gets a warning for each message Twilio accepted with an
	// answer that names no message SID (its delivery reports cannot be
	// matched to it); nil discards them.
	Logger *slog.Logger
}

// Carrier sends messages through Twilio. It is safe for concurrent use.
type Carrier struct {
	name                string
	accountSID          string
	authToken           string
	user, password      string // of the requests' Basic authentication
	from                string
	messagingServiceSID string
	callbackURL         string
	callbackURLs        []string // callbackURL and its spelling with or without the default port
	endpoint            string   // the Messages resource
	timeout             time.Duration
	client              *http.Client
	reporter            sms.Reporter
	log                 *slog.Logger
	now                 func() time.Time
}

var _ sms.Carrier = (*Carrier)(nil)

var (
	validName       = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
	validAccountSID = regexp.MustCompile(`^AC[0-9a-fA-F]{32}$`)
	validAPIKeySID  = regexp.MustCompile(`^SK[0-9a-fA-F]{32}$`)
	validServiceSID = regexp.MustCompile(`^MG[0-9a-fA-F]{32}$`)
	validAuthToken  = regexp.MustCompile(`^[0-9a-fA-F]{32}$`)
	validE164       = regexp.MustCompile(`^\+[1-9][0-9]{1,14}$`)
	validShortCode  = regexp.MustCompile(`^[0-9]{3,15}$`)
	validSenderID   = regexp.MustCompile(`^[A-Za-z0-9 ]{1,11}$`)
)

// New returns a carrier for cfg, or an error naming every problem of cfg.
func New(cfg Config) (*Carrier, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("twilio: "+format, args...)) }

	name := cfg.Name
	if name == "" {
		name = defaultName
	}
	if !validName.MatchString(name) {
		bad("Name %q must be 1 to 64 letters, digits, '-', '_' or '.': it labels logs and metrics", name)
	}
	switch {
	case cfg.AccountSID == "":
		bad("AccountSID is required: the account's SID, AC and 32 hex digits, from the Twilio Console")
	case !validAccountSID.MatchString(cfg.AccountSID):
		bad("AccountSID %q is not an account SID: want AC and 32 hex digits", truncateTo(cfg.AccountSID, 40))
	}
	if cfg.AuthToken != "" && !validAuthToken.MatchString(cfg.AuthToken) {
		bad("AuthToken is not an auth token: want 32 hex digits (%d characters given)", utf8.RuneCountInString(cfg.AuthToken))
	}
	apiKey := cfg.APIKeySID != "" || cfg.APIKeySecret != ""
	switch {
	case cfg.APIKeySID == "" && cfg.APIKeySecret != "":
		bad("APIKeySecret is given without APIKeySID: give both, or neither to use the auth token")
	case cfg.APIKeySID != "" && cfg.APIKeySecret == "":
		bad("APIKeySID is given without APIKeySecret: give both, or neither to use the auth token")
	case cfg.APIKeySID != "" && !validAPIKeySID.MatchString(cfg.APIKeySID):
		bad("APIKeySID %q is not an API key SID: want SK and 32 hex digits", truncateTo(cfg.APIKeySID, 40))
	}
	if !apiKey && cfg.AuthToken == "" {
		bad("AuthToken is required (or APIKeySID and APIKeySecret): it authenticates otpd's requests to Twilio")
	}
	if cfg.StatusCallbackURL != "" && cfg.AuthToken == "" {
		bad("AuthToken is required with StatusCallbackURL: Twilio signs its status callbacks with the auth token, never with an API key")
	}
	if cfg.From != "" && cfg.MessagingServiceSID != "" {
		bad("give From or MessagingServiceSID, not both: with a Messaging Service, Twilio picks the sender")
	}
	if cfg.From != "" && !validSender(cfg.From) {
		bad("From %q is not an E.164 number (+ and up to 15 digits), a short code (3 to 15 digits) or an alphanumeric sender ID (1 to 11 letters, digits and spaces, at least one letter)",
			truncateTo(cfg.From, 40))
	}
	if cfg.MessagingServiceSID != "" && !validServiceSID.MatchString(cfg.MessagingServiceSID) {
		bad("MessagingServiceSID %q is not a Messaging Service SID: want MG and 32 hex digits", truncateTo(cfg.MessagingServiceSID, 40))
	}
	if cfg.StatusCallbackURL != "" {
		if err := checkCallbackURL(cfg.StatusCallbackURL); err != nil {
			errs = append(errs, err)
		}
	}
	baseURL := cfg.BaseURL
	if baseURL == "" {
		baseURL = defaultBaseURL
	}
	if err := checkBaseURL(baseURL); err != nil {
		errs = append(errs, err)
	}
	timeout := cfg.Timeout
	switch {
	case timeout == 0:
		timeout = defaultTimeout
	case timeout < 0:
		bad("Timeout %v is negative; leave it 0 for the default of %v", timeout, defaultTimeout)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	client := cfg.Client
	if client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 64 // every request goes to the one API host
		client = &http.Client{Transport: tr}
	}
	own := *client // the caller's client keeps its own redirect policy
	own.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	user, password := cfg.AccountSID, cfg.AuthToken
	if apiKey {
		user, password = cfg.APIKeySID, cfg.APIKeySecret
	}
	c := &Carrier{
		name:                name,
		accountSID:          cfg.AccountSID,
		authToken:           cfg.AuthToken,
		user:                user,
		password:            password,
		from:                cfg.From,
		messagingServiceSID: cfg.MessagingServiceSID,
		callbackURL:         cfg.StatusCallbackURL,
		endpoint:            strings.TrimSuffix(baseURL, "/") + "/" + apiVersion + "/Accounts/" + cfg.AccountSID + "/Messages.json",
		timeout:             timeout,
		client:              &own,
		reporter:            cfg.Reporter,
		log:                 cmp.Or(cfg.Logger, slog.New(slog.DiscardHandler)),
		now:                 time.Now,
	}
	if c.callbackURL != "" {
		c.callbackURLs = portSpellings(c.callbackURL)
	}
	return c, nil
}

// validSender reports whether s is an origination identity Twilio takes as
// From.
func validSender(s string) bool {
	return validE164.MatchString(s) || validShortCode.MatchString(s) ||
		validSenderID.MatchString(s) && strings.ContainsFunc(s, unicode.IsLetter)
}

// checkBaseURL returns why rawURL cannot be the address of Twilio's API,
// or nil.
func checkBaseURL(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("twilio: BaseURL is not a valid URL: %w", err)
	}
	if u.Host == "" || u.Opaque != "" {
		return fmt.Errorf("twilio: BaseURL %q must be absolute, like %s", rawURL, defaultBaseURL)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return errors.New("twilio: BaseURL must be a scheme, a host and at most a path, like " + defaultBaseURL)
	}
	switch {
	case strings.EqualFold(u.Scheme, "https"):
		return nil
	case strings.EqualFold(u.Scheme, "http") && sms.IsLoopbackHost(u.Hostname()):
		return nil
	case strings.EqualFold(u.Scheme, "http"):
		return fmt.Errorf("twilio: BaseURL http://%s... must use https: every request carries the credentials and a one-time code (http is allowed only for a loopback host, for tests)", u.Host)
	}
	return fmt.Errorf("twilio: BaseURL scheme %q is not supported; use https", u.Scheme)
}

// checkCallbackURL returns why rawURL cannot be the status callback URL,
// or nil.
func checkCallbackURL(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("twilio: StatusCallbackURL is not a valid URL: %w", err)
	}
	if u.Host == "" || u.Opaque != "" || !strings.EqualFold(u.Scheme, "https") && !strings.EqualFold(u.Scheme, "http") {
		return fmt.Errorf("twilio: StatusCallbackURL %q must be an absolute http or https URL, the public address at which Twilio reaches otpd's callback endpoint",
			truncateTo(rawURL, 80))
	}
	if u.User != nil {
		return errors.New("twilio: StatusCallbackURL must not hold credentials: Twilio's signature authenticates its callbacks")
	}
	if u.Fragment != "" {
		return errors.New("twilio: StatusCallbackURL must not have a #fragment")
	}
	return nil
}

// Name returns the configured name, "twilio" by default.
func (c *Carrier) Name() string { return c.name }

// Send asks Twilio to send m and returns once Twilio accepted it, refused
// it, or failed to answer in time.
func (c *Carrier) Send(ctx context.Context, m sms.Message) (sms.Receipt, error) {
	form := url.Values{}
	form.Set("To", m.To)
	form.Set("Body", m.Text)
	if c.messagingServiceSID != "" {
		form.Set("MessagingServiceSid", c.messagingServiceSID)
	} else {
		from := m.From
		if from == "" {
			from = c.from
		}
		if from == "" {
			return sms.Receipt{}, &sms.Error{Status: sms.Permanent,
				Message: "the message has no origination identity and the Twilio carrier has no default From: give OriginationIdentity, or configure From or MessagingServiceSID"}
		}
		form.Set("From", from)
	}
	if c.callbackURL != "" {
		form.Set("StatusCallback", c.callbackURL)
	}
	reqCtx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	traced, wrote := sms.WithWriteTrace(reqCtx)
	req, err := http.NewRequestWithContext(traced, http.MethodPost, c.endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return sms.Receipt{}, fmt.Errorf("twilio: build the request: %w", err) // a URL New checked: never
	}
	req.SetBasicAuth(c.user, c.password)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	resp, err := c.client.Do(req)
	if err != nil {
		return sms.Receipt{}, noAnswer(ctx, reqCtx, err, wrote(err))
	}
	defer func() {
		// Read what is left of a modest body, so the connection can be
		// used again.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxRead))
		_ = resp.Body.Close()
	}()
	body, readErr := io.ReadAll(io.LimitReader(resp.Body, maxRead))
	receipt, err := answer(resp, body, m.Text)
	if err == nil && receipt.CarrierMessageID == "" {
		// Twilio took the message (2xx), and will deliver it, but its
		// answer was cut short or is not the Message resource.
		attrs := []any{"carrier", c.name, "message_id", m.ID, "status", resp.StatusCode}
		if readErr != nil {
			attrs = append(attrs, "err", readErr.Error())
		}
		c.log.Warn("Twilio accepted a message, but its answer names no message SID: its delivery reports cannot be matched to the message", attrs...)
	}
	return receipt, err
}

// noAnswer returns the failure of a request that got no answer: the
// caller gave up, the time ran out, the connection broke after the request
// was written (wrote), or Twilio could not be reached.
func noAnswer(ctx, reqCtx context.Context, err error, wrote bool) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // the cause without the URL
	}
	var ne net.Error
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		return sms.Refuse(&sms.Error{MayDeliver: true, Status: sms.Temporary,
			Message: "the send was cancelled before Twilio answered; Twilio may still deliver the message"}, err)
	case reqCtx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		return sms.Refuse(&sms.Error{MayDeliver: true, Status: sms.Temporary, Code: http.StatusGatewayTimeout,
			Message: "Twilio did not answer in time; it may still deliver the message"}, err)
	case wrote:
		return sms.Refuse(&sms.Error{MayDeliver: true, Status: sms.Temporary,
			Message: "the connection to Twilio broke after the message was sent, before an answer; Twilio may still deliver the message"}, err)
	}
	return sms.Refuse(&sms.Error{Status: sms.Temporary,
		Message: "Twilio's API could not be reached; otpd's log has the cause"}, err)
}

// resource is the part of Twilio's Message resource the carrier reads.
type resource struct {
	SID string `json:"sid"`
}

// apiError is Twilio's error body.
type apiError struct {
	Code     int    `json:"code"`
	Message  string `json:"message"`
	MoreInfo string `json:"more_info"`
	Status   int    `json:"status"`
}

// The Twilio error codes the carrier knows, with their meaning as the
// application developer reads it.
var meanings = map[int]string{
	14107: "the sender's rate limit between two numbers was exceeded",
	20003: "authentication failed: check the carrier's AccountSID and AuthToken or API key",
	20404: "the resource was not found: check the carrier's AccountSID",
	20429: "too many requests",
	20500: "Twilio's internal error",
	20503: "the Twilio service is temporarily unavailable",
	21211: "the 'To' number is not a valid phone number",
	21212: "the 'From' is not a valid phone number, short code or alphanumeric sender ID",
	21408: "SMS to the region of the 'To' number is not enabled for the Twilio account (Geo Permissions)",
	21606: "the 'From' number cannot send SMS to this destination (not a message-capable Twilio number)",
	21608: "a trial account can send only to verified numbers",
	21610: "the recipient has unsubscribed from this sender (replied STOP)",
	21611: "the sender's queue of messages is full",
	21612: "Twilio cannot connect this 'From' and 'To'",
	21614: "the 'To' number is not a mobile number",
	21617: "the text exceeds Twilio's limit of 1,600 characters",
	21660: "the 'From' number does not belong to the Twilio account",
	21730: "Twilio is under maintenance",
}

// notPermitted are the Twilio error codes that refuse a message for the
// account's sake (its credentials, its numbers, its permissions, a trial),
// not the message's: another carrier may take it (sms.NotPermitted).
// 21408 (Geo Permissions) is not among them: it is the operator's own
// block of a region, which failing over to another carrier would undo.
var notPermitted = map[int]bool{20003: true, 20404: true, 21212: true, 21606: true, 21608: true, 21612: true, 21660: true}

// answer returns the outcome Twilio's response gives.
func answer(resp *http.Response, body []byte, text string) (sms.Receipt, error) {
	code := resp.StatusCode
	if code >= 200 && code <= 299 {
		var r resource
		if json.Unmarshal(body, &r) == nil && isWord(r.SID) {
			return sms.Receipt{CarrierMessageID: r.SID}, nil
		}
		return sms.Receipt{}, nil // accepted, though the resource is not as documented
	}
	status := "HTTP " + strconv.Itoa(code)
	if s := http.StatusText(code); s != "" {
		status += " " + s
	}
	var e apiError
	if json.Unmarshal(body, &e) != nil || e.Code < 0 {
		e = apiError{}
	}
	// what is the refusal as the developer reads it: the status, Twilio's
	// error code and its meaning, and where Twilio explains it.
	what := status
	said := sms.Redact(e.Message, text, maxShown)
	if e.Code != 0 {
		meaning, known := meanings[e.Code]
		if !known {
			meaning = said
		}
		what += ", Twilio error " + strconv.Itoa(e.Code)
		if meaning != "" {
			what += ": " + meaning
		}
		what += "; https://www.twilio.com/docs/errors/" + strconv.Itoa(e.Code)
	}
	cause := "Twilio answered " + status
	switch {
	case said != "":
		cause += ": " + said
	case e.Code == 0 && len(body) > 0:
		cause += ": " + sms.Redact(string(body), text, maxShown)
	}
	causeErr := errors.New(cause)

	switch {
	case code == http.StatusTooManyRequests || e.Code == 20429 || e.Code == 14107 || e.Code == 21611:
		msg := "Twilio is throttling otpd (" + what + ")"
		if ra := sms.Redact(resp.Header.Get("Retry-After"), text, maxShown); ra != "" && len(ra) <= 64 {
			msg += "; Retry-After: " + ra
		}
		return sms.Receipt{}, sms.Refuse(&sms.Error{Status: sms.Throttled, Code: code, Message: msg}, causeErr)
	case e.Code == 21610:
		return sms.Receipt{}, sms.Refuse(&sms.Error{Status: sms.OptedOut, Code: code,
			Message: "the recipient opted out of messages from this sender; Twilio sends them none until they reply START (" + what + ")"}, causeErr)
	case code == http.StatusRequestTimeout:
		return sms.Receipt{}, sms.Refuse(&sms.Error{Status: sms.Temporary, Code: code,
			Message: "Twilio timed out reading the request (" + what + ")"}, causeErr)
	case e.Code == 21730:
		return sms.Receipt{}, sms.Refuse(&sms.Error{Status: sms.Temporary, Code: code,
			Message: "Twilio is under maintenance; try again later (" + what + ")"}, causeErr)
	case code >= 300 && code <= 399:
		return sms.Receipt{}, sms.Refuse(&sms.Error{Status: sms.Temporary, Code: code,
			Message: "Twilio answered with a redirect (" + status + "), which otpd does not follow: check the carrier's BaseURL"}, causeErr)
	case code == http.StatusUnauthorized || code == http.StatusForbidden || notPermitted[e.Code]:
		return sms.Receipt{}, sms.Refuse(&sms.Error{Status: sms.NotPermitted, Code: code,
			Credentials: code == http.StatusUnauthorized || e.Code == 20003,
			Message:     "Twilio refused the message for otpd's account (" + what + "); another carrier may take it"}, causeErr)
	case code >= 400 && code <= 499:
		return sms.Receipt{}, sms.Refuse(&sms.Error{Status: sms.Permanent, Code: code,
			Message: "Twilio refused the message (" + what + ")"}, causeErr)
	case code >= 500 && code <= 599:
		return sms.Receipt{}, sms.Refuse(&sms.Error{Status: sms.Temporary, Code: code,
			Message: "Twilio failed (" + what + ")"}, causeErr)
	}
	return sms.Receipt{}, sms.Refuse(&sms.Error{Status: sms.Temporary, Code: code,
		Message: "Twilio answered with an unexpected status (" + status + ")"}, causeErr)
}

// isWord reports whether s is a short word of printable ASCII, as a
// Twilio SID or error code is: one that can be a Receipt's
// CarrierMessageID or a report's Code.
func isWord(s string) bool {
	if s == "" || len(s) > maxSID {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// truncateTo returns s cut to at most n bytes.
func truncateTo(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "..."
}
