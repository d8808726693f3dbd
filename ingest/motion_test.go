package ingest

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"

	"xueliang/ingest/decode/decodetest"
	"xueliang/ingest/motion"
	"xueliang/storage/recording"
)

// loadScene generates (once) and reads a scene of scripts/gen-motion-scene.sh.
func loadScene(t testing.TB, name string) (*decodetest.Clip, [][2]float64) {
	t.Helper()
	dir := filepath.Join("..", "testdata", "clips", "motion")
	ts, js := filepath.Join(dir, name+".ts"), filepath.Join(dir, name+".json")
	if _, err := os.Stat(js); err != nil {
		if out, err := exec.Command("../scripts/gen-motion-scene.sh", dir, name).CombinedOutput(); err != nil {
			t.Fatalf("gen-motion-scene.sh %s: %v\n%s", name, err, out)
		}
	}
	clip, err := decodetest.ReadTS(ts)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(js)
	if err != nil {
		t.Fatal(err)
	}
	var raw struct {
		Objects []struct {
			Start float64 `json:"start"`
			End   float64 `json:"end"`
		} `json:"objects"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	var truth [][2]float64
	for _, o := range raw.Objects {
		truth = append(truth, [2]float64{o.Start, o.End})
	}
	return clip, truth
}

func isKey(codec recording.VideoCodec, au [][]byte) bool {
	if codec == recording.H265 {
		return h265.IsRandomAccess(au)
	}
	return h264.IsRandomAccess(au)
}

// overlapPR matches detected intervals one-to-one with the true events
// (objects overlapping in time merged into one event) by temporal overlap,
// in time order, and returns precision (matched detections / detections)
// and recall (matched events / events). Times in seconds.
func overlapPR(det, truth [][2]float64) (precision, recall float64) {
	truth = slices.Clone(truth)
	slices.SortFunc(truth, func(a, b [2]float64) int { return cmp.Compare(a[0], b[0]) })
	var events [][2]float64
	for _, g := range truth {
		if k := len(events); k > 0 && g[0] < events[k-1][1] {
			events[k-1][1] = max(events[k-1][1], g[1])
			continue
		}
		events = append(events, g)
	}
	used := make([]bool, len(events))
	matched := 0
	for _, d := range det {
		for i, g := range events {
			if !used[i] && d[0] < g[1] && g[0] < d[1] {
				used[i] = true
				matched++
				break
			}
		}
	}
	precision, recall = 1, 1
	if len(det) > 0 {
		precision = float64(matched) / float64(len(det))
	}
	if len(events) > 0 {
		recall = float64(matched) / float64(len(events))
	}
	return precision, recall
}

// TestMotionAnalyserScenes runs the analyser as the puller does, on the
// sub-stream path (every AU, 5 fps analysed) and the keyframes-only path,
// and checks the stored chunks and intervals against the script.
func TestMotionAnalyserScenes(t *testing.T) {
	base := time.Date(2026, 3, 1, 10, 0, 30, 0, time.UTC) // chunks straddle minutes
	for _, tc := range []struct {
		scene   string
		keyOnly bool
		// join > 0: the stream is joined at the first keyframe at or
		// after join seconds, with an object in view (its ghost must not
		// last); objects from join+6 s on are judged.
		join float64
	}{
		{"objects-640", false, 0},
		{"objects-640", true, 0},
		{"objects-640", false, 2},
		{"objects-640", true, 2},
		{"busy-640", false, 0},
		{"busy-640", true, 0},
		{"still-noise-640", false, 0},
		{"still-ramp-640", true, 0},
		{"still-noise-ramp-320", false, 0},
		{"still-noise-ramp-640", false, 0},
		{"still-noise-ramp-640", true, 0},
	} {
		name := tc.scene + "/sub"
		if tc.keyOnly {
			name = tc.scene + "/keyframes"
		}
		if tc.join > 0 {
			name += fmt.Sprintf("/join=%gs", tc.join)
		}
		t.Run(name, func(t *testing.T) {
			clip, truth := loadScene(t, tc.scene)
			// No padding: padded intervals closer than the padding merge,
			// which would hide detection errors from a one-to-one match.
			ic := motion.IntervalConfig{MaxGap: 2 * time.Second, MinFrames: 2}
			a, err := NewMotionAnalyser("cam", MotionOptions{Intervals: &ic}, tc.keyOnly)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			var last time.Time
			joined := tc.join == 0
			for _, au := range clip.AUs {
				key := isKey(clip.Codec, au.NALUs)
				if !joined && (au.PTS.Seconds() < tc.join || !key) {
					continue
				}
				joined = true
				if tc.keyOnly && !key {
					continue
				}
				last = base.Add(au.PTS)
				_ = a.Process(last, clip.Codec, au.NALUs)
			}
			a.Advance(last.Add(time.Minute))
			a.Flush()
			chunks, ivs := a.Take()
			var det [][2]float64
			for _, iv := range ivs {
				if tc.join > 0 && iv.End.Sub(base).Seconds() <= tc.join+6 {
					continue
				}
				det = append(det, [2]float64{iv.Start.Sub(base).Seconds(), iv.End.Sub(base).Seconds()})
			}
			if tc.join > 0 {
				truth = slices.DeleteFunc(truth, func(g [2]float64) bool { return g[0] < tc.join+6 })
			}
			st := a.Stats()
			t.Logf("%d chunks, %d intervals, %d analysed of %d decoded, %.1f ms/decoded AU", len(chunks), len(ivs),
				st.Analysed, st.Decoded, float64(st.AnalysisNanos)/1e6/float64(max(st.Decoded, 1)))
			if len(truth) == 0 {
				if len(ivs) != 0 || len(chunks) != 0 || !st.LastMotion.IsZero() {
					t.Fatalf("still scene: %d intervals %v, %d chunks, last motion %v", len(ivs), det, len(chunks), st.LastMotion)
				}
				return
			}
			p, r := overlapPR(det, truth)
			t.Logf("precision %.3f recall %.3f; detected %v; truth %v", p, r, det, truth)
			if p < 0.95 || r < 0.95 {
				t.Errorf("precision %.3f recall %.3f, want >= 0.95", p, r)
			}
			// The chunks hold the same seconds: intervals rebuilt from them
			// with the same config are the stored intervals.
			var secs []motion.Second
			for _, c := range chunks {
				if c.End.Sub(c.Start) != time.Minute || !c.Start.Equal(c.Start.Truncate(time.Minute)) {
					t.Errorf("chunk [%s, %s) not a wall-clock minute", c.Start, c.End)
				}
				s, err := motion.Chunk{Start: c.Start, End: c.End, Data: c.Data}.Unpack()
				if err != nil || len(s) != c.Active {
					t.Fatalf("unpack: %d seconds, %v; active %d", len(s), err, c.Active)
				}
				secs = append(secs, s...)
			}
			if re := motion.Intervals(secs, a.ivCfg); len(re) != len(ivs) {
				t.Errorf("intervals rebuilt from chunks: %d, stored %d", len(re), len(ivs))
			}
			// LastMotion ("motion now" while an interval is open) is the
			// end of the last second with motion.
			if len(secs) == 0 || !st.LastMotion.Equal(secs[len(secs)-1].Start.Add(time.Second)) {
				t.Errorf("last motion %v, want the end of the last second with motion of %d", st.LastMotion, len(secs))
			}
		})
	}
}

type funcSink func(context.Context, []recording.MotionChunk, []recording.MotionInterval) error

func (f funcSink) AddMotion(ctx context.Context, c []recording.MotionChunk, iv []recording.MotionInterval) error {
	return f(ctx, c, iv)
}

// TestMotionKeyframesBframes: keyframes-only analysis of a stream with
// B-frames gets each keyframe's own picture at its own time (no reorder
// delay): a box that appears at 4 s is seen at the 4 s keyframe.
func TestMotionKeyframesBframes(t *testing.T) {
	dir := t.TempDir()
	ts := filepath.Join(dir, "b.ts")
	// Grey background; a white box in the middle from 4 s on. GOP 1 s,
	// 2 B-frames.
	out, err := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", "color=c=gray:size=320x180:rate=25:duration=8",
		"-vf", "drawbox=x=120:y=60:w=80:h=60:color=white:t=fill:enable='gte(t,4)'",
		"-c:v", "libx264", "-preset", "ultrafast", "-x264-params", "keyint=25:min-keyint=25:scenecut=0:bframes=2:repeat-headers=1",
		"-f", "mpegts", ts).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	clip, err := decodetest.ReadTS(ts)
	if err != nil {
		t.Fatal(err)
	}
	ic := motion.IntervalConfig{MaxGap: time.Second}
	a, err := NewMotionAnalyser("cam", MotionOptions{Intervals: &ic}, true)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	base := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	for _, au := range clip.AUs {
		if isKey(clip.Codec, au.NALUs) {
			if err := a.Process(base.Add(au.PTS), clip.Codec, au.NALUs); err != nil {
				t.Fatal(err)
			}
		}
	}
	a.Flush()
	_, ivs := a.Take()
	if st := a.Stats(); st.Analysed < 7 {
		t.Errorf("analysed %d keyframes, want every one (8)", st.Analysed)
	}
	if len(ivs) != 1 || !ivs[0].Start.Equal(base.Add(4*time.Second)) {
		t.Fatalf("intervals %+v, want one starting at 4 s", ivs)
	}
}

// TestMotionWorkerIsolation: offer never blocks and counts drops when the
// analyser does not keep up; a panic in the analysis path restarts only
// the analyser, which then works again.
func TestMotionWorkerIsolation(t *testing.T) {
	clip, _ := loadScene(t, "objects-640")
	stuck := newMotionWorker("cam", MotionOptions{Sink: funcSink(nil), QueueSize: 8}, false, slog.New(slog.DiscardHandler))
	start := time.Now()
	for _, au := range clip.AUs { // nobody consumes: a stuck analyser
		stuck.offer(start.Add(au.PTS), clip.Codec, au.NALUs)
	}
	if el := time.Since(start); el > time.Second {
		t.Errorf("offering %d AUs to a stuck analyser took %s", len(clip.AUs), el)
	}
	if st := stuck.snapshot(); st.Queued != 8 || st.Dropped != int64(len(clip.AUs)-8) {
		t.Errorf("stats %+v: want 8 queued, %d dropped", st, len(clip.AUs)-8)
	}

	var calls atomic.Int64
	var mu sync.Mutex
	var stored int
	sink := funcSink(func(ctx context.Context, c []recording.MotionChunk, iv []recording.MotionInterval) error {
		if calls.Add(1) == 1 {
			panic("sink exploded")
		}
		mu.Lock()
		stored += len(c) + len(iv)
		mu.Unlock()
		return nil
	})
	w := newMotionWorker("cam", MotionOptions{Sink: sink, QueueSize: 64, Chunk: time.Second}, false, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.run(ctx); close(done) }()
	feed := func(base time.Time) {
		for i, au := range clip.AUs[:25*30] {
			w.offer(base.Add(au.PTS), clip.Codec, au.NALUs)
			if i%16 == 15 {
				time.Sleep(15 * time.Millisecond) // let the queue drain
			}
		}
	}
	feed(time.Now())
	if w.snapshot().Panics != 1 {
		t.Fatalf("panics = %d, want 1; stats %+v", w.snapshot().Panics, w.snapshot())
	}
	time.Sleep(1100 * time.Millisecond) // restart delay
	feed(time.Now().Add(time.Minute))
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if stored == 0 {
		t.Errorf("nothing stored after the restart; stats %+v", w.snapshot())
	}
}
