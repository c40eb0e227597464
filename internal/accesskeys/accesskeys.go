// Package accesskeys holds the access key pairs that clients sign their
// requests with. Pairs are written in the AWS shared-credentials format (the
// file every AWS SDK reads), one profile per pair, so that one file serves
// both otpd and its clients. A Ring is the set of pairs otpd accepts; a File
// keeps a Ring up to date with its file while otpd runs, so that pairs are
// added and removed (rotated) without a restart.
package accesskeys

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"unicode"
)

// Pair is one access key pair.
type Pair struct {
	// Profile names the pair in its file; empty for a pair from elsewhere
	// (the environment).
	Profile         string
	AccessKeyID     string
	SecretAccessKey string
}

// MinSecretLength is the shortest secret access key accepted.
const MinSecretLength = 16

// maxIDLength is the longest access key ID accepted, as AWS's.
const maxIDLength = 128

// CheckID reports what is wrong with an access key ID: characters other
// than AWS allows in one (letters, digits and _; a secret, pasted in the
// wrong place, has others) or more of them.
func CheckID(id string) error {
	switch {
	case id == "":
		return errors.New("the access key ID is empty")
	case len(id) > maxIDLength:
		return fmt.Errorf("the access key ID is %d characters long, want at most %d", len(id), maxIDLength)
	}
	for i, c := range []byte(id) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			// The ID itself is not shown: it may be a secret pasted
			// in the wrong place.
			return fmt.Errorf("the access key ID holds %q at character %d: want letters, digits and _ only", c, i+1)
		}
	}
	return nil
}

// CheckProfile reports what is wrong with a profile's name: one that its
// file could not hold ([name] on a line of its own, without brackets in
// it, not beginning or ending with a space).
func CheckProfile(name string) error {
	switch {
	case name == "":
		return errors.New("a profile's name must not be empty")
	case strings.TrimSpace(name) != name:
		return fmt.Errorf("the profile's name %q begins or ends with a space", name)
	case strings.ContainsAny(name, "[]\r\n"):
		return fmt.Errorf("the profile's name %q holds a bracket or a line break", name)
	}
	return nil
}

// CheckSecret reports what is wrong with a secret access key: too short.
func CheckSecret(secret string) error {
	if len(secret) < MinSecretLength {
		return fmt.Errorf("the secret access key must be at least %d characters", MinSecretLength)
	}
	return nil
}

// Generate makes a pair shaped like AWS's, named profile: a 20-character
// key ID beginning with OTPD and a 40-character secret, from crypto/rand.
func Generate(profile string) (Pair, error) {
	id := make([]byte, 10)
	secret := make([]byte, 30)
	if _, err := rand.Read(id); err != nil {
		return Pair{}, err
	}
	if _, err := rand.Read(secret); err != nil {
		return Pair{}, err
	}
	return Pair{
		Profile:         profile,
		AccessKeyID:     "OTPD" + base32.StdEncoding.EncodeToString(id)[:16],
		SecretAccessKey: base64.StdEncoding.EncodeToString(secret),
	}, nil
}

// AppendProfile appends p as a profile of a shared-credentials file.
// It begins with a blank line, so that it may be appended to a file whose
// last line has no line break.
func (p Pair) AppendProfile(dst []byte) []byte {
	return fmt.Appendf(dst, "\n[%s]\naws_access_key_id = %s\naws_secret_access_key = %s\n", p.Profile, p.AccessKeyID, p.SecretAccessKey)
}

// Parse reads the pairs of a shared-credentials file as the AWS SDKs read
// it (botocore's reading, Python's configparser, is the model): every
// profile ([name]) with aws_access_key_id and aws_secret_access_key is one
// pair. Settings are name = value or name: value, their names matched
// without regard to case; a line indented more than the setting before it
// continues that setting's value; lines whose first character is # or ;
// are comments. A profile without either key (one that holds a region or a
// role for a client) is skipped, and so is one with a session token, since
// otpd's keys are never temporary. What the SDKs would refuse or misread (a
// setting before any profile, a profile or a setting given twice, a
// byte-order mark, keys in [DEFAULT], which configparser lends to every
// profile) is refused too, and so is a pair otpd cannot use. An error names the line or the
// profile; a file with no pair at all is one.
func Parse(data []byte) ([]Pair, error) {
	type profile struct {
		Pair
		settings  map[string]bool
		temporary bool
	}
	var (
		pairs   []Pair
		seen    = map[string]bool{}
		skipped []string // profiles with a session token
		cur     *profile
		setting string // the setting of the last line that set one in cur
		indent  int    // the indentation of the last profile or setting line
	)
	finish := func() error {
		if cur == nil {
			return nil
		}
		p := cur.Pair
		switch {
		case cur.Profile == "DEFAULT" && (p.AccessKeyID != "" || p.SecretAccessKey != "" || cur.temporary):
			// configparser's DEFAULT section lends its settings to every
			// other profile.
			return errors.New("profile [DEFAULT] holds keys, which the AWS SDKs lend to every other profile: name it otherwise")
		case cur.temporary:
			skipped = append(skipped, p.Profile)
			return nil
		case p.AccessKeyID == "" && p.SecretAccessKey == "":
			return nil
		case p.AccessKeyID == "":
			return fmt.Errorf("profile [%s] has aws_secret_access_key but no aws_access_key_id", p.Profile)
		case p.SecretAccessKey == "":
			return fmt.Errorf("profile [%s] has aws_access_key_id but no aws_secret_access_key", p.Profile)
		}
		if err := CheckID(p.AccessKeyID); err != nil {
			return fmt.Errorf("profile [%s]: %w", p.Profile, err)
		}
		if err := CheckSecret(p.SecretAccessKey); err != nil {
			return fmt.Errorf("profile [%s]: %w", p.Profile, err)
		}
		for _, q := range pairs {
			if q.AccessKeyID == p.AccessKeyID && q.SecretAccessKey != p.SecretAccessKey {
				return fmt.Errorf("profiles [%s] and [%s] give one access key ID two different secrets", q.Profile, p.Profile)
			}
		}
		pairs = append(pairs, p)
		return nil
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		raw := sc.Text()
		if n == 1 && strings.HasPrefix(raw, "\uFEFF") {
			return nil, errors.New("the file begins with a byte-order mark, which the AWS SDKs cannot read: save it without one")
		}
		line := strings.TrimSpace(raw)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		lineIndent := len(raw) - len(strings.TrimLeftFunc(raw, unicode.IsSpace))
		if setting != "" && lineIndent > indent {
			if setting == "aws_access_key_id" || setting == "aws_secret_access_key" {
				return nil, fmt.Errorf("line %d begins with white space, so the AWS SDKs read it as more of %s on the line before: remove the white space", n, setting)
			}
			continue // more of a setting otpd does not read
		}
		indent = lineIndent
		if line[0] == '[' {
			end := strings.LastIndexByte(line, ']')
			if end < 2 {
				return nil, fmt.Errorf("line %d: want a profile's name in brackets, [name]", n)
			}
			name := line[1:end]
			if err := CheckProfile(name); err != nil {
				return nil, fmt.Errorf("line %d: %w", n, err)
			}
			if err := finish(); err != nil {
				return nil, err
			}
			if seen[name] {
				return nil, fmt.Errorf("line %d: profile [%s] appears twice", n, name)
			}
			seen[name] = true
			cur, setting = &profile{Pair: Pair{Profile: name}, settings: map[string]bool{}}, ""
			continue
		}
		i := strings.IndexAny(line, "=:")
		if i < 0 {
			return nil, fmt.Errorf("line %d: want a [profile] or a setting, name = value", n)
		}
		key, value := strings.ToLower(strings.TrimSpace(line[:i])), strings.TrimSpace(line[i+1:])
		switch {
		case key == "":
			return nil, fmt.Errorf("line %d: a setting without a name", n)
		case cur == nil:
			return nil, fmt.Errorf("line %d: %s comes before any [profile]", n, shown(key))
		case cur.settings[key]:
			return nil, fmt.Errorf("line %d: profile [%s] sets %s twice", n, cur.Profile, shown(key))
		}
		cur.settings[key], setting = true, key
		switch key {
		case "aws_access_key_id":
			cur.AccessKeyID = value
		case "aws_secret_access_key":
			cur.SecretAccessKey = value
		case "aws_session_token", "aws_security_token":
			cur.temporary = cur.temporary || value != ""
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if err := finish(); err != nil {
		return nil, err
	}
	if len(pairs) == 0 {
		if len(skipped) > 0 {
			return nil, fmt.Errorf("no key pair: the profiles with keys ([%s]) have a session token, and otpd's keys are never temporary", strings.Join(skipped, "], ["))
		}
		return nil, errors.New("no key pair: want a [profile] with aws_access_key_id and aws_secret_access_key lines")
	}
	return pairs, nil
}

// shown is a setting's name as an error may show it: one of the keys'
// settings, or "a setting" for any other, whose name may be a secret on a
// line of its own (base64's = padding reads as a setting).
func shown(setting string) string {
	switch setting {
	case "aws_access_key_id", "aws_secret_access_key", "aws_session_token", "aws_security_token":
		return setting
	}
	return "a setting"
}

// Ring is the set of pairs otpd accepts, replaced as a whole. It implements
// sigv4.Keyring, and is safe for concurrent use.
type Ring struct {
	state atomic.Pointer[ringState]
}

type ringState struct {
	pairs   []Pair // in their file's order, each access key ID once
	secrets map[string]string
}

// NewRing returns a Ring of pairs, which must hold at least one.
func NewRing(pairs []Pair) *Ring {
	r := &Ring{}
	r.Replace(pairs)
	return r
}

// Secret returns the secret of the access key accessKeyID, if the ring
// holds it.
func (r *Ring) Secret(accessKeyID string) (string, bool) {
	secret, ok := r.state.Load().secrets[accessKeyID]
	return secret, ok
}

// Pairs returns the ring's pairs, each access key ID once, in the order
// they were given. The caller must not change the slice.
func (r *Ring) Pairs() []Pair { return r.state.Load().pairs }

// Replace makes pairs the ring's, and returns the access key IDs that it
// did not hold before (added) and those that it no longer holds (removed);
// an ID whose secret changed is in both.
func (r *Ring) Replace(pairs []Pair) (added, removed []string) {
	next := &ringState{secrets: make(map[string]string, len(pairs))}
	for _, p := range pairs {
		if _, dup := next.secrets[p.AccessKeyID]; !dup {
			next.secrets[p.AccessKeyID] = p.SecretAccessKey
			next.pairs = append(next.pairs, p)
		}
	}
	prev := r.state.Swap(next)
	if prev == nil {
		prev = &ringState{}
	}
	for _, p := range next.pairs {
		if secret, ok := prev.secrets[p.AccessKeyID]; !ok || secret != p.SecretAccessKey {
			added = append(added, p.AccessKeyID)
		}
	}
	for _, p := range prev.pairs {
		if secret, ok := next.secrets[p.AccessKeyID]; !ok || secret != p.SecretAccessKey {
			removed = append(removed, p.AccessKeyID)
		}
	}
	slices.Sort(added)
	slices.Sort(removed)
	return added, removed
}
