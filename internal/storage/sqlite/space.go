package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
)

// roomToWrite is how much space the database's file system must have free
// for writes to be taken as possible again once one failed for want of
// space: room for the write-ahead log to grow to the size at which the
// checkpointer starts it over, and as much again; on a file system of
// less than ten times that, a tenth of its size.
const roomToWrite = 32 << 20

// WritesFailing reports, with an error saying why, that writes fail: one
// failed for want of space on the disk, and the file system still has less
// than roomToWrite free (a tenth of its size, on a small one). Once it has
// that much, the store takes writes again by itself. It implements storage.WriteChecker: sends ask it before
// texting a code that could not be stored.
func (s *Store) WritesFailing(ctx context.Context) error {
	if !s.w.full.Load() {
		return nil
	}
	free, size, err := fileSystemSpace(filepath.Dir(s.w.walPath))
	switch need := min(roomToWrite, size/10); {
	case err != nil:
		// Nothing tells (no statfs here, or it failed): let the next
		// write find out.
		s.w.full.Store(false)
		return nil
	case free < need:
		return fmt.Errorf("storage/sqlite: a write failed for want of space, and the disk holding the database has less free than the %d KiB otpd waits for before it writes again", need>>10)
	}
	s.w.full.Store(false)
	return nil
}
