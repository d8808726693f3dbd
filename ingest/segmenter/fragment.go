package segmenter

import "encoding/binary"

// This file builds a fragment (moof+mdat) in place, byte for byte what
// mediacommon's fmp4.Part.Marshal writes (fragment_test.go checks it),
// without its per-fragment costs: Part.Marshal copies every sample into a
// freshly allocated mdat, which it then copies into a growing buffer
// (≈1 MB per 2 s GOP at 4 Mbit/s: most of the segmenter's CPU was memclr and
// memmove). Here each access unit is copied once, in AVCC form, into the
// camera's fragment buffer as it arrives; the buffer keeps headroom in front
// of the media for the moof and mdat headers, so a flush appends the audio,
// writes the headers into the headroom and hands one contiguous slice to a
// single write. The buffer is reused for the next fragment.

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

// defaultHeadroom is the room kept in front of a fragment's media for its
// moof+mdat headers: 24 + 76 bytes per track + 16 per sample at most, so
// 4 KiB holds ≈ 240 samples; a larger fragment grows it (fragBuf.reset).
const defaultHeadroom = 4096

// fragBuf holds one fragment being built: b[:head] is free headroom,
// b[head:] the mdat payload (video samples in AVCC form, then, at flush,
// the audio samples). b comes from allocBuf (outside the Go heap, see
// fragbuf_unix.go): it only grows through grow, and release frees it.
type fragBuf struct {
	b    []byte
	head int
}

// initialFragCap is the first capacity of a fragment buffer: a 2 s GOP at
// 4 Mbit/s. Pages that are never written cost no memory.
const initialFragCap = 1 << 20

// reset empties the buffer, keeping its capacity, with head bytes of
// headroom.
func (f *fragBuf) reset(head int) {
	f.b = f.b[:0]
	f.grow(head + 64<<10)
	f.b = f.b[:head]
	f.head = head
}

// grow makes room for n more bytes.
func (f *fragBuf) grow(n int) {
	if len(f.b)+n <= cap(f.b) {
		return
	}
	nb := allocBuf(max(2*cap(f.b), len(f.b)+n, initialFragCap))
	nb = append(nb, f.b...)
	freeBuf(f.b)
	f.b = nb
}

// release frees the buffer; f must not be used afterwards.
func (f *fragBuf) release() {
	if f != nil {
		freeBuf(f.b)
		f.b = nil
	}
}

// appendAU appends an access unit in AVCC form (4-byte big-endian length
// before each NAL unit) and returns its offset in the mdat payload and
// its size.
func (f *fragBuf) appendAU(au [][]byte) (off, size int) {
	f.grow(avccSize(au))
	off = len(f.b) - f.head
	for _, n := range au {
		f.b = binary.BigEndian.AppendUint32(f.b, uint32(len(n)))
		f.b = append(f.b, n...)
	}
	return off, len(f.b) - f.head - off
}

// appendBytes appends p.
func (f *fragBuf) appendBytes(p []byte) {
	f.grow(len(p))
	f.b = append(f.b, p...)
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
