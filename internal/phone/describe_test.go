package phone

import (
	"strings"
	"testing"
)

func TestDescribe(t *testing.T) {
	for _, tc := range []struct {
		name, number, iso string
		want              Description
	}{
		{
			name: "US number: fixed line or mobile is OTHER", number: "+14255550142",
			want: Description{
				Type: Other, E164: "+14255550142", National: "4255550142", CallingCode: 1,
				ISOCountryCode: "US", Country: "United States", City: "Washington State", TimeZone: "America/Los_Angeles",
			},
		},
		{
			name: "US number in New York", number: "+12124567890",
			want: Description{
				Type: Other, E164: "+12124567890", National: "2124567890", CallingCode: 1,
				ISOCountryCode: "US", Country: "United States", City: "New York, NY", TimeZone: "America/New_York",
			},
		},
		{
			name: "Canadian number: its own country within calling code 1", number: "+16135550123",
			want: Description{
				Type: Other, E164: "+16135550123", National: "6135550123", CallingCode: 1,
				ISOCountryCode: "CA", Country: "Canada", City: "Ontario", TimeZone: "America/Toronto",
			},
		},
		{
			name: "UK mobile with its carrier, no city, three candidate time zones", number: "+447400123456",
			want: Description{
				Type: Mobile, E164: "+447400123456", National: "07400123456", CallingCode: 44,
				ISOCountryCode: "GB", Country: "United Kingdom", Carrier: "Three",
			},
		},
		{
			name: "Guernsey mobile under +44", number: "+447911123456",
			want: Description{
				Type: Mobile, E164: "+447911123456", National: "07911123456", CallingCode: 44,
				ISOCountryCode: "GG", Country: "Guernsey", Carrier: "JT",
			},
		},
		{
			name: "UK landline in London", number: "+442079460000",
			want: Description{
				Type: Landline, E164: "+442079460000", National: "02079460000", CallingCode: 44,
				ISOCountryCode: "GB", Country: "United Kingdom", City: "London", TimeZone: "Europe/London",
			},
		},
		{
			name: "German landline in Berlin", number: "+4930123456",
			want: Description{
				Type: Landline, E164: "+4930123456", National: "030123456", CallingCode: 49,
				ISOCountryCode: "DE", Country: "Germany", City: "Berlin", TimeZone: "Europe/Berlin",
			},
		},
		{
			name: "French landline: the data names no city in France", number: "+33142685300",
			want: Description{
				Type: Landline, E164: "+33142685300", National: "0142685300", CallingCode: 33,
				ISOCountryCode: "FR", Country: "France", TimeZone: "Europe/Paris",
			},
		},
		{
			name: "French mobile", number: "+33612345678",
			want: Description{
				Type: Mobile, E164: "+33612345678", National: "0612345678", CallingCode: 33,
				ISOCountryCode: "FR", Country: "France", Carrier: "SFR", TimeZone: "Europe/Paris",
			},
		},
		{
			name: "German mobile", number: "+4915123456789",
			want: Description{
				Type: Mobile, E164: "+4915123456789", National: "015123456789", CallingCode: 49,
				ISOCountryCode: "DE", Country: "Germany", Carrier: "T-Mobile", TimeZone: "Europe/Berlin",
			},
		},
		{
			name: "Japanese mobile", number: "+819012345678",
			want: Description{
				Type: Mobile, E164: "+819012345678", National: "09012345678", CallingCode: 81,
				ISOCountryCode: "JP", Country: "Japan", Carrier: "KDDI", TimeZone: "Asia/Tokyo",
			},
		},
		{
			name: "Brazilian mobile: geographic, so it has a city", number: "+5511987654321",
			want: Description{
				Type: Mobile, E164: "+5511987654321", National: "11987654321", CallingCode: 55,
				ISOCountryCode: "BR", Country: "Brazil", Carrier: "TIM", City: "São Paulo", TimeZone: "America/Sao_Paulo",
			},
		},
		{
			name: "US toll-free: OTHER, no place, no single time zone", number: "+18005550199",
			want: Description{
				Type: Other, E164: "+18005550199", National: "8005550199", CallingCode: 1,
				ISOCountryCode: "US", Country: "United States",
			},
		},
		{
			name: "UK freephone", number: "+448001234567",
			want: Description{
				Type: Other, E164: "+448001234567", National: "08001234567", CallingCode: 44,
				ISOCountryCode: "GB", Country: "United Kingdom",
			},
		},
		{
			name: "UK pager", number: "+447640123456",
			want: Description{
				Type: Other, E164: "+447640123456", National: "07640123456", CallingCode: 44,
				ISOCountryCode: "GB", Country: "United Kingdom",
			},
		},
		{
			name: "UK VoIP", number: "+445612345678",
			want: Description{
				Type: VoIP, E164: "+445612345678", National: "05612345678", CallingCode: 44,
				ISOCountryCode: "GB", Country: "United Kingdom",
			},
		},
		{
			name: "French VoIP", number: "+33912345678",
			want: Description{
				Type: VoIP, E164: "+33912345678", National: "0912345678", CallingCode: 33,
				ISOCountryCode: "FR", Country: "France", TimeZone: "Europe/Paris",
			},
		},
		{
			name: "non-geographic international freephone: no country", number: "+80012345678",
			want: Description{Type: Other, E164: "+80012345678", National: "12345678", CallingCode: 800},
		},
		{
			name: "national format with IsoCountryCode, in lower case", number: "020 7946 0000", iso: "gb",
			want: Description{
				OriginalISOCountryCode: "GB",
				Type:                   Landline, E164: "+442079460000", National: "02079460000", CallingCode: 44,
				ISOCountryCode: "GB", Country: "United Kingdom", City: "London", TimeZone: "Europe/London",
			},
		},
		{
			name: "US national format with punctuation", number: "(425) 555-0142", iso: "US",
			want: Description{
				OriginalISOCountryCode: "US",
				Type:                   Other, E164: "+14255550142", National: "4255550142", CallingCode: 1,
				ISOCountryCode: "US", Country: "United States", City: "Washington State", TimeZone: "America/Los_Angeles",
			},
		},
		{
			name: "international prefix dialled from IsoCountryCode's country", number: "0044 20 7946 0000", iso: "FR",
			want: Description{
				OriginalISOCountryCode: "FR",
				Type:                   Landline, E164: "+442079460000", National: "02079460000", CallingCode: 44,
				ISOCountryCode: "GB", Country: "United Kingdom", City: "London", TimeZone: "Europe/London",
			},
		},
		{
			name: "a '+' number keeps its own country whatever IsoCountryCode says", number: "+33612345678", iso: "DE",
			want: Description{
				OriginalISOCountryCode: "DE",
				Type:                   Mobile, E164: "+33612345678", National: "0612345678", CallingCode: 33,
				ISOCountryCode: "FR", Country: "France", Carrier: "SFR", TimeZone: "Europe/Paris",
			},
		},
		{
			name: "trunk prefix after the country code is cleansed away", number: "+4402079460000",
			want: Description{
				Type: Landline, E164: "+442079460000", National: "02079460000", CallingCode: 44,
				ISOCountryCode: "GB", Country: "United Kingdom", City: "London", TimeZone: "Europe/London",
			},
		},
		{
			name: "an extension is dropped", number: "+442079460000 ext. 123",
			want: Description{
				Type: Landline, E164: "+442079460000", National: "02079460000", CallingCode: 44,
				ISOCountryCode: "GB", Country: "United Kingdom", City: "London", TimeZone: "Europe/London",
			},
		},
		{
			name: "invalid number under a shared calling code", number: "+10000000000",
			want: Description{Type: Invalid, CallingCode: 1},
		},
		{
			name: "invalid number under one country's calling code", number: "+4912",
			want: Description{Type: Invalid, CallingCode: 49, ISOCountryCode: "DE", Country: "Germany"},
		},
		{
			name: "invalid number in the country given", number: "020 7946 0000", iso: "US",
			want: Description{OriginalISOCountryCode: "US", Type: Invalid, CallingCode: 1, ISOCountryCode: "US", Country: "United States"},
		},
		{
			name: "not a number at all", number: "hello", iso: "us",
			want: Description{OriginalISOCountryCode: "US", Type: Invalid},
		},
		{
			name: "national format without IsoCountryCode", number: "07400 123456",
			want: Description{Type: Invalid},
		},
		{name: "empty", number: "", want: Description{Type: Invalid}},
		{name: "only a plus", number: "+", want: Description{Type: Invalid}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Describe(tc.number, tc.iso)
			if err != nil {
				t.Fatalf("Describe(%q, %q): %v", tc.number, tc.iso, err)
			}
			tc.want.OriginalNumber = tc.number
			if got != tc.want {
				t.Errorf("Describe(%q, %q) =\n  %+v\nwant\n  %+v", tc.number, tc.iso, got, tc.want)
			}
		})
	}
}

func TestDescribeRejectsMalformedISOCountryCode(t *testing.T) {
	for _, iso := range []string{"USA", "U", "1A", "G7", "ZZ", "XX", "EU", "UN", "UK", "001", "us ", "ÜS"} {
		d, err := Describe("+14255550142", iso)
		if err == nil {
			t.Errorf("Describe with IsoCountryCode %q = %+v, want an error", iso, d)
			continue
		}
		if !strings.Contains(err.Error(), "ISO 3166-1 alpha-2") {
			t.Errorf("error %q does not say what is expected", err)
		}
		if d.Type != Invalid {
			t.Errorf("on error, Type = %v, want INVALID rather than the zero value MOBILE", d.Type)
		}
	}
	// Accepted, in any case: ISO codes, and libphonenumber's own XK, AC, TA.
	for _, iso := range []string{"US", "gb", "De", "XK", "AC", "TA", "GG", "AQ"} {
		if _, err := Describe("+14255550142", iso); err != nil {
			t.Errorf("Describe with IsoCountryCode %q: %v", iso, err)
		}
	}
}

// TestTypeCodes pins the names and numbers of Pinpoint's PhoneType and
// PhoneTypeCode.
func TestTypeCodes(t *testing.T) {
	for _, tc := range []struct {
		t    Type
		name string
		code int
	}{
		{Mobile, "MOBILE", 0}, {Landline, "LANDLINE", 1}, {VoIP, "VOIP", 2},
		{Invalid, "INVALID", 3}, {Other, "OTHER", 4}, {Prepaid, "PREPAID", 5},
	} {
		if tc.t.String() != tc.name || int(tc.t) != tc.code {
			t.Errorf("%v = %d, want %s = %d", tc.t, int(tc.t), tc.name, tc.code)
		}
	}
}

// TestDescribeAgreesWithParseE164: the number SendOTPMessage accepts as a
// DestinationIdentity is one that Describe finds valid, with that very
// spelling as its cleansed E.164; one refused only for a trunk prefix is
// valid too, and Describe gives the spelling ParseE164 asks for.
func TestDescribeAgreesWithParseE164(t *testing.T) {
	for _, s := range []string{
		"+14255550142", "+447911123456", "+819012345678", "+5511987654321", "+4915123456789",
		"+5491123456789", "+10000000000", "+112065550100", "+4402071234567", "+330612345678",
		"+1234567890123", "+3912345", "+80012345678",
	} {
		d, err := Describe(s, "")
		if err != nil {
			t.Fatal(err)
		}
		region, perr := ParseE164(s)
		switch {
		case perr == nil:
			if d.Type == Invalid || d.E164 != s {
				t.Errorf("%s: ParseE164 accepts it, Describe says %v with E.164 %q", s, d.Type, d.E164)
			}
			if region != d.ISOCountryCode {
				t.Errorf("%s: ParseE164 gives region %q, Describe %q", s, region, d.ISOCountryCode)
			}
		case strings.Contains(perr.Error(), "write it as"):
			if d.Type == Invalid || !strings.HasSuffix(perr.Error(), d.E164) {
				t.Errorf("%s: ParseE164 says %q, Describe says %v with E.164 %q", s, perr, d.Type, d.E164)
			}
		default:
			if d.Type != Invalid {
				t.Errorf("%s: ParseE164 refuses it (%v), Describe says %v", s, perr, d.Type)
			}
		}
	}
}

// BenchmarkParseE164 is the check every SendOTPMessage makes of its
// DestinationIdentity.
func BenchmarkParseE164(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseE164("+14255550142"); err != nil {
			b.Fatal(err)
		}
	}
}
