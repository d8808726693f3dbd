package main

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"xueliang/index"
	"xueliang/storage/recording"
)

// TestOrphanSpoolFilesIndexedAtStart: the index refuses every segment
// insert (a trigger raising an error, as a full or broken index would), so
// the server (recording.index_outage 1s) records spool files whose segment
// row is never written. After
// the index is repaired and the server restarted, those files are found,
// parsed, indexed and uploaded: they appear in the timeline and replay
// frame by frame (ffprobe and the SEI stamps judge).
func TestOrphanSpoolFilesIndexedAtStart(t *testing.T) {
	t.Parallel() // waits on real time mostly: runs beside the others (Makefile TEST_PARALLEL)
	rtsp, _ := startCamsim(t, "-cameras", "1")
	dir := t.TempDir()
	srv := &testServer{dataDir: filepath.Join(dir, "data"), cfgPath: filepath.Join(dir, "config.yaml")}
	addr := freeAddr(t)
	srv.base = "http://" + addr
	cfg := fmt.Sprintf("listen: %s\ndata_dir: %s\nrecording:\n  segment_duration: 4s\n  index_outage: 1s\n", addr, srv.dataDir) + testCameraNetworks + cameraList(rtsp, 1)
	if err := os.WriteFile(srv.cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(srv.dataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	dbPath := filepath.Join(srv.dataDir, "index.db")
	db, err := index.Open(context.Background(), dbPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	execSQL(t, dbPath, `CREATE TRIGGER test_refuse_segments BEFORE INSERT ON segments
		BEGIN SELECT RAISE(ABORT, 'test: index refuses segment rows'); END`)

	srv.start(t)
	time.Sleep(13 * time.Second)
	srv.proc.stop()
	stopped := time.Now()
	if !srv.logContains(t, "segment not indexed, spool file left for recovery") {
		t.Fatal("the refused inserts left no spool file for recovery")
	}
	var orphans []string
	spoolRoot := filepath.Join(srv.dataDir, "spool")
	filepath.WalkDir(spoolRoot, func(p string, e fs.DirEntry, err error) error {
		if err == nil && e.Type().IsRegular() && strings.HasSuffix(p, ".mp4") {
			orphans = append(orphans, p)
		}
		return nil
	})
	if len(orphans) < 2 {
		t.Fatalf("%d spool files after 13 s of 4 s segments", len(orphans))
	}
	db = openIndexPath(t, dbPath)
	if segs, err := db.SegmentsInRange(context.Background(), "cam1", time.Unix(0, 0), stopped.Add(time.Hour)); err != nil || len(segs) != 0 {
		t.Fatalf("%d rows while the index refused inserts (%v)", len(segs), err)
	}
	execSQL(t, dbPath, `DROP TRIGGER test_refuse_segments`)

	srv.start(t)
	if !srv.logContains(t, "orphan spool file indexed") {
		t.Error("no orphan indexed at start")
	}
	waitDrained(t, db, 60*time.Second)
	segs, err := db.SegmentsInRange(context.Background(), "cam1", time.Unix(0, 0), stopped)
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) != len(orphans) {
		t.Fatalf("%d rows before the stop, %d orphan files", len(segs), len(orphans))
	}
	for _, s := range segs {
		if s.State != recording.StateStored {
			t.Errorf("orphan %s in state %s, want stored", s.ObjectKey, s.State)
		}
	}
	from, to := segs[0].Start, segs[len(segs)-1].End
	var tl timelineResp
	u := fmt.Sprintf("%s/api/v1/cameras/cam1/timeline?from=%s&to=%s", srv.base,
		from.UTC().Format(time.RFC3339Nano), to.UTC().Format(time.RFC3339Nano))
	if code := getJSON(t, u, &tl); code != 200 || len(tl.Spans) != 1 || len(tl.Gaps) != 0 {
		t.Fatalf("timeline %d: %+v", code, tl)
	}
	if !tl.Spans[0].Start.Equal(from) || !tl.Spans[0].End.Equal(to) {
		t.Errorf("timeline span %v–%v, want %v–%v", tl.Spans[0].Start, tl.Spans[0].End, from, to)
	}
	shown := checkAllFramesReplayable(t, srv, "cam1", from, to)
	if got, want := time.Duration(len(shown))*frameDur, to.Sub(from); got < want-time.Second {
		t.Errorf("%d frames (%v) replayed of %v recorded as orphans", len(shown), got, want)
	}
	t.Logf("%d orphan files, %v of footage, %d frames replayed", len(orphans), to.Sub(from), len(shown))
}

func openIndexPath(t *testing.T, p string) *index.DB {
	t.Helper()
	db, err := index.Open(context.Background(), p, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func execSQL(t *testing.T, dbPath, stmt string) {
	t.Helper()
	db, err := sql.Open("sqlite", dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(stmt); err != nil {
		t.Fatalf("%s: %v", stmt, err)
	}
}
