package pinpointapi

import (
	"errors"
	"net/http"
	"testing"
)

// FuzzDecode feeds arbitrary bodies to the request decoder of every
// operation that takes one. Whatever the bytes, decoding must not panic,
// and a failure must be a 400 BadRequestException with a message.
func FuzzDecode(f *testing.F) {
	for _, seed := range []string{
		`{"Channel":"SMS","BrandName":"ExampleCorp","CodeLength":6,"ValidityPeriod":10,"AllowedAttempts":3,"Language":"en-US","OriginationIdentity":"+18555550142","DestinationIdentity":"+14255550142","ReferenceId":"SampleReferenceId"}`,
		`{"DestinationIdentity":"+14255550142","ReferenceId":"r","Otp":"123456"}`,
		`{"Name":"app","tags":{"k":"v"}}`,
		`{"Enabled":false,"SenderId":"Acme"}`,
		`{"CodeLength":"6"}`, `{"CodeLength":6.5}`, `{"CodeLength":1e400}`, `{"Otp":123}`, `{"tags":[1]}`,
		`[]`, `null`, `""`, ``, `{`, `{"a":`, "\xff\xfe", `{"Name":"\ud800"}`, `{"Enabled":"true"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		targets := []any{&sendOTPRequest{}, &verifyOTPRequest{}, &createApplicationRequest{}, &smsChannelRequest{}}
		for _, v := range targets {
			err := decode(body, v)
			if err == nil {
				continue
			}
			var api *apiError
			if !errors.As(err, &api) || api.status != http.StatusBadRequest || api.code != "BadRequestException" || api.message == "" {
				t.Fatalf("decode(%q) into %T = %v, want a BadRequestException with a message", body, v, err)
			}
		}
	})
}
