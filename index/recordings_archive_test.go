package index

import (
	"context"
	"fmt"
	"testing"
	"time"

	"xueliang/storage/recording"
)

// testCameraArchive: the newest span merged backwards over holes within
// the tolerance, across coverage buckets (≈73 min), stopped by a longer
// hole; a segment longer than several buckets that starts before a hole
// and ends after it keeps the span unbroken; empty segments and other
// cameras do not count; a camera without footage has a zero Archive.
func testCameraArchive(t *testing.T, be *backend) {
	ctx := context.Background()
	db := be.open(t)
	n := 0
	add := func(cam string, s, e time.Time) {
		t.Helper()
		n++
		seg := recording.Segment{CameraID: cam, Start: s, End: e, ObjectKey: fmt.Sprint(n)}
		if err := db.CreateSegment(ctx, &seg); err != nil {
			t.Fatal(err)
		}
	}
	tol := 500 * time.Millisecond
	// a: 10 min segments for 2 h, a 5 s hole, then 6 h of 10 min segments
	// with 400 ms holes; an empty segment after the end.
	base := t0
	for s := base; s.Before(base.Add(2 * time.Hour)); s = s.Add(10 * time.Minute) {
		add("a", s, s.Add(10*time.Minute))
	}
	resume := base.Add(2*time.Hour + 5*time.Second)
	var end time.Time
	for s := resume; s.Before(resume.Add(6 * time.Hour)); s = s.Add(10*time.Minute + 400*time.Millisecond) {
		end = s.Add(10 * time.Minute)
		add("a", s, end)
	}
	add("a", end.Add(time.Hour), end.Add(time.Hour))
	add("other", end, end.Add(time.Hour))
	a, err := db.CameraArchive(ctx, "a", tol)
	if err != nil {
		t.Fatal(err)
	}
	if !a.Oldest.Equal(base) || !a.Since.Equal(resume) || !a.Until.Equal(end) {
		t.Errorf("a: %+v, want oldest %s since %s until %s", a, base, resume, end)
	}
	// With a tolerance above the 5 s hole, the span reaches back to base.
	if a, err = db.CameraArchive(ctx, "a", 6*time.Second); err != nil || !a.Since.Equal(base) {
		t.Errorf("a, tolerance 6s: %+v %v", a, err)
	}

	// b: a 5-hour segment (several buckets) from base, then a 1 h hole in
	// short segments: [base+3h, base+3h10m), hole, [base+4h10m, base+6h) in
	// 10 min segments. The long segment covers the hole, so the span
	// starts at base; an older, separate segment does not join.
	add("b", base.Add(-time.Hour), base.Add(-time.Minute))
	add("b", base, base.Add(5*time.Hour))
	add("b", base.Add(3*time.Hour), base.Add(3*time.Hour+10*time.Minute))
	for s := base.Add(4*time.Hour + 10*time.Minute); s.Before(base.Add(6 * time.Hour)); s = s.Add(10 * time.Minute) {
		add("b", s, s.Add(10*time.Minute))
	}
	b, err := db.CameraArchive(ctx, "b", tol)
	if err != nil {
		t.Fatal(err)
	}
	if !b.Oldest.Equal(base.Add(-time.Hour)) || !b.Since.Equal(base) || !b.Until.Equal(base.Add(6*time.Hour)) {
		t.Errorf("b: %+v", b)
	}

	if z, err := db.CameraArchive(ctx, "none", tol); err != nil || z != (Archive{}) {
		t.Errorf("camera without footage: %+v %v", z, err)
	}
}
