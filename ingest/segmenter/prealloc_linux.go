package segmenter

import (
	"fmt"
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
// It is best effort: on an error (a file system without fallocate, a full
// disk, where the write that follows reports it) it returns math.MaxInt64,
// so that the segment is not preallocated again, and the error.
func preallocate(f *os.File, from, need int64) (int64, error) {
	end := from
	for end < need {
		end += preallocStep
	}
	// Through the raw connection, which holds the descriptor open for the
	// call (f.Fd() would not).
	rc, err := f.SyscallConn()
	if err == nil {
		cerr := rc.Control(func(fd uintptr) {
			err = unix.Fallocate(int(fd), unix.FALLOC_FL_KEEP_SIZE, from, end-from)
		})
		if cerr != nil {
			err = cerr
		}
	}
	if err != nil {
		return math.MaxInt64, fmt.Errorf("fallocate: %w", err)
	}
	return end, nil
}

// trimPrealloc frees the blocks preallocated past f's end.
func trimPrealloc(f *os.File) error {
	st, err := f.Stat()
	if err == nil {
		err = f.Truncate(st.Size())
	}
	if err != nil {
		return fmt.Errorf("free preallocated blocks: %w", err)
	}
	return nil
}
