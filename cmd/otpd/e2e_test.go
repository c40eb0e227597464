package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/pinpoint"
	"github.com/aws/aws-sdk-go-v2/service/pinpoint/types"
	"github.com/aws/smithy-go"

	"github.com/otpd/otpd/internal/pinpointapi"
	"github.com/otpd/otpd/internal/storage/sqlite"
)

const (
	testDestination = "+14255550142"
	testOrigination = "+18555550142"
)

// sendParams are the parameters of the Pinpoint documentation's example.
func sendParams(ref string) *types.SendOTPMessageRequestParameters {
	return &types.SendOTPMessageRequestParameters{
		Channel:             aws.String("SMS"),
		BrandName:           aws.String("ExampleCorp"),
		CodeLength:          aws.Int32(6),
		ValidityPeriod:      aws.Int32(10),
		AllowedAttempts:     aws.Int32(3),
		Language:            aws.String("en-US"),
		OriginationIdentity: aws.String(testOrigination),
		DestinationIdentity: aws.String(testDestination),
		ReferenceId:         aws.String(ref),
	}
}

func createApp(t *testing.T, c *pinpoint.Client, name string) string {
	t.Helper()
	out, err := c.CreateApp(context.Background(), &pinpoint.CreateAppInput{
		CreateApplicationRequest: &types.CreateApplicationRequest{Name: aws.String(name)},
	})
	if err != nil {
		t.Fatalf("CreateApp: %v", err)
	}
	return aws.ToString(out.ApplicationResponse.Id)
}

func send(t *testing.T, c *pinpoint.Client, appID string, p *types.SendOTPMessageRequestParameters) types.MessageResult {
	t.Helper()
	out, err := c.SendOTPMessage(context.Background(), &pinpoint.SendOTPMessageInput{
		ApplicationId: aws.String(appID), SendOTPMessageRequestParameters: p,
	})
	if err != nil {
		t.Fatalf("SendOTPMessage: %v", err)
	}
	if got := aws.ToString(out.MessageResponse.ApplicationId); got != appID {
		t.Errorf("MessageResponse.ApplicationId = %q, want %q", got, appID)
	}
	if aws.ToString(out.MessageResponse.RequestId) == "" {
		t.Error("MessageResponse.RequestId is empty")
	}
	res, ok := out.MessageResponse.Result[aws.ToString(p.DestinationIdentity)]
	if !ok {
		t.Fatalf("Result has no entry for %s: %+v", aws.ToString(p.DestinationIdentity), out.MessageResponse.Result)
	}
	return res
}

func verify(t *testing.T, c *pinpoint.Client, appID, dest, ref, code string) bool {
	t.Helper()
	out, err := c.VerifyOTPMessage(context.Background(), &pinpoint.VerifyOTPMessageInput{
		ApplicationId: aws.String(appID),
		VerifyOTPMessageRequestParameters: &types.VerifyOTPMessageRequestParameters{
			DestinationIdentity: aws.String(dest), ReferenceId: aws.String(ref), Otp: aws.String(code),
		},
	})
	if err != nil {
		t.Fatalf("VerifyOTPMessage: %v", err)
	}
	return aws.ToBool(out.VerificationResponse.Valid)
}

var codeInBody = regexp.MustCompile(`\d{5,8}`)

// lastCode reads the newest code texted to dest from the signed outbox
// endpoint.
func (ts *testServer) lastCode(t *testing.T, dest string) string {
	t.Helper()
	entries := ts.outbox(t, dest)
	if len(entries) == 0 {
		t.Fatalf("the outbox holds no message to %s", dest)
	}
	code := codeInBody.FindString(entries[len(entries)-1].Body)
	if code == "" {
		t.Fatalf("no code in %q", entries[len(entries)-1].Body)
	}
	return code
}

func (ts *testServer) outbox(t *testing.T, dest string) []pinpointapi.OutboxEntry {
	t.Helper()
	resp, body := ts.do(t, http.MethodGet, "/_otpd/outbox?destination="+strings.ReplaceAll(dest, "+", "%2B"), nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /_otpd/outbox: %d %s", resp.StatusCode, body)
	}
	var entries []pinpointapi.OutboxEntry
	if err := json.Unmarshal(body, &entries); err != nil {
		t.Fatalf("decode outbox: %v", err)
	}
	return entries
}

// do sends a request signed by the aws-sdk-go-v2 signer and returns the
// response with its body read.
func (ts *testServer) do(t *testing.T, method, path string, body []byte, header http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	sum := sha256.Sum256(body)
	err = v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{
		AccessKeyID: ts.Creds.AccessKeyID, SecretAccessKey: ts.Creds.SecretAccessKey,
	}, req, hex.EncodeToString(sum[:]), "mobiletargeting", testRegion, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// wantAPIError checks that err is an AWS API error with the given code and
// a message containing each of the given fragments.
func wantAPIError(t *testing.T, err error, code string, fragments ...string) {
	t.Helper()
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("error = %v, want an API error %s", err, code)
	}
	if apiErr.ErrorCode() != code {
		t.Errorf("error code = %s (%s), want %s", apiErr.ErrorCode(), apiErr.ErrorMessage(), code)
	}
	for _, f := range fragments {
		if !strings.Contains(apiErr.ErrorMessage(), f) {
			t.Errorf("error message %q does not mention %q", apiErr.ErrorMessage(), f)
		}
	}
}

func TestApplications(t *testing.T) {
	ts := startServer(t, nil)
	c := ts.client(t)
	ctx := context.Background()

	out, err := c.CreateApp(ctx, &pinpoint.CreateAppInput{CreateApplicationRequest: &types.CreateApplicationRequest{
		Name: aws.String("Shop"), Tags: map[string]string{"team": "identity"},
	}})
	if err != nil {
		t.Fatalf("CreateApp: %v", err)
	}
	app := out.ApplicationResponse
	id := aws.ToString(app.Id)
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(id) {
		t.Errorf("Id = %q, want 32 lowercase hex characters", id)
	}
	if want := "arn:aws:mobiletargeting:us-east-1:000000000000:apps/" + id; aws.ToString(app.Arn) != want {
		t.Errorf("Arn = %q, want %q", aws.ToString(app.Arn), want)
	}
	if _, err := time.Parse("2006-01-02T15:04:05.000Z", aws.ToString(app.CreationDate)); err != nil {
		t.Errorf("CreationDate = %q, want ISO 8601 with milliseconds: %v", aws.ToString(app.CreationDate), err)
	}
	if app.Tags["team"] != "identity" {
		t.Errorf("tags = %v, want team=identity", app.Tags)
	}

	got, err := c.GetApp(ctx, &pinpoint.GetAppInput{ApplicationId: aws.String(id)})
	if err != nil {
		t.Fatalf("GetApp: %v", err)
	}
	if aws.ToString(got.ApplicationResponse.Name) != "Shop" {
		t.Errorf("GetApp Name = %q, want Shop", aws.ToString(got.ApplicationResponse.Name))
	}

	ch, err := c.GetSmsChannel(ctx, &pinpoint.GetSmsChannelInput{ApplicationId: aws.String(id)})
	if err != nil {
		t.Fatalf("GetSmsChannel: %v", err)
	}
	if !aws.ToBool(ch.SMSChannelResponse.Enabled) || aws.ToInt32(ch.SMSChannelResponse.Version) != 1 ||
		aws.ToString(ch.SMSChannelResponse.Platform) != "SMS" {
		t.Errorf("new SMS channel = enabled %v version %d platform %q, want enabled, version 1, SMS",
			aws.ToBool(ch.SMSChannelResponse.Enabled), aws.ToInt32(ch.SMSChannelResponse.Version), aws.ToString(ch.SMSChannelResponse.Platform))
	}
	upd, err := c.UpdateSmsChannel(ctx, &pinpoint.UpdateSmsChannelInput{ApplicationId: aws.String(id),
		SMSChannelRequest: &types.SMSChannelRequest{Enabled: aws.Bool(false), SenderId: aws.String("ExampleCo")}})
	if err != nil {
		t.Fatalf("UpdateSmsChannel: %v", err)
	}
	if aws.ToBool(upd.SMSChannelResponse.Enabled) || aws.ToInt32(upd.SMSChannelResponse.Version) != 2 ||
		aws.ToString(upd.SMSChannelResponse.SenderId) != "ExampleCo" {
		t.Errorf("updated SMS channel = enabled %v version %d sender %q, want disabled, version 2, ExampleCo",
			aws.ToBool(upd.SMSChannelResponse.Enabled), aws.ToInt32(upd.SMSChannelResponse.Version), aws.ToString(upd.SMSChannelResponse.SenderId))
	}
	_, err = c.SendOTPMessage(ctx, &pinpoint.SendOTPMessageInput{ApplicationId: aws.String(id), SendOTPMessageRequestParameters: sendParams("r")})
	wantAPIError(t, err, "BadRequestException", "disabled")
	_, err = c.UpdateSmsChannel(ctx, &pinpoint.UpdateSmsChannelInput{ApplicationId: aws.String(id),
		SMSChannelRequest: &types.SMSChannelRequest{SenderId: aws.String("ExampleCo ")}})
	wantAPIError(t, err, "BadRequestException", "SenderId must not begin or end with a space")

	del, err := c.DeleteApp(ctx, &pinpoint.DeleteAppInput{ApplicationId: aws.String(id)})
	if err != nil {
		t.Fatalf("DeleteApp: %v", err)
	}
	if aws.ToString(del.ApplicationResponse.Id) != id {
		t.Errorf("DeleteApp returned %q, want %q", aws.ToString(del.ApplicationResponse.Id), id)
	}
	_, err = c.GetApp(ctx, &pinpoint.GetAppInput{ApplicationId: aws.String(id)})
	wantAPIError(t, err, "NotFoundException", id)
	_, err = c.DeleteApp(ctx, &pinpoint.DeleteAppInput{ApplicationId: aws.String(id)})
	wantAPIError(t, err, "NotFoundException")
}

func TestGetAppsPaging(t *testing.T) {
	ts := startServer(t, nil)
	c := ts.client(t)
	created := map[string]bool{}
	for i := range 5 {
		created[createApp(t, c, fmt.Sprintf("app-%d", i))] = true
	}
	var seen []string
	token := ""
	for page := 0; ; page++ {
		in := &pinpoint.GetAppsInput{PageSize: aws.String("2")}
		if token != "" {
			in.Token = aws.String(token)
		}
		out, err := c.GetApps(context.Background(), in)
		if err != nil {
			t.Fatalf("GetApps page %d: %v", page, err)
		}
		if n := len(out.ApplicationsResponse.Item); n > 2 {
			t.Fatalf("page %d has %d items, want at most 2", page, n)
		}
		for _, a := range out.ApplicationsResponse.Item {
			seen = append(seen, aws.ToString(a.Id))
		}
		token = aws.ToString(out.ApplicationsResponse.NextToken)
		if token == "" {
			break
		}
		if page > 5 {
			t.Fatal("paging does not end")
		}
	}
	if len(seen) != 5 {
		t.Fatalf("paged through %d applications, want 5: %v", len(seen), seen)
	}
	for i, id := range seen {
		if !created[id] {
			t.Errorf("unexpected application %s", id)
		}
		if i > 0 && seen[i-1] >= id {
			t.Errorf("applications out of order: %s before %s", seen[i-1], id)
		}
	}
	_, err := c.GetApps(context.Background(), &pinpoint.GetAppsInput{PageSize: aws.String("0")})
	wantAPIError(t, err, "BadRequestException", "page-size")
	_, err = c.GetApps(context.Background(), &pinpoint.GetAppsInput{Token: aws.String("not-a-token")})
	wantAPIError(t, err, "BadRequestException", "token")
}

func TestSendAndVerify(t *testing.T) {
	ts := startServer(t, nil)
	c := ts.client(t)
	app := createApp(t, c, "verify")

	res := send(t, c, app, sendParams("login-1"))
	if res.DeliveryStatus != types.DeliveryStatusSuccessful || aws.ToInt32(res.StatusCode) != 200 || aws.ToString(res.MessageId) == "" {
		t.Fatalf("send result = %s %d %q, want SUCCESSFUL 200 with a MessageId", res.DeliveryStatus, aws.ToInt32(res.StatusCode), aws.ToString(res.MessageId))
	}
	entries := ts.outbox(t, testDestination)
	if len(entries) != 1 {
		t.Fatalf("outbox holds %d messages, want 1", len(entries))
	}
	code := codeInBody.FindString(entries[0].Body)
	if want := "This is your One Time Password: " + code + " from ExampleCorp"; entries[0].Body != want || len(code) != 6 {
		t.Errorf("message = %q, want %q with a 6-digit code", entries[0].Body, want)
	}
	if entries[0].ReferenceID != "login-1" || entries[0].Encoding != "GSM-7" || entries[0].Segments != 1 {
		t.Errorf("outbox entry: ReferenceId %q, %s in %d segments; want login-1, GSM-7 in 1", entries[0].ReferenceID, entries[0].Encoding, entries[0].Segments)
	}
	if entries[0].MessageID != aws.ToString(res.MessageId) {
		t.Errorf("outbox MessageId = %s, want %s", entries[0].MessageID, aws.ToString(res.MessageId))
	}

	t.Run("right code verifies once", func(t *testing.T) {
		if !verify(t, c, app, testDestination, "login-1", code) {
			t.Fatal("the right code did not verify")
		}
		if verify(t, c, app, testDestination, "login-1", code) {
			t.Fatal("a used code verified again")
		}
	})
	t.Run("wrong code then right code", func(t *testing.T) {
		send(t, c, app, sendParams("login-2"))
		code := ts.lastCode(t, testDestination)
		if verify(t, c, app, testDestination, "login-2", wrongCode(code)) {
			t.Fatal("a wrong code verified")
		}
		if !verify(t, c, app, testDestination, "login-2", code) {
			t.Fatal("the right code did not verify after one wrong guess")
		}
	})
	t.Run("exhausted after AllowedAttempts wrong codes", func(t *testing.T) {
		p := sendParams("login-3")
		p.AllowedAttempts = aws.Int32(2)
		send(t, c, app, p)
		code := ts.lastCode(t, testDestination)
		for range 2 {
			verify(t, c, app, testDestination, "login-3", wrongCode(code))
		}
		if verify(t, c, app, testDestination, "login-3", code) {
			t.Fatal("the right code verified after AllowedAttempts wrong guesses")
		}
	})
	t.Run("expired", func(t *testing.T) {
		p := sendParams("login-4")
		p.ValidityPeriod = aws.Int32(5)
		send(t, c, app, p)
		code := ts.lastCode(t, testDestination)
		ts.Clock.Advance(5*time.Minute + time.Second)
		if verify(t, c, app, testDestination, "login-4", code) {
			t.Fatal("an expired code verified")
		}
	})
	t.Run("replaced by a resend", func(t *testing.T) {
		send(t, c, app, sendParams("login-5"))
		first := ts.lastCode(t, testDestination)
		send(t, c, app, sendParams("login-5"))
		second := ts.lastCode(t, testDestination)
		if first != second && verify(t, c, app, testDestination, "login-5", first) {
			t.Fatal("the replaced code verified")
		}
		if !verify(t, c, app, testDestination, "login-5", second) {
			t.Fatal("the newest code did not verify")
		}
	})
	t.Run("scoped by reference and destination", func(t *testing.T) {
		send(t, c, app, sendParams("login-6"))
		code := ts.lastCode(t, testDestination)
		if verify(t, c, app, testDestination, "login-other", code) {
			t.Fatal("a code verified under another ReferenceId")
		}
		if verify(t, c, app, "+14255550100", "login-6", code) {
			t.Fatal("a code verified for another destination")
		}
		other := createApp(t, c, "other")
		if verify(t, c, other, testDestination, "login-6", code) {
			t.Fatal("a code verified in another application")
		}
		if !verify(t, c, app, testDestination, "login-6", code) {
			t.Fatal("the code did not verify in its own scope")
		}
	})
	t.Run("deleted application", func(t *testing.T) {
		doomed := createApp(t, c, "doomed")
		send(t, c, doomed, sendParams("login-7"))
		code := ts.lastCode(t, testDestination)
		if _, err := c.DeleteApp(context.Background(), &pinpoint.DeleteAppInput{ApplicationId: aws.String(doomed)}); err != nil {
			t.Fatal(err)
		}
		_, err := c.VerifyOTPMessage(context.Background(), &pinpoint.VerifyOTPMessageInput{
			ApplicationId: aws.String(doomed),
			VerifyOTPMessageRequestParameters: &types.VerifyOTPMessageRequestParameters{
				DestinationIdentity: aws.String(testDestination), ReferenceId: aws.String("login-7"), Otp: aws.String(code)},
		})
		wantAPIError(t, err, "NotFoundException")
	})
	t.Run("every language", func(t *testing.T) {
		for _, lang := range []string{"de-DE", "en-GB", "en-US", "es-419", "es-ES", "fr-CA", "fr-FR", "it-IT", "ja-JP", "ko-KR", "pt-BR", "zh-CN", "zh-TW"} {
			p := sendParams("lang-" + lang)
			p.Language = aws.String(lang)
			p.BrandName = aws.String("Acme")
			send(t, c, app, p)
			e := ts.outbox(t, testDestination)
			last := e[len(e)-1]
			if last.Language != lang || !strings.Contains(last.Body, "Acme") || codeInBody.FindString(last.Body) == "" {
				t.Errorf("%s: message %q (language %s) lacks the brand or the code", lang, last.Body, last.Language)
			}
			// Texts with a character outside GSM 03.38 must travel as UCS-2.
			wantEncoding := "GSM-7"
			switch lang {
			case "es-419", "pt-BR", "ja-JP", "ko-KR", "zh-CN", "zh-TW":
				wantEncoding = "UCS-2"
			}
			if last.Encoding != wantEncoding {
				t.Errorf("%s: encoding %s for %q, want %s", lang, last.Encoding, last.Body, wantEncoding)
			}
			if !verify(t, c, app, testDestination, "lang-"+lang, codeInBody.FindString(last.Body)) {
				t.Errorf("%s: the code did not verify", lang)
			}
		}
	})
}

func TestValidation(t *testing.T) {
	ts := startServer(t, nil)
	c := ts.client(t)
	app := createApp(t, c, "validation")
	valid := map[string]any{
		"Channel": "SMS", "BrandName": "ExampleCorp", "OriginationIdentity": testOrigination,
		"DestinationIdentity": testDestination, "ReferenceId": "ref",
	}
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for k, v := range valid {
			m[k] = v
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	sendCases := []struct {
		name  string
		body  map[string]any
		field string
	}{
		{"missing Channel", with("Channel", nil), "Channel"},
		{"Channel not SMS", with("Channel", "EMAIL"), "Channel"},
		{"missing BrandName", with("BrandName", nil), "BrandName"},
		{"BrandName too long", with("BrandName", strings.Repeat("b", 21)), "BrandName"},
		{"BrandName with a newline", with("BrandName", "Example\nCorp"), "BrandName"},
		{"BrandName with a NUL", with("BrandName", "\x00x"), "BrandName"},
		{"BrandName only spaces", with("BrandName", "   "), "BrandName"},
		{"BrandName with a line separator", with("BrandName", "A\u2028B"), "BrandName"},
		{"BrandName with a direction override", with("BrandName", "\u202eevil"), "BrandName"},
		{"BrandName only a zero-width space", with("BrandName", "\u200b"), "BrandName"},
		{"BrandName only a joiner", with("BrandName", "\u200d"), "BrandName"},
		{"OriginationIdentity with a leading space", with("OriginationIdentity", " ExampleCo"), "OriginationIdentity"},
		{"OriginationIdentity with a trailing space", with("OriginationIdentity", "ExampleCo "), "OriginationIdentity"},
		{"CodeLength too small", with("CodeLength", 4), "CodeLength"},
		{"CodeLength too large", with("CodeLength", 9), "CodeLength"},
		{"CodeLength not an integer", with("CodeLength", "6"), "CodeLength"},
		{"ValidityPeriod too small", with("ValidityPeriod", 4), "ValidityPeriod"},
		{"ValidityPeriod too large", with("ValidityPeriod", 61), "ValidityPeriod"},
		{"AllowedAttempts zero", with("AllowedAttempts", 0), "AllowedAttempts"},
		{"AllowedAttempts too large", with("AllowedAttempts", 6), "AllowedAttempts"},
		{"Language unknown", with("Language", "xx-XX"), "Language"},
		{"missing OriginationIdentity", with("OriginationIdentity", nil), "OriginationIdentity"},
		{"bad OriginationIdentity", with("OriginationIdentity", "not a sender!"), "OriginationIdentity"},
		{"missing DestinationIdentity", with("DestinationIdentity", nil), "DestinationIdentity"},
		{"DestinationIdentity with spaces", with("DestinationIdentity", "+1 425 555 0142"), "DestinationIdentity"},
		{"DestinationIdentity without plus", with("DestinationIdentity", "14255550142"), "DestinationIdentity"},
		{"DestinationIdentity not a valid number", with("DestinationIdentity", "+10000000000"), "DestinationIdentity"},
		{"missing ReferenceId", with("ReferenceId", nil), "ReferenceId"},
		{"ReferenceId too long", with("ReferenceId", strings.Repeat("r", 49)), "ReferenceId"},
		{"ReferenceId with a NUL", with("ReferenceId", "login\x0042"), "ReferenceId"},
		{"ReferenceId with a tab", with("ReferenceId", "a\tb"), "ReferenceId"},
		{"EntityId too long", with("EntityId", strings.Repeat("1", 65)), "EntityId"},
		{"EntityId with a newline", with("EntityId", "1\n2"), "EntityId"},
		{"TemplateId with a NUL", with("TemplateId", "1\x002"), "TemplateId"},
	}
	for _, tc := range sendCases {
		t.Run("send/"+tc.name, func(t *testing.T) {
			body, _ := json.Marshal(tc.body)
			resp, respBody := ts.do(t, http.MethodPost, "/v1/apps/"+app+"/otp", body, nil)
			wantErrorResponse(t, resp, respBody, http.StatusBadRequest, "BadRequestException", tc.field)
		})
	}
	verifyCases := []struct {
		name  string
		body  string
		field string
	}{
		{"missing DestinationIdentity", `{"ReferenceId":"ref","Otp":"123456"}`, "DestinationIdentity"},
		{"non-E.164 destination", `{"DestinationIdentity":"4255550142","ReferenceId":"ref","Otp":"123456"}`, "DestinationIdentity"},
		{"ReferenceId too long", `{"DestinationIdentity":"+14255550142","ReferenceId":"` + strings.Repeat("r", 49) + `","Otp":"123456"}`, "ReferenceId"},
		{"missing Otp", `{"DestinationIdentity":"+14255550142","ReferenceId":"ref"}`, "Otp"},
		{"non-digit Otp", `{"DestinationIdentity":"+14255550142","ReferenceId":"ref","Otp":"12a456"}`, "Otp"},
		{"Otp not a string", `{"DestinationIdentity":"+14255550142","ReferenceId":"ref","Otp":123456}`, "Otp"},
		{"ReferenceId with a NUL", `{"DestinationIdentity":"+14255550142","ReferenceId":"r\u0000","Otp":"123456"}`, "ReferenceId"},
		{"not UTF-8", `{"DestinationIdentity":"+14255550142","ReferenceId":"r` + "\xff" + `","Otp":"123456"}`, "UTF-8"},
		{"a lone surrogate", `{"DestinationIdentity":"+14255550142","ReferenceId":"r\ud800","Otp":"123456"}`, "surrogate"},
		{"not JSON", `{"DestinationIdentity":`, "JSON"},
		{"empty body", ``, "empty"},
	}
	for _, tc := range verifyCases {
		t.Run("verify/"+tc.name, func(t *testing.T) {
			resp, respBody := ts.do(t, http.MethodPost, "/v1/apps/"+app+"/verify-otp", []byte(tc.body), nil)
			wantErrorResponse(t, resp, respBody, http.StatusBadRequest, "BadRequestException", tc.field)
		})
	}
	t.Run("CreateApp without Name", func(t *testing.T) {
		resp, body := ts.do(t, http.MethodPost, "/v1/apps", []byte(`{"tags":{}}`), nil)
		wantErrorResponse(t, resp, body, http.StatusBadRequest, "BadRequestException", "Name")
	})
	for _, tc := range []struct{ name, body, want string }{
		{"a Name with a newline", `{"Name":"a\nb"}`, "Name"},
		{"a tag key AWS reserves", `{"Name":"x","tags":{"AWS:team":"a"}}`, "reserves"},
		{"a tag value with a NUL", `{"Name":"x","tags":{"team":"a\u0000"}}`, "control characters"},
		{"a tag value not a string", `{"Name":"x","tags":{"team":1}}`, "Each value of tags"},
	} {
		t.Run("CreateApp with "+tc.name, func(t *testing.T) {
			resp, body := ts.do(t, http.MethodPost, "/v1/apps", []byte(tc.body), nil)
			wantErrorResponse(t, resp, body, http.StatusBadRequest, "BadRequestException", tc.want)
		})
	}
	t.Run("a malformed amz-sdk-invocation-id", func(t *testing.T) {
		body, _ := json.Marshal(valid)
		for _, id := range []string{strings.Repeat("a", 65), "caf\xe9"} {
			resp, respBody := ts.do(t, http.MethodPost, "/v1/apps/"+app+"/otp", body, http.Header{"Amz-Sdk-Invocation-Id": {id}})
			wantErrorResponse(t, resp, respBody, http.StatusBadRequest, "BadRequestException", "amz-sdk-invocation-id")
		}
	})
	t.Run("a compressed body", func(t *testing.T) {
		body, _ := json.Marshal(valid)
		for _, ce := range [][]string{{"gzip"}, {"identity", "gzip"}, {"identity, br"}} {
			resp, respBody := ts.do(t, http.MethodPost, "/v1/apps/"+app+"/otp", body, http.Header{"Content-Encoding": ce})
			wantErrorResponse(t, resp, respBody, http.StatusBadRequest, "BadRequestException", "Content-Encoding")
		}
	})
	t.Run("unknown application", func(t *testing.T) {
		missing := "0123456789abcdef0123456789abcdef"
		_, err := c.SendOTPMessage(context.Background(), &pinpoint.SendOTPMessageInput{ApplicationId: aws.String(missing), SendOTPMessageRequestParameters: sendParams("r")})
		wantAPIError(t, err, "NotFoundException", missing)
		_, err = c.VerifyOTPMessage(context.Background(), &pinpoint.VerifyOTPMessageInput{ApplicationId: aws.String(missing),
			VerifyOTPMessageRequestParameters: &types.VerifyOTPMessageRequestParameters{DestinationIdentity: aws.String(testDestination), ReferenceId: aws.String("r"), Otp: aws.String("123456")}})
		wantAPIError(t, err, "NotFoundException")
		_, err = c.GetSmsChannel(context.Background(), &pinpoint.GetSmsChannelInput{ApplicationId: aws.String("not-an-id")})
		wantAPIError(t, err, "NotFoundException")
	})
	t.Run("unknown route", func(t *testing.T) {
		resp, body := ts.do(t, http.MethodGet, "/v1/campaigns", nil, nil)
		wantErrorResponse(t, resp, body, http.StatusNotFound, "NotFoundException", "path")
	})
	t.Run("unclean paths", func(t *testing.T) {
		for _, p := range []string{"/v1/apps//otp", "/v1/apps/", "/v1/apps/x/../" + app, "//v1/apps"} {
			resp, body := ts.do(t, http.MethodGet, p, nil, nil)
			wantErrorResponse(t, resp, body, http.StatusNotFound, "NotFoundException", "path")
		}
	})
	t.Run("method not allowed on an operator endpoint", func(t *testing.T) {
		resp, err := http.Post(ts.URL+"/healthz", "application/json", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		wantErrorResponse(t, resp, body, http.StatusMethodNotAllowed, "MethodNotAllowedException", "method")
	})
	t.Run("trunk prefix after the country code", func(t *testing.T) {
		body := []byte(`{"Channel":"SMS","BrandName":"B","OriginationIdentity":"+18555550142","DestinationIdentity":"+112065550100","ReferenceId":"r"}`)
		resp, respBody := ts.do(t, http.MethodPost, "/v1/apps/"+app+"/otp", body, nil)
		wantErrorResponse(t, resp, respBody, http.StatusBadRequest, "BadRequestException", "+12065550100")
	})
	t.Run("method not allowed", func(t *testing.T) {
		resp, body := ts.do(t, http.MethodPut, "/v1/apps/"+app+"/otp", []byte(`{}`), nil)
		wantErrorResponse(t, resp, body, http.StatusMethodNotAllowed, "MethodNotAllowedException", "method")
		if got := resp.Header.Get("Allow"); got != "POST" {
			t.Errorf("Allow = %q, want POST", got)
		}
	})
	t.Run("payload too large", func(t *testing.T) {
		big := []byte(`{"Name":"` + strings.Repeat("x", 2<<20) + `"}`)
		resp, body := ts.do(t, http.MethodPost, "/v1/apps", big, nil)
		wantErrorResponse(t, resp, body, http.StatusRequestEntityTooLarge, "PayloadTooLargeException", "bytes")
	})
	t.Run("unsigned", func(t *testing.T) {
		resp, err := http.Get(ts.URL + "/v1/apps")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		wantErrorResponse(t, resp, body, http.StatusForbidden, "MissingAuthenticationTokenException", "Missing Authentication Token")
	})
}

// wantErrorResponse checks the AWS error format on the wire.
func wantErrorResponse(t *testing.T, resp *http.Response, body []byte, status int, code, fragment string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Errorf("status = %d, want %d (body %s)", resp.StatusCode, status, body)
	}
	if got := resp.Header.Get("X-Amzn-ErrorType"); got != code {
		t.Errorf("X-Amzn-ErrorType = %q, want %q", got, code)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	reqID := resp.Header.Get("x-amzn-RequestId")
	var e struct {
		Message   string `json:"Message"`
		RequestID string `json:"RequestID"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body %q is not JSON: %v", body, err)
	}
	if e.RequestID == "" || e.RequestID != reqID {
		t.Errorf("body RequestID = %q, header x-amzn-RequestId = %q, want equal and non-empty", e.RequestID, reqID)
	}
	if !strings.Contains(e.Message, fragment) {
		t.Errorf("Message = %q, want it to mention %q", e.Message, fragment)
	}
	var raw map[string]any
	json.Unmarshal(body, &raw)
	for _, k := range []string{"code", "Code", "__type"} {
		if _, ok := raw[k]; ok {
			t.Errorf("error body has a %q key: %s", k, body)
		}
	}
}

func TestRetryIsNotSentTwice(t *testing.T) {
	ts := startServer(t, nil)
	c := ts.client(t)
	app := createApp(t, c, "retry")
	body := []byte(`{"Channel":"SMS","BrandName":"ExampleCorp","OriginationIdentity":"+18555550142","DestinationIdentity":"+14255550142","ReferenceId":"retry"}`)
	header := http.Header{"Amz-Sdk-Invocation-Id": {"6f1d7c1e-0f7a-4a4e-9a1b-2f7d5c0e9b11"}}
	var first, second struct {
		Result map[string]struct{ MessageId string }
	}
	resp, b := ts.do(t, http.MethodPost, "/v1/apps/"+app+"/otp", body, header)
	if resp.StatusCode != 200 || json.Unmarshal(b, &first) != nil {
		t.Fatalf("first send: %d %s", resp.StatusCode, b)
	}
	resp, b = ts.do(t, http.MethodPost, "/v1/apps/"+app+"/otp", body, header)
	if resp.StatusCode != 200 || json.Unmarshal(b, &second) != nil {
		t.Fatalf("retried send: %d %s", resp.StatusCode, b)
	}
	if a, b := first.Result[testDestination].MessageId, second.Result[testDestination].MessageId; a == "" || a != b {
		t.Errorf("retry MessageId = %q, first %q: want the first result repeated", b, a)
	}
	if n := len(ts.outbox(t, testDestination)); n != 1 {
		t.Errorf("outbox holds %d messages after a retry, want 1", n)
	}
	// The same invocation ID with other parameters is another request.
	other := bytes.Replace(body, []byte(`"retry"`), []byte(`"retry-2"`), 1)
	ts.do(t, http.MethodPost, "/v1/apps/"+app+"/otp", other, header)
	if n := len(ts.outbox(t, testDestination)); n != 2 {
		t.Errorf("outbox holds %d messages, want 2 after a send with other parameters", n)
	}
	// Without the header, every send is sent.
	ts.do(t, http.MethodPost, "/v1/apps/"+app+"/otp", body, nil)
	if n := len(ts.outbox(t, testDestination)); n != 3 {
		t.Errorf("outbox holds %d messages, want 3", n)
	}
}

func TestDestinationFailureBudget(t *testing.T) {
	ts := startServer(t, func(c *config) { c.FailureLimit = 4 })
	c := ts.client(t)
	app := createApp(t, c, "budget")
	// Two codes, two wrong guesses each: resending does not reset the budget.
	for _, ref := range []string{"a", "b"} {
		send(t, c, app, sendParams(ref))
		code := ts.lastCode(t, testDestination)
		for range 2 {
			if verify(t, c, app, testDestination, ref, wrongCode(code)) {
				t.Fatal("a wrong code verified")
			}
		}
	}
	send2, err := c.SendOTPMessage(context.Background(), &pinpoint.SendOTPMessageInput{ApplicationId: aws.String(app), SendOTPMessageRequestParameters: sendParams("c")})
	wantAPIError(t, err, "TooManyRequestsException", testDestination)
	if send2 != nil {
		t.Errorf("a send went out while the destination was locked out")
	}
	// The live code of b is right but the destination is locked out.
	if verify(t, c, app, testDestination, "b", ts.lastCode(t, testDestination)) {
		t.Error("a code verified while its destination's failure budget was exhausted")
	}
	// Other destinations are not affected.
	p := sendParams("a")
	p.DestinationIdentity = aws.String("+14255550100")
	if res := send(t, c, app, p); res.DeliveryStatus != types.DeliveryStatusSuccessful {
		t.Errorf("send to another destination: %s", res.DeliveryStatus)
	}
	ts.Clock.Advance(time.Hour + time.Second)
	if res := send(t, c, app, sendParams("c")); res.DeliveryStatus != types.DeliveryStatusSuccessful {
		t.Errorf("send after the window: %s", res.DeliveryStatus)
	}
	if !verify(t, c, app, testDestination, "c", ts.lastCode(t, testDestination)) {
		t.Error("the right code did not verify once the window had passed")
	}
}

// metricValue reads one sample from /metrics.
func (ts *testServer) metricValue(t *testing.T, series string) float64 {
	t.Helper()
	v, ok := ts.metrics(t)[series]
	if !ok {
		t.Fatalf("metric %s not found", series)
	}
	return v
}

// metrics scrapes /metrics once and returns each series' value by its
// name and labels, as the text format writes them.
func (ts *testServer) metrics(t *testing.T) map[string]float64 {
	t.Helper()
	resp, err := http.Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	values := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		series, v, ok := strings.Cut(line, " ")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		var f float64
		fmt.Sscan(v, &f)
		values[series] = f
	}
	return values
}

func TestConcurrentVerification(t *testing.T) {
	ts := startServer(t, func(c *config) { c.FailureLimit = 1000 })
	c := ts.client(t)
	app := createApp(t, c, "race")

	t.Run("100 wrong guesses count exactly AllowedAttempts", func(t *testing.T) {
		send(t, c, app, sendParams("wrong"))
		code := ts.lastCode(t, testDestination)
		before := ts.metricValue(t, `otpd_otp_verifications_total{outcome="wrong"}`)
		var wg sync.WaitGroup
		for range 100 {
			wg.Go(func() {
				if verify(t, c, app, testDestination, "wrong", wrongCode(code)) {
					t.Error("a wrong code verified")
				}
			})
		}
		wg.Wait()
		if got := ts.metricValue(t, `otpd_otp_verifications_total{outcome="wrong"}`) - before; got != 3 {
			t.Errorf("wrong guesses counted = %v, want exactly 3 (AllowedAttempts)", got)
		}
		if verify(t, c, app, testDestination, "wrong", code) {
			t.Error("the right code verified after the attempts were used up")
		}
	})
	t.Run("of concurrent right guesses exactly one wins", func(t *testing.T) {
		send(t, c, app, sendParams("right"))
		code := ts.lastCode(t, testDestination)
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins := 0
		for range 50 {
			wg.Go(func() {
				if verify(t, c, app, testDestination, "right", code) {
					mu.Lock()
					wins++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if wins != 1 {
			t.Errorf("%d concurrent verifications of the right code succeeded, want exactly 1", wins)
		}
	})
}

func TestHealthAndMetrics(t *testing.T) {
	ts := startServer(t, nil)
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("GET %s = %d, want 200 without authentication", path, resp.StatusCode)
		}
		if resp.Header.Get("x-amzn-RequestId") == "" {
			t.Errorf("GET %s has no x-amzn-RequestId", path)
		}
	}
	c := ts.client(t)
	app := createApp(t, c, "metrics")
	send(t, c, app, sendParams("m"))
	code := ts.lastCode(t, testDestination)
	verify(t, c, app, testDestination, "m", code)
	if v := ts.metricValue(t, `otpd_otp_sends_total{delivery_status="SUCCESSFUL"}`); v != 1 {
		t.Errorf("sends SUCCESSFUL = %v, want 1", v)
	}
	if v := ts.metricValue(t, `otpd_otp_verifications_total{outcome="valid"}`); v != 1 {
		t.Errorf("verifications valid = %v, want 1", v)
	}
	if v := ts.metricValue(t, `otpd_requests_total{operation="SendOTPMessage",status="200"}`); v != 1 {
		t.Errorf("requests SendOTPMessage 200 = %v, want 1", v)
	}
	if v := ts.metricValue(t, `otpd_store_call_duration_seconds_count{method="VerifyCode"}`); v != 1 {
		t.Errorf("VerifyCode calls of the store timed = %v, want 1", v)
	}
	// The background purge, whose first round runs at start, is timed too.
	for deadline := time.Now().Add(5 * time.Second); ts.metrics(t)[`otpd_store_call_duration_seconds_count{method="Purge"}`] < 1; {
		if time.Now().After(deadline) {
			t.Fatal("no Purge call of the store timed 5 s after the start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if v := ts.metricValue(t, `otpd_store_call_failures_total{method="Purge"}`); v != 0 {
		t.Errorf("Purge calls of the store failed = %v, want 0", v)
	}
	// The embedded store's writer: the application, the send and the
	// verification were written, committed and flushed.
	writes, commits := ts.metricValue(t, "otpd_store_writes_total"), ts.metricValue(t, "otpd_store_commits_total")
	// Its flushes by duration, from one scrape: buckets that never
	// decrease, and if all flushes kept within a bound, their total time
	// within as many times that bound.
	scrape := ts.metrics(t)
	flushes, flushTime := scrape["otpd_store_log_flush_duration_seconds_count"], scrape["otpd_store_log_flush_duration_seconds_sum"]
	if writes < 3 || commits < 1 || commits > writes || flushes < 1 || flushes > commits || flushTime <= 0 {
		t.Errorf("store writer: %v writes, %v commits, %v flushes in %vs", writes, commits, flushes, flushTime)
	}
	var below float64
	for _, bound := range sqlite.FlushBounds {
		le := strconv.FormatFloat(bound.Seconds(), 'g', -1, 64)
		n, ok := scrape[`otpd_store_log_flush_duration_seconds_bucket{le="`+le+`"}`]
		if !ok || n < below || n > flushes {
			t.Errorf("flushes within %s s: %v (found: %v), after %v within a lower bound, of %v", le, n, ok, below, flushes)
		}
		if n == flushes && bound.Seconds()*flushes < flushTime {
			t.Errorf("all %v flushes within %s s, yet they took %v s in all", flushes, le, flushTime)
		}
		below = n
	}
	if v := ts.metricValue(t, "otpd_store_checkpoint_failures_total"); v != 0 {
		t.Errorf("checkpoint failures = %v, want 0", v)
	}
	resp, err := http.Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(body), code) && len(code) >= 6 && strings.Contains(string(body), "="+code) {
		t.Errorf("the metrics mention the code %s", code)
	}
}

// The signed listings check their query parameters as `otpd outbox` and
// `otpd messages` check their flags: a destination must be an E.164 number
// and a limit 1 to pinpointapi.MaxListing; anything else is a 400 that
// names the parameter.
func TestListingParameters(t *testing.T) {
	ts := startServer(t, nil)
	for _, path := range []string{"/_otpd/outbox", "/_otpd/messages"} {
		for _, c := range []struct {
			query, param string // param: "" when the query is valid
		}{
			{"", ""},
			{"?destination=%2B14255550142&limit=1", ""},
			{fmt.Sprintf("?limit=%d", pinpointapi.MaxListing), ""},
			{"?destination=abc", "destination"},
			{"?destination=14255550142", "destination"},
			{"?limit=0", "limit"},
			{"?limit=-1", "limit"},
			{fmt.Sprintf("?limit=%d", pinpointapi.MaxListing+1), "limit"},
			{"?limit=x", "limit"},
		} {
			resp, body := ts.do(t, http.MethodGet, path+c.query, nil, nil)
			switch {
			case c.param == "" && resp.StatusCode != http.StatusOK:
				t.Errorf("GET %s%s: %d %s, want 200", path, c.query, resp.StatusCode, body)
			case c.param != "" && (resp.StatusCode != http.StatusBadRequest || resp.Header.Get("X-Amzn-ErrorType") != "BadRequestException" ||
				!strings.Contains(string(body), c.param+" must be")):
				t.Errorf("GET %s%s: %d %s %s, want a 400 BadRequestException naming %s", path, c.query, resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"), body, c.param)
			}
		}
	}
}
