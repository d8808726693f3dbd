package main

// End-to-end: real camsim (RTSP) → real server (bin/xueliang serve) → HTTP
// replay, judged by ffmpeg and the SEI stamps in every frame.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"xueliang/index"
	"xueliang/storage/recording"
)

var binDir string // built once by TestMain

// testCameraNetworks is the camera_networks section of every test server's
// config: camsim listens on loopback (refused by default), and the
// registry tests register 10.x cameras.
const testCameraNetworks = "camera_networks:\n  allowed: [127.0.0.0/8, 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16]\n"

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "xueliang-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	for _, pkg := range []string{".", "../camsim"} {
		name := "xueliang"
		if pkg != "." {
			name = "camsim"
		}
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, name), pkg)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build", pkg, err)
			os.Exit(1)
		}
	}
	for _, tool := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(tool); err != nil {
			fmt.Fprintf(os.Stderr, "%s is required (make test installs it): %v\n", tool, err)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func repoPath(rel string) string {
	p, err := filepath.Abs(filepath.Join("..", "..", rel))
	if err != nil {
		panic(err)
	}
	return p
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// process runs a binary for the duration of a test, logging its output to a
// file that is printed when the test fails.
type process struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

func startProcess(t *testing.T, name string, ready func(line string) bool, args ...string) *process {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), filepath.Base(name)+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(binDir, name), args...)
	cmd.Dir = repoPath(".")
	// Every test server runs with a known bootstrap token, and the tests'
	// HTTP requests carry it (auth_test.go).
	cmd.Env = append(os.Environ(), "XUELIANG_BOOTSTRAP_TOKEN="+testBootstrapToken)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, log: logPath, done: make(chan struct{})}
	readyCh := make(chan struct{})
	var once sync.Once
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			fmt.Fprintln(logFile, sc.Text())
			if ready != nil && ready(sc.Text()) {
				once.Do(func() { close(readyCh) })
			}
		}
	}()
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			if len(b) > 20000 {
				b = b[len(b)-20000:]
			}
			t.Logf("--- %s log (tail) ---\n%s", name, b)
		}
		logFile.Close()
	})
	if ready != nil {
		select {
		case <-readyCh:
		case <-p.done:
			t.Fatalf("%s exited before it was ready", name)
		case <-time.After(60 * time.Second):
			t.Fatalf("%s not ready after 60 s", name)
		}
	}
	return p
}

func (p *process) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

type testServer struct {
	base    string
	dataDir string
	cfgPath string
	proc    *process
}

// startServer writes a config (listen + data_dir + cfg) into a temp dir and
// starts the server on it.
func startServer(t *testing.T, cfg string) *testServer {
	t.Helper()
	return startServerAt(t, freeAddr(t), cfg)
}

// startServerAt is startServer listening on addr (known before the config
// is written, e.g. for cluster.advertise_url).
func startServerAt(t *testing.T, addr, cfg string) *testServer {
	t.Helper()
	dir := t.TempDir()
	// The cameras are camsim on loopback: allow it besides the default
	// private ranges (the default refuses loopback).
	cfg = fmt.Sprintf("listen: %s\ndata_dir: %s\n", addr, filepath.Join(dir, "data")) + testCameraNetworks + cfg
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	s := &testServer{base: "http://" + addr, dataDir: filepath.Join(dir, "data"), cfgPath: cfgPath}
	s.start(t)
	return s
}

// start (re)starts the server process on the same config and data dir.
func (s *testServer) start(t *testing.T) {
	t.Helper()
	s.proc = startProcess(t, "xueliang", nil, "serve", "--config", s.cfgPath)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(s.base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not healthy: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// logContains reports whether the server's log has a line with every one of
// the substrings.
func (s *testServer) logContains(t *testing.T, subs ...string) bool {
	t.Helper()
	b, err := os.ReadFile(s.proc.log)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		all := true
		for _, sub := range subs {
			all = all && strings.Contains(line, sub)
		}
		if all {
			return true
		}
	}
	return false
}

// kill9 kills the server process without warning.
func (s *testServer) kill9(t *testing.T) {
	t.Helper()
	if err := s.proc.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-s.proc.done
}

func startCamsim(t *testing.T, args ...string) (rtspBase string, started time.Time) {
	t.Helper()
	addr := freeAddr(t)
	args = append([]string{"-listen", addr, "-clips", repoPath("testdata/clips"), "-script", repoPath("scripts/gen-clip.sh")}, args...)
	startProcess(t, "camsim", func(l string) bool { return strings.Contains(l, "camsim: ready") }, args...)
	return "rtsp://" + addr, time.Now()
}

func getJSON(t *testing.T, u string, v any) int {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: decode: %v", u, err)
	}
	return resp.StatusCode
}

type timelineResp struct {
	Spans []struct{ Start, End time.Time } `json:"spans"`
	Gaps  []struct{ Start, End time.Time } `json:"gaps"`
}

type replayResp struct {
	path       string
	start, end time.Time
	gaps       []recording.Gap
}

func fetchReplay(t *testing.T, s *testServer, cam string, start, end time.Time, skip bool) replayResp {
	t.Helper()
	return fetchReplayFormat(t, s, cam, start, end, skip, "")
}

// fetchReplayFormat is fetchReplay with the format parameter ("" for the
// default); it checks X-Replay-Format and, for the progressive form,
// Content-Length.
func fetchReplayFormat(t *testing.T, s *testServer, cam string, start, end time.Time, skip bool, format string) replayResp {
	t.Helper()
	q := url.Values{"start": {start.UTC().Format(time.RFC3339Nano)}, "end": {end.UTC().Format(time.RFC3339Nano)}}
	if skip {
		q.Set("gaps", "skip")
	}
	if f, ok := strings.CutSuffix(format, "+exact"); ok {
		format = f // "mp4+exact": the exact=1 form of mp4
		q.Set("exact", "1")
	}
	if format != "" {
		q.Set("format", format)
	}
	u := s.base + "/api/v1/cameras/" + cam + "/replay.mp4?" + q.Encode()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %d %s", u, resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "video/mp4" {
		t.Fatalf("content type %q", ct)
	}
	f, err := os.CreateTemp(t.TempDir(), cam+"-*.mp4")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n, err := io.Copy(f, resp.Body)
	if err != nil {
		t.Fatalf("read replay body: %v", err)
	}
	wantFormat := format
	if wantFormat == "" {
		wantFormat = "mp4"
	}
	if got := resp.Header.Get("X-Replay-Format"); got != wantFormat {
		t.Fatalf("GET %s: X-Replay-Format %q, want %q", u, got, wantFormat)
	}
	if wantFormat == "mp4" && resp.ContentLength != n {
		t.Fatalf("GET %s: Content-Length %d, body %d bytes", u, resp.ContentLength, n)
	}
	r := replayResp{path: f.Name()}
	r.start, _ = time.Parse(time.RFC3339Nano, resp.Header.Get("X-Replay-Start"))
	r.end, _ = time.Parse(time.RFC3339Nano, resp.Header.Get("X-Replay-End"))
	if h := resp.Header.Get("X-Replay-Gaps"); h != "" {
		for _, iv := range strings.Split(h, ",") {
			a, b, _ := strings.Cut(iv, "/")
			gs, err1 := time.Parse(time.RFC3339Nano, a)
			ge, err2 := time.Parse(time.RFC3339Nano, b)
			if err1 != nil || err2 != nil {
				t.Fatalf("bad X-Replay-Gaps %q", h)
			}
			r.gaps = append(r.gaps, recording.Gap{Start: gs, End: ge})
		}
	}
	return r
}

const frameDur = 40 * time.Millisecond // camsim default: 25 fps

// presentedFromZero returns the frames of j presented at or after time 0
// by the file's own timestamps (after the edit list, as ffmpeg's demuxer
// applies it to a fragmented file), in presentation order.
func presentedFromZero(j judgement) []judgedFrame {
	var out []judgedFrame
	for _, f := range j.Frames {
		if f.PTS >= 0 {
			out = append(out, f)
		}
	}
	return out
}

// checkContinuous asserts that the shown frames are consecutive camera frames
// of camera cam and that their presentation times follow their capture times.
func checkContinuous(t *testing.T, what, cam string, frames []judgedFrame) {
	t.Helper()
	if len(frames) == 0 {
		t.Fatalf("%s: no frames shown", what)
	}
	first := frames[0]
	for i, f := range frames {
		if f.Stamp.Camera != cam {
			t.Fatalf("%s: frame %d is from camera %q", what, i, f.Stamp.Camera)
		}
		if i > 0 && f.Stamp.Seq != frames[i-1].Stamp.Seq+1 {
			t.Fatalf("%s: frames not consecutive at %d: %s", what, i, describeSeqs(frames))
		}
		// Presentation time advances exactly like capture time (±5 ms).
		drift := (f.Time - first.Time) - f.Stamp.Captured.Sub(first.Stamp.Captured)
		if drift < -5*time.Millisecond || drift > 5*time.Millisecond {
			t.Fatalf("%s: frame %d (seq %d) presented at %v but captured %v after the first", what, i, f.Stamp.Seq,
				f.Time-first.Time, f.Stamp.Captured.Sub(first.Stamp.Captured))
		}
	}
}

// clockSlack allows for the server anchoring a session's wall clock on the
// receive time of its first frame (camsim's RTCP sender reports come only
// every 10 s): loopback latency plus scheduling, far below one frame.
const clockSlack = 20 * time.Millisecond

// checkWindow asserts the replay of [start,end) starts with the frame at
// start and ends with the frame at end−ε (±endFrames frames: 1 for a
// camera with B-frames, 0 otherwise). Times come from the SEI capture
// stamps, not from our own index.
func checkWindow(t *testing.T, what string, frames []judgedFrame, start, end time.Time, endFrames int) {
	t.Helper()
	first, last := frames[0], frames[len(frames)-1]
	// The frame at start was captured in (start-frameDur, start].
	if d := first.Stamp.Captured.Sub(start); d <= -2*frameDur-clockSlack || d > frameDur {
		t.Errorf("%s: first shown frame captured at %s, %v from start", what, first.Stamp.Captured.Format(time.RFC3339Nano), d)
	}
	if first.Time < 0 || first.Time > 2*time.Millisecond {
		t.Errorf("%s: first shown frame presented at %v, want 0", what, first.Time)
	}
	// The last shown frame is the frame at end, ±1 with B-frames (the
	// window ends at the nearer hole-free cut, replay.endCut). The frame at
	// end was captured in (end-frameDur, end], so it ends in (end,
	// end+frameDur]; k frames later shifts that by k·frameDur. One frame
	// early is accepted for every camera: without RTCP the recording is
	// anchored at the first packet's receive time, late by the host's
	// scheduling delay at that moment (clockSlack covers most of it).
	shownEnd := first.Stamp.Captured.Add(last.Time - first.Time + frameDur)
	k := time.Duration(endFrames)
	if d := shownEnd.Sub(end); d <= -frameDur-clockSlack || d > (k+1)*frameDur+clockSlack {
		t.Errorf("%s: shown footage ends %v from end (window %v, %d frames shown)", what, d, end.Sub(start), len(frames))
	}
}

func TestRecordReplayEndToEnd(t *testing.T) {
	rtsp, camStart := startCamsim(t, "-cameras", "6",
		"-camera", "cam2:codec=h265",
		"-camera", "cam3:audio=aac",
		"-camera", "cam4:bframes=on",
		"-camera", "cam5:drop=15s",
		// The RTP clock wraps ~25 s after camsim starts; at 55 s the picture size changes.
		"-camera", fmt.Sprintf("cam6:rtpstart=%d,switch=55s:240x180", uint32(1<<32-25*90000)),
	)
	var cams strings.Builder
	for i := 1; i <= 6; i++ {
		fmt.Fprintf(&cams, "  - id: cam%d\n    url: %s/cam%d\n    township: Huiting\n", i, rtsp, i)
	}
	srv := startServer(t, "recording:\n  segment_duration: 20s\ncameras:\n"+cams.String())

	const recordFor = 95 * time.Second
	t.Logf("recording %v", recordFor)
	time.Sleep(recordFor)
	recEnd := time.Now().Add(-3 * time.Second) // leave the fragment in progress alone

	db, err := index.Open(context.Background(), filepath.Join(srv.dataDir, "index.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	segs := map[string][]recording.Segment{}
	for i := 1; i <= 6; i++ {
		cam := fmt.Sprintf("cam%d", i)
		s, err := db.SegmentsInRange(context.Background(), cam, camStart, recEnd.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if len(s) < 4 {
			t.Fatalf("%s: %d segments after %v with 20 s segments", cam, len(s), recordFor)
		}
		segs[cam] = s
	}

	t.Run("RandomWindows", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
		for i := range 30 {
			cam := fmt.Sprintf("cam%d", i%4+1)
			s := segs[cam]
			var start, end time.Time
			kind := "inside"
			if i%3 == 0 {
				// Cross a segment boundary.
				kind = "boundary"
				b := s[1+rng.IntN(len(s)-2)].Start
				start = b.Add(-time.Duration(300+rng.IntN(5700)) * time.Millisecond)
				end = b.Add(time.Duration(300+rng.IntN(5700)) * time.Millisecond)
			} else {
				lo, hi := s[0].Start.Add(2*time.Second), recEnd.Add(-12*time.Second)
				start = lo.Add(time.Duration(rng.Int64N(int64(hi.Sub(lo)))))
				start = start.Truncate(time.Millisecond).Add(time.Duration(rng.IntN(1000)) * time.Microsecond)
				end = start.Add(time.Duration(2000+rng.IntN(8000)) * time.Millisecond)
			}
			what := fmt.Sprintf("window %d %s %s [%s, %s)", i, kind, cam, start.Format("15:04:05.000"), end.Format("15:04:05.000"))
			r := fetchReplay(t, srv, cam, start, end, false)
			j := judgeMP4(t, r.path)
			checkContinuous(t, what, cam, j.Shown)
			endFrames := 0
			if cam == "cam4" { // B-frames
				endFrames = 1
			}
			checkWindow(t, what, j.Shown, start, end, endFrames)
			if i%3 == 1 {
				// The fragmented form: the frames presented from time 0
				// (what Chromium's <video> shows of it) are the same.
				fr := fetchReplayFormat(t, srv, cam, start, end, false, "fmp4")
				fj := judgeMP4(t, fr.path)
				fromZero := presentedFromZero(fj)
				checkContinuous(t, what+" fmp4", cam, fromZero)
				checkWindow(t, what+" fmp4", fromZero, start, end, endFrames)
				if !samePrefix(fromZero, j.Shown, endFrames) {
					t.Errorf("%s: fmp4 presents %s from 0, mp4 shows %s", what, describeSeqs(fromZero), describeSeqs(j.Shown))
				}
			}
			switch cam {
			case "cam2":
				if j.Codec != "hevc" {
					t.Errorf("%s: codec %s", what, j.Codec)
				}
			case "cam3":
				if !j.HasAudio {
					t.Errorf("%s: no audio track", what)
				}
			}
		}
	})

	t.Run("Reconnects", func(t *testing.T) {
		var tl timelineResp
		q := url.Values{"from": {camStart.UTC().Format(time.RFC3339Nano)}, "to": {recEnd.UTC().Format(time.RFC3339Nano)}}
		if code := getJSON(t, srv.base+"/api/v1/cameras/cam5/timeline?"+q.Encode(), &tl); code != 200 {
			t.Fatalf("timeline: %d", code)
		}
		var inner []struct{ Start, End time.Time }
		for _, g := range tl.Gaps {
			if g.Start.After(segs["cam5"][0].Start) && g.End.Before(recEnd) {
				inner = append(inner, g)
			}
		}
		// camsim drops cam5 every 15 s: ≥ 4 outages inside the recording.
		if len(inner) < 4 {
			t.Fatalf("cam5: %d gaps inside the recording, want ≥ 4: %+v", len(inner), tl.Gaps)
		}
		for gi, g := range inner {
			what := fmt.Sprintf("gap %d [%s, %s)", gi, g.Start.Format("15:04:05.000"), g.End.Format("15:04:05.000"))
			r := fetchReplay(t, srv, "cam5", g.Start.Add(-3*time.Second), g.End.Add(3*time.Second), true)
			if len(r.gaps) != 1 {
				t.Fatalf("%s: X-Replay-Gaps lists %d gaps, want 1", what, len(r.gaps))
			}
			j := judgeMP4(t, r.path)
			// Exactly one discontinuity, where the outage was.
			jump := -1
			for i := 1; i < len(j.Shown); i++ {
				if j.Shown[i].Stamp.Seq != j.Shown[i-1].Stamp.Seq+1 {
					if jump >= 0 {
						t.Fatalf("%s: two discontinuities: %s", what, describeSeqs(j.Shown))
					}
					jump = i
				}
			}
			if jump < 0 {
				t.Fatalf("%s: no discontinuity in the replay across the gap: %s", what, describeSeqs(j.Shown))
			}
			checkContinuous(t, what+" before", "cam5", j.Shown[:jump])
			checkContinuous(t, what+" after", "cam5", j.Shown[jump:])
			outStart := j.Shown[jump-1].Stamp.Captured.Add(frameDur)
			outEnd := j.Shown[jump].Stamp.Captured
			if d := g.Start.Sub(outStart).Abs(); d > 500*time.Millisecond {
				t.Errorf("%s: gap starts %v from the outage start %s", what, d, outStart.Format("15:04:05.000"))
			}
			if d := g.End.Sub(outEnd).Abs(); d > 500*time.Millisecond {
				t.Errorf("%s: gap ends %v from the outage end %s", what, d, outEnd.Format("15:04:05.000"))
			}
			// gaps=stop ends at the gap.
			r = fetchReplay(t, srv, "cam5", g.Start.Add(-3*time.Second), g.End.Add(3*time.Second), false)
			j = judgeMP4(t, r.path)
			checkContinuous(t, what+" stop", "cam5", j.Shown)
			if last := j.Shown[len(j.Shown)-1].Stamp.Captured; last.Before(outStart.Add(-2*frameDur)) || last.After(outStart) {
				t.Errorf("%s: gaps=stop replay ends with a frame captured at %s, outage starts %s", what,
					last.Format("15:04:05.000"), outStart.Format("15:04:05.000"))
			}
		}
	})

	t.Run("Metrics", func(t *testing.T) {
		// The series move with what camsim did: cam5 was dropped every 15 s,
		// cam1 never; replays were timed.
		m := scrapeMetrics(t, srv)
		if v, _ := metricSum(m, "xueliang_camera_reconnects_total", `camera="cam5"`); v < 4 {
			t.Errorf("cam5 reconnects_total = %v, want ≥ 4", v)
		}
		if v, ok := metricSum(m, "xueliang_camera_reconnects_total", `camera="cam1"`); !ok || v != 0 {
			t.Errorf("cam1 reconnects_total = %v (present %v), want 0", v, ok)
		}
		if v, _ := metricSum(m, "xueliang_camera_up", `camera="cam1"`, `township="Huiting"`); v != 1 {
			t.Errorf("cam1 up{township=Huiting} = %v", v)
		}
		if v, _ := metricSum(m, "xueliang_replay_time_to_first_byte_seconds_count"); v < 30 {
			t.Errorf("replay TTFB observations = %v, want ≥ 30", v)
		}
	})

	t.Run("WrapAndResolutionChange", func(t *testing.T) {
		var tl timelineResp
		s6 := segs["cam6"]
		q := url.Values{"from": {s6[0].Start.UTC().Format(time.RFC3339Nano)}, "to": {recEnd.UTC().Format(time.RFC3339Nano)}}
		getJSON(t, srv.base+"/api/v1/cameras/cam6/timeline?"+q.Encode(), &tl)
		if len(tl.Gaps) != 0 || len(tl.Spans) != 1 {
			t.Fatalf("cam6 (RTP wrap + resolution change) timeline should be one span: %+v", tl)
		}
		for _, at := range []time.Duration{25 * time.Second, 55 * time.Second} {
			start := camStart.Add(at - 4*time.Second)
			end := camStart.Add(at + 4*time.Second)
			what := fmt.Sprintf("cam6 around +%v", at)
			r := fetchReplay(t, srv, "cam6", start, end, false)
			j := judgeMP4(t, r.path)
			checkContinuous(t, what, "cam6", j.Shown)
			checkWindow(t, what, j.Shown, start, end, 0)
		}
		// The resolution change made a new segment with a new init.
		sizes := map[[2]int]bool{}
		for _, s := range s6 {
			sizes[[2]int{s.Width, s.Height}] = true
		}
		if !sizes[[2]int{320, 240}] || !sizes[[2]int{240, 180}] {
			t.Errorf("cam6 segment sizes %v, want 320x240 and 240x180", sizes)
		}
	})

	t.Run("Errors", func(t *testing.T) {
		var e struct{ Error string }
		now := time.Now().UTC()
		for _, tc := range []struct {
			path string
			code int
		}{
			{"/api/v1/cameras/nope/timeline", 404},
			{"/api/v1/cameras/cam1/replay.mp4?start=yesterday&end=" + now.Format(time.RFC3339), 400},
			{"/api/v1/cameras/cam1/replay.mp4?start=" + now.Format(time.RFC3339), 400},
			{"/api/v1/cameras/cam1/replay.mp4?start=" + now.Add(-time.Minute).Format(time.RFC3339) + "&end=" + now.Format(time.RFC3339) + "&gaps=maybe", 400},
			{"/api/v1/cameras/cam1/replay.mp4?start=" + now.Add(-time.Minute).Format(time.RFC3339) + "&end=" + now.Format(time.RFC3339) + "&format=avi", 400},
			{"/api/v1/cameras/cam1/replay.mp4?start=2001-01-01T00:00:00Z&end=2001-01-01T00:01:00Z", 404},
		} {
			e.Error = ""
			if code := getJSON(t, srv.base+tc.path, &e); code != tc.code || e.Error == "" {
				t.Errorf("GET %s: %d %q, want %d with a message", tc.path, code, e.Error, tc.code)
			}
		}
	})
}
