package main

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"log/slog"
	"time"

	"github.com/otpd/otpd/internal/livefile"
)

// servingCert is the certificate otpd serves TLS with, and its key: the
// files of --tls-cert and --tls-key, read again every filesReread while
// otpd runs, so that a renewed certificate is served without a restart.
type servingCert = livefile.File[*tls.Certificate]

// openServingCert reads the certificate (PEM, the server's first, then any
// intermediates) and its key (PEM) from certFile and keyFile. log receives
// what later reads find; nil logs nothing.
func openServingCert(certFile, keyFile string, log *slog.Logger) (*servingCert, error) {
	return livefile.Open(livefile.Spec[*tls.Certificate]{
		Name:  "the TLS certificate",
		Kept:  "the certificate read before is still served",
		Paths: []string{certFile, keyFile},
		Parse: parseKeyPair,
		Changed: func(log *slog.Logger, before, after *tls.Certificate) {
			log.Info("TLS certificate read again: new connections get it", certAttrs(after)...)
			if after.Leaf.NotAfter.Before(before.Leaf.NotAfter) {
				log.Warn("the TLS certificate read again expires before the one it replaces", "not_after", timestamp(after.Leaf.NotAfter),
					"replaced_not_after", timestamp(before.Leaf.NotAfter))
			}
			warnCertValidity(log, after, time.Now())
		},
		Log: log,
	})
}

// parseKeyPair makes a certificate of the PEM contents of a certificate
// file and a key file, with its Leaf parsed. Its errors are crypto/tls's
// and crypto/x509's, which never quote the key.
func parseKeyPair(contents [][]byte) (*tls.Certificate, error) {
	cert, err := tls.X509KeyPair(contents[0], contents[1])
	if err != nil {
		return nil, err
	}
	if cert.Leaf == nil { // GODEBUG=x509keypairleaf=0
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, err
		}
	}
	return &cert, nil
}

// tlsConfig serves the certificate cert holds at each handshake.
func tlsConfig(cert *servingCert) *tls.Config {
	return &tls.Config{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		return cert.Value(), nil
	}}
}

// certAttrs are what the log says of a certificate: whom it names, until
// when, its SHA-256 fingerprint (as openssl x509 -fingerprint -sha256
// prints it, without colons), and how many certificates the chain served
// holds, itself included.
func certAttrs(cert *tls.Certificate) []any {
	leaf := cert.Leaf
	sum := sha256.Sum256(leaf.Raw)
	return []any{"subject", leaf.Subject.String(), "dns_names", leaf.DNSNames, "ip_addresses", leaf.IPAddresses,
		"not_after", timestamp(leaf.NotAfter), "sha256", hex.EncodeToString(sum[:]), "chain", len(cert.Certificate)}
}

// certNotValid says why cert is not valid at now, "" when it is.
func certNotValid(cert *tls.Certificate, now time.Time) string {
	switch leaf := cert.Leaf; {
	case now.After(leaf.NotAfter):
		return "the TLS certificate expired at " + timestamp(leaf.NotAfter) + ": clients refuse it until it is renewed"
	case now.Before(leaf.NotBefore):
		return "the TLS certificate is not valid until " + timestamp(leaf.NotBefore) + ": clients refuse it until then"
	}
	return ""
}

// warnCertValidity warns when cert is not valid at now.
func warnCertValidity(log *slog.Logger, cert *tls.Certificate, now time.Time) {
	if problem := certNotValid(cert, now); problem != "" {
		log.Warn(problem)
	}
}

// timestamp writes t for the log and for errors.
func timestamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }
