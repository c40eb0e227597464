package pinpointapi

import (
	"errors"
	"net/http"
	"strings"
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

// TestDecodeRefusesWhatJSONWouldReplace checks that bytes encoding/json
// would turn into U+FFFD are refused, and that what is valid is not.
func TestDecodeRefusesWhatJSONWouldReplace(t *testing.T) {
	for _, tc := range []struct {
		body string
		want string // in the error; "" means accepted
	}{
		{`{"ReferenceId":"r` + "\xff" + `"}`, "not valid UTF-8 (at byte 18)"},
		{"\uFEFF" + `{"ReferenceId":"r"}`, "byte order mark"},
		{" \n\uFEFF" + `{"ReferenceId":"r"}`, "byte order mark"},
		{`{"ReferenceId":"r\ud800"}`, "byte 18 is half of a UTF-16 surrogate pair"},
		{`{"ReferenceId":"r\udc00"}`, "byte 18 is half"},
		{`{"ReferenceId":"r\ud800\u0041"}`, "byte 18 is half"},
		{`{"ReferenceId":"r\ud800","x":"\ud83d\ude00"}`, "byte 18 is half"},
		{`{"ReferenceId":"r\ud800"`, "not valid JSON: unexpected end"}, // a syntax error first
		{`{"ReferenceId":"r\ud83d\ude00"}`, ""},                        // a pair: 😀
		{`{"ReferenceId":"r😀 é"}`, ""},                                 // UTF-8 as it is
		{`{"ReferenceId":"r\\ud800"}`, ""},                             // an escaped backslash, then text
		{`{"ReferenceId":"r\"\ud800"}`, "byte 20 is half"},             // after an escaped quote, still in the string
		{`{"ReferenceId":"r\u00e9\u0041"}`, ""},
	} {
		var v verifyOTPRequest
		err := decode([]byte(tc.body), &v)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("decode(%q) = %v, want it accepted", tc.body, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("decode(%q) = %v, want an error saying %q", tc.body, err, tc.want)
		}
	}
}

// TestDecodeNamesTheField checks that a value of the wrong JSON type is
// named as the client wrote it: a field, or the values of a map.
func TestDecodeNamesTheField(t *testing.T) {
	for _, tc := range []struct {
		body string
		v    any
		want string
	}{
		{`{"Otp":123456}`, &verifyOTPRequest{}, "Otp must be a string; got a JSON number."},
		{`{"Name":"x","tags":{"a":1}}`, &createApplicationRequest{}, "Each value of tags must be a string; got a JSON number."},
		{`{"Name":"x","tags":[{"Key":"a","Value":"b"}]}`, &createApplicationRequest{}, "tags must be an object; got a JSON array."},
		{`{"Name":"x","tags":"a=b"}`, &createApplicationRequest{}, "tags must be an object; got a JSON string."},
		{`{"Name":"x","tags":[]}`, &createApplicationRequest{}, "tags must be an object; got a JSON array."},
	} {
		err := decode([]byte(tc.body), tc.v)
		if want := "BadRequestException: " + tc.want; err == nil || err.Error() != want {
			t.Errorf("decode(%s) = %v, want %q", tc.body, err, want)
		}
	}
}
