// Package rtpdepack reassembles H.264 (RFC 6184) and H.265 (RFC 7798) RTP
// payloads into access units without allocating in steady state.
//
// The decoders are drop-in replacements for gortsplib's rtph264.Decoder and
// rtph265.Decoder (v4.16.2) with one difference: every NAL unit is copied
// into one buffer that the decoder owns and reuses, instead of each
// reassembled NAL unit getting a fresh allocation (about 1.5 KB of garbage
// per RTP packet of a 1080p stream). Everything else is the same, packet by
// packet (TestMatchesGortsplib checks it on real streams with lost,
// duplicated and reordered packets and missing markers):
//
//   - an access unit ends on the RTP marker bit; H.264 also ends it when the
//     timestamp changes (cameras that never set the marker), in which case
//     the packet that changed the timestamp starts the next access unit;
//   - a fragmented NAL unit (FU-A, FU) is dropped on a sequence-number gap,
//     with an error, and its later fragments are errors until the next start
//     fragment; a continuation fragment before any start fragment returns
//     ErrNonStartingPacketAndNoPrevious, a packet that completes no access
//     unit returns ErrMorePacketsNeeded;
//   - an access unit holds at most h264/h265.MaxNALUsPerAccessUnit NAL units
//     of at most h264/h265.MaxAccessUnitSize bytes in all (and one NAL unit
//     at most MaxAccessUnitSize bytes); beyond, the access unit is dropped
//     with an error;
//   - STAP-B, MTAP16, MTAP24, FU-B (H.264) and PACI (H.265) are rejected with
//     an error; STAP-A zero padding is skipped;
//   - H.264 NAL units wrapped in Annex-B start codes (some cameras and
//     servers do that) are split, once a single NAL unit contained a
//     4-byte start code;
//   - the error messages are gortsplib's.
//
// # Ownership
//
// The access unit returned by Decode — the [][]byte and the bytes its
// elements point to — is valid until the next call to Decode on the same
// decoder. A caller that keeps any of it longer (a parameter set, a frame
// handed to another goroutine) must copy it. The caller may overwrite the
// elements of the returned [][]byte (replace a NAL unit by another slice);
// it must not write into the bytes.
//
// # Memory
//
// The buffer grows to the largest access unit seen, with append's slack
// (about 57 KB for a 4 s 1080p libx264 test clip whose largest AU is 50 KB),
// and stays with the decoder, in the Go heap; a buffer over 4 MiB is given
// back once empty. Nothing else is allocated per packet once the buffers
// have grown (TestNoAllocs), except on error paths that format a message.
//
// A decoder is not safe for concurrent use.
package rtpdepack

import (
	"errors"
	"fmt"

	"github.com/pion/rtp"
)

// Outcomes that are not failures, as in gortsplib.
var (
	// ErrMorePacketsNeeded is returned when the packet did not complete an
	// access unit.
	ErrMorePacketsNeeded = errors.New("need more packets")

	// ErrNonStartingPacketAndNoPrevious is returned for a continuation
	// fragment received before any packet that starts something. It is
	// normal when joining a stream that is already running.
	ErrNonStartingPacketAndNoPrevious = errors.New(
		"received a non-starting fragment without any previous starting fragment")
)

// Constant errors (gortsplib's messages), allocated once.
var (
	errPayloadTooShort = errors.New("payload is too short")
	errPacketMissing   = errors.New("discarding frame since a RTP packet is missing")

	errFUAInvalidSize   = errors.New("invalid FU-A packet (invalid size)")
	errFUANonStarting   = errors.New("invalid FU-A packet (non-starting)")
	errSTAPAInvalid     = errors.New("invalid STAP-A packet (invalid size)")
	errSTAPANoNALU      = errors.New("STAP-A packet doesn't contain any NALU")
	errAPInvalidSize    = errors.New("invalid aggregation unit (invalid size)")
	errFUStartAndEnd    = errors.New("invalid fragmentation unit (can't contain both a start and end bit)")
	errFUNonStarting    = errors.New("invalid fragmentation unit (non-starting)")
	errPACINotSupported = errors.New("PACI packets are not supported (yet)")
)

func errNALUTooBig(size, maxSize int) error {
	return fmt.Errorf("NALU size (%d) is too big, maximum is %d", size, maxSize)
}

func errTooManyNALUs(count, maxCount int) error {
	return fmt.Errorf("NALU count (%d) exceeds maximum allowed (%d)", count, maxCount)
}

func errAUTooBig(size, maxSize int) error {
	return fmt.Errorf("access unit size (%d) is too big, maximum is %d", size, maxSize)
}

// span is a NAL unit in the buffer: buf[off:end].
type span struct{ off, end int }

// assembler is the reusable storage shared by both decoders.
//
// Layout of buf, between two calls:
//
//	[0, dropEnd)         the access unit returned by the last call
//	[dropEnd, frameEnd)  the NAL units of the access unit being built
//	[frameEnd, len(buf)) the fragmented NAL unit being reassembled
//
// spans[:dropN] are the returned AU's NAL units, spans[dropN:frameN] the
// ones being built. At the start of each call the returned AU is dropped
// (usually all of buf: a plain truncation; after an H.264 timestamp split,
// the next AU's first packet is moved to the front).
//
// During a call, the packet's NAL units are appended after frameEnd (a
// completed fragment is already there) with their spans after frameN; they
// are either committed to the frame or rolled back.
type assembler struct {
	buf       []byte
	spans     []span
	dropEnd   int
	dropN     int
	frameEnd  int
	frameN    int
	frameSize int // NAL unit bytes in the frame being built
	fragSize  int // bytes of the fragmented NAL unit (0: none), gortsplib's fragmentsSize
	out       [][]byte
}

// keepBufferMax is the largest buffer kept once empty: a buffer grown
// beyond by an exceptional access unit (up to MaxAccessUnitSize, 8 MiB,
// twice during a timestamp split) is given back to the GC instead of
// staying with the track. Typical access units are far smaller (a 1080p
// keyframe: 50–300 KB).
const keepBufferMax = 4 << 20

// compact forgets the access unit returned by the previous call.
func (a *assembler) compact() {
	if a.dropEnd == 0 && a.dropN == 0 {
		return
	}
	d := a.dropEnd
	n := copy(a.buf, a.buf[d:])
	a.buf = a.buf[:n]
	if n == 0 && cap(a.buf) > keepBufferMax {
		a.buf = nil
	}
	m := copy(a.spans, a.spans[a.dropN:])
	a.spans = a.spans[:m]
	if d != 0 {
		for i := range a.spans {
			a.spans[i].off -= d
			a.spans[i].end -= d
		}
	}
	a.frameEnd -= d
	a.frameN -= a.dropN
	a.dropEnd, a.dropN = 0, 0
}

// frameLen is the number of NAL units in the frame being built.
func (a *assembler) frameLen() int { return a.frameN - a.dropN }

// resetFragments drops the fragmented NAL unit being reassembled.
func (a *assembler) resetFragments() {
	a.buf = a.buf[:a.frameEnd]
	a.fragSize = 0
}

// rollback drops the NAL units added by the current packet (spans after
// frameN, bytes after frameEnd).
func (a *assembler) rollback() {
	a.buf = a.buf[:a.frameEnd]
	a.spans = a.spans[:a.frameN]
}

// resetFrame drops everything: the frame being built, the packet's NAL
// units and the AU returned earlier in this call (gortsplib drops it too).
// It is only called when no fragment is in progress.
func (a *assembler) resetFrame() {
	a.buf = a.buf[:0]
	a.spans = a.spans[:0]
	a.dropEnd, a.dropN, a.frameEnd, a.frameN, a.frameSize = 0, 0, 0, 0, 0
}

// pendingSize is the size of the packet's NAL units.
func (a *assembler) pendingSize() int {
	s := 0
	for _, sp := range a.spans[a.frameN:] {
		s += sp.end - sp.off
	}
	return s
}

// addPending commits the packet's NAL units to the frame, with gortsplib's
// limits: on error the frame is dropped.
func (a *assembler) addPending(maxNALUs, maxSize int) error {
	l := len(a.spans) - a.frameN
	if a.frameLen()+l > maxNALUs {
		n := a.frameLen() + l
		a.resetFrame()
		return errTooManyNALUs(n, maxNALUs)
	}
	add := a.pendingSize()
	if a.frameSize+add > maxSize {
		n := a.frameSize + add
		a.resetFrame()
		return errAUTooBig(n, maxSize)
	}
	a.frameN = len(a.spans)
	a.frameEnd = len(a.buf)
	a.frameSize += add
	return nil
}

// split ends the frame being built: it becomes the AU to return (dropped
// at the next call) and an empty frame starts after it.
func (a *assembler) split() (from, to int) {
	from, to = a.dropN, a.frameN
	a.dropN, a.dropEnd = a.frameN, a.frameEnd
	a.frameSize = 0
	return from, to
}

// output returns spans[from:to] as slices of buf, capped so that appending
// to one cannot overwrite the next.
func (a *assembler) output(from, to int) [][]byte {
	a.out = a.out[:0]
	for _, sp := range a.spans[from:to] {
		a.out = append(a.out, a.buf[sp.off:sp.end:sp.end])
	}
	return a.out
}

// addSpan records buf[off:end] as one of the packet's NAL units.
func (a *assembler) addSpan(off, end int) {
	a.spans = append(a.spans, span{off, end})
}

// continueFU appends the next fragment of the NAL unit being reassembled
// (H.264 FU-A, H.265 FU): the payload after its hdr header bytes, the last
// of which is the FU header with the end bit. nextSeq is the sequence
// number the fragment must have (advanced on success); firstReceived tells
// a stream joined mid-unit (ErrNonStartingPacketAndNoPrevious) from a lost
// start (errNonStarting). It returns nil when the NAL unit is complete (a
// pending span), ErrMorePacketsNeeded when more fragments follow, or an
// error with the unit dropped.
func (a *assembler) continueFU(pkt *rtp.Packet, hdr int, nextSeq *uint16, firstReceived bool,
	maxSize int, errNonStarting error) error {
	p := pkt.Payload
	if a.fragSize == 0 {
		if !firstReceived {
			return ErrNonStartingPacketAndNoPrevious
		}
		return errNonStarting
	}
	if pkt.SequenceNumber != *nextSeq {
		a.resetFragments()
		return errPacketMissing
	}
	size := a.fragSize + len(p) - hdr
	if size > maxSize {
		a.resetFragments()
		return errNALUTooBig(size, maxSize)
	}
	a.fragSize = size
	a.buf = append(a.buf, p[hdr:]...)
	*nextSeq++
	if (p[hdr-1]>>6)&1 != 1 {
		return ErrMorePacketsNeeded
	}
	a.addSpan(a.frameEnd, len(a.buf))
	a.fragSize = 0
	return nil
}
