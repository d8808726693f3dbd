package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ingestResult is one run of N cameras into the full pipeline (and,
// optionally, into the bare receiver in the same run).
type ingestResult struct {
	Cameras int     `json:"cameras"`
	Codec   string  `json:"codec"`
	Bitrate string  `json:"bitrate"`
	Seconds float64 `json:"seconds"`
	LoadAvg string  `json:"loadavg_before"`

	ServerCPUPctPerCam float64 `json:"server_cpu_pct_core_per_camera"`
	ServerCPUPctTotal  float64 `json:"server_cpu_pct_core_total"`
	FloorCPUPctPerCam  float64 `json:"floor_cpu_pct_core_per_camera,omitempty"`
	RatioToFloor       float64 `json:"ratio_to_floor,omitempty"`
	// The floor of a stock gortsplib client (its own 4 KiB reads) — the
	// issue's definition — beside the floor above, which reads like the
	// pullers (rtspconn: 64 KiB reads, video payload tap).
	StockFloorCPUPctPerCam float64 `json:"stock_floor_cpu_pct_core_per_camera,omitempty"`
	RatioToStockFloor      float64 `json:"ratio_to_stock_floor,omitempty"`

	RSSBaseMiB     float64 `json:"server_rss_idle_base_mib"`
	RSSMiB         float64 `json:"server_rss_end_mib"`
	RSSPerCamMiB   float64 `json:"server_rss_per_camera_mib"`
	FloorRSSPerCam float64 `json:"floor_rss_per_camera_mib,omitempty"`
	FramesExpected float64 `json:"frames_expected"`
	FramesRecorded float64 `json:"frames_recorded"`
	FramesDeficit  float64 `json:"frames_deficit"`
	RTPLost        float64 `json:"rtp_packets_lost"`
	DroppedFrames  float64 `json:"recorder_dropped_frames"`
	Reconnects     float64 `json:"reconnects"`
	BacklogStart   float64 `json:"upload_pending_start"`
	BacklogEnd     float64 `json:"upload_pending_end"`
	BacklogMax     float64 `json:"upload_pending_max"`
	BacklogGrowing bool    `json:"upload_backlog_growing"`
	// LagSamples is xueliang_spool_oldest_segment_age_seconds every 5 s of
	// the window: the age of the oldest spool file, i.e. how long the oldest
	// closed segment not yet uploaded has waited (hashing, index, queue,
	// upload). It stays at a few seconds while uploads keep up and grows
	// with the time when they do not; LagGrowing when it grew by more than
	// lagTolerance along its least-squares line (LagGrowthSeconds).
	LagSamples       []float64 `json:"upload_lag_samples,omitempty"`
	LagGrowthSeconds float64   `json:"upload_lag_growth_seconds"`
	LagGrowing       bool      `json:"upload_lag_growing"`
	// WarmupSeconds is how long after the cameras were up the run waited
	// for the recorded frame rate to settle at cameras × 25 fps (steady
	// state) before the window opened; Settled is false when it did not
	// within the limit and the window opened anyway.
	WarmupSeconds float64 `json:"warmup_seconds"`
	Settled       bool    `json:"settled"`
	// BacklogSamples is the upload backlog (segments) every 5 s of the window.
	BacklogSamples []float64 `json:"upload_pending_samples,omitempty"`
	UploadedBytes  float64   `json:"uploaded_bytes"`
	// WrittenBytes is what the recorders wrote to the spool in the window;
	// UploadShare = UploadedBytes / WrittenBytes. The window is a whole
	// number of segment rounds, so uploads that keep up give ≈ 1; below
	// keepUpShare the uploads fell behind (BacklogGrowing).
	WrittenBytes  float64 `json:"written_bytes"`
	UploadShare   float64 `json:"upload_share"`
	UploadWorkers int     `json:"upload_workers,omitempty"`
	LoadgenLate   bool    `json:"loadgen_late"`
	// GeneratorQueueFull counts the packets camsim's gortsplib server could
	// not queue for a reader ("write queue is full", 256 packets per
	// session): the reader (the server) or camsim's writer fell ≈0.7 s
	// behind. Over camsim's whole log (warm-up and floors included); such
	// packets are the RTP loss the server then counts.
	GeneratorQueueFull int     `json:"camsim_write_queue_full"`
	CamsimCPUPct       float64 `json:"camsim_cpu_pct_core_total"`
	MinioCPUPct        float64 `json:"minio_cpu_pct_core_total"`
	// MinioIdleCPUPct is MinIO's CPU over minioIdleWindow before the run's
	// cameras start, with nothing sending to it: its background work (the
	// data scanner walks every object it holds), which shares the cores.
	MinioIdleCPUPct float64 `json:"minio_idle_cpu_pct_core"`
	ServerProfileTo string  `json:"cpu_profile,omitempty"`
	// IO is the machine's I/O and CPU pressure over the window (sysio.go).
	IO ioWindow `json:"io"`
}

// lossFree reports whether the run recorded every frame of the window, in
// step with the cameras, without RTP loss, recorder drops or reconnects.
// "In step" allows edgeSlack either way per camera: the two scrapes that
// bound the window see each camera's counter up to a scheduling delay
// late (a latency, not a loss: RTP sequence gaps and the recorder's drop
// counter count real loss). A larger surplus means frames received late
// were caught up inside the window: the server was behind when it opened.
func (r ingestResult) lossFree() bool {
	return r.RTPLost == 0 && r.DroppedFrames == 0 && r.Reconnects == 0 &&
		math.Abs(r.FramesDeficit) <= edgeSlack*float64(r.Cameras)
}

// edgeSlack is the frames per camera a window may be off by at its edges:
// one frame plus half a second at 25 fps. At 200 cameras on this box the
// end of a window has been seen 0.1–0.2 s behind the cameras with no
// packet lost.
const edgeSlack = 1 + 0.5*25

// keepsUp reports whether uploads kept up: neither the upload backlog nor
// the wait of the oldest segment in the spool grew over the window.
func (r ingestResult) keepsUp() bool { return !r.BacklogGrowing && !r.LagGrowing }

// lagTolerance is the growth of the oldest spool segment's age over a
// window that counts as uploads falling behind: half a segment period.
const lagTolerance = benchSegment / 2

type ingestEnv struct {
	dir        string // scratch root
	bin        string // directory with xueliang, camsim
	self       string // this binary (floor mode)
	clips      string
	script     string
	minio      *minio
	rssBase    float64 // MiB, measured once
	disk       string  // block device under dir ("" when none)
	profileDir string  // when set: serve debug.pprof_listen and write a CPU profile of each ingest run here
	pprofBase  string  // the last started server's pprof base URL
	// uploadWorkers sets upload.workers (0: the server's default).
	uploadWorkers int
	// serverEnv is added to the servers' environment (-server-env).
	serverEnv []string
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func (e *ingestEnv) startCamsim(dir string, n int, codec, bitrate string) (*proc, string, error) {
	return e.startCamsimSize(dir, n, codec, bitrate, "1920x1080")
}

func (e *ingestEnv) startCamsimSize(dir string, n int, codec, bitrate, size string) (*proc, string, error) {
	var url string
	p, err := startProc(dir, "camsim", filepath.Join(e.bin, "camsim"), nil, func(l string) bool {
		if u, ok := strings.CutPrefix(l, "camsim: ready "); ok {
			url = u
			return true
		}
		return false
	}, 15*time.Minute, "-loadgen", "-listen", "127.0.0.1:0", "-cameras", strconv.Itoa(n),
		"-codec", codec, "-size", size, "-bitrate", bitrate, "-clips", e.clips, "-script", e.script)
	return p, url, err
}

// benchSegment is the segment duration of the ingest runs. The cameras
// start together; without recording.stagger_segments their segments would
// close together ever after, and the work of closing (hashing, uploading,
// indexing) would come in rounds, once per benchSegment, so that a window's
// cost would depend on its phase. The servers stagger, and windows are
// whole numbers of benchSegment all the same (measuredWindow).
const benchSegment = 30 * time.Second

// measuredWindow rounds d up to a whole number of benchSegment.
func measuredWindow(d time.Duration) time.Duration {
	return (d + benchSegment - 1) / benchSegment * benchSegment
}

func (e *ingestEnv) serverConfig(dir, cams string) (string, string, error) {
	addr := freeAddr()
	debug := ""
	if e.uploadWorkers > 0 {
		debug += fmt.Sprintf("upload:\n  workers: %d\n", e.uploadWorkers)
	}
	if e.profileDir != "" {
		pa := freeAddr()
		debug += "debug:\n  pprof_listen: " + pa + "\n"
		e.pprofBase = "http://" + pa
	}
	cfg := fmt.Sprintf(`listen: %s
data_dir: %s
log_level: warn
camera_networks:
  allowed: [127.0.0.0/8, 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16]
recording:
  segment_duration: %s
  stagger_segments: true
auth:
  metrics_token: `+scrapeToken+`
storage:
  s3:
    endpoint: %s
    bucket: bench
    access_key: %s
    secret_key: %s
%s%s`, addr, filepath.Join(dir, "data"), benchSegment, e.minio.Endpoint, e.minio.AccessKey, e.minio.SecretKey, debug, cams)
	path := filepath.Join(dir, "config.yaml")
	return path, "http://" + addr, os.WriteFile(path, []byte(cfg), 0o644)
}

func (e *ingestEnv) startServer(dir, cams string) (*proc, string, error) {
	return e.startServerEnv(dir, cams, nil)
}

// startServerEnv starts a server with env added to -server-env's.
func (e *ingestEnv) startServerEnv(dir, cams string, env []string) (*proc, string, error) {
	cfgPath, base, err := e.serverConfig(dir, cams)
	if err != nil {
		return nil, "", err
	}
	p, err := startProc(dir, "xueliang", filepath.Join(e.bin, "xueliang"), append(slices.Clone(e.serverEnv), env...), nil, 0, "serve", "--config", cfgPath)
	if err != nil {
		return nil, "", err
	}
	if err := waitHTTP(base+"/healthz", 30*time.Second); err != nil {
		p.stop()
		return nil, "", err
	}
	return p, base, nil
}

// measureBase measures the server's RSS with one unreachable camera.
func (e *ingestEnv) measureBase() error {
	if e.rssBase > 0 {
		return nil
	}
	dir, _ := os.MkdirTemp(e.dir, "base-")
	p, _, err := e.startServer(dir, "cameras:\n  - id: dead\n    url: rtsp://127.0.0.1:1/dead\n")
	if err != nil {
		return err
	}
	time.Sleep(5 * time.Second)
	st, err := readProcStat(p.pid())
	p.stop()
	e.rssBase = float64(st.RSS) / (1 << 20)
	return err
}

// minioIdleWindow is how long MinIO's idle CPU is measured before a run.
const minioIdleWindow = 10 * time.Second

// minioIdle returns MinIO's CPU (% of a core) over minioIdleWindow.
func (e *ingestEnv) minioIdle() float64 {
	a, err := readProcStat(e.minio.pid())
	t := time.Now()
	time.Sleep(minioIdleWindow)
	b, err2 := readProcStat(e.minio.pid())
	if err != nil || err2 != nil {
		return 0
	}
	return (b.CPU - a.CPU) / time.Since(t).Seconds() * 100
}

func cameraList(url string, n int) string {
	var b strings.Builder
	b.WriteString("cameras:\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "  - id: cam%d\n    url: %s/cam%d\n", i, url, i)
	}
	return b.String()
}

// runIngest records n cameras for d seconds (after the cameras are up and a
// warm-up), and first measures the receive floor for floorDur when > 0.
func (e *ingestEnv) runIngest(n int, codec, bitrate string, d, floorDur time.Duration) (ingestResult, error) {
	r := ingestResult{Cameras: n, Codec: codec, Bitrate: bitrate, LoadAvg: loadavg()}
	if err := e.measureBase(); err != nil {
		return r, fmt.Errorf("idle base: %w", err)
	}
	r.RSSBaseMiB = e.rssBase
	r.MinioIdleCPUPct = e.minioIdle()
	dir, err := os.MkdirTemp(e.dir, fmt.Sprintf("ingest-%s-%d-", codec, n))
	if err != nil {
		return r, err
	}
	cs, url, err := e.startCamsim(dir, n, codec, bitrate)
	if err != nil {
		return r, err
	}
	defer cs.stop()
	logf("camsim %d × %s %s up at %s (load %s)", n, codec, bitrate, url, loadavg())

	if floorDur > 0 {
		for _, stock := range []bool{true, false} {
			cpu, rss, err := e.floor(dir, url, n, floorDur, stock)
			if err != nil {
				return r, err
			}
			if stock {
				r.StockFloorCPUPctPerCam = cpu
				logf("floor (stock gortsplib reads): %.3f %% of a core per camera", cpu)
				continue
			}
			r.FloorCPUPctPerCam, r.FloorRSSPerCam = cpu, rss
			logf("floor (buffered reads and payload tap, as the pullers): %.3f %% of a core per camera", cpu)
		}
	}

	srv, base, err := e.startServer(dir, cameraList(url, n))
	if err != nil {
		return r, err
	}
	defer srv.stop()
	if err := waitCamerasUp(base, n); err != nil {
		return r, err
	}
	// Steady state: the connection storm is over when the frames recorded
	// in 5 s match what the cameras sent (1 frame per camera + 1 %), so the
	// window measures a server that keeps pace, not one catching up.
	up := time.Now()
	m0, tm0, err := settle(base, n, 60*time.Second)
	if err != nil {
		return r, err
	}
	r.WarmupSeconds, r.Settled = time.Since(up).Seconds(), m0 != nil
	if m0 == nil {
		logf("ingest %d × %s: frame rate not steady after 60 s; measuring anyway", n, codec)
		if m0, tm0, err = scrapeAt(base); err != nil {
			return r, err
		}
	}
	s0, _ := readProcStat(srv.pid())
	c0, _ := readProcStat(cs.pid())
	n0, _ := readProcStat(e.minio.pid())
	io0 := readSysStat(e.disk)
	t0 := time.Now()
	var pending, lag, dirty []float64
	profDone := make(chan string, 1)
	if e.profileDir != "" {
		go func() {
			p := filepath.Join(e.profileDir, fmt.Sprintf("cpu-%s-%d.pprof", codec, n))
			if err := fetchProfile(e.pprofBase, p, 30); err != nil {
				logf("cpu profile: %v", err)
				p = ""
			}
			profDone <- p
		}()
	}
	for time.Since(t0) < d {
		time.Sleep(min(5*time.Second, d-time.Since(t0)))
		if m, err := scrape(base); err == nil {
			pending = append(pending, m["xueliang_upload_pending_segments"])
			lag = append(lag, m["xueliang_spool_oldest_segment_age_seconds"])
		}
		dirty = append(dirty, readSysStat("").dirtyKiB)
	}
	el := time.Since(t0).Seconds()
	s1, _ := readProcStat(srv.pid())
	c1, _ := readProcStat(cs.pid())
	n1, _ := readProcStat(e.minio.pid())
	r.IO = ioBetween(io0, readSysStat(e.disk), e.disk, dirty)
	r.IO.withMount(e.dir)
	m1, tm1, err := scrapeAt(base)
	if err != nil {
		return r, err
	}
	if e.profileDir != "" {
		r.ServerProfileTo = <-profDone
	}
	r.Seconds = el
	r.ServerCPUPctTotal = (s1.CPU - s0.CPU) / el * 100
	r.ServerCPUPctPerCam = r.ServerCPUPctTotal / float64(n)
	r.CamsimCPUPct = (c1.CPU - c0.CPU) / el * 100
	r.MinioCPUPct = (n1.CPU - n0.CPU) / el * 100
	if r.FloorCPUPctPerCam > 0 {
		r.RatioToFloor = r.ServerCPUPctPerCam / r.FloorCPUPctPerCam
	}
	if r.StockFloorCPUPctPerCam > 0 {
		r.RatioToStockFloor = r.ServerCPUPctPerCam / r.StockFloorCPUPctPerCam
	}
	r.RSSMiB = float64(s1.RSS) / (1 << 20)
	r.RSSPerCamMiB = (r.RSSMiB - r.RSSBaseMiB) / float64(n)
	delta := func(k string) float64 { return m1[k] - m0[k] }
	// Frames between the two scrapes (not the CPU window around them).
	r.FramesExpected = float64(n) * 25 * tm1.Sub(tm0).Seconds()
	r.FramesRecorded = delta("xueliang_camera_frames_total")
	r.FramesDeficit = r.FramesExpected - r.FramesRecorded
	r.RTPLost = delta("xueliang_camera_rtp_packets_lost_total")
	r.DroppedFrames = delta("xueliang_recorder_dropped_frames_total")
	r.Reconnects = delta("xueliang_camera_reconnects_total")
	r.UploadedBytes = delta("xueliang_upload_bytes_total")
	r.BacklogStart = m0["xueliang_upload_pending_segments"]
	r.BacklogEnd = m1["xueliang_upload_pending_segments"]
	for _, p := range pending {
		r.BacklogMax = max(r.BacklogMax, p)
	}
	r.WrittenBytes = delta("xueliang_recorder_written_bytes_total")
	if r.WrittenBytes > 0 {
		r.UploadShare = r.UploadedBytes / r.WrittenBytes
	}
	r.UploadWorkers = e.uploadWorkers
	r.BacklogSamples = pending
	r.BacklogGrowing = growth(pending) > segmentsTolerance(n)
	r.LagSamples = lag
	r.LagGrowthSeconds = growth(lag)
	r.LagGrowing = r.LagGrowthSeconds > lagTolerance.Seconds()
	if b, err := os.ReadFile(cs.log); err == nil {
		r.LoadgenLate = strings.Contains(string(b), "load generator is late")
		r.GeneratorQueueFull = strings.Count(string(b), "write queue is full")
	}
	logf("ingest %d × %s: server %.3f %% core/camera (total %.0f %%), rss +%.2f MiB/camera, deficit %.0f frames, rtp lost %.0f (camsim queue full %d), backlog %v→%v, upload lag %+.0f s, uploaded %.0f %% of written (behind %v), warm-up %.0f s, camsim %.0f %%, minio %.0f %% (idle before %.0f %%); %v",
		n, codec, r.ServerCPUPctPerCam, r.ServerCPUPctTotal, r.RSSPerCamMiB, r.FramesDeficit, r.RTPLost, r.GeneratorQueueFull,
		r.BacklogStart, r.BacklogEnd, r.LagGrowthSeconds, 100*r.UploadShare, !r.keepsUp(), r.WarmupSeconds, r.CamsimCPUPct, r.MinioCPUPct, r.MinioIdleCPUPct, r.IO)
	return r, nil
}

// growth is how much the sampled quantity p grew over the window along its
// least-squares line (0 with fewer than 3 samples). With staggered segment
// closes an upload path that keeps up holds the upload backlog at a few
// segments (closes per second × upload time); one that does not adds
// (recorded − uploaded bytes/s) / segment size every second.
func growth(p []float64) float64 {
	if len(p) < 3 {
		return 0
	}
	n := float64(len(p))
	var sx, sy, sxx, sxy float64
	for i, v := range p {
		x := float64(i)
		sx, sy, sxx, sxy = sx+x, sy+v, sxx+x*x, sxy+x*v
	}
	slope := (n*sxy - sx*sy) / (n*sxx - sx*sx) // per sample
	return slope * (n - 1)
}

// segmentsTolerance is the growth, in segments, that counts as falling
// behind: max(5, 5 % of the cameras).
func segmentsTolerance(cams int) float64 { return max(5, float64(cams)/20) }

// settle waits until the frames recorded over 5 s match cams × 25 fps
// (within 1 frame per camera + 1 %) and returns the metrics at that point
// with the time they were taken, or nil when that does not happen within
// limit.
func settle(base string, cams int, limit time.Duration) (map[string]float64, time.Time, error) {
	deadline := time.Now().Add(limit)
	prev, t, err := scrapeAt(base)
	if err != nil {
		return nil, t, err
	}
	for time.Now().Before(deadline) {
		time.Sleep(5 * time.Second)
		m, now, err := scrapeAt(base)
		if err != nil {
			return nil, now, err
		}
		want := float64(cams) * 25 * now.Sub(t).Seconds()
		got := m["xueliang_camera_frames_total"] - prev["xueliang_camera_frames_total"]
		if math.Abs(got-want) <= float64(cams)+0.01*want {
			return m, now, nil
		}
		prev, t = m, now
	}
	return nil, time.Time{}, nil
}

// scrapeAt scrapes the server's metrics and returns them with the time of
// the scrape (the middle of the request: a scrape of hundreds of cameras
// takes tens of milliseconds, which at 25 fps is many frames).
func scrapeAt(base string) (map[string]float64, time.Time, error) {
	t := time.Now()
	m, err := scrape(base)
	return m, t.Add(time.Since(t) / 2), err
}

// floor runs `xlbench floor` against url for d (after 5 s of warm-up) and
// returns its CPU (% of a core per camera) and RSS per camera (MiB).
func (e *ingestEnv) floor(dir, url string, n int, d time.Duration, stock bool) (cpu, rss float64, err error) {
	args := []string{"floor", "-url", url, "-cameras", strconv.Itoa(n)}
	if stock {
		args = append(args, "-stock")
	}
	fl, err := startProc(dir, "floor", e.self, nil, func(l string) bool { return l == "floor: ready" }, 2*time.Minute, args...)
	if err != nil {
		return 0, 0, err
	}
	defer fl.stop()
	time.Sleep(5 * time.Second)
	s0, _ := readProcStat(fl.pid())
	t0 := time.Now()
	time.Sleep(d)
	s1, _ := readProcStat(fl.pid())
	el := time.Since(t0).Seconds()
	return (s1.CPU - s0.CPU) / el / float64(n) * 100, float64(s1.RSS) / (1 << 20) / float64(n), nil
}

// waitCamerasUp polls the server's metrics at base until n cameras are up
// (xueliang_camera_up), for at most 90 s.
func waitCamerasUp(base string, n int) error {
	deadline := time.Now().Add(90 * time.Second)
	for {
		m, err := scrape(base)
		if err == nil && m["xueliang_camera_up"] >= float64(n) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %v of %d cameras up after 90 s", m["xueliang_camera_up"], n)
		}
		time.Sleep(time.Second)
	}
}
