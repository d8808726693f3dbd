package segmenter

import (
	"math"
	"os"

	"golang.org/x/sys/unix"
)

// preallocate allocates the blocks of f from from (the end of what is
// allocated so far) to at least need, in steps of preallocStep, without
// changing f's size (FALLOC_FL_KEEP_SIZE), and returns the new end of the
// allocation. Writing into allocated blocks spares ext4 its delayed-
// allocation bookkeeping per page: with 256 KiB writes, ≈20 % of the
// write's CPU (bench/notes.md item 34). The file's size, and so what a
// crash leaves and recovery reads, is unchanged; the blocks past the end
// are given back when the file is truncated to its size at close
// (opFinish) or by recovery, or when it is removed.
//
// It is best effort: on any error (a file system without fallocate, a
// full disk, where the write that follows reports the error) it returns
// math.MaxInt64, so that the segment is not preallocated again.
func preallocate(f *os.File, from, need int64) int64 {
	end := from
	for end < need {
		end += preallocStep
	}
	if err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_KEEP_SIZE, from, end-from); err != nil {
		return math.MaxInt64
	}
	return end
}

// trimPrealloc frees the blocks preallocated past f's end.
func trimPrealloc(f *os.File) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	return f.Truncate(st.Size())
}
