package metrics

import "syscall"

// fsSpace returns the size and the space available to unprivileged users
// of the file system holding path; zeros when unknown.
func fsSpace(path string) (size, avail int64) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, 0
	}
	return int64(st.Blocks) * st.Bsize, int64(st.Bavail) * st.Bsize
}
