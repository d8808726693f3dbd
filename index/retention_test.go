package index

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"
	"xueliang/index/pgtest"
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

func testMarkDeletingOldestUnlockedStored(t *testing.T, be *backend) {
	ctx := context.Background()
	db := be.open(t)
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

// testLockedBytes: LockedBytes agrees with CameraBytes' locked figure —
// a segment under two overlapping locks counts once, a long segment that
// starts well before a lock counts, an unlocked lock, another camera's
// lock, a segment only touching a lock's end and a not yet stored
// segment do not.
func testLockedBytes(t *testing.T, be *backend) {
	ctx := context.Background()
	db := be.open(t)
	storedSeg(t, db, "a", at(0), at(600), 1)      // long: overlaps [590, 650)
	storedSeg(t, db, "a", at(600), at(660), 10)   // both locks
	storedSeg(t, db, "a", at(660), at(720), 100)  // second lock
	storedSeg(t, db, "a", at(720), at(780), 1000) // touches the second lock's end only
	storedSeg(t, db, "b", at(600), at(660), 10000)
	mustCreate(t, db, "a", at(700), at(760)) // recording
	lock := func(cams []string, from, to float64) EvidenceLock {
		l, err := db.CreateEvidenceLock(ctx, EvidenceLock{Cameras: cams, From: at(from), To: at(to),
			CaseNumber: "C", CreatedBy: "op", Created: at(1000)})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	check := func(want int64) {
		t.Helper()
		got, err := db.LockedBytes(ctx, "a")
		_, viaAll, err2 := db.CameraBytes(ctx, "a")
		if err != nil || err2 != nil || got != want || viaAll != want {
			t.Fatalf("LockedBytes = %d, %v; CameraBytes locked = %d, %v; want %d", got, err, viaAll, err2, want)
		}
	}
	check(0)
	lock([]string{"a"}, 590, 650)
	check(11)
	lock([]string{"a", "b"}, 610, 720)
	check(111)
	old := lock([]string{"a"}, 720, 780)
	check(1111)
	if err := db.UnlockEvidence(ctx, old.ID, "admin", at(2000)); err != nil {
		t.Fatal(err)
	}
	check(111)
}

func testRetentionOverrides(t *testing.T, be *backend) {
	ctx := context.Background()
	db := be.open(t)
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
	benchmarkRetentionDelete(b, func(b *testing.B) (*DB, error) {
		return Open(context.Background(), filepath.Join(b.TempDir(), "index.db"), nil)
	})
}

// BenchmarkRetentionDeletePostgres is BenchmarkRetentionDelete on a real
// PostgreSQL (index/pgtest).
func BenchmarkRetentionDeletePostgres(b *testing.B) {
	srv := pgtest.Start(b)
	benchmarkRetentionDelete(b, func(b *testing.B) (*DB, error) {
		return OpenPostgres(context.Background(), srv.NewDatabase(b), nil)
	})
}

func benchmarkRetentionDelete(b *testing.B, open func(b *testing.B) (*DB, error)) {
	for _, days := range []int{3, 30} {
		b.Run(fmt.Sprintf("cameras=10/days=%d", days), func(b *testing.B) {
			ctx := context.Background()
			db, err := open(b)
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

// testEvidenceLocksManyCameras: a lock lists its cameras sorted, a
// duplicate once; EvidenceLock finds one by id; LockedSegments and
// OldestUnlockedStart see the lock.
func testEvidenceLocksManyCameras(t *testing.T, be *backend) {
	ctx := context.Background()
	db := be.open(t)
	a0 := storedSeg(t, db, "a", at(0), at(60), 10)
	a1 := storedSeg(t, db, "a", at(60), at(120), 10)
	storedSeg(t, db, "c", at(0), at(60), 10)
	if _, err := db.CreateEvidenceLock(ctx, EvidenceLock{Cameras: []string{"a"}, From: at(0), To: at(0), CaseNumber: "x"}); err == nil {
		t.Fatal("empty range accepted")
	}
	l1, err := db.CreateEvidenceLock(ctx, EvidenceLock{Cameras: []string{"c", "a", "b", "a"}, From: at(10), To: at(20),
		CaseNumber: "C-1", Reason: "theft", CreatedBy: "op", Created: at(500)})
	if err != nil {
		t.Fatal(err)
	}
	l2, err := db.CreateEvidenceLock(ctx, EvidenceLock{Cameras: []string{"b"}, From: at(0), To: at(1), CaseNumber: "C-2", Created: at(600)})
	if err != nil {
		t.Fatal(err)
	}
	if l1.ID == 0 || l2.ID <= l1.ID {
		t.Fatalf("lock ids %d, %d", l1.ID, l2.ID)
	}
	got, err := db.EvidenceLock(ctx, l1.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Cameras, []string{"a", "b", "c"}) || got.CaseNumber != "C-1" || got.Reason != "theft" ||
		got.CreatedBy != "op" || !got.From.Equal(at(10)) || !got.To.Equal(at(20)) || !got.Created.Equal(at(500)) || !got.Active() {
		t.Fatalf("lock = %+v", got)
	}
	if _, err := db.EvidenceLock(ctx, l2.ID+100); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown lock: %v", err)
	}
	all, err := db.EvidenceLocks(ctx, false)
	if err != nil || len(all) != 2 || all[0].ID != l2.ID || all[1].ID != l1.ID {
		t.Fatalf("active locks = %+v, %v (want newest first)", all, err)
	}
	ls, err := db.LockedSegments(ctx, "a", at(10), at(20))
	if err != nil || !equalIDs(ids(ls), []int64{a0.ID}) {
		t.Fatalf("locked segments = %v, %v; want [%d]", ids(ls), err, a0.ID)
	}
	old, err := db.OldestUnlockedStart(ctx, "a")
	if err != nil || !old.Equal(a1.Start) {
		t.Fatalf("oldest unlocked = %v, %v; want %v", old, err, a1.Start)
	}
	if old, err := db.OldestUnlockedStart(ctx, "none"); err != nil || !old.IsZero() {
		t.Fatalf("oldest unlocked of an empty camera = %v, %v", old, err)
	}
	if err := db.UnlockEvidence(ctx, l1.ID, "admin", at(700)); err != nil {
		t.Fatal(err)
	}
	if old, err := db.OldestUnlockedStart(ctx, "a"); err != nil || !old.Equal(a0.Start) {
		t.Fatalf("oldest unlocked after unlock = %v, %v; want %v", old, err, a0.Start)
	}
	got, err = db.EvidenceLock(ctx, l1.ID)
	if err != nil || got.Active() || got.UnlockedBy != "admin" || !got.Unlocked.Equal(at(700)) {
		t.Fatalf("unlocked lock = %+v, %v", got, err)
	}
}

// testReleaseLocked: a lock made after MarkDeleting chose a segment puts
// it back to stored; the others stay deleting.
func testReleaseLocked(t *testing.T, be *backend) {
	ctx := context.Background()
	db := be.open(t)
	s0 := storedSeg(t, db, "a", at(0), at(60), 10)
	s1 := storedSeg(t, db, "a", at(60), at(120), 10)
	got, err := db.MarkDeleting(ctx, DeleteSelect{Camera: "a", Before: at(1000)})
	if err != nil || !equalIDs(ids(got), []int64{s0.ID, s1.ID}) {
		t.Fatalf("MarkDeleting = %v, %v", ids(got), err)
	}
	if _, err := db.CreateEvidenceLock(ctx, EvidenceLock{Cameras: []string{"a"}, From: at(90), To: at(100), CaseNumber: "C"}); err != nil {
		t.Fatal(err)
	}
	rel, err := db.ReleaseLocked(ctx, []int64{s0.ID, s1.ID, s1.ID + 100})
	if err != nil || !equalIDs(rel, []int64{s1.ID}) {
		t.Fatalf("ReleaseLocked = %v, %v; want [%d]", rel, err, s1.ID)
	}
	for id, want := range map[int64]recording.SegmentState{s0.ID: recording.StateDeleting, s1.ID: recording.StateStored} {
		if g, err := db.Segment(ctx, id); err != nil || g.State != want {
			t.Fatalf("segment %d: state %v, %v; want %v", id, g.State, err, want)
		}
	}
	if rel, err := db.ReleaseLocked(ctx, []int64{s1.ID}); err != nil || len(rel) != 0 {
		t.Fatalf("ReleaseLocked of a stored segment = %v, %v", rel, err)
	}
}

// testDeleteSegmentRowsKeepsCoverage: the batch delete removes the rows
// and their fragments and leaves the timeline equal to the rows left,
// across two buckets and two cameras, and the coverage trigger still
// works afterwards.
func testDeleteSegmentRowsKeepsCoverage(t *testing.T, be *backend) {
	ctx := context.Background()
	db := be.open(t)
	db.now = func() time.Time { return t0.Add(1000 * time.Hour) }
	const bucket = time.Duration(1) << coverageShiftBits
	var segs []recording.Segment
	for i := range 8 {
		st := at(float64(i) * bucket.Seconds() / 4)
		segs = append(segs, storedSeg(t, db, "a", st, st.Add(time.Minute), 1))
		storedSeg(t, db, "b", st, st.Add(time.Minute), 1)
	}
	if err := db.AddFragments(ctx, []recording.Fragment{{SegmentID: segs[1].ID, Seq: 1, Start: segs[1].Start, End: segs[1].End, Size: 1}}); err != nil {
		t.Fatal(err)
	}
	del := []int64{segs[1].ID, segs[2].ID, segs[5].ID}
	if err := db.DeleteSegmentRows(ctx, del); err != nil {
		t.Fatal(err)
	}
	for _, id := range del {
		if _, err := db.Segment(ctx, id); !errors.Is(err, ErrNotFound) {
			t.Fatalf("segment %d after delete: %v", id, err)
		}
	}
	if fr, err := db.Fragments(ctx, segs[1].ID, segs[1].Start, segs[1].End); err != nil || len(fr) != 0 {
		t.Fatalf("fragments of a deleted segment = %v, %v", fr, err)
	}
	check := func() {
		t.Helper()
		for _, cam := range []string{"a", "b"} {
			from, to := at(-60), at(3*bucket.Seconds())
			spans, gaps, err := db.Timeline(ctx, cam, from, to, 0)
			if err != nil {
				t.Fatal(err)
			}
			wantS, wantG := timelineFromSegments(t, db, cam, from, to, 0)
			if !slices.Equal(spans, wantS) || !slices.Equal(gaps, wantG) {
				t.Fatalf("%s: spans %v want %v; gaps %v want %v", cam, spans, wantS, gaps, wantG)
			}
		}
	}
	check()
	if spans, _, err := db.Timeline(ctx, "a", at(-60), at(3*bucket.Seconds()), 0); err != nil || len(spans) != 5 {
		t.Fatalf("camera a spans = %v, %v; want 5", spans, err)
	}
	// The trigger is back: a delete and an insert keep coverage right.
	if err := db.DeleteSegment(ctx, segs[0].ID); err != nil {
		t.Fatal(err)
	}
	storedSeg(t, db, "a", segs[2].Start, segs[2].End, 1)
	check()
	if spans, _, err := db.Timeline(ctx, "a", at(-60), at(3*bucket.Seconds()), 0); err != nil || len(spans) != 5 {
		t.Fatalf("camera a spans after the trigger = %v, %v; want 5", spans, err)
	}
}

// testDeleteMetadataBefore: motion and closed events ending by t go, the
// ones a lock covers, later ones, open events and other cameras stay.
func testDeleteMetadataBefore(t *testing.T, be *backend) {
	ctx := context.Background()
	db := be.open(t)
	chunk := func(cam string, s float64) recording.MotionChunk {
		return recording.MotionChunk{CameraID: cam, Start: at(s), End: at(s + 10), Active: 1, Data: []byte{1}}
	}
	iv := func(cam string, s float64) recording.MotionInterval {
		return recording.MotionInterval{CameraID: cam, Start: at(s), End: at(s + 10), Seconds: 1}
	}
	ev := func(cam string, s float64, closed bool) recording.CameraEvent {
		e := recording.CameraEvent{CameraID: cam, Source: recording.CameraEventSourceONVIF, Topic: "t", Rule: "r", Start: at(s)}
		if closed {
			e.End = at(s + 10)
		}
		return e
	}
	if err := db.AddMotion(ctx,
		[]recording.MotionChunk{chunk("a", 0), chunk("a", 100), chunk("a", 500), chunk("b", 0)},
		[]recording.MotionInterval{iv("a", 0), iv("a", 100), iv("a", 500), iv("b", 0)}); err != nil {
		t.Fatal(err)
	}
	if err := db.AddCameraEvents(ctx, []recording.CameraEvent{ev("a", 0, true), ev("a", 100, true), ev("a", 200, false),
		ev("a", 500, true), ev("b", 0, true)}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateEvidenceLock(ctx, EvidenceLock{Cameras: []string{"a"}, From: at(105), To: at(106), CaseNumber: "C"}); err != nil {
		t.Fatal(err)
	}
	n, err := db.DeleteMetadataBefore(ctx, "a", at(300))
	if err != nil || n != 3 {
		t.Fatalf("DeleteMetadataBefore = %d, %v; want 3 (one chunk, interval and event)", n, err)
	}
	act, err := db.MotionIntervals(ctx, "a", at(-100), at(1000), 0)
	if err != nil || len(act) != 2 || !act[0].Start.Equal(at(100)) || !act[1].Start.Equal(at(500)) {
		t.Fatalf("intervals left = %+v, %v", act, err)
	}
	evs, err := db.CameraEvents(ctx, "a", at(-100), at(1000))
	if err != nil || len(evs) != 3 || !evs[0].Start.Equal(at(100)) || !evs[1].End.IsZero() || !evs[2].Start.Equal(at(500)) {
		t.Fatalf("events left = %+v, %v", evs, err)
	}
	var chunks []time.Time
	if err := db.ScanMotion(ctx, "a", at(-100), at(1000), nil, func(c recording.MotionChunk) error {
		chunks = append(chunks, c.Start)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(chunks) != 2 || !chunks[0].Equal(at(100)) || !chunks[1].Equal(at(500)) {
		t.Fatalf("chunks left = %v", chunks)
	}
	if b, err := db.MotionIntervals(ctx, "b", at(-100), at(1000), 0); err != nil || len(b) != 1 {
		t.Fatalf("camera b intervals = %+v, %v", b, err)
	}
}

// testMarkDeletingAcrossCameras is the emergency purge: no camera, oldest
// first by start across cameras, until Bytes, locks respected.
func testMarkDeletingAcrossCameras(t *testing.T, be *backend) {
	ctx := context.Background()
	db := be.open(t)
	a0 := storedSeg(t, db, "a", at(0), at(60), 100)
	b0 := storedSeg(t, db, "b", at(30), at(90), 100)
	a1 := storedSeg(t, db, "a", at(60), at(120), 100)
	b1 := storedSeg(t, db, "b", at(90), at(150), 100)
	if _, err := db.CreateEvidenceLock(ctx, EvidenceLock{Cameras: []string{"b"}, From: at(40), To: at(50), CaseNumber: "C"}); err != nil {
		t.Fatal(err)
	}
	got, err := db.MarkDeleting(ctx, DeleteSelect{Before: at(1000), Bytes: 150})
	if err != nil || !equalIDs(ids(got), []int64{a0.ID, a1.ID}) {
		t.Fatalf("purge = %v, %v; want [%d %d] (b0 locked)", ids(got), err, a0.ID, a1.ID)
	}
	got, err = db.MarkDeleting(ctx, DeleteSelect{Before: at(1000)})
	if err != nil || !equalIDs(ids(got), []int64{b1.ID}) {
		t.Fatalf("second purge = %v, %v; want [%d]", ids(got), err, b1.ID)
	}
	if g, err := db.Segment(ctx, b0.ID); err != nil || g.State != recording.StateStored {
		t.Fatalf("locked segment: %v, %v", g.State, err)
	}
}
