package replay

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"xueliang/storage/recording"
)

// frameRef names a source frame: clip and presentation index.
type frameRef struct {
	clip *clip
	n    int
}

func frames(c *clip, from, to int) []frameRef {
	var out []frameRef
	for i := from; i < to; i++ {
		out = append(out, frameRef{c, i})
	}
	return out
}

func at(d time.Duration) time.Time { return t0.Add(d) }

func TestReplay(t *testing.T) {
	t.Parallel()
	bf2 := getClip(t, "320x240", 2, true)
	bf0 := getClip(t, "320x240", 0, false)
	small := getClip(t, "160x120", 0, false)
	const s = time.Second
	ms := time.Millisecond

	cases := []struct {
		name      string
		specs     []segSpec
		req       Request
		wantStart time.Time
		wantEnd   time.Time
		wantGaps  []recording.Gap
		wantStop  StopReason
		preroll   int // decoded frames with pts < 0
		want      []frameRef
		widths    map[int]int // output frame index (pts >= 0) -> width
		audio     bool
		reads     int
	}{
		{
			name: "mid-GOP start, B-frames, audio, across a segment boundary",
			specs: []segSpec{
				{clip: bf2, from: 0, to: 75, start: at(0)},
				{clip: bf2, from: 75, to: 150, start: at(3 * s)},
			},
			req:       Request{Start: at(1500 * ms), End: at(4500 * ms)},
			wantStart: at(1500 * ms), wantEnd: at(4500 * ms),
			preroll: 12, want: frames(bf2, 37, 113), audio: true, reads: 2,
		},
		{
			// Regression: segments are joined by presentation (wall-clock)
			// time, not by decode-time continuity.
			name: "join after a segment whose decode times lag (DTS extractor start-up)",
			specs: []segSpec{
				{clip: bf2, from: 0, to: 75, start: at(0), dtsLag: 2 * frameTicks},
				{clip: bf2, from: 75, to: 150, start: at(3 * s)},
			},
			req:       Request{Start: at(1500 * ms), End: at(4500 * ms)},
			wantStart: at(1500 * ms), wantEnd: at(4500 * ms),
			preroll: 12, want: frames(bf2, 37, 113), audio: true, reads: 2,
		},
		{
			name: "start on a non-keyframe fragment walks back to the keyframe",
			specs: []segSpec{
				{clip: bf0, from: 0, to: 150, start: at(0), split: true},
			},
			req:       Request{Start: at(1700 * ms), End: at(2900 * ms)},
			wantStart: at(1700 * ms), wantEnd: at(2900 * ms),
			preroll: 17, want: frames(bf0, 42, 73), reads: 1,
		},
		{
			name: "start exactly on a frame, end exactly on a frame",
			specs: []segSpec{
				{clip: bf0, from: 0, to: 150, start: at(0)},
			},
			req:       Request{Start: at(2 * s), End: at(2200 * ms)},
			wantStart: at(2 * s), wantEnd: at(2200 * ms),
			preroll: 0, want: frames(bf0, 50, 55), reads: 1,
		},
		{
			name: "gap, stop",
			specs: []segSpec{
				{clip: bf0, from: 0, to: 75, start: at(0)},
				{clip: bf0, from: 75, to: 150, start: at(5 * s)},
			},
			req:       Request{Start: at(1 * s), End: at(7 * s)},
			wantStart: at(1 * s), wantEnd: at(3 * s),
			wantGaps: []recording.Gap{{Start: at(3 * s), End: at(5 * s)}}, wantStop: StopGap,
			preroll: 0, want: frames(bf0, 25, 75), reads: 1,
		},
		{
			name: "gap, skip",
			specs: []segSpec{
				{clip: bf0, from: 0, to: 75, start: at(0)},
				{clip: bf0, from: 75, to: 150, start: at(5 * s)},
			},
			req:       Request{Start: at(1 * s), End: at(7 * s), SkipGaps: true},
			wantStart: at(1 * s), wantEnd: at(7 * s),
			wantGaps: []recording.Gap{{Start: at(3 * s), End: at(5 * s)}},
			preroll:  0, want: frames(bf0, 25, 125), reads: 2,
		},
		{
			name: "start inside a gap begins at the next footage",
			specs: []segSpec{
				{clip: bf0, from: 0, to: 75, start: at(0)},
				{clip: bf0, from: 75, to: 150, start: at(5 * s)},
			},
			req:       Request{Start: at(4 * s), End: at(6 * s)},
			wantStart: at(5 * s), wantEnd: at(6 * s),
			preroll: 0, want: frames(bf0, 75, 100), reads: 1,
		},
		{
			name: "resolution change: parameter sets in-band",
			specs: []segSpec{
				{clip: bf0, from: 0, to: 75, start: at(0)},
				{clip: small, from: 75, to: 150, start: at(3 * s)},
			},
			req:       Request{Start: at(2100 * ms), End: at(4 * s)},
			wantStart: at(2100 * ms), wantEnd: at(4 * s),
			preroll: 2, want: append(frames(bf0, 52, 75), frames(small, 75, 100)...),
			widths: map[int]int{0: 320, 22: 320, 23: 160, 47: 160}, reads: 2,
		},
		{
			name: "audio disappears: stop at the layout change",
			specs: []segSpec{
				{clip: bf2, from: 0, to: 75, start: at(0)},
				{clip: bf2, from: 75, to: 150, start: at(3 * s), noAudio: true},
			},
			req:       Request{Start: at(2 * s), End: at(5 * s)},
			wantStart: at(2 * s), wantEnd: at(3 * s),
			wantGaps: []recording.Gap{{Start: at(3 * s), End: at(3 * s)}}, wantStop: StopLayoutChange,
			preroll: 0, want: frames(bf2, 50, 75), audio: true, reads: 1,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := newRecording(t, tc.specs...)
			r := &Replayer{Index: rec, Reader: rec}
			tc.req.Camera = "cam1"
			p, err := r.Plan(context.Background(), tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if !p.Start.Equal(tc.wantStart) || !p.End.Equal(tc.wantEnd) || p.Stop != tc.wantStop {
				t.Errorf("plan window %s..%s stop %s, want %s..%s stop %s", p.Start, p.End, p.Stop, tc.wantStart, tc.wantEnd, tc.wantStop)
			}
			if !gapsEqual(p.Gaps, tc.wantGaps) {
				t.Errorf("plan gaps %v, want %v", p.Gaps, tc.wantGaps)
			}
			if len(rec.reads) != 0 {
				t.Errorf("Plan read media: %v", rec.reads)
			}
			out := filepath.Join(t.TempDir(), "out.mp4")
			var buf bytes.Buffer
			if err := r.Write(context.Background(), p, &buf); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			if len(rec.reads) != tc.reads {
				t.Errorf("%d ranged reads %v, want %d", len(rec.reads), rec.reads, tc.reads)
			}
			judge(t, out, p, tc.preroll, tc.want, tc.widths, tc.audio)

			// The progressive form: the same frames, and ffmpeg drops the
			// pre-roll itself (no decoded frame before pts 0).
			reads := len(rec.reads)
			m, err := r.PrepareMP4(context.Background(), p)
			if err != nil {
				t.Fatal(err)
			}
			var pb bytes.Buffer
			if err := m.Write(context.Background(), &pb); err != nil {
				t.Fatal(err)
			}
			if int64(pb.Len()) != m.Size() {
				t.Errorf("progressive: %d bytes written, Size %d", pb.Len(), m.Size())
			}
			if got := len(rec.reads) - reads; got != 2*tc.reads {
				t.Errorf("progressive: %d ranged reads, want %d (two passes)", got, 2*tc.reads)
			}
			pout := filepath.Join(t.TempDir(), "out-progressive.mp4")
			if err := os.WriteFile(pout, pb.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			judge(t, pout, p, 0, tc.want, tc.widths, tc.audio)
		})
	}
}

func gapsEqual(a, b []recording.Gap) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Start.Equal(b[i].Start) || !a[i].End.Equal(b[i].End) {
			return false
		}
	}
	return true
}

// judge checks an output file with ffmpeg/ffprobe: clean decode, preroll
// decoded frames before pts 0, then exactly the want frames (by decoded
// picture hash), monotonic, and an output duration within one frame of the
// plan's.
func judge(t *testing.T, path string, p *Plan, preroll int, want []frameRef, widths map[int]int, audio bool) {
	t.Helper()
	if out := runCmd(t, "ffmpeg", "-v", "error", "-i", path, "-f", "null", "-"); out != "" {
		t.Errorf("ffmpeg decode errors:\n%s", out)
	}
	fr := probeFrames(t, path)
	hs := frameHashes(t, path)
	if len(hs) != len(fr) {
		t.Fatalf("%d hashed frames, %d probed frames", len(hs), len(fr))
	}
	neg := 0
	for neg < len(fr) && fr[neg].pts < 0 {
		neg++
	}
	if neg != preroll {
		t.Errorf("%d pre-roll frames with pts < 0, want %d", neg, preroll)
	}
	shown := fr[neg:]
	if len(shown) != len(want) {
		t.Errorf("%d frames with pts >= 0, want %d", len(shown), len(want))
	}
	if len(shown) > 0 && shown[0].pts != 0 {
		t.Errorf("first shown frame at pts %v, want 0", shown[0].pts)
	}
	for i := 1; i < len(fr); i++ {
		if fr[i].pts <= fr[i-1].pts {
			t.Errorf("frame %d pts %v not after %v", i, fr[i].pts, fr[i-1].pts)
		}
	}
	for i := 0; i < min(len(shown), len(want)); i++ {
		w := want[i]
		if hs[neg+i] != w.clip.hashes[w.n] {
			got := "unknown"
			for j, h := range w.clip.hashes {
				if h == hs[neg+i] {
					got = strconv.Itoa(j)
				}
			}
			t.Errorf("shown frame %d (pts %v) is source frame %s, want %d", i, shown[i].pts, got, w.n)
			break
		}
		if wd, ok := widths[i]; ok && shown[i].width != wd {
			t.Errorf("shown frame %d width %d, want %d", i, shown[i].width, wd)
		}
	}
	if len(shown) > 0 {
		end := shown[len(shown)-1].pts + 0.04
		if d := p.Duration().Seconds(); math.Abs(end-d) > 0.04+1e-6 {
			t.Errorf("output ends at %.3f s, plan duration %.3f s", end, d)
		}
	}
	if audio {
		out := runCmd(t, "ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries", "packet=pts_time", "-of", "csv=p=0", path)
		first := strings.SplitN(strings.TrimSpace(out), "\n", 2)[0]
		a, err := strconv.ParseFloat(first, 64)
		if err != nil {
			t.Fatalf("no audio packets: %q", out)
		}
		if a < 0 || a > 1024.0/48000 {
			t.Errorf("first audio packet at %v s, want within one AAC frame after 0", a)
		}
	}
}

func TestPlanErrors(t *testing.T) {
	t.Parallel()
	c := getClip(t, "320x240", 0, false)
	rec := newRecording(t, segSpec{clip: c, from: 0, to: 75, start: at(0)})
	r := &Replayer{Index: rec, Reader: rec, MaxWindow: time.Hour}
	cases := []struct {
		name string
		req  Request
		want error
	}{
		{"empty camera", Request{Start: at(0), End: at(time.Second)}, ErrBadRequest},
		{"end before start", Request{Camera: "cam1", Start: at(time.Second), End: at(0)}, ErrBadRequest},
		{"window too long", Request{Camera: "cam1", Start: at(0), End: at(2 * time.Hour)}, ErrBadRequest},
		{"before footage", Request{Camera: "cam1", Start: at(-time.Minute), End: at(-time.Second)}, ErrNoFootage},
		{"after footage", Request{Camera: "cam1", Start: at(3 * time.Second), End: at(time.Minute)}, ErrNoFootage},
		{"other camera", Request{Camera: "cam2", Start: at(0), End: at(time.Second)}, ErrNoFootage},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := r.Plan(context.Background(), tc.req); !errors.Is(err, tc.want) {
				t.Errorf("Plan error %v, want %v", err, tc.want)
			}
		})
	}
}

// TestWriteReadError: a failing read of the first GOP writes nothing.
func TestWriteReadError(t *testing.T) {
	t.Parallel()
	c := getClip(t, "320x240", 0, false)
	rec := newRecording(t, segSpec{clip: c, from: 0, to: 75, start: at(0)})
	r := &Replayer{Index: rec, Reader: rec}
	p, err := r.Plan(context.Background(), Request{Camera: "cam1", Start: at(0), End: at(2 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	rec.data[1] = rec.data[1][:rec.frags[1][0].Offset+100] // truncated object
	var buf bytes.Buffer
	if err := r.Write(context.Background(), p, &buf); err == nil {
		t.Fatal("Write succeeded on a truncated object")
	}
	if buf.Len() != 0 {
		t.Errorf("%d bytes written before the error", buf.Len())
	}
}

// TestProgressiveFootageChanged: a second pass that does not match the
// tables of the first fails instead of writing a file whose moov lies.
func TestProgressiveFootageChanged(t *testing.T) {
	t.Parallel()
	c := getClip(t, "320x240", 0, false)
	rec := newRecording(t, segSpec{clip: c, from: 0, to: 75, start: at(0)})
	r := &Replayer{Index: rec, Reader: rec}
	p, err := r.Plan(context.Background(), Request{Camera: "cam1", Start: at(500 * time.Millisecond), End: at(2 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	m, err := r.PrepareMP4(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	m.tabs[0].sizes[5]++
	if err := m.Write(context.Background(), io.Discard); !errors.Is(err, ErrFootageChanged) {
		t.Fatalf("Write after a changed sample size: %v, want ErrFootageChanged", err)
	}
}

// TestProgressiveLargeHeader: past 4 GiB the header switches to co64 and a
// 64-bit mdat size, and the chunk offsets point past the header.
func TestProgressiveLargeHeader(t *testing.T) {
	t.Parallel()
	c := getClip(t, "320x240", 0, false)
	rec := newRecording(t, segSpec{clip: c, from: 0, to: 75, start: at(0)})
	r := &Replayer{Index: rec, Reader: rec}
	p, err := r.Plan(context.Background(), Request{Camera: "cam1", Start: at(500 * time.Millisecond), End: at(2 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	ts := &tableSink{}
	if err := r.mux(context.Background(), p, ts); err != nil {
		t.Fatal(err)
	}
	small, smallSize, err := ts.header()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(small, []byte("co64")) || !bytes.Contains(small, []byte("stco")) {
		t.Errorf("small file: want stco, not co64")
	}
	const extra = 5 << 30
	ts.bytes += extra
	big, bigSize, err := ts.header()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(big, []byte("co64")) {
		t.Errorf("a %d-byte file without co64", bigSize)
	}
	if bigSize-int64(len(big)) != int64(ts.bytes) || bigSize-smallSize != extra+int64(len(big)-len(small)) {
		t.Errorf("sizes: small %d (header %d), big %d (header %d)", smallSize, len(small), bigSize, len(big))
	}
	hdr := big[len(big)-16:]
	if binary.BigEndian.Uint32(hdr) != 1 || string(hdr[4:8]) != "mdat" || binary.BigEndian.Uint64(hdr[8:]) != ts.bytes+16 {
		t.Errorf("mdat header %x, want a 64-bit size of %d", hdr, ts.bytes+16)
	}
	i := bytes.Index(big, []byte("co64"))
	first := binary.BigEndian.Uint64(big[i+12:])
	if first != uint64(len(big)) {
		t.Errorf("first chunk at %d, want %d (right after the mdat header)", first, len(big))
	}
}
