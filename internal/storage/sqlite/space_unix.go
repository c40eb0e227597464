//go:build linux || darwin || freebsd

package sqlite

import (
	"os"
	"syscall"
)

// fileSystemSpace is the space free to otpd on the file system that holds
// dir (to root, the blocks reserved for root too), and its size, in bytes.
func fileSystemSpace(dir string) (free, size uint64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, 0, err
	}
	blocks := uint64(st.Bavail)
	if os.Geteuid() == 0 {
		blocks = uint64(st.Bfree)
	}
	return blocks * uint64(st.Bsize), uint64(st.Blocks) * uint64(st.Bsize), nil
}
