package replay

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// errBadFragment is wrapped by every parseFragment failure.
var errBadFragment = errors.New("malformed fragment")

// Track IDs fixed by the recording format contract.
const (
	videoTrackID = 1
	audioTrackID = 2
)

// tfhd / trun flags (ISO/IEC 14496-12 §8.8.7, §8.8.8).
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
	maxSamplesPerFragment = 1 << 16 // far above any GOP; bounds allocation
	boxHeaderSize         = 8
	largeBoxHeaderSize    = 16
	fullBoxHeaderSize     = 12
	maxTrafsPerFragment   = 16
	maxTrunsPerTraf       = 256
)

// rawSample is one sample of a parsed fragment, in the segment's media
// timeline (track timescale).
type rawSample struct {
	dts  int64 // decode time (tfdt + sum of earlier durations)
	cts  int32 // composition offset; presentation time is dts+cts
	dur  uint32
	sync bool
	data []byte // aliases the fragment buffer
}

func (s rawSample) pts() int64 { return s.dts + int64(s.cts) }

// rawFragment is one parsed moof+mdat. Only the contract's tracks 1 and 2
// are kept.
type rawFragment struct {
	seq   uint32
	video []rawSample
	audio []rawSample
}

// box is a located ISO BMFF box inside a buffer.
type box struct {
	typ          string
	start, end   int // whole box, absolute in the buffer
	payloadStart int
}

// nextBox reads the box header at b[off:] and bounds it to limit.
func nextBox(b []byte, off, limit int) (box, error) {
	if limit-off < boxHeaderSize {
		return box{}, fmt.Errorf("%w: truncated box header at %d", errBadFragment, off)
	}
	size := uint64(binary.BigEndian.Uint32(b[off:]))
	typ := string(b[off+4 : off+8])
	hdr := boxHeaderSize
	switch size {
	case 0: // to the end of the enclosing container
		size = uint64(limit - off)
	case 1:
		if limit-off < largeBoxHeaderSize {
			return box{}, fmt.Errorf("%w: truncated large box header at %d", errBadFragment, off)
		}
		size = binary.BigEndian.Uint64(b[off+8:])
		hdr = largeBoxHeaderSize
	}
	if size < uint64(hdr) || size > uint64(limit-off) {
		return box{}, fmt.Errorf("%w: box %q at %d has size %d, %d bytes available", errBadFragment, typ, off, size, limit-off)
	}
	return box{typ: typ, start: off, end: off + int(size), payloadStart: off + hdr}, nil
}

// children calls fn for each child box of the payload range [from, to).
func children(b []byte, from, to int, fn func(box) error) error {
	for off := from; off < to; {
		c, err := nextBox(b, off, to)
		if err != nil {
			return err
		}
		if err := fn(c); err != nil {
			return err
		}
		off = c.end
	}
	return nil
}

// parseFragment parses one moof followed by its mdat (any other top-level
// boxes such as styp/sidx/free are skipped). Sample payloads alias b. It
// never panics on malformed input and rejects sample ranges outside b.
func parseFragment(b []byte) (*rawFragment, error) {
	var moof *box
	var mdat *box
	err := children(b, 0, len(b), func(c box) error {
		switch c.typ {
		case "moof":
			if moof != nil {
				return fmt.Errorf("%w: more than one moof", errBadFragment)
			}
			moof = &c
		case "mdat":
			if moof != nil && mdat == nil {
				mdat = &c
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if moof == nil {
		return nil, fmt.Errorf("%w: no moof", errBadFragment)
	}
	if mdat == nil {
		return nil, fmt.Errorf("%w: no mdat after moof", errBadFragment)
	}

	f := &rawFragment{}
	var (
		haveMfhd  bool
		trafs     int
		nextData  = int64(moof.start) // implicit base for a traf without default-base-is-moof
		total     int
		dataStart = int64(mdat.payloadStart)
		dataEnd   = int64(mdat.end)
	)
	err = children(b, moof.payloadStart, moof.end, func(c box) error {
		switch c.typ {
		case "mfhd":
			if c.end-c.payloadStart < 8 {
				return fmt.Errorf("%w: short mfhd", errBadFragment)
			}
			f.seq = binary.BigEndian.Uint32(b[c.payloadStart+4:])
			haveMfhd = true
		case "traf":
			trafs++
			if trafs > maxTrafsPerFragment {
				return fmt.Errorf("%w: too many traf", errBadFragment)
			}
			id, samples, end, err := parseTraf(b, c, int64(moof.start), nextData, dataStart, dataEnd, maxSamplesPerFragment-total)
			if err != nil {
				return err
			}
			nextData = end
			total += len(samples)
			switch id {
			case videoTrackID:
				f.video = append(f.video, samples...)
			case audioTrackID:
				f.audio = append(f.audio, samples...)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !haveMfhd {
		return nil, fmt.Errorf("%w: no mfhd", errBadFragment)
	}
	return f, nil
}

// parseTraf parses a traf box. implicitBase is the data offset a traf
// without base-data-offset or default-base-is-moof starts at (the end of
// the previous traf's data, or the moof start for the first). It returns
// the track ID, the samples and the end offset of the traf's data.
func parseTraf(b []byte, traf box, moofStart, implicitBase, dataStart, dataEnd int64, maxSamples int) (uint32, []rawSample, int64, error) {
	var (
		haveTfhd                  bool
		trackID, tfhdFlags        uint32
		defDur, defSize, defFlags uint32
		base                      int64
		haveTfdt                  bool
		dts                       int64
		samples                   []rawSample
		truns                     int
		dataPos                   int64
	)
	err := children(b, traf.payloadStart, traf.end, func(c box) error {
		p := b[c.payloadStart:c.end]
		switch c.typ {
		case "tfhd":
			if haveTfhd {
				return fmt.Errorf("%w: duplicate tfhd", errBadFragment)
			}
			r := reader{b: p}
			tfhdFlags = r.u32() & 0xffffff
			trackID = r.u32()
			base = implicitBase
			if tfhdFlags&tfhdDefaultBaseIsMoof != 0 {
				base = moofStart
			}
			if tfhdFlags&tfhdBaseDataOffset != 0 {
				// An absolute file offset: meaningless for a fragment read
				// out of its object; the recorder never writes it.
				return fmt.Errorf("%w: tfhd base-data-offset unsupported", errBadFragment)
			}
			if tfhdFlags&tfhdSampleDescIndex != 0 {
				r.u32()
			}
			if tfhdFlags&tfhdDefaultDuration != 0 {
				defDur = r.u32()
			}
			if tfhdFlags&tfhdDefaultSize != 0 {
				defSize = r.u32()
			}
			if tfhdFlags&tfhdDefaultFlags != 0 {
				defFlags = r.u32()
			}
			if r.err {
				return fmt.Errorf("%w: short tfhd", errBadFragment)
			}
			haveTfhd = true
			dataPos = base
		case "tfdt":
			r := reader{b: p}
			vf := r.u32()
			if vf>>24 == 1 {
				v := r.u64()
				if v > 1<<62 {
					return fmt.Errorf("%w: tfdt out of range", errBadFragment)
				}
				dts = int64(v)
			} else {
				dts = int64(r.u32())
			}
			if r.err {
				return fmt.Errorf("%w: short tfdt", errBadFragment)
			}
			haveTfdt = true
		case "trun":
			if !haveTfhd || !haveTfdt {
				return fmt.Errorf("%w: trun before tfhd/tfdt", errBadFragment)
			}
			truns++
			if truns > maxTrunsPerTraf {
				return fmt.Errorf("%w: too many trun", errBadFragment)
			}
			r := reader{b: p}
			vf := r.u32()
			version, flags := vf>>24, vf&0xffffff
			count := r.u32()
			if flags&trunDataOffset != 0 {
				dataPos = base + int64(int32(r.u32()))
			}
			firstFlags, haveFirstFlags := uint32(0), false
			if flags&trunFirstSampleFlags != 0 {
				firstFlags, haveFirstFlags = r.u32(), true
			}
			if r.err {
				return fmt.Errorf("%w: short trun", errBadFragment)
			}
			entry := 0
			for _, f := range []uint32{trunSampleDuration, trunSampleSize, trunSampleFlags, trunSampleCTS} {
				if flags&f != 0 {
					entry += 4
				}
			}
			if uint64(count) > uint64(maxSamples-len(samples)) || (entry > 0 && uint64(count)*uint64(entry) > uint64(len(r.b)-r.off)) {
				return fmt.Errorf("%w: trun sample count %d too large", errBadFragment, count)
			}
			for i := uint32(0); i < count; i++ {
				s := rawSample{dts: dts, dur: defDur}
				size, sflags := defSize, defFlags
				if flags&trunSampleDuration != 0 {
					s.dur = r.u32()
				}
				if flags&trunSampleSize != 0 {
					size = r.u32()
				}
				if flags&trunSampleFlags != 0 {
					sflags = r.u32()
				} else if i == 0 && haveFirstFlags {
					sflags = firstFlags
				}
				if flags&trunSampleCTS != 0 {
					v := r.u32()
					if version == 0 && v > 1<<31-1 {
						return fmt.Errorf("%w: unsigned composition offset out of range", errBadFragment)
					}
					s.cts = int32(v)
				}
				if r.err {
					return fmt.Errorf("%w: short trun", errBadFragment)
				}
				s.sync = sflags&sampleIsNonSync == 0
				if dataPos < dataStart || dataPos+int64(size) > dataEnd {
					return fmt.Errorf("%w: sample data [%d,+%d) outside mdat", errBadFragment, dataPos, size)
				}
				s.data = b[dataPos : dataPos+int64(size)]
				dataPos += int64(size)
				dts += int64(s.dur)
				samples = append(samples, s)
			}
		}
		return nil
	})
	if err != nil {
		return 0, nil, 0, err
	}
	if !haveTfhd {
		return 0, nil, 0, fmt.Errorf("%w: traf without tfhd", errBadFragment)
	}
	return trackID, samples, dataPos, nil
}

// reader reads big-endian integers and records (instead of panicking) a
// read past the end.
type reader struct {
	b   []byte
	off int
	err bool
}

func (r *reader) u32() uint32 {
	if r.err || len(r.b)-r.off < 4 {
		r.err = true
		return 0
	}
	v := binary.BigEndian.Uint32(r.b[r.off:])
	r.off += 4
	return v
}

func (r *reader) u64() uint64 {
	if r.err || len(r.b)-r.off < 8 {
		r.err = true
		return 0
	}
	v := binary.BigEndian.Uint64(r.b[r.off:])
	r.off += 8
	return v
}
