//go:build unix

package livefile

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A file that is not a regular file is refused at once, without waiting
// for a writer: a pipe would block every read.
func TestFilesMustBeRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("no FIFOs here: %v", err)
	}
	for path, want := range map[string]string{fifo: "is not a regular file", dir: "is a directory, not a regular file"} {
		done := make(chan error, 1)
		go func() { _, err := Open(Spec[words]{Paths: []string{path}, Parse: parseWords}); done <- err }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("Open(%s) = %v, want it refused as no regular file", path, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("Open(%s) still waits after 5 s", path)
		}
	}
}
