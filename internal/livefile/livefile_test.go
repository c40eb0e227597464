package livefile

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// words is a Spec's value in these tests: the files' contents, each
// trimmed, refused when one says "bad".
type words []string

func parseWords(contents [][]byte) (words, error) {
	var w words
	for _, c := range contents {
		s := strings.TrimSpace(string(c))
		if s == "bad" {
			return nil, errors.New("a file says bad")
		}
		w = append(w, s)
	}
	return w, nil
}

// fixture is a File of two files in a temporary directory, its log and
// the changes it reported.
type fixture struct {
	t       *testing.T
	paths   []string
	f       *File[words]
	logged  bytes.Buffer
	changes []string
}

func newFixture(t *testing.T, a, b string) *fixture {
	t.Helper()
	dir := t.TempDir()
	x := &fixture{t: t, paths: []string{filepath.Join(dir, "a"), filepath.Join(dir, "b")}}
	x.write(0, a)
	x.write(1, b)
	f, err := Open(Spec[words]{
		Name: "the test files", Kept: "the words read before are kept",
		Paths: x.paths, Parse: parseWords,
		Changed: func(_ *slog.Logger, before, after words) {
			x.changes = append(x.changes, fmt.Sprint(before, "->", after))
		},
		Log: slog.New(slog.NewTextHandler(&x.logged, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	f.pause = func() {}
	x.f = f
	return x
}

func (x *fixture) write(i int, s string) {
	x.t.Helper()
	if err := os.WriteFile(x.paths[i], []byte(s), 0o600); err != nil {
		x.t.Fatal(err)
	}
}

// holds checks the File's value and health after step.
func (x *fixture) holds(step string, healthy bool, want ...string) {
	x.t.Helper()
	if got := fmt.Sprint(x.f.Value()); got != fmt.Sprint(want) {
		x.t.Errorf("%s: the value is %s, want %v", step, got, want)
	}
	if x.f.Healthy() != healthy {
		x.t.Errorf("%s: Healthy() = %v, want %v", step, x.f.Healthy(), healthy)
	}
}

func (x *fixture) count(s string) int { return strings.Count(x.logged.String(), s) }

// TestReloadFollowsTheFiles takes the files through what an operator and
// their tools do to them: a change, a change caught half written, files
// that keep changing, a mistake, a missing file and its return.
func TestReloadFollowsTheFiles(t *testing.T) {
	x := newFixture(t, "one", "two")
	x.holds("opened", true, "one", "two")
	x.f.Reload()
	if x.logged.Len() != 0 || len(x.changes) != 0 {
		t.Errorf("a Reload of unchanged files logged %q and reported %v", x.logged.String(), x.changes)
	}

	// A change of the second file alone is taken, and reported once.
	x.write(1, "three")
	x.f.Reload()
	x.f.Reload()
	x.holds("changed", true, "one", "three")
	if want := "[one two]->[one three]"; len(x.changes) != 1 || x.changes[0] != want {
		t.Errorf("changes reported: %v, want [%s]", x.changes, want)
	}

	// Caught while written: the change waits for a read that two reads
	// agree on.
	x.write(0, "fo")
	x.f.pause = func() { x.write(0, "four") }
	x.f.Reload()
	x.holds("caught half written", true, "one", "three")
	x.f.pause = func() {}
	x.f.Reload()
	x.holds("written", true, "four", "three")

	// Files that keep changing are a problem after a few reads, logged
	// once; they are taken once they stay put.
	n := 0
	x.write(1, "five0")
	x.f.pause = func() { n++; x.write(1, fmt.Sprint("five", n)) }
	for range unsettledLimit + 2 {
		x.f.Reload()
	}
	x.holds("files that keep changing", false, "four", "three")
	if c := x.count("changing at every read"); c != 1 {
		t.Errorf("the changing files were logged %d times, want once:\n%s", c, x.logged.String())
	}
	x.f.pause = func() {}
	x.f.Reload()
	x.holds("once they stay put", true, "four", fmt.Sprint("five", n))

	// A mistake: the value stays, and it is logged once with the files.
	x.write(0, "bad")
	x.f.Reload()
	x.f.Reload()
	x.holds("a mistake", false, "four", fmt.Sprint("five", n))
	if c := x.count(fmt.Sprintf("the test files cannot be used: the words read before are kept\" file=\"%s, %s\" err=\"a file says bad\"", x.paths[0], x.paths[1])); c != 1 {
		t.Errorf("the mistake was logged %d times, want once with both files named:\n%s", c, x.logged.String())
	}

	// Gone, then back as it was: the value stays, and both are logged.
	x.write(0, "four")
	os.Remove(x.paths[1])
	x.f.Reload()
	x.f.Reload()
	x.holds("a missing file", false, "four", fmt.Sprint("five", n))
	if c := x.count("no such file"); c != 1 {
		t.Errorf("the missing file was logged %d times, want once:\n%s", c, x.logged.String())
	}
	x.write(1, fmt.Sprint("five", n))
	x.f.Reload()
	x.holds("back as it was", true, "four", fmt.Sprint("five", n))
	if c := x.count("is as it was before its problem: the words read before are kept"); c != 1 {
		t.Errorf("the files' return was logged %d times, want once:\n%s", c, x.logged.String())
	}
	if c := x.count("level=ERROR"); c != 3 {
		t.Errorf("%d errors logged, want 3 (changing, mistake, missing):\n%s", c, x.logged.String())
	}
	if len(x.changes) != 3 {
		t.Errorf("changes reported: %v, want 3", x.changes)
	}
}

// TestOpenNamesTheFiles: a mistake found at Open names the files, and a
// missing one is named by the error.
func TestOpenNamesTheFiles(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	os.WriteFile(a, []byte("bad"), 0o600)
	_, err := Open(Spec[words]{Paths: []string{a, b}, Parse: parseWords})
	if err == nil || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), b) {
		t.Errorf("Open with %s missing: %v, want it named", b, err)
	}
	os.WriteFile(b, []byte("fine"), 0o600)
	_, err = Open(Spec[words]{Paths: []string{a, b}, Parse: parseWords})
	if want := a + ", " + b + ": a file says bad"; err == nil || err.Error() != want {
		t.Errorf("Open of a mistake: %v, want %q", err, want)
	}
}
