package sigv4

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
)

// authorization is a parsed SigV4 Authorization header:
//
//	AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/mobiletargeting/aws4_request,
//	    SignedHeaders=content-type;host;x-amz-date, Signature=<64 hex digits>
type authorization struct {
	accessKeyID string
	scope       string // date/region/service/aws4_request, as in the string to sign
	date        string // yyyymmdd
	region      string
	service     string

	// signedHeaders is the SignedHeaders list, lowercased and sorted, names
	// separated by ';'.
	signedHeaders string
	signature     [sha256.Size]byte
}

// parseAuthorization parses the Authorization header h. It checks the
// shape of every part but nothing that depends on the request or the
// configuration.
func parseAuthorization(h string) (authorization, *Error) {
	var a authorization
	alg, params, _ := strings.Cut(h, " ")
	if alg != algorithm {
		return a, incomplete("Unsupported Authorization algorithm %q: otpd accepts only %s (Signature Version 4).", alg, algorithm)
	}

	var credential, signedHeaders, signature string
	var seen [3]bool
	for param := range strings.SplitSeq(params, ",") {
		param = strings.TrimSpace(param)
		if param == "" {
			continue
		}
		name, value, ok := strings.Cut(param, "=")
		if !ok {
			return a, incomplete("%q is not a valid key=value pair (missing equal-sign) in Authorization header.", param)
		}
		var i int
		switch name {
		case "Credential":
			i, credential = 0, value
		case "SignedHeaders":
			i, signedHeaders = 1, value
		case "Signature":
			i, signature = 2, value
		default:
			return a, incomplete("Authorization header has an unknown parameter %q; expected Credential, SignedHeaders and Signature.", name)
		}
		if seen[i] {
			return a, incomplete("Authorization header has the parameter %q more than once.", name)
		}
		seen[i] = true
	}
	for i, name := range [...]string{"Credential", "SignedHeaders", "Signature"} {
		if !seen[i] {
			return a, incomplete("Authorization header requires '%s' parameter.", name)
		}
	}

	if e := a.parseCredential(credential); e != nil {
		return a, e
	}
	var e *Error
	if a.signedHeaders, e = normalizeSignedHeaders(signedHeaders); e != nil {
		return a, e
	}
	signsHost := false
	for name := range strings.SplitSeq(a.signedHeaders, ";") {
		signsHost = signsHost || name == "host"
	}
	if !signsHost {
		return a, incomplete("SignedHeaders must include 'host'; got %q.", signedHeaders)
	}
	if len(signature) != hex.EncodedLen(sha256.Size) {
		return a, incomplete("Signature must be %d hexadecimal digits, got %d characters.", hex.EncodedLen(sha256.Size), len(signature))
	}
	if _, err := hex.Decode(a.signature[:], []byte(signature)); err != nil {
		return a, incomplete("Signature must be hexadecimal: %v.", err)
	}
	return a, nil
}

// parseCredential splits the Credential parameter
// "AKID/yyyymmdd/region/service/aws4_request" into a.
func (a *authorization) parseCredential(credential string) *Error {
	const shape = "Credential must have the form <access key ID>/<yyyymmdd>/<region>/<service>/aws4_request"
	id, scope, _ := strings.Cut(credential, "/")
	date, rest, _ := strings.Cut(scope, "/")
	region, rest, _ := strings.Cut(rest, "/")
	service, terminator, _ := strings.Cut(rest, "/")
	if id == "" || region == "" || service == "" || terminator == "" || strings.Contains(terminator, "/") {
		return incomplete("%s; got %q.", shape, credential)
	}
	if len(date) != 8 || strings.Trim(date, "0123456789") != "" {
		return incomplete("%s; the date %q is not yyyymmdd.", shape, date)
	}
	if terminator != scopeTerminator {
		return incomplete("Credential should be scoped with a valid terminator: '%s', not '%s'.", scopeTerminator, terminator)
	}
	a.accessKeyID, a.scope, a.date, a.region, a.service = id, scope, date, region, service
	return nil
}

// normalizeSignedHeaders checks the SignedHeaders list and returns it
// lowercased and sorted. A list that is already canonical, as every client
// sends it, is returned as is.
func normalizeSignedHeaders(list string) (string, *Error) {
	if list == "" {
		return "", incomplete("SignedHeaders must name at least the host header.")
	}
	canonical := true
	prev := ""
	for name := range strings.SplitSeq(list, ";") {
		if name == "" {
			return "", incomplete("SignedHeaders %q has an empty header name.", list)
		}
		if strings.ToLower(name) != name || name <= prev {
			canonical = false
		}
		prev = name
	}
	if canonical {
		return list, nil
	}
	names := strings.Split(strings.ToLower(list), ";")
	slices.Sort(names)
	for i := 1; i < len(names); i++ {
		if names[i] == names[i-1] {
			return "", incomplete("SignedHeaders %q names %q more than once.", list, names[i])
		}
	}
	return strings.Join(names, ";"), nil
}
