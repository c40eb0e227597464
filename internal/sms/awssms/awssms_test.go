package awssms

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/smithy-go"

	"github.com/otpd/otpd/internal/sigv4"
	"github.com/otpd/otpd/internal/sms"
	"github.com/otpd/otpd/internal/sms/smstest"
)

// The account of these tests. The region is not us-east-1, so that a
// carrier that ignores Config.Region fails.
const (
	testRegion    = "eu-west-3"
	testKeyID     = "AKIAOTPDTEST00000001"
	testSecret    = "otpd-test-secret/0123456789abcdefghijklmnop"
	signingName   = "sms-voice"
	targetSend    = "PinpointSMSVoiceV2.SendTextMessage"
	jsonMediaType = "application/x-amz-json-1.0"
)

// keyring holds the test account's one key.
type keyring map[string]string

func (k keyring) Secret(id string) (string, bool) {
	s, ok := k[id]
	return s, ok
}

// sendRequest is the JSON body of SendTextMessage, every member of the
// service's model, so that a member the model lacks fails decoding.
type sendRequest struct {
	ConfigurationSetName         *string           `json:"ConfigurationSetName"`
	Context                      map[string]string `json:"Context"`
	DestinationCountryParameters map[string]string `json:"DestinationCountryParameters"`
	DestinationPhoneNumber       string            `json:"DestinationPhoneNumber"`
	DryRun                       *bool             `json:"DryRun"`
	Keyword                      *string           `json:"Keyword"`
	MaxPrice                     *string           `json:"MaxPrice"`
	MessageBody                  string            `json:"MessageBody"`
	MessageFeedbackEnabled       *bool             `json:"MessageFeedbackEnabled"`
	MessageType                  string            `json:"MessageType"`
	OriginationIdentity          string            `json:"OriginationIdentity"`
	ProtectConfigurationId       *string           `json:"ProtectConfigurationId"`
	TimeToLive                   *int32            `json:"TimeToLive"`
}

// request is what the fake saw of one request that passed its checks.
type request struct {
	header http.Header
	body   sendRequest
}

// awsError is an error answer of the service.
type awsError struct {
	status int
	typ    string         // the error code: X-Amzn-ErrorType and "__type"
	fields map[string]any // the rest of the body: "Message", "Reason", ...
	// noHeader leaves out X-Amzn-ErrorType, so that only "__type" tells.
	noHeader bool
	// raw, if set, is the whole body, sent as it is.
	raw string
	// notAWS leaves out x-amzn-RequestId too: the answer of a proxy or a
	// firewall in between, not of AWS.
	notAWS bool
}

// fakeService is AWS End User Messaging SMS as far as SendTextMessage goes:
// it checks each request as the service would (SigV4 for sms-voice in the
// test region, the awsJson1_0 protocol, the members of the body), and
// answers as the suite or the test steers it. A request it would reject
// fails the test, unless expectRejects is set.
type fakeService struct {
	t        *testing.T
	srv      *httptest.Server
	verifier *sigv4.Verifier
	done     chan struct{} // closed when the test ends: releases stalled requests

	mu            sync.Mutex
	behaviour     smstest.Behaviour
	answer        *awsError // overrides behaviour when set
	expectRejects bool
	attempts      int // every request, checked or not
	rejected      []string
	received      []smstest.Received
	requests      []request
}

var _ smstest.Peer = (*fakeService)(nil)

// newFake starts a fake service on a TLS test server, stopped when the test
// ends.
func newFake(t *testing.T) *fakeService {
	f := &fakeService{
		t:    t,
		done: make(chan struct{}),
		verifier: &sigv4.Verifier{
			Region:  testRegion,
			Service: signingName,
			Keys:    keyring{testKeyID: testSecret},
		},
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	srv.Config.ErrorLog = log.New(testLog{t}, "fake service: ", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(f.done) }) // runs before the server's Close
	f.srv = srv
	return f
}

// testLog writes to a test's log.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func (f *fakeService) SetBehaviour(b smstest.Behaviour) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.behaviour = b
}

func (f *fakeService) Received() []smstest.Received {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]smstest.Received(nil), f.received...)
}

// answerWith makes the fake answer every following request with e.
func (f *fakeService) answerWith(e awsError) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answer = &e
}

// seen returns the requests that passed the fake's checks.
func (f *fakeService) seen() []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]request(nil), f.requests...)
}

// attemptCount returns how many requests reached the fake.
func (f *fakeService) attemptCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.attempts
}

// rejections returns why the fake rejected requests.
func (f *fakeService) rejections() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.rejected...)
}

// reject answers a request the service would refuse, and fails the test
// unless rejections are expected.
func (f *fakeService) reject(w http.ResponseWriter, e awsError) {
	f.mu.Lock()
	f.rejected = append(f.rejected, e.typ+": "+fmt.Sprint(e.fields["Message"]))
	expected := f.expectRejects
	f.mu.Unlock()
	if !expected {
		f.t.Errorf("the fake service rejected a request: %s: %v", e.typ, e.fields["Message"])
	}
	writeError(w, e)
}

// The patterns of the service's model for the members the fake checks.
var (
	e164        = regexp.MustCompile(`^\+[1-9][0-9]{1,14}$`)
	origination = regexp.MustCompile(`^[A-Za-z0-9_:/+-]{1,256}$`)
)

func (f *fakeService) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.attempts++
	f.mu.Unlock()

	// The protocol: awsJson1_0, every operation a POST to "/".
	if r.Method != http.MethodPost || r.URL.Path != "/" || r.URL.RawQuery != "" {
		f.reject(w, awsError{status: http.StatusNotFound, typ: "UnknownOperationException",
			fields: map[string]any{"Message": fmt.Sprintf("%s %s: awsJson1_0 takes POST /", r.Method, r.URL)}})
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		f.reject(w, awsError{status: http.StatusBadRequest, typ: "SerializationException",
			fields: map[string]any{"Message": "reading the body: " + err.Error()}})
		return
	}
	if _, err := f.verifier.Verify(r, body); err != nil {
		var se *sigv4.Error
		if !errors.As(err, &se) {
			f.t.Fatalf("Verify returned %T %v, want a *sigv4.Error", err, err)
		}
		f.reject(w, awsError{status: http.StatusForbidden, typ: se.Code, fields: map[string]any{"Message": se.Message}})
		return
	}
	if got := r.Header.Get("X-Amz-Target"); got != targetSend {
		f.reject(w, awsError{status: http.StatusBadRequest, typ: "UnknownOperationException",
			fields: map[string]any{"Message": fmt.Sprintf("X-Amz-Target %q, want %q", got, targetSend)}})
		return
	}
	if got := r.Header.Get("Content-Type"); got != jsonMediaType {
		f.reject(w, awsError{status: http.StatusBadRequest, typ: "SerializationException",
			fields: map[string]any{"Message": fmt.Sprintf("Content-Type %q, want %q", got, jsonMediaType)}})
		return
	}
	var req sendRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		f.reject(w, awsError{status: http.StatusBadRequest, typ: "SerializationException",
			fields: map[string]any{"Message": "decoding the body: " + err.Error()}})
		return
	}
	if problem := checkRequest(req); problem != "" {
		f.reject(w, awsError{status: http.StatusBadRequest, typ: "ValidationException",
			fields: map[string]any{"Message": problem, "Reason": "INVALID_PARAMETER"}})
		return
	}

	f.mu.Lock()
	b, answer := f.behaviour, f.answer
	f.requests = append(f.requests, request{header: r.Header.Clone(), body: req})
	if answer == nil && b == smstest.Accept {
		f.received = append(f.received, smstest.Received{From: req.OriginationIdentity, To: req.DestinationPhoneNumber, Text: req.MessageBody})
	}
	n := len(f.requests)
	f.mu.Unlock()

	if answer != nil {
		writeError(w, *answer)
		return
	}
	switch b {
	case smstest.Accept:
		w.Header().Set("Content-Type", jsonMediaType)
		w.Header().Set("X-Amzn-Requestid", fmt.Sprintf("req-%d", n))
		fmt.Fprintf(w, `{"MessageId":"msg-%08d-aws"}`, n)
	case smstest.RejectPermanent:
		writeError(w, awsError{status: http.StatusBadRequest, typ: "ValidationException", fields: map[string]any{
			"Message": "The destination phone number is not valid.",
			"Reason":  "INVALID_PARAMETER",
			"Fields":  []map[string]string{{"Name": "DestinationPhoneNumber", "Message": "Invalid phone number."}},
		}})
	case smstest.FailTemporary:
		writeError(w, awsError{status: http.StatusInternalServerError, typ: "InternalServerException",
			fields: map[string]any{"Message": "Internal server error.", "RequestId": fmt.Sprintf("req-%d", n)}})
	case smstest.Stall:
		select {
		case <-r.Context().Done():
		case <-f.done:
		}
		// Let go without an answer: a handler that returns would
		// answer 200, which could still reach the carrier.
		panic(http.ErrAbortHandler)
	default:
		f.t.Errorf("the fake service was given %v", b)
	}
}

// checkRequest returns what the service would refuse in req, or "".
func checkRequest(req sendRequest) string {
	switch {
	case !e164.MatchString(req.DestinationPhoneNumber):
		return fmt.Sprintf("DestinationPhoneNumber %q is not E.164", req.DestinationPhoneNumber)
	case !origination.MatchString(req.OriginationIdentity):
		return fmt.Sprintf("OriginationIdentity %q is not a phone number, sender ID, pool or ARN", req.OriginationIdentity)
	case req.MessageBody == "" || len([]rune(req.MessageBody)) > 1600:
		return fmt.Sprintf("MessageBody has %d characters, want 1 to 1600", len([]rune(req.MessageBody)))
	case req.MessageType != "TRANSACTIONAL":
		return fmt.Sprintf("MessageType %q, want TRANSACTIONAL for one-time passwords", req.MessageType)
	case req.DryRun != nil && *req.DryRun:
		return "DryRun is set: nothing would be sent"
	case req.Context[ContextMessageID] == "":
		return fmt.Sprintf("Context %v lacks %q", req.Context, ContextMessageID)
	}
	for k, v := range req.DestinationCountryParameters {
		if k != "IN_ENTITY_ID" && k != "IN_TEMPLATE_ID" || v == "" || len(v) > 64 {
			return fmt.Sprintf("DestinationCountryParameters %q: %q is not valid", k, v)
		}
	}
	return ""
}

// writeError answers with e as an awsJson1_0 service does: the status, the
// error code in X-Amzn-ErrorType and in the body's "__type", and the
// error's members in the body.
func writeError(w http.ResponseWriter, e awsError) {
	w.Header().Set("Content-Type", jsonMediaType)
	if !e.notAWS {
		w.Header().Set("X-Amzn-Requestid", "req-error")
	}
	if !e.noHeader {
		w.Header().Set("X-Amzn-ErrorType", e.typ)
	}
	w.WriteHeader(e.status)
	if e.raw != "" {
		io.WriteString(w, e.raw)
		return
	}
	body := map[string]any{"__type": e.typ}
	for k, v := range e.fields {
		body[k] = v
	}
	_ = json.NewEncoder(w).Encode(body)
}

// newCarrier returns a carrier talking to f with the test account, cfg
// giving the rest.
func newCarrier(t *testing.T, f *fakeService, cfg Config) *Carrier {
	t.Helper()
	if cfg.Region == "" {
		cfg.Region = testRegion
	}
	cfg.Endpoint = f.srv.URL
	cfg.HTTPClient = f.srv.Client()
	if cfg.Credentials == nil {
		cfg.Credentials = credentials.NewStaticCredentialsProvider(testKeyID, testSecret, "")
	}
	c, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func TestConformance(t *testing.T) {
	smstest.Run(t, func(t *testing.T) (sms.Carrier, smstest.Peer) {
		f := newFake(t)
		return newCarrier(t, f, Config{}), f
	})
}

// testMessage returns a message to a US number with the code 482913.
func testMessage() sms.Message {
	return sms.Message{
		ID:          "6f1c0c4e-1d2b-4c3a-9e8f-0a1b2c3d4e5f",
		AppID:       "0123456789abcdef0123456789abcdef",
		From:        "+18555550142",
		To:          "+14255550142",
		Text:        "This is your One Time Password: 482913 from ExampleCorp",
		Language:    "en-US",
		ReferenceID: "login-42",
	}
}

const testCode = "482913"

func send(t *testing.T, c *Carrier, m sms.Message) (sms.Receipt, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	return c.Send(ctx, m)
}

// onlyRequest returns the one request the fake saw, failing the test if it
// saw another number.
func onlyRequest(t *testing.T, f *fakeService) request {
	t.Helper()
	seen := f.seen()
	if len(seen) != 1 {
		t.Fatalf("the fake service saw %d requests, want 1", len(seen))
	}
	return seen[0]
}

func TestRequest(t *testing.T) {
	f := newFake(t)
	c := newCarrier(t, f, Config{})
	m := testMessage()
	receipt, err := send(t, c, m)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if want := "msg-00000001-aws"; receipt.CarrierMessageID != want {
		t.Errorf("CarrierMessageID = %q, want the service's MessageId %q", receipt.CarrierMessageID, want)
	}
	req := onlyRequest(t, f)
	b := req.body
	for _, c := range []struct{ field, got, want string }{
		{"DestinationPhoneNumber", b.DestinationPhoneNumber, m.To},
		{"OriginationIdentity", b.OriginationIdentity, m.From},
		{"MessageBody", b.MessageBody, m.Text},
		{"MessageType", b.MessageType, "TRANSACTIONAL"},
		{"Context[otpd-message-id]", b.Context[ContextMessageID], m.ID},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.field, c.got, c.want)
		}
	}
	if len(b.Context) != 1 {
		t.Errorf("Context = %v, want only %q", b.Context, ContextMessageID)
	}
	if b.ConfigurationSetName != nil || b.MaxPrice != nil || b.DestinationCountryParameters != nil {
		t.Errorf("ConfigurationSetName %v, MaxPrice %v, DestinationCountryParameters %v: want none, as none was configured or given",
			b.ConfigurationSetName, b.MaxPrice, b.DestinationCountryParameters)
	}
	if b.DryRun != nil || b.Keyword != nil || b.TimeToLive != nil || b.ProtectConfigurationId != nil || b.MessageFeedbackEnabled != nil {
		t.Errorf("the request holds members otpd never sets: %+v", b)
	}
	if got := req.header.Get("X-Amz-Target"); got != targetSend {
		t.Errorf("X-Amz-Target = %q, want %q", got, targetSend)
	}
}

// TestSignatureScope checks the credential scope of the requests, and that
// the fake really verifies signatures: a request signed for another service
// or with another secret is refused, as AWS refuses it.
func TestSignatureScope(t *testing.T) {
	f := newFake(t)
	c := newCarrier(t, f, Config{})
	if _, err := send(t, c, testMessage()); err != nil {
		t.Fatalf("Send: %v", err)
	}
	auth := onlyRequest(t, f).header.Get("Authorization")
	scope := regexp.MustCompile(`Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request`).FindStringSubmatch(auth)
	if scope == nil {
		t.Fatalf("Authorization %q holds no credential scope", auth)
	}
	if scope[1] != testKeyID || scope[3] != testRegion || scope[4] != signingName {
		t.Errorf("credential scope: key %q, region %q, service %q; want %q, %q, %q",
			scope[1], scope[3], scope[4], testKeyID, testRegion, signingName)
	}

	for _, tc := range []struct {
		name     string
		service  string
		secret   string
		wantCode string
	}{
		{"OtherService", "mobiletargeting", testSecret, "InvalidSignatureException"},
		{"WrongSecret", signingName, "not-the-secret", "InvalidSignatureException"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			f.verifier.Service = tc.service
			f.expectRejects = true
			c := newCarrier(t, f, Config{Credentials: credentials.NewStaticCredentialsProvider(testKeyID, tc.secret, "")})
			m := testMessage()
			_, err := send(t, c, m)
			ce := checkRefusal(t, err, m)
			if ce.Status != sms.NotPermitted || ce.Code != http.StatusForbidden || !ce.Credentials {
				t.Errorf("got Status %v Code %d Credentials %v, want %v %d, credentials refused: %v", ce.Status, ce.Code, ce.Credentials, sms.NotPermitted, http.StatusForbidden, err)
			}
			if !strings.Contains(ce.Message, "credentials") {
				t.Errorf("Message %q does not say to check the credentials", ce.Message)
			}
			var apiErr smithy.APIError
			if !errors.As(err, &apiErr) || apiErr.ErrorCode() != tc.wantCode {
				t.Errorf("errors.As finds API error %v, want code %s kept as the cause", apiErr, tc.wantCode)
			}
			if r := f.rejections(); len(r) != 1 {
				t.Errorf("the fake rejected %q, want one rejection", r)
			}
			if got := f.Received(); len(got) != 0 {
				t.Errorf("the fake received %v, want nothing", got)
			}
		})
	}
}

func TestConfigurationSetAndMaxPrice(t *testing.T) {
	f := newFake(t)
	c := newCarrier(t, f, Config{ConfigurationSetName: "otpd-events", MaxPrice: "0.05"})
	if _, err := send(t, c, testMessage()); err != nil {
		t.Fatalf("Send: %v", err)
	}
	b := onlyRequest(t, f).body
	if b.ConfigurationSetName == nil || *b.ConfigurationSetName != "otpd-events" {
		t.Errorf("ConfigurationSetName = %v, want %q", b.ConfigurationSetName, "otpd-events")
	}
	if b.MaxPrice == nil || *b.MaxPrice != "0.05" {
		t.Errorf("MaxPrice = %v, want %q", b.MaxPrice, "0.05")
	}
}

func TestIndiaDLT(t *testing.T) {
	for _, tc := range []struct {
		name               string
		entityID, template string
		want               map[string]string
	}{
		{"Both", "1101234567890123456", "1107161234567890123",
			map[string]string{"IN_ENTITY_ID": "1101234567890123456", "IN_TEMPLATE_ID": "1107161234567890123"}},
		{"EntityOnly", "1101234567890123456", "", map[string]string{"IN_ENTITY_ID": "1101234567890123456"}},
		{"Neither", "", "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			c := newCarrier(t, f, Config{Region: testRegion})
			m := testMessage()
			m.From, m.To = "EXMPLE", "+919812345678"
			m.EntityID, m.TemplateID = tc.entityID, tc.template
			if _, err := send(t, c, m); err != nil {
				t.Fatalf("Send: %v", err)
			}
			b := onlyRequest(t, f).body
			if len(b.DestinationCountryParameters) != len(tc.want) {
				t.Fatalf("DestinationCountryParameters = %v, want %v", b.DestinationCountryParameters, tc.want)
			}
			for k, v := range tc.want {
				if b.DestinationCountryParameters[k] != v {
					t.Errorf("DestinationCountryParameters = %v, want %v", b.DestinationCountryParameters, tc.want)
				}
			}
			if b.DestinationPhoneNumber != m.To || b.OriginationIdentity != m.From {
				t.Errorf("DestinationPhoneNumber %q, OriginationIdentity %q; want %q, %q", b.DestinationPhoneNumber, b.OriginationIdentity, m.To, m.From)
			}
		})
	}
}

// checkRefusal returns the *sms.Error in err, failing the test if there is
// none, or if it or err repeats m's text or its code.
func checkRefusal(t *testing.T, err error, m sms.Message) *sms.Error {
	t.Helper()
	if err == nil {
		t.Fatal("Send: got no error, want a refusal")
	}
	var ce *sms.Error
	if !errors.As(err, &ce) {
		t.Fatalf("Send: got %T %v, want an error holding an *sms.Error", err, err)
	}
	if strings.TrimSpace(ce.Message) == "" {
		t.Errorf("the refusal's Message is empty: %#v", ce)
	}
	for _, s := range []string{ce.Message, err.Error()} {
		if strings.Contains(s, m.Text) || strings.Contains(s, testCode) {
			t.Errorf("the refusal %q repeats the text or its code %s", s, testCode)
		}
	}
	return ce
}

func TestErrorMapping(t *testing.T) {
	for _, tc := range []struct {
		name       string
		answer     awsError
		wantStatus sms.Status
		wantIn     []string // what the Message must say
		apiCode    string   // the error code errors.As must find, if any
	}{
		{
			name: "ValidationWithFields",
			answer: awsError{status: 400, typ: "ValidationException", fields: map[string]any{
				"Message": "The destination phone number is not valid.", "Reason": "INVALID_PARAMETER",
				"Fields": []map[string]string{{"Name": "DestinationPhoneNumber", "Message": "Invalid phone number."}},
			}},
			wantStatus: sms.Permanent,
			wantIn:     []string{"invalid", "INVALID_PARAMETER", "DestinationPhoneNumber", "destination number"},
			apiCode:    "ValidationException",
		},
		{
			// The service may repeat a value it refuses: the text and
			// its code must not come back.
			name: "ValidationEchoingTheText",
			answer: awsError{status: 400, typ: "ValidationException", fields: map[string]any{
				"Message": "1 validation error detected: Value 'This is your One Time Password: 482913 from ExampleCorp' at 'messageBody' failed to satisfy constraint: Member must have length less than or equal to 1600",
			}},
			wantStatus: sms.Permanent,
			wantIn:     []string{"MessageBody", "message text", "[redacted]"},
			apiCode:    "ValidationException",
		},
		{
			name: "ValidationEchoingPartOfTheCode",
			answer: awsError{status: 400, typ: "ValidationException", fields: map[string]any{
				"Message": "Value 'This is your One Time Password: 4829...' at 'MessageBody' is not valid",
			}},
			wantStatus: sms.Permanent,
			wantIn:     []string{"MessageBody", "[redacted]"},
		},
		{
			name: "ValidationPriceOverThreshold",
			answer: awsError{status: 400, typ: "ValidationException", fields: map[string]any{
				"Message": "The price of the message exceeds MaxPrice.", "Reason": "PRICE_OVER_THRESHOLD",
			}},
			wantStatus: sms.Permanent,
			wantIn:     []string{"PRICE_OVER_THRESHOLD", "MaxPrice"},
		},
		{
			name: "ValidationSenderIDNotRegistered",
			answer: awsError{status: 400, typ: "ValidationException", fields: map[string]any{
				"Message": "The sender ID is not registered for the destination country.", "Reason": "SENDER_ID_NOT_REGISTERED",
			}},
			wantStatus: sms.NotPermitted,
			wantIn:     []string{"SENDER_ID_NOT_REGISTERED", "for otpd's account or sender"},
		},
		{
			name: "ConflictBlockedByProtectConfiguration",
			answer: awsError{status: 409, typ: "ConflictException", fields: map[string]any{
				"Message": "The destination country is blocked.", "Reason": "DESTINATION_COUNTRY_BLOCKED_BY_PROTECT_CONFIGURATION",
				"ResourceType": "protect-configuration", "ResourceId": "protect-0123456789abcdef",
			}},
			wantStatus: sms.Permanent,
			wantIn:     []string{"DESTINATION_COUNTRY_BLOCKED_BY_PROTECT_CONFIGURATION"},
		},
		{
			name:       "ForbiddenHTML",
			answer:     awsError{status: 403, typ: "Forbidden", noHeader: true, raw: "<html><body>Request blocked by the firewall</body></html>"},
			wantStatus: sms.NotPermitted,
			wantIn:     []string{"HTTP 403", "otpd's account"},
		},
		{
			name: "ConflictOptedOut",
			answer: awsError{status: 409, typ: "ConflictException", fields: map[string]any{
				"Message": "The destination phone number is opted out.", "Reason": "DESTINATION_PHONE_NUMBER_OPTED_OUT",
				"ResourceType": "opt-out-list", "ResourceId": "Default",
			}},
			wantStatus: sms.OptedOut,
			wantIn:     []string{"opted out"},
			apiCode:    "ConflictException",
		},
		{
			name: "ConflictOther",
			answer: awsError{status: 409, typ: "ConflictException", fields: map[string]any{
				"Message": "The phone number is not active.", "Reason": "RESOURCE_NOT_ACTIVE",
				"ResourceType": "phone-number", "ResourceId": "phone-0123456789abcdef",
			}},
			wantStatus: sms.NotPermitted,
			wantIn:     []string{"RESOURCE_NOT_ACTIVE", "phone-number phone-0123456789abcdef"},
		},
		{
			name: "ResourceNotFoundConfigurationSet",
			answer: awsError{status: 404, typ: "ResourceNotFoundException", fields: map[string]any{
				"Message": "Configuration set not found.", "ResourceType": "configuration-set", "ResourceId": "otpd-events",
			}},
			wantStatus: sms.NotPermitted,
			wantIn:     []string{"configuration-set otpd-events", testRegion, "ConfigurationSetName", "origination identity"},
			apiCode:    "ResourceNotFoundException",
		},
		{
			name: "AccessDenied",
			answer: awsError{status: 403, typ: "AccessDeniedException", fields: map[string]any{
				"Message": "User is not authorized to perform sms-voice:SendTextMessage.",
			}},
			wantStatus: sms.NotPermitted,
			wantIn:     []string{"IAM", "sms-voice:SendTextMessage"},
			apiCode:    "AccessDeniedException",
		},
		{
			name: "AccessDeniedAccountDisabled",
			answer: awsError{status: 403, typ: "AccessDeniedException", fields: map[string]any{
				"Message": "Account is disabled.", "Reason": "ACCOUNT_DISABLED",
			}},
			wantStatus: sms.NotPermitted,
			wantIn:     []string{"IAM", "ACCOUNT_DISABLED", "disabled"},
		},
		{
			name:       "Throttling",
			answer:     awsError{status: 429, typ: "ThrottlingException", fields: map[string]any{"Message": "Rate exceeded."}},
			wantStatus: sms.Throttled,
			wantIn:     []string{"throttling", "Rate exceeded."},
			apiCode:    "ThrottlingException",
		},
		{
			// awsJson1_0 services may name the error by its shape ID
			// in "__type" alone.
			name: "ThrottlingByShapeID",
			answer: awsError{status: 400, typ: "com.amazonaws.pinpointsmsvoicev2#ThrottlingException", noHeader: true,
				fields: map[string]any{"Message": "Rate exceeded."}},
			wantStatus: sms.Throttled,
			wantIn:     []string{"throttling"},
			apiCode:    "ThrottlingException",
		},
		{
			name: "ServiceQuotaExceeded",
			answer: awsError{status: 402, typ: "ServiceQuotaExceededException", fields: map[string]any{
				"Message": "Monthly spend limit reached.", "Reason": "MONTHLY_SPEND_LIMIT_REACHED_FOR_TEXT",
			}},
			wantStatus: sms.Throttled,
			wantIn:     []string{"MONTHLY_SPEND_LIMIT_REACHED_FOR_TEXT", "spend limit"},
			apiCode:    "ServiceQuotaExceededException",
		},
		{
			name:       "InternalServer",
			answer:     awsError{status: 500, typ: "InternalServerException", fields: map[string]any{"Message": "Internal server error.", "RequestId": "r-1"}},
			wantStatus: sms.Temporary,
			wantIn:     []string{"InternalServerException"},
			apiCode:    "InternalServerException",
		},
		{
			name:       "ServiceUnavailableHTML",
			answer:     awsError{status: 503, typ: "ServiceUnavailable", noHeader: true, raw: "<html><body>Service Unavailable</body></html>"},
			wantStatus: sms.Temporary,
			wantIn:     []string{"HTTP 503"},
		},
		{
			name:       "BadGatewayEmpty",
			answer:     awsError{status: 502, typ: "", noHeader: true, raw: " "},
			wantStatus: sms.Temporary,
			wantIn:     []string{"HTTP 502"},
		},
		{
			name:       "UnknownCode5xx",
			answer:     awsError{status: 503, typ: "ServiceUnavailableException", fields: map[string]any{"Message": "Try later."}},
			wantStatus: sms.Temporary,
			wantIn:     []string{"ServiceUnavailableException", "HTTP 503"},
		},
		{
			name:       "UnknownCode429",
			answer:     awsError{status: 429, typ: "TooManyRequestsException", fields: map[string]any{"Message": "Slow down."}},
			wantStatus: sms.Throttled,
			wantIn:     []string{"TooManyRequestsException"},
		},
		{
			name:       "UnknownCode4xx",
			answer:     awsError{status: 400, typ: "SomethingNewException", fields: map[string]any{"Message": "Something new."}},
			wantStatus: sms.Permanent,
			wantIn:     []string{"SomethingNewException", "HTTP 400"},
		},
		{
			name:       "UnknownCode403",
			answer:     awsError{status: 403, typ: "SomethingDeniedException", fields: map[string]any{"Message": "Not for you."}},
			wantStatus: sms.NotPermitted,
			wantIn:     []string{"SomethingDeniedException", "HTTP 403", "otpd's account"},
		},
		{
			name:       "UnrecognizedClient",
			answer:     awsError{status: 403, typ: "UnrecognizedClientException", fields: map[string]any{"message": "The security token included in the request is invalid."}},
			wantStatus: sms.NotPermitted,
			wantIn:     []string{"credentials", "UnrecognizedClientException"},
		},
		{
			name:       "ExpiredToken",
			answer:     awsError{status: 400, typ: "ExpiredTokenException", fields: map[string]any{"message": "The security token included in the request is expired"}},
			wantStatus: sms.Temporary,
			wantIn:     []string{"expired"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			f.answerWith(tc.answer)
			c := newCarrier(t, f, Config{})
			m := testMessage()
			_, err := send(t, c, m)
			ce := checkRefusal(t, err, m)
			t.Logf("Send: %v", err)
			if ce.Status != tc.wantStatus {
				t.Errorf("Status = %v, want %v (%v)", ce.Status, tc.wantStatus, err)
			}
			if ce.Code != tc.answer.status {
				t.Errorf("Code = %d, want the HTTP status %d", ce.Code, tc.answer.status)
			}
			for _, s := range tc.wantIn {
				if !strings.Contains(ce.Message, s) {
					t.Errorf("Message %q does not say %q", ce.Message, s)
				}
			}
			if tc.apiCode != "" {
				var apiErr smithy.APIError
				if !errors.As(err, &apiErr) || apiErr.ErrorCode() != tc.apiCode {
					t.Errorf("errors.As finds API error %v, want code %s kept as the cause for the log", apiErr, tc.apiCode)
				}
			}
			if n := f.attemptCount(); n != 1 {
				t.Errorf("the service got %d attempts, want 1: the SDK must not retry", n)
			}
			if got := f.Received(); len(got) != 0 {
				t.Errorf("the fake received %v, want nothing", got)
			}
		})
	}
}

func TestTimeout(t *testing.T) {
	f := newFake(t)
	f.SetBehaviour(smstest.Stall)
	c := newCarrier(t, f, Config{Timeout: 200 * time.Millisecond})
	m := testMessage()
	start := time.Now()
	_, err := c.Send(t.Context(), m) // no deadline of the caller's: Timeout bounds the call
	elapsed := time.Since(start)
	ce := checkRefusal(t, err, m)
	if ce.Status != sms.Temporary || ce.Code != http.StatusGatewayTimeout {
		t.Errorf("got Status %v Code %d, want %v %d: %v", ce.Status, ce.Code, sms.Temporary, http.StatusGatewayTimeout, err)
	}
	if !strings.Contains(ce.Message, "may still deliver") {
		t.Errorf("Message %q does not say the message may still be delivered", ce.Message)
	}
	if elapsed > 3*time.Second {
		t.Errorf("Send took %v with a Timeout of 200ms", elapsed)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("errors.Is(%v, context.DeadlineExceeded) = false, want the cause kept", err)
	}
	if n := f.attemptCount(); n != 1 {
		t.Errorf("the service got %d attempts, want 1", n)
	}
}

func TestCancel(t *testing.T) {
	f := newFake(t)
	f.SetBehaviour(smstest.Stall)
	c := newCarrier(t, f, Config{})
	m := testMessage()
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(100*time.Millisecond, cancel)
	_, err := c.Send(ctx, m)
	ce := checkRefusal(t, err, m)
	if ce.Status != sms.Temporary || !strings.Contains(ce.Message, "cancelled") {
		t.Errorf("got Status %v Message %q, want %v saying the send was cancelled", ce.Status, ce.Message, sms.Temporary)
	}
}

func TestUnreachable(t *testing.T) {
	f := newFake(t)
	c := newCarrier(t, f, Config{})
	f.srv.Close() // nothing listens any more
	m := testMessage()
	_, err := send(t, c, m)
	ce := checkRefusal(t, err, m)
	if ce.Status != sms.Temporary || ce.Code != 0 || !strings.Contains(ce.Message, "could not be reached") {
		t.Errorf("got %#v, want a Temporary refusal with Code 0 saying the service could not be reached", ce)
	}
}

// TestUnreadableSuccessIsAccepted: an answer of HTTP 2xx means AWS took
// the message, even when otpd cannot read its body: Send accepts it,
// without a message ID, and logs a warning. A failure would make a route
// hand the message to the next carrier, which would text the user again.
func TestUnreadableSuccessIsAccepted(t *testing.T) {
	for _, tc := range []struct{ name, body string }{
		{"cut short", `{"MessageId": "abc`},
		{"not JSON", "<html>482913 not JSON</html>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			f.answerWith(awsError{status: http.StatusOK, noHeader: true, raw: tc.body})
			var logs bytes.Buffer
			c := newCarrier(t, f, Config{Name: "aws", Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			m := testMessage()
			r, err := send(t, c, m)
			if err != nil {
				t.Fatalf("Send after AWS answered HTTP 200: %v, want the message accepted", err)
			}
			if r.CarrierMessageID != "" {
				t.Errorf("CarrierMessageID = %q, want none: the answer could not be read", r.CarrierMessageID)
			}
			got := logs.String()
			if !strings.Contains(got, "level=WARN") || !strings.Contains(got, "carrier=aws") || !strings.Contains(got, "message_id="+m.ID) {
				t.Errorf("the log:\n%s\nwant a warning naming the carrier and the message", got)
			}
			if strings.Contains(got, testCode) {
				t.Errorf("the log repeats the code:\n%s", got)
			}
			if n := f.attemptCount(); n != 1 {
				t.Errorf("the service got %d attempts, want 1", n)
			}
		})
	}
}

// TestSuccessNotFromAWSIsTemporary: an answer of HTTP 2xx without AWS's
// request ID (x-amzn-RequestId) did not come from AWS but from something
// in between, a proxy's or a firewall's page: AWS may never have had the
// message, so it is a temporary failure, and a route tries the next
// carrier, rather than an accepted message that may never be sent.
func TestSuccessNotFromAWSIsTemporary(t *testing.T) {
	f := newFake(t)
	f.answerWith(awsError{status: http.StatusOK, noHeader: true, notAWS: true, raw: "<html>Welcome to the proxy</html>"})
	c := newCarrier(t, f, Config{Name: "aws"})
	m := testMessage()
	_, err := send(t, c, m)
	ce := checkRefusal(t, err, m)
	if ce.Status != sms.Temporary || ce.MayDeliver || ce.Code != http.StatusOK || !strings.Contains(ce.Message, "x-amzn-RequestId") {
		t.Errorf("refusal %+v: want a temporary failure that may not deliver, code 200, saying the answer had no x-amzn-RequestId", ce)
	}
}

// TestDefaultCredentialChain: with no Credentials, the carrier signs with
// what the default chain finds, here the environment.
func TestDefaultCredentialChain(t *testing.T) {
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID":           testKeyID,
		"AWS_SECRET_ACCESS_KEY":       testSecret,
		"AWS_SESSION_TOKEN":           "",
		"AWS_PROFILE":                 "",
		"AWS_CONFIG_FILE":             dir + "/config",
		"AWS_SHARED_CREDENTIALS_FILE": dir + "/credentials",
		"AWS_CA_BUNDLE":               "",
		"AWS_REGION":                  "ap-south-1", // Config.Region wins
		"AWS_MAX_ATTEMPTS":            "5",          // retries stay off
		"AWS_RETRY_MODE":              "adaptive",
		"AWS_ENDPOINT_URL":            "",
		"AWS_USE_FIPS_ENDPOINT":       "",
		"AWS_USE_DUALSTACK_ENDPOINT":  "",
	} {
		t.Setenv(k, v)
	}
	f := newFake(t)
	c, err := New(t.Context(), Config{Region: testRegion, Endpoint: f.srv.URL, HTTPClient: f.srv.Client()})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if _, err := send(t, c, testMessage()); err != nil {
		t.Fatalf("Send: %v", err)
	}
	f.SetBehaviour(smstest.FailTemporary)
	if _, err := send(t, c, testMessage()); err == nil {
		t.Fatal("Send to a failing service: got no error")
	}
	if n := f.attemptCount(); n != 2 {
		t.Errorf("the service got %d attempts for two sends, want 2: the SDK must not retry", n)
	}
}

func TestNew(t *testing.T) {
	creds := credentials.NewStaticCredentialsProvider(testKeyID, testSecret, "")
	c, err := New(t.Context(), Config{Region: "us-east-1", Credentials: creds})
	if err != nil {
		t.Fatalf("New with only a Region and Credentials: %v", err)
	}
	if c.Name() != "awssms" || c.timeout != 10*time.Second {
		t.Errorf("Name %q, timeout %v; want the defaults %q, %v", c.Name(), c.timeout, "awssms", 10*time.Second)
	}
	for _, endpoint := range []string{"https://vpce-0a1b.sms-voice.us-east-1.vpce.amazonaws.com", "http://127.0.0.1:4566", "http://localhost:4566"} {
		if _, err := New(t.Context(), Config{Region: "us-east-1", Credentials: creds, Endpoint: endpoint}); err != nil {
			t.Errorf("New with Endpoint %q: %v", endpoint, err)
		}
	}

	_, err = New(t.Context(), Config{
		Name:                 "aws sms",
		ConfigurationSetName: "has space",
		MaxPrice:             "five",
		Endpoint:             "http://sms.example.com",
		Timeout:              -time.Second,
		Credentials:          creds,
	})
	if err == nil {
		t.Fatal("New with a bad Config: got no error")
	}
	for _, want := range []string{"Name", "Region is required", "ConfigurationSetName", "MaxPrice", "https", "Timeout"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("New's error does not name %q:\n%v", want, err)
		}
	}
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Region: "US East"}, "Region"},
		{Config{Region: "us-east-1", MaxPrice: "-1"}, "MaxPrice"},
		{Config{Region: "us-east-1", MaxPrice: "0"}, "MaxPrice"},
		{Config{Region: "us-east-1", Endpoint: "sms-voice.us-east-1.amazonaws.com"}, "absolute"},
		{Config{Region: "us-east-1", Endpoint: "ftp://sms.example.com"}, "scheme"},
		{Config{Region: "us-east-1", Endpoint: "https://user:pw@sms.example.com"}, "user information"},
	} {
		tc.cfg.Credentials = creds
		if _, err := New(t.Context(), tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want an error about %s", tc.cfg, err, tc.want)
		}
	}
}

// CheckCredentials says whether the carrier has credentials to sign with,
// naming the carrier when it has none.
func TestCheckCredentials(t *testing.T) {
	ok, err := New(t.Context(), Config{Name: "aws-ok", Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider(testKeyID, "secret", "")})
	if err != nil {
		t.Fatal(err)
	}
	if err := ok.CheckCredentials(t.Context()); err != nil {
		t.Errorf("static credentials: %v", err)
	}
	none, err := New(t.Context(), Config{Name: "aws-none", Region: "us-east-1", Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{}, errors.New("no EC2 IMDS role found")
	})})
	if err != nil {
		t.Fatal(err)
	}
	if err := none.CheckCredentials(t.Context()); err == nil || !strings.Contains(err.Error(), "aws-none") || !strings.Contains(err.Error(), "no EC2 IMDS role found") {
		t.Errorf("no credentials: %v, want an error naming the carrier and the cause", err)
	}
}

// The service reading the whole request, then the connection dropping
// before its answer: it may have taken the message, and the failure says
// so (TestUnreachable: a service that cannot be reached cannot have).
func TestConnectionDroppedAfterTheRequestMayDeliver(t *testing.T) {
	srv := httptest.NewUnstartedServer(smstest.DropAfterRequest(t))
	srv.Config.ErrorLog = log.New(testLog{t}, "dropping service: ", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	c, err := New(t.Context(), Config{Region: testRegion, Credentials: credentials.NewStaticCredentialsProvider(testKeyID, testSecret, ""),
		Endpoint: srv.URL, HTTPClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	m := testMessage()
	_, err = send(t, c, m)
	if ce := checkRefusal(t, err, m); !ce.MayDeliver || ce.Status != sms.Temporary {
		t.Errorf("got %#v, want a Temporary refusal that may deliver", ce)
	}
	f := newFake(t)
	c = newCarrier(t, f, Config{})
	f.srv.Close()
	if _, err := send(t, c, testMessage()); sms.MayDeliver(err) {
		t.Errorf("a service that cannot be reached: %v, want a failure that cannot deliver", err)
	}
}
