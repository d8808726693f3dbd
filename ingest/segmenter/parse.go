package segmenter

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Limits for parsing untrusted files.
const (
	maxMoovSize = 4 << 20
	maxMoofSize = 16 << 20
)

// ParsedFile is the result of walking a segment file.
type ParsedFile struct {
	// InitSize is the byte size of ftyp+moov.
	InitSize int64
	// Fragments are the complete moof+mdat pairs, in file order.
	Fragments []ParsedFragment
	// ValidSize is the end offset of the last complete fragment (InitSize
	// when there is none): the size to truncate the file to.
	ValidSize int64
	// StopReason says why the walk stopped before the end of the file;
	// empty when the whole file was valid.
	StopReason string
}

// ParsedFragment is one complete moof+mdat pair.
type ParsedFragment struct {
	Seq          uint32
	Offset, Size int64
	// Video holds the samples of track 1 (VideoTrackID).
	Video []SampleTime
}

// SampleTime is one video sample's timing in track units.
type SampleTime struct {
	DTS      int64
	CTS      int64 // composition offset; presentation = DTS + CTS
	Duration int64
	Sync     bool
}

// Keyframe reports whether the fragment's first video sample is a sync
// sample.
func (f *ParsedFragment) Keyframe() bool {
	return len(f.Video) > 0 && f.Video[0].Sync
}

type boxHeader struct {
	typ        string
	offset     int64
	size       int64 // whole box
	headerSize int64
}

// readBoxHeader reads the header of the box at off. It fails when the
// header or the box would extend past fileSize.
func readBoxHeader(r io.ReaderAt, off, fileSize int64) (boxHeader, error) {
	var b [16]byte
	if fileSize-off < 8 {
		return boxHeader{}, io.ErrUnexpectedEOF
	}
	if _, err := r.ReadAt(b[:8], off); err != nil {
		return boxHeader{}, err
	}
	h := boxHeader{typ: string(b[4:8]), offset: off, size: int64(binary.BigEndian.Uint32(b[:4])), headerSize: 8}
	switch h.size {
	case 0:
		return boxHeader{}, errors.New("box extends to end of file")
	case 1:
		if fileSize-off < 16 {
			return boxHeader{}, io.ErrUnexpectedEOF
		}
		if _, err := r.ReadAt(b[8:16], off+8); err != nil {
			return boxHeader{}, err
		}
		u := binary.BigEndian.Uint64(b[8:16])
		if u > 1<<62 {
			return boxHeader{}, errors.New("box size too large")
		}
		h.size, h.headerSize = int64(u), 16
	}
	if h.size < h.headerSize {
		return boxHeader{}, fmt.Errorf("invalid box size %d", h.size)
	}
	if h.size > fileSize-off {
		return boxHeader{}, io.ErrUnexpectedEOF
	}
	return h, nil
}

// ParseFile walks a segment file: ftyp, moov, then moof+mdat pairs. It
// stops at the first incomplete or corrupt box; an error is returned only
// when the init itself is missing or broken.
func ParseFile(r io.ReaderAt, size int64) (*ParsedFile, error) {
	var off int64
	for _, want := range []string{"ftyp", "moov"} {
		h, err := readBoxHeader(r, off, size)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", want, err)
		}
		if h.typ != want {
			return nil, fmt.Errorf("expected %s box, found %q", want, h.typ)
		}
		if h.size > maxMoovSize {
			return nil, fmt.Errorf("%s box too large", want)
		}
		off += h.size
	}
	pf := &ParsedFile{InitSize: off, ValidSize: off}
	for off < size {
		frag, next, err := parseFragment(r, off, size)
		if err != nil {
			pf.StopReason = fmt.Sprintf("offset %d: %v", off, err)
			break
		}
		pf.Fragments = append(pf.Fragments, frag)
		off = next
		pf.ValidSize = off
	}
	return pf, nil
}

// parseFragment parses the fragment at off: an optional free (or skip)
// box, which the writer puts in front of the moof (fragment.go), the moof
// and its mdat. The fragment's Offset and Size cover all three.
func parseFragment(r io.ReaderAt, off, size int64) (ParsedFragment, int64, error) {
	start := off
	mh, err := readBoxHeader(r, off, size)
	if err != nil {
		return ParsedFragment{}, 0, fmt.Errorf("moof: %w", err)
	}
	if mh.typ == "free" || mh.typ == "skip" {
		off += mh.size
		if mh, err = readBoxHeader(r, off, size); err != nil {
			return ParsedFragment{}, 0, fmt.Errorf("moof: %w", err)
		}
	}
	if mh.typ != "moof" {
		return ParsedFragment{}, 0, fmt.Errorf("expected moof, found %q", mh.typ)
	}
	if mh.size > maxMoofSize {
		return ParsedFragment{}, 0, errors.New("moof too large")
	}
	dh, err := readBoxHeader(r, off+mh.size, size)
	if err != nil {
		return ParsedFragment{}, 0, fmt.Errorf("mdat: %w", err)
	}
	if dh.typ != "mdat" {
		return ParsedFragment{}, 0, fmt.Errorf("expected mdat, found %q", dh.typ)
	}
	moof := make([]byte, mh.size-mh.headerSize)
	if _, err := r.ReadAt(moof, off+mh.headerSize); err != nil {
		return ParsedFragment{}, 0, err
	}
	frag := ParsedFragment{Offset: start, Size: dh.offset + dh.size - start}
	dataStart := dh.offset + dh.headerSize
	dataEnd := dh.offset + dh.size
	if err := parseMoof(moof, off, dataStart, dataEnd, &frag); err != nil {
		return ParsedFragment{}, 0, err
	}
	return frag, dh.offset + dh.size, nil
}

// children iterates the boxes inside buf.
func children(buf []byte, fn func(typ string, body []byte) error) error {
	for len(buf) > 0 {
		if len(buf) < 8 {
			return errors.New("truncated child box")
		}
		sz := uint64(binary.BigEndian.Uint32(buf[:4]))
		typ := string(buf[4:8])
		hdr := uint64(8)
		if sz == 1 {
			if len(buf) < 16 {
				return errors.New("truncated child box")
			}
			sz, hdr = binary.BigEndian.Uint64(buf[8:16]), 16
		}
		if sz < hdr || sz > uint64(len(buf)) {
			return fmt.Errorf("invalid %q box size", typ)
		}
		if err := fn(typ, buf[hdr:sz]); err != nil {
			return err
		}
		buf = buf[sz:]
	}
	return nil
}

func parseMoof(moof []byte, moofOff, dataStart, dataEnd int64, frag *ParsedFragment) error {
	seenMfhd := false
	err := children(moof, func(typ string, body []byte) error {
		switch typ {
		case "mfhd":
			if len(body) < 8 {
				return errors.New("short mfhd")
			}
			frag.Seq = binary.BigEndian.Uint32(body[4:8])
			seenMfhd = true
		case "traf":
			return parseTraf(body, moofOff, dataStart, dataEnd, frag)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !seenMfhd {
		return errors.New("moof without mfhd")
	}
	return nil
}

type tfhd struct {
	trackID                  uint32
	baseOffset               int64
	hasBase                  bool
	defDur, defSize, defFlag uint32
}

func parseTraf(traf []byte, moofOff, dataStart, dataEnd int64, frag *ParsedFragment) error {
	var hd *tfhd
	var baseTime int64 = -1
	var next int64 // decode time of the next sample
	return children(traf, func(typ string, b []byte) error {
		switch typ {
		case "tfhd":
			if len(b) < 8 {
				return errors.New("short tfhd")
			}
			flags := uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
			t := &tfhd{trackID: binary.BigEndian.Uint32(b[4:8])}
			p := b[8:]
			take := func(n int) ([]byte, error) {
				if len(p) < n {
					return nil, errors.New("short tfhd")
				}
				v := p[:n]
				p = p[n:]
				return v, nil
			}
			if flags&0x01 != 0 {
				v, err := take(8)
				if err != nil {
					return err
				}
				u := binary.BigEndian.Uint64(v)
				if u > 1<<62 {
					return errors.New("invalid base data offset")
				}
				t.baseOffset, t.hasBase = int64(u), true
			}
			if flags&0x02 != 0 {
				if _, err := take(4); err != nil {
					return err
				}
			}
			for _, f := range []struct {
				bit uint32
				dst *uint32
			}{{0x08, &t.defDur}, {0x10, &t.defSize}, {0x20, &t.defFlag}} {
				if flags&f.bit != 0 {
					v, err := take(4)
					if err != nil {
						return err
					}
					*f.dst = binary.BigEndian.Uint32(v)
				}
			}
			hd = t
		case "tfdt":
			if len(b) < 8 {
				return errors.New("short tfdt")
			}
			if b[0] == 1 {
				if len(b) < 12 {
					return errors.New("short tfdt")
				}
				u := binary.BigEndian.Uint64(b[4:12])
				if u > 1<<50 {
					return errors.New("tfdt too large")
				}
				baseTime = int64(u)
			} else {
				baseTime = int64(binary.BigEndian.Uint32(b[4:8]))
			}
			next = baseTime
		case "trun":
			if hd == nil || baseTime < 0 {
				return errors.New("trun before tfhd/tfdt")
			}
			if len(b) < 8 {
				return errors.New("short trun")
			}
			version := b[0]
			flags := uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
			count := int64(binary.BigEndian.Uint32(b[4:8]))
			p := b[8:]
			var dataOffset int64
			if flags&0x01 != 0 {
				if len(p) < 4 {
					return errors.New("short trun")
				}
				dataOffset = int64(int32(binary.BigEndian.Uint32(p[:4])))
				p = p[4:]
			} else {
				return errors.New("trun without data offset")
			}
			firstFlags, hasFirst := uint32(0), false
			if flags&0x04 != 0 {
				if len(p) < 4 {
					return errors.New("short trun")
				}
				firstFlags, hasFirst = binary.BigEndian.Uint32(p[:4]), true
				p = p[4:]
			}
			entry := int64(0)
			for _, bit := range []uint32{0x100, 0x200, 0x400, 0x800} {
				if flags&bit != 0 {
					entry += 4
				}
			}
			if count*entry > int64(len(p)) || (entry == 0 && count > 1<<20) {
				return errors.New("trun sample count exceeds box")
			}
			base := moofOff
			if hd.hasBase {
				base = hd.baseOffset
			}
			pos := base + dataOffset
			if pos < dataStart || pos > dataEnd {
				return errors.New("trun data offset outside mdat")
			}
			for i := int64(0); i < count; i++ {
				dur, sz, sf := int64(hd.defDur), int64(hd.defSize), hd.defFlag
				var cto int64
				if flags&0x100 != 0 {
					dur = int64(binary.BigEndian.Uint32(p[:4]))
					p = p[4:]
				}
				if flags&0x200 != 0 {
					sz = int64(binary.BigEndian.Uint32(p[:4]))
					p = p[4:]
				}
				if flags&0x400 != 0 {
					sf = binary.BigEndian.Uint32(p[:4])
					p = p[4:]
				} else if i == 0 && hasFirst {
					sf = firstFlags
				}
				if flags&0x800 != 0 {
					if version == 0 {
						cto = int64(binary.BigEndian.Uint32(p[:4]))
					} else {
						cto = int64(int32(binary.BigEndian.Uint32(p[:4])))
					}
					p = p[4:]
				}
				pos += sz
				if pos > dataEnd {
					return errors.New("sample data past mdat end")
				}
				if hd.trackID == VideoTrackID {
					frag.Video = append(frag.Video, SampleTime{DTS: next, CTS: cto, Duration: dur, Sync: sf&0x10000 == 0})
				}
				next += dur
			}
		}
		return nil
	})
}

// fragmentBounds returns the presentation bounds (track units, relative to
// the segment start) of each fragment, by the rule shared with the writer:
// a keyframe fragment starts at its first sample's presentation time, a
// continuation fragment at the previous fragment's end; a fragment ends
// where the next one starts when that is a keyframe fragment, otherwise at
// its latest presentation time plus duration.
func fragmentBounds(frags []ParsedFragment) (starts, ends []int64) {
	starts = make([]int64, len(frags))
	ends = make([]int64, len(frags))
	var prevEnd int64
	for i := range frags {
		f := &frags[i]
		start := prevEnd
		if f.Keyframe() {
			start = f.Video[0].DTS + f.Video[0].CTS
		}
		end := start
		for _, s := range f.Video {
			if e := s.DTS + s.CTS + s.Duration; e > end {
				end = e
			}
		}
		if i+1 < len(frags) && frags[i+1].Keyframe() {
			n := frags[i+1].Video[0]
			end = max(n.DTS+n.CTS, start)
		}
		starts[i], ends[i] = start, end
		prevEnd = end
	}
	return starts, ends
}
