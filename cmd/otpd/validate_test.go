package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/pinpoint"
	"github.com/aws/aws-sdk-go-v2/service/pinpoint/types"
)

// validateFields flattens a NumberValidateResponse into the fields it holds,
// so that a test also sees which ones were left out.
func validateFields(r *types.NumberValidateResponse) map[string]string {
	m := map[string]string{}
	for name, v := range map[string]*string{
		"Carrier": r.Carrier, "City": r.City, "CleansedPhoneNumberE164": r.CleansedPhoneNumberE164,
		"CleansedPhoneNumberNational": r.CleansedPhoneNumberNational, "Country": r.Country,
		"CountryCodeIso2": r.CountryCodeIso2, "CountryCodeNumeric": r.CountryCodeNumeric, "County": r.County,
		"OriginalCountryCodeIso2": r.OriginalCountryCodeIso2, "OriginalPhoneNumber": r.OriginalPhoneNumber,
		"PhoneType": r.PhoneType, "Timezone": r.Timezone, "ZipCode": r.ZipCode,
	} {
		if v != nil {
			m[name] = *v
		}
	}
	if r.PhoneTypeCode != nil {
		m["PhoneTypeCode"] = strconv.Itoa(int(*r.PhoneTypeCode))
	}
	return m
}

func TestPhoneNumberValidate(t *testing.T) {
	ts := startServer(t, nil)
	c := ts.client(t)
	for _, tc := range []struct {
		name, number, iso string
		want              map[string]string
	}{
		{"US number (fixed line or mobile)", "+14255550142", "", map[string]string{
			"CleansedPhoneNumberE164": "+14255550142", "CleansedPhoneNumberNational": "4255550142",
			"Country": "United States", "CountryCodeIso2": "US", "CountryCodeNumeric": "1",
			"City": "Washington State", "Timezone": "America/Los_Angeles",
			"PhoneType": "OTHER", "PhoneTypeCode": "4",
		}},
		{"UK mobile", "+447400123456", "", map[string]string{
			"CleansedPhoneNumberE164": "+447400123456", "CleansedPhoneNumberNational": "07400123456",
			"Country": "United Kingdom", "CountryCodeIso2": "GB", "CountryCodeNumeric": "44",
			"Carrier": "Three", "PhoneType": "MOBILE", "PhoneTypeCode": "0",
		}},
		{"UK landline", "+442079460000", "", map[string]string{
			"CleansedPhoneNumberE164": "+442079460000", "CleansedPhoneNumberNational": "02079460000",
			"Country": "United Kingdom", "CountryCodeIso2": "GB", "CountryCodeNumeric": "44",
			"City": "London", "Timezone": "Europe/London", "PhoneType": "LANDLINE", "PhoneTypeCode": "1",
		}},
		{"German landline in national format", "030 123456", "de", map[string]string{
			"OriginalCountryCodeIso2": "DE",
			"CleansedPhoneNumberE164": "+4930123456", "CleansedPhoneNumberNational": "030123456",
			"Country": "Germany", "CountryCodeIso2": "DE", "CountryCodeNumeric": "49",
			"City": "Berlin", "Timezone": "Europe/Berlin", "PhoneType": "LANDLINE", "PhoneTypeCode": "1",
		}},
		{"French mobile", "+33 6 12 34 56 78", "", map[string]string{
			"CleansedPhoneNumberE164": "+33612345678", "CleansedPhoneNumberNational": "0612345678",
			"Country": "France", "CountryCodeIso2": "FR", "CountryCodeNumeric": "33",
			"Carrier": "SFR", "Timezone": "Europe/Paris", "PhoneType": "MOBILE", "PhoneTypeCode": "0",
		}},
		{"Japanese mobile", "+819012345678", "", map[string]string{
			"CleansedPhoneNumberE164": "+819012345678", "CleansedPhoneNumberNational": "09012345678",
			"Country": "Japan", "CountryCodeIso2": "JP", "CountryCodeNumeric": "81",
			"Carrier": "KDDI", "Timezone": "Asia/Tokyo", "PhoneType": "MOBILE", "PhoneTypeCode": "0",
		}},
		{"UK VoIP", "+445612345678", "", map[string]string{
			"CleansedPhoneNumberE164": "+445612345678", "CleansedPhoneNumberNational": "05612345678",
			"Country": "United Kingdom", "CountryCodeIso2": "GB", "CountryCodeNumeric": "44",
			"PhoneType": "VOIP", "PhoneTypeCode": "2",
		}},
		{"US toll-free", "+18005550199", "", map[string]string{
			"CleansedPhoneNumberE164": "+18005550199", "CleansedPhoneNumberNational": "8005550199",
			"Country": "United States", "CountryCodeIso2": "US", "CountryCodeNumeric": "1",
			"PhoneType": "OTHER", "PhoneTypeCode": "4",
		}},
		{"not a valid number", "+10000000000", "", map[string]string{
			"CountryCodeNumeric": "1", "PhoneType": "INVALID", "PhoneTypeCode": "3",
		}},
		{"not a number at all", "call me maybe", "us", map[string]string{
			"OriginalCountryCodeIso2": "US", "PhoneType": "INVALID", "PhoneTypeCode": "3",
		}},
		{"national format without IsoCountryCode", "07400 123456", "", map[string]string{
			"PhoneType": "INVALID", "PhoneTypeCode": "3",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := &types.NumberValidateRequest{PhoneNumber: aws.String(tc.number)}
			if tc.iso != "" {
				req.IsoCountryCode = aws.String(tc.iso)
			}
			out, err := c.PhoneNumberValidate(context.Background(), &pinpoint.PhoneNumberValidateInput{NumberValidateRequest: req})
			if err != nil {
				t.Fatalf("PhoneNumberValidate(%q): %v", tc.number, err)
			}
			if out.NumberValidateResponse == nil {
				t.Fatal("no NumberValidateResponse")
			}
			got := validateFields(out.NumberValidateResponse)
			tc.want["OriginalPhoneNumber"] = tc.number
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
			for k, v := range got {
				if _, ok := tc.want[k]; !ok {
					t.Errorf("%s = %q, want it left out", k, v)
				}
			}
		})
	}
	if n := ts.metricValue(t, `otpd_requests_total{operation="PhoneNumberValidate",status="200"}`); n < 1 {
		t.Errorf("otpd_requests_total for PhoneNumberValidate = %v, want the requests counted", n)
	}
}

// TestPhoneNumberValidateWire checks the bytes: the bare response object,
// no null and no empty string for a field the data cannot fill, and
// PhoneTypeCode as a JSON number even when it is 0.
func TestPhoneNumberValidateWire(t *testing.T) {
	ts := startServer(t, nil)
	resp, body := ts.do(t, http.MethodPost, "/v1/phone/number/validate", []byte(`{"PhoneNumber":"+447400123456"}`), nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	if resp.Header.Get("x-amzn-RequestId") == "" {
		t.Error("no x-amzn-RequestId header")
	}
	var raw map[string]any
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatalf("body %s: %v", body, err)
	}
	want := map[string]any{
		"Carrier": "Three", "CleansedPhoneNumberE164": "+447400123456", "CleansedPhoneNumberNational": "07400123456",
		"Country": "United Kingdom", "CountryCodeIso2": "GB", "CountryCodeNumeric": "44",
		"OriginalPhoneNumber": "+447400123456", "PhoneType": "MOBILE", "PhoneTypeCode": float64(0),
	}
	for k, v := range raw {
		if want[k] != v {
			t.Errorf("%s = %#v, want %#v (body %s)", k, v, want[k], body)
		}
	}
	for k := range want {
		if _, ok := raw[k]; !ok {
			t.Errorf("%s is missing (body %s)", k, body)
		}
	}
}

func TestPhoneNumberValidateRejects(t *testing.T) {
	ts := startServer(t, nil)
	c := ts.client(t)
	const path = "/v1/phone/number/validate"
	for _, tc := range []struct {
		name, body, field string
	}{
		{"missing PhoneNumber", `{}`, "PhoneNumber is required"},
		{"null PhoneNumber", `{"PhoneNumber":null}`, "PhoneNumber is required"},
		{"empty PhoneNumber", `{"PhoneNumber":""}`, "PhoneNumber is required"},
		{"only IsoCountryCode", `{"IsoCountryCode":"US"}`, "PhoneNumber is required"},
		{"wrapped in its member name", `{"NumberValidateRequest":{"PhoneNumber":"+14255550142"}}`, "PhoneNumber is required"},
		{"PhoneNumber not a string", `{"PhoneNumber":14255550142}`, "PhoneNumber must be a string"},
		{"IsoCountryCode of three letters", `{"PhoneNumber":"4255550142","IsoCountryCode":"USA"}`, "IsoCountryCode"},
		{"IsoCountryCode of one letter", `{"PhoneNumber":"4255550142","IsoCountryCode":"U"}`, "IsoCountryCode"},
		{"IsoCountryCode of digits", `{"PhoneNumber":"4255550142","IsoCountryCode":"12"}`, "IsoCountryCode"},
		{"IsoCountryCode private use", `{"PhoneNumber":"4255550142","IsoCountryCode":"ZZ"}`, "IsoCountryCode"},
		{"IsoCountryCode not a string", `{"PhoneNumber":"4255550142","IsoCountryCode":840}`, "IsoCountryCode must be a string"},
		{"not JSON", `{"PhoneNumber":`, "JSON"},
		{"empty body", ``, "empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := ts.do(t, http.MethodPost, path, []byte(tc.body), nil)
			wantErrorResponse(t, resp, body, http.StatusBadRequest, "BadRequestException", tc.field)
		})
	}
	t.Run("SDK without PhoneNumber", func(t *testing.T) {
		_, err := c.PhoneNumberValidate(context.Background(), &pinpoint.PhoneNumberValidateInput{
			NumberValidateRequest: &types.NumberValidateRequest{IsoCountryCode: aws.String("US")},
		})
		wantAPIError(t, err, "BadRequestException", "PhoneNumber")
	})
	t.Run("SDK with a bad IsoCountryCode", func(t *testing.T) {
		_, err := c.PhoneNumberValidate(context.Background(), &pinpoint.PhoneNumberValidateInput{
			NumberValidateRequest: &types.NumberValidateRequest{PhoneNumber: aws.String("+14255550142"), IsoCountryCode: aws.String("United States")},
		})
		wantAPIError(t, err, "BadRequestException", "IsoCountryCode", "United States")
	})
	t.Run("method not allowed", func(t *testing.T) {
		resp, body := ts.do(t, http.MethodGet, path, nil, nil)
		wantErrorResponse(t, resp, body, http.StatusMethodNotAllowed, "MethodNotAllowedException", "method")
		if got := resp.Header.Get("Allow"); got != "POST" {
			t.Errorf("Allow = %q, want POST", got)
		}
	})
	t.Run("unsigned", func(t *testing.T) {
		resp, err := http.Post(ts.URL+path, "application/json", strings.NewReader(`{"PhoneNumber":"+14255550142"}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		wantErrorResponse(t, resp, body, http.StatusForbidden, "MissingAuthenticationTokenException", "Missing Authentication Token")
	})
}
