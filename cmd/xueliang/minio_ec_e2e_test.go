package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"xueliang/storage/miniotest"
	"xueliang/storage/recording"
)

// TestErasureCodedMinIODriveLoss (issue #21.4): the server records two
// camsim cameras into a MinIO erasure-coded over 4 drives (one server
// process, EC:2, the layout of every node of a distributed MinIO); every
// object lands on all 4 drives. One drive is lost (its directory replaced
// by a file, as a dead disk looks to MinIO: neither readable nor
// re-creatable, also as root) and MinIO itself reports it offline; the
// server keeps uploading (new segments stored on the 3 remaining drives,
// at most a bounded few failed attempts, ready throughout), and every
// frame recorded before and after the loss replays from MinIO (the old
// objects are read with one drive's shards missing). Finally the drive is
// replaced by an empty one: MinIO brings it online and new objects land
// on all 4 drives again.
func TestErasureCodedMinIODriveLoss(t *testing.T) {
	t.Parallel() // waits on real time mostly: runs beside the others (Makefile TEST_PARALLEL)
	const bucket = "erasure"
	m := miniotest.StartDrives(t, 4)
	rtsp, _ := startCamsim(t, "-cameras", "2")
	srv := startServer(t, "recording:\n  segment_duration: 4s\n"+s3Config(m, bucket)+cameraList(rtsp, 2))
	db := openIndex(t, srv)
	ctx := context.Background()
	cams := []string{"cam1", "cam2"}

	// stored returns every camera's stored segments starting at or after
	// since.
	stored := func(since time.Time) map[string][]recording.Segment {
		out := map[string][]recording.Segment{}
		for _, cam := range cams {
			segs, err := db.SegmentsInRange(ctx, cam, since, time.Now().Add(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range segs {
				if s.State == recording.StateStored && !s.Start.Before(since) {
					out[cam] = append(out[cam], s)
				}
			}
		}
		return out
	}
	// onDrives is the number of drives (of those listed) holding the
	// object's erasure-coded metadata.
	onDrives := func(key string, drives []string) int {
		n := 0
		for _, d := range drives {
			if _, err := os.Stat(filepath.Join(d, bucket, key, "xl.meta")); err == nil {
				n++
			}
		}
		return n
	}
	waitStored := func(what string, since time.Time, n int) map[string][]recording.Segment {
		t.Helper()
		var got map[string][]recording.Segment
		waitFor(t, 40*time.Second, what, func() bool {
			got = stored(since)
			return len(got[cams[0]]) >= n && len(got[cams[1]]) >= n
		})
		return got
	}
	drives := m.Drives()

	before := waitStored("two stored segments of each camera", time.Unix(0, 0), 2)
	for _, cam := range cams {
		for _, s := range before[cam] {
			if n := onDrives(s.ObjectKey, drives); n != 4 {
				t.Errorf("%s: object %s is on %d of 4 drives", cam, s.ObjectKey, n)
			}
		}
	}
	if on, off, err := m.DriveHealth(); err != nil || on != 4 || off != 0 {
		t.Fatalf("before the loss MinIO reports %d drives online, %d offline (%v)", on, off, err)
	}
	failuresBefore, _ := metricSum(scrapeMetrics(t, srv), "xueliang_upload_failures_total")

	lost := time.Now()
	m.LoseDrive(0)
	waitFor(t, 60*time.Second, "MinIO reporting the lost drive offline", func() bool {
		on, off, err := m.DriveHealth()
		return err == nil && on == 3 && off == 1
	})
	t.Logf("MinIO reports the lost drive offline after %v", time.Since(lost).Round(100*time.Millisecond))

	// Recording goes on: segments started after the loss are stored, on
	// the three drives left.
	after := waitStored("two segments of each camera stored after the loss", lost, 2)
	for _, cam := range cams {
		for _, s := range after[cam] {
			if n := onDrives(s.ObjectKey, drives[1:]); n != 3 {
				t.Errorf("%s: object %s written after the loss is on %d of the 3 drives left", cam, s.ObjectKey, n)
			}
		}
	}
	if code, body := getReadyz(t, srv); code != 200 {
		t.Errorf("readyz with one drive lost: %d %s", code, body)
	}
	scrape := scrapeMetrics(t, srv)
	failures, _ := metricSum(scrape, "xueliang_upload_failures_total")
	storeErrs, _ := metricSum(scrape, "xueliang_storage_errors_total")
	t.Logf("upload failures during the loss: %v (storage errors %v)", failures-failuresBefore, storeErrs)
	if failures-failuresBefore > 2 {
		t.Errorf("%v failed uploads with one of 4 drives lost, want ≤ 2", failures-failuresBefore)
	}

	// Every frame from the first segment to the last one stored after the
	// loss replays from MinIO (no spool file is left for stored segments).
	for _, cam := range cams {
		first, last := before[cam][0], after[cam][len(after[cam])-1]
		for _, s := range []recording.Segment{first, last} {
			if _, err := os.Stat(filepath.Join(srv.dataDir, "spool", s.ObjectKey)); !os.IsNotExist(err) {
				t.Fatalf("%s: stored segment %s still in the spool (%v): replay would not read MinIO", cam, s.ObjectKey, err)
			}
		}
		frames := checkAllFramesReplayable(t, srv, cam, first.Start, last.End)
		t.Logf("%s: %d frames replayed across the drive loss (%s … %s)", cam, len(frames),
			first.Start.Format(time.TimeOnly), last.End.Format(time.TimeOnly))
		if got, want := frames[len(frames)-1].Stamp.Captured.Sub(frames[0].Stamp.Captured), last.End.Sub(first.Start)-time.Second; got < want {
			t.Errorf("%s: replay covers %v, want ≥ %v", cam, got, want)
		}
	}

	// The dead drive is replaced: MinIO formats it, reports it online,
	// and writes new objects to all four drives again.
	m.ReplaceDrive(0)
	waitFor(t, 60*time.Second, "MinIO reporting the replaced drive online", func() bool {
		on, off, err := m.DriveHealth()
		return err == nil && on == 4 && off == 0
	})
	replaced := time.Now()
	t.Logf("replaced drive online after %v", replaced.Sub(lost).Round(100*time.Millisecond))
	healed := waitStored("a segment of each camera stored after the replacement", replaced, 1)
	for _, cam := range cams {
		for _, s := range healed[cam] {
			if n := onDrives(s.ObjectKey, drives); n != 4 {
				t.Errorf("%s: object %s written after the replacement is on %d of 4 drives", cam, s.ObjectKey, n)
			}
		}
	}
}
