package architecture

import (
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/otpd/otpd"

type pkg struct {
	ImportPath string
	Doc        string
	Imports    []string
	Name       string
}

// packages lists the module's packages with `go list`.
func packages(t *testing.T) []pkg {
	t.Helper()
	out, err := exec.Command("go", "list", "-json", module+"/...").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	return pkgs
}

func TestEveryPackageHasADocComment(t *testing.T) {
	for _, p := range packages(t) {
		if strings.TrimSpace(p.Doc) == "" {
			t.Errorf("%s has no package doc comment saying what it is for", p.ImportPath)
		}
	}
}

// allowed lists, for each package, the otpd packages it may import.
// A package missing here may import no otpd package at all.
var allowed = map[string][]string{
	"internal/storage/sqlite":      {"internal/storage"},
	"internal/storage/postgres":    {"internal/storage"},
	"internal/storage/redis":       {"internal/storage"},
	"internal/storage/storagetest": {"internal/storage"},
	"internal/sms":                 {"internal/phone"},
	"internal/sms/outbox":          {"internal/sms", "internal/storage", "internal/gsm7"},
	"internal/sms/webhook":         {"internal/sms", "internal/gsm7"},
	"internal/sms/smstest":         {"internal/sms"},
	"internal/sms/awssms":          {"internal/sms"},
	"internal/sms/twilio":          {"internal/sms"},
	"internal/sms/smpp":            {"internal/sms", "internal/gsm7"},
	"internal/sms/route":           {"internal/sms", "internal/phone"},
	"internal/sms/smscsim":         {},
	"internal/metrics":             {"internal/storage", "internal/otp", "internal/sms/route"},
	"internal/otp":                 {"internal/storage", "internal/sms", "internal/phone", "internal/keyedmac"},
	"internal/sigv4":               {"internal/keyedmac"},
	"internal/accesskeys":          {"internal/livefile"},
	"internal/pinpointapi":         {"internal/otp", "internal/storage", "internal/sigv4", "internal/metrics", "internal/phone"},
	"cmd/otpd":                     {"*"},
}

func TestDependenciesPointInward(t *testing.T) {
	for _, p := range packages(t) {
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		may := allowed[rel]
		if slices.Contains(may, "*") {
			continue
		}
		for _, imp := range p.Imports {
			dep, ok := strings.CutPrefix(imp, module+"/")
			if !ok {
				continue
			}
			if !slices.Contains(may, dep) {
				t.Errorf("%s imports %s; it may import only %v", rel, dep, may)
			}
		}
	}
}

// TestDomainKnowsNoTransport keeps HTTP out of the domain and the contracts.
func TestDomainKnowsNoTransport(t *testing.T) {
	for _, p := range packages(t) {
		rel := strings.TrimPrefix(p.ImportPath, module+"/")
		switch rel {
		case "internal/otp", "internal/storage", "internal/sms", "internal/storage/sqlite":
			if slices.Contains(p.Imports, "net/http") {
				t.Errorf("%s imports net/http; the wire format belongs in internal/pinpointapi", rel)
			}
		}
	}
}
