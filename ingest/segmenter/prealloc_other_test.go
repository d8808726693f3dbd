//go:build !linux

package segmenter

import "testing"

// allocatedBytes is not measured outside Linux (no preallocation there).
func allocatedBytes(t *testing.T, path string) int64 { return 0 }
