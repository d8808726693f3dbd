package main

// Store-and-forward acceptance tests: footage survives a MinIO outage and a
// kill -9 of the server, and replay from MinIO reads only the ranges it needs.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"xueliang/cmd/xueliang/internal/replay"
	"xueliang/index"
	"xueliang/storage"
	"xueliang/storage/miniotest"
	"xueliang/storage/recording"
	"xueliang/storage/s3"
	"xueliang/storage/spool"
)

func s3Config(m *miniotest.Server, bucket string) string {
	return fmt.Sprintf("storage:\n  s3:\n    endpoint: %s\n    bucket: %s\n    access_key: %s\n    secret_key: %s\n",
		m.Endpoint, bucket, m.AccessKey, m.SecretKey)
}

func cameraList(rtsp string, n int) string {
	var b strings.Builder
	b.WriteString("cameras:\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "  - id: cam%d\n    url: %s/cam%d\n", i, rtsp, i)
	}
	return b.String()
}

func openIndex(t *testing.T, s *testServer) *index.DB {
	t.Helper()
	db, err := index.Open(context.Background(), filepath.Join(s.dataDir, "index.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// waitDrained waits until no closed segment waits for upload.
func waitDrained(t *testing.T, db *index.DB, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		closed, err := db.SegmentsByState(context.Background(), recording.StateClosed)
		if err != nil {
			t.Fatal(err)
		}
		if len(closed) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d closed segments still not uploaded after %v", len(closed), within)
		}
		time.Sleep(time.Second)
	}
}

// checkAllFramesReplayable replays [from, to) of cam with gaps=skip and
// asserts every frame camsim captured in between is there, in order.
func checkAllFramesReplayable(t *testing.T, s *testServer, cam string, from, to time.Time) []judgedFrame {
	t.Helper()
	r := fetchReplay(t, s, cam, from, to, true)
	if len(r.gaps) != 0 {
		t.Fatalf("%s: gaps in [%s, %s): %+v", cam, from.Format(time.RFC3339Nano), to.Format(time.RFC3339Nano), r.gaps)
	}
	j := judgeMP4(t, r.path)
	checkContinuous(t, cam+" whole run", cam, j.Shown)
	return j.Shown
}

func TestMinIOOutage(t *testing.T) {
	t.Parallel() // waits on real time mostly: runs beside the others (Makefile TEST_PARALLEL)
	m := miniotest.Start(t)
	rtsp, _ := startCamsim(t, "-cameras", "4", "-camera", "cam2:codec=h265", "-camera", "cam3:audio=aac", "-camera", "cam4:bframes=on")
	srv := startServer(t, "recording:\n  segment_duration: 10s\n"+s3Config(m, "outage")+cameraList(rtsp, 4))
	db := openIndex(t, srv)

	time.Sleep(25 * time.Second)
	t.Log("stopping MinIO for 120 s")
	m.Stop()
	outageStart := time.Now()

	time.Sleep(60 * time.Second)
	// Replay during the outage works from the spool: the last 20 s were
	// never uploaded.
	for i := 1; i <= 4; i++ {
		cam := fmt.Sprintf("cam%d", i)
		start := time.Now().Add(-25 * time.Second)
		r := fetchReplay(t, srv, cam, start, start.Add(15*time.Second), false)
		j := judgeMP4(t, r.path)
		checkContinuous(t, cam+" during outage", cam, j.Shown)
	}
	closed, err := db.SegmentsByState(context.Background(), recording.StateClosed)
	if err != nil {
		t.Fatal(err)
	}
	if len(closed) < 4*5 {
		t.Fatalf("only %d segments wait for upload during the outage, want ≥ 20", len(closed))
	}
	// The outage is visible: not ready (naming the store), backlog on /metrics.
	if code, body := getReadyz(t, srv); code != 503 || !strings.Contains(body, "store") {
		t.Errorf("readyz during the outage: %d %s", code, body)
	}
	if v, _ := metricSum(scrapeMetrics(t, srv), "xueliang_upload_pending_segments"); v < 20 {
		t.Errorf("upload_pending_segments = %v during the outage, want ≥ 20", v)
	}

	time.Sleep(time.Until(outageStart.Add(120 * time.Second)))
	t.Logf("restarting MinIO; backlog %d segments", len(closed))
	m.Restart()
	waitDrained(t, db, 90*time.Second)
	end := time.Now().Add(-3 * time.Second)
	time.Sleep(2 * time.Second) // readyz caches its answer for up to 1 s
	if code, body := getReadyz(t, srv); code != 200 {
		t.Errorf("readyz after the outage: %d %s", code, body)
	}
	if v, _ := metricSum(scrapeMetrics(t, srv), "xueliang_upload_pending_segments"); v > 4 {
		t.Errorf("upload_pending_segments = %v after the drain", v)
	}

	// Every frame of the whole run is replayable, now from MinIO.
	for i := 1; i <= 4; i++ {
		cam := fmt.Sprintf("cam%d", i)
		segs, err := db.SegmentsInRange(context.Background(), cam, time.Unix(0, 0), end)
		if err != nil || len(segs) == 0 {
			t.Fatalf("%s: segments %v", cam, err)
		}
		frames := checkAllFramesReplayable(t, srv, cam, segs[0].Start, end)
		if got, want := frames[len(frames)-1].Stamp.Captured.Sub(frames[0].Stamp.Captured), end.Sub(segs[0].Start)-time.Second; got < want {
			t.Errorf("%s: replay covers %v, want ≥ %v", cam, got, want)
		}
		for _, sg := range segs {
			if sg.End.Before(end.Add(-15*time.Second)) && sg.State != recording.StateStored {
				t.Errorf("%s: segment %s is %s after the drain", cam, sg.ObjectKey, sg.State)
			}
		}
	}
}

func TestKill9AndRangedReads(t *testing.T) {
	t.Parallel() // waits on real time mostly: runs beside the others (Makefile TEST_PARALLEL)
	m := miniotest.Start(t)
	rtsp, _ := startCamsim(t, "-cameras", "2", "-camera", "cam2:bframes=on")
	srv := startServer(t, "recording:\n  segment_duration: 60s\n"+s3Config(m, "kill9")+cameraList(rtsp, 2))

	time.Sleep(72 * time.Second)
	killed := time.Now()
	t.Log("kill -9 of the server")
	srv.kill9(t)
	time.Sleep(3 * time.Second)
	srv.start(t)
	db := openIndex(t, srv)
	waitDrained(t, db, 60*time.Second)

	for i := 1; i <= 2; i++ {
		cam := fmt.Sprintf("cam%d", i)
		segs, err := db.SegmentsInRange(context.Background(), cam, time.Unix(0, 0), killed)
		if err != nil || len(segs) < 2 {
			t.Fatalf("%s: %d segments before the kill: %v", cam, len(segs), err)
		}
		// All footage before the kill, but the fragment in progress
		// (≤ max_fragment_duration = 2 s), is replayable.
		from := segs[0].Start
		r := fetchReplay(t, srv, cam, from, killed, false)
		j := judgeMP4(t, r.path)
		checkContinuous(t, cam+" before kill", cam, j.Shown)
		lastCaptured := j.Shown[len(j.Shown)-1].Stamp.Captured
		if lost := killed.Sub(lastCaptured); lost > 2*time.Second+frameDur+clockSlack {
			t.Errorf("%s: footage ends %v before the kill, want ≤ one fragment (2 s)", cam, lost)
		} else {
			t.Logf("%s: %v lost at the kill", cam, lost)
		}
	}

	// Index and bucket agree: every row is a stored object of the same size
	// and every object has a row.
	st, err := s3.New(context.Background(), s3.Config{Endpoint: m.Endpoint, Bucket: "kill9", AccessKey: m.AccessKey, SecretKey: m.SecretKey}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rows := map[string]recording.Segment{}
	for i := 1; i <= 2; i++ {
		segs, err := db.SegmentsInRange(context.Background(), fmt.Sprintf("cam%d", i), time.Unix(0, 0), time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		for _, sg := range segs {
			rows[sg.ObjectKey] = sg
		}
	}
	objects := map[string]storage.ObjectInfo{}
	if err := st.List(context.Background(), "", func(o storage.ObjectInfo) error { objects[o.Key] = o; return nil }); err != nil {
		t.Fatal(err)
	}
	for key, sg := range rows {
		o, ok := objects[key]
		switch {
		case sg.State == recording.StateStored && !ok:
			t.Errorf("row %s is stored but the object is missing", key)
		case ok && o.Size != sg.Size:
			t.Errorf("object %s: %d bytes, row says %d", key, o.Size, sg.Size)
		}
	}
	for key := range objects {
		if _, ok := rows[key]; !ok {
			t.Errorf("object %s has no index row", key)
		}
	}

	// Ranged reads: replaying 5 s from the middle of a 60 s object fetches
	// those 5 s plus at most one fragment and the headers, not the object.
	var seg recording.Segment
	for _, sg := range rows {
		if sg.State == recording.StateStored && sg.End.Sub(sg.Start) >= 59*time.Second {
			seg = sg
			break
		}
	}
	if seg.ID == 0 {
		t.Fatal("no stored 60 s segment")
	}
	start := seg.Start.Add(30*time.Second + 321*time.Millisecond)
	end := start.Add(5 * time.Second)
	frags, err := db.Fragments(context.Background(), seg.ID, start, end)
	if err != nil {
		t.Fatal(err)
	}
	var windowBytes, maxFrag int64
	for _, f := range frags {
		windowBytes += f.Size
		maxFrag = max(maxFrag, f.Size)
	}
	rp := &replay.Replayer{Index: db, Reader: spool.Reader{Dir: spool.Dir{Root: filepath.Join(srv.dataDir, "spool")}, Store: st}}
	plan, err := rp.Plan(context.Background(), replay.Request{Camera: seg.CameraID, Start: start, End: end})
	if err != nil {
		t.Fatal(err)
	}
	before := st.Stats()
	if err := rp.Write(context.Background(), plan, io.Discard); err != nil {
		t.Fatal(err)
	}
	after := st.Stats()
	got := after.HTTPBytesIn - before.HTTPBytesIn
	budget := windowBytes + maxFrag + 4096
	t.Logf("replay of 5 s from a %d-byte object fetched %d bytes in %d requests (window fragments %d bytes, budget %d)",
		seg.Size, got, after.HTTPRequests-before.HTTPRequests, windowBytes, budget)
	if got > budget {
		t.Errorf("fetched %d bytes, budget %d", got, budget)
	}
	if got == 0 || got > seg.Size/6 {
		t.Errorf("fetched %d bytes of a %d-byte object", got, seg.Size)
	}
}

func TestSpoolCapWhileMinIODown(t *testing.T) {
	t.Parallel() // waits on real time mostly: runs beside the others (Makefile TEST_PARALLEL)
	m := miniotest.Start(t)
	rtsp, _ := startCamsim(t, "-cameras", "2")
	// ≈100 KB/s per test camera: the two segments being recorded hold up to
	// ≈2 MB, so a 4 MB spool fills ≈10-20 s into the outage.
	srv := startServer(t, "recording:\n  segment_duration: 10s\n"+s3Config(m, "cap")+
		"  spool_max_bytes: 4000000\n"+cameraList(rtsp, 2))
	db := openIndex(t, srv)

	// MinIO goes down once each camera's first segment is stored.
	waitFor(t, 40*time.Second, "a stored segment of each camera", func() bool {
		for _, cam := range []string{"cam1", "cam2"} {
			segs, err := db.SegmentsInRange(context.Background(), cam, time.Unix(0, 0), time.Now())
			if err != nil || len(segs) == 0 || segs[0].State != recording.StateStored {
				return false
			}
		}
		return true
	})
	m.Stop()
	outage := time.Now()
	waitFor(t, 60*time.Second, "spool full log line", func() bool {
		return srv.logContains(t, "spool full, recording paused", "camera=cam1")
	})
	// The server keeps running and serving what it has, and says so on /metrics.
	time.Sleep(5 * time.Second)
	scrape := scrapeMetrics(t, srv)
	if scrape["xueliang_spool_full"] != 1 || scrape["xueliang_spool_refused_writes_total"] < 1 || scrape["xueliang_spool_full_episodes_total"] < 1 {
		t.Errorf("spool full not visible on /metrics: full=%v refused=%v episodes=%v", scrape["xueliang_spool_full"],
			scrape["xueliang_spool_refused_writes_total"], scrape["xueliang_spool_full_episodes_total"])
	}
	var health struct{ Status string }
	if code := getJSON(t, srv.base+"/healthz", &health); code != 200 {
		t.Fatalf("healthz %d while the spool is full", code)
	}
	segs, err := db.SegmentsInRange(context.Background(), "cam1", time.Unix(0, 0), time.Now())
	if err != nil || len(segs) == 0 {
		t.Fatal(err)
	}
	var spans timelineResp
	q := fmt.Sprintf("?from=%s&to=%s", segs[0].Start.UTC().Format(time.RFC3339Nano), time.Now().UTC().Format(time.RFC3339Nano))
	getJSON(t, srv.base+"/api/v1/cameras/cam1/timeline"+q, &spans)
	if len(spans.Spans) == 0 {
		t.Fatalf("no spans: %+v", spans)
	}
	paused := spans.Spans[len(spans.Spans)-1].End
	if paused.Before(outage) || time.Since(paused) < 3*time.Second {
		t.Fatalf("recording should have stopped after the outage began (%s), timeline ends %s", outage.Format(time.RFC3339Nano), paused.Format(time.RFC3339Nano))
	}
	if srv.logContains(t, "spool full, recording paused", "camera=cam1") && paused.Before(outage) {
		t.Fatal("recording paused before the outage")
	}
	// Footage already uploaded cannot be read while MinIO is down: a clean
	// 503, not a broken stream.
	var e struct{ Error string }
	q = fmt.Sprintf("?start=%s&end=%s", segs[0].Start.Add(time.Second).UTC().Format(time.RFC3339Nano), segs[0].Start.Add(3*time.Second).UTC().Format(time.RFC3339Nano))
	if code := getJSON(t, srv.base+"/api/v1/cameras/cam1/replay.mp4"+q, &e); code != 503 || e.Error == "" {
		t.Errorf("replay of uploaded footage while MinIO is down: %d %q, want 503 with a message", code, e.Error)
	}

	m.Restart()
	waitDrained(t, db, 60*time.Second)
	// Nothing received before the pause was lost: every frame is there.
	checkAllFramesReplayable(t, srv, "cam1", segs[0].Start, paused.Add(-50*time.Millisecond))
	waitFor(t, 30*time.Second, "recording resumed log line", func() bool {
		return srv.logContains(t, "spool has room, recording resumed", "camera=cam1")
	})
	time.Sleep(5 * time.Second)
	getJSON(t, srv.base+"/api/v1/cameras/cam1/timeline"+fmt.Sprintf("?from=%s", segs[0].Start.UTC().Format(time.RFC3339Nano)), &spans)
	if last := spans.Spans[len(spans.Spans)-1]; !last.Start.After(paused) || time.Since(last.End) > 3*time.Second {
		t.Fatalf("recording did not resume after the drain: %+v", spans)
	}
}

func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// scrapeMetrics returns every series of /metrics, keyed by its name with
// labels as exposed (e.g. xueliang_camera_up{camera="cam1",township=""}).
func scrapeMetrics(t *testing.T, s *testServer) map[string]float64 {
	t.Helper()
	resp, err := http.Get(s.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("scrape: %d %v", resp.StatusCode, err)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

// metricSum adds up the series of name whose labels contain every one of
// the label matchers (e.g. `camera="cam5"`).
func metricSum(scrape map[string]float64, name string, matchers ...string) (sum float64, found bool) {
	for k, v := range scrape {
		base, labels, _ := strings.Cut(k, "{")
		if base != name {
			continue
		}
		ok := true
		for _, m := range matchers {
			ok = ok && strings.Contains(labels, m)
		}
		if ok {
			sum += v
			found = true
		}
	}
	return sum, found
}

func getReadyz(t *testing.T, s *testServer) (int, string) {
	t.Helper()
	resp, err := http.Get(s.base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
