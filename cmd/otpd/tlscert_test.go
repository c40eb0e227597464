package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/pinpoint"
)

// A renewed certificate, written over the files otpd serves TLS from while
// it runs, is served to new connections within one read of the files (10 s),
// without a restart; files that cannot be used leave the certificate read
// before served, and say so in the log and the metrics.
func TestTLSCertificateRenewedWithoutARestart(t *testing.T) {
	certFile, keyFile, oldPool := selfSignedCert(t)
	metricsAddr := freeLoopbackAddr(t)
	var logs lockedBuffer
	ts := startServerLogging(t, func(c *config) {
		c.TLSCert, c.TLSKey, c.MetricsAddr = certFile, keyFile, metricsAddr
	}, slog.New(slog.NewTextHandler(&logs, nil)))
	waitForPort(t, metricsAddr)
	ops := &testServer{URL: "http://" + metricsAddr}

	// A client that trusts pool, on connections of its own.
	accepted := func(pool *x509.CertPool) error {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
		defer tr.CloseIdleConnections()
		c := pinpoint.New(pinpoint.Options{
			Region:       testRegion,
			BaseEndpoint: aws.String(ts.URL),
			Credentials:  credentials.NewStaticCredentialsProvider(ts.Creds.AccessKeyID, ts.Creds.SecretAccessKey, ""),
			Retryer:      aws.NopRetryer{},
			HTTPClient:   &http.Client{Transport: tr, Timeout: 10 * time.Second},
		})
		_, err := c.GetApps(context.Background(), &pinpoint.GetAppsInput{})
		return err
	}
	// served is the certificate a new connection gets.
	served := func() *x509.Certificate {
		t.Helper()
		conn, err := tls.Dial("tcp", strings.TrimPrefix(ts.URL, "https://"), &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatalf("TLS handshake: %v", err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0]
	}
	expiry := func() float64 { return ops.metricValue(t, "otpd_tls_certificate_expiry_timestamp_seconds") }
	healthy := func() float64 { return ops.metricValue(t, "otpd_tls_certificate_files_healthy") }

	if err := accepted(oldPool); err != nil {
		t.Fatalf("a client trusting the first certificate: %v", err)
	}
	first := served()
	if expiry() != float64(first.NotAfter.Unix()) || healthy() != 1 {
		t.Errorf("expiry %v, healthy %v; want %d and 1", expiry(), healthy(), first.NotAfter.Unix())
	}

	// Renewed: a new key and certificate over the same files, each by a
	// rename as certbot or a Kubernetes secret's volume does.
	notAfter := time.Now().Add(90 * 24 * time.Hour).Truncate(time.Second)
	newPool := writeSelfSignedCert(t, certFile, keyFile, 2, notAfter)
	deadline := time.Now().Add(30 * time.Second)
	for served().SerialNumber.Int64() != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the renewed certificate is still not served after 30 s; log:\n%s", logs.tail(4000))
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := accepted(newPool); err != nil {
		t.Errorf("a client trusting the renewed certificate: %v", err)
	}
	var unknown x509.UnknownAuthorityError
	if err := accepted(oldPool); !errors.As(err, &unknown) {
		t.Errorf("a client trusting only the first certificate: %v, want it to refuse the renewed one", err)
	}
	sum := sha256.Sum256(served().Raw)
	if log := logs.tail(1 << 20); !strings.Contains(log, "TLS certificate read again") || !strings.Contains(log, hex.EncodeToString(sum[:])) {
		t.Errorf("the log does not name the renewed certificate by its fingerprint:\n%s", log)
	}
	if expiry() != float64(notAfter.Unix()) {
		t.Errorf("expiry %v after the renewal, want %d", expiry(), notAfter.Unix())
	}

	// A key that is not the certificate's: the renewed certificate stays.
	writeSelfSignedCert(t, filepath.Join(t.TempDir(), "cert.pem"), keyFile, 3, notAfter)
	reread := ts.srv.cert.Reload // as the server does every 10 s
	reread()
	if s := served().SerialNumber.Int64(); s != 2 {
		t.Errorf("with a key that does not match, serial %d is served, want the renewed 2", s)
	}
	if log := logs.tail(1 << 20); !strings.Contains(log, "the TLS certificate cannot be used: the certificate read before is still served") ||
		!strings.Contains(log, "private key does not match public key") {
		t.Errorf("the log does not say what is wrong with the files:\n%s", log)
	}
	if healthy() != 0 || expiry() != float64(notAfter.Unix()) {
		t.Errorf("with files that cannot be used: healthy %v, expiry %v; want 0 and %d", healthy(), expiry(), notAfter.Unix())
	}
	keyPEM, _ := os.ReadFile(keyFile)
	if body := strings.Split(string(keyPEM), "\n")[1]; strings.Contains(logs.tail(1<<20), body) {
		t.Error("the log holds a private key")
	}

	// Mended with an expired certificate: served (the operator's choice),
	// and warned about.
	writeSelfSignedCert(t, certFile, keyFile, 4, time.Now().Add(-time.Minute))
	reread()
	if s := served().SerialNumber.Int64(); s != 4 {
		t.Errorf("serial %d served, want 4", s)
	}
	if healthy() != 1 || !strings.Contains(logs.tail(1<<20), "the TLS certificate expired at ") {
		t.Errorf("healthy %v, log:\n%s\nwant 1 and the expired certificate warned about", healthy(), logs.tail(4000))
	}
}

// otpd serve --check-config refuses a certificate that has expired or is
// not valid yet, naming the setting; otpd serve starts with it, warning.
func TestCheckConfigRefusesACertificateNotValidNow(t *testing.T) {
	for _, v := range []string{"OTPD_HMAC_KEY", "OTPD_HMAC_KEY_FILE", "OTPD_ACCESS_KEY_ID", "OTPD_SECRET_ACCESS_KEY", "OTPD_ACCESS_KEYS_FILE", "OTPD_TLS_CERT", "OTPD_TLS_KEY"} {
		t.Setenv(v, "")
	}
	certFile, keyFile, _ := selfSignedCert(t)
	check := func() error {
		return runServe([]string{"--check-config", "--data-dir", t.TempDir(), "--log-level", "error", "--tls-cert", certFile, "--tls-key", keyFile})
	}
	if err := check(); err != nil {
		t.Fatalf("--check-config with a valid certificate: %v", err)
	}
	writeSelfSignedCert(t, certFile, keyFile, 2, time.Now().Add(-time.Minute))
	if err := check(); err == nil || !strings.Contains(err.Error(), "--tls-cert: the TLS certificate expired at ") {
		t.Errorf("--check-config with an expired certificate: %v, want it refused", err)
	}

	var logs lockedBuffer
	startServerLogging(t, func(c *config) { c.TLSCert, c.TLSKey = certFile, keyFile }, slog.New(slog.NewTextHandler(&logs, nil)))
	if !strings.Contains(logs.tail(1<<20), "the TLS certificate expired at ") {
		t.Errorf("otpd serve with an expired certificate did not warn:\n%s", logs.tail(4000))
	}
}

// The AWS clients reach otpd over TLS with a certificate of a private CA
// once told to trust it, as the README says: the aws CLI by the profile's
// ca_bundle, boto3 and the Go SDK by AWS_CA_BUNDLE; without it, they
// refuse the certificate.
func TestAWSClientsTrustOtpdsCertificateByCABundle(t *testing.T) {
	requireTool(t, "aws")
	python := requireBoto3(t)
	certFile, keyFile, _ := selfSignedCert(t)
	ts := startServer(t, func(c *config) { c.TLSCert, c.TLSKey = certFile, keyFile })
	dir := t.TempDir()
	config, creds := filepath.Join(dir, "config"), filepath.Join(dir, "credentials")
	profile := func(caBundle string) string {
		s := fmt.Sprintf("[profile otpd]\nregion = %s\nservices = otpd-services\n", testRegion)
		if caBundle != "" {
			s += "ca_bundle = " + caBundle + "\n"
		}
		return s + "\n[services otpd-services]\npinpoint =\n  endpoint_url = " + ts.URL + "\n"
	}
	if err := os.WriteFile(creds, fmt.Appendf(nil, "[otpd]\naws_access_key_id = %s\naws_secret_access_key = %s\n",
		ts.Creds.AccessKeyID, ts.Creds.SecretAccessKey), 0o600); err != nil {
		t.Fatal(err)
	}
	env := awsIsolatedEnv(config, creds)

	// The aws CLI, with the profile's ca_bundle.
	replaceFile(t, config, []byte(profile(certFile)))
	var created struct{ ApplicationResponse applicationResponse }
	awsCLIJSON(t, env, &created, "create-app", "--create-application-request", "Name=over-tls", "--profile", "otpd")
	app := created.ApplicationResponse.Id
	checkApp(t, "create-app over TLS", created.ApplicationResponse, "over-tls")

	// boto3, with AWS_CA_BUNDLE and the profile without ca_bundle.
	replaceFile(t, config, []byte(profile("")))
	script := `import boto3; print(boto3.Session(profile_name="otpd").client("pinpoint").get_app(ApplicationId="` + app + `")["ApplicationResponse"]["Id"])`
	stdout, stderr, err := runTool(t, append(env, "AWS_CA_BUNDLE="+certFile), python, "-c", script)
	if err != nil || strings.TrimSpace(stdout) != app {
		t.Errorf("boto3 with AWS_CA_BUNDLE: %v, printed %q\n%s", err, stdout, stderr)
	}

	// The Go SDK, with AWS_CA_BUNDLE too.
	t.Setenv("AWS_CA_BUNDLE", certFile)
	cfg, err := awsconfig.LoadDefaultConfig(t.Context(), awsconfig.WithSharedConfigFiles([]string{config}),
		awsconfig.WithSharedCredentialsFiles([]string{creds}), awsconfig.WithSharedConfigProfile("otpd"),
		awsconfig.WithRetryMaxAttempts(1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pinpoint.NewFromConfig(cfg).GetApp(t.Context(), &pinpoint.GetAppInput{ApplicationId: aws.String(app)}); err != nil {
		t.Errorf("the Go SDK with AWS_CA_BUNDLE: %v", err)
	}

	// Without the bundle, the certificate is refused.
	if _, stderr, err := awsCLI(t, env, "get-apps", "--profile", "otpd"); err == nil || !strings.Contains(stderr, "CERTIFICATE_VERIFY_FAILED") {
		t.Errorf("aws CLI without ca_bundle: %v\n%s\nwant the certificate refused", err, stderr)
	}
}
