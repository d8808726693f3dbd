package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"xueliang/index"
	"xueliang/index/pgtest"
	"xueliang/storage/recording"
)

// TestPostgresIndexEndToEnd: a server with index.postgres_url records two
// camsim cameras into a real PostgreSQL index (no SQLite file appears),
// every frame of the run replays, and the timeline is served from
// PostgreSQL's coverage table.
func TestPostgresIndexEndToEnd(t *testing.T) {
	t.Parallel() // waits on real time mostly: runs beside the others (Makefile TEST_PARALLEL)
	pg := pgtest.Start(t)
	dbURL := pg.NewDatabase(t)
	rtsp, _ := startCamsim(t, "-cameras", "2", "-camera", "cam2:bframes=on")
	srv := startServer(t, "index:\n  postgres_url: "+dbURL+"\nrecording:\n  segment_duration: 8s\n"+cameraList(rtsp, 2))

	time.Sleep(30 * time.Second)
	end := time.Now().Add(-3 * time.Second)
	if _, err := os.Stat(filepath.Join(srv.dataDir, "index.db")); !os.IsNotExist(err) {
		t.Errorf("a SQLite index exists beside postgres_url: %v", err)
	}
	db, err := index.OpenPostgres(context.Background(), dbURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for i := 1; i <= 2; i++ {
		cam := fmt.Sprintf("cam%d", i)
		segs, err := db.SegmentsInRange(context.Background(), cam, time.Unix(0, 0), end)
		if err != nil {
			t.Fatal(err)
		}
		if len(segs) < 3 {
			t.Fatalf("%s: %d segments in PostgreSQL after 30 s of 8 s segments", cam, len(segs))
		}
		closed := 0
		for _, s := range segs {
			if s.State != recording.StateRecording {
				closed++
			}
		}
		if closed < 2 {
			t.Errorf("%s: %d closed segments", cam, closed)
		}
		frames := checkAllFramesReplayable(t, srv, cam, segs[0].Start, end)
		if got, want := frames[len(frames)-1].Stamp.Captured.Sub(frames[0].Stamp.Captured), end.Sub(segs[0].Start)-time.Second; got < want {
			t.Errorf("%s: replay covers %v, want ≥ %v", cam, got, want)
		}
		var tl timelineResp
		q := url.Values{"from": {segs[0].Start.UTC().Format(time.RFC3339Nano)}, "to": {end.UTC().Format(time.RFC3339Nano)}}
		if code := getJSON(t, srv.base+"/api/v1/cameras/"+cam+"/timeline?"+q.Encode(), &tl); code != 200 {
			t.Fatalf("timeline: %d", code)
		}
		if len(tl.Spans) != 1 || len(tl.Gaps) != 0 {
			t.Errorf("%s: timeline of a continuous recording: %+v", cam, tl)
		}
	}
}

// TestPostgresRestartWhileRecording: PostgreSQL is stopped for a few
// seconds and started again while two cameras record; the node keeps
// recording to its spool, its index catches up (every closed segment is
// indexed and stored), and every frame of the whole run replays: nothing
// is lost.
func TestPostgresRestartWhileRecording(t *testing.T) {
	t.Parallel() // waits on real time mostly: runs beside the others (Makefile TEST_PARALLEL)
	pg := pgtest.Start(t)
	dbURL := pg.NewDatabase(t)
	rtsp, _ := startCamsim(t, "-cameras", "2")
	srv := startServer(t, "index:\n  postgres_url: "+dbURL+"\nrecording:\n  segment_duration: 6s\n"+cameraList(rtsp, 2))

	time.Sleep(15 * time.Second)
	t.Log("stopping PostgreSQL for 8 s")
	pg.Stop()
	time.Sleep(8 * time.Second)
	pg.Restart()
	t.Log("PostgreSQL is back")
	time.Sleep(20 * time.Second)
	end := time.Now().Add(-3 * time.Second)

	db, err := index.OpenPostgres(context.Background(), dbURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	waitDrained(t, db, 60*time.Second)
	for i := 1; i <= 2; i++ {
		cam := fmt.Sprintf("cam%d", i)
		segs, err := db.SegmentsInRange(context.Background(), cam, time.Unix(0, 0), end)
		if err != nil {
			t.Fatal(err)
		}
		if len(segs) < 5 {
			t.Fatalf("%s: %d segments after 43 s of 6 s segments", cam, len(segs))
		}
		frames := checkAllFramesReplayable(t, srv, cam, segs[0].Start, end)
		if got, want := frames[len(frames)-1].Stamp.Captured.Sub(frames[0].Stamp.Captured), end.Sub(segs[0].Start)-time.Second; got < want {
			t.Errorf("%s: replay covers %v, want ≥ %v", cam, got, want)
		}
	}
}
