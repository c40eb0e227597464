//go:build !linux

package sqlite

import "os"

// syncData flushes f's data to disk.
func syncData(f *os.File) error { return f.Sync() }
