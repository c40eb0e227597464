//go:build unix

package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/pinpoint/types"

	"github.com/otpd/otpd/internal/pinpointapi"
	"github.com/otpd/otpd/internal/sms/smscsim"
)

// TestSendOverSMPPWithDeliveryReceipt sends a code through the
// aws-sdk-go-v2 Pinpoint client over an SMPP route to the simulator, waits
// for its delivery receipt and reads the status from the message listing
// and the metrics.
func TestSendOverSMPPWithDeliveryReceipt(t *testing.T) {
	// Started before startServer, so that its cleanup runs after otpd's:
	// otpd unbinds before the simulator stops.
	smscsim.Start(t)

	// The simulator binds any system_id but "invalid", and answers a
	// destination that contains the system_id with a mobile-originated
	// copy: "otpd-e2e" is in no phone number. SMPP allows a system_id of
	// 15 characters and a password of 8.
	t.Setenv("OTPD_TEST_SMPP_PASSWORD", "e2e-pw")
	path := filepath.Join(t.TempDir(), "carriers.yaml")
	cfg := `
carriers:
  - name: smsc
    type: smpp
    timeout: 5s
    smpp:
      addr: 127.0.0.1:` + smscsim.Port + `
      system_id: otpd-e2e
      password_env: OTPD_TEST_SMPP_PASSWORD
      window: 4
      enquire_link: 60s          # the simulator sends receipts only after a quiet second
      submit_timeout: 5s
      registered_delivery: true
routes:
  - carriers: [smsc]
breaker:
  failures: 100
`
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, func(c *config) { c.CarrierConfig = path })
	if up := ts.metricValue(t, `otpd_carrier_link_up{carrier="smsc"}`); up != 1 {
		t.Errorf("otpd_carrier_link_up for the bound carrier = %v, want 1", up)
	}
	c := ts.client(t)
	app := createApp(t, c, "smpp")

	res := send(t, c, app, sendParams("smpp-receipt"))
	if res.DeliveryStatus != types.DeliveryStatusSuccessful || aws.ToInt32(res.StatusCode) != 200 {
		t.Fatalf("send over SMPP = %s %d %q, want SUCCESSFUL 200",
			res.DeliveryStatus, aws.ToInt32(res.StatusCode), aws.ToString(res.StatusMessage))
	}
	entries := ts.messages(t)
	if len(entries) != 1 {
		t.Fatalf("messages after the send = %+v, want one", entries)
	}
	sent := entries[0]
	hexID := regexp.MustCompile(`^[0-9a-f]{64}$`) // the simulator's message_id
	if sent.Carrier != "smsc" || !hexID.MatchString(sent.CarrierMessageID) || sent.Status != "SUBMITTED" ||
		sent.DestinationIdentity != testDestination || sent.ReferenceID != "smpp-receipt" || sent.Country != "US" {
		t.Fatalf("message after the send = %+v, want SUBMITTED through smsc with the simulator's message_id", sent)
	}

	// The simulator sends its receipt 3 to 12 s after the submit, once no
	// connection had traffic for a second: a bounded wait, not a timing
	// assertion.
	var got pinpointapi.MessageEntry
	deadline := time.Now().Add(30 * time.Second)
	for {
		entries = ts.messages(t)
		if len(entries) != 1 {
			t.Fatalf("messages while waiting for the receipt = %+v, want one", entries)
		}
		got = entries[0]
		if got.Status != "SUBMITTED" || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if got.Status != "DELIVERED" {
		t.Fatalf("message 30 s after the send = %+v, want DELIVERED by the simulator's receipt", got)
	}
	if got.MessageID != sent.MessageID || got.CarrierMessageID != sent.CarrierMessageID || got.Carrier != "smsc" {
		t.Errorf("the receipt changed the message's identity: %+v, was %+v", got, sent)
	}
	if v := ts.metricValue(t, `otpd_delivery_reports_total{carrier="smsc",country="US",status="DELIVERED"}`); v != 1 {
		t.Errorf("delivery reports counted = %v, want 1", v)
	}

	// The simulator refuses a destination shorter than 8 digits with
	// ESME_RINVDSTADR: Niue's numbers have 7, country code included. Its
	// other refusal, ESME_RSUBMITFAIL, is for the destination "333",
	// which no valid E.164 number is: not tried here.
	p := sendParams("smpp-refused")
	p.DestinationIdentity = aws.String("+6834002")
	res = send(t, c, app, p)
	msg := aws.ToString(res.StatusMessage)
	if res.DeliveryStatus != types.DeliveryStatusPermanentFailure || aws.ToInt32(res.StatusCode) != 400 ||
		!strings.Contains(msg, "ESME_RINVDSTADR") {
		t.Errorf("send to a destination the simulator refuses = %s %d %q, want PERMANENT_FAILURE 400 naming ESME_RINVDSTADR",
			res.DeliveryStatus, aws.ToInt32(res.StatusCode), msg)
	}
	if entries := ts.messages(t); len(entries) != 1 {
		t.Errorf("messages after the refused send = %+v, want only the delivered one", entries)
	}
}
