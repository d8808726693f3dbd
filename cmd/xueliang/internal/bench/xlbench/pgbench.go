package main

// The PostgreSQL side of the index benchmark (part "postgres"): the same
// cameras × days archive as the SQLite index part, loaded through the same
// index.LoadSegments (COPY on PostgreSQL) into a PostgreSQL cluster started
// like index/pgtest does (with the default durability a site runs and
// pgBenchSettings), its timeline and replay TTFB timed by the same code
// with the same seeds (indexbench.go, indexreplay.go); and the
// fragment-row insert rate of 1 and 3 nodes writing through the index API
// with group commit.

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"xueliang/index"
	"xueliang/index/pgtest"
	"xueliang/storage/recording"
)

// pgResult is the PostgreSQL part of results.json.
type pgResult struct {
	Version  string      `json:"version"`
	Settings string      `json:"settings"`
	Index    indexResult `json:"index"`
	Frags    []fragRate  `json:"fragment_insert"`
}

// fragRate is one fragment-insert run: nodes index handles (each its own
// writer connection and group committer, as one xueliang server has),
// cameras per node each appending one fragment at a time as its segmenter
// does, for the run's seconds.
type fragRate struct {
	Backend        string  `json:"backend"`
	Nodes          int     `json:"nodes"`
	CamerasPerNode int     `json:"cameras_per_node"`
	CommitWindowMs float64 `json:"commit_window_ms"`
	Seconds        float64 `json:"seconds"`
	Fragments      int64   `json:"fragments"`
	PerSec         float64 `json:"fragments_per_s"`
	PerNodePerSec  float64 `json:"fragments_per_s_per_node"`
}

// pgCluster is the PostgreSQL server of the run, started once for the
// postgres part and the replay part.
type pgCluster struct {
	srv     *pgtest.Server
	version string
}

// pgBenchSettings are the server settings of the bench cluster beyond
// PostgreSQL's defaults (durability stays on): memory for a box with 24 GiB
// shared with the rest of the benchmark, and checkpoints spaced for a bulk
// load (a 250-camera load transaction is ≈10 M rows, several GB of WAL)
// within the disk a bench box has.
var pgBenchSettings = []string{
	"shared_buffers=2GB",
	"effective_cache_size=8GB",
	"maintenance_work_mem=512MB",
	"work_mem=16MB",
	"max_wal_size=8GB",
	"checkpoint_timeout=15min",
	"checkpoint_completion_target=0.9",
	"wal_compression=on",
}

func startPostgres() (*pgCluster, error) {
	srv, err := pgtest.Launch(true, pgBenchSettings...)
	if err != nil {
		return nil, err
	}
	c := &pgCluster{srv: srv}
	url, err := c.database("xlversion")
	if err != nil {
		srv.Close()
		return nil, err
	}
	if raw, err := sql.Open("pgx", url); err == nil {
		_ = raw.QueryRow(`SELECT current_setting('server_version')`).Scan(&c.version)
		raw.Close()
	}
	return c, nil
}

func (c *pgCluster) database(name string) (string, error) { return c.srv.CreateDatabase(name) }

func (c *pgCluster) close() { c.srv.Close() }

// runIndexPG is runIndex's API inserts, replay segments, bulk load,
// timeline queries and replays on PostgreSQL, then the fragment insert runs.
func runIndexPG(pg *pgCluster, dir string, cams, days, segs, apiSegs, chunk, queries int, fragDur time.Duration, rep *indexReplay) (pgResult, error) {
	ctx := context.Background()
	res := pgResult{Version: pg.version, Settings: "durability at PostgreSQL's defaults (fsync, synchronous_commit, full_page_writes on); " +
		strings.Join(pgBenchSettings, ", ") + "; data directory on the bench machine's disk, server on the same 2 cores as xlbench"}
	url, err := pg.database("xlindex")
	if err != nil {
		return res, err
	}
	run, err := runIndexOnPG(url, cams, days, segs, apiSegs, chunk, rep)
	if err != nil {
		return res, err
	}
	logf("postgres: bulk load")
	if err := run.fill(""); err != nil {
		run.db.Close()
		return res, err
	}
	r, err := run.queries(queries) // closes db
	res.Index = r
	if err != nil {
		return res, err
	}
	for _, n := range []int{1, 3} {
		fr, err := fragmentRate("postgres", n, 200, fragDur, func(node int) (*index.DB, error) {
			if node == 0 {
				u, err := pg.database(fmt.Sprintf("xlfrag%d", n))
				if err != nil {
					return nil, err
				}
				url = u
			}
			return index.OpenPostgres(ctx, url, nil)
		})
		if err != nil {
			return res, err
		}
		res.Frags = append(res.Frags, fr)
	}
	fr, err := fragmentRate("sqlite", 1, 200, fragDur, func(int) (*index.DB, error) {
		return index.Open(ctx, filepath.Join(dir, "frag-bench.db"), nil)
	})
	if err != nil {
		return res, err
	}
	res.Frags = append(res.Frags, fr)
	return res, nil
}

// runIndexOnPG is runIndex on the PostgreSQL database at url.
func runIndexOnPG(url string, cams, days, segs, apiSegs, chunk int, rep *indexReplay) (*indexRun, error) {
	db, err := index.OpenPostgres(context.Background(), url, nil)
	if err != nil {
		return nil, err
	}
	run := &indexRun{r: indexResult{Cameras: cams, Days: days, SegmentSeconds: segs, BulkChunkCameras: chunk, LoadAvg: loadavg()},
		db: db, path: url, pg: true, rep: rep}
	if err := run.prepare(apiSegs); err != nil {
		db.Close()
		return nil, err
	}
	return run, nil
}

// finishPG gathers planner statistics and the database size after the
// bulk load (the SQLite path checkpoints and analyses its file).
func (run *indexRun) finishPG(ctx context.Context) error {
	raw, err := sql.Open("pgx", run.path)
	if err != nil {
		return err
	}
	defer raw.Close()
	t0 := time.Now()
	if _, err := raw.ExecContext(ctx, `ANALYZE`); err != nil {
		return err
	}
	logf("postgres: analyze %.1f s", time.Since(t0).Seconds())
	var size int64
	if err := raw.QueryRowContext(ctx, `SELECT pg_database_size(current_database())`).Scan(&size); err != nil {
		return err
	}
	run.r.DBMiB = float64(size) / (1 << 20)
	for _, t := range []string{"segments", "fragments", "coverage"} {
		ts := tableSize{Name: t}
		if err := raw.QueryRowContext(ctx, `SELECT pg_total_relation_size(CAST($1 AS regclass)), (SELECT count(*) FROM `+t+`)`, t).Scan(&ts.Bytes, &ts.Rows); err != nil {
			return fmt.Errorf("size of %s: %w", t, err)
		}
		run.r.Tables = append(run.r.Tables, ts)
	}
	logf("postgres: %d segments (%.0f MiB), bulk %.0f rows/s", run.r.Segments, run.r.DBMiB, run.r.BulkRowsPerSec)
	return nil
}

// fragmentRate opens nodes index handles (open(0) first: it may create the
// database), gives each camsPerNode cameras of its own with one open
// segment each, and lets every camera append one 2 s fragment at a time
// (AddFragments, the segmenter's call; group commit with the server's
// default 100 ms window merges the cameras of a node) as fast as the index
// answers, for d.
func fragmentRate(backend string, nodes, camsPerNode int, d time.Duration, open func(node int) (*index.DB, error)) (fragRate, error) {
	ctx := context.Background()
	const window = 100 * time.Millisecond // config.Index.CommitWindow's default
	fr := fragRate{Backend: backend, Nodes: nodes, CamerasPerNode: camsPerNode, CommitWindowMs: float64(window.Milliseconds())}
	dbs := make([]*index.DB, 0, nodes)
	defer func() {
		for _, db := range dbs {
			db.Close()
		}
	}()
	type cam struct {
		db  *index.DB
		seg int64
	}
	var cams []cam
	t0 := time.Now().Add(-time.Hour)
	for n := range nodes {
		db, err := open(n)
		if err != nil {
			return fr, err
		}
		db.SetCommitWindow(window)
		dbs = append(dbs, db)
		for c := range camsPerNode {
			id := fmt.Sprintf("node%d-cam%03d", n, c)
			seg := recording.Segment{CameraID: id, Start: t0, ObjectKey: id + "/0.mp4", Codecs: "H264",
				Width: 1920, Height: 1080, State: recording.StateRecording}
			if err := db.CreateSegment(ctx, &seg); err != nil {
				return fr, err
			}
			cams = append(cams, cam{db, seg.ID})
		}
	}
	var total atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, len(cams))
	stop := time.Now().Add(d)
	start := time.Now()
	for _, c := range cams {
		wg.Go(func() {
			for seq := 1; time.Now().Before(stop); seq++ {
				fs := t0.Add(time.Duration(seq-1) * 2 * time.Second)
				f := recording.Fragment{SegmentID: c.seg, Seq: seq, Start: fs, End: fs.Add(2 * time.Second),
					Offset: int64(seq-1) << 20, Size: 1 << 20, Keyframe: true}
				if err := c.db.AddFragments(ctx, []recording.Fragment{f}); err != nil {
					errs <- err
					return
				}
				total.Add(1)
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return fr, fmt.Errorf("%s fragments, %d nodes: %w", backend, nodes, err)
	}
	fr.Seconds = time.Since(start).Seconds()
	fr.Fragments = total.Load()
	fr.PerSec = float64(fr.Fragments) / fr.Seconds
	fr.PerNodePerSec = fr.PerSec / float64(nodes)
	logf("%s: %d node(s) × %d cameras: %.0f fragment rows/s (%.0f per node)", backend, nodes, camsPerNode, fr.PerSec, fr.PerNodePerSec)
	return fr, nil
}
