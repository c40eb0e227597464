package sigv4

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// requireTool skips the test when a client is missing, except in CI
// (CI=true), where the missing tool fails it.
func requireTool(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is required in CI: %v", what, err)
	}
	t.Skipf("%s is missing (%v); skipping", what, err)
}

// botocoreScript signs one request with botocore's SigV4Auth, sends it
// with botocore's own HTTP session and prints the status and body.
// With date=1 it signs the way SigV4 allows without X-Amz-Date: the time
// comes from a Date header.
const botocoreScript = `
import datetime, email.utils, sys
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.httpsession import URLLib3Session

method, url, key, secret, body, use_date = sys.argv[1:7]
req = AWSRequest(method=method, url=url, data=body.encode() or None,
                 headers={"Content-Type": "application/json"} if body else {})
auth = SigV4Auth(Credentials(key, secret), "mobiletargeting", "us-east-1")
if use_date == "1":
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    req.context["timestamp"] = now.strftime("%Y%m%dT%H%M%SZ")
    req.headers["Date"] = email.utils.format_datetime(now, usegmt=True)
    string_to_sign = auth.string_to_sign(req, auth.canonical_request(req))
    req.headers["Authorization"] = "AWS4-HMAC-SHA256 Credential=%s, SignedHeaders=%s, Signature=%s" % (
        auth.scope(req), auth.signed_headers(auth.headers_to_sign(req)), auth.signature(string_to_sign, req))
else:
    auth.add_auth(req)
resp = URLLib3Session().send(req.prepare())
print(resp.status_code, resp.text)
`

// TestBotocore sends requests signed and sent by botocore.
func TestBotocore(t *testing.T) {
	requireTool(t, "python3 with botocore", exec.Command("python3", "-c", "import botocore.auth").Run())
	srv := newServer(t, newVerifier(nil))
	tests := []struct {
		name, method, path, body, secret, date string
		wantStatus                             string
	}{
		{"POST with body", "POST", "/v1/apps/0123456789abcdef/otp", `{"BrandName":"otpd"}`, testSecret, "0", "200"},
		{"query and escaped path", "GET", "/v1/apps/app%20id%2Fx%C3%BC/channels/sms?page-size=5&token=a%2Bb%2F%3D&token=c%20d", "", testSecret, "0", "200"},
		{"Date header instead of X-Amz-Date", "POST", "/v1/apps", `{"Name":"app"}`, testSecret, "1", "200"},
		{"wrong secret", "POST", "/v1/apps", `{"Name":"app"}`, "not-the-secret", "0", "403"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command("python3", "-W", "ignore", "-c", botocoreScript,
				tt.method, srv.URL+tt.path, testKeyID, tt.secret, tt.body, tt.date)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("botocore: %v\n%s", err, stderrOf(err))
			}
			status, answer, _ := strings.Cut(strings.TrimSpace(string(out)), " ")
			if status != tt.wantStatus {
				t.Errorf("\n got %s %s\nwant %s", status, answer, tt.wantStatus)
			}
		})
	}
}

// TestCurl sends requests signed by curl --aws-sigv4, which also signs the
// headers given with -H.
func TestCurl(t *testing.T) {
	_, err := exec.LookPath("curl")
	requireTool(t, "curl", err)
	srv := newServer(t, newVerifier(nil))
	for _, tt := range []struct {
		name, secret, path string
		header             []string
		wantStatus         string
	}{
		{"right secret", testSecret, "/v1/apps", nil, "200"},
		{"wrong secret", "not-the-secret", "/v1/apps", nil, "403"},
		{"query", testSecret, "/v1/apps?page-size=5&token=a%2Bb", nil, "200"},
		// Go's server moves Transfer-Encoding out of r.Header.
		{"signed Transfer-Encoding", testSecret, "/v1/apps", []string{"-H", "Transfer-Encoding: chunked"}, "200"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"-sS", "--aws-sigv4", "aws:amz:us-east-1:mobiletargeting",
				"--user", testKeyID + ":" + tt.secret, "-A", "my-custom-agent/1.0",
				"-H", "Content-Type: application/json", "-H", "X-Custom:  two   spaces "}
			args = append(args, tt.header...)
			args = append(args, "-d", `{"Name":"curl app"}`, "-w", "\n%{http_code}", srv.URL+tt.path)
			out, err := exec.Command("curl", args...).Output()
			if err != nil {
				t.Fatalf("curl: %v\n%s", err, stderrOf(err))
			}
			answer, status := splitLast(string(out))
			if status != tt.wantStatus {
				t.Errorf("\n got %s %s\nwant %s", status, answer, tt.wantStatus)
			}
		})
	}
}

// splitLast splits curl's output into the body and the status that
// -w "\n%{http_code}" appends.
func splitLast(out string) (body, status string) {
	i := strings.LastIndexByte(out, '\n')
	return strings.TrimSpace(out[:i+1]), out[i+1:]
}

func stderrOf(err error) []byte {
	if e, ok := err.(*exec.ExitError); ok {
		return e.Stderr
	}
	return nil
}
