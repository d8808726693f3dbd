package index

import (
	"context"
	"errors"
	"testing"
	"time"
)

// testMarkLost: MarkLost moves a row (with its fragments) to
// lost_segments in one step; LostSegments returns it by overlap; a second
// mark of the same id fails and changes nothing; the timeline shows a gap.
func testMarkLost(t *testing.T, be *backend) {
	ctx := context.Background()
	db := be.open(t)
	db.now = func() time.Time { return t0.Add(1000 * time.Hour) }
	s0 := storedSeg(t, db, "a", at(0), at(60), 100)
	s1 := storedSeg(t, db, "a", at(60), at(120), 200)
	s2 := storedSeg(t, db, "a", at(120), at(180), 300)
	if err := db.MarkLost(ctx, s1.ID, at(5000)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Segment(ctx, s1.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("segment after MarkLost: %v", err)
	}
	if err := db.MarkLost(ctx, s1.ID, at(6000)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second MarkLost: %v, want ErrNotFound", err)
	}
	lost, err := db.LostSegments(ctx, "a", at(0), at(1000))
	if err != nil || len(lost) != 1 {
		t.Fatalf("LostSegments = %+v, %v", lost, err)
	}
	l := lost[0]
	if l.ID != s1.ID || l.CameraID != "a" || !l.Start.Equal(s1.Start) || !l.End.Equal(at(120)) || l.ObjectKey != s1.ObjectKey ||
		l.Size != 200 || l.SHA256 != "00" || !l.Lost.Equal(at(5000)) {
		t.Fatalf("lost = %+v", l)
	}
	for _, r := range [][2]float64{{0, 60}, {120, 200}} { // touching only
		if got, err := db.LostSegments(ctx, "a", at(r[0]), at(r[1])); err != nil || len(got) != 0 {
			t.Fatalf("LostSegments [%v, %v) = %+v, %v", r[0], r[1], got, err)
		}
	}
	if got, err := db.LostSegments(ctx, "b", at(0), at(1000)); err != nil || len(got) != 0 {
		t.Fatalf("LostSegments of b = %+v, %v", got, err)
	}
	spans, gaps, err := db.Timeline(ctx, "a", at(0), at(180), 0)
	if err != nil || len(spans) != 2 || len(gaps) != 1 || !gaps[0].Start.Equal(at(60)) || !gaps[0].End.Equal(at(120)) {
		t.Fatalf("timeline = %v, %v, %v", spans, gaps, err)
	}
	// A new segment gets a fresh id, never the lost one's.
	s3 := storedSeg(t, db, "a", at(180), at(240), 1)
	if s3.ID <= s2.ID || s3.ID == s1.ID || s0.ID == s1.ID {
		t.Fatalf("ids %d %d %d %d", s0.ID, s1.ID, s2.ID, s3.ID)
	}
}
