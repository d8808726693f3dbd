package recording

import "encoding/binary"

// This file writes a fragment's headers. A fragment is
//
//	[free] moof mdat
//
// where the optional free box in front is what a writer that reserves
// room for the headers before it knows their size leaves unused (see
// ingest/segmenter), and moof+mdat are byte for byte what mediacommon's
// fmp4.Part.Marshal writes: one traf per track with tfhd
// (default-base-is-moof), tfdt (version 1) and one trun (version 1:
// signed composition offsets) whose data offset counts from the moof.

// Box flags (ISO/IEC 14496-12 §8.8.7, §8.8.8).
const (
	tfhdBaseDataOffset    = 0x000001
	tfhdSampleDescIndex   = 0x000002
	tfhdDefaultDuration   = 0x000008
	tfhdDefaultSize       = 0x000010
	tfhdDefaultFlags      = 0x000020
	tfhdDefaultBaseIsMoof = 0x020000
	trunDataOffset        = 0x000001
	trunFirstSampleFlags  = 0x000004
	trunSampleDuration    = 0x000100
	trunSampleSize        = 0x000200
	trunSampleFlags       = 0x000400
	trunSampleCTS         = 0x000800
	sampleIsNonSync       = 1 << 16
)

// Header sizes.
const (
	// FreeBoxMin is the smallest free box (its header): room left in front
	// of a moof must be 0 or at least this.
	FreeBoxMin = 8
	// MdatHeaderSize is the size of the mdat box header written.
	MdatHeaderSize = 8
	moofFixed      = 8 + 16           // moof, mfhd
	trafFixed      = 8 + 16 + 20 + 20 // traf, tfhd, tfdt, trun header
	maxVideoEntry  = 16               // duration, size, flags, composition offset
	audioEntry     = 8                // duration, size
)

// SampleEntry is one trun entry.
type SampleEntry struct {
	Duration, Size uint32
	NonSync        bool
	CTS            int32 // composition offset (signed, trun version 1)
}

// TrackRun is one traf of a fragment: its samples' data are DataLen
// consecutive bytes of the mdat, in track order.
type TrackRun struct {
	ID       uint32
	BaseTime uint64 // tfdt
	Entries  []SampleEntry
	DataLen  int
}

func (t *TrackRun) trunFlags() uint32 {
	fl := uint32(trunDataOffset | trunSampleDuration | trunSampleSize)
	for _, e := range t.Entries {
		if e.NonSync {
			fl |= trunSampleFlags
		}
		if e.CTS != 0 {
			fl |= trunSampleCTS
		}
	}
	return fl
}

func trunSize(flags uint32, n int) int {
	per := 8
	if flags&trunSampleFlags != 0 {
		per += 4
	}
	if flags&trunSampleCTS != 0 {
		per += 4
	}
	return 20 + n*per
}

// HeaderSize is the size of the moof for tracks plus the mdat header: what
// PutHeader writes without a free box.
func HeaderSize(tracks []TrackRun) int {
	n := moofFixed
	for i := range tracks {
		n += 8 + 16 + 20 + trunSize(tracks[i].trunFlags(), len(tracks[i].Entries))
	}
	return n + MdatHeaderSize
}

// HeaderNeed is the most header room (free box included) a fragment of nv
// video samples and na audio samples (0: no audio track) can need.
func HeaderNeed(nv, na int) int {
	n := moofFixed + trafFixed + nv*maxVideoEntry + MdatHeaderSize + FreeBoxMin
	if na > 0 {
		n += trafFixed + na*audioEntry
	}
	return n
}

// AudioEntriesFit is how many audio samples a second traf can hold beside
// tracks while the headers still fit in room bytes (free box included);
// it may be negative.
func AudioEntriesFit(room int, tracks []TrackRun) int {
	return (room - HeaderSize(tracks) - FreeBoxMin - trafFixed) / audioEntry
}

// PutHeader fills dst, the room reserved for a fragment's headers, with a
// free box followed by the moof (sequence number seq) for tracks and the
// header of an mdat of dataLen bytes. len(dst)-HeaderSize(tracks) must be
// 0 or at least FreeBoxMin.
func PutHeader(dst []byte, seq uint32, tracks []TrackRun, dataLen int) {
	hdr := HeaderSize(tracks)
	if pad := len(dst) - hdr; pad > 0 {
		binary.BigEndian.PutUint32(dst, uint32(pad))
		copy(dst[4:8], "free")
		clear(dst[8:pad])
	}
	putMoofMdat(dst[len(dst)-hdr:], seq, tracks, dataLen)
}

// putMoofMdat writes the moof box for tracks followed by the header of an
// mdat of dataLen bytes into dst, which is exactly HeaderSize(tracks)
// bytes long.
func putMoofMdat(dst []byte, seq uint32, tracks []TrackRun, dataLen int) {
	moof := len(dst) - MdatHeaderSize
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
	dataOff := moof + MdatHeaderSize // from the start of moof (default-base-is-moof)
	for i := range tracks {
		t := &tracks[i]
		fl := t.trunFlags()
		ts := trunSize(fl, len(t.Entries))
		box(8+16+20+ts, "traf")
		box(16, "tfhd")
		u32(tfhdDefaultBaseIsMoof)
		u32(t.ID)
		box(20, "tfdt")
		u32(1 << 24) // version 1
		binary.BigEndian.PutUint64(dst[p:], t.BaseTime)
		p += 8
		box(ts, "trun")
		u32(1<<24 | fl) // version 1
		u32(uint32(len(t.Entries)))
		u32(uint32(int32(dataOff)))
		for _, e := range t.Entries {
			u32(e.Duration)
			u32(e.Size)
			if fl&trunSampleFlags != 0 {
				if e.NonSync {
					u32(sampleIsNonSync)
				} else {
					u32(0)
				}
			}
			if fl&trunSampleCTS != 0 {
				u32(uint32(e.CTS))
			}
		}
		dataOff += t.DataLen
	}
	box(MdatHeaderSize+dataLen, "mdat")
}
