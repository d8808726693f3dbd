package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"xueliang/cmd/xueliang/internal/cameras"
	"xueliang/cmd/xueliang/internal/registry"
	"xueliang/index"
	"xueliang/storage/recording"
)

// TestPatchNewHostDropsPassword (issue #22 point 2): an installer who
// points a camera's main_url at a host of theirs does not receive the
// stored password; the change and the drop are audited.
func TestPatchNewHostDropsPassword(t *testing.T) {
	ctx := context.Background()
	f := newAuthFixture(t)
	sealer, err := registry.NewSealer(bytes.Repeat([]byte{5}, registry.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	svc := &cameras.Service{Store: f.db, Sealer: sealer}
	f.s.Cameras = svc
	h := f.s.Handler()
	tok := f.token(t, installer)
	const id = "41142600001320000001"
	create := map[string]any{"id": id, "township": "会亭镇", "village": "张庄村", "main_url": "rtsp://10.1.1.1/main",
		"sub_url": "rtsp://10.1.1.1/sub", "username": "admin", "password": regSecret}
	if rec := do(t, h, "POST", "/api/v1/cameras", tok, create); rec.Code != 201 {
		t.Fatalf("create: %d %s", rec.Code, rec.Body)
	}
	url := func() string {
		t.Helper()
		cfgs, err := svc.IngestConfigs(ctx)
		if err != nil || len(cfgs) != 1 {
			t.Fatalf("ingest configs %v %v", cfgs, err)
		}
		return cfgs[0].URL
	}
	for _, tc := range []struct {
		name  string
		patch map[string]any
		keeps bool
	}{
		{"rename", map[string]any{"name": "村口"}, true},
		{"same endpoint, other path and explicit default port", map[string]any{"main_url": "rtsp://10.1.1.1:554/other"}, true},
		{"main to the old sub's endpoint", map[string]any{"main_url": "rtsp://10.1.1.1/sub2"}, true},
		{"new host", map[string]any{"main_url": "rtsp://203.0.113.9/main"}, false},
		{"new port", map[string]any{"main_url": "rtsp://10.1.1.1:8554/main"}, false},
		{"new sub host", map[string]any{"sub_url": "rtsp://203.0.113.9/sub"}, false},
		{"rtsps to rtsp", map[string]any{"main_url": "rtsp://10.1.1.1:322/main"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Start each case from the camera with its password.
			reset := map[string]any{"main_url": "rtsp://10.1.1.1/main", "sub_url": "rtsp://10.1.1.1/sub", "password": regSecret}
			if tc.name == "rtsps to rtsp" {
				reset["main_url"] = "rtsps://10.1.1.1/main"
			}
			if rec := do(t, h, "PATCH", "/api/v1/cameras/"+id, tok, reset); rec.Code != 200 {
				t.Fatalf("reset: %d %s", rec.Code, rec.Body)
			}
			rec := do(t, h, "PATCH", "/api/v1/cameras/"+id, tok, tc.patch)
			if rec.Code != 200 {
				t.Fatalf("patch: %d %s", rec.Code, rec.Body)
			}
			hasPass := strings.Contains(rec.Body.String(), `"has_password":true`)
			sent := strings.Contains(url(), "Hik-Secret")
			if hasPass != tc.keeps || sent != tc.keeps {
				t.Fatalf("has_password=%v, password in the ingest URL=%v, want %v (%s)", hasPass, sent, tc.keeps, rec.Body)
			}
			recs, err := f.db.QueryAudit(ctx, index.AuditQuery{Camera: id, Limit: 1})
			if err != nil || len(recs) != 1 || recs[0].Method != "PATCH" {
				t.Fatalf("audit %+v %v", recs, err)
			}
			d := recs[0].Detail
			if strings.Contains(d, "password dropped") == tc.keeps || strings.Contains(d, "endpoint changed") == tc.keeps {
				t.Fatalf("audit detail %q (keeps=%v)", d, tc.keeps)
			}
			if strings.Contains(d, regSecret) {
				t.Fatalf("audit detail has the password: %q", d)
			}
		})
	}
	// A new host with the password given again keeps it (the installer
	// knows it).
	rec := do(t, h, "PATCH", "/api/v1/cameras/"+id, tok, map[string]any{"main_url": "rtsp://10.9.9.9/main", "password": regSecret})
	if rec.Code != 200 || !strings.Contains(url(), "Hik-Secret") {
		t.Fatalf("new host with password: %d %s", rec.Code, rec.Body)
	}
}

// blockingMotion is the index with a motion scan that waits for release.
type blockingMotion struct {
	*index.DB
	started chan struct{}
	release chan struct{}
}

func (b *blockingMotion) ScanMotion(ctx context.Context, camera string, from, to time.Time, mask *[recording.MotionSummaryWords]uint64, fn func(recording.MotionChunk) error) error {
	b.started <- struct{}{}
	select {
	case <-b.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return b.DB.ScanMotion(ctx, camera, from, to, mask, fn)
}

// TestMotionSearchLimits (issue #22 point 4): one user runs at most
// MotionPerUser searches at once (429 beyond, counted), and a search ends
// at its deadline with 503.
func TestMotionSearchLimits(t *testing.T) {
	db, m0 := motionFixture(t)
	bm := &blockingMotion{DB: db, started: make(chan struct{}, 4), release: make(chan struct{})}
	reg := prometheus.NewRegistry()
	s := &Server{Index: bm, Registerer: reg, Limits: Limits{MotionPerUser: 1}}
	h := s.Handler()
	body := map[string]any{"from": m0, "to": m0.Add(10 * time.Minute)}
	first := make(chan int, 1)
	go func() { first <- postJSON(t, h, "/api/v1/cameras/cam1/motion/search", body, nil) }()
	<-bm.started
	if code := postJSON(t, h, "/api/v1/cameras/cam2/motion/search", body, nil); code != http.StatusTooManyRequests {
		t.Fatalf("second concurrent search of the same user: %d, want 429", code)
	}
	close(bm.release)
	if code := <-first; code != 200 {
		t.Fatalf("first search: %d", code)
	}
	if code := postJSON(t, h, "/api/v1/cameras/cam2/motion/search", body, nil); code != 200 {
		t.Fatalf("search after the first ended: %d", code)
	}
	if v := testutil.ToFloat64(s.m.limited.WithLabelValues(kindMotion)); v != 1 {
		t.Errorf("limited counter %v, want 1", v)
	}

	// A deadline that has passed before the scan: 503, counted.
	s2 := &Server{Index: db, Limits: Limits{MotionDeadline: time.Nanosecond}}
	h2 := s2.Handler()
	for _, path := range []string{"/api/v1/cameras/cam1/motion/search", "/api/v1/motion/search"} {
		b := map[string]any{"from": m0, "to": m0.Add(10 * time.Minute)}
		if path == "/api/v1/motion/search" {
			b["cameras"] = []string{"cam1", "cam2"}
		}
		if code := postJSON(t, h2, path, b, nil); code != http.StatusServiceUnavailable {
			t.Fatalf("%s past its deadline: %d, want 503", path, code)
		}
	}
	if v := testutil.ToFloat64(s2.m.deadlines.WithLabelValues(kindMotion)); v != 2 {
		t.Errorf("deadline counter %v, want 2", v)
	}
}

// TestLimitedPerUser: the limit is per user (another user is not held
// back) and applies to replay through guard.
func TestLimitedPerUser(t *testing.T) {
	f := newAuthFixture(t)
	f.s.Limits = Limits{ReplayPerUser: 2}
	f.s.Handler()
	started, release := make(chan struct{}, 8), make(chan struct{})
	rt := Route{"GET", "/api/v1/cameras/{id}/replay.mp4", ActReplay}
	mux := http.NewServeMux()
	mux.Handle(rt.Method+" "+rt.Path, f.s.guard(rt, f.s.limited(kindReplay, func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-release
		w.WriteHeader(200)
	})))
	op, ad := f.token(t, operator), f.token(t, admin)
	codes := make(chan int, 2)
	for range 2 {
		go func() { codes <- do(t, mux, "GET", "/api/v1/cameras/camA/replay.mp4", op, nil).Code }()
		<-started
	}
	if c := do(t, mux, "GET", "/api/v1/cameras/camA/replay.mp4", op, nil).Code; c != http.StatusTooManyRequests {
		t.Fatalf("third replay of the operator: %d, want 429", c)
	}
	go func() { codes <- do(t, mux, "GET", "/api/v1/cameras/camA/replay.mp4", ad, nil).Code }()
	<-started // the admin is not held back by the operator's replays
	close(release)
	for range 3 {
		if c := <-codes; c != 200 {
			t.Fatalf("replay: %d", c)
		}
	}
	recs, err := f.db.QueryAudit(context.Background(), index.AuditQuery{User: f.users[operator], Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range recs {
		found = found || r.Status == 429 && strings.Contains(r.Detail, "in progress")
	}
	if !found {
		t.Errorf("the 429 is not audited: %+v", recs)
	}
}

// TestReplayOutlivesReadTimeout (issue #22 point 4): the server's
// ReadTimeout (which cancels a request whose connection read times out)
// does not cut a replay that streams for longer.
func TestReplayOutlivesReadTimeout(t *testing.T) {
	s := &Server{}
	s.Handler()
	const chunks = 8
	h := s.limited(kindReplay, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "video/mp4")
		for i := range chunks {
			select {
			case <-r.Context().Done():
				return // as replay does: the stream ends with the context
			case <-time.After(100 * time.Millisecond):
			}
			fmt.Fprintf(w, "chunk%d;", i)
			http.NewResponseController(w).Flush()
		}
	})
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ReadTimeout = 200 * time.Millisecond // a quarter of the stream
	srv.Start()
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), fmt.Sprintf("chunk%d;", chunks-1)) {
		t.Fatalf("the stream was cut: %q", b)
	}
}

// TestReplayWriteStall (issue #22 point 4): a client that stops reading
// loses its replay after WriteStall instead of holding it for ever.
func TestReplayWriteStall(t *testing.T) {
	s := &Server{Limits: Limits{WriteStall: 300 * time.Millisecond}}
	s.Handler()
	done := make(chan error, 1)
	h := s.limited(kindReplay, func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 64<<10)
		for {
			if _, err := w.Write(buf); err != nil {
				done <- err
				return
			}
		}
	})
	srv := httptest.NewServer(h)
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n") // and never read
	select {
	case err := <-done:
		t.Logf("the stalled replay ended: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("a client that reads nothing still holds its replay after 60 s")
	}
}

// TestConnLimiter (issue #22 point 4): beyond the cap a connection is
// closed at once and counted; closing one frees its place.
func TestConnLimiter(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := LimitListener(ln, 2)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })}
	go srv.Serve(cl)
	defer srv.Close()
	get := func(c net.Conn) error {
		if _, err := fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			return err
		}
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		_, err := http.ReadResponse(bufio.NewReader(c), nil)
		return err
	}
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := get(c); err != nil { // keep-alive: the connection stays open
			t.Fatal(err)
		}
		held = append(held, c)
	}
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if err := get(c); err == nil {
		t.Fatal("a third connection was served over a cap of 2")
	}
	c.Close()
	if cl.Refused() != 1 || cl.Open() != 2 {
		t.Fatalf("refused %d open %d, want 1 and 2", cl.Refused(), cl.Open())
	}
	held[0].Close()
	for deadline := time.Now().Add(30 * time.Second); cl.Open() != 1; {
		if time.Now().After(deadline) {
			t.Fatalf("open %d after a close", cl.Open())
		}
		time.Sleep(10 * time.Millisecond)
	}
	c, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := get(c); err != nil {
		t.Fatalf("after a close: %v", err)
	}
}

func TestMergeNewest(t *testing.T) {
	at := func(min int, cam string) motionIntervalJSON {
		return motionIntervalJSON{Camera: cam, Start: time.Date(2026, 1, 1, 0, min, 0, 0, time.UTC)}
	}
	a := []motionIntervalJSON{at(9, "a"), at(5, "a"), at(1, "a")}
	b := []motionIntervalJSON{at(9, "b"), at(7, "b"), at(2, "b")}
	got, cut := mergeNewest(a, b, 4)
	want := []string{"09a", "09b", "07b", "05a"}
	for i, w := range want {
		if fmt.Sprintf("%02d%s", got[i].Start.Minute(), got[i].Camera) != w {
			t.Fatalf("merged %v, want %v", got, want)
		}
	}
	if len(got) != 4 || !cut {
		t.Fatalf("%d intervals, cut=%v", len(got), cut)
	}
	if got, cut := mergeNewest(a, nil, 3); len(got) != 3 || cut {
		t.Fatalf("exact fit: %d %v", len(got), cut)
	}
}

// TestTimelineLost (issue #22 point 8): a segment reconciliation marked
// lost leaves the spans (a gap: it cannot be replayed) and is listed as
// lost on the timeline.
func TestTimelineLost(t *testing.T) {
	ctx := context.Background()
	db, m0 := motionFixture(t)
	var ids []int64
	for i := range 3 {
		seg := recording.Segment{CameraID: "cam1", Start: m0.Add(time.Duration(i) * time.Minute),
			ObjectKey: recording.SegmentKey("cam1", m0.Add(time.Duration(i)*time.Minute))}
		if err := db.CreateSegment(ctx, &seg); err != nil {
			t.Fatal(err)
		}
		if err := db.FinishSegment(ctx, seg.ID, seg.Start.Add(time.Minute), 100, "ab"); err != nil {
			t.Fatal(err)
		}
		if err := db.MarkStored(ctx, seg.ID); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, seg.ID)
	}
	at := m0.Add(2 * time.Hour)
	if err := db.MarkLost(ctx, ids[1], at); err != nil {
		t.Fatal(err)
	}
	s := &Server{Index: db, Now: func() time.Time { return m0.Add(time.Hour) }}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/cameras/cam1/timeline?from="+m0.Format(time.RFC3339)+"&to="+m0.Add(time.Hour).Format(time.RFC3339), nil))
	var out timelineJSON
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || rec.Code != 200 {
		t.Fatalf("%d %s %v", rec.Code, rec.Body, err)
	}
	if len(out.Lost) != 1 || !out.Lost[0].Start.Equal(m0.Add(time.Minute)) || !out.Lost[0].End.Equal(m0.Add(2*time.Minute)) ||
		!out.Lost[0].MarkedAt.Equal(at) {
		t.Fatalf("lost %+v", out.Lost)
	}
	if len(out.Spans) != 2 {
		t.Fatalf("spans %+v: the lost minute must be a gap", out.Spans)
	}
}

// TestCameraClockStatus (issue #22 point 6): the camera API shows a camera
// whose clock was refused, and the measured offset.
func TestCameraClockStatus(t *testing.T) {
	_, svc := newRegistryServer(t) // the registry with config camera cam1
	s := &Server{Index: svc.Store.(*index.DB), Cameras: svc, Pullers: fakePullers{"cam1": {Connected: true, ClockUntrusted: true,
		ClockOffset: 8 * time.Hour, ClockOffsetKnown: true}}}
	h := s.Handler()
	code, out := call(t, h, "GET", "/api/v1/cameras/cam1", "")
	if code != 200 || out["clock_untrusted"] != true || out["clock_offset_seconds"] != float64(8*3600) {
		t.Fatalf("camera: %d %v", code, out)
	}
	code, list := call(t, h, "GET", "/api/v1/cameras", "")
	cams, _ := list["cameras"].([]any)
	if code != 200 || len(cams) != 1 || cams[0].(map[string]any)["clock_untrusted"] != true {
		t.Fatalf("list: %d %v", code, list)
	}
}
