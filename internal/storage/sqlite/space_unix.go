//go:build unix

package sqlite

import "syscall"

// fileSystemSpace is the space free to unprivileged users on the file
// system that holds dir, and its size, in bytes.
func fileSystemSpace(dir string) (free, size uint64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, 0, err
	}
	return uint64(st.Bavail) * uint64(st.Bsize), uint64(st.Blocks) * uint64(st.Bsize), nil
}
