package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestDiskFullServer runs the server with its whole data directory (index,
// spool, local store) on a 24 MiB tmpfs the test mounts, recording four
// simulated cameras, with a free-space floor of 20 MiB: the disk guard
// purges the oldest footage, the server keeps answering (readyz, timeline),
// recording continues after the purge and is never stopped.
func TestDiskFullServer(t *testing.T) {
	t.Parallel() // waits on real time mostly: runs beside the others (Makefile TEST_PARALLEL)
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs (the test runs as root): %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	rtsp, _ := startCamsim(t, "-cameras", "4")
	var cams strings.Builder
	for i := 1; i <= 4; i++ {
		fmt.Fprintf(&cams, "  - id: cam%d\n    url: %s/cam%d\n", i, rtsp, i)
	}
	addr := freeAddr(t)
	cfg := fmt.Sprintf("listen: %s\ndata_dir: %s\n"+testCameraNetworks+"recording:\n  segment_duration: 2s\n  stagger_segments: false\n"+
		"retention:\n  min_free_bytes: 20971520\n  reserve_bytes: 2097152\n  check_interval: 200ms\ncameras:\n%s",
		addr, dir+"/data", cams.String())
	s := &testServer{base: "http://" + addr, dataDir: dir + "/data", cfgPath: dir + "/config.yaml"}
	if err := os.WriteFile(s.cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	s.start(t)
	t.Cleanup(s.proc.stop)

	deadline := time.Now().Add(3 * time.Minute)
	var purgedAt float64
	for {
		m := scrapeMetrics(t, s)
		del, _ := metricSum(m, "xueliang_retention_deleted_objects_total")
		if del > 0 {
			purgedAt, _ = metricSum(m, "xueliang_recorder_written_bytes_total")
			t.Logf("purged %v objects; free %v bytes", del, m["xueliang_disk_free_bytes"])
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no purge: free %v, floor %v", m["xueliang_disk_free_bytes"], m["xueliang_disk_floor_bytes"])
		}
		time.Sleep(500 * time.Millisecond)
	}
	// Recording goes on after the purge; the server answers.
	deadline = time.Now().Add(time.Minute)
	for {
		m := scrapeMetrics(t, s)
		written, _ := metricSum(m, "xueliang_recorder_written_bytes_total")
		if m["xueliang_disk_recording_stopped"] != 0 {
			t.Fatal("recording stopped although unlocked footage was left")
		}
		if written > purgedAt+256<<10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("recording did not continue after the purge (%v → %v bytes)", purgedAt, written)
		}
		time.Sleep(500 * time.Millisecond)
	}
	for _, p := range []string{"/readyz", "/api/v1/cameras/cam1/timeline"} {
		resp, err := http.Get(s.base + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d", p, resp.StatusCode)
		}
	}
	if !s.logContains(t, "emergency purge") {
		t.Error("no emergency purge in the log")
	}
}
