package main

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/pinpoint"

	"github.com/otpd/otpd/internal/accesskeys"
)

// syncBuffer is a log's destination that a test reads while the server
// writes to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// A key is rotated the way the README tells: a second pair is added to
// OTPD_ACCESS_KEYS_FILE while otpd runs, clients move to it, reading the
// same file with the AWS SDK's shared-credentials loader, and the old pair
// is removed. No restart; a broken file on the way changes nothing.
func TestAccessKeyRotationWithoutARestart(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "access-keys")
	replace := func(data []byte) {
		t.Helper()
		if err := os.WriteFile(file+".new", data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(file+".new", file); err != nil {
			t.Fatal(err)
		}
	}
	old, _ := accesskeys.Generate("otpd")
	next, _ := accesskeys.Generate("otpd-next")
	replace(old.AppendProfile(nil))
	t.Setenv("OTPD_ACCESS_KEY_ID", "")
	t.Setenv("OTPD_SECRET_ACCESS_KEY", "")
	t.Setenv("OTPD_ACCESS_KEYS_FILE", file)
	var logs syncBuffer
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

	// The new pair, added while otpd runs: refused until otpd reads the
	// file again (every 10 s), then accepted beside the old one.
	replace(next.AppendProfile(old.AppendProfile(nil)))
	nextClient := clientOf("otpd-next")
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := accepted(nextClient)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the added pair is still refused after 15 s: %v", err)
		}
		wantAPIError(t, err, "UnrecognizedClientException", "The security token included in the request is invalid.")
		time.Sleep(200 * time.Millisecond)
	}
	if err := accepted(oldClient); err != nil {
		t.Errorf("the old pair, while both are in the file: %v", err)
	}
	if !strings.Contains(logs.String(), "added=["+next.AccessKeyID+"]") {
		t.Errorf("the log does not name the added key:\n%s", logs.String())
	}

	// Which key signs, for the operator who waits for the old one to fall
	// silent.
	m := ts.metrics(t)
	for _, p := range []accesskeys.Pair{old, next} {
		if m[`otpd_access_key_requests_total{access_key_id="`+p.AccessKeyID+`"}`] < 1 {
			t.Errorf("otpd_access_key_requests_total has no request signed by %s", p.AccessKeyID)
		}
	}

	// A mistake in the file changes nothing, and is logged.
	replace([]byte("[otpd-next]\naws_access_key_id = " + next.AccessKeyID + "\n"))
	ts.srv.accessKeys.file.Reload()
	if err := accepted(oldClient); err != nil {
		t.Errorf("the old pair, after a broken file: %v", err)
	}
	if !strings.Contains(logs.String(), "has aws_access_key_id but no aws_secret_access_key") {
		t.Errorf("the log does not say what is wrong with the file:\n%s", logs.String())
	}

	// The old pair removed: refused as an unknown key, the new one kept.
	replace(next.AppendProfile(nil))
	ts.srv.accessKeys.file.Reload()
	wantAPIError(t, accepted(oldClient), "UnrecognizedClientException")
	if err := accepted(nextClient); err != nil {
		t.Errorf("the new pair, once alone: %v", err)
	}
	for _, p := range []accesskeys.Pair{old, next} {
		if strings.Contains(logs.String(), p.SecretAccessKey) {
			t.Errorf("the log holds the secret of %s", p.AccessKeyID)
		}
	}
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
