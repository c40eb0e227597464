package phone

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/nyaruka/phonenumbers"
	"golang.org/x/text/language"
	"golang.org/x/text/language/display"
)

// Type is what kind of line a number is, numbered as Pinpoint numbers its
// PhoneTypeCode.
type Type int

// The types, in PhoneTypeCode order.
const (
	Mobile   Type = iota // libphonenumber's MOBILE
	Landline             // libphonenumber's FIXED_LINE
	VoIP                 // libphonenumber's VOIP
	Invalid              // not a valid number, or not a number at all
	Other                // every other type: FIXED_LINE_OR_MOBILE, TOLL_FREE, PAGER, ...
	Prepaid              // never inferred: the data cannot tell a prepaid line
)

// String returns the type's name as Pinpoint spells its PhoneType.
func (t Type) String() string {
	switch t {
	case Mobile:
		return "MOBILE"
	case Landline:
		return "LANDLINE"
	case VoIP:
		return "VOIP"
	case Invalid:
		return "INVALID"
	case Other:
		return "OTHER"
	case Prepaid:
		return "PREPAID"
	}
	return "Type(" + strconv.Itoa(int(t)) + ")"
}

// typeOf maps libphonenumber's type of a valid number onto Type.
func typeOf(t phonenumbers.PhoneNumberType) Type {
	switch t {
	case phonenumbers.MOBILE:
		return Mobile
	case phonenumbers.FIXED_LINE:
		return Landline
	case phonenumbers.VOIP:
		return VoIP
	}
	// FIXED_LINE_OR_MOBILE (most numbers of the North American plan),
	// TOLL_FREE, PREMIUM_RATE, SHARED_COST, PERSONAL_NUMBER, PAGER, UAN,
	// VOICEMAIL: none is a mobile, a landline or a VoIP line for sure.
	return Other
}

// Description is what libphonenumber and its carrier, geocoding and time
// zone data know of a phone number. A field the data cannot fill is empty
// (CallingCode zero).
type Description struct {
	// OriginalNumber is the number as given; OriginalISOCountryCode the ISO
	// country code given with it, upper-cased ("" when none was given).
	OriginalNumber         string
	OriginalISOCountryCode string

	// Type is Invalid when the number could not be parsed or is not a valid
	// number by libphonenumber's rules.
	Type Type

	// E164 is the number's one canonical E.164 spelling ("+14255550142"),
	// and National the digits one dials within its country, trunk prefix
	// included ("4255550142", "07400123456"). Both are empty for an invalid
	// number: neither is a number one could dial.
	E164     string
	National string

	// CallingCode is the country calling code (1, 44, 800), also for an
	// invalid number when it was parsed.
	CallingCode int
	// ISOCountryCode is the ISO 3166-1 alpha-2 code of the number's country
	// or territory ("US", "GB", "GG"), and Country its English name ("United
	// States"). Both are empty for non-geographic numbers (+800, +882, ...),
	// and for an invalid number whose calling code several countries share.
	ISOCountryCode string
	Country        string

	// Carrier is the carrier the number's range was allocated to (numbers
	// can since have been ported to another one); mostly known for mobiles.
	Carrier string
	// City is the geocoding data's description of where the number was
	// registered, in English: a city ("London", "Berlin") or, in some
	// countries, a state or region ("Washington State", "Ontario"). It is
	// empty when the data names only the country.
	City string
	// TimeZone is the IANA time zone of the number, when the data maps the
	// number to exactly one ("America/Los_Angeles"). Where it lists several
	// (UK mobiles: Europe/Guernsey, Europe/Isle_of_Man, Europe/London; US
	// toll-free numbers: every North American zone) it is empty, not a guess.
	TimeZone string
}

// lang is the language of carrier names, geocoding descriptions and country
// names: Pinpoint answers in English.
const lang = "en"

// Describe tells what the data knows of number. A number starting with '+'
// carries its own country calling code; any other is read as a number of
// isoCountryCode's country, dialled from there (national format, or with the
// international prefix). A number that cannot be parsed at all, or is not
// valid, is described as Invalid, with whatever is known of it.
//
// isoCountryCode is optional; when given, it must be an ISO 3166-1 alpha-2
// country code, in any case, or Describe returns an error that explains it
// for the caller to prefix with the field name.
func Describe(number, isoCountryCode string) (Description, error) {
	d := Description{OriginalNumber: number, Type: Invalid}
	if isoCountryCode != "" {
		iso, err := CheckISOCountryCode(isoCountryCode)
		if err != nil {
			return d, err
		}
		d.OriginalISOCountryCode = iso
	}
	n, valid, err := parse(number, d.OriginalISOCountryCode)
	if err != nil {
		return d, nil
	}
	d.CallingCode = int(n.GetCountryCode())
	if !valid {
		d.ISOCountryCode = invalidNumberRegion(d.CallingCode, d.OriginalISOCountryCode)
		d.Country = countryName(d.ISOCountryCode)
		return d, nil
	}

	typ := phonenumbers.GetNumberType(n)
	d.Type = typeOf(typ)
	d.E164 = phonenumbers.Format(n, phonenumbers.E164)
	d.National = digits(phonenumbers.Format(n, phonenumbers.NATIONAL))
	if region := phonenumbers.GetRegionCodeForNumber(n); isCountry(region) {
		d.ISOCountryCode = region
		d.Country = countryName(region)
		// Only a geographic number has a place, and the geocoding data
		// falls back to the country's name where it knows none within it:
		// that is no city.
		if isGeographic(typ, n.GetCountryCode()) {
			if city, err := phonenumbers.GetGeocodingForNumber(n, lang); err == nil && city != d.Country {
				d.City = city
			}
		}
	}
	if carrier, err := phonenumbers.GetCarrierForNumber(n, lang); err == nil {
		d.Carrier = carrier
	}
	if zones, err := phonenumbers.GetTimezonesForNumber(n); err == nil && len(zones) == 1 && zones[0] != phonenumbers.UNKNOWN_TIMEZONE {
		d.TimeZone = zones[0]
	}
	return d, nil
}

// isGeographic reports whether a valid number of type t and calling code cc
// belongs to a place within its country, as libphonenumber's geocoder
// decides: fixed lines, and mobiles where mobile numbers have area codes.
func isGeographic(t phonenumbers.PhoneNumberType, cc int32) bool {
	return t == phonenumbers.FIXED_LINE || t == phonenumbers.FIXED_LINE_OR_MOBILE ||
		t == phonenumbers.MOBILE && phonenumbers.GEO_MOBILE_COUNTRIES[cc]
}

// CheckISOCountryCode accepts a two-letter country code in any case and
// returns it upper-cased: an ISO 3166-1 alpha-2 code, or one that
// libphonenumber has numbering data for (AC, TA and XK are not ISO's). The
// error explains what is wrong, for a client-facing message after the field
// name.
func CheckISOCountryCode(code string) (string, error) {
	upper := strings.ToUpper(code)
	if !isCountry(upper) {
		return "", fmt.Errorf("must be a two-letter ISO 3166-1 alpha-2 country code, such as US, GB or DE")
	}
	return upper, nil
}

// isCountry reports whether code is an upper-case two-letter code of a
// country or territory: one libphonenumber has numbering data for, or one
// CLDR knows as an ISO 3166-1 country (it then has an alpha-3 code too).
// Private-use codes (AA, QM-QZ, XA-XZ, ZZ), groups (EU, UN) and codes that
// ISO only reserves (UK, EA, IC) are not; neither is libphonenumber's "001"
// for non-geographic numbers.
func isCountry(code string) bool {
	if len(code) != 2 || code[0] < 'A' || code[0] > 'Z' || code[1] < 'A' || code[1] > 'Z' {
		return false
	}
	if phonenumbers.GetSupportedRegions()[code] {
		return true
	}
	r, err := language.ParseRegion(code)
	return err == nil && r.String() == code && r.IsCountry() && r.ISO3() != "ZZZ"
}

// countryName is the English name of a country code, or "" for none.
func countryName(code string) string {
	if code == "" {
		return ""
	}
	r, err := language.ParseRegion(code)
	if err != nil {
		return ""
	}
	return display.Regions(language.English).Name(r)
}

// invalidNumberRegion returns the country of an invalid number when it is
// certain: the country given with it if it has the number's calling code,
// or else the one country of that calling code. Otherwise it returns "".
func invalidNumberRegion(callingCode int, given string) string {
	if given != "" && phonenumbers.GetCountryCodeForRegion(given) == callingCode {
		return given
	}
	if regions := phonenumbers.GetRegionCodesForCountryCode(callingCode); len(regions) == 1 && isCountry(regions[0]) {
		return regions[0]
	}
	return ""
}

// digits keeps only the ASCII digits of s.
func digits(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, s)
}
