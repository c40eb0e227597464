package main

// Tests that drive otpd with real AWS clients that are not Go: the aws CLI
// and boto3, each run as a child process configured only through the
// environment or an AWS config file, as a user would configure them.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/otpd/otpd/internal/pinpointapi"
)

// The SendOTPMessage example of the Pinpoint documentation, as the aws CLI
// shorthand takes it.
const (
	docOrigination = "+18555550142"
	docDestination = "+14255550142"
	docReferenceID = "SampleReferenceId"
	docSendParams  = "Channel=SMS,BrandName=ExampleCorp,CodeLength=6,ValidityPeriod=10,AllowedAttempts=3,Language=en-US," +
		"OriginationIdentity=" + docOrigination + ",DestinationIdentity=" + docDestination + ",ReferenceId=" + docReferenceID
)

// A well-formed application ID that no test creates.
const missingAppID = "0123456789abcdef0123456789abcdef"

var appIDPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

// applicationResponse is Pinpoint's ApplicationResponse as clients print it.
// CreationDate is a string: a number there would fail to decode.
type applicationResponse struct {
	Arn          string
	Id           string
	Name         string
	Tags         map[string]string `json:"tags"`
	CreationDate string
}

// checkApp reports how app differs from a fresh application named name.
func checkApp(t *testing.T, what string, app applicationResponse, name string) {
	t.Helper()
	if !appIDPattern.MatchString(app.Id) {
		t.Errorf("%s: Id = %q, want 32 lowercase hex characters", what, app.Id)
	}
	if want := "arn:aws:mobiletargeting:" + testRegion + ":000000000000:apps/" + app.Id; app.Arn != want {
		t.Errorf("%s: Arn = %q, want %q", what, app.Arn, want)
	}
	if app.Name != name {
		t.Errorf("%s: Name = %q, want %q", what, app.Name, name)
	}
	created, err := time.Parse("2006-01-02T15:04:05.000Z", app.CreationDate)
	if err != nil {
		t.Errorf("%s: CreationDate = %q, want ISO 8601 UTC with milliseconds: %v", what, app.CreationDate, err)
	} else if age := time.Since(created); age < -time.Minute || age > time.Hour {
		t.Errorf("%s: CreationDate = %q, want about now (%s)", what, app.CreationDate, time.Now().UTC().Format(time.RFC3339))
	}
}

type messageResultOut struct {
	DeliveryStatus string
	MessageId      string
	StatusCode     int
	StatusMessage  string
}

// checkDelivered reports a MessageResponse that does not say the message to
// dest went out, and returns its MessageId.
func checkDelivered(t *testing.T, requestID string, result map[string]messageResultOut, dest string) string {
	t.Helper()
	if requestID == "" {
		t.Errorf("MessageResponse.RequestId is empty")
	}
	r, ok := result[dest]
	if !ok || len(result) != 1 {
		t.Fatalf("MessageResponse.Result = %+v, want exactly one entry, for %s", result, dest)
	}
	if r.DeliveryStatus != "SUCCESSFUL" || r.StatusCode != 200 {
		t.Fatalf("Result[%s]: DeliveryStatus %q StatusCode %d, want SUCCESSFUL 200 (StatusMessage %q)",
			dest, r.DeliveryStatus, r.StatusCode, r.StatusMessage)
	}
	if r.MessageId == "" {
		t.Fatalf("Result[%s].MessageId is empty", dest)
	}
	return r.MessageId
}

// ---------------------------------------------------------------------------
// The otpd binary and its outbox.

var otpdBinary struct {
	once sync.Once
	path string
	err  error
}

// binaryDirPrefix names the directories buildOtpd builds into; the suffix is
// the test process's PID, so that a later run can remove what a finished run
// left behind.
const binaryDirPrefix = "otpd-test-bin-"

// buildOtpd builds the otpd command once per test binary and returns the
// path of the executable.
func buildOtpd(t *testing.T) string {
	t.Helper()
	gobin := requireTool(t, "go")
	otpdBinary.once.Do(func() {
		removeStaleBinaries()
		dir := filepath.Join(os.TempDir(), binaryDirPrefix+strconv.Itoa(os.Getpid()))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			otpdBinary.err = err
			return
		}
		path := filepath.Join(dir, "otpd")
		if runtime.GOOS == "windows" {
			path += ".exe"
		}
		// The test runs in the package directory: "." is cmd/otpd.
		cmd := exec.Command(gobin, "build", "-o", path, ".")
		if out, err := cmd.CombinedOutput(); err != nil {
			otpdBinary.err = fmt.Errorf("go build -o %s .: %v\n%s", path, err, out)
			return
		}
		otpdBinary.path = path
	})
	if otpdBinary.err != nil {
		t.Fatalf("building otpd: %v", otpdBinary.err)
	}
	return otpdBinary.path
}

// removeStaleBinaries removes the binaries of earlier test processes that
// have ended (and only those: a concurrent run keeps its own).
func removeStaleBinaries() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), binaryDirPrefix+"*"))
	for _, dir := range dirs {
		pid, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(dir), binaryDirPrefix))
		if err != nil || pid == os.Getpid() {
			continue
		}
		p, err := os.FindProcess(pid)
		if err != nil {
			continue
		}
		if err := p.Signal(syscall.Signal(0)); errors.Is(err, os.ErrProcessDone) || errors.Is(err, syscall.ESRCH) {
			os.RemoveAll(dir)
		}
	}
}

// readOutbox lists the development outbox of dataDir with `otpd outbox
// --json`, run as its own process.
func readOutbox(t *testing.T, dataDir string) []pinpointapi.OutboxEntry {
	t.Helper()
	bin := buildOtpd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "outbox", "--json", "--limit", "10000", "--data-dir", dataDir)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("otpd outbox --json: %v\nstderr: %s", err, stderr.String())
	}
	var entries []pinpointapi.OutboxEntry
	if err := json.Unmarshal(stdout.Bytes(), &entries); err != nil {
		t.Fatalf("otpd outbox --json printed something other than a JSON array of messages: %v\n%s", err, stdout.String())
	}
	return entries
}

// outboxEntry returns the outbox message with the given MessageId.
func outboxEntry(t *testing.T, entries []pinpointapi.OutboxEntry, messageID string) pinpointapi.OutboxEntry {
	t.Helper()
	for _, e := range entries {
		if e.MessageID == messageID {
			return e
		}
	}
	t.Fatalf("the outbox (%d messages) has no message with MessageId %q", len(entries), messageID)
	return pinpointapi.OutboxEntry{}
}

var digitRuns = regexp.MustCompile(`[0-9]+`)

// codeIn returns the code in a message text: its one run of n digits.
func codeIn(body string, n int) (string, error) {
	var codes []string
	for _, run := range digitRuns.FindAllString(body, -1) {
		if len(run) == n {
			codes = append(codes, run)
		}
	}
	if len(codes) != 1 {
		return "", fmt.Errorf("want exactly one %d-digit code in the message; got %q in %q", n, codes, body)
	}
	return codes[0], nil
}

// otpFromOutbox reads the code of the message messageID from the outbox.
func otpFromOutbox(t *testing.T, dataDir, messageID string, codeLength int) (pinpointapi.OutboxEntry, string) {
	t.Helper()
	e := outboxEntry(t, readOutbox(t, dataDir), messageID)
	code, err := codeIn(e.Body, codeLength)
	if err != nil {
		t.Fatal(err)
	}
	return e, code
}

// ---------------------------------------------------------------------------
// Environments for AWS clients.

// environWithout returns os.Environ() without the variables whose names
// start with one of the prefixes, ignoring case.
func environWithout(prefixes ...string) []string {
	var env []string
next:
	for _, kv := range os.Environ() {
		for _, p := range prefixes {
			if len(kv) >= len(p) && strings.EqualFold(kv[:len(p)], p) {
				continue next
			}
		}
		env = append(env, kv)
	}
	return env
}

// deadProxy is where AWS clients are told to send anything not addressed to
// loopback: nothing listens on the discard port, so a client that ignores
// otpd's endpoint settings (botocore before 1.31.0, which brought
// AWS_ENDPOINT_URL_<SERVICE> and the services section) fails at once
// instead of calling AWS.
const deadProxy = "http://127.0.0.1:9"

// awsIsolatedEnv is the environment of an AWS client that knows only what
// the given config and credentials files and extra say: no AWS_* variable
// of the caller's, no instance metadata, no pager, one attempt per request,
// and no way to reach anything but loopback.
func awsIsolatedEnv(configFile, credentialsFile string, extra ...string) []string {
	env := append(environWithout("AWS_", "BOTO_", "HTTP_PROXY=", "HTTPS_PROXY=", "ALL_PROXY=", "NO_PROXY="),
		"AWS_CONFIG_FILE="+configFile,
		"AWS_SHARED_CREDENTIALS_FILE="+credentialsFile,
		"AWS_MAX_ATTEMPTS=1",
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_PAGER=",
		"HTTP_PROXY="+deadProxy, "http_proxy="+deadProxy,
		"HTTPS_PROXY="+deadProxy, "https_proxy="+deadProxy,
		"NO_PROXY=127.0.0.1,localhost", "no_proxy=127.0.0.1,localhost",
	)
	return append(env, extra...)
}

// awsBaseEnv is awsIsolatedEnv with empty config and credentials files.
func awsBaseEnv(t *testing.T, extra ...string) []string {
	t.Helper()
	dir := t.TempDir()
	config := filepath.Join(dir, "config")
	creds := filepath.Join(dir, "credentials")
	for _, f := range []string{config, creds} {
		if err := os.WriteFile(f, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return awsIsolatedEnv(config, creds, extra...)
}

// awsEnv is the environment the README tells users to set: the Pinpoint
// endpoint, otpd's key pair and the region.
func awsEnv(t *testing.T, ts *testServer) []string {
	t.Helper()
	return awsEnvWithSecret(t, ts, ts.Creds.SecretAccessKey)
}

func awsEnvWithSecret(t *testing.T, ts *testServer, secret string) []string {
	t.Helper()
	return awsBaseEnv(t,
		"AWS_ENDPOINT_URL_PINPOINT="+ts.URL,
		"AWS_ACCESS_KEY_ID="+ts.Creds.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY="+secret,
		"AWS_REGION="+testRegion,
		"AWS_DEFAULT_REGION="+testRegion,
	)
}

// runTool runs a program with env and returns what it printed.
func runTool(t *testing.T, env []string, prog string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// ---------------------------------------------------------------------------
// The aws CLI.

// awsCLI runs `aws pinpoint ARGS --output json`.
func awsCLI(t *testing.T, env []string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	return runTool(t, env, "aws", append(append([]string{"pinpoint"}, args...), "--output", "json")...)
}

// awsCLIJSON runs `aws pinpoint ARGS --output json`, which must succeed, and
// decodes what it printed into v.
func awsCLIJSON(t *testing.T, env []string, v any, args ...string) {
	t.Helper()
	stdout, stderr, err := awsCLI(t, env, args...)
	if err != nil {
		t.Fatalf("aws pinpoint %s: %v\nstdout: %s\nstderr: %s%s", strings.Join(args, " "), err, stdout, stderr, endpointHint(stderr))
	}
	if err := json.Unmarshal([]byte(stdout), v); err != nil {
		t.Fatalf("aws pinpoint %s printed something that does not decode into %T: %v\n%s", strings.Join(args, " "), v, err, stdout)
	}
}

// endpointHint explains an error that shows the client tried to leave
// loopback, through deadProxy.
func endpointHint(stderr string) string {
	if !strings.Contains(stderr, strings.TrimPrefix(deadProxy, "http://")) && !strings.Contains(strings.ToLower(stderr), "proxy") {
		return ""
	}
	return "\n(the client ignored otpd's endpoint and tried to reach AWS: AWS_ENDPOINT_URL_PINPOINT and the config file's " +
		"services section need botocore 1.31.0 or later: boto3 1.28.0+, aws CLI v1 1.29.0+)"
}

// awsCLIError runs `aws pinpoint ARGS`, which must fail with the error code
// code, and returns its standard error.
func awsCLIError(t *testing.T, env []string, code string, args ...string) string {
	t.Helper()
	stdout, stderr, err := awsCLI(t, env, args...)
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("aws pinpoint %s: got error %v (stdout %q), want a non-zero exit with %s", strings.Join(args, " "), err, stdout, code)
	}
	if want := "(" + code + ")"; !strings.Contains(stderr, want) {
		t.Errorf("aws pinpoint %s: exit %d, stderr %q; want it to contain %q%s", strings.Join(args, " "), exit.ExitCode(), stderr, want, endpointHint(stderr))
	}
	return stderr
}

func TestAWSCLI(t *testing.T) {
	requireTool(t, "aws")
	ts := startServer(t, nil)
	env := awsEnv(t, ts)

	// CreateApp, GetApp, GetApps.
	var created struct{ ApplicationResponse applicationResponse }
	awsCLIJSON(t, env, &created, "create-app", "--create-application-request", "Name=cli-app")
	app := created.ApplicationResponse
	checkApp(t, "create-app", app, "cli-app")
	if app.Tags == nil {
		t.Errorf("create-app: tags missing, want {}")
	}

	var got struct{ ApplicationResponse applicationResponse }
	awsCLIJSON(t, env, &got, "get-app", "--application-id", app.Id)
	if got.ApplicationResponse.Id != app.Id || got.ApplicationResponse.Arn != app.Arn ||
		got.ApplicationResponse.Name != app.Name || got.ApplicationResponse.CreationDate != app.CreationDate {
		t.Errorf("get-app = %+v, want what create-app answered, %+v", got.ApplicationResponse, app)
	}

	var list struct {
		ApplicationsResponse struct{ Item []applicationResponse }
	}
	awsCLIJSON(t, env, &list, "get-apps")
	if items := list.ApplicationsResponse.Item; len(items) != 1 || items[0].Id != app.Id || items[0].Name != "cli-app" {
		t.Errorf("get-apps: Item = %+v, want the one application %s (cli-app)", items, app.Id)
	}

	// SendOTPMessage, as the Pinpoint documentation shows it.
	var sent struct {
		MessageResponse struct {
			ApplicationId string
			RequestId     string
			Result        map[string]messageResultOut
		}
	}
	awsCLIJSON(t, env, &sent, "send-otp-message", "--application-id", app.Id,
		"--send-otp-message-request-parameters", docSendParams)
	if sent.MessageResponse.ApplicationId != app.Id {
		t.Errorf("send-otp-message: ApplicationId = %q, want %q", sent.MessageResponse.ApplicationId, app.Id)
	}
	msgID := checkDelivered(t, sent.MessageResponse.RequestId, sent.MessageResponse.Result, docDestination)

	entry, code := otpFromOutbox(t, ts.DataDir, msgID, 6)
	if want := "This is your One Time Password: " + code + " from ExampleCorp"; entry.Body != want {
		t.Errorf("outbox Body = %q, want %q", entry.Body, want)
	}
	if entry.DestinationIdentity != docDestination || entry.OriginationIdentity != docOrigination || entry.ApplicationID != app.Id {
		t.Errorf("outbox entry: to %q from %q app %q; want to %q from %q app %q", entry.DestinationIdentity,
			entry.OriginationIdentity, entry.ApplicationID, docDestination, docOrigination, app.Id)
	}

	// VerifyOTPMessage: wrong, right, right again.
	verify := func(otp string) bool {
		t.Helper()
		var v struct{ VerificationResponse struct{ Valid *bool } }
		awsCLIJSON(t, env, &v, "verify-otp-message", "--application-id", app.Id,
			"--verify-otp-message-request-parameters",
			"DestinationIdentity="+docDestination+",ReferenceId="+docReferenceID+",Otp="+otp)
		if v.VerificationResponse.Valid == nil {
			t.Fatalf("verify-otp-message printed no VerificationResponse.Valid")
		}
		return *v.VerificationResponse.Valid
	}
	for i, step := range []struct {
		otp  string
		want bool
	}{{wrongCode(code), false}, {code, true}, {code, false}} {
		if got := verify(step.otp); got != step.want {
			t.Errorf("verification %d (Otp %s, the code is %s): Valid = %v, want %v", i+1, step.otp, code, got, step.want)
		}
	}

	// The error cases and the profile set-up are independent of each
	// other: they run in parallel, after the steps above.
	t.Run("NotFound", func(t *testing.T) {
		t.Parallel()
		awsCLIError(t, env, "NotFoundException", "get-app", "--application-id", missingAppID)
	})
	t.Run("BadRequest", func(t *testing.T) {
		t.Parallel()
		stderr := awsCLIError(t, env, "BadRequestException", "send-otp-message", "--application-id", app.Id,
			"--send-otp-message-request-parameters", strings.Replace(docSendParams, "CodeLength=6", "CodeLength=4", 1))
		if !strings.Contains(stderr, "CodeLength") {
			t.Errorf("send-otp-message with CodeLength=4: stderr %q, want the message to name CodeLength", stderr)
		}
	})
	t.Run("WrongSecret", func(t *testing.T) {
		t.Parallel()
		wrong := awsEnvWithSecret(t, ts, "not-"+ts.Creds.SecretAccessKey)
		awsCLIError(t, wrong, "InvalidSignatureException", "get-apps")
	})

	// The README's production way: a named profile whose services section
	// points Pinpoint, and only Pinpoint, at otpd, with otpd's key pair in
	// the shared credentials file. Nothing in the environment says otpd.
	t.Run("profile", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		config := filepath.Join(dir, "config")
		creds := filepath.Join(dir, "credentials")
		configText := fmt.Sprintf("[profile otpd]\nregion = %s\nservices = otpd-services\n\n"+
			"[services otpd-services]\npinpoint =\n  endpoint_url = %s\n", testRegion, ts.URL)
		credsText := fmt.Sprintf("[otpd]\naws_access_key_id = %s\naws_secret_access_key = %s\n",
			ts.Creds.AccessKeyID, ts.Creds.SecretAccessKey)
		if err := os.WriteFile(config, []byte(configText), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(creds, []byte(credsText), 0o600); err != nil {
			t.Fatal(err)
		}
		env := awsIsolatedEnv(config, creds)
		var list struct {
			ApplicationsResponse struct{ Item []applicationResponse }
		}
		awsCLIJSON(t, env, &list, "get-apps", "--profile", "otpd")
		if items := list.ApplicationsResponse.Item; len(items) != 1 || items[0].Id != app.Id {
			t.Errorf("get-apps --profile otpd: Item = %+v, want the one application %s\nconfig file:\n%s", items, app.Id, configText)
		}
	})
}

// ---------------------------------------------------------------------------
// boto3.

// boto3Script drives boto3 configured only from the environment. Its first
// argument is the mode; it prints one JSON object.
const boto3Script = `
import json
import os
import sys

import boto3
import botocore
from botocore.exceptions import ClientError


def error_of(e):
    return {
        "Class": type(e).__name__,
        "Error": e.response.get("Error", {}),
        "RequestId": e.response.get("ResponseMetadata", {}).get("RequestId", ""),
        "HTTPStatusCode": e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0),
    }


def main():
    client = boto3.client("pinpoint")
    want = os.environ.get("AWS_ENDPOINT_URL_PINPOINT")
    if client.meta.endpoint_url != want:
        raise SystemExit(
            "boto3 %s (botocore %s) ignores AWS_ENDPOINT_URL_PINPOINT=%s and would call %s: "
            "service-specific endpoints need botocore 1.31.0 or later"
            % (boto3.__version__, botocore.__version__, want, client.meta.endpoint_url)
        )
    mode = sys.argv[1]
    out = {"Endpoint": client.meta.endpoint_url, "Region": client.meta.region_name}
    if mode == "send":
        app_id, dest, ref, lang = sys.argv[2:]
        resp = client.send_otp_message(
            ApplicationId=app_id,
            SendOTPMessageRequestParameters={
                "Channel": "SMS",
                "BrandName": "ExampleCorp",
                "CodeLength": 6,
                "ValidityPeriod": 10,
                "AllowedAttempts": 3,
                "Language": lang,
                "OriginationIdentity": "+18555550142",
                "DestinationIdentity": dest,
                "ReferenceId": ref,
            },
        )
        out["MessageResponse"] = resp["MessageResponse"]
        out["HTTPStatusCode"] = resp["ResponseMetadata"]["HTTPStatusCode"]
    elif mode == "apps":
        created = []
        for name in sys.argv[2:]:
            resp = client.create_app(CreateApplicationRequest={"Name": name})
            out.setdefault("CreateStatus", []).append(resp["ResponseMetadata"]["HTTPStatusCode"])
            created.append(resp["ApplicationResponse"])
        out["Created"] = created
        pages = []
        kwargs = {"PageSize": "1"}
        while len(pages) < 20:
            resp = client.get_apps(**kwargs)["ApplicationsResponse"]
            pages.append({"Ids": [a["Id"] for a in resp.get("Item", [])], "NextToken": resp.get("NextToken")})
            if not resp.get("NextToken"):
                break
            kwargs["Token"] = resp["NextToken"]
        out["Pages"] = pages
        try:
            client.get_app(ApplicationId="` + missingAppID + `")
            out["Missing"] = None
        except ClientError as e:
            out["Missing"] = error_of(e)
    elif mode == "verify":
        app_id, dest, ref = sys.argv[2:5]
        valid = []
        for otp in sys.argv[5:]:
            resp = client.verify_otp_message(
                ApplicationId=app_id,
                VerifyOTPMessageRequestParameters={"DestinationIdentity": dest, "ReferenceId": ref, "Otp": otp},
            )
            valid.append(resp["VerificationResponse"]["Valid"])
        out["Valid"] = valid
    else:
        raise SystemExit("unknown mode " + mode)
    json.dump(out, sys.stdout, default=str)


main()
`

// requireBoto3 returns the Python interpreter that imports boto3, or skips
// t (fails it in CI) when there is none.
func requireBoto3(t *testing.T) (python string) {
	t.Helper()
	python = requireTool(t, "python3")
	stdout, stderr, err := runTool(t, os.Environ(), python, "-c", "import sys, boto3; print(sys.executable)")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("boto3 is required in CI but python3 cannot import it: %v\n%s", err, stderr)
		}
		t.Skipf("skipping: python3 cannot import boto3 (pip install boto3): %v\n%s", err, stderr)
	}
	// The interpreter itself, not a wrapper such as a pyenv shim, which
	// costs a second a run on a busy machine.
	if exe := strings.TrimSpace(stdout); exe != "" {
		python = exe
	}
	return python
}

func TestBoto3(t *testing.T) {
	python := requireBoto3(t)
	ts := startServer(t, nil)
	env := awsEnv(t, ts)
	script := filepath.Join(t.TempDir(), "otpd_boto3.py")
	if err := os.WriteFile(script, []byte(boto3Script), 0o600); err != nil {
		t.Fatal(err)
	}
	boto3 := func(t *testing.T, v any, args ...string) {
		t.Helper()
		stdout, stderr, err := runTool(t, env, python, append([]string{script}, args...)...)
		if err != nil {
			t.Fatalf("boto3 script %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, stdout, stderr)
		}
		if err := json.Unmarshal([]byte(stdout), v); err != nil {
			t.Fatalf("boto3 script %s printed something that does not decode into %T: %v\n%s", strings.Join(args, " "), v, err, stdout)
		}
	}
	// CreateApp, GetApps paging (PageSize "1" and Token) and a missing app.
	names := []string{"boto3-app", "boto3-page-2", "boto3-page-3"}
	var apps struct {
		CreateStatus []int
		Created      []applicationResponse
		Pages        []struct {
			Ids       []string
			NextToken *string
		}
		Missing *struct {
			Class          string
			Error          struct{ Code, Message string }
			RequestId      string
			HTTPStatusCode int
		}
	}
	boto3(t, &apps, append([]string{"apps"}, names...)...)
	if len(apps.Created) != len(names) {
		t.Fatalf("create_app: got %d applications, want %d", len(apps.Created), len(names))
	}
	for i, app := range apps.Created {
		checkApp(t, "create_app", app, names[i])
		if apps.CreateStatus[i] != 201 {
			t.Errorf("create_app %s: HTTP status %d, want 201", names[i], apps.CreateStatus[i])
		}
	}
	want := map[string]bool{}
	for _, app := range apps.Created {
		want[app.Id] = true
	}
	// The script follows NextToken until a page has none (at most 20).
	if len(apps.Pages) == 0 {
		t.Fatalf("get_apps: the script saw no page")
	}
	if len(apps.Pages) != len(names) || apps.Pages[len(apps.Pages)-1].NextToken != nil {
		t.Errorf("get_apps with PageSize '1': %d pages, the last with NextToken %v; want %d pages, the last without NextToken",
			len(apps.Pages), apps.Pages[len(apps.Pages)-1].NextToken, len(names))
	}
	seen := map[string]bool{}
	for i, page := range apps.Pages {
		if len(page.Ids) != 1 {
			t.Errorf("get_apps page %d: %d items %v, want 1 (PageSize '1')", i+1, len(page.Ids), page.Ids)
		}
		for _, id := range page.Ids {
			if seen[id] || !want[id] {
				t.Errorf("get_apps page %d: application %s is repeated or was never created", i+1, id)
			}
			seen[id] = true
		}
	}
	if len(seen) != len(want) {
		t.Errorf("get_apps pages %+v: saw %d applications, want all %d created", apps.Pages, len(seen), len(want))
	}
	if m := apps.Missing; m == nil {
		t.Errorf("get_app(%s) succeeded, want a ClientError", missingAppID)
	} else {
		if m.Error.Code != "NotFoundException" || m.Class != "NotFoundException" || m.HTTPStatusCode != 404 {
			t.Errorf("get_app(missing): %s, Error.Code %q, HTTP %d; want NotFoundException, NotFoundException, 404",
				m.Class, m.Error.Code, m.HTTPStatusCode)
		}
		if m.Error.Message == "" {
			t.Errorf("get_app(missing): Error.Message is empty, want a helpful message")
		}
		if m.RequestId == "" {
			t.Errorf("get_app(missing): ResponseMetadata.RequestId is empty")
		}
	}

	// SendOTPMessage in two languages; VerifyOTPMessage wrong, right, right.
	app := apps.Created[0]
	for _, tc := range []struct {
		lang, dest, ref, text, encoding string
	}{
		{"pt-BR", "+14255550143", "boto3-pt", "Esta é a sua senha de uso único: %s de ExampleCorp", "UCS-2"},
		{"es-ES", "+14255550144", "boto3-es", "Esta es tu contraseña de un solo uso: %s de ExampleCorp", "GSM-7"},
	} {
		t.Run(tc.lang, func(t *testing.T) {
			t.Parallel()
			var sent struct {
				Endpoint        string
				Region          string
				HTTPStatusCode  int
				MessageResponse struct {
					ApplicationId string
					RequestId     string
					Result        map[string]messageResultOut
				}
			}
			boto3(t, &sent, "send", app.Id, tc.dest, tc.ref, tc.lang)
			if sent.Endpoint != ts.URL || sent.Region != testRegion {
				t.Errorf("boto3 client: endpoint %q region %q, want %q %q (from the environment)", sent.Endpoint, sent.Region, ts.URL, testRegion)
			}
			if sent.HTTPStatusCode != 200 || sent.MessageResponse.ApplicationId != app.Id {
				t.Errorf("send_otp_message: HTTP %d ApplicationId %q, want 200 %q", sent.HTTPStatusCode, sent.MessageResponse.ApplicationId, app.Id)
			}
			msgID := checkDelivered(t, sent.MessageResponse.RequestId, sent.MessageResponse.Result, tc.dest)
			entry, code := otpFromOutbox(t, ts.DataDir, msgID, 6)
			if want := fmt.Sprintf(tc.text, code); entry.Body != want {
				t.Errorf("outbox Body = %q, want %q", entry.Body, want)
			}
			if entry.Language != tc.lang || entry.Encoding != tc.encoding {
				t.Errorf("outbox: Language %q Encoding %q, want %q %q", entry.Language, entry.Encoding, tc.lang, tc.encoding)
			}
			var verified struct{ Valid []bool }
			boto3(t, &verified, "verify", app.Id, tc.dest, tc.ref, wrongCode(code), code, code)
			if want := []bool{false, true, false}; fmt.Sprint(verified.Valid) != fmt.Sprint(want) {
				t.Errorf("verify_otp_message with a wrong code, the code %s, the code again: Valid %v, want %v", code, verified.Valid, want)
			}
		})
	}
}
