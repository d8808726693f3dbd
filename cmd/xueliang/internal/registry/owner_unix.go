//go:build unix

package registry

import (
	"io/fs"
	"os"
	"syscall"
)

// foreignOwner reports whether fi belongs to a user other than the
// process's (root may use any key file).
func foreignOwner(fi fs.FileInfo) (uid int, foreign bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	me := os.Geteuid()
	return int(st.Uid), me != 0 && int(st.Uid) != me
}
