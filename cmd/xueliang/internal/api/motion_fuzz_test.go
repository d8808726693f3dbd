package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"xueliang/ingest/motion"
)

// FuzzMotionSearchRequest: the body of POST .../motion/search (time
// window, limit and the region, a polygon or a cell mask) is read by
// parseMotionSearch. It never panics; a refused body is a 400 with a JSON
// error; an accepted one has a bounded window and limit and a mask of a
// bounded size that survives a binary round trip; a polygon inside the
// picture never selects nothing, and a cell mask selects exactly the cells
// listed.
func FuzzMotionSearchRequest(f *testing.F) {
	for _, s := range []string{
		`{}`,
		`{"from":"2026-03-01T10:00:00Z","to":"2026-03-01T12:00:00Z","region":{"polygon":[[0.1,0.1],[0.9,0.1],[0.5,0.8]]},"min_duration":"3s","limit":50}`,
		`{"region":{"polygon":[[0.5,0.5],[0.5001,0.5],[0.5,0.5001]]}}`,
		`{"region":{"polygon":[[0,0],[1,0],[1,1],[0,1],[0,0]]}}`,
		`{"region":{"cells":{"cols":4,"rows":3,"set":[0,5,11,5]}}}`,
		`{"region":{"cells":{"cols":255,"rows":255,"set":[65024]}},"limit":10000}`,
		`{"region":{"polygon":[[0.1,0.1],[0.9,0.1],[0.5,0.8]],"cells":{"cols":1,"rows":1,"set":[0]}}}`,
		`{"region":{"polygon":[[-1,0],[2,0],[0.5,1e308]]}}`,
		`{"from":"2026-03-01T12:00:00Z","to":"2026-03-01T10:00:00Z","min_duration":"-1s","limit":-4}`,
		`{"cameras":["cam1","cam2"],"township":"t","region":{"cells":{"cols":2,"rows":2,"set":[]}}}`,
	} {
		f.Add([]byte(s))
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s := &Server{Now: func() time.Time { return now }}
	f.Fuzz(func(t *testing.T, body []byte) {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodPost, "/api/v1/cameras/cam1/motion/search", bytes.NewReader(body))
		in, q, ok := s.parseMotionSearch(w, r)
		if !ok {
			var e map[string]any
			if w.Code != http.StatusBadRequest || json.Unmarshal(w.Body.Bytes(), &e) != nil {
				t.Fatalf("refused with %d %q", w.Code, w.Body.String())
			}
			return
		}
		if w.Body.Len() != 0 {
			t.Fatalf("accepted but wrote %q", w.Body.String())
		}
		if !q.from.Before(q.to) || q.to.Sub(q.from) > maxMotionWindow {
			t.Fatalf("window %s..%s", q.from, q.to)
		}
		if q.limit < 1 || q.limit > maxMotionLimit || q.cfg.MinDuration < 0 || q.cfg.MinDuration > 24*time.Hour {
			t.Fatalf("limit %d, min duration %s", q.limit, q.cfg.MinDuration)
		}
		m := q.mask
		if m.Cols() < 1 || m.Rows() < 1 || m.Cols() > motion.MaxCells || m.Rows() > motion.MaxCells {
			t.Fatalf("mask %dx%d", m.Cols(), m.Rows())
		}
		bin, err := m.MarshalBinary()
		if err != nil {
			t.Fatalf("marshal mask: %v", err)
		}
		var back motion.Grid
		if err := back.UnmarshalBinary(bin); err != nil || !back.Equal(m) {
			t.Fatalf("mask round trip: %v", err)
		}
		switch rg := in.Region; {
		case rg == nil || (rg.Polygon == nil && rg.Cells == nil):
			if m.Count() != motion.SummaryCols*motion.SummaryRows {
				t.Fatalf("no region selects %d cells", m.Count())
			}
		case rg.Polygon != nil:
			if rg.Cells != nil {
				t.Fatal("polygon and cells accepted together")
			}
			if m.Cols() != motion.SummaryCols || m.Rows() != motion.SummaryRows || m.Empty() {
				t.Fatalf("polygon of %d points gives a %dx%d mask of %d cells", len(rg.Polygon), m.Cols(), m.Rows(), m.Count())
			}
		default:
			c := rg.Cells
			if m.Cols() != c.Cols || m.Rows() != c.Rows {
				t.Fatalf("cells %dx%d give a %dx%d mask", c.Cols, c.Rows, m.Cols(), m.Rows())
			}
			distinct := map[int]bool{}
			for _, i := range c.Set {
				distinct[i] = true
				if !m.Get(i%c.Cols, i/c.Cols) {
					t.Fatalf("cell %d not in the mask", i)
				}
			}
			if m.Count() != len(distinct) {
				t.Fatalf("%d cells listed, %d in the mask", len(distinct), m.Count())
			}
		}
	})
}
