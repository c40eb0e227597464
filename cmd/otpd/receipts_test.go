package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/otpd/otpd/internal/pinpointapi"
	"github.com/otpd/otpd/internal/sms/twilio"
)

const (
	testTwilioSID   = "AC0123456789abcdef0123456789abcdef"
	testTwilioToken = "0123456789abcdef0123456789abcdef"
)

// fakeTwilio answers the Messages resource as Twilio does and remembers
// the message sids it handed out.
type fakeTwilio struct {
	*httptest.Server
	mu   sync.Mutex
	sids []string
}

func newFakeTwilio(t *testing.T) *fakeTwilio {
	f := &fakeTwilio{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		if !ok || user != testTwilioSID || pass != testTwilioToken ||
			r.URL.Path != "/2010-04-01/Accounts/"+testTwilioSID+"/Messages.json" {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"code":20003,"message":"Authenticate","status":401}`)
			return
		}
		r.ParseForm()
		f.mu.Lock()
		sid := fmt.Sprintf("SM%032d", len(f.sids)+1)
		f.sids = append(f.sids, sid)
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"sid":%q,"status":"queued","to":%q,"from":%q,"body":"(sent)","account_sid":%q}`,
			sid, r.PostForm.Get("To"), r.PostForm.Get("From"), testTwilioSID)
	}))
	t.Cleanup(f.Close)
	return f
}

// TestDeliveryReceiptThroughTwilioCallback sends through a Twilio route,
// posts the signed status callback Twilio would send, and reads the status
// from the message listing.
func TestDeliveryReceiptThroughTwilioCallback(t *testing.T) {
	tw := newFakeTwilio(t)
	t.Setenv("OTPD_TEST_TWILIO_TOKEN", testTwilioToken)
	// Twilio signs the public URL it was given for callbacks, whatever
	// address the request then reaches otpd at (behind a proxy).
	path := filepath.Join(t.TempDir(), "carriers.yaml")
	callbackPath := "/_otpd/callbacks/twilio/tw"
	publicURL := "https://otpd.example.com" + callbackPath
	os.WriteFile(path, []byte(fmt.Sprintf(`
carriers:
  - name: tw
    type: twilio
    twilio:
      account_sid: %s
      auth_token_env: OTPD_TEST_TWILIO_TOKEN
      base_url: %s
      status_callback_url: %s
routes:
  - carriers: [tw]
`, testTwilioSID, tw.URL, publicURL)), 0o600)
	ts := startServer(t, func(c *config) { c.CarrierConfig = path })
	c := ts.client(t)
	app := createApp(t, c, "receipts")
	res := send(t, c, app, sendParams("receipt"))
	if res.DeliveryStatus != "SUCCESSFUL" {
		t.Fatalf("send through Twilio: %s %s", res.DeliveryStatus, aws.ToString(res.StatusMessage))
	}
	entries := ts.messages(t)
	if len(entries) != 1 || entries[0].Carrier != "tw" || entries[0].Status != "SUBMITTED" ||
		entries[0].CarrierMessageID != "SM00000000000000000000000000000001" || entries[0].Country != "US" {
		t.Fatalf("messages after the send = %+v, want one SUBMITTED message through tw with Twilio's sid", entries)
	}
	raw, _ := json.Marshal(entries)
	if strings.Contains(string(raw), "Password") {
		t.Errorf("the message listing shows the text: %s", raw)
	}

	// Twilio's callback, signed for the public URL it was given.
	form := url.Values{"MessageSid": {entries[0].CarrierMessageID}, "MessageStatus": {"delivered"}, "AccountSid": {testTwilioSID}}
	post := func(signature string) int {
		req, _ := http.NewRequest(http.MethodPost, ts.URL+callbackPath, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set(twilio.SignatureHeader, signature)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := post("bm90IGEgc2lnbmF0dXJl"); got != http.StatusForbidden {
		t.Errorf("a callback with a forged signature got %d, want 403", got)
	}
	if got := post(twilio.Signature(testTwilioToken, publicURL, form)); got != http.StatusNoContent {
		t.Fatalf("a signed callback got %d, want 204", got)
	}
	entries = ts.messages(t)
	if entries[0].Status != "DELIVERED" || entries[0].StatusCode == "" {
		t.Errorf("after the delivered callback: %+v, want DELIVERED with Twilio's status as code", entries[0])
	}
	if v := ts.metricValue(t, `otpd_delivery_reports_total{carrier="tw",country="US",status="DELIVERED"}`); v != 1 {
		t.Errorf("delivery reports counted = %v, want 1", v)
	}
}

func (ts *testServer) messages(t *testing.T) []pinpointapi.MessageEntry {
	t.Helper()
	resp, body := ts.do(t, http.MethodGet, "/_otpd/messages", nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /_otpd/messages: %d %s", resp.StatusCode, body)
	}
	var entries []pinpointapi.MessageEntry
	if err := json.Unmarshal(body, &entries); err != nil {
		t.Fatal(err)
	}
	return entries
}
