package main

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/pinpoint"

	"github.com/otpd/otpd/internal/accesskeys"
)

// A key is rotated the way the README tells: a second pair is added to
// OTPD_ACCESS_KEYS_FILE while otpd runs, clients move to it, reading the
// same file with the AWS SDK's shared-credentials loader, and the old pair
// is removed. No restart; a broken file on the way changes nothing.
func TestAccessKeyRotationWithoutARestart(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "access-keys")
	replace := func(data []byte) { t.Helper(); replaceFile(t, file, data) }
	old, err := accesskeys.Generate("otpd")
	if err != nil {
		t.Fatal(err)
	}
	replace(old.AppendProfile(nil))
	t.Setenv("OTPD_ACCESS_KEY_ID", "")
	t.Setenv("OTPD_SECRET_ACCESS_KEY", "")
	t.Setenv("OTPD_ACCESS_KEYS_FILE", file)
	var logs lockedBuffer
	ts := startServerLogging(t, nil, slog.New(slog.NewTextHandler(&logs, nil)))
	if ts.Creds != old {
		t.Fatalf("the server's first pair is %+v, want the file's %+v", ts.Creds, old)
	}

	// A client as an application configures it: the shared-credentials
	// file and a profile.
	clientOf := func(profile string) *pinpoint.Client {
		t.Helper()
		cfg, err := awsconfig.LoadDefaultConfig(t.Context(),
			awsconfig.WithSharedCredentialsFiles([]string{file}),
			awsconfig.WithSharedConfigFiles([]string{filepath.Join(dir, "no-config")}),
			awsconfig.WithSharedConfigProfile(profile),
			awsconfig.WithRegion(testRegion),
			awsconfig.WithRetryMaxAttempts(1))
		if err != nil {
			t.Fatal(err)
		}
		return pinpoint.NewFromConfig(cfg, func(o *pinpoint.Options) {
			o.BaseEndpoint = aws.String(ts.URL)
			o.HTTPClient = &http.Client{Timeout: 10 * time.Second}
		})
	}
	accepted := func(c *pinpoint.Client) error {
		_, err := c.GetApps(context.Background(), &pinpoint.GetAppsInput{})
		return err
	}
	oldClient := clientOf("otpd")
	if err := accepted(oldClient); err != nil {
		t.Fatalf("the first pair: %v", err)
	}

	// The new pair, appended while otpd runs as the README says: refused
	// until otpd reads the file again (every 10 s), then accepted beside
	// the old one.
	appended, err := os.OpenFile(file, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := runGenerateAccessKey([]string{"--profile", "otpd-next"}, appended, time.Now()); err != nil {
		t.Fatal(err)
	}
	appended.Close()
	pairs, err := accesskeys.Parse(mustRead(t, file))
	if err != nil || len(pairs) != 2 {
		t.Fatalf("the file after generate-access-key: %v, %v", pairs, err)
	}
	next := pairs[1]
	nextClient := clientOf("otpd-next")
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := accepted(nextClient)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the added pair is still refused after 30 s: %v", err)
		}
		wantAPIError(t, err, "UnrecognizedClientException", "The security token included in the request is invalid.")
		time.Sleep(200 * time.Millisecond)
	}
	if err := accepted(oldClient); err != nil {
		t.Errorf("the old pair, while both are in the file: %v", err)
	}
	if !strings.Contains(logs.tail(1<<20), "added=["+next.AccessKeyID+"]") {
		t.Errorf("the log does not name the added key:\n%s", logs.tail(1<<20))
	}

	// Which key signs, for the operator who waits for the old one to fall
	// silent.
	m := ts.metrics(t)
	for _, p := range []accesskeys.Pair{old, next} {
		if m[`otpd_access_key_requests_total{access_key_id="`+p.AccessKeyID+`"}`] < 1 {
			t.Errorf("otpd_access_key_requests_total has no request signed by %s", p.AccessKeyID)
		}
	}
	if m["otpd_access_keys"] != 2 || m["otpd_access_keys_file_healthy"] != 1 {
		t.Errorf("otpd_access_keys %v, otpd_access_keys_file_healthy %v; want 2 and 1", m["otpd_access_keys"], m["otpd_access_keys_file_healthy"])
	}
	reread := ts.srv.accessKeys.file.Reload // as the server does every 10 s

	// A mistake in the file changes nothing, and is logged.
	replace([]byte("[otpd-next]\naws_access_key_id = " + next.AccessKeyID + "\n"))
	reread()
	if err := accepted(oldClient); err != nil {
		t.Errorf("the old pair, after a broken file: %v", err)
	}
	if !strings.Contains(logs.tail(1<<20), "has aws_access_key_id but no aws_secret_access_key") {
		t.Errorf("the log does not say what is wrong with the file:\n%s", logs.tail(1<<20))
	}
	if v := ts.metricValue(t, "otpd_access_keys_file_healthy"); v != 0 {
		t.Errorf("otpd_access_keys_file_healthy is %v with a broken file, want 0", v)
	}

	// The old pair removed: refused as an unknown key, the new one kept.
	replace(next.AppendProfile(nil))
	reread()
	wantAPIError(t, accepted(oldClient), "UnrecognizedClientException")
	if err := accepted(nextClient); err != nil {
		t.Errorf("the new pair, once alone: %v", err)
	}
	if v := ts.metricValue(t, "otpd_access_keys_file_healthy"); v != 1 {
		t.Errorf("otpd_access_keys_file_healthy is %v once mended, want 1", v)
	}
	for _, p := range []accesskeys.Pair{old, next} {
		if strings.Contains(logs.tail(1<<20), p.SecretAccessKey) {
			t.Errorf("the log holds the secret of %s", p.AccessKeyID)
		}
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// otpd generate-access-key prints a profile that otpd and the AWS SDKs
// read, under a name of its own making unless one is given.
func TestGenerateAccessKey(t *testing.T) {
	var out bytes.Buffer
	now := time.Date(2026, 12, 7, 23, 0, 0, 0, time.UTC)
	for range 2 {
		if err := runGenerateAccessKey(nil, &out, now); err != nil {
			t.Fatal(err)
		}
	}
	if err := runGenerateAccessKey([]string{"--profile", "billing"}, &out, now); err != nil {
		t.Fatal(err)
	}
	pairs, err := accesskeys.Parse(out.Bytes())
	if err != nil {
		t.Fatalf("the printed profiles do not parse: %v\n%s", err, out.String())
	}
	if len(pairs) != 3 || !strings.HasPrefix(pairs[0].Profile, "otpd-20261207-") || pairs[0].Profile == pairs[1].Profile || pairs[2].Profile != "billing" {
		t.Errorf("profiles %+v, want two named otpd-20261207-… apart, and billing", pairs)
	}
	for _, bad := range []string{"a]b", " x", "x\n"} {
		if err := runGenerateAccessKey([]string{"--profile", bad}, &out, now); err == nil || !strings.Contains(err.Error(), "--profile") {
			t.Errorf("--profile %q: %v, want an error naming --profile", bad, err)
		}
	}
}

// A credentials file in the data directory that is a pipe is refused, by
// otpd serve and by --check-config, rather than read, which would wait for
// a writer forever.
func TestCredentialsFileThatIsAPipe(t *testing.T) {
	for _, v := range []string{"OTPD_ACCESS_KEY_ID", "OTPD_SECRET_ACCESS_KEY", "OTPD_ACCESS_KEYS_FILE", "OTPD_HMAC_KEY", "OTPD_HMAC_KEY_FILE"} {
		t.Setenv(v, "")
	}
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, credentialsFileName), 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 2)
	go func() { done <- runServe([]string{"--check-config", "--data-dir", dir, "--log-level", "error"}) }()
	go func() {
		_, err := loadAccessKeys(dir, slog.New(slog.DiscardHandler))
		done <- err
	}()
	for range 2 {
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "is not a regular file") {
				t.Errorf("with a pipe for credentials: %v, want it refused as no regular file", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a pipe for credentials still blocks after 10 s")
		}
	}
}
