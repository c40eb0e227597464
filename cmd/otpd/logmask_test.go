package main

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/pinpoint"
)

// An error that names a phone number tells the client the whole number,
// and the log only its first digits.
func TestLogsMaskPhoneNumbers(t *testing.T) {
	var logs lockedBuffer
	ts := startServerLogging(t, func(c *config) { c.FailureLimit = 1 }, slog.New(slog.NewTextHandler(&logs, nil)))
	c := ts.client(t)
	app := createApp(t, c, "mask")
	p := sendParams("r1")
	p.DestinationIdentity = aws.String("+1425555014") // one digit short
	_, err := c.SendOTPMessage(context.Background(), &pinpoint.SendOTPMessageInput{ApplicationId: aws.String(app), SendOTPMessageRequestParameters: p})
	if err == nil || !strings.Contains(err.Error(), "+1425555014") {
		t.Fatalf("send to a number one digit short: %v, want an error naming the number", err)
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
