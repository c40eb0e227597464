// Package awssms is a carrier that sends text messages through AWS End User
// Messaging SMS (the service behind Amazon Pinpoint's SMS channel, API
// "pinpoint-sms-voice-v2", signing name "sms-voice"), with the
// SendTextMessage operation of aws-sdk-go-v2.
//
// # The request
//
// For each message the carrier makes one SendTextMessage call:
//
//	DestinationPhoneNumber        the message's To (E.164)
//	OriginationIdentity           the message's From: the phone number, short code or
//	                              sender ID of the client's request (or a phone
//	                              number ID, pool ID or ARN, which AWS also accepts)
//	MessageBody                   the whole text; AWS picks the encoding and splits it
//	MessageType                   TRANSACTIONAL
//	ConfigurationSetName          Config.ConfigurationSetName, if set
//	MaxPrice                      Config.MaxPrice, if set
//	Context                       {"otpd-message-id": <the message's ID>}, which AWS
//	                              copies into the configuration set's event records
//	DestinationCountryParameters  {"IN_ENTITY_ID": ..., "IN_TEMPLATE_ID": ...}, the
//	                              request's EntityId and TemplateId (India's DLT),
//	                              each only when given
//
// The SDK's own retries are off: one call, one attempt. Trying again, or on
// another carrier, is otpd's decision, made from the refusal's Status. Each
// call is bounded by Config.Timeout or the caller's deadline, whichever
// comes first.
//
// The credentials need the IAM permission sms-voice:SendTextMessage on the
// origination identities and the configuration set.
//
// # Refusals
//
// AWS's answer is classified by its error code; the *sms.Error's Code is the
// HTTP status of the answer (0 when there was none):
//
//	ValidationException, reason
//	  SENDER_ID_NOT_REGISTERED and the other
//	  reasons of notPermittedReasons          NotPermitted  another carrier may take it
//	ValidationException, any other reason     Permanent  names the field at fault when AWS does
//	ConflictException, reason
//	  DESTINATION_PHONE_NUMBER_OPTED_OUT      OptedOut
//	  DESTINATION_..._BLOCKED_BY_PROTECT_...  Permanent  the account's own protect configuration
//	ConflictException, any other reason       NotPermitted  the state of the account
//	ResourceNotFoundException                 NotPermitted  unknown origination identity or
//	                                                     configuration set
//	AccessDeniedException                     NotPermitted  check the IAM policy and the account
//	UnrecognizedClientException and the
//	  other signature and key errors          NotPermitted  check the credentials
//	ThrottlingException                       Throttled
//	ServiceQuotaExceededException             Throttled  e.g. the monthly spend limit
//	InternalServerException                   Temporary
//	ExpiredTokenException, RequestExpired     Temporary
//	any other code, or a body that is not
//	  AWS's JSON (a proxy's page):  HTTP 429  Throttled
//	                                408, 5xx  Temporary
//	                                401, 403  NotPermitted
//	                               other 4xx  Permanent
//	no answer in time                         Temporary  504; AWS may still deliver the message
//	cancelled, connection failed              Temporary
//	no credentials (default chain)            Temporary
//
// An answer of HTTP 2xx means that SendTextMessage succeeded: AWS took the
// message and sends it. When its body cannot be read (cut short, not AWS's
// JSON), the message is accepted all the same, with no CarrierMessageID,
// and Config.Logger gets a warning: a failure would make a route hand the
// message to another carrier, which would text the user a second time.
//
// A refusal's Message, which reaches the application developer, says what
// AWS answered and what to check, with at most 200 bytes of AWS's own
// message. AWS may repeat a rejected value in its message, so whatever
// repeats the message's text, or any run of its digits (the code), is
// redacted, from the Message and from Error() alike. The SDK's error stays
// the refusal's cause, for the operator's log: errors.As finds both the
// *sms.Error and, say, the smithy.APIError.
package awssms

import (
	"cmp"
	"context"
	"errors"
	"fmt"
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

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	sv2 "github.com/aws/aws-sdk-go-v2/service/pinpointsmsvoicev2"
	"github.com/aws/aws-sdk-go-v2/service/pinpointsmsvoicev2/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/otpd/otpd/internal/sms"
)

const (
	defaultName    = "awssms"
	defaultTimeout = 10 * time.Second
	// ContextMessageID is the key of the message's ID in the Context of
	// each request, and so in the event records of the configuration set.
	ContextMessageID = "otpd-message-id"
	// service names AWS End User Messaging SMS in refusals.
	service = "AWS End User Messaging SMS"
	// maxShown is how much of AWS's own message a refusal shows.
	maxShown = 200
	// maxCause is how much of the SDK's error Error() shows.
	maxCause = 1000
	// maxMessage bounds a refusal's Message, which only an answer with
	// dozens of faulty fields, each with its detail, comes near.
	maxMessage = 4 << 10
	// maxIdleConns is the idle connections kept to the one endpoint.
	maxIdleConns = 64
)

// Config configures an AWS End User Messaging SMS carrier.
type Config struct {
	// Name names the carrier in otpd's logs and metrics: letters, digits,
	// '-', '_' and '.', at most 64. Default "awssms".
	Name string
	// Region is the AWS region of the origination identities, e.g.
	// "us-east-1". Required.
	Region string
	// ConfigurationSetName is the configuration set (name or ARN) whose
	// event destinations receive the messages' events; optional.
	ConfigurationSetName string
	// MaxPrice is the most to spend on one message, in US dollars, e.g.
	// "0.05"; AWS refuses a message that would cost more. Optional.
	MaxPrice string
	// Endpoint overrides the service's endpoint, e.g. a VPC interface
	// endpoint (https://vpce-....sms-voice.us-east-1.vpce.amazonaws.com),
	// or a test server. https, or http for a loopback host only. Optional.
	Endpoint string
	// Timeout bounds each call, from connecting to reading the answer; a
	// shorter deadline of the caller's context wins. Default 10 s.
	Timeout time.Duration
	// Credentials sign the requests. nil means the default AWS credential
	// chain (environment, shared files and profile, SSO, web identity,
	// container or instance role), loaded with config.LoadDefaultConfig,
	// which also reads the rest of the shared configuration (AWS_CA_BUNDLE,
	// say). With Credentials set, nothing is read from the environment.
	Credentials aws.CredentialsProvider
	// HTTPClient makes the requests (say, through a proxy, or trusting a
	// private CA); nil means the SDK's own. Optional.
	HTTPClient *http.Client
	// Logger gets a warning for each message AWS accepted (HTTP 2xx) with
	// an answer otpd could not read; nil discards them.
	Logger *slog.Logger
}

// Carrier sends messages through AWS End User Messaging SMS. It is safe for
// concurrent use.
type Carrier struct {
	name             string
	region           string
	configurationSet string
	maxPrice         string
	timeout          time.Duration
	client           *sv2.Client
	credentials      aws.CredentialsProvider
	log              *slog.Logger
}

var _ sms.Carrier = (*Carrier)(nil)

var (
	validName     = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
	validRegion   = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)
	validPrice    = regexp.MustCompile(`^[0-9]{1,4}(\.[0-9]{1,5})?$|^\.[0-9]{1,5}$`)
	validConfName = regexp.MustCompile(`^[A-Za-z0-9_:/.-]{1,256}$`)
)

// New returns a carrier for cfg, or an error naming every problem of cfg.
// With no Credentials, it loads the default AWS configuration, which reads
// files and the environment but makes no request; ctx bounds that.
func New(ctx context.Context, cfg Config) (*Carrier, error) {
	var errs []error
	name := cfg.Name
	if name == "" {
		name = defaultName
	}
	if !validName.MatchString(name) {
		errs = append(errs, fmt.Errorf("awssms: Name %q must be 1 to 64 letters, digits, '-', '_' or '.': it labels logs and metrics", name))
	}
	switch {
	case cfg.Region == "":
		errs = append(errs, errors.New("awssms: Region is required: the AWS region of the origination identities, e.g. us-east-1"))
	case len(cfg.Region) > 64 || !validRegion.MatchString(cfg.Region):
		errs = append(errs, fmt.Errorf("awssms: Region %q is not an AWS region name such as us-east-1", cfg.Region))
	}
	if s := cfg.ConfigurationSetName; s != "" && !validConfName.MatchString(s) {
		errs = append(errs, fmt.Errorf("awssms: ConfigurationSetName %q must be a configuration set's name or ARN: up to 256 letters, digits, '_', '-', ':', '/' or '.'", s))
	}
	if p := cfg.MaxPrice; p != "" {
		if f, err := strconv.ParseFloat(p, 64); err != nil || !validPrice.MatchString(p) || f <= 0 {
			errs = append(errs, fmt.Errorf("awssms: MaxPrice %q must be a positive price in US dollars, such as 0.05", p))
		}
	}
	if cfg.Endpoint != "" {
		if err := checkEndpoint(cfg.Endpoint); err != nil {
			errs = append(errs, err)
		}
	}
	timeout := cfg.Timeout
	switch {
	case timeout == 0:
		timeout = defaultTimeout
	case timeout < 0:
		errs = append(errs, fmt.Errorf("awssms: Timeout %v is negative; leave it 0 for the default of %v", timeout, defaultTimeout))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	var awsCfg aws.Config
	if cfg.Credentials == nil {
		var err error
		awsCfg, err = config.LoadDefaultConfig(ctx, config.WithRegion(cfg.Region))
		if err != nil {
			return nil, fmt.Errorf("awssms: load the default AWS configuration (for the default credential chain): %w", err)
		}
	} else {
		awsCfg = aws.Config{Region: cfg.Region, Credentials: cached(cfg.Credentials)}
	}
	switch {
	case cfg.HTTPClient != nil:
		awsCfg.HTTPClient = cfg.HTTPClient
	case awsCfg.HTTPClient == nil:
		awsCfg.HTTPClient = awshttp.NewBuildableClient().WithTransportOptions(moreIdleConns)
	default:
		if b, ok := awsCfg.HTTPClient.(*awshttp.BuildableClient); ok {
			awsCfg.HTTPClient = b.WithTransportOptions(moreIdleConns)
		}
	}
	client := sv2.NewFromConfig(awsCfg, func(o *sv2.Options) {
		// One attempt: trying again, or elsewhere, is otpd's decision.
		o.Retryer = aws.NopRetryer{}
		o.RetryMaxAttempts = 1
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
	})
	return &Carrier{
		name:             name,
		region:           cfg.Region,
		configurationSet: cfg.ConfigurationSetName,
		maxPrice:         cfg.MaxPrice,
		timeout:          timeout,
		client:           client,
		credentials:      awsCfg.Credentials,
		log:              cmp.Or(cfg.Logger, slog.New(slog.DiscardHandler)),
	}, nil
}

// CheckCredentials finds the credentials the carrier would sign with (New
// only reads the configuration): it returns an error if there are none, or
// the chain cannot retrieve them now, as every send would then fail. ctx
// bounds the retrieval, which may ask an instance or container role.
func (c *Carrier) CheckCredentials(ctx context.Context) error {
	if _, err := c.credentials.Retrieve(ctx); err != nil {
		return fmt.Errorf("awssms: %s: no AWS credentials could be found, so every send through it would fail: set them in the environment (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) or a profile (AWS_PROFILE), or give otpd an instance, task or pod role: %w", c.name, err)
	}
	return nil
}

// cached returns p behind a credentials cache, unless it is one.
func cached(p aws.CredentialsProvider) aws.CredentialsProvider {
	if aws.IsCredentialsProvider(p, (*aws.CredentialsCache)(nil)) {
		return p
	}
	return aws.NewCredentialsCache(p)
}

// moreIdleConns keeps enough idle connections for concurrent sends, which
// all go to the one endpoint.
func moreIdleConns(tr *http.Transport) { tr.MaxIdleConnsPerHost = maxIdleConns }

// checkEndpoint returns why rawURL cannot be the endpoint, or nil.
func checkEndpoint(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("awssms: Endpoint is not a valid URL: %w", err)
	}
	if u.Host == "" || u.Opaque != "" {
		return errors.New("awssms: Endpoint must be absolute, like https://sms-voice.us-east-1.amazonaws.com")
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return errors.New("awssms: Endpoint must not hold user information, a query or a fragment")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if sms.IsLoopbackHost(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("awssms: Endpoint http://%s... must use https: every request carries a one-time code (http is allowed only for a loopback host, for development)", u.Host)
	}
	return fmt.Errorf("awssms: Endpoint scheme %q is not supported; use https", u.Scheme)
}

// Name returns the configured name, "awssms" by default.
func (c *Carrier) Name() string { return c.name }

// Send makes one SendTextMessage call for m and returns once AWS answered,
// or failed to in time.
func (c *Carrier) Send(ctx context.Context, m sms.Message) (sms.Receipt, error) {
	in := &sv2.SendTextMessageInput{
		DestinationPhoneNumber: aws.String(m.To),
		MessageBody:            aws.String(m.Text),
		MessageType:            types.MessageTypeTransactional,
	}
	if m.From != "" {
		in.OriginationIdentity = aws.String(m.From)
	}
	if c.configurationSet != "" {
		in.ConfigurationSetName = aws.String(c.configurationSet)
	}
	if c.maxPrice != "" {
		in.MaxPrice = aws.String(c.maxPrice)
	}
	if m.ID != "" {
		in.Context = map[string]string{ContextMessageID: m.ID}
	}
	if dlt := dltParameters(m); len(dlt) > 0 {
		in.DestinationCountryParameters = dlt
	}
	reqCtx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	traced, wrote := sms.WithWriteTrace(reqCtx)
	out, err := c.client.SendTextMessage(traced, in)
	if status := httpStatus(err); err != nil && status >= 200 && status <= 299 && awsRequestID(err) != "" {
		// AWS took the message; only its answer could not be read.
		c.log.Warn("AWS End User Messaging SMS accepted a message, but otpd could not read its answer: the message is recorded without AWS's message ID",
			"carrier", c.name, "message_id", m.ID, "status", status, "aws_request_id", awsRequestID(err), "err", sms.Redact(err.Error(), m.Text, maxCause))
		return sms.Receipt{}, nil
	}
	if err != nil {
		return sms.Receipt{}, c.failure(ctx, reqCtx, err, m.Text, wrote(err))
	}
	return sms.Receipt{CarrierMessageID: aws.ToString(out.MessageId)}, nil
}

// dltParameters returns the destination country parameters of India's DLT
// that m gives.
func dltParameters(m sms.Message) map[string]string {
	p := map[string]string{}
	if m.EntityID != "" {
		p[string(types.DestinationCountryParameterKeyInEntityId)] = m.EntityID
	}
	if m.TemplateID != "" {
		p[string(types.DestinationCountryParameterKeyInTemplateId)] = m.TemplateID
	}
	return p
}

// failure is a refusal, as the client sees it, with its cause, for the
// operator's log. errors.As finds the *sms.Error and the SDK's errors.
type failure struct {
	refusal   *sms.Error
	cause     error
	causeText string // cause.Error(), redacted
}

func (f *failure) Error() string   { return f.refusal.Error() + " (" + f.causeText + ")" }
func (f *failure) Unwrap() []error { return []error{f.refusal, f.cause} }

// failure returns the refusal that err, the SDK's error for a call whose
// context was reqCtx (derived from the caller's ctx) and whose request was
// written in full if wrote, amounts to.
func (c *Carrier) failure(ctx, reqCtx context.Context, err error, text string, wrote bool) error {
	var refusal *sms.Error
	var apiErr smithy.APIError
	status := httpStatus(err)
	switch {
	case errors.As(err, &apiErr):
		refusal = c.classify(apiErr, err, status, text)
	case status > 0:
		refusal = unreadable(status)
	default:
		refusal = c.noAnswer(ctx, reqCtx, err, wrote)
	}
	// The Message holds more of the answer than detail: AWS's error code,
	// reasons, field names and resource IDs.
	refusal.Message = sms.Redact(refusal.Message, text, maxMessage)
	return &failure{refusal: refusal, cause: err, causeText: sms.Redact(err.Error(), text, maxCause)}
}

// httpStatus returns the HTTP status of the answer err carries, or 0.
// awsRequestID returns the request ID of the answer err carries
// (x-amzn-RequestId), or "": an answer without one did not come from AWS,
// but from a proxy or a firewall in between.
func awsRequestID(err error) string {
	var re interface{ ServiceRequestID() string }
	if errors.As(err, &re) {
		return re.ServiceRequestID()
	}
	return ""
}

func httpStatus(err error) int {
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// classify returns the refusal of an error answer with status whose AWS
// error code apiErr gives; err is the whole error, for the typed details,
// and text the message's text, which AWS's message must not repeat.
func (c *Carrier) classify(apiErr smithy.APIError, err error, status int, text string) *sms.Error {
	code := apiErr.ErrorCode()
	detail := ""
	if msg := apiErr.ErrorMessage(); msg != code { // the SDK's stand-in for no message
		detail = detailOf(msg, text)
	}
	switch code {
	case "ValidationException":
		var reason types.ValidationExceptionReason
		var fields []types.ValidationExceptionField
		if ve := (*types.ValidationException)(nil); errors.As(err, &ve) {
			reason, fields = ve.Reason, ve.Fields
		}
		refusal, what := sms.Permanent, "as invalid"
		if notPermittedReasons[reason] {
			refusal, what = sms.NotPermitted, "for otpd's account or sender, not for its content"
		}
		msg := service + " refused the message " + what + " (ValidationException" + withReason(string(reason)) + ")"
		if f := faultyFields(fields, apiErr.ErrorMessage()); f != "" {
			msg += " in " + f
		}
		if hint := validationHints[reason]; hint != "" {
			msg += "; " + hint
		}
		for _, f := range fields {
			if f.Message != nil && aws.ToString(f.Message) != apiErr.ErrorMessage() {
				detail += detailOf(aws.ToString(f.Name)+": "+aws.ToString(f.Message), text)
			}
		}
		return &sms.Error{Status: refusal, Code: status, Message: msg + detail}
	case "ConflictException":
		var reason types.ConflictExceptionReason
		resource := ""
		if ce := (*types.ConflictException)(nil); errors.As(err, &ce) {
			reason, resource = ce.Reason, describeResource(ce.ResourceType, ce.ResourceId)
		}
		if reason == types.ConflictExceptionReasonDestinationPhoneNumberOptedOut {
			return &sms.Error{Status: sms.OptedOut, Code: status,
				Message: "the destination number has opted out of messages from this sender (" + service +
					": ConflictException DESTINATION_PHONE_NUMBER_OPTED_OUT); it receives none until it opts in again"}
		}
		msg := service + " refused the message: it conflicts with the state of the account (ConflictException" + withReason(string(reason)) + ")"
		if resource != "" {
			msg += " about " + resource
		}
		if blockedReasons[reason] {
			// The account's own protect configuration: another carrier
			// must not send what the operator chose to block.
			return &sms.Error{Status: sms.Permanent, Code: status, Message: msg + detail}
		}
		return &sms.Error{Status: sms.NotPermitted, Code: status, Message: msg + detail}
	case "ResourceNotFoundException":
		resource := "a resource the request names"
		if re := (*types.ResourceNotFoundException)(nil); errors.As(err, &re) {
			if r := describeResource(re.ResourceType, re.ResourceId); r != "" {
				resource = r
			}
		}
		return &sms.Error{Status: sms.NotPermitted, Code: status,
			Message: service + " does not know " + resource + " in region " + c.region +
				" (ResourceNotFoundException): check that the request's origination identity and the carrier's ConfigurationSetName exist in that region and account" + detail}
	case "AccessDeniedException":
		var reason types.AccessDeniedExceptionReason
		if ae := (*types.AccessDeniedException)(nil); errors.As(err, &ae) {
			reason = ae.Reason
		}
		msg := service + " denied otpd access (AccessDeniedException" + withReason(string(reason)) + "): check IAM: the policy of otpd's AWS credentials must allow sms-voice:SendTextMessage on the origination identity and the configuration set"
		switch reason {
		case types.AccessDeniedExceptionReasonAccountDisabled:
			msg += "; AWS says the account is disabled for sending"
		case types.AccessDeniedExceptionReasonInsufficientAccountReputation:
			msg += "; AWS says the account's reputation does not allow sending"
		}
		return &sms.Error{Status: sms.NotPermitted, Code: status, Message: msg + detail}
	case "ThrottlingException":
		return &sms.Error{Status: sms.Throttled, Code: status,
			Message: service + " is throttling otpd (ThrottlingException): more messages per second than the account or the origination identity allows" + detail}
	case "ServiceQuotaExceededException":
		var reason types.ServiceQuotaExceededExceptionReason
		if qe := (*types.ServiceQuotaExceededException)(nil); errors.As(err, &qe) {
			reason = qe.Reason
		}
		msg := service + " refused the message: a quota of the account is used up (ServiceQuotaExceededException" + withReason(string(reason)) + ")"
		if reason == types.ServiceQuotaExceededExceptionReasonMonthlySpendLimitReachedForText {
			msg += ": the monthly SMS spend limit is reached; raise it in the AWS console"
		}
		return &sms.Error{Status: sms.Throttled, Code: status, Message: msg + detail}
	case "InternalServerException":
		return &sms.Error{Status: sms.Temporary, Code: status,
			Message: service + " failed (InternalServerException); another attempt may succeed" + detail}
	}
	return byStatus(code, status, detail)
}

// notPermittedReasons are the reasons of a ValidationException that refuse
// the message for the account's sake (its sender IDs, the reach of its
// origination identities, its channels), not the message's: another
// carrier may take it (sms.NotPermitted).
var notPermittedReasons = map[types.ValidationExceptionReason]bool{
	types.ValidationExceptionReasonSenderIdNotRegistered:                true,
	types.ValidationExceptionReasonSenderIdNotSupported:                 true,
	types.ValidationExceptionReasonSenderIdRequiresRegistration:         true,
	types.ValidationExceptionReasonInvalidIdentityForDestinationCountry: true,
	types.ValidationExceptionReasonInternationalSendingNotSupported:     true,
	types.ValidationExceptionReasonChannelNotEnabled:                    true,
	types.ValidationExceptionReasonResourceNotAccessible:                true,
}

// blockedReasons are the reasons of a ConflictException that are the
// account's own protect configuration blocking the destination: a choice
// of the operator's, which failing over to another carrier would undo.
var blockedReasons = map[types.ConflictExceptionReason]bool{
	types.ConflictExceptionReasonDestinationCountryBlockedByProtectConfiguration:      true,
	types.ConflictExceptionReasonDestinationPhoneNumberBlockedByProtectNumberOverride: true,
}

// credentialCodes are the error codes of AWS's authentication: the
// credentials, not the message, are at fault.
var credentialCodes = map[string]bool{
	"UnrecognizedClientException":         true,
	"InvalidClientTokenId":                true,
	"InvalidSignatureException":           true,
	"SignatureDoesNotMatch":               true,
	"IncompleteSignatureException":        true,
	"IncompleteSignature":                 true,
	"MissingAuthenticationTokenException": true,
	"MissingAuthenticationToken":          true,
	"InvalidAccessKeyId":                  true,
	"AuthFailure":                         true,
}

// byStatus returns the refusal of an error answer with status and an
// error code the service's model does not list.
func byStatus(code string, status int, detail string) *sms.Error {
	answered := service + " answered " + code + " (HTTP " + strconv.Itoa(status) + ")"
	if code == "UnknownError" { // the SDK's name for an answer without a code
		answered = service + " answered HTTP " + strconv.Itoa(status) + " without an error code"
	}
	switch {
	case credentialCodes[code]:
		return &sms.Error{Status: sms.NotPermitted, Code: status, Credentials: true,
			Message: service + " did not accept otpd's AWS credentials (" + code + "): check the access key, its secret and the carrier's Region" + detail}
	case code == "ExpiredTokenException" || code == "ExpiredToken" || code == "RequestExpired":
		return &sms.Error{Status: sms.Temporary, Code: status,
			Message: service + " found otpd's AWS credentials or signature expired (" + code + "); check the clock of otpd's machine if it persists" + detail}
	case status == http.StatusTooManyRequests:
		return &sms.Error{Status: sms.Throttled, Code: status, Message: answered + ": otpd is sending too fast" + detail}
	case status == http.StatusRequestTimeout || status >= 500 && status <= 599:
		return &sms.Error{Status: sms.Temporary, Code: status, Message: answered + "; another attempt may succeed" + detail}
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return &sms.Error{Status: sms.NotPermitted, Code: status, Message: answered + ", refusing otpd's account" + detail}
	case status >= 400 && status <= 499:
		return &sms.Error{Status: sms.Permanent, Code: status, Message: answered + ", refusing the message" + detail}
	}
	return &sms.Error{Status: sms.Temporary, Code: status, Message: answered + ", an unexpected answer" + detail}
}

// unreadable returns the refusal of an error answer with status that the
// SDK could not read (not the service's JSON: a proxy's page, a cut body).
// A 2xx answer from AWS is no refusal (see Send); one without AWS's
// request ID came from something in between, which may never have passed
// the message on.
func unreadable(status int) *sms.Error {
	shown := "HTTP " + strconv.Itoa(status)
	if s := http.StatusText(status); s != "" {
		shown += " " + s
	}
	switch {
	case status >= 200 && status <= 299:
		return &sms.Error{Status: sms.Temporary, Code: status,
			Message: "an answer of " + shown + " without AWS's x-amzn-RequestId came back, from a proxy or firewall in between rather than " + service + "; another attempt may succeed"}
	case status == http.StatusTooManyRequests:
		return &sms.Error{Status: sms.Throttled, Code: status,
			Message: service + " answered " + shown + ": otpd is sending too fast"}
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return &sms.Error{Status: sms.NotPermitted, Code: status,
			Message: service + " answered " + shown + " with a body otpd could not read, refusing otpd's account; otpd's log has the cause"}
	case status >= 400 && status <= 499 && status != http.StatusRequestTimeout:
		return &sms.Error{Status: sms.Permanent, Code: status,
			Message: service + " answered " + shown + " with a body otpd could not read; otpd's log has the cause"}
	}
	return &sms.Error{Status: sms.Temporary, Code: status,
		Message: service + " answered " + shown + "; another attempt may succeed"}
}

// noAnswer returns the failure of a call that got no answer: the caller
// gave up, the time ran out, the connection broke after the request was
// written (wrote), the endpoint could not be reached, or the request could
// not be made (no credentials, say).
func (c *Carrier) noAnswer(ctx, reqCtx context.Context, err error, wrote bool) *sms.Error {
	var sendErr *smithyhttp.RequestSendError
	var canceled *smithy.CanceledError
	var ne net.Error
	sent := errors.As(err, &sendErr) || errors.As(err, &canceled)
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		return &sms.Error{MayDeliver: true, Status: sms.Temporary,
			Message: "the send was cancelled before " + service + " answered; it may still deliver the message"}
	case reqCtx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		return &sms.Error{MayDeliver: true, Status: sms.Temporary, Code: http.StatusGatewayTimeout,
			Message: service + " did not answer in time; it may still deliver the message"}
	case wrote:
		return &sms.Error{MayDeliver: true, Status: sms.Temporary,
			Message: "the connection to " + service + " broke after the message was sent, before an answer; it may still deliver the message"}
	case sent:
		return &sms.Error{Status: sms.Temporary,
			Message: service + " could not be reached; otpd's log has the cause"}
	}
	return &sms.Error{Status: sms.Temporary,
		Message: "otpd could not make the request to " + service + ", for instance because it found no AWS credentials; otpd's log has the cause"}
}

// withReason returns ", reason" for a reason AWS gave, or "".
func withReason(reason string) string {
	if reason == "" {
		return ""
	}
	return " " + reason
}

// detailOf returns ": " and AWS's message s, redacted of text and cut to
// maxShown bytes, or "".
func detailOf(s, text string) string {
	if s = sms.Redact(s, text, maxShown); s == "" {
		return ""
	}
	return ": " + s
}

// describeResource names a resource of an error, or "".
func describeResource(typ types.ResourceType, id *string) string {
	return strings.TrimSpace(string(typ) + " " + aws.ToString(id))
}

// validationHints say what to do about some reasons of a
// ValidationException.
var validationHints = map[types.ValidationExceptionReason]string{
	types.ValidationExceptionReasonPriceOverThreshold:                   "the message would cost more than the carrier's MaxPrice",
	types.ValidationExceptionReasonDestinationCountryBlocked:            "the account does not send to the destination's country",
	types.ValidationExceptionReasonCountryNotEnabled:                    "the account does not send to the destination's country",
	types.ValidationExceptionReasonInvalidIdentityForDestinationCountry: "the origination identity cannot send to the destination's country",
	types.ValidationExceptionReasonSenderIdNotRegistered:                "the sender ID is not registered for the destination's country",
	types.ValidationExceptionReasonSenderIdRequiresRegistration:         "the sender ID must be registered for the destination's country",
	types.ValidationExceptionReasonSenderIdNotSupported:                 "the destination's country does not support sender IDs",
}

// requestFields are the fields of a SendTextMessage request, with what
// they hold in otpd's terms.
var requestFields = []struct{ name, meaning string }{
	{"DestinationPhoneNumber", "the destination number"},
	{"OriginationIdentity", "the request's origination identity"},
	{"MessageBody", "the message text"},
	{"MessageType", "TRANSACTIONAL"},
	{"ConfigurationSetName", "the carrier's configuration"},
	{"MaxPrice", "the carrier's configuration"},
	{"DestinationCountryParameters", "the request's EntityId and TemplateId, for India's DLT"},
	{"Context", "otpd's message ID"},
}

// faultyFields names the request fields a ValidationException blames: its
// Fields, or else those its message names (AWS writes, for one, "Value '...'
// at 'destinationPhoneNumber' failed to satisfy constraint").
func faultyFields(fields []types.ValidationExceptionField, message string) string {
	var named []string
	seen := map[string]bool{}
	add := func(name string) {
		if name == "" || seen[strings.ToLower(name)] {
			return
		}
		seen[strings.ToLower(name)] = true
		for _, f := range requestFields {
			if strings.EqualFold(f.name, name) {
				named = append(named, f.name+" ("+f.meaning+")")
				return
			}
		}
		named = append(named, name)
	}
	for _, f := range fields {
		add(strings.TrimSpace(aws.ToString(f.Name)))
	}
	if len(named) == 0 {
		lower := strings.ToLower(message)
		for _, f := range requestFields {
			if containsWord(lower, strings.ToLower(f.name)) {
				add(f.name)
			}
		}
	}
	switch len(named) {
	case 0:
		return ""
	case 1:
		return "field " + named[0]
	}
	return "fields " + strings.Join(named, ", ")
}

// containsWord reports whether s holds word with no letter or digit
// either side.
func containsWord(s, word string) bool {
	for i := 0; ; {
		j := strings.Index(s[i:], word)
		if j < 0 {
			return false
		}
		start, end := i+j, i+j+len(word)
		before, _ := utf8.DecodeLastRuneInString(s[:start])
		after, _ := utf8.DecodeRuneInString(s[end:])
		if (start == 0 || !isAlnum(before)) && (end == len(s) || !isAlnum(after)) {
			return true
		}
		i = start + 1
	}
}

func isAlnum(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }
