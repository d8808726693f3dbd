package compliance

import (
	"context"
	"math"
	"path/filepath"
	"testing"
	"time"

	"xueliang/index"
	"xueliang/storage/recording"
)

const day = 24 * time.Hour

var now = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func openIndex(t *testing.T) *index.DB {
	t.Helper()
	db, err := index.Open(context.Background(), filepath.Join(t.TempDir(), "index.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// record writes one-hour segments of camera covering [from, to), each
// followed by hole (0 for back to back).
func record(t *testing.T, db *index.DB, camera string, from, to time.Time, hole time.Duration) {
	t.Helper()
	for s := from; s.Before(to); {
		e := s.Add(time.Hour)
		if e.After(to) {
			e = to
		}
		seg := recording.Segment{CameraID: camera, Start: s, End: e, ObjectKey: camera + s.Format(time.RFC3339Nano), State: recording.StateStored}
		if err := db.CreateSegment(context.Background(), &seg); err != nil {
			t.Fatal(err)
		}
		s = e.Add(hole)
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-6 }

func TestComputeOnSQLite(t *testing.T) {
	ctx := context.Background()
	db := openIndex(t)
	for _, c := range []index.Camera{{ID: "a", Township: "t1"}, {ID: "b", Township: "t1"}, {ID: "c", Township: "t2"},
		{ID: "d", Township: "t2"}, {ID: "e", Township: "t3"}} {
		if err := db.PutCamera(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	// Precedence: township t1 says 10 days, camera b says 3 days, camera e
	// says 2 days under a township of 20; c and d inherit the server's 30.
	if err := db.SetTownshipRetention(ctx, "t1", index.RetentionOverride{MaxAge: 10 * day}, now); err != nil {
		t.Fatal(err)
	}
	if err := db.SetTownshipRetention(ctx, "t3", index.RetentionOverride{MaxAge: 20 * day}, now); err != nil {
		t.Fatal(err)
	}
	for cam, age := range map[string]time.Duration{"b": 3 * day, "e": 2 * day} {
		if err := db.SetCameraRetention(ctx, cam, index.RetentionOverride{MaxAge: age}); err != nil {
			t.Fatal(err)
		}
	}
	// a: 12 days, a 2-hour gap ending 5 days ago, 100 ms holes (within the
	// tolerance) every hour of the last 5 days, the newest fragment ending
	// 30 s ago (the fragment in progress).
	record(t, db, "a", now.Add(-12*day), now.Add(-5*day-2*time.Hour), 0)
	record(t, db, "a", now.Add(-5*day), now.Add(-30*time.Second), 100*time.Millisecond)
	// b: 4 days back to back, up to 10 s ago.
	record(t, db, "b", now.Add(-4*day), now.Add(-10*time.Second), 0)
	// c: nothing. d: 3 days that ended 2 hours ago.
	record(t, db, "d", now.Add(-3*day-2*time.Hour), now.Add(-2*time.Hour), 0)
	// e: 1.5 days up to now (target 2 days: within the day of slack,
	// compliant; the 12 hours before its footage are a gap).
	record(t, db, "e", now.Add(-36*time.Hour), now, 0)

	svc := New(Config{Index: db, MaxAge: 30 * day, GapTolerance: 250 * time.Millisecond, Now: func() time.Time { return now }})
	got, err := svc.Compute(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	want := []Status{
		{Camera: "a", Township: "t1", ArchiveDays: 5, Target: 10 * day, Oldest: now.Add(-12 * day), Gaps: 1, GapSeconds: 7200},
		{Camera: "b", Township: "t1", ArchiveDays: 4, Target: 3 * day, Oldest: now.Add(-4 * day), Compliant: true},
		{Camera: "c", Township: "t2", Target: 30 * day, Gaps: 1, GapSeconds: (30 * day).Seconds()},
		// d: the last 30 days are a leading gap before its footage and the
		// 2 hours since.
		{Camera: "d", Township: "t2", Target: 30 * day, Oldest: now.Add(-3*day - 2*time.Hour), Gaps: 2,
			GapSeconds: (27*day - 2*time.Hour).Seconds() + 7200},
		{Camera: "e", Township: "t3", ArchiveDays: 1.5, Target: 2 * day, Oldest: now.Add(-36 * time.Hour), Gaps: 1,
			GapSeconds: (12 * time.Hour).Seconds(), Compliant: true},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d statuses, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if g.Camera != w.Camera || g.Township != w.Township || !near(g.ArchiveDays, w.ArchiveDays) || g.Target != w.Target ||
			!g.Oldest.Equal(w.Oldest) || g.Gaps != w.Gaps || !near(g.GapSeconds, w.GapSeconds) || g.Compliant != w.Compliant {
			t.Errorf("camera %s:\n got %+v\nwant %+v", w.Camera, g, w)
		}
	}
	t1, err := svc.Compute(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	if len(t1) != 2 || t1[0].Camera != "a" || t1[1].Camera != "b" {
		t.Errorf("township t1: %+v", t1)
	}
}

// TestCachedRefresh: a scrape within Refresh of the last one reuses its
// result; after Refresh the index is read again.
func TestCachedRefresh(t *testing.T) {
	ctx := context.Background()
	db := openIndex(t)
	clock := now
	svc := New(Config{Index: db, MaxAge: 30 * day, GapTolerance: time.Second, Now: func() time.Time { return clock }})
	record(t, db, "x", now.Add(-2*day), now, 0)
	st, err := svc.Cached(ctx)
	if err != nil || len(st) != 1 || !near(st[0].ArchiveDays, 2) {
		t.Fatalf("first: %+v %v", st, err)
	}
	record(t, db, "x", now, now.Add(40*time.Second), 0)
	record(t, db, "y", now.Add(-day), now.Add(40*time.Second), 0)
	clock = now.Add(40 * time.Second)
	if st, err = svc.Cached(ctx); err != nil || len(st) != 1 || !near(st[0].ArchiveDays, 2) {
		t.Fatalf("within the refresh: %+v %v", st, err)
	}
	clock = now.Add(DefaultRefresh + time.Second)
	if st, err = svc.Cached(ctx); err != nil || len(st) != 2 {
		t.Fatalf("after the refresh: %+v %v", st, err)
	}
}
