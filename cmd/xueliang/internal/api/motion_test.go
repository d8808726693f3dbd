package api

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"xueliang/index"
	"xueliang/ingest/motion"
	"xueliang/storage/recording"
)

// motionFixture: cam1 (township A) has an object in the top-left at
// minute 0 seconds 10..14 and one in the bottom-right at minute 2 seconds
// 5..7; cam2 (township B) has the top-left one only.
func motionFixture(t *testing.T) (*index.DB, time.Time) {
	t.Helper()
	ctx := context.Background()
	db, err := index.Open(ctx, filepath.Join(t.TempDir(), "index.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for _, c := range []index.Camera{{ID: "cam1", Township: "A", Village: "v1"}, {ID: "cam2", Township: "B", Village: "v2"}} {
		c.Enabled, c.Source = true, index.SourceAPI
		if err := db.PutCamera(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	m0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	sec := func(t time.Time, c, r int) motion.Second {
		g := motion.NewGrid(32, 18)
		g.Set(c, r)
		g.Set(c+1, r)
		return motion.Second{Start: t, Grid: g, Peak: 0.01, Frames: 5, MotionFrames: 5}
	}
	row := func(cam string, start time.Time, secs []motion.Second) recording.MotionChunk {
		c, err := motion.PackChunk(start, start.Add(time.Minute), secs)
		if err != nil {
			t.Fatal(err)
		}
		return recording.MotionChunk{CameraID: cam, Start: c.Start, End: c.End, Active: c.Active, Summary: c.Summary, Data: c.Data}
	}
	var a, b []motion.Second
	for s := 10; s < 15; s++ {
		a = append(a, sec(m0.Add(time.Duration(s)*time.Second), 1, 1))
	}
	for s := 5; s < 8; s++ {
		b = append(b, sec(m0.Add(2*time.Minute+time.Duration(s)*time.Second), 29, 16))
	}
	if err := db.AddMotion(ctx, []recording.MotionChunk{row("cam1", m0, a), row("cam1", m0.Add(2*time.Minute), b), row("cam2", m0, a)},
		[]recording.MotionInterval{{CameraID: "cam1", Start: m0.Add(9 * time.Second), End: m0.Add(17 * time.Second), Peak: 0.01, Seconds: 5, X0: 1, Y0: 1, X1: 3, Y1: 2}}); err != nil {
		t.Fatal(err)
	}
	return db, m0
}

func postJSON(t *testing.T, h http.Handler, path string, body any, out any) int {
	t.Helper()
	b, _ := json.Marshal(body)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", path, bytes.NewReader(b)))
	if out != nil && rec.Code == 200 {
		if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
			t.Fatal(err)
		}
	}
	return rec.Code
}

func TestMotionSearch(t *testing.T) {
	db, m0 := motionFixture(t)
	s := &Server{Index: db, Now: func() time.Time { return m0.Add(time.Hour) }}
	h := s.Handler()
	topLeft := map[string]any{"polygon": [][2]float64{{0, 0}, {0.2, 0}, {0.2, 0.2}, {0, 0.2}}}
	win := map[string]any{"from": m0, "to": m0.Add(time.Hour)}
	with := func(kv ...any) map[string]any {
		m := map[string]any{}
		for k, v := range win {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}

	var res motionSearchResultJSON
	if code := postJSON(t, h, "/api/v1/cameras/cam1/motion/search", with(), &res); code != 200 || len(res.Intervals) != 2 ||
		!res.Intervals[0].Start.After(res.Intervals[1].Start) {
		t.Fatalf("whole picture: %d %+v", code, res)
	}
	if code := postJSON(t, h, "/api/v1/cameras/cam1/motion/search", with("region", topLeft), &res); code != 200 || len(res.Intervals) != 1 ||
		!res.Intervals[0].Start.Equal(m0.Add(9*time.Second)) || !res.Intervals[0].End.Equal(m0.Add(17*time.Second)) {
		t.Fatalf("top-left: %d %+v", code, res)
	}
	// Bottom-right cells 29,30 of row 16 as a cell mask.
	cells := map[string]any{"cells": map[string]any{"cols": 32, "rows": 18, "set": []int{16*32 + 30}}}
	if code := postJSON(t, h, "/api/v1/cameras/cam1/motion/search", with("region", cells), &res); code != 200 || len(res.Intervals) != 1 ||
		!res.Intervals[0].Start.Equal(m0.Add(2*time.Minute+4*time.Second)) {
		t.Fatalf("cell mask: %d %+v", code, res)
	}
	// min_duration 4s keeps the 5 s interval only.
	if code := postJSON(t, h, "/api/v1/cameras/cam1/motion/search", with("min_duration", "4s"), &res); code != 200 || len(res.Intervals) != 1 {
		t.Fatalf("min_duration: %d %+v", code, res)
	}
	// Multi-camera: a list, a site.
	if code := postJSON(t, h, "/api/v1/motion/search", with("region", topLeft, "cameras", []string{"cam1", "cam2"}), &res); code != 200 ||
		len(res.Intervals) != 2 || res.Intervals[0].Camera == res.Intervals[1].Camera {
		t.Fatalf("multi list: %d %+v", code, res)
	}
	if code := postJSON(t, h, "/api/v1/motion/search", with("township", "B"), &res); code != 200 || len(res.Intervals) != 1 || res.Intervals[0].Camera != "cam2" {
		t.Fatalf("multi site: %d %+v", code, res)
	}
	for name, body := range map[string]map[string]any{
		"bad polygon":  with("region", map[string]any{"polygon": [][2]float64{{0, 0}, {2, 0}, {0, 1}}}),
		"bad duration": with("min_duration", "soon"),
		"reversed":     {"from": m0.Add(time.Hour), "to": m0},
		"unknown key":  with("colour", "red"),
	} {
		if code := postJSON(t, h, "/api/v1/cameras/cam1/motion/search", body, nil); code != 400 {
			t.Errorf("%s: status %d, want 400", name, code)
		}
	}
	if code := postJSON(t, h, "/api/v1/cameras/nope/motion/search", with(), nil); code != 404 {
		t.Errorf("unknown camera: %d", code)
	}
	if code := postJSON(t, h, "/api/v1/motion/search", with("cameras", []string{"nope"}), nil); code != 404 {
		t.Errorf("multi unknown camera: %d", code)
	}
	if code := postJSON(t, h, "/api/v1/motion/search", with(), nil); code != 400 {
		t.Errorf("multi without cameras: %d", code)
	}

	// Scope: an operator of township A sees only cam1.
	scoped := httptest.NewRequest("POST", "/api/v1/motion/search", bytes.NewReader(mustJSON(with("cameras", []string{"cam2"}))))
	scoped = scoped.WithContext(withPrincipal(scoped.Context(), &Principal{User: "op", Role: "operator", Townships: []string{"A"}}))
	rec := httptest.NewRecorder()
	s.motionSearchMulti(rec, scoped)
	if rec.Code != 404 {
		t.Errorf("out-of-scope camera: %d %s", rec.Code, rec.Body)
	}

	// Timeline: motion intervals and per-minute activity.
	var tl struct {
		Motion         []motionIntervalJSON `json:"motion"`
		MotionActivity []motionMinuteJSON   `json:"motion_activity"`
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/cameras/cam1/timeline?from="+m0.Format(time.RFC3339)+"&to="+m0.Add(time.Hour).Format(time.RFC3339), nil))
	if err := json.Unmarshal(rec.Body.Bytes(), &tl); err != nil || rec.Code != 200 {
		t.Fatalf("timeline: %d %v %s", rec.Code, err, rec.Body)
	}
	if len(tl.Motion) != 1 || tl.Motion[0].Bounds != [4]float64{1.0 / 32, 1.0 / 18, 3.0 / 32, 2.0 / 18} ||
		len(tl.MotionActivity) != 2 || tl.MotionActivity[0].Seconds != 5 || tl.MotionActivity[1].Seconds != 3 {
		t.Fatalf("timeline motion: %+v", tl)
	}
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}
