//go:build !linux

package metrics

// fsSpace is not implemented on this platform.
func fsSpace(string) (size, avail int64) { return 0, 0 }
