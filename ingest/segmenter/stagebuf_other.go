//go:build !unix

package segmenter

// allocBuf returns a zero-length byte slice of capacity at least n.
func allocBuf(n int) []byte { return make([]byte, 0, n) }

// freeBuf gives back a slice from allocBuf.
func freeBuf([]byte) {}
