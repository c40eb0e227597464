//go:build !(linux || darwin || freebsd)

package sqlite

import "errors"

// fileSystemSpace is not known here.
func fileSystemSpace(string) (free, size uint64, err error) { return 0, 0, errors.ErrUnsupported }
