// Package sigv4 verifies AWS Signature Version 4 (header form, algorithm
// AWS4-HMAC-SHA256) on incoming HTTP requests, the way AWS JSON services do
// for the Pinpoint clients (botocore, aws-sdk-go-v2, aws-sdk-js-v3, curl).
//
// Verify takes these steps, each named after the SigV4 specification:
//
//  1. parse: split the Authorization header into the credential scope
//     (access key ID, date, region, service, "aws4_request"), the
//     SignedHeaders list and the signature; read the request time from
//     X-Amz-Date (or Date); refuse temporary credentials, a scope for
//     another date, region or service, and a time outside ±MaxSkew.
//  2. canonicalize: rebuild the canonical request from what was received:
//     method, the path URI-encoded a second time, the query sorted and
//     RFC 3986-encoded, exactly the headers the client listed in
//     SignedHeaders, and the SHA-256 of the body actually received (never a
//     hash the client merely claims).
//  3. string to sign: algorithm, request time, credential scope and the
//     hash of the canonical request.
//  4. signing key: the HMAC chain "AWS4"+secret → date → region → service →
//     "aws4_request", cached per key, secret, date and region.
//  5. compare: HMAC the string to sign and compare it with the client's
//     signature in constant time.
//
// Every failure is an *Error carrying the AWS error code and message that
// the HTTP layer sends with status 403.
package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Keyring looks up the secret for an access key ID. Implementations are safe
// for concurrent use.
type Keyring interface {
	Secret(accessKeyID string) (secret string, ok bool)
}

// Verifier checks SigV4 signatures for one region and one service. Its
// fields must be set before the first call to Verify and not changed after;
// a Verifier is safe for concurrent use and must not be copied after first
// use.
type Verifier struct {
	Region  string           // the only region accepted, e.g. "us-east-1"
	Service string           // the signing name, "mobiletargeting" for Pinpoint
	Keys    Keyring          // the secrets of the access keys otpd issued; required
	Now     func() time.Time // injected clock; nil means time.Now
	MaxSkew time.Duration    // allowed distance between request time and clock; 0 means 5 minutes

	keys keyCache
}

// Error is an authentication failure; all are HTTP 403. Code is the AWS
// error code (the X-Amzn-ErrorType header), Message the text for the body.
type Error struct {
	Code    string // e.g. "InvalidSignatureException"
	Message string
	// AccessKeyID is the key the request named, once its Authorization
	// header could be parsed: for the operator's log (a client with a stale
	// secret, or pointed at the wrong server), never for the client.
	AccessKeyID string
}

// Error returns the code and the message.
func (e *Error) Error() string { return e.Code + ": " + e.Message }

const (
	codeMissingToken    = "MissingAuthenticationTokenException"
	codeIncomplete      = "IncompleteSignatureException"
	codeInvalid         = "InvalidSignatureException"
	codeUnrecognized    = "UnrecognizedClientException"
	msgMismatch         = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method."
	msgInvalidToken     = "The security token included in the request is invalid."
	algorithm           = "AWS4-HMAC-SHA256"
	amzDateLayout       = "20060102T150405Z"
	unsignedPayload     = "UNSIGNED-PAYLOAD"
	defaultMaxSkew      = 5 * time.Minute
	scopeTerminator     = "aws4_request"
	headerSecurityToken = "X-Amz-Security-Token"
	headerContentSHA256 = "X-Amz-Content-Sha256"
)

func incomplete(format string, args ...any) *Error {
	return &Error{Code: codeIncomplete, Message: fmt.Sprintf(format, args...)}
}

func invalid(format string, args ...any) *Error {
	return &Error{Code: codeInvalid, Message: fmt.Sprintf(format, args...)}
}

// Verify checks the SigV4 Authorization header of r against body, the
// complete request body already read by the caller (r.Body must not be read
// by Verify). It returns the access key ID on success, or an *Error, which
// names the key the request claimed if its header could be parsed.
func (v *Verifier) Verify(r *http.Request, body []byte) (accessKeyID string, err error) {
	id, e := v.verify(r, body)
	if e != nil {
		return "", e
	}
	return id, nil
}

func (v *Verifier) verify(r *http.Request, body []byte) (accessKeyID string, err *Error) {
	header := r.Header.Get("Authorization")
	if header == "" {
		if r.URL.Query().Has("X-Amz-Signature") {
			return "", &Error{Code: codeMissingToken, Message: "Missing Authentication Token: otpd does not accept signatures in the query string (presigned URLs); sign the Authorization header."}
		}
		return "", &Error{Code: codeMissingToken, Message: "Missing Authentication Token"}
	}

	// Step 1: parse, and check everything that needs no secret.
	auth, e := parseAuthorization(header)
	if e != nil {
		return "", e
	}
	defer func() {
		if err != nil {
			named := *err // a copy: an *Error may be shared
			named.AccessKeyID = auth.accessKeyID
			err = &named
		}
	}()
	dateTime, signedAt, e := requestTime(r)
	if e != nil {
		return "", e
	}
	if _, ok := r.Header[headerSecurityToken]; ok {
		// otpd issues only long-term keys, so no session token is valid.
		return "", &Error{Code: codeUnrecognized, Message: msgInvalidToken}
	}
	if e := v.checkScope(auth, dateTime); e != nil {
		return "", e
	}
	if e := v.checkClock(dateTime, signedAt); e != nil {
		return "", e
	}
	secret, ok := v.Keys.Secret(auth.accessKeyID)
	if !ok {
		return "", &Error{Code: codeUnrecognized, Message: msgInvalidToken}
	}
	var payloadHash [2 * sha256.Size]byte
	bodySum := sha256.Sum256(body)
	hex.Encode(payloadHash[:], bodySum[:])
	if e := checkContentSHA256(r, payloadHash[:]); e != nil {
		return "", e
	}

	// Step 2: canonicalize.
	canonical, e := appendCanonicalRequest(make([]byte, 0, 1024), r, auth.signedHeaders, payloadHash[:])
	if e != nil {
		return "", e
	}
	canonicalSum := sha256.Sum256(canonical)

	// Step 3: string to sign.
	stringToSign := make([]byte, 0, 192)
	stringToSign = append(stringToSign, algorithm+"\n"...)
	stringToSign = append(stringToSign, dateTime...)
	stringToSign = append(stringToSign, '\n')
	stringToSign = append(stringToSign, auth.scope...)
	stringToSign = append(stringToSign, '\n')
	stringToSign = hex.AppendEncode(stringToSign, canonicalSum[:])

	// Step 4: signing key.
	key := v.signingKey(auth.accessKeyID, secret, auth.date)

	// Step 5: compare.
	if !hmac.Equal(key.Sum(stringToSign[:0], stringToSign), auth.signature[:]) {
		return "", invalid(msgMismatch)
	}
	return auth.accessKeyID, nil
}

// requestTime returns the request time from X-Amz-Date, or else from the
// Date header, both as the ISO 8601 basic form used in the string to sign
// and as a time.
func requestTime(r *http.Request) (string, time.Time, *Error) {
	if v := r.Header.Get("X-Amz-Date"); v != "" {
		t, err := time.Parse(amzDateLayout, v)
		if len(v) != len(amzDateLayout) || err != nil {
			return "", time.Time{}, incomplete("X-Amz-Date must be in ISO 8601 basic format (yyyyMMddTHHmmssZ), got %q.", v)
		}
		return v, t, nil
	}
	if v := r.Header.Get("Date"); v != "" {
		t, err := http.ParseTime(v)
		if err != nil {
			return "", time.Time{}, incomplete("Date must be an HTTP date (RFC 7231), got %q.", v)
		}
		t = t.UTC()
		return t.Format(amzDateLayout), t, nil
	}
	return "", time.Time{}, incomplete("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
}

// checkScope checks the credential scope against the request day and the
// configured region and service.
func (v *Verifier) checkScope(auth authorization, dateTime string) *Error {
	if auth.date != dateTime[:8] {
		return invalid("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s', from '%s'.",
			auth.date, dateTime[:8], dateTime)
	}
	if auth.region != v.Region {
		return invalid("Credential should be scoped to a valid region. Expected '%s'.", v.Region)
	}
	if auth.service != v.Service {
		return invalid("Credential should be scoped to correct service: '%s'. ", v.Service)
	}
	return nil
}

// checkClock refuses a request signed more than MaxSkew before or after now.
func (v *Verifier) checkClock(dateTime string, signedAt time.Time) *Error {
	now := time.Now()
	if v.Now != nil {
		now = v.Now()
	}
	now = now.UTC()
	skew := v.MaxSkew
	if skew == 0 {
		skew = defaultMaxSkew
	}
	if earliest := now.Add(-skew); signedAt.Before(earliest) {
		return invalid("Signature expired: %s is now earlier than %s (%s - %s)",
			dateTime, earliest.Format(amzDateLayout), now.Format(amzDateLayout), minutes(skew))
	}
	if latest := now.Add(skew); signedAt.After(latest) {
		return invalid("Signature not yet current: %s is still later than %s (%s + %s)",
			dateTime, latest.Format(amzDateLayout), now.Format(amzDateLayout), minutes(skew))
	}
	return nil
}

// minutes formats d the way AWS words the allowed skew: "5 min.".
func minutes(d time.Duration) string {
	return strconv.FormatFloat(d.Minutes(), 'f', -1, 64) + " min."
}

// checkContentSHA256 checks the optional X-Amz-Content-Sha256 header against
// the hash of the body actually received.
func checkContentSHA256(r *http.Request, payloadHash []byte) *Error {
	values, ok := r.Header[headerContentSHA256]
	if !ok {
		return nil
	}
	claimed := strings.Join(values, ",")
	if claimed == unsignedPayload {
		return invalid("otpd requires signed payloads: X-Amz-Content-Sha256 must be the hex SHA-256 of the body, not %s.", unsignedPayload)
	}
	if claimed != string(payloadHash) {
		return invalid("The provided X-Amz-Content-Sha256 header does not match what was computed from the body received.")
	}
	return nil
}
