package metrics

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"xueliang/cmd/xueliang/internal/api"
	"xueliang/cmd/xueliang/internal/compliance"
	"xueliang/cmd/xueliang/internal/replay"
	"xueliang/index"
	"xueliang/ingest"
	"xueliang/ingest/segmenter/segmentertest"
	"xueliang/storage/local"
	"xueliang/storage/spool"
)

// TestMetricsEndToEnd wires the real components the way serve does —
// SQLite index, local store, spool + uploader, ingest.Manager pulling from
// a real RTSP server, replay and the HTTP API — and checks that the series
// move, that promtool accepts a real scrape, and that the Grafana dashboard
// only uses metrics that exist.
func TestMetricsEndToEnd(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()

	db, err := index.Open(ctx, filepath.Join(dir, "index.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	rawStore, err := local.New(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rawStore.Close() })
	spoolDir, err := spool.NewDir(filepath.Join(dir, "spool"))
	if err != nil {
		t.Fatal(err)
	}

	reg := NewRegistry("test-version")
	store := WrapStore(reg, rawStore)
	if _, ok := store.(spool.FilePutter); !ok {
		t.Fatal("WrapStore hides PutFile of the local store")
	}
	if _, ok := store.(spool.HashedFilePutter); !ok {
		t.Fatal("WrapStore hides PutFileSHA256 of the local store")
	}
	idx := WrapIndex(reg, db)
	uploader := spool.NewUploader(spoolDir, store, idx, spool.UploaderConfig{RescanInterval: time.Second}, nil)
	manager := ingest.NewManager(ingest.Options{
		SpoolRoot: spoolDir.Root, Index: idx, OnClosed: uploader.Enqueue,
		BackoffMin: 100 * time.Millisecond, BackoffMax: 300 * time.Millisecond, ReadTimeout: 2 * time.Second,
	})
	townships := map[string]string{"cam1": "xiaozhai", "cam2": "dazhai"}
	reg.MustRegister(
		NewCameraCollector(manager, func(id string) string { return townships[id] }),
		NewUploaderCollector(uploader),
		NewSpoolCollector(DirUsage(spoolDir.Root, 1<<30, time.Millisecond)),
		NewComplianceCollector(compliance.New(compliance.Config{Index: db, GapTolerance: 250 * time.Millisecond,
			Refresh: time.Millisecond}), nil),
	)
	apiServer := &api.Server{
		Index:       db,
		Replayer:    &replay.Replayer{Index: db, Reader: spool.Reader{Dir: spoolDir, Store: store}},
		Metrics:     Handler(reg),
		Registerer:  reg,
		ReadyChecks: []api.ReadyCheck{api.IndexCheck(db), api.StoreCheck(store)},
	}
	hs := httptest.NewServer(apiServer.Handler())
	t.Cleanup(hs.Close)

	clip := segmentertest.ReadTS(t, clipPath)
	cam1, cam2 := startCamera(t, clip), startCamera(t, clip)
	for _, id := range []string{"cam1", "cam2"} {
		if err := db.UpsertCamera(ctx, index.Camera{ID: id, Name: id}); err != nil {
			t.Fatal(err)
		}
	}
	upDone := make(chan error, 1)
	upCtx, stopUp := context.WithCancel(ctx)
	go func() { upDone <- uploader.Run(upCtx) }()
	mgrDone := make(chan error, 1)
	mgrCtx, stopMgr := context.WithCancel(ctx)
	go func() { mgrDone <- manager.Run(mgrCtx) }()
	t.Cleanup(func() {
		stopMgr()
		<-mgrDone
		stopUp()
		<-upDone
	})
	manager.Update([]ingest.CameraConfig{
		{ID: "cam1", URL: cam1.url, SegmentDuration: time.Second},
		{ID: "cam2", URL: cam2.url, SegmentDuration: time.Second},
	})

	metricsURL := hs.URL + "/metrics"
	cam := func(id string) map[string]string { return map[string]string{"camera": id, "township": townships[id]} }
	get := func(name string, labels map[string]string) float64 {
		v, _ := value(func() map[string]*dto.MetricFamily { f, _ := scrape(t, metricsURL); return f }(), name, labels)
		return v
	}

	// Recording: both cameras up, frames and fragments counted, segments
	// uploaded through the instrumented store and index.
	waitFor(t, 30*time.Second, "both cameras up and a segment uploaded", func() bool {
		return get("xueliang_camera_up", cam("cam1")) == 1 && get("xueliang_camera_up", cam("cam2")) == 1 &&
			get("xueliang_upload_segments_total", nil) >= 2
	})
	waitFor(t, 10*time.Second, "bitrate and fps", func() bool {
		return get("xueliang_camera_receive_rate_bytes_per_second", cam("cam1")) > 0 &&
			get("xueliang_camera_frames_per_second", cam("cam1")) > 0
	})
	// gortsplib servers send an RTCP sender report every 10 s; the first
	// one gives the clock offset (both clocks are this host's).
	waitFor(t, 25*time.Second, "clock offset measured", func() bool {
		f, _ := scrape(t, metricsURL)
		_, ok := value(f, "xueliang_camera_clock_offset_seconds", cam("cam1"))
		return ok
	})
	// Compliance: cam1 records since a few seconds, under the default
	// 30-day target.
	waitFor(t, 10*time.Second, "archive days", func() bool {
		return get("xueliang_camera_archive_days", map[string]string{"camera": "cam1"}) > 0
	})
	fams, body := scrape(t, metricsURL)
	if v, ok := value(fams, "xueliang_camera_retention_target_days", map[string]string{"camera": "cam1"}); !ok || v != 30 {
		t.Errorf("retention target %v days (present %v), want 30", v, ok)
	}
	if v, ok := value(fams, "xueliang_camera_archive_days", map[string]string{"camera": "cam1"}); !ok || v > 1 {
		t.Errorf("archive %v days (present %v) after seconds of recording", v, ok)
	}
	if v, ok := value(fams, "xueliang_camera_oldest_footage_timestamp_seconds", map[string]string{"camera": "cam1"}); !ok ||
		v > float64(time.Now().Unix()) || v < float64(time.Now().Add(-time.Hour).Unix()) {
		t.Errorf("oldest footage at %v (present %v)", v, ok)
	}
	if v, _ := value(fams, "xueliang_camera_clock_offset_seconds", cam("cam1")); v < -1 || v > 1 {
		t.Errorf("clock offset %v s between two clocks of one host", v)
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		min    float64
	}{
		{"xueliang_build_info", map[string]string{"version": "test-version"}, 1},
		{"xueliang_camera_connection_attempts_total", cam("cam1"), 1},
		{"xueliang_camera_rtp_packets_received_total", cam("cam1"), 10},
		{"xueliang_camera_received_bytes_total", cam("cam1"), 1000},
		{"xueliang_camera_frames_total", cam("cam1"), 10},
		{"xueliang_recorder_fragments_total", cam("cam1"), 1},
		{"xueliang_recorder_segments_total", cam("cam1"), 1},
		{"xueliang_upload_duration_seconds", nil, 2},
		{"xueliang_upload_bytes_total", nil, 1000},
		{"xueliang_index_write_duration_seconds", map[string]string{"op": "create_segment"}, 2},
		{"xueliang_index_write_duration_seconds", map[string]string{"op": "add_fragments"}, 1},
		{"xueliang_index_write_duration_seconds", map[string]string{"op": "mark_stored"}, 1},
		{"xueliang_spool_capacity_bytes", nil, 1 << 30},
		{"xueliang_spool_filesystem_size_bytes", nil, 1},
		{"go_goroutines", nil, 1},
		{"process_start_time_seconds", nil, 1},
	} {
		if v, ok := value(fams, c.name, c.labels); !ok || v < c.min {
			t.Errorf("%s%v = %v (present %v), want >= %v", c.name, c.labels, v, ok, c.min)
		}
	}
	if v, ok := value(fams, "xueliang_camera_last_keyframe_age_seconds", cam("cam1")); !ok || v > 5 {
		t.Errorf("last keyframe age %v (present %v)", v, ok)
	}
	if v, _ := value(fams, "xueliang_camera_connection_failures_total", map[string]string{"camera": "cam1", "reason": "stream"}); v != 0 {
		t.Errorf("stream failures before any drop: %v", v)
	}
	checkNoForbiddenLabels(t, string(body))
	// docs/operations.md's cardinality estimate relies on these counts.
	perCamera, fixed := 0, 0
	for _, f := range fams {
		for _, m := range f.Metric {
			n := 1
			if h := m.GetHistogram(); h != nil {
				n = len(h.GetBucket()) + 3 // buckets, +Inf, sum, count
			}
			if s := m.GetSummary(); s != nil {
				n = len(s.GetQuantile()) + 2
			}
			isCam1 := false
			for _, l := range m.Label {
				isCam1 = isCam1 || l.GetName() == "camera" && l.GetValue() == "cam1"
			}
			switch {
			case isCam1:
				perCamera += n
			case !slices.ContainsFunc(m.Label, func(l *dto.LabelPair) bool { return l.GetName() == "camera" }):
				fixed += n
			}
		}
	}
	t.Logf("series: %d per camera, %d fixed", perCamera, fixed)
	if perCamera != 29 {
		t.Errorf("%d series per camera; update the cardinality estimate in docs/operations.md", perCamera)
	}
	if fixed > 300 {
		t.Errorf("%d fixed series; update the cardinality estimate in docs/operations.md", fixed)
	}

	t.Run("promtool check metrics", func(t *testing.T) {
		// The only lint findings accepted: the two compliance gauges are in
		// days by design (issue #18: retention targets are set and read in
		// days), which promtool's base-unit lint flags. Anything else fails.
		cmd := exec.Command(promtool(t), "check", "metrics")
		cmd.Stdin = bytes.NewReader(body)
		out, err := cmd.CombinedOutput()
		t.Logf("promtool check metrics: %s", out)
		allowed := []string{
			`xueliang_camera_archive_days use base unit "seconds" instead of "days"`,
			`xueliang_camera_retention_target_days use base unit "seconds" instead of "days"`,
		}
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if l = strings.TrimSpace(l); l != "" && !slices.Contains(allowed, l) {
				t.Errorf("promtool check metrics: %s", l)
			}
		}
		if err != nil && cmd.ProcessState.ExitCode() != 3 {
			t.Errorf("promtool check metrics: %v", err)
		}
	})
	t.Run("grafana dashboard", func(t *testing.T) {
		checkDashboard(t, "../../../../configs/grafana/xueliang.json", exposedNames(fams))
	})

	// The camera drops the connection: reconnects and stream failures
	// increase, and the camera comes back up.
	reconnects := get("xueliang_camera_reconnects_total", cam("cam1"))
	attempts := get("xueliang_camera_connection_attempts_total", cam("cam1"))
	cam1.kick()
	waitFor(t, 20*time.Second, "cam1 reconnect counted and back up", func() bool {
		f, _ := scrape(t, metricsURL)
		r, _ := value(f, "xueliang_camera_reconnects_total", cam("cam1"))
		a, _ := value(f, "xueliang_camera_connection_attempts_total", cam("cam1"))
		up, _ := value(f, "xueliang_camera_up", cam("cam1"))
		return r > reconnects && a > attempts && up == 1
	})
	if v, _ := value(func() map[string]*dto.MetricFamily { f, _ := scrape(t, metricsURL); return f }(),
		"xueliang_camera_connection_failures_total", map[string]string{"camera": "cam1", "reason": "stream"}); v < 1 {
		t.Errorf("stream failures after a drop: %v", v)
	}
	if get("xueliang_camera_reconnects_total", cam("cam2")) != 0 {
		t.Error("cam2 counted a reconnect it did not have")
	}

	// Replay through the API: requests and time to first byte observed.
	spans, _, err := db.Timeline(ctx, "cam1", time.Now().Add(-time.Hour), time.Now(), 250*time.Millisecond)
	if err != nil || len(spans) == 0 {
		t.Fatalf("timeline: %v, %d spans", err, len(spans))
	}
	q := url.Values{"start": {spans[0].Start.Format(time.RFC3339Nano)},
		"end": {spans[0].Start.Add(time.Second).Format(time.RFC3339Nano)}}
	resp, err := http.Get(hs.URL + "/api/v1/cameras/cam1/replay.mp4?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	n, _ := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || n == 0 {
		t.Fatalf("replay: %s, %d bytes", resp.Status, n)
	}
	resp, err = http.Get(hs.URL + "/api/v1/cameras/cam1/replay.mp4?start=bad")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	fams, _ = scrape(t, metricsURL)
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"xueliang_replay_requests_total", map[string]string{"code": "200"}, 1},
		{"xueliang_replay_requests_total", map[string]string{"code": "400"}, 1},
		{"xueliang_replay_time_to_first_byte_seconds", nil, 1},
		{"xueliang_replay_duration_seconds", nil, 2},
		{"xueliang_replay_sent_bytes_total", nil, float64(n)},
	} {
		if v, _ := value(fams, c.name, c.labels); v != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, v, c.want)
		}
	}

	// Readiness: index and store answer.
	if code, _ := getJSON(t, hs.URL+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz = %d before any failure", code)
	}

	// A camera that stops: up goes to 0, the other camera stays up.
	cam2.close()
	waitFor(t, 20*time.Second, "cam2 down", func() bool {
		return get("xueliang_camera_up", cam("cam2")) == 0
	})
	if get("xueliang_camera_up", cam("cam1")) != 1 {
		t.Error("cam1 went down with cam2")
	}
	waitFor(t, 20*time.Second, "cam2 connect failures counted", func() bool {
		f, _ := scrape(t, metricsURL)
		v, _ := value(f, "xueliang_camera_connection_failures_total", map[string]string{"camera": "cam2", "reason": "connect"})
		return v >= 1
	})
	if v := get("xueliang_camera_receive_rate_bytes_per_second", cam("cam2")); v != 0 {
		t.Errorf("bitrate of a stopped camera: %v", v)
	}

	// The index goes away: /readyz answers 503 naming it (after the cache).
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	code, out := getJSON(t, hs.URL+"/readyz")
	failed, _ := out["failed"].(map[string]any)
	if code != http.StatusServiceUnavailable || failed["index"] == nil || failed["store"] != nil {
		t.Errorf("/readyz after closing the index = %d %v", code, out)
	}
}

func getJSON(t *testing.T, u string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	return resp.StatusCode, out
}

// checkNoForbiddenLabels fails when a xueliang series carries a label
// outside the bounded set, or a value that looks like a URL.
func checkNoForbiddenLabels(t *testing.T, exposition string) {
	t.Helper()
	allowed := map[string]bool{"camera": true, "township": true, "reason": true, "op": true, "code": true,
		"le": true, "version": true, "goversion": true}
	lbl := regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="([^"]*)"`)
	for _, line := range strings.Split(exposition, "\n") {
		if !strings.HasPrefix(line, "xueliang_") {
			continue
		}
		for _, m := range lbl.FindAllStringSubmatch(line, -1) {
			if !allowed[m[1]] {
				t.Errorf("unexpected label %s in %s", m[1], line)
			}
			if strings.Contains(m[2], "://") {
				t.Errorf("URL in a label value: %s", line)
			}
		}
	}
}
