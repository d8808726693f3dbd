package replay

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
)

// MP4 is the non-fragmented ("progressive") MP4 of a plan: ftyp, a moov
// with the complete sample tables (the video edit list hides the pre-roll;
// see the package doc for why this form), then one mdat. PrepareMP4 builds
// the moov by running the muxer once over the footage without keeping any
// payload; Write runs it again and streams the payloads after the moov,
// checking that they are the ones the tables describe.
type MP4 struct {
	r    *Replayer
	plan *Plan
	head []byte // ftyp + moov + mdat header
	size int64
	tabs []*trackTable
}

// ErrFootageChanged is returned (wrapped) by MP4.Write when the footage read
// the second time does not match the tables built from the first read.
var ErrFootageChanged = errors.New("footage changed while the replay was written")

// PrepareMP4 reads the footage of p once and builds the MP4's header. It
// writes nothing; on error the response is untouched. Memory is about the
// size of the moov: 4 bytes per sample plus a few per GOP and fragment.
func (r *Replayer) PrepareMP4(ctx context.Context, p *Plan) (*MP4, error) {
	ts := &tableSink{}
	if err := r.mux(ctx, p, ts); err != nil {
		return nil, err
	}
	if ts.init == nil {
		return nil, fmt.Errorf("prepare mp4: %w", ErrNoFootage)
	}
	head, size, err := ts.header()
	if err != nil {
		return nil, fmt.Errorf("prepare mp4: %w", err)
	}
	return &MP4{r: r, plan: p, head: head, size: size, tabs: ts.tracks}, nil
}

// Size is the length of the whole file in bytes (for Content-Length).
func (m *MP4) Size() int64 { return m.size }

// Write writes the file to w: the header, then the sample payloads read
// again from the footage.
func (m *MP4) Write(ctx context.Context, w io.Writer) error {
	if _, err := w.Write(m.head); err != nil {
		return fmt.Errorf("write mp4 header: %w", err)
	}
	for _, t := range m.tabs {
		t.cursor = 0
	}
	ps := &payloadSink{w: w, tabs: m.tabs, left: m.size - int64(len(m.head))}
	if err := m.r.mux(ctx, m.plan, ps); err != nil {
		return err
	}
	if ps.left != 0 {
		return fmt.Errorf("mp4 payload: %d bytes short: %w", ps.left, ErrFootageChanged)
	}
	return nil
}

// trackTable is one output track's sample tables, built by the first pass.
type trackTable struct {
	id        int
	timescale uint32
	isVideo   bool
	sizes     []uint32
	stts      []sttsRun
	ctts      []cttsRun
	sync      []uint32 // 1-based numbers of the sync samples
	allSync   bool
	chunks    []chunk
	nextDTS   int64 // decode time after the last sample
	startDTS  int64 // decode time of the first sample (audio: an empty edit before it)
	presEnd   int64 // latest dts+cts+duration
	hasCtts   bool
	negCtts   bool

	// pass 2: the next sample to be written
	cursor int
}

type sttsRun struct{ count, delta uint32 }

type cttsRun struct {
	count  uint32
	offset int32
}

type chunk struct {
	off   uint64 // relative to the mdat payload start
	count uint32
}

// tableSink records what the fragmented output would contain as
// progressive sample tables.
type tableSink struct {
	init      *fmp4.Init
	mediaTime int64
	mediaEnd  int64 // video media time where the window ends
	tracks    []*trackTable
	bytes     uint64
}

func (s *tableSink) begin(init *fmp4.Init, mediaTime int64, _ uint64) error {
	s.init, s.mediaTime = init, mediaTime
	for _, t := range init.Tracks {
		s.tracks = append(s.tracks, &trackTable{id: t.ID, timescale: t.TimeScale, isVideo: t.Codec.IsVideo(), allSync: true, startDTS: -1})
	}
	return nil
}

// editEnd: see payloadSink.editEnd.
func (s *tableSink) editEnd() bool { return true }

func (s *tableSink) end(mediaEnd int64) error {
	s.mediaEnd = mediaEnd
	return nil
}

func (s *tableSink) track(id int) *trackTable {
	for _, t := range s.tracks {
		if t.id == id {
			return t
		}
	}
	return nil
}

func (s *tableSink) part(p *fmp4.Part) error {
	for _, pt := range p.Tracks {
		t := s.track(pt.ID)
		if t == nil || len(pt.Samples) == 0 {
			return fmt.Errorf("mp4 tables: part with unknown or empty track %d", pt.ID)
		}
		if err := t.add(pt, s.bytes); err != nil {
			return err
		}
		for _, smp := range pt.Samples {
			s.bytes += uint64(len(smp.Payload))
		}
	}
	return nil
}

// add appends one part's run of samples as one chunk. A hole in decode
// time before it (audio placed by the wall clock after a segment boundary)
// lengthens the previous sample, which is what the fragmented output's
// tfdt says; the first sample's decode time becomes an empty edit (audio)
// or must be 0 (video, whose decode times start at 0).
func (t *trackTable) add(pt *fmp4.PartTrack, off uint64) error {
	base := int64(pt.BaseTime)
	switch {
	case t.startDTS < 0:
		if t.isVideo && base != 0 {
			return fmt.Errorf("mp4 tables: video starts at decode time %d, want 0", base)
		}
		t.startDTS, t.nextDTS = base, base
	case base < t.nextDTS:
		return fmt.Errorf("mp4 tables: track %d decode time %d before %d", t.id, base, t.nextDTS)
	case base > t.nextDTS:
		last := &t.stts[len(t.stts)-1]
		d := uint64(last.delta) + uint64(base-t.nextDTS)
		if d > 1<<32-1 {
			return fmt.Errorf("mp4 tables: track %d hole of %d ticks too long", t.id, base-t.nextDTS)
		}
		if last.count > 1 {
			last.count--
			t.stts = append(t.stts, sttsRun{count: 1, delta: uint32(d)})
		} else {
			last.delta = uint32(d)
		}
		t.nextDTS = base
	}
	t.chunks = append(t.chunks, chunk{off: off, count: uint32(len(pt.Samples))})
	for _, smp := range pt.Samples {
		n := uint32(len(t.sizes) + 1)
		t.sizes = append(t.sizes, uint32(len(smp.Payload)))
		if k := len(t.stts) - 1; k >= 0 && t.stts[k].delta == smp.Duration {
			t.stts[k].count++
		} else {
			t.stts = append(t.stts, sttsRun{count: 1, delta: smp.Duration})
		}
		if k := len(t.ctts) - 1; k >= 0 && t.ctts[k].offset == smp.PTSOffset {
			t.ctts[k].count++
		} else {
			t.ctts = append(t.ctts, cttsRun{count: 1, offset: smp.PTSOffset})
		}
		t.hasCtts = t.hasCtts || smp.PTSOffset != 0
		t.negCtts = t.negCtts || smp.PTSOffset < 0
		if smp.IsNonSyncSample {
			t.allSync = false
		} else {
			t.sync = append(t.sync, n)
		}
		t.presEnd = max(t.presEnd, t.nextDTS+int64(smp.PTSOffset)+int64(smp.Duration))
		t.nextDTS += int64(smp.Duration)
	}
	return nil
}

// payloadSink writes the payloads of the second pass, checking each
// against the tables.
type payloadSink struct {
	w    io.Writer
	tabs []*trackTable
	left int64
}

func (s *payloadSink) begin(*fmp4.Init, int64, uint64) error { return nil }

func (s *payloadSink) end(int64) error { return nil }

// editEnd: the progressive form's edit list ends at the window end and
// ffmpeg applies it; both passes must cut alike.
func (s *payloadSink) editEnd() bool { return true }

func (s *payloadSink) part(p *fmp4.Part) error {
	for _, pt := range p.Tracks {
		var t *trackTable
		for _, x := range s.tabs {
			if x.id == pt.ID {
				t = x
			}
		}
		if t == nil {
			return fmt.Errorf("mp4 payload: track %d: %w", pt.ID, ErrFootageChanged)
		}
		for _, smp := range pt.Samples {
			if t.cursor >= len(t.sizes) || t.sizes[t.cursor] != uint32(len(smp.Payload)) {
				return fmt.Errorf("mp4 payload: track %d sample %d: %w", pt.ID, t.cursor+1, ErrFootageChanged)
			}
			t.cursor++
			s.left -= int64(len(smp.Payload))
			if s.left < 0 {
				return fmt.Errorf("mp4 payload: too long: %w", ErrFootageChanged)
			}
			if _, err := s.w.Write(smp.Payload); err != nil {
				return fmt.Errorf("write mp4 payload: %w", err)
			}
		}
	}
	return nil
}

// header builds ftyp + moov + the mdat header, and the total file size.
// The moov's size does not depend on the chunk offsets (fixed-width
// entries), so it is built once with offsets relative to the mdat payload
// and once more with the absolute ones.
func (s *tableSink) header() ([]byte, int64, error) {
	ftyp := mp4Ftyp()
	mdatHdr := 8
	if s.bytes+8 > 1<<32-1 {
		mdatHdr = 16
	}
	moov, err := s.moov(0, false)
	if err != nil {
		return nil, 0, err
	}
	dataStart := uint64(len(ftyp) + len(moov) + mdatHdr)
	co64 := dataStart+s.bytes > 1<<32-1
	if co64 {
		if moov, err = s.moov(0, true); err != nil {
			return nil, 0, err
		}
		dataStart = uint64(len(ftyp) + len(moov) + mdatHdr)
	}
	if moov, err = s.moov(dataStart, co64); err != nil {
		return nil, 0, err
	}
	out := append(ftyp, moov...)
	if mdatHdr == 16 {
		out = binary.BigEndian.AppendUint32(out, 1)
		out = append(out, "mdat"...)
		out = binary.BigEndian.AppendUint64(out, s.bytes+16)
	} else {
		out = binary.BigEndian.AppendUint32(out, uint32(s.bytes+8))
		out = append(out, "mdat"...)
	}
	return out, int64(len(out)) + int64(s.bytes), nil
}

func mp4Ftyp() []byte {
	b := []byte("isom")
	b = binary.BigEndian.AppendUint32(b, 0x200)
	b = append(b, "isomiso2avc1mp41"...)
	return mkBox("ftyp", b)
}

// mkBox wraps payload in a box header.
func mkBox(typ string, payload ...[]byte) []byte {
	n := 8
	for _, p := range payload {
		n += len(p)
	}
	b := binary.BigEndian.AppendUint32(make([]byte, 0, n), uint32(n))
	b = append(b, typ...)
	for _, p := range payload {
		b = append(b, p...)
	}
	return b
}

// fullBox is mkBox with a version/flags header.
func fullBox(typ string, version byte, flags uint32, payload ...[]byte) []byte {
	vf := binary.BigEndian.AppendUint32(nil, uint32(version)<<24|flags&0xffffff)
	return mkBox(typ, append([][]byte{vf}, payload...)...)
}

// initBoxes locates the boxes of the fragmented init the progressive moov
// reuses (tkhd tail, hdlr, vmhd/smhd, dinf, stsd), per track ID.
type initTrackBoxes struct {
	tkhdTail, hdlr, mhd, dinf, stsd, mdhdLang []byte
}

func parseInitBoxes(b []byte) (map[uint32]*initTrackBoxes, error) {
	out := map[uint32]*initTrackBoxes{}
	var visit func(from, to int) error
	var cur *initTrackBoxes
	visit = func(from, to int) error {
		return children(b, from, to, func(c box) error {
			p := b[c.payloadStart:c.end]
			switch c.typ {
			case "moov", "mdia", "minf", "stbl":
				return visit(c.payloadStart, c.end)
			case "trak":
				cur = &initTrackBoxes{}
				if err := visit(c.payloadStart, c.end); err != nil {
					return err
				}
				if cur.tkhdTail == nil || cur.stsd == nil || cur.mdhdLang == nil {
					return fmt.Errorf("init trak without tkhd/mdhd/stsd")
				}
			case "tkhd":
				hdr := 4 + 8 + 4 + 4 + 4 // v0: vf, times, id, reserved, duration
				if len(p) > 0 && p[0] == 1 {
					hdr = 4 + 16 + 4 + 4 + 8
				}
				if len(p) < hdr+60 {
					return fmt.Errorf("short tkhd")
				}
				idOff := 4 + 8 // after version/flags and the two times
				if p[0] == 1 {
					idOff = 4 + 16
				}
				out[binary.BigEndian.Uint32(p[idOff:])] = cur
				cur.tkhdTail = p[hdr : hdr+60]
			case "mdhd":
				lang := 4 + 16
				if len(p) > 0 && p[0] == 1 {
					lang = 4 + 28
				}
				if len(p) < lang+4 {
					return fmt.Errorf("short mdhd")
				}
				cur.mdhdLang = p[lang : lang+4]
			case "hdlr":
				cur.hdlr = b[c.start:c.end]
			case "vmhd", "smhd":
				cur.mhd = b[c.start:c.end]
			case "dinf":
				cur.dinf = b[c.start:c.end]
			case "stsd":
				cur.stsd = b[c.start:c.end]
			}
			return nil
		})
	}
	if err := visit(0, len(b)); err != nil {
		return nil, fmt.Errorf("parse output init: %w", err)
	}
	return out, nil
}

// moov builds the movie box. The movie timescale is the video timescale,
// so the edit list is exact to the tick.
func (s *tableSink) moov(dataStart uint64, co64 bool) ([]byte, error) {
	var ib seekablebuffer.Buffer
	if err := s.init.Marshal(&ib); err != nil {
		return nil, fmt.Errorf("marshal init: %w", err)
	}
	boxes, err := parseInitBoxes(ib.Bytes())
	if err != nil {
		return nil, err
	}
	movieTS := uint32(0)
	for _, t := range s.tracks {
		if t.isVideo {
			movieTS = t.timescale
		}
	}
	var traks [][]byte
	var movieDur uint64
	nextID := uint32(1)
	for _, t := range s.tracks {
		if len(t.sizes) == 0 {
			continue // no sample survived (audio entirely outside the window)
		}
		ib := boxes[uint32(t.id)]
		if ib == nil {
			return nil, fmt.Errorf("no init boxes for track %d", t.id)
		}
		trak, dur := t.trak(ib, s.mediaTime, s.mediaEnd, movieTS, dataStart, co64)
		traks = append(traks, trak)
		movieDur = max(movieDur, dur)
		nextID = max(nextID, uint32(t.id)+1)
	}
	return mkBox("moov", append([][]byte{mvhd(movieTS, movieDur, nextID)}, traks...)...), nil
}

func mvhd(timescale uint32, dur uint64, nextID uint32) []byte {
	var p []byte
	v := byte(0)
	if dur > 1<<32-1 {
		v = 1
		p = append(p, make([]byte, 16)...) // creation, modification
		p = binary.BigEndian.AppendUint32(p, timescale)
		p = binary.BigEndian.AppendUint64(p, dur)
	} else {
		p = append(p, make([]byte, 8)...)
		p = binary.BigEndian.AppendUint32(p, timescale)
		p = binary.BigEndian.AppendUint32(p, uint32(dur))
	}
	p = binary.BigEndian.AppendUint32(p, 0x00010000) // rate 1.0
	p = binary.BigEndian.AppendUint16(p, 0x0100)     // volume 1.0
	p = append(p, make([]byte, 10)...)
	p = append(p, unityMatrix()...)
	p = append(p, make([]byte, 24)...)
	p = binary.BigEndian.AppendUint32(p, nextID)
	return fullBox("mvhd", v, 0, p)
}

func unityMatrix() []byte {
	var m []byte
	for _, v := range []uint32{0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000} {
		m = binary.BigEndian.AppendUint32(m, v)
	}
	return m
}

// trak builds one track; it returns it with its duration in the movie
// timescale.
func (t *trackTable) trak(ib *initTrackBoxes, mediaTime, mediaEnd int64, movieTS uint32, dataStart uint64, co64 bool) ([]byte, uint64) {
	toMovie := func(d int64) uint64 { return uint64(d) * uint64(movieTS) / uint64(t.timescale) }
	var edts []byte
	var presDur uint64 // in the movie timescale
	if t.isVideo {
		// One edit from mediaTime (hides the pre-roll) to the end of the
		// window, or of the last frame if that is earlier. Unlike in a
		// fragmented file, ffmpeg applies the edit's end too: with
		// B-frames the frames that endCut kept past the end (the decoder
		// needs them) are not shown.
		end := t.presEnd
		if mediaEnd > mediaTime {
			end = min(end, mediaEnd)
		}
		presDur = toMovie(end - mediaTime)
		edts = editList(mediaTime, presDur)
	} else {
		// Audio starts at its first sample's decode time: an empty edit
		// before it keeps it aligned with the video.
		media := toMovie(t.nextDTS - t.startDTS)
		presDur = toMovie(t.startDTS) + media
		if t.startDTS > 0 {
			edts = emptyEditThenMedia(toMovie(t.startDTS), media)
		}
	}
	mediaDur := uint64(t.nextDTS - t.startDTS)
	stbl := mkBox("stbl", ib.stsd, t.sttsBox(), t.stssBox(), t.cttsBox(), t.stscBox(), t.stszBox(), t.chunkOffsets(dataStart, co64))
	minf := mkBox("minf", ib.mhd, ib.dinf, stbl)
	mdia := mkBox("mdia", mdhd(t.timescale, mediaDur, ib.mdhdLang), ib.hdlr, minf)
	return mkBox("trak", tkhd(uint32(t.id), presDur, ib.tkhdTail), edts, mdia), presDur
}

func tkhd(id uint32, dur uint64, tail []byte) []byte {
	var p []byte
	v := byte(0)
	if dur > 1<<32-1 {
		v = 1
		p = append(p, make([]byte, 16)...)
		p = binary.BigEndian.AppendUint32(p, id)
		p = append(p, 0, 0, 0, 0)
		p = binary.BigEndian.AppendUint64(p, dur)
	} else {
		p = append(p, make([]byte, 8)...)
		p = binary.BigEndian.AppendUint32(p, id)
		p = append(p, 0, 0, 0, 0)
		p = binary.BigEndian.AppendUint32(p, uint32(dur))
	}
	return fullBox("tkhd", v, 3, p, tail) // enabled, in movie
}

func mdhd(timescale uint32, dur uint64, lang []byte) []byte {
	var p []byte
	v := byte(0)
	if dur > 1<<32-1 {
		v = 1
		p = append(p, make([]byte, 16)...)
		p = binary.BigEndian.AppendUint32(p, timescale)
		p = binary.BigEndian.AppendUint64(p, dur)
	} else {
		p = append(p, make([]byte, 8)...)
		p = binary.BigEndian.AppendUint32(p, timescale)
		p = binary.BigEndian.AppendUint32(p, uint32(dur))
	}
	return fullBox("mdhd", v, 0, p, lang)
}

// emptyEditThenMedia is an edit list with an empty edit of emptyDur then
// the media from time 0 for mediaDur (movie timescale).
func emptyEditThenMedia(emptyDur, mediaDur uint64) []byte {
	var p []byte
	v := byte(0)
	if emptyDur > 1<<32-1 || mediaDur > 1<<32-1 {
		v = 1
	}
	p = binary.BigEndian.AppendUint32(p, 2)
	for _, e := range [][2]int64{{int64(emptyDur), -1}, {int64(mediaDur), 0}} {
		if v == 1 {
			p = binary.BigEndian.AppendUint64(p, uint64(e[0]))
			p = binary.BigEndian.AppendUint64(p, uint64(e[1]))
		} else {
			p = binary.BigEndian.AppendUint32(p, uint32(e[0]))
			p = binary.BigEndian.AppendUint32(p, uint32(int32(e[1])))
		}
		p = binary.BigEndian.AppendUint32(p, 1<<16)
	}
	return mkBox("edts", fullBox("elst", v, 0, p))
}

func (t *trackTable) sttsBox() []byte {
	p := binary.BigEndian.AppendUint32(nil, uint32(len(t.stts)))
	for _, r := range t.stts {
		p = binary.BigEndian.AppendUint32(p, r.count)
		p = binary.BigEndian.AppendUint32(p, r.delta)
	}
	return fullBox("stts", 0, 0, p)
}

// stssBox is omitted (nil) when every sample is a sync sample.
func (t *trackTable) stssBox() []byte {
	if t.allSync {
		return nil
	}
	p := binary.BigEndian.AppendUint32(nil, uint32(len(t.sync)))
	for _, n := range t.sync {
		p = binary.BigEndian.AppendUint32(p, n)
	}
	return fullBox("stss", 0, 0, p)
}

// cttsBox is omitted when every offset is 0; version 1 (signed) only if
// one is negative.
func (t *trackTable) cttsBox() []byte {
	if !t.hasCtts {
		return nil
	}
	v := byte(0)
	if t.negCtts {
		v = 1
	}
	p := binary.BigEndian.AppendUint32(nil, uint32(len(t.ctts)))
	for _, r := range t.ctts {
		p = binary.BigEndian.AppendUint32(p, r.count)
		p = binary.BigEndian.AppendUint32(p, uint32(r.offset))
	}
	return fullBox("ctts", v, 0, p)
}

func (t *trackTable) stscBox() []byte {
	var entries [][2]uint32 // first chunk, samples per chunk
	for i, c := range t.chunks {
		if len(entries) == 0 || entries[len(entries)-1][1] != c.count {
			entries = append(entries, [2]uint32{uint32(i + 1), c.count})
		}
	}
	p := binary.BigEndian.AppendUint32(nil, uint32(len(entries)))
	for _, e := range entries {
		p = binary.BigEndian.AppendUint32(p, e[0])
		p = binary.BigEndian.AppendUint32(p, e[1])
		p = binary.BigEndian.AppendUint32(p, 1) // sample description index
	}
	return fullBox("stsc", 0, 0, p)
}

func (t *trackTable) stszBox() []byte {
	p := binary.BigEndian.AppendUint32(nil, 0) // sizes listed
	p = binary.BigEndian.AppendUint32(p, uint32(len(t.sizes)))
	sz := make([]byte, 0, 4*len(t.sizes))
	for _, s := range t.sizes {
		sz = binary.BigEndian.AppendUint32(sz, s)
	}
	return fullBox("stsz", 0, 0, p, sz)
}

func (t *trackTable) chunkOffsets(dataStart uint64, co64 bool) []byte {
	p := binary.BigEndian.AppendUint32(nil, uint32(len(t.chunks)))
	for _, c := range t.chunks {
		if co64 {
			p = binary.BigEndian.AppendUint64(p, dataStart+c.off)
		} else {
			p = binary.BigEndian.AppendUint32(p, uint32(dataStart+c.off))
		}
	}
	if co64 {
		return fullBox("co64", 0, 0, p)
	}
	return fullBox("stco", 0, 0, p)
}
