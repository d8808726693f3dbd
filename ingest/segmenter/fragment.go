package segmenter

import (
	"encoding/binary"
)

// This file lays out a fragment in the spool file as it is recorded. A
// fragment's moof (sample sizes, durations, flags) precedes its mdat but is
// known only when the fragment ends, so the writer reserves head bytes at
// the fragment's offset, writes each access unit (in AVCC form) into the
// file behind the reservation as it arrives, and at the end fills the
// reservation with a free box, the moof and the mdat header:
//
//	off                            off+head
//	│ free (head-hdr) │ moof │ mdat hdr │ video AUs … │ audio … │
//	                  └──── hdr ───────┘
//
// The headers are written by recording.PutHeader (moof+mdat byte for byte
// what mediacommon's fmp4.Part.Marshal writes); the free box in front is
// what a reader skips. Nothing of a fragment is held in memory but its sample table: a
// camera's memory no longer includes a GOP of media (≈1 MB at 4 Mbit/s).

// Header reservation (openFrag.head). A fragment's headers take 24 bytes
// (moof, mfhd), 64 per traf plus 8 to 16 per sample, and 8 (mdat); the free
// box in front needs 8 more unless it is empty. The first fragments of a
// writer reserve defaultHeadroom (a 2 s fragment at 30 fps with AAC at 48 kHz
// needs ≈1.9 KiB); a fragment that needs more is cut early (a continuation
// fragment, as at MaxFragmentDuration) and the writer reserves more from
// then on (never less: a stable reservation costs < 0.3 % of the file).
const (
	defaultHeadroom = 2048
	maxHeadroom     = 1 << 20
)

// openFrag is the fragment being recorded in a segment file: head bytes are
// reserved at off for its headers, and its video samples (videoLen bytes)
// are already written behind them.
type openFrag struct {
	seg      *segment // whose file it is written to
	off      int64
	head     int
	videoLen int
	// written is how much of its media (behind head) is in the file; the
	// rest is in the writer's stage.
	written int64
	// reserved is what the quota accounts for the fragment so far.
	reserved int64
	// err is the first failed write, or errSpoolFull when the quota
	// refused the fragment; it is dropped at flush.
	err error
}

// appendAVCC appends an access unit in AVCC form (4-byte big-endian length
// before each NAL unit).
func appendAVCC(b []byte, au [][]byte) []byte {
	for _, n := range au {
		b = binary.BigEndian.AppendUint32(b, uint32(len(n)))
		b = append(b, n...)
	}
	return b
}

// avccSize is the size of au in AVCC form.
func avccSize(au [][]byte) int {
	n := 0
	for _, nalu := range au {
		n += 4 + len(nalu)
	}
	return n
}
