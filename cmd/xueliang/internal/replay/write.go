package replay

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"time"
	"xueliang/storage/recording"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
)

// maxFragmentSize bounds the bytes read for one fragment (a fragment is
// about one GOP; 64 MiB is far above any camera's).
const maxFragmentSize = 64 << 20

// Write streams the fragmented MP4 of p to w: the init (with the video edit
// list that hides the pre-roll), then one moof+mdat per recorded fragment.
// Nothing is written before the first GOP has been read and parsed, so an
// error at that stage leaves w untouched.
func (r *Replayer) Write(ctx context.Context, p *Plan, w io.Writer) error {
	return r.mux(ctx, p, &fragmentedSink{w: w})
}

// mux maps the plan's recorded fragments onto the output timeline and hands
// the result to out: the output tracks once, then one part per recorded
// fragment.
func (r *Replayer) mux(ctx context.Context, p *Plan, out sink) error {
	if p == nil || len(p.segs) == 0 {
		return fmt.Errorf("write replay: %w", ErrNoFootage)
	}
	m := &muxer{out: out, plan: p, re: r.Reencoder, gapTol: r.gapTolerance(), log: r.logger().With("component", "replay", "camera", p.Camera)}
	for i := range p.segs {
		ps := &p.segs[i]
		if err := m.beginSegment(ps, i == len(p.segs)-1); err != nil {
			return fmt.Errorf("write replay of segment %d: %w", ps.seg.ID, err)
		}
		for _, run := range contiguousRuns(ps.frags) {
			if err := r.writeRun(ctx, m, ps, run); err != nil {
				return fmt.Errorf("write replay of segment %d: %w", ps.seg.ID, err)
			}
			if m.done {
				return out.end(m.endPres + m.mediaTime)
			}
		}
	}
	if err := m.finish(); err != nil {
		return err
	}
	return out.end(m.endPres + m.mediaTime)
}

// sink receives the muxer's output: begin once (the output tracks, the
// video edit list's media_time in the video timescale and the planned
// duration in movieTimescale), then the parts in order, then end with the
// video media time (edit list coordinates) at which the window ends. A
// part's samples and payloads are only valid during the call.
type sink interface {
	begin(init *fmp4.Init, mediaTime int64, durationMovie uint64) error
	part(p *fmp4.Part) error
	end(mediaEnd int64) error
	// editEnd reports whether players apply the video edit list's end
	// (mediaEnd) to this output, hiding frames written past it.
	editEnd() bool
}

// fragmentedSink writes the fragmented MP4: ftyp+moov with the edit list,
// then one moof+mdat per part.
type fragmentedSink struct {
	w   io.Writer
	buf seekablebuffer.Buffer
}

func (s *fragmentedSink) begin(init *fmp4.Init, mediaTime int64, durationMovie uint64) error {
	b, err := buildOutputInit(init, mediaTime, durationMovie)
	if err != nil {
		return err
	}
	if _, err := s.w.Write(b); err != nil {
		return fmt.Errorf("write init: %w", err)
	}
	return nil
}

// end: a fragmented track's edit list duration is ignored by ffmpeg, so
// the muxer's end cut (endCut) is what ends the output.
func (s *fragmentedSink) end(int64) error { return nil }

// editEnd: ffmpeg ignores a fragmented track's edit list duration.
func (s *fragmentedSink) editEnd() bool { return false }

func (s *fragmentedSink) part(p *fmp4.Part) error {
	s.buf.Reset()
	if err := p.Marshal(&s.buf); err != nil {
		return fmt.Errorf("marshal fragment: %w", err)
	}
	if _, err := s.w.Write(s.buf.Bytes()); err != nil {
		return fmt.Errorf("write fragment: %w", err)
	}
	return nil
}

// contiguousRuns splits frags into runs that are adjacent in the object.
func contiguousRuns(frags []recording.Fragment) [][]recording.Fragment {
	var runs [][]recording.Fragment
	start := 0
	for i := 1; i <= len(frags); i++ {
		if i == len(frags) || frags[i].Offset != frags[i-1].Offset+frags[i-1].Size {
			runs = append(runs, frags[start:i])
			start = i
		}
	}
	return runs
}

// writeRun reads one contiguous run of fragments with a single ranged read
// and feeds them, one at a time, to the muxer.
func (r *Replayer) writeRun(ctx context.Context, m *muxer, ps *planSegment, run []recording.Fragment) error {
	last := run[len(run)-1]
	off, length := run[0].Offset, last.Offset+last.Size-run[0].Offset
	rc, err := r.Reader.ReadRange(ctx, ps.seg, off, length)
	if err != nil {
		return fmt.Errorf("read %s [%d,+%d): %w", ps.seg.ObjectKey, off, length, err)
	}
	defer rc.Close()
	for _, f := range run {
		if f.Size <= 0 || f.Size > maxFragmentSize {
			return fmt.Errorf("fragment %d: size %d out of range", f.Seq, f.Size)
		}
		buf := make([]byte, f.Size)
		if _, err := io.ReadFull(rc, buf); err != nil {
			return fmt.Errorf("read fragment %d of %s: %w", f.Seq, ps.seg.ObjectKey, err)
		}
		frag, err := parseFragment(buf)
		if err != nil {
			return fmt.Errorf("fragment %d of %s: %w", f.Seq, ps.seg.ObjectKey, err)
		}
		if err := m.fragment(frag); err != nil {
			return err
		}
		if m.done {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

// muxer turns recorded fragments into the output timeline.
//
// Times: video in 1/90000 (the contract's video timescale), audio in
// 1/rate. "pres" is the output presentation time (0 = Plan.Start's frame);
// the output video media time is pres + mediaTime (the edit list offset),
// so the pre-roll has media time in [0, mediaTime).
type muxer struct {
	out  sink
	plan *Plan
	re   Reencoder
	log  *slog.Logger

	init      *fmp4.Init // output init (the first segment's)
	videoTS   int64
	audioTS   int64 // 0 when there is no audio track
	mediaTime int64 // edit list media_time
	ctsShift  int32 // added to every composition offset to keep them >= 0
	ctsWarned bool
	started   bool // init written
	pending   []*rawFragment
	seq       uint32
	done      bool

	// Segments are placed on the output timeline by their wall-clock start
	// (presOff) while decode times stay continuous (dtsOff); the difference
	// goes into the composition offsets. Joining by decode time instead
	// would misplace a segment whose predecessor's decode times lag its
	// presentation (the DTS extractor's start-up ramp does that).
	gapTol    time.Duration
	seg0Start time.Time // wall clock of the first segment's media time 0
	presOff0  int64     // presOff of the first segment
	skipped   int64     // output ticks of the skipped gaps so far
	newSeg    bool      // dtsOff not yet set for the current segment

	// current segment
	ps      *planSegment
	last    bool  // last segment of the plan
	presOff int64 // output pres of the segment's media time 0 (video ticks)
	dtsOff  int64 // output dts of the segment's decode time 0
	inBand  []byte
	endPres int64 // output pres at which the output ends (last segment only)

	videoNext   int64 // output decode time after the last written video sample
	audioNext   int64 // output decode time after the last written audio sample
	lastVideo   *fmp4.Sample
	lastVPres   int64
	lastVIsMax  bool
	paramsMoved bool // a segment with other parameter sets was sent
}

// wallTicks converts a possibly negative duration to units of 1/ts.
func wallTicks(d time.Duration, ts int64) int64 {
	if d < 0 {
		return -ticks(-d, ts)
	}
	return ticks(d, ts)
}

// ticks converts a non-negative duration to units of 1/ts, flooring.
func ticks(d time.Duration, ts int64) int64 {
	return int64(d/time.Second)*ts + int64(d%time.Second)*ts/int64(time.Second)
}

func (m *muxer) beginSegment(ps *planSegment, last bool) error {
	in, err := recording.ParseInit(ps.seg.Init)
	if err != nil {
		return err
	}
	if m.init == nil {
		m.init = in
		m.videoTS = int64(recording.VideoTrack(in).TimeScale)
		if a := recording.FindTrack(in, audioTrackID); a != nil {
			m.audioTS = int64(a.TimeScale)
		}
	} else if !sameLayout(m.init, in) {
		return fmt.Errorf("track layout changed") // Plan stops before such a segment
	}
	m.inBand = nil
	if !sameParameterSets(m.init, in) || m.paramsMoved {
		// The decoder keeps the last parameter sets it saw: once they have
		// moved away from the init's, every later keyframe carries its own.
		m.inBand = avccPrefix(parameterSets(in))
		m.paramsMoved = true
	}
	if m.started {
		if hole := ps.seg.Start.Sub(m.ps.seg.End); hole > m.gapTol {
			m.skipped += ticks(hole, m.videoTS) // gaps=skip cuts it out
		}
		m.presOff = m.presOff0 + wallTicks(ps.seg.Start.Sub(m.seg0Start), m.videoTS) - m.skipped
		m.newSeg = true
	}
	m.ps, m.last = ps, last
	return nil
}

// fragment consumes one recorded fragment.
func (m *muxer) fragment(f *rawFragment) error {
	if !m.started {
		m.pending = append(m.pending, f)
		// The start frame is known once the fragment covering Plan.Start
		// has been read: the one whose last video pts is past it, or the
		// last of the run.
		startPts := ticks(m.plan.Start.Sub(m.ps.seg.Start), m.videoTS)
		if maxPts(f.video) <= startPts && len(m.pending) < len(m.ps.frags) {
			return nil
		}
		if m.plan.exact && !m.nextKeyBuffered() && len(m.pending) < len(m.ps.frags) {
			return nil // the exact form re-encodes up to the next keyframe
		}
		return m.start(startPts)
	}
	return m.emit(f)
}

// holeFree reports whether the decode-order prefix v[:n] can end the
// output without a hole in presentation: every later sample is presented
// after all of the prefix.
func holeFree(v []rawSample, n int) bool {
	mk := maxPts(v[:n])
	for _, s := range v[n:] {
		if s.pts() < mk {
			return false
		}
	}
	return true
}

// endCut picks where the output ends inside its last fragment v: the
// length of the decode-order prefix written. Only a prefix that leaves no
// hole in presentation can end the output (every later sample is
// presented after all of it; with B-frames, a B-frame before the end can
// need a reference frame presented after it), and a fragmented player
// shows every frame it decodes. long is the shortest such prefix that
// holds the frame at the end (the latest one presented before endPres);
// it can run past the end. When the sink applies the edit list's end
// (the progressive form: ffmpeg then hides what runs past it) the output
// ends there. Otherwise (nearest) it ends at whichever is nearer to the
// frame at the end, long or short — the longest hole-free prefix that
// stops before it (ties go to long). short is only taken if it still shows
// a frame (output presentation >= 0).
//
// Which prefix is hole-free depends on the decode order of the mini-GOP,
// not only on its size: x264 decodes P3 B1 B2, x265 (b-pyramid) P3 B2 B1.
// For the latter the prefix ending at the last sample presented before
// the end (B1 for an end in frame 1) already holds P3, 2 frames late,
// while the cut before P3 is 1 frame early. With two B-frames the nearer
// cut is within one frame of the frame at the end in either order.
// endPres and presOff are in the output timeline (see muxer).
func endCut(v []rawSample, endPres, presOff int64, nearest bool) int {
	atEnd := int64(-1 << 62)
	for _, s := range v {
		if p := s.pts(); p+presOff < endPres {
			atEnd = max(atEnd, p)
		}
	}
	long := 0
	for long < len(v) && (maxPts(v[:long]) < atEnd || !holeFree(v, long)) {
		long++
	}
	if !nearest {
		return long
	}
	short := long - 1
	for short > 0 && !holeFree(v, short) {
		short--
	}
	if short <= 0 || maxPts(v[:short])+presOff < 0 {
		return long
	}
	if atEnd-maxPts(v[:short]) < maxPts(v[:long])-atEnd {
		return short
	}
	return long
}

func maxPts(s []rawSample) int64 {
	v := int64(-1 << 62)
	for _, x := range s {
		v = max(v, x.pts())
	}
	return v
}

// start picks the start frame among the buffered first GOP, writes the
// init and the buffered fragments.
func (m *muxer) start(startPts int64) error {
	var all []rawSample
	for _, f := range m.pending {
		all = append(all, f.video...)
	}
	if len(all) == 0 {
		return fmt.Errorf("no video samples in the first fragments")
	}
	if !all[0].sync {
		m.log.Warn("replay does not start on a keyframe", "segment", m.ps.seg.ID)
	}
	// The start frame: the latest presentation time <= startPts (or the
	// earliest one when startPts precedes them all).
	pts := make([]int64, len(all))
	for i, s := range all {
		pts[i] = s.pts()
	}
	sort.Slice(pts, func(i, j int) bool { return pts[i] < pts[j] })
	startFrame := pts[0]
	for _, v := range pts {
		if v <= startPts {
			startFrame = v
		}
	}
	if m.plan.exact && startFrame != all[0].pts() {
		var err error
		if all, err = m.reencodeFirstGOP(all, startFrame); err != nil {
			return err
		}
	}
	// Composition offsets are made non-negative (see package doc): every
	// output pts is shifted by ctsShift, which the edit list takes back.
	minCts := int32(0)
	for _, s := range all {
		minCts = min(minCts, s.cts)
	}
	m.ctsShift = -minCts
	m.mediaTime = startFrame - all[0].dts + int64(m.ctsShift)
	m.presOff = -startFrame
	m.presOff0 = m.presOff
	m.seg0Start = m.ps.seg.Start
	m.dtsOff = m.presOff + m.mediaTime - int64(m.ctsShift)
	m.videoNext = 0

	durMovie := uint64(ticks(m.plan.Duration(), movieTimescale))
	if err := m.out.begin(m.init, m.mediaTime, durMovie); err != nil {
		return err
	}
	m.started = true
	pending := m.pending
	m.pending = nil
	for _, f := range pending {
		if err := m.emit(f); err != nil {
			return err
		}
		if m.done {
			break
		}
	}
	return nil
}

// emit maps one recorded fragment onto the output timeline and writes it.
func (m *muxer) emit(f *rawFragment) error {
	if len(f.video) > 0 && m.newSeg {
		// A new segment: decode times continue right after the last sample
		// written; presentation times follow the wall clock. A sample must
		// not be presented before it is decoded: if the wall-clock placement
		// says so (overlapping segments after a clock step), the segment is
		// moved later by the difference.
		m.newSeg = false
		m.dtsOff = m.videoNext - f.video[0].dts
		var minCts int64
		for _, s := range f.video {
			minCts = min(minCts, s.pts()+m.presOff+m.mediaTime-(s.dts+m.dtsOff))
		}
		if minCts < 0 {
			m.log.Debug("segment moved later to keep decode before presentation", "segment", m.ps.seg.ID, "ticks", -minCts)
			m.presOff -= minCts
		}
	}
	endPres := int64(1 << 62)
	if m.last {
		endPres = ticks(m.plan.End.Sub(m.ps.seg.Start), m.videoTS) + m.presOff
		m.endPres = endPres
	}

	// Video: keep the decode-order prefix up to the last sample shown
	// before the end.
	n := len(f.video)
	cut := false
	for n > 0 && f.video[n-1].pts()+m.presOff >= endPres {
		n--
		cut = true
	}
	if cut {
		n = endCut(f.video, endPres, m.presOff, !m.out.editEnd())
	}
	var part fmp4.Part
	if n > 0 {
		vt := &fmp4.PartTrack{ID: videoTrackID}
		for i, s := range f.video[:n] {
			dtsOut := s.dts + m.dtsOff
			cts := int32(s.pts() + m.presOff + m.mediaTime - dtsOut)
			if cts < 0 && !m.ctsWarned {
				m.ctsWarned = true
				m.log.Warn("negative composition offset in output", "segment", m.ps.seg.ID, "offset", cts)
			}
			if i == 0 {
				vt.BaseTime = uint64(dtsOut)
			}
			payload := s.data
			if s.sync && m.inBand != nil && !s.reenc {
				payload = append(append([]byte(nil), m.inBand...), s.data...)
			}
			smp := &fmp4.Sample{Duration: s.dur, PTSOffset: cts, IsNonSyncSample: !s.sync, Payload: payload}
			vt.Samples = append(vt.Samples, smp)
			m.videoNext = dtsOut + int64(s.dur)
		}
		part.Tracks = append(part.Tracks, vt)
		// Is the last kept sample also the last in presentation order? Then
		// its duration is what ends the output.
		lastS := f.video[n-1]
		m.lastVideo = vt.Samples[n-1]
		m.lastVPres = lastS.pts() + m.presOff
		m.lastVIsMax = lastS.pts() == maxPts(f.video[:n])
	}
	final := cut || (m.last && m.isLastFragment(f))
	if final && m.lastVideo != nil && m.lastVIsMax && n > 0 {
		// End exactly at the plan end (or where the recording ends).
		if d := endPres - m.lastVPres; d > 0 && d < int64(m.lastVideo.Duration) {
			m.videoNext -= int64(m.lastVideo.Duration) - d
			m.lastVideo.Duration = uint32(d)
		}
	}

	// Audio: drop samples before output time 0 and at or after the end.
	if m.audioTS > 0 && len(f.audio) > 0 {
		aOff := m.presOff * m.audioTS / m.videoTS
		aEnd := int64(1 << 62)
		if m.last {
			aEnd = endPres * m.audioTS / m.videoTS
		}
		at := &fmp4.PartTrack{ID: audioTrackID}
		for _, s := range f.audio {
			t := s.dts + aOff
			if t < 0 || t < m.audioNext || t >= aEnd {
				continue
			}
			if len(at.Samples) == 0 {
				at.BaseTime = uint64(t)
			}
			at.Samples = append(at.Samples, &fmp4.Sample{Duration: s.dur, Payload: s.data})
			m.audioNext = t + int64(s.dur)
		}
		if len(at.Samples) > 0 {
			part.Tracks = append(part.Tracks, at)
		}
	}

	if len(part.Tracks) > 0 {
		m.seq++
		part.SequenceNumber = m.seq
		if err := m.out.part(&part); err != nil {
			return err
		}
	}
	if cut {
		m.done = true
	}
	return nil
}

func (m *muxer) isLastFragment(f *rawFragment) bool {
	return f.seq == uint32(m.ps.frags[len(m.ps.frags)-1].Seq)
}

// finish flushes a plan whose first GOP never completed the start search.
func (m *muxer) finish() error {
	if !m.started {
		if len(m.pending) == 0 {
			return fmt.Errorf("write replay: %w", ErrNoFootage)
		}
		return m.start(ticks(m.plan.Start.Sub(m.ps.seg.Start), m.videoTS))
	}
	return nil
}
