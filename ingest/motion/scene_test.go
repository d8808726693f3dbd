package motion

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"xueliang/ingest/decode"
	"xueliang/ingest/decode/decodetest"
)

const sceneDir = "../../testdata/clips/motion"

// base is the wall-clock time of a scene's first frame (second-aligned, so
// clip seconds are wall-clock seconds).
var base = time.Unix(1_700_000_000, 0)

type truthObject struct {
	ID    string       `json:"id"`
	Start float64      `json:"start"`
	End   float64      `json:"end"`
	Path  [][5]float64 `json:"path"` // t, x, y, w, h normalised
}

type sceneTruth struct {
	Scene    string        `json:"scene"`
	Width    int           `json:"width"`
	Height   int           `json:"height"`
	Duration float64       `json:"duration"`
	Codec    string        `json:"codec"`
	Objects  []truthObject `json:"objects"`
}

// sceneRun is a scene analysed at 5 fps.
type sceneRun struct {
	truth   sceneTruth
	seconds []Second
	frames  int // analysed frames
	errs    int // decode errors
}

// ensureScene generates the scene with scripts/gen-motion-scene.sh when it
// is missing (idempotent; the generated files are git-ignored).
func ensureScene(t testing.TB, name string) (ts, js string) {
	t.Helper()
	ts, js = filepath.Join(sceneDir, name+".ts"), filepath.Join(sceneDir, name+".json")
	if _, err := os.Stat(js); err == nil {
		if _, err := os.Stat(ts); err == nil {
			return ts, js
		}
	}
	cmd := exec.Command("../../scripts/gen-motion-scene.sh", sceneDir, name)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gen-motion-scene.sh %s: %v\n%s", name, err, out)
	}
	return ts, js
}

func runScene(t testing.TB, name string, cfg Config) *sceneRun {
	t.Helper()
	ts, js := ensureScene(t, name)
	run := &sceneRun{}
	b, err := os.ReadFile(js)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &run.truth); err != nil {
		t.Fatalf("%s: %v", js, err)
	}
	clip, err := decodetest.ReadTS(ts)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := decode.New(clip.Codec)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	det, err := NewDetector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dc := det.Config()
	var agg Aggregator
	for _, au := range clip.AUs {
		// The wiring pattern: decide from the timestamp, then copy out
		// (Decode) only the pictures that are analysed.
		at := base.Add(au.PTS)
		if !det.Due(at) {
			if _, err := dec.Feed(au.NALUs); err != nil {
				run.errs++
			}
			continue
		}
		f, err := dec.Decode(au.NALUs)
		if err != nil {
			run.errs++
			continue
		}
		if f == nil {
			continue
		}
		run.frames++
		r := det.Analyze(at, f.Gray(dc.Width, dc.Height))
		if s, ok := agg.Add(r); ok {
			run.seconds = append(run.seconds, s)
		}
	}
	if s, ok := agg.Flush(); ok {
		run.seconds = append(run.seconds, s)
	}
	if run.errs > 0 {
		t.Errorf("%s: %d decode errors", name, run.errs)
	}
	want := int(run.truth.Duration*5) - 2
	if run.frames < want {
		t.Errorf("%s: analysed %d frames, want >= %d at 5 fps", name, run.frames, want)
	}
	return run
}

type span struct{ start, end float64 } // seconds from the scene start

func (s span) overlap(o span) float64 { return max(0, min(s.end, o.end)-max(s.start, o.start)) }

func (s span) iou(o span) float64 {
	u := max(s.end, o.end) - min(s.start, o.start)
	if u <= 0 {
		return 0
	}
	return s.overlap(o) / u
}

func ivSpan(iv Interval) span {
	return span{iv.Start.Sub(base).Seconds(), iv.End.Sub(base).Seconds()}
}

// truthEvents merges objects visible at overlapping (or nearly
// overlapping) times into events: the detector reports motion in the
// picture, not per object.
func truthEvents(objs []truthObject, gap float64) []span {
	var s []span
	for _, o := range objs {
		s = append(s, span{o.Start, o.End})
	}
	sort.Slice(s, func(i, j int) bool { return s[i].start < s[j].start })
	var out []span
	for _, x := range s {
		if n := len(out); n > 0 && x.start <= out[n-1].end+gap {
			out[n-1].end = max(out[n-1].end, x.end)
			continue
		}
		out = append(out, x)
	}
	return out
}

// match pairs detections with truth one-to-one by largest overlap and
// returns the matched pairs; unmatched detections are false positives,
// unmatched truth events misses.
func match(det, truth []span) (pairs [][2]int) {
	usedD := make([]bool, len(det))
	usedT := make([]bool, len(truth))
	for {
		best, bi, bj := 0.0, -1, -1
		for i, d := range det {
			for j, tr := range truth {
				if usedD[i] || usedT[j] {
					continue
				}
				if ov := d.overlap(tr); ov > best {
					best, bi, bj = ov, i, j
				}
			}
		}
		if bi < 0 {
			return pairs
		}
		usedD[bi], usedT[bj] = true, true
		pairs = append(pairs, [2]int{bi, bj})
	}
}

// evalConfig is the interval configuration of the evaluation: no padding,
// so the reported boundaries are the detector's own.
var evalConfig = IntervalConfig{MaxGap: 2 * time.Second, MinFrames: 2}

func describe(spans []span) string {
	s := ""
	for _, x := range spans {
		s += fmt.Sprintf(" [%.1f,%.1f]", x.start, x.end)
	}
	return s
}

// TestScenesPrecisionRecall runs every object scene through decode and the
// detector at 5 fps and scores the intervals against the script.
func TestScenesPrecisionRecall(t *testing.T) {
	var tp, fp, fn int
	var iouSum float64
	for _, name := range []string{"objects-640", "busy-640", "objects-h265-320", "objects-320"} {
		run := runScene(t, name, Config{})
		ivs := Intervals(run.seconds, evalConfig)
		var det []span
		for _, iv := range ivs {
			det = append(det, ivSpan(iv))
		}
		truth := truthEvents(run.truth.Objects, evalConfig.MaxGap.Seconds())
		pairs := match(det, truth)
		for _, p := range pairs {
			iou := det[p[0]].iou(truth[p[1]])
			iouSum += iou
			if iou < 0.5 {
				t.Errorf("%s: detection %v matches truth %v with temporal IoU %.2f < 0.5", name, det[p[0]], truth[p[1]], iou)
			}
			// Spatial check: the interval's cells meet the objects' boxes.
			if !ivs[p[0]].Cells.Intersects(truthMask(run.truth.Objects, truth[p[1]], 32, 18)) {
				t.Errorf("%s: detection %v has cells outside every object box", name, det[p[0]])
			}
		}
		tp += len(pairs)
		fp += len(det) - len(pairs)
		fn += len(truth) - len(pairs)
		t.Logf("%s: %d frames, truth%s", name, run.frames, describe(truth))
		t.Logf("%s: %d frames, found%s", name, run.frames, describe(det))
	}
	precision := float64(tp) / float64(tp+fp)
	recall := float64(tp) / float64(tp+fn)
	t.Logf("events: tp=%d fp=%d fn=%d precision=%.3f recall=%.3f mean IoU=%.2f", tp, fp, fn, precision, recall, iouSum/float64(max(tp, 1)))
	if tp+fn < 10 {
		t.Errorf("only %d truth events; the scenes are too small to measure 0.95", tp+fn)
	}
	if precision < 0.95 || recall < 0.95 {
		t.Errorf("precision %.3f recall %.3f, want both >= 0.95", precision, recall)
	}
}

// truthMask returns the cells covered by any object box visible during ev.
func truthMask(objs []truthObject, ev span, cols, rows int) Grid {
	g := NewGrid(cols, rows)
	for _, o := range objs {
		for _, p := range o.Path {
			if p[0] < ev.start || p[0] > ev.end {
				continue
			}
			g.Or(boxCells(p, cols, rows, 0))
		}
	}
	return g
}

// boxCells returns the cells a normalised box [t,x,y,w,h] covers; grow
// (in cells) enlarges the box.
func boxCells(p [5]float64, cols, rows int, grow float64) Grid {
	g := NewGrid(cols, rows)
	x0 := p[1]*float64(cols) - grow
	y0 := p[2]*float64(rows) - grow
	x1 := (p[1]+p[3])*float64(cols) + grow
	y1 := (p[2]+p[4])*float64(rows) + grow
	for r := max(0, int(y0)); r < rows && float64(r) < y1; r++ {
		for c := max(0, int(x0)); c < cols && float64(c) < x1; c++ {
			g.Set(c, r)
		}
	}
	return g
}

// TestStillScenes: noise and brightness ramps must produce no interval.
func TestStillScenes(t *testing.T) {
	for _, name := range []string{"still-noise-640", "still-ramp-640", "still-noise-ramp-320"} {
		run := runScene(t, name, Config{})
		if len(run.truth.Objects) != 0 {
			t.Fatalf("%s has objects", name)
		}
		ivs := Intervals(run.seconds, DefaultIntervalConfig())
		motion := 0
		for _, s := range run.seconds {
			if !s.Empty() {
				motion++
			}
		}
		t.Logf("%s: %d frames, %d seconds with any motion cell, %d intervals", name, run.frames, motion, len(ivs))
		for _, iv := range ivs {
			t.Errorf("%s: false interval %v (peak %.4f, cells\n%v)", name, ivSpan(iv), iv.Peak, iv.Cells)
		}
	}
}

// TestRegionSearch: a polygon mask over the stored per-second grids finds
// exactly the objects that crossed the region.
func TestRegionSearch(t *testing.T) {
	run := runScene(t, "objects-640", Config{})
	var stored []Second
	bytes := 0
	for _, s := range run.seconds {
		if s.Empty() {
			continue // only non-empty seconds are stored
		}
		b, err := s.Grid.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var g Grid
		if err := g.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		s.Grid = g
		stored = append(stored, s)
		bytes += len(b)
	}
	t.Logf("stored %d of %d seconds, %d grid bytes (%.1f per stored second)",
		len(stored), len(run.seconds), bytes, float64(bytes)/float64(max(len(stored), 1)))
	regions := []struct {
		name string
		poly [][2]float64
		want []string // objects the script sends through the region
	}{
		{"bottom-left", [][2]float64{{0.05, 0.72}, {0.35, 0.72}, {0.35, 0.98}, {0.05, 0.98}}, []string{"small1", "person2"}},
		{"top-right-triangle", [][2]float64{{0.82, 0.08}, {0.98, 0.08}, {0.98, 0.32}}, []string{"person1"}},
		{"middle-lane", [][2]float64{{0, 0.40}, {1, 0.40}, {1, 0.62}, {0, 0.62}}, []string{"car1", "vertical1", "diag1", "car2"}},
	}
	byID := map[string]truthObject{}
	for _, o := range run.truth.Objects {
		byID[o.ID] = o
	}
	for _, rg := range regions {
		t.Run(rg.name, func(t *testing.T) {
			mask := MaskFromPolygon(rg.poly, 32, 18)
			want := map[string]bool{}
			for _, id := range rg.want {
				want[id] = true
				if !objectCrosses(byID[id], mask, 0) {
					t.Fatalf("script: %s does not cross %s", id, rg.name)
				}
			}
			for _, o := range run.truth.Objects {
				if !want[o.ID] && objectCrosses(o, mask, 1) {
					t.Fatalf("script: %s comes within a cell of %s but is not expected", o.ID, rg.name)
				}
			}
			ivs := SearchRegion(stored, mask, evalConfig)
			found := map[string]bool{}
			for _, iv := range ivs {
				if !mask.And(iv.Cells).Equal(iv.Cells) {
					t.Errorf("interval %v has cells outside the mask", ivSpan(iv))
				}
				var hits []string
				for _, o := range run.truth.Objects {
					if want[o.ID] && ivSpan(iv).overlap(span{o.Start, o.End}) > 0 {
						hits = append(hits, o.ID)
						found[o.ID] = true
					}
				}
				if len(hits) == 0 {
					t.Errorf("interval %v matches no object that crossed the region", ivSpan(iv))
				}
			}
			for id := range want {
				if !found[id] {
					t.Errorf("%s crossed the region but was not found", id)
				}
			}
			t.Logf("%s: %d intervals for %v", rg.name, len(ivs), rg.want)
		})
	}
}

func objectCrosses(o truthObject, mask Grid, grow float64) bool {
	for _, p := range o.Path {
		if boxCells(p, mask.Cols(), mask.Rows(), grow).Intersects(mask) {
			return true
		}
	}
	return false
}
