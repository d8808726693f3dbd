package index

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"
	"xueliang/storage/recording"
)

func storedSeg(t *testing.T, db *DB, cam string, start, end time.Time, size int64) recording.Segment {
	t.Helper()
	ctx := context.Background()
	seg := mustCreate(t, db, cam, start, end)
	if err := db.FinishSegment(ctx, seg.ID, end, size, "00"); err != nil {
		t.Fatal(err)
	}
	if err := db.MarkStored(ctx, seg.ID); err != nil {
		t.Fatal(err)
	}
	seg.Size = size
	return seg
}

func ids(segs []recording.Segment) []int64 {
	var out []int64
	for _, s := range segs {
		out = append(out, s.ID)
	}
	return out
}

func TestMarkDeletingOldestUnlockedStored(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	var segs []recording.Segment
	for i := range 6 { // a: [0,60) [60,120) ... [300,360)
		segs = append(segs, storedSeg(t, db, "a", at(float64(60*i)), at(float64(60*i+60)), 100))
	}
	other := storedSeg(t, db, "b", at(0), at(60), 100)
	open := mustCreate(t, db, "a", at(360), at(420)) // still recording: never chosen
	lock, err := db.CreateEvidenceLock(ctx, EvidenceLock{Cameras: []string{"a"}, From: at(70), To: at(80),
		CaseNumber: "C-1", CreatedBy: "op", Created: at(1000)})
	if err != nil {
		t.Fatal(err)
	}
	un, locked, err := db.CameraBytes(ctx, "a")
	if err != nil || un != 500 || locked != 100 {
		t.Fatalf("CameraBytes = %d, %d, %v; want 500, 100", un, locked, err)
	}

	// Age: everything ending by 240 s but the locked [60,120) segment.
	got, err := db.MarkDeleting(ctx, DeleteSelect{Camera: "a", Before: at(240), Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if want := []int64{segs[0].ID, segs[2].ID}; !equalIDs(ids(got), want) {
		t.Fatalf("chunk 1 = %v, want %v", ids(got), want)
	}
	got, err = db.MarkDeleting(ctx, DeleteSelect{Camera: "a", Before: at(240), Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if want := []int64{segs[3].ID}; !equalIDs(ids(got), want) {
		t.Fatalf("chunk 2 = %v, want %v", ids(got), want)
	}
	dl, err := db.SegmentsByState(ctx, recording.StateDeleting)
	if err != nil || len(dl) != 3 {
		t.Fatalf("deleting rows = %d, %v; want 3", len(dl), err)
	}
	// Bytes: 150 bytes more means two segments (the oldest left, 4 and 5).
	got, err = db.MarkDeleting(ctx, DeleteSelect{Camera: "a", Before: at(1e6), Bytes: 150})
	if err != nil {
		t.Fatal(err)
	}
	if want := []int64{segs[4].ID, segs[5].ID}; !equalIDs(ids(got), want) {
		t.Fatalf("bytes = %v, want %v", ids(got), want)
	}
	if err := db.DeleteSegmentRows(ctx, ids(dl)); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteSegmentRows(ctx, ids(dl)); err != nil { // a retry
		t.Fatal(err)
	}
	for _, id := range ids(dl) {
		if _, err := db.Segment(ctx, id); !errors.Is(err, ErrNotFound) {
			t.Fatalf("segment %d after delete: %v", id, err)
		}
	}
	// Unlocked, the locked segment goes too; b and the open one never.
	if err := db.UnlockEvidence(ctx, lock.ID, "admin", at(2000)); err != nil {
		t.Fatal(err)
	}
	if err := db.UnlockEvidence(ctx, lock.ID, "admin", at(2000)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second unlock: %v", err)
	}
	got, err = db.MarkDeleting(ctx, DeleteSelect{Camera: "a", Before: at(1e6)})
	if err != nil {
		t.Fatal(err)
	}
	if want := []int64{segs[1].ID}; !equalIDs(ids(got), want) {
		t.Fatalf("after unlock = %v, want %v", ids(got), want)
	}
	for _, s := range []recording.Segment{other, open} {
		if g, err := db.Segment(ctx, s.ID); err != nil || g.State == recording.StateDeleting {
			t.Fatalf("segment %d: %+v, %v", s.ID, g, err)
		}
	}
	all, err := db.EvidenceLocks(ctx, true)
	if err != nil || len(all) != 1 || all[0].Active() || all[0].UnlockedBy != "admin" || all[0].Cameras[0] != "a" {
		t.Fatalf("locks = %+v, %v", all, err)
	}
	if act, err := db.EvidenceLocks(ctx, false); err != nil || len(act) != 0 {
		t.Fatalf("active locks = %+v, %v", act, err)
	}
}

func TestRetentionOverrides(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	if err := db.PutCamera(ctx, Camera{ID: "a", Township: "t1", Source: SourceAPI}); err != nil {
		t.Fatal(err)
	}
	if err := db.SetCameraRetention(ctx, "a", RetentionOverride{MaxAge: 90 * 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	if err := db.SetCameraRetention(ctx, "nope", RetentionOverride{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown camera: %v", err)
	}
	if err := db.SetTownshipRetention(ctx, "t1", RetentionOverride{MaxBytes: 5}, at(0)); err != nil {
		t.Fatal(err)
	}
	cr, err := db.CameraRetentions(ctx)
	if err != nil || len(cr) != 1 || cr[0].Override.MaxAge != 90*24*time.Hour || cr[0].Township != "t1" {
		t.Fatalf("camera retentions = %+v, %v", cr, err)
	}
	tr, err := db.TownshipRetentions(ctx)
	if err != nil || tr["t1"].MaxBytes != 5 {
		t.Fatalf("township retentions = %+v, %v", tr, err)
	}
	if err := db.SetTownshipRetention(ctx, "t1", RetentionOverride{}, at(0)); err != nil {
		t.Fatal(err)
	}
	if tr, _ := db.TownshipRetentions(ctx); len(tr) != 0 {
		t.Fatalf("after reset: %+v", tr)
	}
}

func equalIDs(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// BenchmarkRetentionDelete is the retention worker's index work per chunk:
// MarkDeleting of the 500 oldest stored segments of a camera, then
// DeleteSegmentRows (coverage triggers included). One op = one chunk; the
// rows/s metric is what matters. Two archive sizes show that the cost per
// deleted row does not grow with the archive (the oldest rows are found by
// the (camera_id, start_ns) index, not a scan).
func BenchmarkRetentionDelete(b *testing.B) {
	for _, days := range []int{3, 30} {
		b.Run(fmt.Sprintf("cameras=10/days=%d", days), func(b *testing.B) {
			ctx := context.Background()
			db, err := Open(ctx, filepath.Join(b.TempDir(), "index.db"), nil)
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			const cams = 10
			perCam := days * 24 * 60
			_, err = db.LoadSegments(ctx, func(yield func(recording.Segment) bool) {
				for c := range cams {
					cam := fmt.Sprintf("cam%02d", c)
					for i := range perCam {
						start := t0.Add(time.Duration(i) * time.Minute)
						if !yield(recording.Segment{CameraID: cam, Start: start, End: start.Add(time.Minute),
							ObjectKey: fmt.Sprintf("%s/%d", cam, i), Size: 30 << 20, State: recording.StateStored}) {
							return
						}
					}
				}
			})
			if err != nil {
				b.Fatal(err)
			}
			horizon := t0.Add(time.Duration(perCam) * time.Minute)
			rows, c := 0, 0
			b.ReportAllocs()
			for b.Loop() {
				segs, err := db.MarkDeleting(ctx, DeleteSelect{Camera: fmt.Sprintf("cam%02d", c%cams), Before: horizon, Limit: 500})
				if err != nil {
					b.Fatal(err)
				}
				if len(segs) == 0 {
					b.Fatal("archive exhausted: raise days")
				}
				if err := db.DeleteSegmentRows(ctx, ids(segs)); err != nil {
					b.Fatal(err)
				}
				rows += len(segs)
				c++
			}
			b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
