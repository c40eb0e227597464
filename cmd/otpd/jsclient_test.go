package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// jsClientScript drives the AWS SDK for JavaScript v3 Pinpoint client,
// configured only from the environment like an application would be. Its
// first argument names the step; it prints the outcome as JSON.
const jsClientScript = `
import { PinpointClient, CreateAppCommand, GetAppCommand, SendOTPMessageCommand, VerifyOTPMessageCommand } from "@aws-sdk/client-pinpoint";
const client = new PinpointClient({ maxAttempts: 1 });
const [step, appId, code] = process.argv.slice(2);
let out;
if (step === "send") {
  const app = await client.send(new CreateAppCommand({ CreateApplicationRequest: { Name: "js-app" } }));
  const id = app.ApplicationResponse.Id;
  const sent = await client.send(new SendOTPMessageCommand({ ApplicationId: id, SendOTPMessageRequestParameters: {
    Channel: "SMS", BrandName: "ExampleCorp", CodeLength: 7, ValidityPeriod: 10, AllowedAttempts: 3, Language: "ja-JP",
    OriginationIdentity: "+18555550142", DestinationIdentity: "+14255550142", ReferenceId: "js-ref" } }));
  out = { appId: id, result: sent.MessageResponse.Result["+14255550142"] };
} else if (step === "verify") {
  const v = await client.send(new VerifyOTPMessageCommand({ ApplicationId: appId, VerifyOTPMessageRequestParameters: {
    DestinationIdentity: "+14255550142", ReferenceId: "js-ref", Otp: code } }));
  out = { valid: v.VerificationResponse.Valid };
} else if (step === "missing") {
  try {
    await client.send(new GetAppCommand({ ApplicationId: "0123456789abcdef0123456789abcdef" }));
    out = { error: null };
  } catch (e) {
    out = { error: e.name, message: e.message, status: e.$metadata.httpStatusCode, requestId: e.$metadata.requestId };
  }
}
console.log(JSON.stringify(out));
`

// jsClientModules finds the node_modules folder that holds the JavaScript
// SDK: $OTPD_JS_CLIENT_DIR, or .ci/js/node_modules, where .ci/run installs it.
func jsClientModules(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("OTPD_JS_CLIENT_DIR")
	if dir == "" {
		dir = filepath.Join("..", "..", ".ci", "js", "node_modules")
	}
	dir, _ = filepath.Abs(dir)
	if _, err := os.Stat(filepath.Join(dir, "@aws-sdk", "client-pinpoint")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the AWS SDK for JavaScript is required in CI but is not in %s (.ci/run installs it): %v", dir, err)
		}
		t.Skipf("skipping: the AWS SDK for JavaScript is not installed in %s (run: npm install --prefix .ci/js)", dir)
	}
	return dir
}

func TestJavaScriptSDK(t *testing.T) {
	node := requireTool(t, "node")
	modules := jsClientModules(t)
	ts := startServer(t, nil)
	// Node resolves ES module imports next to the script, so the script
	// lives beside the modules' folder.
	script := filepath.Join(filepath.Dir(modules), "otpd-client-test.mjs")
	if err := os.WriteFile(script, []byte(jsClientScript), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(script) })
	env := awsEnv(t, ts)
	run := func(v any, args ...string) {
		t.Helper()
		stdout, stderr, err := runTool(t, env, node, append([]string{script}, args...)...)
		if err != nil {
			t.Fatalf("node %v: %v\nstdout: %s\nstderr: %s%s", args, err, stdout, stderr, endpointHint(stderr))
		}
		if err := json.Unmarshal([]byte(stdout), v); err != nil {
			t.Fatalf("node %v printed %q: %v", args, stdout, err)
		}
	}

	var sent struct {
		AppID  string `json:"appId"`
		Result struct {
			DeliveryStatus string
			MessageId      string
			StatusCode     int
		} `json:"result"`
	}
	run(&sent, "send")
	if sent.Result.DeliveryStatus != "SUCCESSFUL" || sent.Result.StatusCode != 200 {
		t.Fatalf("JavaScript send: %+v, want SUCCESSFUL 200", sent.Result)
	}
	entry, code := otpFromOutbox(t, ts.DataDir, sent.Result.MessageId, 7)
	if entry.Encoding != "UCS-2" || entry.Language != "ja-JP" {
		t.Errorf("ja-JP message: language %s, encoding %s, want ja-JP in UCS-2", entry.Language, entry.Encoding)
	}
	for _, step := range []struct {
		code string
		want bool
	}{{wrongCode(code), false}, {code, true}, {code, false}} {
		var got struct{ Valid bool }
		run(&got, "verify", sent.AppID, step.code)
		if got.Valid != step.want {
			t.Errorf("JavaScript verify: Valid %v, want %v", got.Valid, step.want)
		}
	}
	var missing struct {
		Error, Message, RequestID string
		Status                    int
	}
	run(&missing, "missing")
	if missing.Error != "NotFoundException" || missing.Status != 404 || missing.Message == "" || missing.RequestID == "" {
		t.Errorf("JavaScript GetApp of a missing app: %+v, want NotFoundException, 404, a message and a request ID", missing)
	}
}
