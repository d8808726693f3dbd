package segmenter

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/g711"

	"xueliang/ingest/segmenter/segmentertest"
	"xueliang/storage/recording"
)

var testAnchor = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)

type harness struct {
	t      *testing.T
	spool  string
	idx    *segmentertest.FakeIndex
	w      *Writer
	mu     sync.Mutex
	closed []recording.Segment
}

func newHarness(t *testing.T, mod func(*Config)) *harness {
	t.Helper()
	h := &harness{t: t, spool: t.TempDir(), idx: segmentertest.NewFakeIndex()}
	cfg := Config{
		CameraID:  "cam1",
		SpoolRoot: h.spool,
		Index:     h.idx,
		OnClosed: func(s recording.Segment) {
			h.mu.Lock()
			h.closed = append(h.closed, s)
			h.mu.Unlock()
		},
	}
	if mod != nil {
		mod(&cfg)
	}
	w := startWriter(t, cfg)
	h.w = w
	return h
}

func sessionFor(c *segmentertest.Clip, anchorPTS int64) Session {
	s := Session{Anchor: testAnchor, AnchorPTS: anchorPTS, Video: recording.Video{Codec: recording.H264, SPS: c.SPS, PPS: c.PPS}}
	if c.H265 {
		s.Video = recording.Video{Codec: recording.H265, VPS: c.VPS, SPS: c.SPS, PPS: c.PPS}
	}
	if c.AAC != nil {
		s.Audio = &recording.Audio{Codec: recording.AAC, AAC: *c.AAC}
	}
	return s
}

// feed writes the clip with its timestamps shifted by off (90 kHz).
func (h *harness) feed(c *segmentertest.Clip, off int64) {
	h.t.Helper()
	for _, au := range c.AUs {
		if au.Video {
			if err := h.w.WriteVideo(au.PTS+off, au.DTS+off, au.NALUs, au.Key); err != nil {
				h.t.Fatal(err)
			}
		} else {
			rate := int64(c.AAC.SampleRate)
			if err := h.w.WriteAudio((au.PTS+off)*rate/90000, au.AACs); err != nil {
				h.t.Fatal(err)
			}
		}
	}
}

func firstVideo(c *segmentertest.Clip) segmentertest.AU {
	return c.Video()[0]
}

// checkSegments verifies the invariants every recording must satisfy and
// returns the closed segments in order.
func (h *harness) checkSegments(want int, contiguous bool) []recording.Segment {
	t := h.t
	t.Helper()
	closeWait(h.w)
	segs := h.idx.Segments()
	if len(segs) != want {
		t.Fatalf("got %d segments, want %d", len(segs), want)
	}
	files := segmentertest.SpoolFiles(t, h.spool)
	if len(files) != want {
		t.Fatalf("got %d spool files, want %d", len(files), want)
	}
	h.mu.Lock()
	if len(h.closed) != want {
		t.Errorf("OnClosed called %d times, want %d", len(h.closed), want)
	}
	h.mu.Unlock()
	for i, s := range segs {
		if s.State != recording.StateClosed {
			t.Errorf("segment %d state %v", i, s.State)
		}
		if s.ObjectKey != recording.SegmentKey("cam1", s.Start) {
			t.Errorf("segment %d key %q does not match start", i, s.ObjectKey)
		}
		path := filepath.Join(h.spool, s.ObjectKey)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(data)) != s.Size {
			t.Errorf("segment %d size %d, file %d", i, s.Size, len(data))
		}
		// The blocks preallocated past the end were given back at close.
		if a, max := allocatedBytes(t, path), (s.Size+4095)/4096*4096; a > max {
			t.Errorf("segment %d: %d bytes allocated for a file of %d", i, a, s.Size)
		}
		if !bytes.HasPrefix(data, s.Init) {
			t.Errorf("segment %d: file does not start with the init", i)
		}
		// Footage is private to the server's user (issue #22.9).
		checkMode(t, path, 0o600)
		checkMode(t, filepath.Dir(path), 0o700)
		frags := h.idx.Fragments(s.ID)
		if len(frags) == 0 {
			t.Fatalf("segment %d without fragments", i)
		}
		off := int64(len(s.Init))
		for j, f := range frags {
			if f.Seq != j+1 {
				t.Errorf("segment %d fragment %d seq %d", i, j, f.Seq)
			}
			if f.Offset != off {
				t.Errorf("segment %d fragment %d offset %d, want %d", i, j, f.Offset, off)
			}
			// A free box (the rest of the header reservation), then the moof.
			moof := f.Offset
			if string(data[moof+4:moof+8]) == "free" {
				moof += int64(binary.BigEndian.Uint32(data[moof:]))
			}
			if moof+8 > f.Offset+f.Size || string(data[moof+4:moof+8]) != "moof" {
				t.Errorf("segment %d fragment %d does not point at a [free +] moof", i, j)
			}
			off += f.Size
			if j == 0 && !f.Start.Equal(s.Start) {
				t.Errorf("segment %d first fragment start %v != segment start %v", i, f.Start, s.Start)
			}
			if j > 0 && !f.Start.Equal(frags[j-1].End) {
				t.Errorf("segment %d fragment %d not contiguous: start %v prev end %v", i, j, f.Start, frags[j-1].End)
			}
			if !f.End.After(f.Start) {
				t.Errorf("segment %d fragment %d empty", i, j)
			}
		}
		if off != s.Size {
			t.Errorf("segment %d fragments end at %d, size %d", i, off, s.Size)
		}
		if !frags[len(frags)-1].End.Equal(s.End) {
			t.Errorf("segment %d end %v != last fragment end %v", i, s.End, frags[len(frags)-1].End)
		}
		if contiguous && i > 0 && !segs[i-1].End.Equal(s.Start) {
			t.Errorf("segment %d start %v != previous end %v", i, s.Start, segs[i-1].End)
		}
		// The parser (recovery) derives the same rows.
		pf, err := recording.ParseFile(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		if pf.StopReason != "" || pf.ValidSize != s.Size {
			t.Errorf("segment %d parse: %q valid %d", i, pf.StopReason, pf.ValidSize)
		}
		rows := recording.FragmentRows(s.ID, s.Start, pf)
		if len(rows) != len(frags) {
			t.Fatalf("segment %d: parsed %d fragments, indexed %d", i, len(rows), len(frags))
		}
		for j := range rows {
			a, b := rows[j], frags[j]
			if a.Seq != b.Seq || a.Offset != b.Offset || a.Size != b.Size || a.Keyframe != b.Keyframe ||
				absDur(a.Start.Sub(b.Start)) > time.Microsecond || absDur(a.End.Sub(b.End)) > time.Microsecond {
				t.Errorf("segment %d fragment %d: parsed %+v, indexed %+v", i, j, a, b)
			}
		}
		segmentertest.Decode(t, path)
	}
	return segs
}

func checkMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s: mode %#o, want %#o", path, got, want)
	}
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

func TestWriterH264(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name     string
		clip     segmentertest.ClipOptions
		segDur   time.Duration
		wantSegs []int // frames per segment
	}{
		{"bframes", segmentertest.ClipOptions{Seconds: 7, BFrames: 2}, 3 * time.Second, []int{75, 75, 25}},
		{"no-bframes", segmentertest.ClipOptions{Seconds: 3}, 60 * time.Second, []int{75}},
		{"cut-at-keyframe-after-duration", segmentertest.ClipOptions{Seconds: 6, BFrames: 2, GOP: 40}, 2500 * time.Millisecond, []int{80, 70}},
		{"h265", segmentertest.ClipOptions{H265: true, Seconds: 5, BFrames: 2}, 2 * time.Second, []int{50, 50, 25}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clip := segmentertest.ReadTS(t, segmentertest.GenerateTS(t, dir, tc.clip))
			h := newHarness(t, func(c *Config) { c.SegmentDuration = tc.segDur })
			// Start near 2^33 to exercise large timestamps.
			const off = 1 << 33
			first := firstVideo(clip)
			if err := h.w.Start(sessionFor(clip, first.PTS+off)); err != nil {
				t.Fatal(err)
			}
			h.feed(clip, off)
			segs := h.checkSegments(len(tc.wantSegs), true)

			video := clip.Video()
			pos := 0
			gop := tc.clip.GOP
			if gop == 0 {
				gop = 25
			}
			for i, s := range segs {
				p := segmentertest.RunProbe(t, filepath.Join(h.spool, s.ObjectKey))
				pk := p.VideoPackets()
				if len(pk) != tc.wantSegs[i] {
					t.Fatalf("segment %d: %d frames, want %d", i, len(pk), tc.wantSegs[i])
				}
				segStartPTS := video[pos].PTS
				wantStart := testAnchor.Add(recording.TicksToDuration(segStartPTS-first.PTS, 90000))
				if !s.Start.Equal(wantStart) {
					t.Errorf("segment %d start %v, want %v", i, s.Start, wantStart)
				}
				for j, k := range pk {
					src := video[pos+j]
					// ffmpeg shifts fMP4 presentation times by the largest
					// negative composition offset; compare relative to the
					// first sample, whose offset is 0 by contract.
					if k.PTS-pk[0].PTS != src.PTS-segStartPTS {
						t.Fatalf("segment %d frame %d pts %d, want %d", i, j, k.PTS-pk[0].PTS, src.PTS-segStartPTS)
					}
					if k.DTS-pk[0].DTS != src.DTS-video[pos].DTS {
						t.Fatalf("segment %d frame %d dts %d, want %d", i, j, k.DTS-pk[0].DTS, src.DTS-video[pos].DTS)
					}
					if key := k.Flags[0] == 'K'; key != src.Key {
						t.Errorf("segment %d frame %d key=%v, want %v", i, j, key, src.Key)
					}
				}
				frags := h.idx.Fragments(s.ID)
				wantFrags := (tc.wantSegs[i] + gop - 1) / gop
				if len(frags) != wantFrags {
					t.Errorf("segment %d: %d fragments, want %d (one per GOP)", i, len(frags), wantFrags)
				}
				for _, f := range frags {
					if !f.Keyframe {
						t.Errorf("segment %d fragment %d not keyframe", i, f.Seq)
					}
				}
				pos += len(pk)
			}
			if pos != clip.VideoFrames {
				t.Errorf("wrote %d frames of %d", pos, clip.VideoFrames)
			}
		})
	}
}

func TestWriterFragmentCap(t *testing.T) {
	// 100-frame GOPs (4 s) with a 2 s cap: each GOP is two fragments.
	clip := segmentertest.ReadTS(t, segmentertest.GenerateTS(t, t.TempDir(),
		segmentertest.ClipOptions{Seconds: 8, GOP: 100, BFrames: 2}))
	h := newHarness(t, nil)
	if err := h.w.Start(sessionFor(clip, firstVideo(clip).PTS)); err != nil {
		t.Fatal(err)
	}
	h.feed(clip, 0)
	segs := h.checkSegments(1, true)
	frags := h.idx.Fragments(segs[0].ID)
	if len(frags) != 4 {
		t.Fatalf("%d fragments, want 4", len(frags))
	}
	for i, f := range frags {
		if f.Keyframe != (i%2 == 0) {
			t.Errorf("fragment %d keyframe=%v", i, f.Keyframe)
		}
		if d := f.End.Sub(f.Start); d > 2*time.Second+50*time.Millisecond {
			t.Errorf("fragment %d lasts %v", i, d)
		}
	}
	if p := segmentertest.RunProbe(t, filepath.Join(h.spool, segs[0].ObjectKey)); len(p.VideoPackets()) != clip.VideoFrames {
		t.Errorf("%d frames, want %d", len(p.VideoPackets()), clip.VideoFrames)
	}
}

func TestWriterParameterChange(t *testing.T) {
	dir := t.TempDir()
	a := segmentertest.ReadTS(t, segmentertest.GenerateTS(t, dir, segmentertest.ClipOptions{Seconds: 2, BFrames: 2}))
	b := segmentertest.ReadTS(t, segmentertest.GenerateTS(t, dir, segmentertest.ClipOptions{Seconds: 2, BFrames: 2, Size: "640x480"}))
	h := newHarness(t, nil)
	if err := h.w.Start(sessionFor(a, firstVideo(a).PTS)); err != nil {
		t.Fatal(err)
	}
	h.feed(a, 0)
	// Continue b right after a: b's first frame comes one frame after a's last.
	va, vb := a.Video(), b.Video()
	lastA := va[0].PTS
	for _, v := range va {
		lastA = max(lastA, v.PTS)
	}
	off := lastA + 3600 - vb[0].PTS
	h.feed(b, off)
	segs := h.checkSegments(2, true)
	if segs[0].Width != 320 || segs[1].Width != 640 || segs[1].Height != 480 {
		t.Errorf("sizes %dx%d, %dx%d", segs[0].Width, segs[0].Height, segs[1].Width, segs[1].Height)
	}
	for i, s := range segs {
		p := segmentertest.RunProbe(t, filepath.Join(h.spool, s.ObjectKey))
		if n := len(p.VideoPackets()); n != 50 {
			t.Errorf("segment %d: %d frames", i, n)
		}
		if p.Streams[0].Width != []int{320, 640}[i] {
			t.Errorf("segment %d: width %d", i, p.Streams[0].Width)
		}
	}
}

func TestWriterAAC(t *testing.T) {
	for _, gop := range []int{25, 12} {
		t.Run(fmt.Sprintf("gop=%d", gop), func(t *testing.T) { testWriterAAC(t, gop) })
	}
}

func testWriterAAC(t *testing.T, gop int) {
	clip := segmentertest.ReadTS(t, segmentertest.GenerateTS(t, t.TempDir(),
		segmentertest.ClipOptions{Seconds: 5, GOP: gop, BFrames: 2, AAC: true}))
	h := newHarness(t, func(c *Config) { c.SegmentDuration = 2 * time.Second })
	first := firstVideo(clip)
	if err := h.w.Start(sessionFor(clip, first.PTS)); err != nil {
		t.Fatal(err)
	}
	h.feed(clip, 0)
	segs := h.checkSegments(3, true)

	// Expected audio AUs: those at or after the first video frame.
	type aau struct{ t int64 } // 48 kHz units relative to the first video pts
	var want []aau
	for _, au := range clip.AUs {
		if au.Video {
			continue
		}
		base := (au.PTS - first.PTS) * 48000 / 90000
		for i := range au.AACs {
			if tt := base + int64(i)*1024; tt >= 0 {
				want = append(want, aau{tt})
			}
		}
	}
	var got int
	for i, s := range segs {
		p := segmentertest.RunProbe(t, filepath.Join(h.spool, s.ObjectKey))
		if len(p.Streams) != 2 || p.Streams[1].CodecName != "aac" || p.Streams[1].SampleRate != "48000" {
			t.Fatalf("segment %d streams %+v", i, p.Streams)
		}
		segOff := s.Start.Sub(testAnchor)
		for _, pk := range p.AudioPackets() {
			// Wall time of the packet relative to the anchor, in samples.
			abs := int64(math.Round(segOff.Seconds()*48000)) + pk.PTS
			if got >= len(want) {
				t.Fatalf("more audio than sent")
			}
			if d := abs - want[got].t; d < -1 || d > 1 {
				t.Fatalf("segment %d audio packet %d at %d, want %d", i, got, abs, want[got].t)
			}
			got++
		}
	}
	// Audio arriving after the last video frame of the clip may be left
	// out only at the very end.
	if len(want)-got > 3 {
		t.Errorf("wrote %d audio AUs of %d", got, len(want))
	}
}

func TestWriterG711(t *testing.T) {
	clip := segmentertest.ReadTS(t, segmentertest.GenerateTS(t, t.TempDir(), segmentertest.ClipOptions{Seconds: 2}))
	for _, mu := range []bool{false, true} {
		h := newHarness(t, nil)
		first := firstVideo(clip)
		s := sessionFor(clip, first.PTS)
		s.Audio = &recording.Audio{Codec: recording.G711ALaw, SampleRate: 8000, ChannelCount: 1}
		if mu {
			s.Audio.Codec = recording.G711MuLaw
		}
		if err := h.w.Start(s); err != nil {
			t.Fatal(err)
		}
		// 20 ms packets (160 samples) of a 1 kHz tone, interleaved with video.
		pcm := make([]byte, 320)
		for i := range 160 {
			v := int16(8000 * math.Sin(2*math.Pi*1000*float64(i)/8000))
			pcm[2*i], pcm[2*i+1] = byte(uint16(v)>>8), byte(v)
		}
		var enc []byte
		if mu {
			enc, _ = g711.Mulaw(pcm).Marshal()
		} else {
			enc, _ = g711.Alaw(pcm).Marshal()
		}
		apts := first.PTS * 8000 / 90000
		for _, v := range clip.Video() {
			for apts*90000/8000 <= v.DTS {
				if err := h.w.WriteAudio(apts, [][]byte{enc}); err != nil {
					t.Fatal(err)
				}
				apts += 160
			}
			if err := h.w.WriteVideo(v.PTS, v.DTS, v.NALUs, v.Key); err != nil {
				t.Fatal(err)
			}
		}
		segs := h.checkSegments(1, true)
		p := segmentertest.RunProbe(t, filepath.Join(h.spool, segs[0].ObjectKey))
		if len(p.Streams) != 2 || p.Streams[1].CodecName != "pcm_s16be" || p.Streams[1].SampleRate != "8000" {
			t.Fatalf("streams %+v", p.Streams)
		}
		var samples int64
		for _, pk := range p.AudioPackets() {
			samples += pk.Duration
		}
		if samples < 15000 || samples > 16000 {
			t.Errorf("mu=%v: %d audio samples, want ~16000", mu, samples)
		}
	}
}

func TestWriterSlowIndexDoesNotStall(t *testing.T) {
	clip := segmentertest.ReadTS(t, segmentertest.GenerateTS(t, t.TempDir(),
		segmentertest.ClipOptions{Seconds: 6, GOP: 5}))
	h := newHarness(t, func(c *Config) { c.IndexQueueSize = 2 })
	h.idx.AddDelay = 50 * time.Millisecond
	if err := h.w.Start(sessionFor(clip, firstVideo(clip).PTS)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	h.feed(clip, 0)
	// 30 fragments at 50 ms each would take 1.5 s if the media path waited.
	if d := time.Since(start); d > 700*time.Millisecond {
		t.Errorf("feeding took %v: media path blocked on the index", d)
	}
	if h.w.Stats().IndexDropped == 0 {
		t.Errorf("expected dropped index batches with a tiny queue")
	}
	segs := h.checkSegments(1, true) // all rows present despite the drops
	if n := len(h.idx.Fragments(segs[0].ID)); n != 30 {
		t.Errorf("%d fragment rows, want 30", n)
	}
}

func TestWriterReconnectNewSegment(t *testing.T) {
	clip := segmentertest.ReadTS(t, segmentertest.GenerateTS(t, t.TempDir(), segmentertest.ClipOptions{Seconds: 2}))
	h := newHarness(t, nil)
	for i := range 2 {
		s := sessionFor(clip, firstVideo(clip).PTS)
		s.Anchor = testAnchor.Add(time.Duration(i) * time.Minute)
		if err := h.w.Start(s); err != nil {
			t.Fatal(err)
		}
		// Drop the first frames: video before a keyframe must be skipped.
		v := clip.Video()
		for _, au := range v[3:] {
			if err := h.w.WriteVideo(au.PTS, au.DTS, au.NALUs, au.Key); err != nil {
				t.Fatal(err)
			}
		}
		h.w.EndSession()
	}
	segs := h.checkSegments(2, false)
	if st := h.w.Stats(); st.DroppedVideo != 2*22 {
		t.Errorf("dropped %d frames, want 44", st.DroppedVideo)
	}
	for _, s := range segs {
		if n := len(segmentertest.RunProbe(t, filepath.Join(h.spool, s.ObjectKey)).VideoPackets()); n != 25 {
			t.Errorf("%d frames, want 25", n)
		}
	}
}

// TestWriterStagger: with Stagger, the first segment of a session is cut at
// the first keyframe after its camera's share of SegmentDuration (between
// a tenth and all of it, fixed per camera ID), the following ones after the
// whole SegmentDuration; cameras with different IDs cut at different times,
// and a new session staggers again.
func TestWriterStagger(t *testing.T) {
	clip := segmentertest.ReadTS(t, segmentertest.GenerateTS(t, t.TempDir(),
		segmentertest.ClipOptions{Seconds: 13, GOP: 5})) // a keyframe every 0.2 s
	const segDur = 4 * time.Second
	firstLens := map[time.Duration]bool{}
	for _, cam := range []string{"cam1", "cam2", "cam3", "cam4", "cam5"} {
		h := newHarness(t, func(c *Config) { c.CameraID, c.SegmentDuration, c.Stagger = cam, segDur, true })
		for session := range 2 {
			if err := h.w.Start(sessionFor(clip, firstVideo(clip).PTS)); err != nil {
				t.Fatal(err)
			}
			h.feed(clip, int64(session)*durTo90k(time.Minute))
			h.w.EndSession()
		}
		closeWait(h.w)
		segs := h.idx.Segments()
		w := &Writer{cfg: Config{CameraID: cam, SegmentDuration: segDur, Stagger: true}}
		limit := recording.TicksToDuration(w.segmentLimit(), recording.VideoTimescale)
		// Per session: the first, then segDur ones, then the rest.
		rest := 13*time.Second - limit.Round(200*time.Millisecond)
		perSession := 1 + int(rest/segDur)
		if rest%segDur > 0 {
			perSession++
		}
		if len(segs) != 2*perSession {
			t.Fatalf("%s: %d segments, want %d per session (first cut after %v)", cam, len(segs), perSession, limit)
		}
		if limit < segDur/10 || limit >= segDur {
			t.Fatalf("%s: first-segment limit %v outside [%v, %v)", cam, limit, segDur/10, segDur)
		}
		for _, first := range []recording.Segment{segs[0], segs[perSession]} {
			d := first.End.Sub(first.Start)
			if d < limit || d >= limit+200*time.Millisecond {
				t.Errorf("%s: first segment lasts %v, want the first keyframe at or after %v", cam, d, limit)
			}
			firstLens[d] = true
		}
		for i, s := range segs {
			if i%perSession == 0 || i%perSession == perSession-1 {
				continue // first and last of a session
			}
			if d := s.End.Sub(s.Start); d != segDur {
				t.Errorf("%s: segment %d lasts %v, want %v", cam, i, d, segDur)
			}
		}
	}
	if len(firstLens) < 3 {
		t.Errorf("first segments of 5 cameras have only %d distinct lengths: not staggered", len(firstLens))
	}
}

func TestAppendAVCC(t *testing.T) {
	au := [][]byte{{0x65, 1, 2}, {}, bytes.Repeat([]byte{7}, 300)}
	want := []byte{0, 0, 0, 3, 0x65, 1, 2, 0, 0, 0, 0, 0, 0, 1, 0x2c}
	want = append(want, au[2]...)
	got := appendAVCC([]byte{9}, au)
	if !bytes.Equal(got[1:], want) || got[0] != 9 {
		t.Fatalf("appendAVCC = % x", got)
	}
	if n := avccSize(au); n != len(want) {
		t.Fatalf("avccSize = %d, want %d", n, len(want))
	}
}

// workers maps each writer a test started (startWriter) to the channel its
// worker closes when Run returns.
var workers sync.Map

// startWriter returns New(cfg) with its index worker running; closeWait
// stops it as the server does, and runs at cleanup.
func startWriter(t testing.TB, cfg Config) *Writer {
	t.Helper()
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	workers.Store(w, done)
	go func() {
		defer close(done)
		if err := w.Run(context.Background()); err != nil {
			t.Error(err)
		}
	}()
	t.Cleanup(func() { closeWait(w) })
	return w
}

// closeWait closes w and waits until its worker has written what was
// queued.
func closeWait(w *Writer) {
	w.Close()
	if done, ok := workers.Load(w); ok {
		<-done.(chan struct{})
	}
}
