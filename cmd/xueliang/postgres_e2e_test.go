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
	"xueliang/storage/miniotest"
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
	checkNothingLost(t, db, srv, 2, 5, end)
}

// checkNothingLost waits until every closed segment is uploaded, then
// checks that each of cams cameras (cam1…) has at least minSegs segments
// and that every frame from its first segment to end replays through srv.
func checkNothingLost(t *testing.T, db *index.DB, srv *testServer, cams, minSegs int, end time.Time) {
	t.Helper()
	waitDrained(t, db, 60*time.Second)
	for i := 1; i <= cams; i++ {
		cam := fmt.Sprintf("cam%d", i)
		segs, err := db.SegmentsInRange(context.Background(), cam, time.Unix(0, 0), end)
		if err != nil {
			t.Fatal(err)
		}
		if len(segs) < minSegs {
			t.Fatalf("%s: %d segments, want ≥ %d", cam, len(segs), minSegs)
		}
		frames := checkAllFramesReplayable(t, srv, cam, segs[0].Start, end)
		if got, want := frames[len(frames)-1].Stamp.Captured.Sub(frames[0].Stamp.Captured), end.Sub(segs[0].Start)-time.Second; got < want {
			t.Errorf("%s: replay covers %v, want ≥ %v", cam, got, want)
		}
	}
}

// TestClusterPostgresOutage: two cluster nodes record four cameras;
// PostgreSQL is stopped for longer than lease_ttl (every lease and
// heartbeat goes stale) and started again. Each node keeps its cameras
// under the same epochs (no takeover, no fenced write), recording goes on
// into the spools, and every frame of the whole run replays: nothing is
// lost.
func TestClusterPostgresOutage(t *testing.T) {
	t.Parallel() // waits on real time mostly: runs beside the others (Makefile TEST_PARALLEL)
	pg := pgtest.Start(t)
	dbURL := pg.NewDatabase(t)
	m := miniotest.Start(t)
	rtsp, _ := startCamsim(t, "-cameras", "4")
	secret := clusterSecretFile(t) // the replay on n1 reads n2's spool for what it has not uploaded yet
	cfg := func(node, addr string) string {
		return "index:\n  postgres_url: " + dbURL + "\nrecording:\n  segment_duration: 6s\n" +
			"cluster:\n  enabled: true\n  node_id: " + node + "\n  lease_ttl: 3s\n  advertise_url: http://" + addr +
			"\n  secret_file: " + secret + "\n" + s3Config(m, "pgoutage") + cameraList(rtsp, 4)
	}
	n1Addr, n2Addr := freeAddr(t), freeAddr(t)
	nodes := []*testServer{startServerAt(t, n1Addr, cfg("n1", n1Addr)), startServerAt(t, n2Addr, cfg("n2", n2Addr))}
	db, err := index.OpenPostgres(context.Background(), dbURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	waitForFast(t, 30*time.Second, "every camera leased", func() bool { return len(liveLeases(t, db)) == 4 })
	time.Sleep(10 * time.Second)
	before := liveLeases(t, db)

	t.Log("stopping PostgreSQL for 9 s (lease_ttl 3 s)")
	pg.Stop()
	time.Sleep(9 * time.Second)
	pg.Restart()
	t.Log("PostgreSQL is back")
	time.Sleep(15 * time.Second)
	end := time.Now().Add(-3 * time.Second)

	after := liveLeases(t, db)
	for cam, l := range before {
		if a := after[cam]; a.Node != l.Node || a.Epoch != l.Epoch {
			t.Errorf("%s: held by %s at epoch %d before the outage, %s at %d after", cam, l.Node, l.Epoch, a.Node, a.Epoch)
		}
	}
	for _, n := range nodes {
		scrape := scrapeMetrics(t, n)
		fenced, _ := metricSum(scrape, "xueliang_cluster_fenced_writes_total")
		takeovers, _ := metricSum(scrape, "xueliang_cluster_takeovers_total")
		failures, _ := metricSum(scrape, "xueliang_cluster_lease_renew_failures_total")
		if fenced != 0 || takeovers != 0 || failures == 0 {
			t.Errorf("%s: fenced writes %v, takeovers %v, failed rounds %v; want 0, 0, > 0", n.base, fenced, takeovers, failures)
		}
	}
	checkNothingLost(t, db, nodes[0], 4, 4, end)
}
