package main

import (
	"context"
	"testing"
	"time"

	"xueliang/index"
	"xueliang/index/pgtest"
	"xueliang/storage/miniotest"
	"xueliang/storage/recording"
)

// TestClusterCameraAddRemove: the camera registry is shared through the
// index, but only the node that serves a change hears of it. Node n1
// (capacity 1, holding cam1) registers a camera through its API; only n2
// has room for it, and records it (it re-reads the registry when it holds
// a camera it does not know). The camera is then removed through n1: its
// lease row is retired (no node holds or claims it), n2 stops recording
// it, and its last segment is closed (under n2's epoch), not left open.
func TestClusterCameraAddRemove(t *testing.T) {
	t.Parallel() // waits on real time mostly: runs beside the others (Makefile TEST_PARALLEL)
	pg := pgtest.Start(t)
	dbURL := pg.NewDatabase(t)
	m := miniotest.Start(t)
	rtsp, _ := startCamsim(t, "-cameras", "2")
	cfg := func(node, capacity string) string {
		return "index:\n  postgres_url: " + dbURL + "\nrecording:\n  segment_duration: 4s\n" +
			"cluster:\n  enabled: true\n  node_id: " + node + "\n  capacity: " + capacity + "\n" +
			s3Config(m, "registry") + cameraList(rtsp, 1)
	}
	ctx := context.Background()
	db, err := index.OpenPostgres(ctx, dbURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })

	n1, api := startRegistryServer(t, cfg("n1", "1"))
	waitForFast(t, 20*time.Second, "n1 holding cam1", func() bool { return liveLeases(t, db)["cam1"].Node == "n1" })
	n2 := startServer(t, cfg("n2", "2"))

	const id = "41142600001320000002"
	added := time.Now()
	var cam map[string]any
	if code := api.json("POST", "/api/v1/cameras", map[string]any{"id": id, "township": "会亭镇", "village": "张庄村",
		"main_url": rtsp + "/cam2"}, &cam); code != 201 {
		t.Fatalf("create: %d %v", code, cam)
	}
	var lease index.Lease
	waitForFast(t, 30*time.Second, "n2 recording the camera added through n1", func() bool {
		lease = liveLeases(t, db)[id]
		if lease.Node != "n2" {
			return false
		}
		segs, err := db.SegmentsInRange(ctx, id, added, time.Now().Add(time.Hour))
		return err == nil && len(segs) > 0
	})
	t.Logf("camera added through n1 recording on n2 after %v", time.Since(added).Round(time.Millisecond))
	if n, _ := metricSum(scrapeMetrics(t, n1), "xueliang_cluster_cameras_held"); n != 1 {
		t.Errorf("n1 holds %v cameras, want 1 (cam1)", n)
	}
	time.Sleep(5 * time.Second) // a closed segment or two under n2's lease

	removed := time.Now()
	if code, b := api.do("DELETE", "/api/v1/cameras/"+id, nil); code != 204 && code != 200 {
		t.Fatalf("delete: %d %s", code, b)
	}
	waitForFast(t, 15*time.Second, "n2 no longer holding the removed camera", func() bool {
		n, ok := metricSum(scrapeMetrics(t, n2), "xueliang_cluster_cameras_held")
		return ok && n == 0
	})
	waitForFast(t, 15*time.Second, "the removed camera's last segment closed", func() bool {
		segs, err := db.SegmentsInRange(ctx, id, time.Unix(0, 0), time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range segs {
			if s.State == recording.StateRecording {
				return false
			}
		}
		return len(segs) > 0
	})
	t.Logf("removed camera released by n2 after %v", time.Since(removed).Round(time.Millisecond))
	time.Sleep(3 * time.Second) // a few lease rounds: nobody claims it again
	if l, ok := liveLeases(t, db)[id]; ok {
		t.Errorf("the removed camera is leased again: %+v", l)
	}
	ls, err := db.Leases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		if l.CameraID == id {
			t.Errorf("the removed camera's lease is listed: %+v (want it retired)", l)
		}
	}
	if n, err := db.LeaseCameraCount(ctx); err != nil || n != 1 {
		t.Errorf("lease camera count %d %v, want 1", n, err)
	}
	segs, err := db.SegmentsInRange(ctx, id, removed.Add(2*time.Second), time.Now().Add(time.Hour))
	if err != nil || len(segs) != 0 {
		t.Errorf("%d segments started after the removal (%v)", len(segs), err)
	}
}
