package sqlite

import (
	"os"
	"syscall"
)

// syncData flushes f's data to disk with fdatasync, as SQLite does on Linux:
// it skips the metadata that does not affect reading the data back (the
// modification time), which spares a journal commit when the log is
// overwritten in place.
func syncData(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}
