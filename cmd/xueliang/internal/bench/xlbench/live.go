package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// liveResult is the live view part: one server recording Cameras cameras
// into MinIO, and phases that each add viewers for a window after a window
// without any (the same server, just before), so that the CPU a viewer
// costs is the difference of two windows of one run.
type liveResult struct {
	Cameras int     `json:"cameras"`
	Codec   string  `json:"codec"`
	Bitrate string  `json:"bitrate"`
	Size    string  `json:"size"`
	LoadAvg string  `json:"loadavg_before"`
	Window  float64 `json:"window_seconds"`
	// Over the whole run, from the settled server to the end of the last
	// phase: the recording's RTP loss, recorder drops and reconnects.
	RTPLost       float64     `json:"rtp_packets_lost"`
	DroppedFrames float64     `json:"recorder_dropped_frames"`
	Reconnects    float64     `json:"reconnects"`
	FramesDeficit float64     `json:"frames_deficit"`
	FramesExpect  float64     `json:"frames_expected"`
	Phases        []livePhase `json:"phases"`
}

// livePhase is one viewer load.
type livePhase struct {
	Protocol  string `json:"protocol"` // mse or webrtc
	Cameras   int    `json:"cameras"`  // viewed cameras cam1..camN
	PerCamera int    `json:"viewers_per_camera"`
	Viewers   int    `json:"viewers"`
	LoadAvg   string `json:"loadavg_before"`
	// Server CPU (% of a core) in the window without viewers and in the one
	// with them; PerViewer = (With − Base) / Viewers.
	ServerCPUBase  float64 `json:"server_cpu_pct_core_without_viewers"`
	ServerCPUWith  float64 `json:"server_cpu_pct_core_with_viewers"`
	CPUPerViewer   float64 `json:"server_cpu_pct_core_per_viewer"`
	ViewersCPU     float64 `json:"viewer_process_cpu_pct_core"`
	CPUSomeBasePct float64 `json:"cpu_pressure_some_pct_without_viewers"`
	CPUSomeWithPct float64 `json:"cpu_pressure_some_pct_with_viewers"`
	// Client side (capture stamp → receipt, same host clock).
	Report viewerReport `json:"clients"`
	// Server side over the window with viewers.
	ServerDrops float64 `json:"server_viewer_drops"`
	SentMbps    float64 `json:"server_sent_mbit_s"`
	RTPLost     float64 `json:"rtp_packets_lost"`
	GoalP99ms   float64 `json:"goal_latency_ms"`
	Err         string  `json:"error,omitempty"`
}

// liveGoal is the latency goal per protocol (loopback).
func liveGoal(proto string) float64 {
	if proto == "webrtc" {
		return 200
	}
	return 500
}

// liveLoad is a phase to run: proto viewers, per on each of cam1..camN.
type liveLoad struct {
	proto string
	cams  int
	per   int
}

// runLive records n cameras and runs the viewer loads one after the other,
// each a window without viewers followed by one with them.
func (e *ingestEnv) runLive(n int, loads []liveLoad, window time.Duration) (liveResult, error) {
	const codec, bitrate, size = "h264", "2M", "1920x1080"
	r := liveResult{Cameras: n, Codec: codec, Bitrate: bitrate, Size: size, LoadAvg: loadavg(), Window: window.Seconds()}
	dir, err := os.MkdirTemp(e.dir, fmt.Sprintf("live-%d-", n))
	if err != nil {
		return r, err
	}
	cs, url, err := e.startCamsimSize(dir, n, codec, bitrate, size)
	if err != nil {
		return r, err
	}
	defer cs.stop()
	token := "xlbench-live-" + randHex(16)
	srv, base, err := e.startServerEnv(dir, cameraList(url, n), []string{"XUELIANG_BOOTSTRAP_TOKEN=" + token})
	if err != nil {
		return r, err
	}
	defer srv.stop()
	if err := waitCamerasUp(base, n); err != nil {
		return r, err
	}
	m0, tm0, err := settle(base, n, 60*time.Second)
	if err != nil {
		return r, err
	}
	if m0 == nil {
		logf("live: frame rate not steady after 60 s; measuring anyway")
		if m0, tm0, err = scrapeAt(base); err != nil {
			return r, err
		}
	}
	logf("live: %d cameras recorded (%s %s %s), load %s", n, codec, size, bitrate, loadavg())
	for _, l := range loads {
		p := e.livePhase(dir, srv, base, token, l, window)
		if p.Err != "" {
			logf("live %s %d × %d: %s", p.Protocol, p.Cameras, p.PerCamera, p.Err)
		}
		r.Phases = append(r.Phases, p)
	}
	m1, tm1, err := scrapeAt(base)
	if err != nil {
		return r, err
	}
	delta := func(k string) float64 { return m1[k] - m0[k] }
	r.RTPLost = delta("xueliang_camera_rtp_packets_lost_total")
	r.DroppedFrames = delta("xueliang_recorder_dropped_frames_total")
	r.Reconnects = delta("xueliang_camera_reconnects_total")
	r.FramesExpect = float64(n) * 25 * tm1.Sub(tm0).Seconds()
	r.FramesDeficit = r.FramesExpect - delta("xueliang_camera_frames_total")
	logf("live: recording over the run: rtp lost %.0f, recorder drops %.0f, reconnects %.0f, frames deficit %.0f of %.0f",
		r.RTPLost, r.DroppedFrames, r.Reconnects, r.FramesDeficit, r.FramesExpect)
	return r, nil
}

// livePhase measures the server without viewers for window, then starts
// the viewers (`xlbench viewers`, a process of its own), waits until each
// has a frame and 5 s more, and measures the window with them.
func (e *ingestEnv) livePhase(dir string, srv *proc, base, token string, l liveLoad, window time.Duration) livePhase {
	p := livePhase{Protocol: l.proto, Cameras: l.cams, PerCamera: l.per, Viewers: l.cams * l.per, GoalP99ms: liveGoal(l.proto), LoadAvg: loadavg()}
	cpuWindow := func() (float64, float64, error) {
		s0, err := readProcStat(srv.pid())
		io0 := readSysStat("")
		t0 := time.Now()
		time.Sleep(window)
		s1, err2 := readProcStat(srv.pid())
		io1 := readSysStat("")
		if err == nil {
			err = err2
		}
		return (s1.CPU - s0.CPU) / time.Since(t0).Seconds() * 100, ioBetween(io0, io1, "", nil).CPUSomePct, err
	}
	var err error
	if p.ServerCPUBase, p.CPUSomeBasePct, err = cpuWindow(); err != nil {
		p.Err = err.Error()
		return p
	}
	name := fmt.Sprintf("viewers-%s-%dx%d", l.proto, l.cams, l.per)
	vw, err := startProc(dir, name, e.self, nil, func(s string) bool { return s == "viewers: ready" }, 2*time.Minute,
		"viewers", "-base", base, "-token", token, "-proto", l.proto, "-cameras", strconv.Itoa(l.cams), "-per", strconv.Itoa(l.per))
	if err != nil {
		p.Err = err.Error()
		return p
	}
	defer vw.stop()
	time.Sleep(5 * time.Second)
	m0, err := scrape(base)
	if err != nil {
		p.Err = err.Error()
		return p
	}
	v0, _ := readProcStat(vw.pid())
	_ = vw.cmd.Process.Signal(syscall.SIGUSR1)
	t0 := time.Now()
	p.ServerCPUWith, p.CPUSomeWithPct, err = cpuWindow()
	v1, _ := readProcStat(vw.pid())
	el := time.Since(t0).Seconds()
	m1, err2 := scrape(base)
	if err == nil {
		err = err2
	}
	if err != nil {
		p.Err = err.Error()
		return p
	}
	p.ViewersCPU = (v1.CPU - v0.CPU) / el * 100
	vw.stop()
	rep, err := readViewerReport(vw.log)
	if err != nil {
		p.Err = err.Error()
		return p
	}
	p.Report = rep
	p.CPUPerViewer = (p.ServerCPUWith - p.ServerCPUBase) / float64(p.Viewers)
	p.ServerDrops = m1["xueliang_live_viewer_drops_total"] - m0["xueliang_live_viewer_drops_total"]
	p.SentMbps = (m1["xueliang_live_sent_bytes_total"] - m0["xueliang_live_sent_bytes_total"]) * 8 / 1e6 / el
	p.RTPLost = m1["xueliang_camera_rtp_packets_lost_total"] - m0["xueliang_camera_rtp_packets_lost_total"]
	logf("live %s %d cameras × %d viewers: server %.1f %% → %.1f %% core (%.3f %% per viewer; viewers process %.0f %%), latency p50 %.0f ms p99 %.0f ms (%d frames, %d missed, %d/%d connected, %d failed), server drops %.0f, sent %.0f Mbit/s, rtp lost %.0f",
		l.proto, l.cams, l.per, p.ServerCPUBase, p.ServerCPUWith, p.CPUPerViewer, p.ViewersCPU, rep.P50ms, rep.P99ms, rep.Frames, rep.Missed, rep.Connected, rep.Viewers, rep.Failed,
		p.ServerDrops, p.SentMbps, p.RTPLost)
	return p
}

// readViewerReport reads the "viewers: result" line of a viewers log.
func readViewerReport(path string) (viewerReport, error) {
	var rep viewerReport
	b, err := os.ReadFile(path)
	if err != nil {
		return rep, err
	}
	for l := range strings.SplitSeq(string(b), "\n") {
		if js, ok := strings.CutPrefix(l, "viewers: result "); ok {
			return rep, json.Unmarshal([]byte(js), &rep)
		}
	}
	return rep, fmt.Errorf("no result in %s", path)
}
