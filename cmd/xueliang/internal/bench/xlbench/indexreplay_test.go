package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"xueliang/cmd/xueliang/internal/api"
	"xueliang/cmd/xueliang/internal/replay"
	"xueliang/index/pgtest"
	"xueliang/storage/miniotest"
	"xueliang/storage/spool"
)

func TestPickSamples(t *testing.T) {
	skip := func(c, k int) bool { return k >= 90 } // e.g. the API-inserted recent slots
	a := pickSamples(rand.New(rand.NewPCG(replaySeed, 0)), 7, 100, 50, skip)
	b := pickSamples(rand.New(rand.NewPCG(replaySeed, 0)), 7, 100, 50, skip)
	if len(a) != 50 || !slices.Equal(a, b) {
		t.Fatalf("same seed gave %d and %d samples, equal %v", len(a), len(b), slices.Equal(a, b))
	}
	seen := map[[2]int]bool{}
	for _, s := range a {
		if s.cam < 0 || s.cam >= 7 || s.k < 0 || s.k >= 90 {
			t.Fatalf("sample %+v outside the archive or in a skipped slot", s)
		}
		if seen[[2]int{s.cam, s.k}] {
			t.Fatalf("sample %+v twice", s)
		}
		seen[[2]int{s.cam, s.k}] = true
	}
	// Fewer free slots than asked for: all of them, no endless loop.
	if got := pickSamples(rand.New(rand.NewPCG(1, 0)), 2, 3, 10, func(c, k int) bool { return c == 1 }); len(got) != 3 {
		t.Fatalf("2 cameras × 3 slots with camera 1 skipped: %d samples, want 3", len(got))
	}
}

// TestIndexReplayBothBackends builds a small archive on SQLite and on
// PostgreSQL with the index benchmark's code (template copies of a real
// segment from a generated clip, objects in a real MinIO) and checks that
// both backends got the same archive, the same queries and a replay
// through the HTTP API for every instant.
func TestIndexReplayBothBackends(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	clip := filepath.Join(dir, "clip.ts")
	if out, err := exec.Command("../../../../../scripts/gen-clip.sh", "--duration", "4", clip).CombinedOutput(); err != nil {
		t.Fatalf("gen-clip: %v\n%s", err, out)
	}
	ms := miniotest.Start(t)
	rep, closeRep, err := newIndexReplay(dir, clip, &minio{Endpoint: ms.Endpoint, AccessKey: ms.AccessKey, SecretKey: ms.SecretKey}, 12)
	if err != nil {
		t.Fatal(err)
	}
	defer closeRep()
	pgURL := pgtest.Start(t).NewDatabase(t)

	const cams, days, apiSegs, queries = 3, 1, 10, 20
	var results []indexResult
	var samples [][]replaySample
	for _, backend := range []string{"sqlite", "postgres"} {
		var run *indexRun
		if backend == "sqlite" {
			run, err = runIndex(dir, cams, days, 60, apiSegs, 2, rep)
		} else {
			run, err = runIndexOnPG(pgURL, cams, days, 60, apiSegs, 2, rep)
		}
		if err != nil {
			t.Fatalf("%s: %v", backend, err)
		}
		if err := run.fill(""); err != nil {
			t.Fatalf("%s fill: %v", backend, err)
		}
		if backend == "postgres" {
			checkReplayBody(t, run, rep)
			if len(run.r.Tables) != 3 || run.r.Tables[1].Name != "fragments" || run.r.Tables[1].Rows != apiSegs*30+12*int64(len(rep.tpl.frags)) || run.r.Tables[1].Bytes <= 0 {
				t.Errorf("table sizes %+v", run.r.Tables)
			}
		}
		samples = append(samples, run.samples)
		r, err := run.queries(queries)
		if err != nil {
			t.Fatalf("%s queries: %v", backend, err)
		}
		if r.ReplayInstants != 12 || r.ReplayObjects != 12 || r.ReplayP50ms <= 0 || r.ReplayP99ms < r.ReplayP50ms {
			t.Errorf("%s: replay %d instants, %d objects, p50 %.2f p99 %.2f ms", backend, r.ReplayInstants, r.ReplayObjects, r.ReplayP50ms, r.ReplayP99ms)
		}
		if r.Queries != queries || r.TimelineP50ms <= 0 || r.SpansPerQuery < 1 {
			t.Errorf("%s: %d timeline queries, p50 %.2f ms, %.1f spans", backend, r.Queries, r.TimelineP50ms, r.SpansPerQuery)
		}
		// 1 day of 60 s slots per camera, every 97th left out except the
		// API and replay segments (which are inserted whatever their slot).
		if r.Segments < cams*1440*96/97 || r.Segments > cams*1440 {
			t.Errorf("%s: %d segments for %d cameras × 1 day", backend, r.Segments, cams)
		}
		results = append(results, r)
	}
	sq, pg := results[0], results[1]
	if sq.Segments != pg.Segments || sq.SpansPerQuery != pg.SpansPerQuery {
		t.Errorf("backends differ: segments %d vs %d, spans/query %.2f vs %.2f", sq.Segments, pg.Segments, sq.SpansPerQuery, pg.SpansPerQuery)
	}
	if !slices.EqualFunc(samples[0], samples[1], func(a, b replaySample) bool { return a.cam == b.cam && a.k == b.k && a.at.Equal(b.at) }) {
		t.Errorf("backends replayed different instants")
	}
}

// checkReplayBody fetches one sample's replay in full: a fragmented MP4
// (ftyp first) of the template's footage, not an error page.
func checkReplayBody(t *testing.T, run *indexRun, rep *indexReplay) {
	t.Helper()
	sp, err := spool.NewDir(rep.spool)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer((&api.Server{Index: run.db,
		Replayer: &replay.Replayer{Index: run.db, Reader: spool.Reader{Dir: sp, Store: rep.store}}}).Handler())
	defer srv.Close()
	s := run.samples[0]
	resp, err := http.Get(replayURL(srv.URL, fmt.Sprintf("cam%04d", s.cam), s.at, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || len(b) < 100_000 || !strings.Contains(string(b[:16]), "ftyp") {
		t.Fatalf("replay of %+v: status %s, %d bytes, starts %q", s, resp.Status, len(b), b[:min(len(b), 16)])
	}
}

func TestPostgresMarkdown(t *testing.T) {
	sq := &indexResult{Cameras: 1000, Days: 30, SegmentSeconds: 60, Segments: 42_754_845, DBMiB: 8806, BulkRowsPerSec: 49537,
		Queries: 200, TimelineP50ms: 1.61, TimelineP99ms: 2.82, ReplayInstants: 200, ReplayP50ms: 9.5, ReplayP99ms: 31.24, LoadAvg: "1.0 1.0 1.0"}
	pg := &pgResult{Version: "15.18", Settings: "defaults",
		Index: indexResult{Cameras: 1000, Days: 30, SegmentSeconds: 60, Segments: 42_754_845, DBMiB: 17000, BulkRowsPerSec: 61000,
			Queries: 200, TimelineP50ms: 0.7, TimelineP99ms: 2.5, ReplayInstants: 200, ReplayP50ms: 8.26, ReplayP99ms: 60, LoadAvg: "2.0 2.0 2.0",
			Tables: []tableSize{{Name: "fragments", Bytes: 100 << 20, Rows: 1 << 20}}},
		Frags: []fragRate{{Backend: "postgres", Nodes: 3, CamerasPerNode: 200, CommitWindowMs: 100, Seconds: 60, PerSec: 6234, PerNodePerSec: 2078}}}
	md := postgresMarkdown(sq, pg)
	for _, want := range []string{
		"| bulk load | 49537 rows/s | 61000 rows/s |",
		"| timeline 1 camera × 30 days, p50 / p99 (goal p99 ≤ 20 ms) | 1.61 / 2.82 ms (0 spans, 200 queries) — met | 0.70 / 2.50 ms (0 spans, 200 queries) — met |",
		"9.5 / 31.2 ms (200 instants) — met | 8.3 / 60.0 ms (200 instants) — **missed** |",
		"(216 bytes/row)", "(417 bytes/row)",
		"| postgres | 3 | 200 | 100 ms | 60 | 6234 | 2078 |",
		"| table fragments with its indexes | | 100 MiB, 1048576 rows, 100 bytes/row |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("missing %q in\n%s", want, md)
		}
	}
	// Without the SQLite part: dashes, no panic.
	if md := postgresMarkdown(nil, pg); !strings.Contains(md, "| bulk load | — | 61000 rows/s |") {
		t.Errorf("without SQLite figures:\n%s", md)
	}
	// The whole document renders it after the SQLite index section.
	doc := markdown(results{Index: sq, Postgres: pg}, "")
	if i, j := strings.Index(doc, "## Index\n"), strings.Index(doc, "## Index on PostgreSQL"); i < 0 || j < i {
		t.Errorf("sections: index at %d, postgres at %d", i, j)
	}
}
