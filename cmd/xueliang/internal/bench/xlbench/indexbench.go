package main

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"time"

	_ "modernc.org/sqlite"

	"xueliang/index"
	"xueliang/storage/recording"
)

type indexResult struct {
	Cameras            int     `json:"cameras"`
	Days               int     `json:"days"`
	SegmentSeconds     int     `json:"segment_seconds"`
	Segments           int64   `json:"segments"`
	APISegments        int     `json:"api_inserted_segments"`
	APISegmentsPerSec  float64 `json:"api_insert_segments_per_s"`
	APIFragmentsPerSec float64 `json:"api_insert_fragments_per_s"`
	BulkRowsPerSec     float64 `json:"bulk_insert_segments_per_s"`
	BulkAlongside      string  `json:"bulk_insert_alongside,omitempty"`               // what else ran during the bulk load
	BulkChunkCameras   int     `json:"bulk_insert_cameras_per_transaction,omitempty"` // cameras per LoadSegments call
	DBMiB              float64 `json:"db_mib"`
	Queries            int     `json:"timeline_queries"`
	TimelineP50ms      float64 `json:"timeline_p50_ms"`
	TimelineP99ms      float64 `json:"timeline_p99_ms"`
	SpansPerQuery      float64 `json:"timeline_spans_per_query"`
	// Replay time to first byte on this archive (indexreplay.go).
	ReplayInstants int     `json:"replay_instants,omitempty"`
	ReplayObjects  int     `json:"replay_objects_stored,omitempty"`
	ReplayVia      string  `json:"replay_via,omitempty"`
	ReplayP50ms    float64 `json:"replay_ttfb_p50_ms,omitempty"`
	ReplayP99ms    float64 `json:"replay_ttfb_p99_ms,omitempty"`
	LoadAvg        string  `json:"loadavg_before"`
	// Tables are the sizes of the main tables, indexes included
	// (PostgreSQL: pg_total_relation_size).
	Tables []tableSize `json:"tables,omitempty"`
}

// tableSize is one table's size on disk with its indexes, and its rows.
type tableSize struct {
	Name  string `json:"name"`
	Bytes int64  `json:"bytes"`
	Rows  int64  `json:"rows"`
}

// runIndex fills an index with cams × days of segs-second segments ending
// now: the first apiSegs through the index API (CreateSegment +
// AddFragments, one fragment per 2 s — the insert throughput), the rest in
// bulk through index.LoadSegments (one segment row each, no fragments; the
// timeline only reads segments (their coverage)). Every 97th segment is left out, so
// the timeline has gaps. With rep, rep.n slots hold real segments for
// replay (indexreplay.go). Then it times queries timeline queries of one
// random camera over the whole days, and the replays.
//
// It runs in two calls: runIndex inserts through the API (quietly, a timed
// figure) and returns an indexRun whose fill (the bulk load, ≈10 min in the
// full mode) may run while another phase prepares its data; queries then
// times the timeline and closes the index.
func runIndex(dir string, cams, days, segs, apiSegs, chunk int, rep *indexReplay) (*indexRun, error) {
	ctx := context.Background()
	r := indexResult{Cameras: cams, Days: days, SegmentSeconds: segs, BulkChunkCameras: chunk, LoadAvg: loadavg()}
	path := filepath.Join(dir, "index-bench.db")
	os.Remove(path)
	db, err := index.Open(ctx, path, nil)
	if err != nil {
		return nil, err
	}
	run := &indexRun{r: r, db: db, path: path, rep: rep}
	if err := run.prepare(apiSegs); err != nil {
		db.Close()
		return nil, err
	}
	return run, nil
}

// prepare inserts the API segments and, with run.rep, the replay segments.
func (run *indexRun) prepare(apiSegs int) error {
	if err := run.api(apiSegs); err != nil {
		return err
	}
	if run.rep == nil {
		return nil
	}
	return run.replayArchive(run.rep)
}

// indexRun is the index benchmark between its phases.
type indexRun struct {
	r          indexResult
	db         *index.DB
	path       string // SQLite file, or the PostgreSQL URL when pg
	pg         bool
	start, end time.Time
	apiDone    map[[2]int]bool // slots inserted through the API (fill skips them)
	rep        *indexReplay    // nil: no replay timing
	samples    []replaySample
}

// api inserts the apiSegs most recent segments through the index API.
func (run *indexRun) api(apiSegs int) error {
	ctx := context.Background()
	r, db := &run.r, run.db
	cams, days, segs := r.Cameras, r.Days, r.SegmentSeconds
	segDur := time.Duration(segs) * time.Second
	end := time.Now().Truncate(segDur)
	start := end.Add(-time.Duration(days) * 24 * time.Hour)
	perCam := int(end.Sub(start) / segDur)
	fragsPer := max(segs/2, 1)

	// API inserts: the most recent segments of camera 0..
	t0 := time.Now()
	nAPI := 0
	apiDone := map[[2]int]bool{}
	for i := 0; nAPI < apiSegs && i < cams*perCam; i++ {
		c, k := i%cams, perCam-1-i/cams
		st := start.Add(time.Duration(k) * segDur)
		seg := recording.Segment{CameraID: fmt.Sprintf("cam%04d", c), Start: st, End: st.Add(segDur),
			ObjectKey: fmt.Sprintf("cam%04d/%d.mp4", c, st.UnixNano()), Codecs: "H264", Width: 1920, Height: 1080,
			State: recording.StateStored, Size: 15 << 20}
		if err := db.CreateSegment(ctx, &seg); err != nil {
			return err
		}
		frags := make([]recording.Fragment, fragsPer)
		for j := range frags {
			fs := st.Add(time.Duration(j) * segDur / time.Duration(fragsPer))
			frags[j] = recording.Fragment{SegmentID: seg.ID, Seq: j + 1, Start: fs, End: fs.Add(segDur / time.Duration(fragsPer)),
				Offset: int64(j) * 1 << 20, Size: 1 << 20, Keyframe: true}
		}
		if err := db.AddFragments(ctx, frags); err != nil {
			return err
		}
		apiDone[[2]int{c, k}] = true
		nAPI++
	}
	el := time.Since(t0).Seconds()
	r.APISegments = nAPI
	r.APISegmentsPerSec = float64(nAPI) / el
	r.APIFragmentsPerSec = float64(nAPI*fragsPer) / el
	logf("index: API insert %d segments (+%d fragments each) at %.0f segments/s", nAPI, fragsPer, r.APISegmentsPerSec)
	run.start, run.end, run.apiDone = start, end, apiDone
	return nil
}

// fill bulk-loads the rest of the archive. busy says what else ran
// meanwhile (reported with the rows/s figure).
func (run *indexRun) fill(busy string) error {
	ctx := context.Background()
	r, db := &run.r, run.db
	cams, segs := r.Cameras, r.SegmentSeconds
	segDur := time.Duration(segs) * time.Second
	start, end, apiDone := run.start, run.end, run.apiDone
	perCam := int(end.Sub(start) / segDur)
	r.BulkAlongside = busy
	// Bulk fill through index.LoadSegments, r.BulkChunkCameras per call:
	// each call is one transaction with the coverage rebuilt once instead of
	// maintained row by row by the triggers. 250 cameras (≈2.2 GB of WAL)
	// per transaction loaded 1,000 cameras at 69.7 k rows/s against ≈45 k
	// in one 9 GB transaction; 100 per transaction was slower than one at
	// 300 cameras (62 k vs 71 k rows/s: a checkpoint per transaction).
	t0 := time.Now()
	var bulk int64
	chunk := r.BulkChunkCameras
	for c0 := 0; c0 < cams; c0 += chunk {
		n, err := db.LoadSegments(ctx, func(yield func(recording.Segment) bool) {
			for c := c0; c < min(c0+chunk, cams); c++ {
				id := fmt.Sprintf("cam%04d", c)
				for k := range perCam {
					if apiDone[[2]int{c, k}] || (c*perCam+k)%97 == 0 {
						continue
					}
					st := start.Add(time.Duration(k) * segDur)
					if !yield(recording.Segment{CameraID: id, Start: st, End: st.Add(segDur),
						ObjectKey: fmt.Sprintf("%s/%d.mp4", id, st.UnixNano()), Size: 15 << 20,
						Codecs: "H264", Width: 1920, Height: 1080, State: recording.StateStored}) {
						return
					}
				}
			}
		})
		bulk += n
		if err != nil {
			return err
		}
	}
	if run.pg {
		r.BulkRowsPerSec = float64(bulk) / time.Since(t0).Seconds()
		r.Segments = bulk + int64(r.APISegments+len(run.samples))
		return run.finishPG(ctx)
	}
	raw, err := sql.Open("sqlite", "file:"+run.path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return err
	}
	defer raw.Close()
	r.BulkRowsPerSec = float64(bulk) / time.Since(t0).Seconds()
	r.Segments = bulk + int64(r.APISegments+len(run.samples))
	if _, err := raw.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		return err
	}
	// Planner statistics, as `PRAGMA optimize` would gather them on a
	// site: sampled (analysis_limit), not a full read of 9 GB of indexes.
	t1 := time.Now()
	if _, err := raw.ExecContext(ctx, `PRAGMA analysis_limit = 1000; ANALYZE`); err != nil {
		return err
	}
	logf("index: analyze %.1f s", time.Since(t1).Seconds())
	if fi, err := os.Stat(run.path); err == nil {
		r.DBMiB = float64(fi.Size()) / (1 << 20)
	}
	logf("index: %d segments (%.0f MiB), bulk %.0f rows/s", r.Segments, r.DBMiB, r.BulkRowsPerSec)
	return nil
}

// queries times timeline queries of one random camera over the whole
// days (the same cameras on every backend: timelineSeed), then the
// replays, and closes the index.
func (run *indexRun) queries(queries int) (indexResult, error) {
	defer run.db.Close()
	ctx := context.Background()
	r, db, start, end := &run.r, run.db, run.start, run.end
	cams := r.Cameras
	r.LoadAvg = loadavg()
	lat := make([]float64, 0, queries)
	spans := 0
	rng := rand.New(rand.NewPCG(timelineSeed, 0))
	for range queries {
		cam := fmt.Sprintf("cam%04d", rng.IntN(cams))
		t := time.Now()
		sp, _, err := db.Timeline(ctx, cam, start, end, 250*time.Millisecond)
		if err != nil {
			return *r, err
		}
		lat = append(lat, time.Since(t).Seconds()*1000)
		spans += len(sp)
	}
	r.Queries = queries
	r.TimelineP50ms, r.TimelineP99ms = pct(lat, 50), pct(lat, 99)
	r.SpansPerQuery = float64(spans) / float64(queries)
	logf("index: timeline 1 camera × %d days: p50 %.2f ms, p99 %.2f ms (%.0f spans)", r.Days, r.TimelineP50ms, r.TimelineP99ms, r.SpansPerQuery)
	if run.rep != nil {
		if err := run.replayTTFB(run.rep); err != nil {
			return *r, err
		}
	}
	return *r, nil
}

func pct(v []float64, p float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	i := int(float64(len(s)-1) * p / 100)
	return s[i]
}
