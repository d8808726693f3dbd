package main

// Motion benchmarks (issue 5): analysis CPU per camera, and region-search
// latency over synthetic motion indexes.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"

	"xueliang/cmd/xueliang/internal/api"
	"xueliang/index"
	"xueliang/ingest"
	"xueliang/ingest/decode/decodetest"
	"xueliang/ingest/motion"
	"xueliang/storage/recording"
)

type motionResult struct {
	Analysis []motionCPUResult    `json:"analysis"`
	Search   []motionSearchResult `json:"search"`
}

// motionCPUResult is the CPU one camera's analysis costs.
type motionCPUResult struct {
	Name           string  `json:"name"`
	Clip           string  `json:"clip"`
	StreamSeconds  float64 `json:"stream_seconds"`
	AccessUnits    int64   `json:"access_units"`
	Analysed       int64   `json:"analysed_frames"`
	CPUSeconds     float64 `json:"cpu_seconds"`
	CorePerCamera  float64 `json:"core_fraction_per_camera"`
	MsPerAnalysed  float64 `json:"ms_per_analysed_frame"`
	CamerasPerCore float64 `json:"cameras_per_core"`
}

// motionSearchResult is the latency of region searches over one synthetic
// index.
type motionSearchResult struct {
	Name          string  `json:"name"`
	Cameras       int     `json:"cameras"`
	Days          int     `json:"days"`
	ActiveShare   float64 `json:"active_second_share"`
	Chunks        int64   `json:"chunk_rows"`
	Seconds       int64   `json:"stored_seconds"`
	DataMiB       float64 `json:"data_mib"`
	DBMiB         float64 `json:"db_mib"`
	BuildSeconds  float64 `json:"build_seconds"`
	Queries       int     `json:"queries"`
	P50ms         float64 `json:"p50_ms"`
	P99ms         float64 `json:"p99_ms"`
	Maxms         float64 `json:"max_ms"`
	MeanIntervals float64 `json:"mean_intervals"`
	MeanExamined  float64 `json:"mean_seconds_examined"`
}

// runMotion measures analysis CPU on a 640×360 25 fps scene analysed at
// 5 fps (sub-stream mode) and on 1080p keyframes only, then region-search
// latency over 1 camera × 365 days and 100 cameras × 1 day of synthetic
// motion (about 10 % of seconds with motion).
func runMotion(dir, clips, script string, quick bool) (motionResult, error) {
	var r motionResult
	scene := filepath.Join(clips, "motion", "objects-640.ts")
	if _, err := os.Stat(scene); err != nil {
		gen, _ := filepath.Abs("scripts/gen-motion-scene.sh")
		if out, err := exec.Command(gen, filepath.Dir(scene), "objects-640").CombinedOutput(); err != nil {
			return r, fmt.Errorf("gen-motion-scene.sh: %v: %s", err, out)
		}
	}
	hd := filepath.Join(clips, "h264_1920x1080_25fps_gop50_b0_none_4M_10s.ts")
	if _, err := os.Stat(hd); err != nil {
		if out, err := exec.Command(script, "--width", "1920", "--height", "1080", "--bitrate", "4M", hd).CombinedOutput(); err != nil {
			return r, fmt.Errorf("gen-clip.sh: %v: %s", err, out)
		}
	}
	loops := 3
	if quick {
		loops = 1
	}
	for _, c := range []struct {
		name, clip string
		keyOnly    bool
		loops      int
	}{
		{"640×360 25 fps sub stream, analysed at 5 fps", scene, false, loops},
		{"1920×1080 main stream, keyframes only (GOP 2 s)", hd, true, 6 * loops},
	} {
		res, err := analysisCPU(c.name, c.clip, c.keyOnly, c.loops)
		if err != nil {
			return r, err
		}
		logf("motion: %s: %.2f %% of a core per camera (%.2f ms per analysed frame)", c.name, 100*res.CorePerCamera, res.MsPerAnalysed)
		r.Analysis = append(r.Analysis, res)
	}
	queries := 30
	if quick {
		queries = 12
	}
	for _, c := range []struct{ cams, days int }{{1, 365}, {100, 1}} {
		res, err := searchLatency(dir, c.cams, c.days, queries)
		if err != nil {
			return r, err
		}
		logf("motion: region search %s: p50 %.0f ms, p99 %.0f ms (%d chunks, %.1f MiB of grids, built in %.0f s)",
			res.Name, res.P50ms, res.P99ms, res.Chunks, res.DataMiB, res.BuildSeconds)
		r.Search = append(r.Search, res)
	}
	return r, nil
}

// threadCPU returns the calling thread's user+system CPU time
// (RUSAGE_THREAD; the goroutine must be locked to its thread).
func threadCPU() time.Duration {
	var ru syscall.Rusage
	const rusageThread = 1
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// analysisCPU runs the analyser exactly as a camera's analysis goroutine
// does (ingest.MotionAnalyser: decode, detect, aggregate, pack) over the
// clip, looped, and measures the thread's CPU time.
func analysisCPU(name, path string, keyOnly bool, loops int) (motionCPUResult, error) {
	r := motionCPUResult{Name: name, Clip: filepath.Base(path)}
	clip, err := decodetest.ReadTS(path)
	if err != nil {
		return r, err
	}
	a, err := ingest.NewMotionAnalyser("bench", ingest.MotionOptions{}, keyOnly)
	if err != nil {
		return r, err
	}
	defer a.Close()
	last := clip.AUs[len(clip.AUs)-1].PTS
	period := last + last/time.Duration(max(len(clip.AUs)-1, 1))
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	base := time.Now()
	cpu0 := threadCPU()
	for l := range loops {
		for _, au := range clip.AUs {
			if keyOnly && !isKeyframe(clip.Codec, au.NALUs) {
				continue
			}
			_ = a.Process(base.Add(time.Duration(l)*period+au.PTS), clip.Codec, au.NALUs)
			r.AccessUnits++
		}
	}
	a.Flush()
	cpu := threadCPU() - cpu0
	st := a.Stats()
	r.StreamSeconds = (time.Duration(loops) * period).Seconds()
	r.Analysed = st.Analysed
	r.CPUSeconds = cpu.Seconds()
	r.CorePerCamera = r.CPUSeconds / r.StreamSeconds
	r.MsPerAnalysed = 1000 * r.CPUSeconds / float64(max(st.Analysed, 1))
	if r.CorePerCamera > 0 {
		r.CamerasPerCore = 1 / r.CorePerCamera
	}
	return r, nil
}

func isKeyframe(c recording.VideoCodec, au [][]byte) bool {
	if c == recording.H265 {
		return h265.IsRandomAccess(au)
	}
	return h264.IsRandomAccess(au)
}

// synthCamera generates a camera's motion: objects along a few fixed
// lanes (random straight paths across the picture, box of 2–4 cells),
// events of 5–30 s arriving at random so that about share of the seconds
// have motion, and one in five events a fixed spot (a tree in the wind).
type synthCamera struct {
	rng   *rand.Rand
	lanes [][4]float64 // x0, y0, x1, y1 in cells
	share float64
	next  time.Time // start of the next event
	ev    struct {
		start time.Time
		dur   int
		lane  int
		spot  [2]int
		w, h  int
	}
}

func newSynthCamera(seed uint64, start time.Time, share float64) *synthCamera {
	s := &synthCamera{rng: rand.New(rand.NewPCG(seed, 7)), share: share}
	for range 4 {
		s.lanes = append(s.lanes, [4]float64{s.rng.Float64() * 32, s.rng.Float64() * 18, s.rng.Float64() * 32, s.rng.Float64() * 18})
	}
	s.next = start
	s.schedule()
	return s
}

func (s *synthCamera) schedule() {
	dur := 5 + s.rng.IntN(26) // mean 17.5 s
	gap := s.rng.ExpFloat64() * 17.5 * (1 - s.share) / s.share
	s.ev.start = s.next.Add(time.Duration(gap * float64(time.Second))).Truncate(time.Second)
	s.ev.dur, s.ev.lane = dur, s.rng.IntN(len(s.lanes))
	s.ev.w, s.ev.h = 2+s.rng.IntN(3), 2+s.rng.IntN(3)
	s.ev.spot = [2]int{-1, -1}
	if s.rng.IntN(5) == 0 {
		s.ev.spot = [2]int{s.rng.IntN(30), s.rng.IntN(16)}
	}
	s.next = s.ev.start.Add(time.Duration(dur) * time.Second)
}

// second returns the motion of second t (t advancing by one second).
func (s *synthCamera) second(t time.Time) (motion.Second, bool) {
	for !t.Before(s.next) {
		s.schedule()
	}
	if t.Before(s.ev.start) {
		return motion.Second{}, false
	}
	g := motion.NewGrid(32, 18)
	x, y := float64(s.ev.spot[0]), float64(s.ev.spot[1])
	if s.ev.spot[0] < 0 {
		f := t.Sub(s.ev.start).Seconds() / float64(s.ev.dur)
		l := s.lanes[s.ev.lane]
		x, y = l[0]+f*(l[2]-l[0]), l[1]+f*(l[3]-l[1])
	}
	for dy := range s.ev.h {
		for dx := range s.ev.w {
			g.Set(int(x)+dx, int(y)+dy)
		}
	}
	return motion.Second{Start: t, Grid: g, Peak: float64(s.ev.w*s.ev.h) / 576, Frames: 5, MotionFrames: 5}, true
}

// searchLatency builds cams × days of synthetic motion ending now, then
// times region searches through the HTTP handler (JSON in and out): for
// one camera the camera route, for several the multi-camera route over
// all of them.
func searchLatency(dir string, cams, days, queries int) (motionSearchResult, error) {
	ctx := context.Background()
	r := motionSearchResult{Name: fmt.Sprintf("%d camera(s) × %d day(s)", cams, days), Cameras: cams, Days: days, Queries: queries}
	path := filepath.Join(dir, fmt.Sprintf("motion-%dx%d.db", cams, days))
	os.Remove(path)
	db, err := index.Open(ctx, path, nil)
	if err != nil {
		return r, err
	}
	defer db.Close()
	end := time.Now().Truncate(time.Minute)
	start := end.Add(-time.Duration(days) * 24 * time.Hour)
	t0 := time.Now()
	const share = 0.10
	var ids []string
	var dataBytes, secs int64
	for c := range cams {
		id := fmt.Sprintf("cam%03d", c)
		ids = append(ids, id)
		if err := db.PutCamera(ctx, index.Camera{ID: id, Name: id, Township: "bench", Enabled: true, Source: index.SourceAPI}); err != nil {
			return r, err
		}
		syn := newSynthCamera(uint64(c+1), start, share)
		var batch []recording.MotionChunk
		var minute []motion.Second
		flush := func(m time.Time) error {
			if len(minute) > 0 {
				ch, err := motion.PackChunk(m, m.Add(time.Minute), minute)
				if err != nil {
					return err
				}
				batch = append(batch, recording.MotionChunk{CameraID: id, Start: ch.Start, End: ch.End, Active: ch.Active, Summary: ch.Summary, Data: ch.Data})
				dataBytes += int64(len(ch.Data))
				secs += int64(ch.Active)
				minute = minute[:0]
			}
			if len(batch) >= 5000 {
				if err := db.AddMotion(ctx, batch, nil); err != nil {
					return err
				}
				r.Chunks += int64(len(batch))
				batch = batch[:0]
			}
			return nil
		}
		for m := start; m.Before(end); m = m.Add(time.Minute) {
			for s := range 60 {
				if sec, ok := syn.second(m.Add(time.Duration(s) * time.Second)); ok {
					minute = append(minute, sec)
				}
			}
			if err := flush(m); err != nil {
				return r, err
			}
		}
		if err := db.AddMotion(ctx, batch, nil); err != nil {
			return r, err
		}
		r.Chunks += int64(len(batch))
	}
	r.BuildSeconds = time.Since(t0).Seconds()
	r.Seconds = secs
	r.DataMiB = float64(dataBytes) / (1 << 20)
	r.ActiveShare = float64(secs) / (float64(cams) * end.Sub(start).Seconds())
	if fi, err := os.Stat(path); err == nil {
		r.DBMiB = float64(fi.Size()) / (1 << 20)
	}

	h := (&api.Server{Index: db}).Handler()
	// XLBENCH_MOTION_PPROF=DIR writes a CPU profile of the searches.
	if d := os.Getenv("XLBENCH_MOTION_PPROF"); d != "" {
		if f, err := os.Create(filepath.Join(d, fmt.Sprintf("motion-search-%dx%d.pprof", cams, days))); err == nil {
			if pprof.StartCPUProfile(f) == nil {
				defer func() { pprof.StopCPUProfile(); f.Close() }()
			} else {
				f.Close()
			}
		}
	}
	rng := rand.New(rand.NewPCG(42, uint64(cams)))
	var lat []float64
	var ivs, examined int
	for q := range queries {
		// Random rectangles (10–40 % of each side) and every third a
		// triangle.
		w, hh := 0.1+0.3*rng.Float64(), 0.1+0.3*rng.Float64()
		x, y := rng.Float64()*(1-w), rng.Float64()*(1-hh)
		poly := [][2]float64{{x, y}, {x + w, y}, {x + w, y + hh}, {x, y + hh}}
		if q%3 == 2 {
			poly = [][2]float64{{x, y}, {x + w, y + hh/2}, {x, y + hh}}
		}
		body := map[string]any{"from": start, "to": end, "region": map[string]any{"polygon": poly}, "limit": 10000}
		target := "/api/v1/cameras/" + ids[0] + "/motion/search"
		if cams > 1 {
			target = "/api/v1/motion/search"
			body["cameras"] = ids
		}
		b, _ := json.Marshal(body)
		rec := httptest.NewRecorder()
		t1 := time.Now()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, target, bytes.NewReader(b)))
		lat = append(lat, float64(time.Since(t1).Microseconds())/1000)
		if rec.Code != http.StatusOK {
			return r, fmt.Errorf("search: %d %s", rec.Code, strings.TrimSpace(rec.Body.String()))
		}
		var out struct {
			Intervals []json.RawMessage `json:"intervals"`
			Examined  int               `json:"seconds_examined"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			return r, err
		}
		ivs += len(out.Intervals)
		examined += out.Examined
	}
	r.P50ms, r.P99ms = pct(lat, 50), pct(lat, 99)
	r.Maxms = pct(lat, 100)
	r.MeanIntervals = float64(ivs) / float64(queries)
	r.MeanExamined = float64(examined) / float64(queries)
	if math.IsNaN(r.ActiveShare) {
		r.ActiveShare = 0
	}
	return r, nil
}

func motionMarkdown(x *motionResult) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("## Motion\n\n")
	p("Analysis CPU per camera: ingest.MotionAnalyser (libavcodec decode, 160×90 grey, detector, per-second grids, chunks) over a clip, one thread, CPU from getrusage(RUSAGE_THREAD) divided by the stream time analysed.\n\n")
	p("| stream | stream time | AUs decoded | frames analysed | ms per analysed frame | core per camera | cameras per core |\n|---|---|---|---|---|---|---|\n")
	for _, a := range x.Analysis {
		p("| %s (`%s`) | %.0f s | %d | %d | %.2f | %.2f %% | %.0f |\n", a.Name, a.Clip, a.StreamSeconds, a.AccessUnits, a.Analysed, a.MsPerAnalysed, 100*a.CorePerCamera, a.CamerasPerCore)
	}
	p("\nRegion search: synthetic motion (objects along 4 lanes per camera, events of 5–30 s, about 10 %% of seconds with motion), written as one-minute chunks through index.AddMotion; random rectangles and triangles (10–40 %% of each side) searched over the whole window through the HTTP handler (in process).\n\n")
	p("| index | active seconds | chunk rows | grid data | DB | build | queries | p50 | p99 | max | goal ≤ 1 s |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, s := range x.Search {
		p("| %s | %.1f %% | %d | %.1f MiB | %.0f MiB | %.0f s | %d | %.0f ms | %.0f ms | %.0f ms | %s |\n", s.Name, 100*s.ActiveShare, s.Chunks, s.DataMiB, s.DBMiB, s.BuildSeconds, s.Queries, s.P50ms, s.P99ms, s.Maxms, verdict(s.P99ms <= 1000))
	}
	p("\n")
	return b.String()
}
