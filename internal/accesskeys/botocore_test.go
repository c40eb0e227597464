package accesskeys

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// botocoreScript prints, for the credentials file named by its argument,
// every profile's two keys as botocore reads them, or the error it raises.
const botocoreScript = `
import json, sys
from botocore.configloader import raw_config_parse
try:
    cfg = raw_config_parse(sys.argv[1])
except Exception as e:
    print(json.dumps({"error": type(e).__name__ + ": " + str(e)}))
else:
    print(json.dumps({"profiles": {name: [s.get("aws_access_key_id"), s.get("aws_secret_access_key")] for name, s in cfg.items()}}))
`

// The file of pairs is meant to serve otpd and its clients alike: every
// pair otpd reads from it is the pair botocore (boto3, the aws CLI) reads
// for that profile, and a file botocore refuses, otpd refuses too.
func TestParseReadsWhatBotocoreReads(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err == nil {
		err = exec.Command(python, "-c", "import botocore").Run()
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("botocore is required in CI: %v", err)
		}
		t.Skipf("skipping: python3 cannot import botocore (pip install boto3): %v", err)
	}
	pair := "aws_access_key_id = OTPDKEYA\naws_secret_access_key = " + secretA + "\n"
	for i, tc := range []struct {
		data    string
		refused bool // by otpd; botocore raises, or reads no whole pair
	}{
		{data: "[otpd]\n" + pair},
		{data: "# comment\n; another\n[a] # prod\nAWS_ACCESS_KEY_ID: OTPDKEYA\naws_secret_access_key=" + secretA + "\r\n"},
		{data: "[a]\n" + pair + "region = us-east-1\ns3 =\n  max_concurrent_requests = 10\n[b]\nregion = eu-west-1\n"},
		{data: "[a]\n  aws_access_key_id = OTPDKEYA\n aws_secret_access_key = " + secretA + "\n"},
		{data: "[a]\n" + pair + "[b]\naws_access_key_id = OTPDKEYB\naws_secret_access_key = " + secretB + "\naws_session_token = t\n"},
		{data: "[a]\naws_access_key_id = OTPDKEYA\naws_secret_access_key = " + secretA}, // no final line break
		{data: pair, refused: true},
		{data: "[a]\n" + pair + "[a]\n" + pair, refused: true},
		{data: "[a]\n" + pair + "aws_access_key_id = OTPDKEYB\n", refused: true},
		{data: "[a]\naws_access_key_id = OTPDKEYA\n  aws_secret_access_key = " + secretA + "\n", refused: true},
		{data: "[a]\n" + pair + "oops\n", refused: true},
		{data: "\uFEFF[a]\n" + pair, refused: true},
		{data: "[a]\naws_access_key_id = OTPDKEYA\n\u00a0aws_secret_access_key = " + secretA + "\n", refused: true},
		{data: "[a]\n" + pair + "aws_session_token =\n"},
	} {
		path := filepath.Join(t.TempDir(), "credentials")
		if err := os.WriteFile(path, []byte(tc.data), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(python, "-c", botocoreScript, path).Output()
		if err != nil {
			t.Fatalf("file %d: botocore: %v", i, err)
		}
		var read struct {
			Error    string
			Profiles map[string][2]*string
		}
		if err := json.Unmarshal(out, &read); err != nil {
			t.Fatalf("file %d: %v: %s", i, err, out)
		}
		pairs, err := Parse([]byte(tc.data))
		if tc.refused {
			a := read.Profiles["a"]
			whole := a[0] != nil && a[1] != nil && !strings.Contains(*a[0], "\n") && !strings.Contains(*a[1], "\n")
			if err == nil || (read.Error == "" && whole) {
				t.Errorf("file %d %q: botocore: %q, reads [a] as %v; otpd: %v; want both to refuse it", i, tc.data, read.Error, a, err)
			}
			continue
		}
		if err != nil || read.Error != "" {
			t.Errorf("file %d %q: botocore: %q; otpd: %v; want both to read it", i, tc.data, read.Error, err)
			continue
		}
		for _, p := range pairs {
			keys, ok := read.Profiles[p.Profile]
			if !ok || keys[0] == nil || keys[1] == nil || *keys[0] != p.AccessKeyID || *keys[1] != p.SecretAccessKey {
				t.Errorf("file %d %q: otpd reads [%s] as %s, botocore as %v", i, tc.data, p.Profile, p.AccessKeyID, read.Profiles[p.Profile])
			}
		}
		// And every profile in which botocore finds both keys is a pair
		// for otpd, but those with a session token.
		for name, keys := range read.Profiles {
			if keys[0] == nil || keys[1] == nil || strings.Contains(tc.data, "aws_session_token = t") && name == "b" {
				continue
			}
			if !slices.ContainsFunc(pairs, func(p Pair) bool { return p.Profile == name }) {
				t.Errorf("file %d %q: botocore reads keys in [%s], otpd no pair", i, tc.data, name)
			}
		}
	}
}
