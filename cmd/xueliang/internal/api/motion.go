package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"xueliang/index"
	"xueliang/ingest/motion"
	"xueliang/storage/recording"
)

// MotionIndex is what motion search and the timeline's motion fields read
// (*index.DB). The Server uses it when its Index implements it; otherwise
// the motion routes answer 501 and timelines carry no motion.
type MotionIndex interface {
	MotionIntervals(ctx context.Context, camera string, from, to time.Time, limit int) ([]recording.MotionInterval, error)
	MotionActivity(ctx context.Context, camera string, from, to time.Time) ([]index.MotionMinute, error)
	ScanMotion(ctx context.Context, camera string, from, to time.Time, mask *[recording.MotionSummaryWords]uint64, fn func(recording.MotionChunk) error) error
}

// The chunk summary the index filters on is motion's summary bitmap.
var _ [recording.MotionSummaryWords]uint64 = [motion.SummaryWords]uint64{}

// Search limits.
const (
	defaultMotionLimit = 1000
	maxMotionLimit     = 10000
	// maxMotionCameras bounds a multi-camera search.
	maxMotionCameras = 1000
	// maxMotionWindow bounds the window of one search (one camera-year).
	maxMotionWindow = 366 * 24 * time.Hour
)

// searchIntervals builds the intervals of a region search: the recorder's
// default padding, a merge gap that keeps the keyframes of a 2 s GOP
// together, and one motion frame (keyframes-only cameras have one per
// second at most). MinDuration comes from the request.
var searchIntervals = motion.IntervalConfig{PrePad: time.Second, PostPad: 2 * time.Second, MaxGap: 2500 * time.Millisecond, MinFrames: 1}

// motionRoutes serves motion search.
func (s *Server) motionRoutes() []route {
	return []route{
		{Route{"POST", "/api/v1/cameras/{id}/motion/search", ActArchiveRead}, s.limited(kindMotion, s.motionSearchCamera)},
		{Route{"POST", "/api/v1/motion/search", ActArchiveRead}, s.limited(kindMotion, s.motionSearchMulti)},
	}
}

func (s *Server) motionIndex() MotionIndex {
	mi, _ := s.Index.(MotionIndex)
	return mi
}

// regionJSON is a search region: a polygon in normalised picture
// coordinates, or a cell mask (cell indices in row-major order of a
// cols×rows grid). Neither means the whole picture.
type regionJSON struct {
	Polygon [][2]float64 `json:"polygon,omitempty"`
	Cells   *struct {
		Cols int   `json:"cols"`
		Rows int   `json:"rows"`
		Set  []int `json:"set"`
	} `json:"cells,omitempty"`
}

type motionSearchJSON struct {
	From        time.Time   `json:"from"`
	To          time.Time   `json:"to"`
	Region      *regionJSON `json:"region,omitempty"`
	MinDuration string      `json:"min_duration,omitempty"` // Go duration, e.g. "3s"
	Limit       int         `json:"limit,omitempty"`
	// Multi-camera form only: a list of cameras, or a site.
	Cameras  []string `json:"cameras,omitempty"`
	Township string   `json:"township,omitempty"`
	Village  string   `json:"village,omitempty"`
}

// motionIntervalJSON is one motion interval. Bounds is the bounding box of
// the cells in motion, normalised [x0, y0, x1, y1].
type motionIntervalJSON struct {
	Camera  string     `json:"camera,omitempty"`
	Start   time.Time  `json:"start"`
	End     time.Time  `json:"end"`
	Peak    float64    `json:"peak"`
	Seconds int        `json:"seconds"`
	Bounds  [4]float64 `json:"bounds"`
}

type motionSearchResultJSON struct {
	From      time.Time            `json:"from"`
	To        time.Time            `json:"to"`
	Cameras   []string             `json:"cameras"`
	Intervals []motionIntervalJSON `json:"intervals"`
	Truncated bool                 `json:"truncated"`
	// Seconds is how many stored seconds with motion were examined, Hits
	// how many met the region.
	Seconds int `json:"seconds_examined"`
	Hits    int `json:"seconds_matched"`
}

// motionSearch is a parsed request.
type motionSearch struct {
	from, to time.Time
	mask     motion.Grid
	cfg      motion.IntervalConfig
	limit    int
}

func (s *Server) parseMotionSearch(w http.ResponseWriter, r *http.Request) (motionSearchJSON, motionSearch, bool) {
	var in motionSearchJSON
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		writeError(w, http.StatusBadRequest, "bad request body: %v", err)
		return in, motionSearch{}, false
	}
	var errs []string
	q := motionSearch{from: in.From, to: in.To, cfg: searchIntervals, limit: in.Limit}
	if q.to.IsZero() {
		q.to = s.Now()
	}
	if q.from.IsZero() {
		q.from = q.to.Add(-24 * time.Hour)
	}
	if !q.from.Before(q.to) {
		errs = append(errs, "from must be before to")
	} else if q.to.Sub(q.from) > maxMotionWindow {
		errs = append(errs, fmt.Sprintf("window longer than %s", maxMotionWindow))
	}
	if in.MinDuration != "" {
		d, err := time.ParseDuration(in.MinDuration)
		if err != nil || d < 0 || d > 24*time.Hour {
			errs = append(errs, fmt.Sprintf("min_duration: want a duration such as 3s (0..24h), got %q", in.MinDuration))
		}
		q.cfg.MinDuration = d
	}
	switch {
	case q.limit == 0:
		q.limit = defaultMotionLimit
	case q.limit < 0 || q.limit > maxMotionLimit:
		errs = append(errs, fmt.Sprintf("limit: want 1..%d", maxMotionLimit))
	}
	mask, err := regionMask(in.Region)
	if err != nil {
		errs = append(errs, err.Error())
	}
	q.mask = mask
	if len(errs) > 0 {
		writeError(w, http.StatusBadRequest, "%s", strings.Join(errs, "; "))
		return in, q, false
	}
	return in, q, true
}

// regionMask turns a region into a grid mask (32×18 for polygons).
func regionMask(rg *regionJSON) (motion.Grid, error) {
	switch {
	case rg == nil || (rg.Polygon == nil && rg.Cells == nil):
		g := motion.NewGrid(motion.SummaryCols, motion.SummaryRows)
		for r := range motion.SummaryRows {
			for c := range motion.SummaryCols {
				g.Set(c, r)
			}
		}
		return g, nil
	case rg.Polygon != nil && rg.Cells != nil:
		return motion.Grid{}, errors.New("region: give polygon or cells, not both")
	case rg.Polygon != nil:
		if len(rg.Polygon) < 3 || len(rg.Polygon) > 1000 {
			return motion.Grid{}, errors.New("region.polygon: want 3..1000 points")
		}
		for _, p := range rg.Polygon {
			if p[0] < 0 || p[0] > 1 || p[1] < 0 || p[1] > 1 {
				return motion.Grid{}, errors.New("region.polygon: coordinates are normalised, 0..1")
			}
		}
		g := motion.MaskFromPolygon(rg.Polygon, motion.SummaryCols, motion.SummaryRows)
		return g, nil
	}
	c := rg.Cells
	if c.Cols < 1 || c.Rows < 1 || c.Cols > motion.MaxCells || c.Rows > motion.MaxCells {
		return motion.Grid{}, fmt.Errorf("region.cells: size %dx%d out of range 1..%d", c.Cols, c.Rows, motion.MaxCells)
	}
	g := motion.NewGrid(c.Cols, c.Rows)
	for _, i := range c.Set {
		if i < 0 || i >= c.Cols*c.Rows {
			return motion.Grid{}, fmt.Errorf("region.cells.set: cell %d out of range", i)
		}
		g.Set(i%c.Cols, i/c.Cols)
	}
	return g, nil
}

// searchCamera runs the region search over one camera: only chunks whose
// summary meets the mask are read (in SQL), and only seconds whose grid
// meets it are decoded. Intervals are returned newest first.
func searchCamera(ctx context.Context, mi MotionIndex, camera string, q motionSearch) ([]motionIntervalJSON, int, int, error) {
	rs := motion.NewRegionSearch(q.mask, q.cfg)
	sum := motion.Summary(q.mask)
	err := mi.ScanMotion(ctx, camera, q.from, q.to, &sum, func(c recording.MotionChunk) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return rs.Add(motion.Chunk{Start: c.Start, End: c.End, Active: c.Active, Summary: c.Summary, Data: c.Data})
	})
	if err != nil {
		return nil, 0, 0, err
	}
	ivs := rs.Intervals()
	out := make([]motionIntervalJSON, 0, len(ivs))
	for i := len(ivs) - 1; i >= 0; i-- {
		iv := ivs[i]
		if !iv.Start.Before(q.to) || !iv.End.After(q.from) {
			continue
		}
		out = append(out, motionIntervalJSON{Camera: camera, Start: iv.Start.UTC(), End: iv.End.UTC(), Peak: iv.Peak,
			Seconds: iv.Seconds, Bounds: normBounds(iv.Bounds.Min.X, iv.Bounds.Min.Y, iv.Bounds.Max.X, iv.Bounds.Max.Y, iv.Cells)})
	}
	return out, rs.Seconds, rs.Hits, nil
}

func normBounds(x0, y0, x1, y1 int, g motion.Grid) [4]float64 {
	c, r := float64(motion.SummaryCols), float64(motion.SummaryRows) // the default grid
	if g.Cols() > 0 {
		c, r = float64(g.Cols()), float64(g.Rows())
	}
	return [4]float64{float64(x0) / c, float64(y0) / r, float64(x1) / c, float64(y1) / r}
}

func (s *Server) motionSearchCamera(w http.ResponseWriter, r *http.Request) {
	mi := s.motionIndex()
	if mi == nil {
		writeError(w, http.StatusNotImplemented, "motion search is not available")
		return
	}
	id := r.PathValue("id")
	cam, err := s.Index.Camera(r.Context(), id)
	switch {
	case errors.Is(err, index.ErrNotFound) || (err == nil && !principalFrom(r.Context()).InScope(cam.Township)):
		writeError(w, http.StatusNotFound, "unknown camera %q", id)
		return
	case err != nil:
		s.internal(w, r, "get camera", err)
		return
	}
	_, q, ok := s.parseMotionSearch(w, r)
	if !ok {
		return
	}
	ivs, secs, hits, err := searchCamera(r.Context(), mi, id, q)
	if err != nil {
		s.motionError(w, r, err)
		return
	}
	out := motionSearchResultJSON{From: q.from.UTC(), To: q.to.UTC(), Cameras: []string{id}, Intervals: ivs, Seconds: secs, Hits: hits}
	if len(out.Intervals) > q.limit {
		out.Intervals, out.Truncated = out.Intervals[:q.limit], true
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) motionSearchMulti(w http.ResponseWriter, r *http.Request) {
	mi := s.motionIndex()
	if mi == nil {
		writeError(w, http.StatusNotImplemented, "motion search is not available")
		return
	}
	in, q, ok := s.parseMotionSearch(w, r)
	if !ok {
		return
	}
	if len(in.Cameras) == 0 && in.Township == "" && in.Village == "" {
		writeError(w, http.StatusBadRequest, "give cameras, or a township and/or village")
		return
	}
	if len(in.Cameras) > 0 && (in.Township != "" || in.Village != "") {
		writeError(w, http.StatusBadRequest, "give cameras or a site, not both")
		return
	}
	all, err := s.Index.Cameras(r.Context())
	if err != nil {
		s.internal(w, r, "list cameras", err)
		return
	}
	p := principalFrom(r.Context())
	known := map[string]index.Camera{}
	for _, c := range all {
		if p.InScope(c.Township) {
			known[c.ID] = c
		}
	}
	var ids []string
	if len(in.Cameras) > 0 {
		for _, id := range in.Cameras {
			if _, ok := known[id]; !ok {
				writeError(w, http.StatusNotFound, "unknown camera %q", id)
				return
			}
			if !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
	} else {
		for _, c := range all {
			if _, ok := known[c.ID]; ok && (in.Township == "" || c.Township == in.Township) && (in.Village == "" || c.Village == in.Village) {
				ids = append(ids, c.ID)
			}
		}
	}
	if len(ids) > maxMotionCameras {
		writeError(w, http.StatusBadRequest, "%d cameras, at most %d per search", len(ids), maxMotionCameras)
		return
	}
	out := motionSearchResultJSON{From: q.from.UTC(), To: q.to.UTC(), Cameras: ids, Intervals: []motionIntervalJSON{}}
	// At most limit intervals are held: each camera's newest limit are
	// merged into the newest limit so far.
	for _, id := range ids {
		ivs, secs, hits, err := searchCamera(r.Context(), mi, id, q)
		if err != nil {
			s.motionError(w, r, err)
			return
		}
		var cut bool
		out.Intervals, cut = mergeNewest(out.Intervals, ivs, q.limit)
		out.Truncated = out.Truncated || cut
		out.Seconds += secs
		out.Hits += hits
	}
	writeJSON(w, http.StatusOK, out)
}

// mergeNewest merges a and b (each newest first) into at most limit
// intervals, newest first (a's first on equal starts), and reports whether
// any was left out.
func mergeNewest(a, b []motionIntervalJSON, limit int) ([]motionIntervalJSON, bool) {
	out := make([]motionIntervalJSON, 0, min(len(a)+len(b), limit))
	i, j := 0, 0
	for len(out) < limit && (i < len(a) || j < len(b)) {
		if j >= len(b) || i < len(a) && !a[i].Start.Before(b[j].Start) {
			out = append(out, a[i])
			i++
		} else {
			out = append(out, b[j])
			j++
		}
	}
	return out, i < len(a) || j < len(b)
}

// motionError answers a failed search: 503 when it ran past its deadline.
func (s *Server) motionError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(r.Context().Err(), context.DeadlineExceeded) {
		w.Header().Set("Retry-After", "30")
		writeError(w, http.StatusServiceUnavailable, "motion search ran longer than its deadline (%s): narrow the window, the cameras or the region",
			s.Limits.MotionDeadline)
		return
	}
	s.internal(w, r, "motion search", err)
}

// motionMinuteJSON is the activity of one minute: seconds with motion
// (0..60); minutes without motion are absent.
type motionMinuteJSON struct {
	Start   time.Time `json:"start"`
	Seconds int       `json:"seconds"`
}

// timelineMotion returns the stored motion intervals overlapping
// [from, to) (oldest first) and the per-minute activity, for the timeline.
// Both are empty (not nil) without a MotionIndex.
func (s *Server) timelineMotion(ctx context.Context, camera string, from, to time.Time) ([]motionIntervalJSON, []motionMinuteJSON, error) {
	ivs, act := []motionIntervalJSON{}, []motionMinuteJSON{}
	mi := s.motionIndex()
	if mi == nil {
		return ivs, act, nil
	}
	stored, err := mi.MotionIntervals(ctx, camera, from, to, maxMotionLimit)
	if err != nil {
		return nil, nil, err
	}
	for _, iv := range stored {
		var g motion.Grid
		_ = g.UnmarshalBinary(iv.Cells)
		ivs = append(ivs, motionIntervalJSON{Start: iv.Start.UTC(), End: iv.End.UTC(), Peak: iv.Peak, Seconds: iv.Seconds,
			Bounds: normBounds(iv.X0, iv.Y0, iv.X1, iv.Y1, g)})
	}
	minutes, err := mi.MotionActivity(ctx, camera, from, to)
	if err != nil {
		return nil, nil, err
	}
	for _, m := range minutes {
		act = append(act, motionMinuteJSON{Start: m.Start.UTC(), Seconds: m.Active})
	}
	return ivs, act, nil
}
