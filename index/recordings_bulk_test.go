package index

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
	"xueliang/storage/recording"
)

// testLoadSegmentsKeepsCoverage bulk-loads overlapping, empty, touching and
// pre-1970 segments into an index that already has rows, then checks that
// Timeline (coverage) equals merging the segment rows, that the triggers
// are back (a later CreateSegment is still covered) and max_segment_ns.
func testLoadSegmentsKeepsCoverage(t *testing.T, be *backend) {
	ctx := context.Background()
	db := be.open(t)
	db.now = func() time.Time { return t0.Add(1000 * time.Hour) }
	pre := recording.Segment{CameraID: "cam0", Start: t0, End: t0.Add(time.Minute), ObjectKey: "pre"}
	if err := db.CreateSegment(ctx, &pre); err != nil {
		t.Fatal(err)
	}
	triggersBefore := countTriggers(t, db)
	rng := rand.New(rand.NewPCG(3, 4))
	bases := []time.Time{t0, time.Unix(0, 0).Add(-90 * time.Minute)}
	var want int64
	segs := func(yield func(recording.Segment) bool) {
		for i := range 3000 {
			st := bases[i%2].Add(time.Duration(rng.Int64N(int64(6 * time.Hour))))
			d := time.Duration(rng.Int64N(int64(2 * time.Minute)))
			if rng.IntN(10) == 0 {
				d = 0
			}
			want++
			if !yield(recording.Segment{CameraID: fmt.Sprintf("cam%d", rng.IntN(3)), Start: st, End: st.Add(d),
				ObjectKey: fmt.Sprintf("bulk/%d", i), State: recording.StateStored}) {
				return
			}
		}
	}
	n, err := db.LoadSegments(ctx, segs)
	if err != nil {
		t.Fatal(err)
	}
	if n != want {
		t.Fatalf("loaded %d, want %d", n, want)
	}
	if got := countTriggers(t, db); got != triggersBefore || got == 0 {
		t.Fatalf("triggers after load: %d, before %d", got, triggersBefore)
	}
	later := recording.Segment{CameraID: "cam1", Start: t0.Add(7 * time.Hour), End: t0.Add(7*time.Hour + time.Minute), ObjectKey: "later"}
	if err := db.CreateSegment(ctx, &later); err != nil {
		t.Fatal(err)
	}
	for _, cam := range []string{"cam0", "cam1", "cam2"} {
		for _, b := range bases {
			from, to := b.Add(-time.Hour), b.Add(8*time.Hour)
			spans, gaps, err := db.Timeline(ctx, cam, from, to, 0)
			if err != nil {
				t.Fatal(err)
			}
			wantS, wantG := timelineFromSegments(t, db, cam, from, to, 0)
			if !slices.Equal(spans, wantS) || !slices.Equal(gaps, wantG) || len(spans) == 0 {
				t.Fatalf("%s from %v: spans %v\nwant %v\ngaps %v\nwant %v", cam, from, spans, wantS, gaps, wantG)
			}
		}
		var maxNS, wantMax int64
		if err := db.r.QueryRow(`SELECT max_segment_ns FROM cameras WHERE id = ?`, cam).Scan(&maxNS); err != nil {
			t.Fatal(err)
		}
		if err := db.r.QueryRow(`SELECT MAX(end_ns - start_ns) FROM segments WHERE camera_id = ?`, cam).Scan(&wantMax); err != nil {
			t.Fatal(err)
		}
		if maxNS != wantMax {
			t.Errorf("%s max_segment_ns %d, want %d", cam, maxNS, wantMax)
		}
	}
}

// testLoadSegmentsAllOrNothing: a bad row rolls back the whole load and
// leaves the triggers in place.
func testLoadSegmentsAllOrNothing(t *testing.T, be *backend) {
	ctx := context.Background()
	db := be.open(t)
	before := countTriggers(t, db)
	segs := []recording.Segment{
		{CameraID: "cam0", Start: t0, End: t0.Add(time.Minute), ObjectKey: "a"},
		{CameraID: "cam0", Start: t0, End: t0.Add(time.Minute), ObjectKey: "a"}, // duplicate key
	}
	if _, err := db.LoadSegments(ctx, slices.Values(segs)); err == nil {
		t.Fatal("duplicate object key loaded")
	}
	var n int
	if err := db.r.QueryRow(`SELECT COUNT(*) FROM segments`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("segments after failed load: %d, %v", n, err)
	}
	if got := countTriggers(t, db); got != before {
		t.Fatalf("triggers after failed load: %d, want %d", got, before)
	}
}

func countTriggers(t *testing.T, db *DB) int {
	t.Helper()
	var n int
	q := `SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'segments'`
	if db.dialect == dialectPostgres {
		// Enabled triggers only: a failed load must not leave them off.
		q = `SELECT COUNT(*) FROM pg_trigger WHERE tgrelid = 'segments'::regclass AND NOT tgisinternal AND tgenabled <> 'D'`
	}
	if err := db.r.QueryRow(q).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
