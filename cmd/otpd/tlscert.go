package main

import (
	"crypto/sha256"
	"crypto/tls"
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
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return livefile.Open(livefile.Spec[*tls.Certificate]{
		Name:  "the TLS certificate",
		Kept:  "the certificate read before is still served",
		Paths: []string{certFile, keyFile},
		Parse: parseKeyPair,
		Changed: func(_, cert *tls.Certificate) {
			log.Info("TLS certificate read again: new connections get it", certAttrs(cert)...)
			warnCertValidity(log, cert, time.Now())
		},
		Log: log,
	})
}

// parseKeyPair makes a certificate of the PEM contents of a certificate
// file and a key file. Its errors are crypto/tls's, which never quote the
// key.
func parseKeyPair(contents [][]byte) (*tls.Certificate, error) {
	cert, err := tls.X509KeyPair(contents[0], contents[1])
	if err != nil {
		return nil, err
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
// when, and its SHA-256 fingerprint (as openssl x509 -fingerprint -sha256
// prints it, without colons).
func certAttrs(cert *tls.Certificate) []any {
	leaf := cert.Leaf
	sum := sha256.Sum256(leaf.Raw)
	return []any{"subject", leaf.Subject.String(), "dns_names", leaf.DNSNames, "ip_addresses", leaf.IPAddresses,
		"not_after", leaf.NotAfter.UTC().Format(time.RFC3339), "sha256", hex.EncodeToString(sum[:])}
}

// warnCertValidity warns when cert is not valid at now: clients refuse it.
func warnCertValidity(log *slog.Logger, cert *tls.Certificate, now time.Time) {
	switch leaf := cert.Leaf; {
	case now.After(leaf.NotAfter):
		log.Warn("the TLS certificate has expired: clients refuse it until it is renewed", "not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(leaf.NotBefore):
		log.Warn("the TLS certificate is not valid yet: clients refuse it until then", "not_before", leaf.NotBefore.UTC().Format(time.RFC3339))
	}
}
