//go:build !linux

package segmenter

import (
	"math"
	"os"
)

// preallocate is a no-op outside Linux (see prealloc_linux.go): it returns
// math.MaxInt64 so that it is not called again for the segment.
func preallocate(f *os.File, from, need int64) (int64, error) { return math.MaxInt64, nil }

// trimPrealloc has nothing to free outside Linux.
func trimPrealloc(f *os.File) error { return nil }
