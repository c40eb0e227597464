package accesskeys

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const (
	secretA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	secretB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

func TestParseReadsEveryProfile(t *testing.T) {
	data := "# otpd's keys\n" +
		"[otpd]\naws_access_key_id = OTPDKEYA\naws_secret_access_key = " + secretA + "\nregion = us-east-1\n" +
		"s3 =\n  max_concurrent_requests = 10\n\n" +
		"; the next one\n[otpd-2027] # from 2027 on\r\n  AWS_ACCESS_KEY_ID=OTPDKEYB\r\n\tAws_Secret_Access_Key:  " + secretB + "  \r\n" +
		"[client-settings]\nregion = eu-west-1\nrole_arn = arn:aws:iam::123456789012:role/x\n" +
		"[temporary]\naws_access_key_id = ASIAKEY\naws_secret_access_key = " + secretB + "\naws_session_token = token\n" +
		"[DEFAULT]\nregion = us-west-2\n" +
		"[empty-token]\naws_access_key_id = OTPDKEYC\naws_secret_access_key = " + secretB + "\naws_session_token =\n" +
		"[same-pair]\naws_access_key_id = OTPDKEYA\naws_secret_access_key = " + secretA + "\n"
	pairs, err := Parse([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	want := []Pair{{"otpd", "OTPDKEYA", secretA}, {"otpd-2027", "OTPDKEYB", secretB}, {"empty-token", "OTPDKEYC", secretB}, {"same-pair", "OTPDKEYA", secretA}}
	if !slices.Equal(pairs, want) {
		t.Errorf("Parse = %+v, want %+v", pairs, want)
	}
	r := NewRing(pairs)
	if got := len(r.Pairs()); got != 3 {
		t.Errorf("the ring holds %d pairs, want 3 (one key ID in two profiles is one pair)", got)
	}
	for id, secret := range map[string]string{"OTPDKEYA": secretA, "OTPDKEYB": secretB, "OTPDKEYC": secretB} {
		if got, ok := r.Secret(id); !ok || got != secret {
			t.Errorf("Secret(%s) = %q, %v", id, got, ok)
		}
	}
	for _, id := range []string{"OTPDKEYD", "ASIAKEY"} {
		if _, ok := r.Secret(id); ok {
			t.Errorf("Secret(%s) was found", id)
		}
	}
}

func TestParseNamesTheMistake(t *testing.T) {
	pair := "aws_access_key_id = OTPDKEYA\naws_secret_access_key = " + secretA + "\n"
	const pasted = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	for _, tc := range []struct{ data, want string }{
		{"", "no key pair"},
		{"\uFEFF[a]\n" + pair, "the file begins with a byte-order mark"},
		{"[DEFAULT]\n" + pair, "profile [DEFAULT] holds keys, which the AWS SDKs lend to every other profile"},
		{pasted + "=\n[a]\n" + pair, "line 1: a setting comes before any [profile]"},
		{"[a]\n" + pair + "region = x\nregion = y\n", "line 5: profile [a] sets a setting twice"},
		{"[a]\naws_access_key_id = OTPDKEYA\n\u00a0aws_secret_access_key = " + secretA + "\n", "line 3 begins with white space"},
		{"[a]\naws_access_key_id = OTPD-KEY\naws_secret_access_key = " + secretA + "\n", `holds '-' at character 5: want letters, digits and _ only`},
		{"# nothing\n", "no key pair"},
		{"[a]\nregion = us-east-1\n", "no key pair"},
		{"[a]\n" + pair + "aws_session_token = x\n", "no key pair: the profiles with keys ([a]) have a session token"},
		{pair, "line 1: aws_access_key_id comes before any [profile]"},
		{"[a]\n" + pair + "oops\n", "line 4: want a [profile] or a setting"},
		{"[a]\n" + pair + "= x\n", "line 4: a setting without a name"},
		{"[a\n" + pair, "line 1: want a profile's name in brackets"},
		{"[]\n" + pair, "line 1: want a profile's name in brackets"},
		{"[ a ]\n" + pair, `line 1: the profile's name " a " begins or ends with a space`},
		{"[a]\n" + pair + "[a]\n" + pair, "line 4: profile [a] appears twice"},
		{"[a]\n" + pair + "aws_secret_access_key = " + secretB + "\n", "line 4: profile [a] sets aws_secret_access_key twice"},
		{"[a]\naws_access_key_id = OTPDKEYA\n  aws_secret_access_key = " + secretA + "\n",
			"line 3 begins with white space, so the AWS SDKs read it as more of aws_access_key_id"},
		{"[a]\naws_access_key_id = OTPDKEYA\n[b]\n" + pair, "profile [a] has aws_access_key_id but no aws_secret_access_key"},
		{"[a]\naws_secret_access_key = " + secretA + "\n", "profile [a] has aws_secret_access_key but no aws_access_key_id"},
		{"[a]\naws_access_key_id = OTPDKEYA\naws_secret_access_key = short\n", "profile [a]: the secret access key must be at least 16 characters"},
		{"[a]\naws_access_key_id = " + pasted + "\naws_secret_access_key = " + secretA + "\n", `profile [a]: the access key ID holds '/' at character 14`},
		{"[a]\naws_access_key_id = OTPD KEY\naws_secret_access_key = " + secretA + "\n", `holds ' ' at character 5`},
		{"[a]\naws_access_key_id = " + strings.Repeat("K", 129) + "\naws_secret_access_key = " + secretA + "\n", "129 characters long, want at most 128"},
		{"[a]\n" + pair + "[b]\naws_access_key_id = OTPDKEYA\naws_secret_access_key = " + secretB + "\n",
			"profiles [a] and [b] give one access key ID two different secrets"},
	} {
		_, err := Parse([]byte(tc.data))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v, want an error with %q", tc.data, err, tc.want)
		}
		if err != nil && strings.Contains(strings.ToLower(err.Error()), strings.ToLower(pasted)) {
			t.Errorf("Parse(%q) = %v: the error shows a value that may be a secret", tc.data, err)
		}
	}
}

func TestGeneratedPairParses(t *testing.T) {
	p, err := Generate("otpd")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.AccessKeyID) != 20 || !strings.HasPrefix(p.AccessKeyID, "OTPD") || len(p.SecretAccessKey) != 40 {
		t.Errorf("Generate = %+v, want a 20-character ID beginning with OTPD and a 40-character secret", p)
	}
	q, err := Generate("otpd-next")
	if err != nil {
		t.Fatal(err)
	}
	if q.AccessKeyID == p.AccessKeyID || q.SecretAccessKey == p.SecretAccessKey {
		t.Error("two generated pairs share their ID or secret")
	}
	pairs, err := Parse(q.AppendProfile(p.AppendProfile(nil)))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(pairs, []Pair{p, q}) {
		t.Errorf("Parse(AppendProfile) = %+v, want %+v", pairs, []Pair{p, q})
	}
}

func TestReplaceSaysWhatChanged(t *testing.T) {
	r := NewRing([]Pair{{"a", "KEYA", secretA}, {"b", "KEYB", secretB}})
	added, removed := r.Replace([]Pair{{"b", "KEYB", secretA}, {"c", "KEYC", secretB}, {"a", "KEYA", secretA}})
	if !slices.Equal(added, []string{"KEYB", "KEYC"}) || !slices.Equal(removed, []string{"KEYB"}) {
		t.Errorf("Replace: added %v, removed %v; want [KEYB KEYC] (a new secret and a new key) and [KEYB] (its old secret)", added, removed)
	}
	if s, _ := r.Secret("KEYB"); s != secretA {
		t.Error("KEYB kept its old secret")
	}
}

// TestFileFollowsItsContent rotates a key through a file as an operator
// would: add the new pair, then remove the old one, with a mistake along
// the way that leaves the accepted keys as they were. (How the file is
// read again, half-written and missing files included, is livefile's.)
func TestFileFollowsItsContent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "credentials")
	var logged bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logged, nil))
	old := Pair{"old", "OTPDOLD", secretA}
	next := Pair{"next", "OTPDNEXT", secretB}
	write := func(data []byte) {
		t.Helper()
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var f *File
	accepts := func(step string, healthy bool, want ...Pair) {
		t.Helper()
		var ids []string
		for _, p := range f.Ring().Pairs() {
			ids = append(ids, p.AccessKeyID)
		}
		var wantIDs []string
		for _, p := range want {
			wantIDs = append(wantIDs, p.AccessKeyID)
			if s, ok := f.Ring().Secret(p.AccessKeyID); !ok || s != p.SecretAccessKey {
				t.Errorf("%s: %s not accepted with its secret", step, p.AccessKeyID)
			}
		}
		if !slices.Equal(ids, wantIDs) {
			t.Errorf("%s: the ring holds %v, want %v", step, ids, wantIDs)
		}
		if f.Healthy() != healthy {
			t.Errorf("%s: Healthy() = %v, want %v", step, f.Healthy(), healthy)
		}
	}
	count := func(s string) int { return strings.Count(logged.String(), s) }

	write(old.AppendProfile(nil))
	var err error
	f, err = Open(path, log)
	if err != nil {
		t.Fatal(err)
	}
	accepts("opened", true, old)
	if f.Path() != path {
		t.Errorf("Path() = %q, want %q", f.Path(), path)
	}

	write(next.AppendProfile(old.AppendProfile(nil)))
	f.Reload()
	accepts("new pair added", true, old, next)
	if !strings.Contains(logged.String(), "added=[OTPDNEXT] removed=[]") || count("level=ERROR") != 0 {
		t.Errorf("log %q: want the added key named, and no error", logged.String())
	}

	// A mistake: the keys stay, and it is logged once.
	write(append(next.AppendProfile(nil), "[broken]\naws_access_key_id = X\n"...))
	f.Reload()
	f.Reload()
	accepts("a broken file", false, old, next)
	if c := count("the access keys file cannot be used: the keys read from it before are still accepted"); c != 1 {
		t.Errorf("the mistake was logged %d times, want once:\n%s", c, logged.String())
	}
	if c := count("profile [broken] has aws_access_key_id but no aws_secret_access_key"); c != 1 {
		t.Errorf("the mistake was named %d times, want once:\n%s", c, logged.String())
	}

	write(next.AppendProfile(nil))
	f.Reload()
	accepts("old pair removed", true, next)
	if !strings.Contains(logged.String(), "added=[] removed=[OTPDOLD]") {
		t.Errorf("log %q does not name the key removed", logged.String())
	}
	if strings.Contains(logged.String(), secretA) || strings.Contains(logged.String(), secretB) {
		t.Errorf("a secret reached the log:\n%s", logged.String())
	}
}
