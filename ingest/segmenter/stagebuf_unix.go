//go:build unix

package segmenter

import "syscall"

// allocBuf returns a zero-length byte slice of capacity at least n backed
// by anonymous memory outside the Go heap, for a camera's write staging
// buffer (stageSize): kept in the Go heap it would count towards the GC's
// heap goal, which with GOGC=100 is twice the live heap; off the heap it
// costs its size once. Such a slice must be given back with freeBuf and
// never used after.
func allocBuf(n int) []byte {
	ps := syscall.Getpagesize()
	n = (n + ps - 1) / ps * ps
	b, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return make([]byte, 0, n) // out of address space: the Go heap will do
	}
	return b[:0]
}

// freeBuf gives back a slice from allocBuf.
func freeBuf(b []byte) {
	if cap(b) == 0 {
		return
	}
	// A heap fallback is not a mapping: Munmap fails with EINVAL and the
	// GC reclaims it.
	_ = syscall.Munmap(b[:cap(b)])
}
