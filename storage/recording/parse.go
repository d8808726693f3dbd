package recording

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ErrBadFragment is wrapped by every error about malformed or truncated
// fragment or file bytes (not by the reader's own I/O errors).
var ErrBadFragment = errors.New("malformed fragment")

// Limits for parsing untrusted bytes. Nothing a recorder writes comes near
// them; they bound the allocations and the arithmetic.
const (
	maxInitBoxSize        = 4 << 20
	maxMoofSize           = 16 << 20
	maxSamplesPerFragment = 1 << 16
	maxTrafsPerFragment   = 16
	maxTrunsPerTraf       = 256
	maxSkippedBoxes       = 16
	// maxDecodeTime bounds tfdt: a segment is at most an hour long and
	// starts at decode time 0, and 2^40 ticks keep every conversion of
	// track time to a time.Duration far from overflowing.
	maxDecodeTime   = 1 << 40
	boxHeaderSize   = 8
	largeHeaderSize = 16
)

// Sample is one sample of a parsed fragment, in its segment's media
// timeline (units of the track's timescale).
type Sample struct {
	DTS      int64 // decode time: tfdt + the durations of the earlier samples
	CTS      int32 // composition offset: presentation time is DTS + CTS
	Duration uint32
	Size     uint32
	// Offset is where the sample's data start in what was parsed (the file,
	// or the buffer given to ParseFragment).
	Offset int64
	Sync   bool
}

// PTS is the sample's presentation time.
func (s Sample) PTS() int64 { return s.DTS + int64(s.CTS) }

// ParsedFragment is one complete fragment: an optional free (or skip) box,
// a moof and its mdat. Only the recording's tracks (VideoTrackID,
// AudioTrackID) are kept.
type ParsedFragment struct {
	Seq uint32
	// Offset and Size cover the whole fragment, free box included.
	Offset, Size int64
	Video, Audio []Sample
}

// Keyframe reports whether the fragment's first video sample is a sync
// sample.
func (f *ParsedFragment) Keyframe() bool {
	return len(f.Video) > 0 && f.Video[0].Sync
}

// ParsedFile is the result of walking a segment file.
type ParsedFile struct {
	// InitSize is the byte size of ftyp+moov.
	InitSize int64
	// Fragments are the complete fragments, in file order.
	Fragments []ParsedFragment
	// ValidSize is the end offset of the last complete fragment (InitSize
	// when there is none): the size to truncate the file to.
	ValidSize int64
	// StopReason says why the walk stopped before the end of the file;
	// empty when the whole file was valid.
	StopReason string
}

// ParseFile walks a segment file of size bytes: ftyp, moov, then
// fragments. It stops at the first incomplete or malformed fragment (a
// crash leaves the last one incomplete); an error is returned only when
// the init itself is missing or broken.
func ParseFile(r io.ReaderAt, size int64) (*ParsedFile, error) {
	var off int64
	for _, want := range []string{"ftyp", "moov"} {
		h, err := readBoxHeader(r, off, size)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", want, err)
		}
		if h.typ != want {
			return nil, fmt.Errorf("%w: expected %s box, found %q", ErrBadFragment, want, h.typ)
		}
		if h.size > maxInitBoxSize {
			return nil, fmt.Errorf("%w: %s box too large", ErrBadFragment, want)
		}
		off += h.size
	}
	pf := &ParsedFile{InitSize: off, ValidSize: off}
	for off < size {
		frag, err := ReadFragment(r, off, size)
		if err != nil {
			pf.StopReason = fmt.Sprintf("offset %d: %v", off, err)
			break
		}
		pf.Fragments = append(pf.Fragments, frag)
		off = frag.Offset + frag.Size
		pf.ValidSize = off
	}
	return pf, nil
}

// ParseFragment parses b, which holds exactly one fragment's bytes (as
// located by its index row). Sample offsets are positions in b.
func ParseFragment(b []byte) (ParsedFragment, error) {
	f, err := ReadFragment(byteReader(b), 0, int64(len(b)))
	if err == nil && f.Size != int64(len(b)) {
		err = fmt.Errorf("%w: %d bytes after the fragment", ErrBadFragment, int64(len(b))-f.Size)
	}
	return f, err
}

// ReadFragment parses the fragment at off of r, which holds size bytes:
// free/skip boxes, a moof, its mdat. Sample offsets are positions in r, and
// every sample lies inside the mdat. It never panics on malformed input.
func ReadFragment(r io.ReaderAt, off, size int64) (ParsedFragment, error) {
	start := off
	mh, err := readBoxHeader(r, off, size)
	for skipped := 0; err == nil && (mh.typ == "free" || mh.typ == "skip"); skipped++ {
		if skipped == maxSkippedBoxes {
			return ParsedFragment{}, fmt.Errorf("%w: too many free boxes", ErrBadFragment)
		}
		off += mh.size
		mh, err = readBoxHeader(r, off, size)
	}
	if err != nil {
		return ParsedFragment{}, fmt.Errorf("moof: %w", err)
	}
	if mh.typ != "moof" {
		return ParsedFragment{}, fmt.Errorf("%w: expected moof, found %q", ErrBadFragment, mh.typ)
	}
	if mh.size > maxMoofSize {
		return ParsedFragment{}, fmt.Errorf("%w: moof too large", ErrBadFragment)
	}
	dh, err := readBoxHeader(r, off+mh.size, size)
	if err != nil {
		return ParsedFragment{}, fmt.Errorf("mdat: %w", err)
	}
	if dh.typ != "mdat" {
		return ParsedFragment{}, fmt.Errorf("%w: expected mdat, found %q", ErrBadFragment, dh.typ)
	}
	moof := make([]byte, mh.size)
	if _, err := r.ReadAt(moof, off); err != nil {
		return ParsedFragment{}, fmt.Errorf("read moof: %w", err)
	}
	m := moofParser{
		b:         moof,
		base:      off,
		dataStart: dh.off + dh.headerSize,
		dataEnd:   dh.off + dh.size,
	}
	f := ParsedFragment{Offset: start, Size: dh.off + dh.size - start}
	if err := m.parse(&f, int(mh.headerSize)); err != nil {
		return ParsedFragment{}, err
	}
	return f, nil
}

type boxHeader struct {
	typ        string
	off        int64
	size       int64 // whole box
	headerSize int64
}

// readBoxHeader reads the header of the box at off of r (size bytes). It
// fails when the header or the box would extend past size; a size-0 box
// ("to the end of the file") is refused, as nothing a recorder writes has
// one.
func readBoxHeader(r io.ReaderAt, off, size int64) (boxHeader, error) {
	var b [largeHeaderSize]byte
	if off < 0 || size-off < boxHeaderSize {
		return boxHeader{}, fmt.Errorf("%w: truncated box header at %d", ErrBadFragment, off)
	}
	if _, err := r.ReadAt(b[:boxHeaderSize], off); err != nil {
		return boxHeader{}, err
	}
	h := boxHeader{typ: string(b[4:8]), off: off, size: int64(binary.BigEndian.Uint32(b[:4])), headerSize: boxHeaderSize}
	switch h.size {
	case 0:
		return boxHeader{}, fmt.Errorf("%w: box %q extends to end of file", ErrBadFragment, h.typ)
	case 1:
		if size-off < largeHeaderSize {
			return boxHeader{}, fmt.Errorf("%w: truncated box header at %d", ErrBadFragment, off)
		}
		if _, err := r.ReadAt(b[8:largeHeaderSize], off+boxHeaderSize); err != nil {
			return boxHeader{}, err
		}
		u := binary.BigEndian.Uint64(b[8:largeHeaderSize])
		if u > 1<<62 {
			return boxHeader{}, fmt.Errorf("%w: box %q size too large", ErrBadFragment, h.typ)
		}
		h.size, h.headerSize = int64(u), largeHeaderSize
	}
	if h.size < h.headerSize {
		return boxHeader{}, fmt.Errorf("%w: box %q size %d", ErrBadFragment, h.typ, h.size)
	}
	if h.size > size-off {
		return boxHeader{}, fmt.Errorf("%w: box %q at %d has size %d, %d bytes available", ErrBadFragment, h.typ, off, h.size, size-off)
	}
	return h, nil
}

// box is a child box located in a buffer.
type box struct {
	typ                 string
	start, payload, end int // absolute in the buffer
}

// children calls fn for each child box of b[from:to].
func children(b []byte, from, to int, fn func(box) error) error {
	for off := from; off < to; {
		if to-off < boxHeaderSize {
			return fmt.Errorf("%w: truncated box header at %d", ErrBadFragment, off)
		}
		size := uint64(binary.BigEndian.Uint32(b[off:]))
		typ := string(b[off+4 : off+8])
		hdr := boxHeaderSize
		switch size {
		case 0: // to the end of the enclosing box
			size = uint64(to - off)
		case 1:
			if to-off < largeHeaderSize {
				return fmt.Errorf("%w: truncated large box header at %d", ErrBadFragment, off)
			}
			size = binary.BigEndian.Uint64(b[off+8:])
			hdr = largeHeaderSize
		}
		if size < uint64(hdr) || size > uint64(to-off) {
			return fmt.Errorf("%w: box %q at %d has size %d, %d bytes available", ErrBadFragment, typ, off, size, to-off)
		}
		c := box{typ: typ, start: off, payload: off + hdr, end: off + int(size)}
		if err := fn(c); err != nil {
			return err
		}
		off = c.end
	}
	return nil
}

// Children calls fn for each box in b[from:to] with its type and its
// bounds in b (start of the box, start of its payload, end). It fails on a
// box that does not fit.
func Children(b []byte, from, to int, fn func(typ string, start, payload, end int) error) error {
	return children(b, from, to, func(c box) error { return fn(c.typ, c.start, c.payload, c.end) })
}

// moofParser parses one moof held in b, whose first byte is at position
// base of the parsed input; the mdat payload is [dataStart, dataEnd) there.
type moofParser struct {
	b                  []byte
	base               int64
	dataStart, dataEnd int64
	total              int // samples so far
}

func (m *moofParser) parse(f *ParsedFragment, payload int) error {
	var haveMfhd bool
	trafs := 0
	nextData := m.base // implicit base of a traf without default-base-is-moof
	err := children(m.b, payload, len(m.b), func(c box) error {
		switch c.typ {
		case "mfhd":
			if c.end-c.payload < 8 {
				return fmt.Errorf("%w: short mfhd", ErrBadFragment)
			}
			f.Seq = binary.BigEndian.Uint32(m.b[c.payload+4:])
			haveMfhd = true
		case "traf":
			trafs++
			if trafs > maxTrafsPerFragment {
				return fmt.Errorf("%w: too many traf", ErrBadFragment)
			}
			id, samples, end, err := m.traf(c, nextData)
			if err != nil {
				return err
			}
			nextData = end
			switch id {
			case VideoTrackID:
				f.Video = append(f.Video, samples...)
			case AudioTrackID:
				f.Audio = append(f.Audio, samples...)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !haveMfhd {
		return fmt.Errorf("%w: moof without mfhd", ErrBadFragment)
	}
	return nil
}

// traf parses a traf box. implicitBase is where the data of a traf without
// default-base-is-moof start (the end of the previous traf's data, or the
// moof for the first). It returns the track ID, the samples and the end of
// the traf's data.
func (m *moofParser) traf(traf box, implicitBase int64) (uint32, []Sample, int64, error) {
	var (
		haveTfhd, haveTfdt        bool
		trackID                   uint32
		defDur, defSize, defFlags uint32
		base, dataPos             int64
		dts                       int64
		samples                   []Sample
		truns                     int
	)
	err := children(m.b, traf.payload, traf.end, func(c box) error {
		r := reader{b: m.b[c.payload:c.end]}
		switch c.typ {
		case "tfhd":
			if haveTfhd {
				return fmt.Errorf("%w: duplicate tfhd", ErrBadFragment)
			}
			flags := r.u32() & 0xffffff
			trackID = r.u32()
			base = implicitBase
			if flags&tfhdDefaultBaseIsMoof != 0 {
				base = m.base
			}
			if flags&tfhdBaseDataOffset != 0 {
				// An absolute file offset: meaningless for a fragment read
				// out of its object; a recorder never writes it.
				return fmt.Errorf("%w: tfhd base-data-offset unsupported", ErrBadFragment)
			}
			if flags&tfhdSampleDescIndex != 0 {
				r.u32()
			}
			if flags&tfhdDefaultDuration != 0 {
				defDur = r.u32()
			}
			if flags&tfhdDefaultSize != 0 {
				defSize = r.u32()
			}
			if flags&tfhdDefaultFlags != 0 {
				defFlags = r.u32()
			}
			if r.err {
				return fmt.Errorf("%w: short tfhd", ErrBadFragment)
			}
			haveTfhd = true
			dataPos = base
		case "tfdt":
			if r.u32()>>24 == 1 {
				v := r.u64()
				if v > maxDecodeTime {
					return fmt.Errorf("%w: tfdt out of range", ErrBadFragment)
				}
				dts = int64(v)
			} else {
				dts = int64(r.u32())
			}
			if r.err {
				return fmt.Errorf("%w: short tfdt", ErrBadFragment)
			}
			haveTfdt = true
		case "trun":
			if !haveTfhd || !haveTfdt {
				return fmt.Errorf("%w: trun before tfhd/tfdt", ErrBadFragment)
			}
			truns++
			if truns > maxTrunsPerTraf {
				return fmt.Errorf("%w: too many trun", ErrBadFragment)
			}
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
				return fmt.Errorf("%w: short trun", ErrBadFragment)
			}
			entry := 0
			for _, f := range []uint32{trunSampleDuration, trunSampleSize, trunSampleFlags, trunSampleCTS} {
				if flags&f != 0 {
					entry += 4
				}
			}
			if uint64(count) > uint64(maxSamplesPerFragment-m.total) || (entry > 0 && uint64(count)*uint64(entry) > uint64(len(r.b)-r.off)) {
				return fmt.Errorf("%w: trun sample count %d too large", ErrBadFragment, count)
			}
			for i := uint32(0); i < count; i++ {
				s := Sample{DTS: dts, Duration: defDur, Size: defSize}
				sflags := defFlags
				if flags&trunSampleDuration != 0 {
					s.Duration = r.u32()
				}
				if flags&trunSampleSize != 0 {
					s.Size = r.u32()
				}
				if flags&trunSampleFlags != 0 {
					sflags = r.u32()
				} else if i == 0 && haveFirstFlags {
					sflags = firstFlags
				}
				if flags&trunSampleCTS != 0 {
					v := r.u32()
					if version == 0 && v > 1<<31-1 {
						return fmt.Errorf("%w: unsigned composition offset out of range", ErrBadFragment)
					}
					s.CTS = int32(v)
				}
				if r.err {
					return fmt.Errorf("%w: short trun", ErrBadFragment)
				}
				s.Sync = sflags&sampleIsNonSync == 0
				if dataPos < m.dataStart || dataPos+int64(s.Size) > m.dataEnd {
					return fmt.Errorf("%w: sample data [%d,+%d) outside mdat", ErrBadFragment, dataPos, s.Size)
				}
				s.Offset = dataPos
				dataPos += int64(s.Size)
				dts += int64(s.Duration)
				samples = append(samples, s)
			}
			m.total += int(count)
		}
		return nil
	})
	if err != nil {
		return 0, nil, 0, err
	}
	if !haveTfhd {
		return 0, nil, 0, fmt.Errorf("%w: traf without tfhd", ErrBadFragment)
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

// byteReader is an io.ReaderAt over a byte slice (bytes.Reader without
// its seek state).
type byteReader []byte

func (b byteReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off > int64(len(b)) {
		return 0, io.ErrUnexpectedEOF
	}
	n := copy(p, b[off:])
	if n < len(p) {
		return n, io.ErrUnexpectedEOF
	}
	return n, nil
}
