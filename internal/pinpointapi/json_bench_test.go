package pinpointapi

import (
	"encoding/json"
	"testing"
)

// The request and response bodies of the hot paths, as AWS SDKs send them
// and as otpd answers.
var (
	benchSendBody   = []byte(`{"Channel":"SMS","BrandName":"ExampleCorp","CodeLength":6,"ValidityPeriod":10,"AllowedAttempts":3,"Language":"en-US","OriginationIdentity":"+18555550142","DestinationIdentity":"+14255550142","ReferenceId":"login-7f3a9c"}`)
	benchVerifyBody = []byte(`{"DestinationIdentity":"+14255550142","ReferenceId":"login-7f3a9c","Otp":"123456"}`)
)

func BenchmarkDecodeSendRequest(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		var req sendOTPRequest
		if err := decode(benchSendBody, &req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeVerifyRequest(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		var req verifyOTPRequest
		if err := decode(benchVerifyBody, &req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeSendResponse(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_, err := json.Marshal(messageResponse{
			ApplicationID: "0123456789abcdef0123456789abcdef",
			RequestID:     "6f1c8a5e-2b7d-4c1e-9a3f-5d8e7b6a4c2d",
			Result: map[string]messageResult{"+14255550142": {
				DeliveryStatus: "SUCCESSFUL",
				MessageID:      "019a9f3c-5b2e-7d41-8c6a-3e5f7a9b1c2d",
				StatusCode:     200,
				StatusMessage:  "MessageId: 019a9f3c-5b2e-7d41-8c6a-3e5f7a9b1c2d",
			}},
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeVerifyResponse(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(verificationResponse{Valid: true}); err != nil {
			b.Fatal(err)
		}
	}
}
