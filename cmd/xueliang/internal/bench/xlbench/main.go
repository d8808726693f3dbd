// Command xlbench is xueliang's system benchmark (make bench, scripts/bench.sh):
// ingest cost per camera of the full pipeline (bin/xueliang serve into a
// MinIO it starts) against the receive floor (`xlbench floor`: a bare
// gortsplib reader per camera), camera capacity, replay time to first byte
// and index scale. It writes a JSON file and BENCHMARKS.md. Goals are
// reported, never asserted.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
)

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s xlbench: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

type results struct {
	Date      string           `json:"date"`
	Commit    string           `json:"commit"`
	Command   string           `json:"command"`
	Quick     bool             `json:"quick"`
	Machine   machine          `json:"machine"`
	Ingest    []ingestResult   `json:"ingest"`
	Capacity  []ingestResult   `json:"capacity,omitempty"`
	Knee      string           `json:"capacity_knee,omitempty"`
	Live      *liveResult      `json:"live,omitempty"`
	Replay    *replayResult    `json:"replay,omitempty"`
	Index     *indexResult     `json:"index,omitempty"`
	Postgres  *pgResult        `json:"postgres,omitempty"`
	Motion    *motionResult    `json:"motion,omitempty"`
	Retention *retentionResult `json:"retention,omitempty"`
	Micro     string           `json:"micro_benchmarks,omitempty"`
	Errors    []string         `json:"errors,omitempty"`
	// Reruns lists the runs of some parts only (-only) merged into these
	// results after the run above: "parts: commit date command".
	Reruns    []string `json:"reruns,omitempty"`
	WallClock float64  `json:"wall_seconds"`
}

type machine struct {
	NProc int    `json:"nproc"`
	CPU   string `json:"cpu"`
	RAM   string `json:"ram"`
	Go    string `json:"go"`
	Load  string `json:"loadavg_at_start"`
}

func machineInfo() machine {
	m := machine{NProc: runtime.NumCPU(), Go: runtime.Version(), Load: loadavg()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for l := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		l, _, _ := strings.Cut(string(b), "\n")
		m.RAM = strings.Join(strings.Fields(l)[1:], " ")
	}
	return m
}

func fetchProfile(base, path string, secs int) error {
	resp, err := http.Get(fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", base, secs))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("status %s", resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.ReadFrom(resp.Body)
	return err
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "floor" {
		runFloor(os.Args[2:])
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "viewers" {
		runViewers(os.Args[2:])
		return
	}
	quick := flag.Bool("quick", os.Getenv("BENCH_QUICK") == "1", "quick mode (default from BENCH_QUICK=1)")
	bin := flag.String("bin", "bin", "directory with xueliang and camsim binaries")
	out := flag.String("json", "bench/results.json", "JSON output")
	md := flag.String("md", "BENCHMARKS.md", "Markdown output")
	notes := flag.String("notes", "bench/notes.md", "hand-written analysis appended to the Markdown")
	micro := flag.String("micro", "", "file with `go test -bench` output to include")
	only := flag.String("only", allParts, "parts to run (fewer: the others are kept from the existing -json)")
	cams := flag.Int("cameras", 0, "cameras of the ingest run (default 100, quick 20)")
	dur := flag.Duration("duration", 0, "measured time of the ingest run (default 90s, quick 30s)")
	idxCamsFlag := flag.Int("index-cameras", 0, "cameras in the index benchmark (default 1000, quick 50)")
	idxChunk := flag.Int("index-chunk", 250, "cameras per bulk-load transaction of the index benchmark")
	upWorkers := flag.Int("upload-workers", 0, "upload.workers of the ingest and capacity servers (0: the server's default)")
	stepDur := flag.Duration("step-duration", 3*benchSegment, "measured time of each capacity step")
	serverEnv := flag.String("server-env", "", "space-separated NAME=VALUE pairs added to the environment of the ingest, live and capacity servers only (e.g. GOGC=400; the floor and camsim keep theirs)")
	profile := flag.String("profile", "", "directory: take a 30 s CPU profile of the server in each ingest run and write it there")
	restartMinio := flag.Bool("restart-minio", false, "restart MinIO (same data) before the capacity steps: tells MinIO's process state from what the earlier runs left on disk")
	render := flag.Bool("render", false, "only rewrite -md from an existing -json and -notes (after editing the notes)")
	flag.Parse()

	if *render {
		var res results
		b, err := os.ReadFile(*out)
		if err == nil {
			err = json.Unmarshal(b, &res)
		}
		var nb []byte
		if err == nil && *notes != "" {
			nb, err = os.ReadFile(*notes)
		}
		if err == nil {
			err = os.WriteFile(*md, []byte(markdown(res, string(nb))), 0o644)
		}
		if err != nil {
			logf("render: %v", err)
			os.Exit(1)
		}
		return
	}

	n, d, fd := 100, 90*time.Second, 30*time.Second
	repCams, repHours, repInst := 20, 24, 1000
	idxCams, idxDays, idxAPI, idxQ := 1000, 30, 20000, 200
	fragDur := 60 * time.Second
	// The ingest run (n cameras, no loss expected) is the step below the
	// first; two 90 s steps (-step-duration) keep the full mode within its
	// 30 minutes.
	capSteps := []int{200, 250}
	if *quick {
		n, d, fd = 20, 30*time.Second, 15*time.Second
		repCams, repHours, repInst = 4, 2, 100
		idxCams, idxDays, idxAPI, idxQ = 50, 30, 2000, 100
		fragDur = 15 * time.Second
		capSteps = nil
	}
	if *cams > 0 {
		n = *cams
	}
	if *dur > 0 {
		d = *dur
	}
	if w := measuredWindow(d); w != d {
		logf("ingest window %v rounded up to %v (a whole number of %v segments)", d, w, benchSegment)
		d = w
	}
	if *idxCamsFlag > 0 {
		idxCams = *idxCamsFlag
	}
	if *idxChunk < 1 {
		logf("-index-chunk: want at least 1 camera per transaction, got %d", *idxChunk)
		os.Exit(2)
	}
	start := time.Now()
	commit, _ := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	res := results{Date: start.UTC().Format(time.RFC3339), Commit: strings.TrimSpace(string(commit)),
		Command: strings.Join(os.Args, " "), Quick: *quick, Machine: machineInfo()}
	if *quick {
		res.Command = "BENCH_QUICK=1 " + res.Command
	}
	fail := func(part string, err error) {
		logf("%s: %v", part, err)
		res.Errors = append(res.Errors, fmt.Sprintf("%s: %v", part, err))
	}
	want := func(p string) bool { return strings.Contains(","+*only+",", ","+p+",") }

	dir, err := os.MkdirTemp("", "xlbench-")
	if err != nil {
		logf("%v", err)
		os.Exit(1)
	}
	defer os.RemoveAll(dir)
	self, _ := os.Executable()
	binAbs, _ := filepath.Abs(*bin)
	clips, _ := filepath.Abs("testdata/clips")
	script, _ := filepath.Abs("scripts/gen-clip.sh")
	env := &ingestEnv{dir: dir, bin: binAbs, self: self, clips: clips, script: script, profileDir: *profile, uploadWorkers: *upWorkers, disk: diskOf(dir),
		serverEnv: strings.Fields(*serverEnv)}
	env.minio, err = startMinio(dir)
	if err != nil {
		fail("minio", err)
	} else {
		m := env.minio
		defer func() { m.stop() }() // m.proc changes on a restart
	}

	// One PostgreSQL cluster for the postgres part and the replay part's
	// PostgreSQL index.
	var pg *pgCluster
	if want("postgres") {
		if pg, err = startPostgres(); err != nil {
			fail("postgres", err)
		} else {
			defer pg.close()
		}
	}

	if env.minio != nil && want("ingest") {
		for _, c := range []struct{ codec, br string }{{"h264", "4M"}, {"h265", "2M"}} {
			r, err := env.runIngest(n, c.codec, c.br, d, fd)
			if err != nil {
				fail("ingest "+c.codec, err)
				continue
			}
			res.Ingest = append(res.Ingest, r)
		}
	}
	if env.minio != nil && want("live") {
		// One server recording liveCams cameras; the viewer loads of issue
		// #19 one after the other (live.go). WebRTC viewers are pion peers
		// (more CPU in the viewers' process than a WebSocket reader): half
		// the cameras.
		liveCams, b, w := 100, 50, 30*time.Second
		if *quick {
			liveCams, b, w = 20, 20, 15*time.Second
		}
		r, err := env.runLive(liveCams, []liveLoad{
			{proto: "mse", cams: liveCams, per: 1},
			{proto: "mse", cams: 1, per: b},
			{proto: "webrtc", cams: 1, per: b},
			{proto: "webrtc", cams: liveCams / 2, per: 1},
		}, w)
		if err != nil {
			fail("live", err)
		}
		if len(r.Phases) > 0 {
			res.Live = &r
		}
	}
	if env.minio != nil && want("capacity") && len(capSteps) > 0 && *restartMinio {
		logf("restarting minio before the capacity steps (-restart-minio)")
		if err := env.minio.restart(); err != nil {
			fail("minio restart", err)
			env.minio = nil // stopped; the deferred stop is then a no-op
		}
	}
	if env.minio != nil && want("capacity") && len(capSteps) > 0 {
		res.Knee = fmt.Sprintf("> %d cameras (no loss at any step)", capSteps[len(capSteps)-1])
		for _, k := range capSteps {
			r, err := env.runIngest(k, "h264", "4M", measuredWindow(*stepDur), 0)
			if err != nil {
				fail(fmt.Sprintf("capacity %d", k), err)
				res.Knee = fmt.Sprintf("failed at %d cameras: %v", k, err)
				break
			}
			res.Capacity = append(res.Capacity, r)
			if !r.lossFree() || !r.keepsUp() || r.LoadgenLate {
				res.Knee = fmt.Sprintf("between %d and %d cameras (first step with loss or catch-up, uploads falling behind or a late load generator: %d)", prevStep(capSteps, k, n), k, k)
				break
			}
		}
	}
	// The index's API inserts run first (timed, quiet); its bulk load
	// (≈10 min in the full mode) then runs while the replay archive is
	// synthesised, and both phases time their queries once it is done.
	// The replay instants of the index archive (parts index and postgres):
	// a template segment made from the bench clip, objects in MinIO.
	var idxRep *indexReplay
	if env.minio != nil && (want("index") || want("postgres")) {
		if clip, err := benchClip(clips, script); err != nil {
			fail("index replay", err)
		} else if rep, closeRep, err := newIndexReplay(dir, clip, env.minio, idxQ); err != nil {
			fail("index replay", err)
		} else {
			idxRep = rep
			defer closeRep()
		}
	}
	var idx *indexRun
	waitFill := func() error { return nil }
	if want("index") {
		var err error
		if idx, err = runIndex(dir, idxCams, idxDays, 60, idxAPI, *idxChunk, idxRep); err != nil {
			fail("index", err)
		} else {
			busy := ""
			if env.minio != nil && want("replay") {
				busy = "the replay archive synthesis (its first ≈3 min)"
			}
			done := make(chan error, 1)
			go func() { done <- idx.fill(busy) }()
			waitFill = sync.OnceValue(func() error { return <-done })
		}
	}
	if env.minio != nil && want("replay") {
		clip, err := benchClip(clips, script)
		if err != nil {
			fail("replay clip", err)
		}
		r, err := runReplay(dir, clip, env.minio, repCams, repHours, repInst, func() { waitFill() })
		if err != nil {
			fail("replay", err)
		} else {
			res.Replay = &r
		}
	}
	if idx != nil {
		if err := waitFill(); err != nil {
			fail("index", err)
		} else if r, err := idx.queries(idxQ); err != nil {
			fail("index", err)
		} else {
			res.Index = &r
		}
	}
	if pg != nil {
		// After the SQLite index is closed: the two loads never share the disk.
		r, err := runIndexPG(pg, dir, idxCams, idxDays, 60, idxAPI, *idxChunk, idxQ, fragDur, idxRep)
		if err != nil {
			fail("postgres", err)
		} else {
			res.Postgres = &r
		}
	}
	if want("motion") {
		r, err := runMotion(dir, clips, script, *quick)
		if err != nil {
			fail("motion", err)
		} else {
			res.Motion = &r
		}
	}
	if want("retention") {
		rc, rs, rl, ro := 1000, 3, 30, 20000
		if *quick {
			rc, rs, rl, ro = 50, 3, 30, 5000
		}
		r, err := runRetention(dir, rc, rs, rl, ro)
		if err != nil {
			fail("retention", err)
		} else {
			res.Retention = &r
		}
	}
	if *micro != "" {
		if b, err := os.ReadFile(*micro); err == nil {
			res.Micro = string(b)
		}
	}
	res.WallClock = time.Since(start).Seconds()
	if *only != allParts {
		if b, err := os.ReadFile(*out); err == nil {
			var old results
			if err := json.Unmarshal(b, &old); err == nil {
				res = mergeParts(old, res, want)
			}
		}
	}
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err == nil {
		b, _ := json.MarshalIndent(res, "", "  ")
		if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
			logf("%v", err)
		}
	}
	var nb []byte
	if *notes != "" {
		nb, _ = os.ReadFile(*notes)
	}
	if err := os.WriteFile(*md, []byte(markdown(res, string(nb))), 0o644); err != nil {
		logf("%v", err)
	}
	logf("done in %.0f s: %s, %s", res.WallClock, *out, *md)
}

// benchClip returns the 10 s 1080p H.264 4 Mbit/s bench clip under clips,
// generating it with script when missing.
func benchClip(clips, script string) (string, error) {
	clip := filepath.Join(clips, "h264_1920x1080_25fps_gop50_b0_none_4M_10s.ts")
	if _, err := os.Stat(clip); err == nil {
		return clip, nil
	}
	logf("generating %s", clip)
	if out, err := exec.Command(script, "--width", "1920", "--height", "1080", "--bitrate", "4M", clip).CombinedOutput(); err != nil {
		return "", fmt.Errorf("%v: %s", err, out)
	}
	return clip, nil
}

// allParts is the default of -only.
const allParts = "ingest,live,capacity,replay,index,postgres,motion,retention"

// mergeParts returns old with the parts of fresh that were run (want)
// replaced, and the run noted in Reruns. The errors and earlier reruns of
// those parts go (a rerun of "index,postgres" replaces one of "index" or
// of "index,postgres"; one of "index,motion" stays while motion does);
// fresh's errors are added.
func mergeParts(old, fresh results, want func(string) bool) results {
	var parts []string
	for _, p := range strings.Split(allParts, ",") {
		if !want(p) {
			continue
		}
		parts = append(parts, p)
		switch p {
		case "ingest":
			old.Ingest = fresh.Ingest
		case "live":
			old.Live = fresh.Live
		case "capacity":
			old.Capacity, old.Knee = fresh.Capacity, fresh.Knee
		case "replay":
			old.Replay = fresh.Replay
		case "index":
			old.Index = fresh.Index
		case "postgres":
			old.Postgres = fresh.Postgres
		case "motion":
			old.Motion = fresh.Motion
		case "retention":
			old.Retention = fresh.Retention
		}
	}
	if len(parts) == 0 {
		return old
	}
	rerun := func(p string) bool { return slices.Contains(parts, p) }
	old.Errors = slices.DeleteFunc(old.Errors, func(e string) bool { p, _, _ := strings.Cut(e, ": "); return rerun(p) })
	old.Errors = append(old.Errors, fresh.Errors...)
	old.Reruns = slices.DeleteFunc(old.Reruns, func(r string) bool {
		ps, _, _ := strings.Cut(r, ": ")
		for _, p := range strings.Split(ps, ",") {
			if !rerun(p) {
				return false
			}
		}
		return true
	})
	quick := ""
	if fresh.Quick {
		quick = ", quick"
	}
	old.Reruns = append(old.Reruns, fmt.Sprintf("%s: commit %s, %s, load %s, %.0f s%s (`%s`)",
		strings.Join(parts, ","), fresh.Commit, fresh.Date, fresh.Machine.Load, fresh.WallClock, quick, fresh.Command))
	return old
}

func prevStep(steps []int, k, base int) int {
	p := base
	for _, s := range steps {
		if s == k {
			return p
		}
		p = s
	}
	return p
}
