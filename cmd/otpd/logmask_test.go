package main

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/pinpoint"
	"github.com/aws/aws-sdk-go-v2/service/pinpoint/types"
)

// An error that names a phone number the client asked about tells the
// client the whole number (a lockout), and the log only its first digits;
// one that echoes a DestinationIdentity it refuses masks it, client and
// log alike, whatever its shape.
func TestLogsMaskPhoneNumbers(t *testing.T) {
	var logs lockedBuffer
	ts := startServerLogging(t, func(c *config) { c.FailureLimit = 1 }, slog.New(slog.NewTextHandler(&logs, nil)))
	c := ts.client(t)
	app := createApp(t, c, "mask")
	p := sendParams("r1")
	p.DestinationIdentity = aws.String("+1425555014") // one digit short
	_, err := c.SendOTPMessage(context.Background(), &pinpoint.SendOTPMessageInput{ApplicationId: aws.String(app), SendOTPMessageRequestParameters: p})
	if err == nil || !strings.Contains(err.Error(), "+1425******") {
		t.Fatalf("send to a number one digit short: %v, want an error naming the number masked", err)
	}
	// A wrong code spends the failure budget of 1: the next send is locked
	// out, naming the number.
	if _, err := c.SendOTPMessage(context.Background(), &pinpoint.SendOTPMessageInput{ApplicationId: aws.String(app), SendOTPMessageRequestParameters: sendParams("r2")}); err != nil {
		t.Fatal(err)
	}
	verify(t, c, app, testDestination, "r2", "000000")
	_, err = c.SendOTPMessage(context.Background(), &pinpoint.SendOTPMessageInput{ApplicationId: aws.String(app), SendOTPMessageRequestParameters: sendParams("r3")})
	if err == nil || !strings.Contains(err.Error(), testDestination) {
		t.Fatalf("send after the budget is spent: %v, want a lockout naming the number", err)
	}
	got := logs.tail(1 << 30)
	for _, full := range []string{"+1425555014", testDestination} {
		if strings.Contains(got, full) {
			t.Errorf("the log shows the number %s:\n%s", full, got)
		}
	}
	for _, masked := range []string{`+1425******`, `+1425*******`} {
		if !strings.Contains(got, masked) {
			t.Errorf("the log lacks the masked number %s:\n%s", masked, got)
		}
	}
}

// A DestinationIdentity refused for its form is echoed masked whatever its
// shape, to the client and in the log: shapes where letters, '.', '/' or
// ':' touch the digits, which the log's masking of running text passes
// over, and digits of other scripts.
func TestMalformedDestinationsAreEchoedMasked(t *testing.T) {
	var logs lockedBuffer
	ts := startServerLogging(t, nil, slog.New(slog.NewJSONHandler(&logs, nil)))
	c := ts.client(t)
	app := createApp(t, c, "mask")
	for _, tc := range []struct{ dest, masked, hidden string }{
		{"(425) 555-0142", "(425) 5**-****", "555-0142"},
		{"+1.425.555.0142", "+1.425.***.****", "555.0142"},
		{"tel:+14255550142", "tel:+1425*******", "5550142"},
		{"+1425555O142", "+1425***O***", "555O142"},
		{"+１４２５５５５０１４２", "+１４２５*******", "５５５０１４２"},
	} {
		p := sendParams("r1")
		p.DestinationIdentity = aws.String(tc.dest)
		_, err := c.SendOTPMessage(context.Background(), &pinpoint.SendOTPMessageInput{ApplicationId: aws.String(app), SendOTPMessageRequestParameters: p})
		if err == nil || !strings.Contains(err.Error(), tc.masked) || strings.Contains(err.Error(), tc.hidden) {
			t.Errorf("send to %q: %v, want an error echoing it as %q", tc.dest, err, tc.masked)
		}
		_, err = c.VerifyOTPMessage(context.Background(), &pinpoint.VerifyOTPMessageInput{ApplicationId: aws.String(app),
			VerifyOTPMessageRequestParameters: &types.VerifyOTPMessageRequestParameters{
				DestinationIdentity: aws.String(tc.dest), ReferenceId: aws.String("r1"), Otp: aws.String("123456")}})
		if err == nil || !strings.Contains(err.Error(), tc.masked) || strings.Contains(err.Error(), tc.hidden) {
			t.Errorf("verify for %q: %v, want an error echoing it as %q", tc.dest, err, tc.masked)
		}
		// The JSON log writes the masked value as it is, and the raw
		// one would be too.
		if got := logs.tail(1 << 30); strings.Contains(got, tc.hidden) || strings.Count(got, tc.masked) < 2 {
			t.Errorf("the log shows %q, or not its masked form twice:\n%s", tc.dest, got)
		}
	}
}
