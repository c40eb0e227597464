package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/pinpoint"
	"github.com/aws/aws-sdk-go-v2/service/pinpoint/types"

	"github.com/otpd/otpd/internal/metrics"
	"github.com/otpd/otpd/internal/sms/webhook"
)

// webhookSecret signs the test's webhook carriers' requests.
const webhookSecret = "0123456789abcdef0123456789abcdef-webhook"

// smsGateway is an operator's webhook endpoint in a test: it checks every
// request's signature as a real receiver would and keeps what it accepted.
type smsGateway struct {
	*httptest.Server
	mu       sync.Mutex
	mode     string // "accept", "fail" (503), "deny" (403: otpd's account refused), "stall"
	requests int
	accepted []webhook.Payload
}

func newGateway(t *testing.T, mode string) *smsGateway {
	g := &smsGateway{mode: mode}
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := webhook.Verify([]byte(webhookSecret), r.Header.Get(webhook.TimestampHeader), r.Header.Get(webhook.SignatureHeader), body, time.Now(), 5*time.Minute); err != nil {
			t.Errorf("gateway: a request with a bad signature: %v", err)
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		g.mu.Lock()
		g.requests++
		mode := g.mode
		g.mu.Unlock()
		switch mode {
		case "stall":
			<-r.Context().Done()
			panic(http.ErrAbortHandler)
		case "fail":
			http.Error(w, `{"error":"upstream down"}`, http.StatusServiceUnavailable)
			return
		case "deny":
			http.Error(w, `{"error":"this account is suspended"}`, http.StatusForbidden)
			return
		}
		var p webhook.Payload
		if err := json.Unmarshal(body, &p); err != nil {
			t.Errorf("gateway: %v", err)
		}
		g.mu.Lock()
		g.accepted = append(g.accepted, p)
		g.mu.Unlock()
		fmt.Fprintf(w, `{"id":"gw-%d"}`, len(g.accepted))
	}))
	t.Cleanup(g.Close)
	return g
}

func (g *smsGateway) set(mode string) {
	g.mu.Lock()
	g.mode = mode
	g.mu.Unlock()
}

func (g *smsGateway) counts() (requests, accepted int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.requests, len(g.accepted)
}

func (g *smsGateway) lastText(t *testing.T) string {
	t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.accepted) == 0 {
		t.Fatal("the gateway accepted no message")
	}
	return g.accepted[len(g.accepted)-1].Text
}

// writeCarrierConfig writes a --config file routing every message to the
// primary gateway, then to the fallback.
func writeCarrierConfig(t *testing.T, primary, fallback *smsGateway) string {
	t.Setenv("OTPD_TEST_WEBHOOK_SECRET", webhookSecret)
	cfg := fmt.Sprintf(`
carriers:
  - name: primary
    type: webhook
    timeout: 500ms
    originations: ["+18555550142"]
    webhook:
      url: %s/sms
      secret_env: OTPD_TEST_WEBHOOK_SECRET
  - name: fallback
    type: webhook
    originations: ["+18555550142", "ExampleCo"]
    webhook:
      url: %s/sms
      secret_env: OTPD_TEST_WEBHOOK_SECRET
routes:
  - carriers: [primary, fallback]
breaker:
  failures: 100
`, primary.URL, fallback.URL)
	path := filepath.Join(t.TempDir(), "carriers.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestFailoverThroughConfiguredCarriers(t *testing.T) {
	primary, fallback := newGateway(t, "stall"), newGateway(t, "accept")
	path := writeCarrierConfig(t, primary, fallback)
	ts := startServer(t, func(c *config) { c.CarrierConfig = path })
	c := ts.client(t)
	app := createApp(t, c, "carriers")

	t.Run("first carrier times out, second accepts, one message", func(t *testing.T) {
		res := send(t, c, app, sendParams("failover"))
		if res.DeliveryStatus != types.DeliveryStatusSuccessful {
			t.Fatalf("send = %s %s, want SUCCESSFUL through the fallback", res.DeliveryStatus, aws.ToString(res.StatusMessage))
		}
		if req, acc := primary.counts(); req != 1 || acc != 0 {
			t.Errorf("primary saw %d requests, accepted %d; want 1 stalled request", req, acc)
		}
		if req, acc := fallback.counts(); req != 1 || acc != 1 {
			t.Errorf("fallback saw %d requests, accepted %d; want exactly one message", req, acc)
		}
		code := codeInBody.FindString(fallback.lastText(t))
		if !verify(t, c, app, testDestination, "failover", code) {
			t.Error("the code delivered by the fallback did not verify")
		}
	})

	t.Run("first carrier refuses otpd's account, second accepts", func(t *testing.T) {
		primary.set("deny")
		res := send(t, c, app, sendParams("suspended"))
		if res.DeliveryStatus != types.DeliveryStatusSuccessful {
			t.Fatalf("send = %s %s, want SUCCESSFUL through the fallback", res.DeliveryStatus, aws.ToString(res.StatusMessage))
		}
		code := codeInBody.FindString(fallback.lastText(t))
		if !verify(t, c, app, testDestination, "suspended", code) {
			t.Error("the code delivered by the fallback did not verify")
		}
		if v := ts.metricValue(t, `otpd_carrier_attempts_total{carrier="primary",outcome="refused-not-permitted"}`); v != 1 {
			t.Errorf("the primary's refusals of otpd's account counted %v, want 1", v)
		}
		primary.set("stall")
	})

	t.Run("all carriers down: a failure result and no new code", func(t *testing.T) {
		primary.set("accept")
		send(t, c, app, sendParams("kept"))
		code := codeInBody.FindString(primary.lastText(t))
		primary.set("fail")
		fallback.set("fail")
		res := send(t, c, app, sendParams("kept"))
		if res.DeliveryStatus != types.DeliveryStatusTemporaryFailure || aws.ToInt32(res.StatusCode) != 503 || aws.ToString(res.StatusMessage) == "" {
			t.Errorf("send with every carrier down = %s %d %q, want TEMPORARY_FAILURE 503 with a message",
				res.DeliveryStatus, aws.ToInt32(res.StatusCode), aws.ToString(res.StatusMessage))
		}
		if !verify(t, c, app, testDestination, "kept", code) {
			t.Error("the previous code stopped verifying after a send no carrier accepted")
		}
		primary.set("accept")
		fallback.set("accept")
	})

	t.Run("origination identities follow the carriers' allow-lists", func(t *testing.T) {
		p := sendParams("origination")
		p.OriginationIdentity = aws.String("OtherCo")
		_, err := c.SendOTPMessage(context.Background(), &pinpoint.SendOTPMessageInput{ApplicationId: aws.String(app), SendOTPMessageRequestParameters: p})
		wantAPIError(t, err, "BadRequestException", "OriginationIdentity", "ExampleCo")
		// Only the fallback may send as ExampleCo: the primary is skipped.
		beforePrimary, _ := primary.counts()
		p.OriginationIdentity = aws.String("ExampleCo")
		if res := send(t, c, app, p); res.DeliveryStatus != types.DeliveryStatusSuccessful {
			t.Fatalf("send as ExampleCo = %s", res.DeliveryStatus)
		}
		if after, _ := primary.counts(); after != beforePrimary {
			t.Error("the primary was asked to send from an identity it may not use")
		}
	})

	t.Run("the outbox is not the carrier", func(t *testing.T) {
		resp, body := ts.do(t, http.MethodGet, "/_otpd/outbox", nil, nil)
		wantErrorResponse(t, resp, body, http.StatusNotFound, "NotFoundException", "outbox")
	})
}

func TestCarrierConfigIsCheckedAtStartUp(t *testing.T) {
	path := filepath.Join(t.TempDir(), "carriers.yaml")
	os.WriteFile(path, []byte(`
carriers:
  - name: hook
    type: webhook
    webhook:
      url: http://sms.example.com/send
      secret_env: OTPD_TEST_MISSING_SECRET
routes:
  - carriers: [hook, nowhere]
`), 0o600)
	t.Setenv("OTPD_ACCESS_KEY_ID", testAccessKeyID)
	t.Setenv("OTPD_SECRET_ACCESS_KEY", testSecretKey)
	cfg := testConfig(t.TempDir())
	cfg.CarrierConfig = path
	_, err := newServer(context.Background(), cfg, cfg.logger(), time.Now)
	if err == nil {
		t.Fatal("otpd started with a broken carrier configuration")
	}
	if !strings.Contains(err.Error(), "OTPD_TEST_MISSING_SECRET") {
		t.Errorf("the error does not name the missing secret's variable: %v", err)
	}
	os.WriteFile(path, []byte("carriers:\n  - name: x\n    typo: webhook\n"), 0o600)
	if _, err := newServer(context.Background(), cfg, cfg.logger(), time.Now); err == nil || !strings.Contains(err.Error(), "typo") {
		t.Errorf("an unknown key: %v, want an error naming it", err)
	}
	os.WriteFile(path, []byte("carriers:\n  - name: x\n    type: smtp\n    webhook:\n      url: http://sms.example.com/send\n"), 0o600)
	if _, err := newServer(context.Background(), cfg, cfg.logger(), time.Now); err == nil || !strings.Contains(err.Error(), `type "smtp": want one of smpp, aws, twilio, webhook`) {
		t.Errorf("an unknown type: %v, want an error naming it and the known ones", err)
	}
}

// TestCheckConfig checks that otpd serve --check-config accepts a good
// carrier file and refuses a broken one, naming the problem, without
// creating the data directory.
func TestCheckConfig(t *testing.T) {
	t.Setenv("OTPD_TEST_WEBHOOK_SECRET", webhookSecret)
	dir := filepath.Join(t.TempDir(), "data")
	path := filepath.Join(t.TempDir(), "carriers.yaml")
	check := func(yaml string) error {
		t.Helper()
		if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		return runServe([]string{"--check-config", "--config", path, "--data-dir", dir, "--log-level", "error"})
	}
	good := "carriers:\n  - name: hook\n    type: webhook\n    webhook:\n      url: https://sms.example.com/send\n      secret_env: OTPD_TEST_WEBHOOK_SECRET\nroutes:\n  - carriers: [hook]\n"
	if err := check(good); err != nil {
		t.Errorf("--check-config of a good file: %v", err)
	}
	if err := check(strings.Replace(good, "hook]", "nowhere]", 1)); err == nil || !strings.Contains(err.Error(), "nowhere") {
		t.Errorf("--check-config of a route to an unknown carrier: %v, want an error naming it", err)
	}
	// An SMPP carrier whose SMSC cannot be reached: valid, but the check
	// fails and says which link did not come up.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := ln.Addr().String()
	ln.Close()
	t.Setenv("OTPD_TEST_SMPP_PASSWORD", "secret")
	smpp := "carriers:\n  - name: operator\n    type: smpp\n    smpp:\n      addr: " + closedAddr + "\n      system_id: otpd\n      password_env: OTPD_TEST_SMPP_PASSWORD\n" +
		good[len("carriers:\n"):len(good)-len("routes:\n  - carriers: [hook]\n")] + "routes:\n  - carriers: [operator, hook]\n"
	if err := check(smpp); err == nil || !strings.Contains(err.Error(), "the link of operator did not come up") {
		t.Errorf("--check-config with an SMSC out of reach: %v, want an error naming the carrier whose link did not come up", err)
	}
	// A mistyped setting is named with the settings its section has; a
	// duration without its unit is told to take one.
	err = check("carriers:\n  - name: op\n    type: smpp\n    smpp:\n      addr: 127.0.0.1:1\n      sytem_id: otpd\n      enquire_link: 30\nroutes:\n  - carriers: [op]\n")
	for _, want := range []string{"line 6: sytem_id is not a setting of smpp, whose settings are addr, system_id, password_env",
		"line 7: cannot unmarshal !!int `30` into time.Duration: write a duration with its unit, such as 30s"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("--check-config of a file with a typo and a bare duration: %v, want %q", err, want)
		}
	}
	// Every problem at once, named as the file names the settings: a
	// carrier's secret, its other settings, the routes and the breaker.
	many := "carriers:\n  - name: hook\n    type: webhook\n    rate_per_second: -1\n    webhook:\n      url: https://sms.example.com/send\n      secret_env: OTPD_NO_SUCH_SECRET\n" +
		"routes:\n  - countries: [UK]\n    carriers: [hook, twilio]\nbreaker:\n  failures: -2\n"
	err = check(many)
	for _, want := range []string{"carriers[0] (hook): secret: the environment variable OTPD_NO_SUCH_SECRET", "carriers[0] (hook): rate_per_second -1",
		`routes[0]: countries: "UK"`, `routes[0]: carriers: no carrier is named "twilio"`, "breaker.failures -2"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("--check-config of a file with five problems: %v, want %q among them", err, want)
		}
	}
	// An AWS carrier with no credentials anywhere: valid, but every send
	// through it would fail, so the check fails; with credentials it passes.
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE"} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	awsOnly := "carriers:\n  - name: aws-sms\n    type: aws\n    aws:\n      region: us-east-1\nroutes:\n  - carriers: [aws-sms]\n"
	if err := check(awsOnly); err == nil || !strings.Contains(err.Error(), "aws-sms: no AWS credentials") {
		t.Errorf("--check-config with an AWS carrier and no credentials: %v, want an error naming the carrier", err)
	}
	// otpd serve starts all the same, and says so in its log.
	awsPath := filepath.Join(t.TempDir(), "aws.yaml")
	if err := os.WriteFile(awsPath, []byte(awsOnly), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	startServerLogging(t, func(c *config) { c.CarrierConfig = awsPath }, slog.New(slog.NewTextHandler(&logs, nil)))
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(logs.tail(1<<20), "a carrier cannot send"); {
		if time.Now().After(deadline) {
			t.Fatalf("otpd serve with an AWS carrier and no credentials logged no warning:\n%s", logs.tail(4000))
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAOTPDTEST00000001")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	if err := check(awsOnly); err != nil {
		t.Errorf("--check-config with an AWS carrier and credentials in the environment: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("--check-config touched the data directory (stat: %v)", err)
	}
}

// A Twilio carrier whose status_callback_url does not lead to the path
// where otpd takes its callbacks is warned about: its reports would be lost.
func TestTwilioCallbackURLNamesTheCarrier(t *testing.T) {
	t.Setenv("OTPD_TEST_TWILIO_TOKEN", testTwilioToken)
	path := filepath.Join(t.TempDir(), "carriers.yaml")
	for _, tc := range []struct {
		callback string
		warn     bool
	}{
		{"https://otpd.example.com/_otpd/callbacks/twilio/tw2", false},
		{"https://otpd.example.com/_otpd/callbacks/twilio/twilio", true},
	} {
		os.WriteFile(path, []byte(fmt.Sprintf("carriers:\n  - name: tw2\n    type: twilio\n    twilio:\n      account_sid: %s\n      auth_token_env: OTPD_TEST_TWILIO_TOKEN\n      status_callback_url: %s\nroutes:\n  - carriers: [tw2]\n",
			testTwilioSID, tc.callback)), 0o600)
		var logs lockedBuffer
		cs, err := loadCarriers(t.Context(), path, nil, metrics.New(), slog.New(slog.NewTextHandler(&logs, nil)))
		if err != nil {
			t.Fatal(err)
		}
		cs.close()
		if warned := strings.Contains(logs.tail(1<<20), "status_callback_url does not end with the path"); warned != tc.warn {
			t.Errorf("status_callback_url %s: warned %v, want %v; log: %s", tc.callback, warned, tc.warn, logs.tail(1<<20))
		}
	}
}

// A carrier without a name is refused, naming its entry by index and type:
// its package would name it by a default the file does not show, and a
// Twilio carrier's callbacks would be served under an empty name, where
// the URL the README documents does not lead.
func TestCarrierWithoutNameIsRefused(t *testing.T) {
	t.Setenv("OTPD_TEST_TWILIO_TOKEN", testTwilioToken)
	t.Setenv("OTPD_TEST_WEBHOOK_SECRET", webhookSecret)
	path := filepath.Join(t.TempDir(), "carriers.yaml")
	os.WriteFile(path, []byte(fmt.Sprintf(`
carriers:
  - type: twilio
    twilio:
      account_sid: %s
      auth_token_env: OTPD_TEST_TWILIO_TOKEN
      status_callback_url: https://otpd.example.com/_otpd/callbacks/twilio/twilio
  - name: hook
    type: webhook
    webhook:
      url: https://sms.example.com/send
      secret_env: OTPD_TEST_WEBHOOK_SECRET
  - type: webhook
    webhook:
      url: https://sms.example.com/send
      secret_env: OTPD_TEST_WEBHOOK_SECRET
routes:
  - carriers: [hook]
`, testTwilioSID)), 0o600)
	cs, err := loadCarriers(t.Context(), path, nil, metrics.New(), slog.New(slog.DiscardHandler))
	if err == nil {
		defer cs.close()
		t.Fatalf("carriers without a name were accepted; the callbacks are served at %v", slices.Collect(maps.Keys(cs.callbacks)))
	}
	for _, want := range []string{"carriers[0] has no name", "carriers[2] has no name"} {
		if n := strings.Count(err.Error(), want); n != 1 {
			t.Errorf("the error:\n%v\nsays %q %d times, want once", err, want, n)
		}
	}
	if strings.Contains(err.Error(), "carriers[1]") {
		t.Errorf("the error:\n%v\nblames carriers[1], which has a name", err)
	}
}

// The route package's setting names become the file's, but the file's own
// values (names in quotes or parentheses) stay as written.
func TestInYAMLNames(t *testing.T) {
	for in, want := range map[string]string{
		`route: Carriers[0] (BurstSMS): Burst 3 needs a RatePerSecond`:                   `carriers[0] (BurstSMS): burst 3 needs a rate_per_second`,
		`route: Rules[1]: Carriers: no carrier is named "TimeoutCo" (there are "Burst")`: `routes[1]: carriers: no carrier is named "TimeoutCo" (there are "Burst")`,
		`route: Breaker.Failures -1 is negative`:                                         `breaker.failures -1 is negative`,
	} {
		if got := inYAMLNames(in); got != want {
			t.Errorf("inYAMLNames(%q)\n got %q\nwant %q", in, got, want)
		}
	}
}

// TestCarrierChecksRunAtOnce: the carriers' checks at start-up run side by
// side, so that several slow ones (an instance role's credentials each)
// take the time of one. Here the first check can only finish once the
// second has started: one after the other, it would wait until ctx ended.
func TestCarrierChecksRunAtOnce(t *testing.T) {
	secondStarted := make(chan struct{})
	failed := errors.New("the third carrier's credentials are missing")
	cs := &carriers{checks: []func(context.Context) error{
		func(ctx context.Context) error {
			select {
			case <-secondStarted:
				return nil
			case <-ctx.Done():
				return fmt.Errorf("the first check waited for the second in vain: %w", ctx.Err())
			}
		},
		func(context.Context) error { close(secondStarted); return nil },
		func(context.Context) error { return failed },
	}}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	errs := cs.check(ctx)
	if len(errs) != 1 || !errors.Is(errs[0], failed) {
		t.Errorf("check = %v, want only the third carrier's error", errs)
	}
}
