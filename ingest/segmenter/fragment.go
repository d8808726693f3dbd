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
// moof+mdat are byte for byte what mediacommon's fmp4.Part.Marshal writes
// (fragment_test.go checks it); the free box in front is what a reader
// skips. Nothing of a fragment is held in memory but its sample table: a
// camera's memory no longer includes a GOP of media (≈1 MB at 4 Mbit/s).

// Box flags (ISO/IEC 14496-12), as mediacommon sets them.
const (
	trunDataOffsetPresent = 0x01
	trunDurationPresent   = 0x100
	trunSizePresent       = 0x200
	trunFlagsPresent      = 0x400
	trunCTSPresent        = 0x800
	sampleNonSync         = 1 << 16
	tfhdDefaultBaseIsMoof = 0x020000
)

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
	trafFixed       = 8 + 16 + 20 + 20 // traf, tfhd, tfdt, trun header
	moofFixed       = 8 + 16           // moof, mfhd
	freeBoxMin      = 8
	maxVideoEntry   = 16 // duration, size, flags, composition offset
	audioEntry      = 8  // duration, size
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

// headerNeed is the header reservation a fragment of nv video samples and
// na audio samples needs at most, free box included.
func headerNeed(nv, na int) int {
	n := moofFixed + trafFixed + nv*maxVideoEntry + 8 + freeBoxMin
	if na > 0 {
		n += trafFixed + na*audioEntry
	}
	return n
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

// sampleEntry is one trun entry.
type sampleEntry struct {
	duration, size uint32
	nonSync        bool
	cts            int32
}

// trackRun is one traf of a fragment: its samples' data are dataLen
// consecutive bytes of the mdat, in track order.
type trackRun struct {
	id       uint32
	baseTime uint64
	entries  []sampleEntry
	dataLen  int
}

func (t *trackRun) trunFlags() uint32 {
	fl := uint32(trunDataOffsetPresent | trunDurationPresent | trunSizePresent)
	for _, e := range t.entries {
		if e.nonSync {
			fl |= trunFlagsPresent
		}
		if e.cts != 0 {
			fl |= trunCTSPresent
		}
	}
	return fl
}

func trunSize(flags uint32, n int) int {
	per := 8
	if flags&trunFlagsPresent != 0 {
		per += 4
	}
	if flags&trunCTSPresent != 0 {
		per += 4
	}
	return 20 + n*per
}

// moofSize is the size of the moof box for tracks.
func moofSize(tracks []trackRun) int {
	n := 8 + 16 // moof header, mfhd
	for i := range tracks {
		n += 8 + 16 + 20 + trunSize(tracks[i].trunFlags(), len(tracks[i].entries))
	}
	return n
}

// putHeader fills dst, a fragment's header reservation, with a free box
// followed by the moof for tracks and the header of an mdat of dataLen
// bytes. len(dst)-(moofSize(tracks)+8) must be 0 or at least freeBoxMin.
func putHeader(dst []byte, seq uint32, tracks []trackRun, dataLen int) {
	hdr := moofSize(tracks) + 8
	if pad := len(dst) - hdr; pad > 0 {
		binary.BigEndian.PutUint32(dst, uint32(pad))
		copy(dst[4:8], "free")
		clear(dst[8:pad])
	}
	putMoofMdat(dst[len(dst)-hdr:], seq, tracks, dataLen)
}

// putMoofMdat writes the moof box for tracks followed by the header of an
// mdat of dataLen bytes into dst, which must be exactly moofSize(tracks)+8
// bytes long.
func putMoofMdat(dst []byte, seq uint32, tracks []trackRun, dataLen int) {
	moof := len(dst) - 8
	p := 0
	box := func(size int, typ string) {
		binary.BigEndian.PutUint32(dst[p:], uint32(size))
		copy(dst[p+4:p+8], typ)
		p += 8
	}
	u32 := func(v uint32) {
		binary.BigEndian.PutUint32(dst[p:], v)
		p += 4
	}
	box(moof, "moof")
	box(16, "mfhd")
	u32(0)
	u32(seq)
	dataOff := moof + 8 // from the start of moof (default-base-is-moof)
	for i := range tracks {
		t := &tracks[i]
		fl := t.trunFlags()
		ts := trunSize(fl, len(t.entries))
		box(8+16+20+ts, "traf")
		box(16, "tfhd")
		u32(tfhdDefaultBaseIsMoof)
		u32(t.id)
		box(20, "tfdt")
		u32(1 << 24) // version 1
		binary.BigEndian.PutUint64(dst[p:], t.baseTime)
		p += 8
		box(ts, "trun")
		u32(1<<24 | fl) // version 1
		u32(uint32(len(t.entries)))
		u32(uint32(int32(dataOff)))
		for _, e := range t.entries {
			u32(e.duration)
			u32(e.size)
			if fl&trunFlagsPresent != 0 {
				if e.nonSync {
					u32(sampleNonSync)
				} else {
					u32(0)
				}
			}
			if fl&trunCTSPresent != 0 {
				u32(uint32(e.cts))
			}
		}
		dataOff += t.dataLen
	}
	box(8+dataLen, "mdat")
}
