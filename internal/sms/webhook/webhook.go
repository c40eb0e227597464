// Package webhook is a carrier that hands each message to an operator's own
// HTTPS endpoint, which sends the SMS by whatever means the operator has (an
// in-house gateway, a provider otpd has no carrier for).
//
// # The request
//
// For each message the carrier makes one POST to the configured URL, with
// the JSON body described by Payload:
//
//	{"MessageId": "6f1c...", "ApplicationId": "0123...", "ReferenceId": "login-42",
//	 "From": "+18555550142", "To": "+14255550142",
//	 "Text": "This is your One Time Password: 123456 from ExampleCorp",
//	 "Language": "en-US", "Encoding": "GSM-7", "Segments": 1}
//
// Encoding ("GSM-7" or "UCS-2") and Segments are what the text needs by the
// rules of package gsm7. EntityId and TemplateId (India's DLT) appear only
// when the client gave them. The headers are:
//
//	Content-Type: application/json
//	User-Agent: otpd-webhook/1
//	Idempotency-Key: <MessageId>
//	X-Otpd-Timestamp: <Unix time in seconds>
//	X-Otpd-Signature: v1=<hex of HMAC-SHA256(secret, timestamp + "." + body)>
//
// The Text holds a one-time code, which is why the URL must use https
// (plain http is allowed only for a loopback host, for development).
//
// # Checking a request
//
// The endpoint must check the signature over the exact bytes of the body,
// and refuse a request whose timestamp is older than a few minutes; Verify
// does both for endpoints written in Go. A captured request can still be
// replayed within that window, and otpd itself may repeat a message (a
// client retry that reaches another otpd instance, a failover): the
// endpoint should send at most one SMS per Idempotency-Key.
//
// # The answer
//
//   - 2xx: the endpoint took the message. A JSON body with a string (or
//     number) field "MessageId" or "id" gives the Receipt's
//     CarrierMessageID; any other body is fine.
//   - 429: throttled; otpd reports THROTTLED. A Retry-After header is
//     passed on in the message.
//   - 408, 3xx (redirects are never followed: the code must not go
//     elsewhere), 5xx, no answer, a broken connection: a temporary failure.
//     When the endpoint does not answer within Config.Timeout or the
//     caller's deadline, whichever comes first, the failure says that the
//     endpoint may still deliver the message.
//   - 401 and 403: a refusal of otpd (sms.NotPermitted): the endpoint does
//     not accept its secret or its account; the router tries the next
//     carrier. A 401, a refused secret that every send would meet, has
//     Credentials set and counts toward the carrier's circuit.
//   - any other 4xx: a permanent refusal, such as an invalid number.
//
// A refusal's message, which reaches the application developer, holds the
// status and up to 200 bytes of the response body, stripped of control
// characters and of anything that repeats the message's text or its
// digits. The carrier never logs, and never puts in an error, the text it
// sends.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/otpd/otpd/internal/gsm7"
	"github.com/otpd/otpd/internal/sms"
)

// The headers that authenticate a request.
const (
	TimestampHeader = "X-Otpd-Timestamp"
	SignatureHeader = "X-Otpd-Signature"
)

const (
	defaultName    = "webhook"
	defaultTimeout = 5 * time.Second
	minSecretLen   = 32
	userAgent      = "otpd-webhook/1"
	// maxShown is how much of a refusal's response body its message shows.
	maxShown = 200
	// maxRead is how much of a response body the carrier reads.
	maxRead = 64 << 10
	// maxCarrierMessageID bounds the ID a 2xx answer gives.
	maxCarrierMessageID = 256
)

// Config configures a webhook carrier.
type Config struct {
	// Name names the carrier in otpd's logs and metrics: letters, digits,
	// '-', '_' and '.', at most 64. Default "webhook".
	Name string
	// URL is the endpoint: https, or http for a loopback host only.
	URL string
	// Secret is the key of the requests' signatures, at least 32 bytes,
	// shared with the endpoint.
	Secret []byte
	// Timeout bounds each request, from connecting to reading the answer;
	// a shorter deadline of the caller's context wins. Default 5 s.
	Timeout time.Duration
	// Client makes the requests (say, with the operator's CA or a client
	// certificate); nil means a client of otpd's own. Its redirect policy
	// is replaced: the carrier never follows a redirect.
	Client *http.Client
}

// Carrier posts messages to an operator's endpoint. It is safe for
// concurrent use.
type Carrier struct {
	name    string
	url     string
	secret  []byte
	timeout time.Duration
	client  *http.Client
}

var _ sms.Carrier = (*Carrier)(nil)

var validName = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// New returns a carrier for cfg, or an error naming every problem of cfg.
func New(cfg Config) (*Carrier, error) {
	var errs []error
	name := cfg.Name
	if name == "" {
		name = defaultName
	}
	if !validName.MatchString(name) {
		errs = append(errs, fmt.Errorf("webhook: Name %q must be 1 to 64 letters, digits, '-', '_' or '.': it labels logs and metrics", name))
	}
	if err := checkURL(cfg.URL); err != nil {
		errs = append(errs, err)
	}
	if len(cfg.Secret) < minSecretLen {
		errs = append(errs, fmt.Errorf("webhook: Secret has %d bytes, want at least %d (e.g. `openssl rand -hex 32`): anyone who guesses it can send SMS through the endpoint",
			len(cfg.Secret), minSecretLen))
	}
	timeout := cfg.Timeout
	switch {
	case timeout == 0:
		timeout = defaultTimeout
	case timeout < 0:
		errs = append(errs, fmt.Errorf("webhook: Timeout %v is negative; leave it 0 for the default of %v", timeout, defaultTimeout))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	client := cfg.Client
	if client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 64 // every request goes to the one endpoint
		client = &http.Client{Transport: tr}
	}
	own := *client // the caller's client keeps its own redirect policy
	own.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Carrier{
		name:    name,
		url:     cfg.URL,
		secret:  bytes.Clone(cfg.Secret),
		timeout: timeout,
		client:  &own,
	}, nil
}

// checkURL returns why rawURL cannot be the endpoint, or nil.
func checkURL(rawURL string) error {
	if rawURL == "" {
		return errors.New("webhook: URL is required: the https address of the endpoint that sends the SMS")
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("webhook: URL is not a valid URL: %w", err)
	}
	if u.Host == "" || u.Opaque != "" {
		return errors.New("webhook: URL must be absolute, like https://sms.example.com/otpd")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if sms.IsLoopbackHost(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("webhook: URL http://%s... must use https: every request carries a one-time code, which plain http shows to anyone on the network path (http is allowed only for a loopback host such as localhost or 127.0.0.1, for development)",
			u.Host)
	}
	return fmt.Errorf("webhook: URL scheme %q is not supported; use https", u.Scheme)
}

// Name returns the configured name, "webhook" by default.
func (c *Carrier) Name() string { return c.name }

// Payload is the JSON body of a request, for endpoints written in Go.
type Payload struct {
	MessageID     string `json:"MessageId"`     // otpd's ID of the message; also the Idempotency-Key
	ApplicationID string `json:"ApplicationId"` // the Pinpoint application that sent it
	ReferenceID   string `json:"ReferenceId"`   // the client's reference for the code
	From          string `json:"From"`          // E.164 number, short code or sender ID
	To            string `json:"To"`            // E.164 destination
	Text          string `json:"Text"`          // the whole text, code included
	Language      string `json:"Language"`      // BCP 47 tag of the text, e.g. "pt-BR"
	Encoding      string `json:"Encoding"`      // "GSM-7" or "UCS-2"
	Segments      int    `json:"Segments"`      // SMS parts the text needs in that encoding
	EntityID      string `json:"EntityId,omitempty"`
	TemplateID    string `json:"TemplateId,omitempty"`
}

// Send posts m to the endpoint and returns once it answered, or failed to
// in time.
func (c *Carrier) Send(ctx context.Context, m sms.Message) (sms.Receipt, error) {
	enc, segments := gsm7.Segments(m.Text)
	body, err := json.Marshal(Payload{
		MessageID:     m.ID,
		ApplicationID: m.AppID,
		ReferenceID:   m.ReferenceID,
		From:          m.From,
		To:            m.To,
		Text:          m.Text,
		Language:      m.Language,
		Encoding:      enc.String(),
		Segments:      segments,
		EntityID:      m.EntityID,
		TemplateID:    m.TemplateID,
	})
	if err != nil {
		return sms.Receipt{}, fmt.Errorf("webhook: encode the request: %w", err) // strings and an int: never
	}
	reqCtx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	traced, wrote := sms.WithWriteTrace(reqCtx)
	req, err := http.NewRequestWithContext(traced, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return sms.Receipt{}, fmt.Errorf("webhook: build the request: %w", err)
	}
	timestamp := strconv.FormatInt(time.Now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set("Idempotency-Key", m.ID)
	req.Header.Set(TimestampHeader, timestamp)
	req.Header.Set(SignatureHeader, "v1="+hex.EncodeToString(sign(c.secret, timestamp, body)))
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
	return answer(resp, m.Text)
}

// sign returns the HMAC-SHA256 of timestamp, ".", and body.
func sign(secret []byte, timestamp string, body []byte) []byte {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(timestamp))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return mac.Sum(nil)
}

// noAnswer returns the failure of a request that got no answer: the
// caller gave up, the time ran out, the connection broke after the request
// was written (wrote), or the endpoint could not be reached.
func noAnswer(ctx, reqCtx context.Context, err error, wrote bool) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // the cause without the URL, which may hold a token
	}
	var ne net.Error
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		return sms.Refuse(&sms.Error{MayDeliver: true, Status: sms.Temporary,
			Message: "the send was cancelled before the webhook endpoint answered; the endpoint may still deliver the message"}, err)
	case reqCtx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		return sms.Refuse(&sms.Error{MayDeliver: true, Status: sms.Temporary, Code: http.StatusGatewayTimeout,
			Message: "the webhook endpoint did not answer in time; it may still deliver the message"}, err)
	case wrote:
		return sms.Refuse(&sms.Error{MayDeliver: true, Status: sms.Temporary,
			Message: "the connection to the webhook endpoint broke after the message was sent, before an answer; the endpoint may still deliver the message"}, err)
	}
	return sms.Refuse(&sms.Error{Status: sms.Temporary,
		Message: "the webhook endpoint could not be reached; otpd's log has the cause"}, err)
}

// answer returns the outcome the endpoint's response gives.
func answer(resp *http.Response, text string) (sms.Receipt, error) {
	code := resp.StatusCode
	if code >= 200 && code <= 299 {
		return sms.Receipt{CarrierMessageID: carrierMessageID(resp.Body)}, nil
	}
	status := "HTTP " + strconv.Itoa(code)
	if s := http.StatusText(code); s != "" {
		status += " " + s
	}
	shown, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	detail := ""
	if s := sms.Redact(string(shown), text, maxShown); s != "" {
		detail = ": " + s
	}
	cause := errors.New("webhook endpoint answered " + status)
	switch {
	case code == http.StatusTooManyRequests:
		msg := "the webhook endpoint is throttling otpd (" + status + ")"
		if ra := sms.Redact(resp.Header.Get("Retry-After"), text, maxShown); ra != "" && len(ra) <= 64 {
			msg += "; Retry-After: " + ra
		}
		return sms.Receipt{}, sms.Refuse(&sms.Error{Status: sms.Throttled, Code: code, Message: msg + detail}, cause)
	case code == http.StatusRequestTimeout:
		return sms.Receipt{}, sms.Refuse(&sms.Error{Status: sms.Temporary, Code: code,
			Message: "the webhook endpoint timed out reading the request (" + status + ")" + detail}, cause)
	case code >= 300 && code <= 399:
		return sms.Receipt{}, sms.Refuse(&sms.Error{Status: sms.Temporary, Code: code,
			Message: "the webhook endpoint answered with a redirect (" + status + "), which otpd does not follow: set the carrier's URL to the final address"}, cause)
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return sms.Receipt{}, sms.Refuse(&sms.Error{Status: sms.NotPermitted, Code: code, Credentials: code == http.StatusUnauthorized,
			Message: "the webhook endpoint refused otpd (" + status + "): check the carrier's secret and what the endpoint allows" + detail}, cause)
	case code >= 400 && code <= 499:
		return sms.Receipt{}, sms.Refuse(&sms.Error{Status: sms.Permanent, Code: code,
			Message: "the webhook endpoint refused the message (" + status + ")" + detail}, cause)
	case code >= 500 && code <= 599:
		return sms.Receipt{}, sms.Refuse(&sms.Error{Status: sms.Temporary, Code: code,
			Message: "the webhook endpoint failed (" + status + ")" + detail}, cause)
	}
	return sms.Receipt{}, sms.Refuse(&sms.Error{Status: sms.Temporary, Code: code,
		Message: "the webhook endpoint answered with an unexpected status (" + status + ")"}, cause)
}

// carrierMessageID returns the "MessageId" or else "id" field of a JSON
// object body, if it is a string or a number of printable characters, or
// "".
func carrierMessageID(body io.Reader) string {
	var fields struct {
		MessageID json.RawMessage `json:"MessageId"`
		ID        json.RawMessage `json:"id"`
	}
	if err := json.NewDecoder(io.LimitReader(body, maxRead)).Decode(&fields); err != nil {
		return ""
	}
	for _, raw := range []json.RawMessage{fields.MessageID, fields.ID} {
		var v any
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if len(raw) == 0 || dec.Decode(&v) != nil {
			continue
		}
		var id string
		switch v := v.(type) {
		case string:
			id = v
		case json.Number:
			id = v.String()
		}
		if id != "" && len(id) <= maxCarrierMessageID && strings.IndexFunc(id, func(r rune) bool {
			return !unicode.IsPrint(r) || r == utf8.RuneError
		}) < 0 {
			return id
		}
	}
	return ""
}

// Verify checks a request the carrier made, for endpoints written in Go:
// timestamp and signature are the values of the X-Otpd-Timestamp and
// X-Otpd-Signature headers, body the exact bytes of the body, now the
// endpoint's clock. It returns nil if the signature is a v1 signature of
// the request with secret, compared in constant time, and the timestamp
// lies within maxAge of now (either way: clocks drift); five minutes suits
// most. The signature header may hold several comma-separated signatures
// (while the secret is changed); one match suffices.
//
// Verify cannot tell a replay within maxAge from the original: send at most
// one SMS per Idempotency-Key.
func Verify(secret []byte, timestamp, signature string, body []byte, now time.Time, maxAge time.Duration) error {
	if len(secret) < minSecretLen {
		return fmt.Errorf("webhook: the secret has %d bytes, want at least %d", len(secret), minSecretLen)
	}
	if maxAge <= 0 {
		return fmt.Errorf("webhook: maxAge %v must be positive", maxAge)
	}
	if timestamp == "" || len(timestamp) > 18 || strings.Trim(timestamp, "0123456789") != "" {
		return fmt.Errorf("webhook: the %s header %q is not a Unix time in seconds", TimestampHeader, truncateTo(timestamp, 40))
	}
	want := sign(secret, timestamp, body)
	match, v1 := false, false
	for part := range strings.SplitSeq(signature, ",") {
		sig, ok := strings.CutPrefix(strings.TrimSpace(part), "v1=")
		if !ok {
			continue
		}
		v1 = true
		got, err := hex.DecodeString(sig)
		if err == nil && hmac.Equal(got, want) {
			match = true
		}
	}
	if !v1 {
		return fmt.Errorf("webhook: the %s header holds no v1= signature", SignatureHeader)
	}
	if !match {
		return errors.New("webhook: the signature does not match the request: a different secret, or a body or timestamp changed on the way")
	}
	sent, _ := strconv.ParseInt(timestamp, 10, 64) // at most 18 digits: fits
	age := now.Sub(time.Unix(sent, 0))
	switch {
	case age > maxAge:
		return fmt.Errorf("webhook: the request was signed %v ago, more than %v: a replay, or a clock out of step", age.Truncate(time.Second), maxAge)
	case age < -maxAge:
		return fmt.Errorf("webhook: the request was signed %v in the future, more than %v: a clock out of step", (-age).Truncate(time.Second), maxAge)
	}
	return nil
}

// truncateTo returns s cut to at most n bytes.
func truncateTo(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "..."
}
