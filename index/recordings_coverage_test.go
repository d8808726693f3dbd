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

// timelineFromSegments is the reference Timeline: every overlapping
// segment row merged in Go (what Timeline did before the coverage table).
func timelineFromSegments(t *testing.T, db *DB, camera string, from, to time.Time, tol time.Duration) ([]recording.Span, []recording.Gap) {
	t.Helper()
	f, tt := toNS(from), toNS(to)
	rows, err := db.r.Query(`SELECT start_ns, end_ns FROM segments WHERE camera_id = ? AND start_ns < ? AND end_ns > ? ORDER BY start_ns`,
		camera, tt, f)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var ivs [][2]int64
	for rows.Next() {
		var s, e int64
		if err := rows.Scan(&s, &e); err != nil {
			t.Fatal(err)
		}
		ivs = append(ivs, [2]int64{s, e})
	}
	return buildTimeline(ivs, f, tt, toNS(db.now()), int64(tol))
}

// testCoverageMatchesSegments applies random writes (creates, fragment
// growth, finishes that shrink, deletes, overlaps, bucket-straddling and
// pre-1970 segments) and checks after each that Timeline, which reads the
// trigger-maintained coverage table, equals merging the segment rows.
func testCoverageMatchesSegments(t *testing.T, be *backend) {
	ctx := context.Background()
	db := be.open(t)
	rng := rand.New(rand.NewPCG(1, 2))
	const bucket = int64(1) << 42
	bases := []time.Time{t0, time.Unix(0, 0).Add(-3 * time.Duration(bucket) / 2), time.Unix(0, 5*bucket-int64(time.Minute))}
	db.now = func() time.Time { return t0.Add(1000 * time.Hour) }
	type live struct {
		id         int64
		cam        string
		start, end time.Time
	}
	var segs []live
	n := 0
	for step := range 1500 {
		switch op := rng.IntN(10); {
		case op < 4 || len(segs) == 0: // create, empty or not
			cam := fmt.Sprintf("cam%d", rng.IntN(2))
			st := bases[rng.IntN(len(bases))].Add(time.Duration(rng.Int64N(int64(3 * time.Hour))))
			end := st
			if rng.IntN(2) == 0 {
				end = st.Add(time.Duration(rng.Int64N(int64(10 * time.Minute))))
			}
			n++
			seg := recording.Segment{CameraID: cam, Start: st, End: end, ObjectKey: fmt.Sprint(n)}
			if err := db.CreateSegment(ctx, &seg); err != nil {
				t.Fatal(err)
			}
			segs = append(segs, live{seg.ID, cam, st, end})
		case op < 7: // grow by a fragment
			s := &segs[rng.IntN(len(segs))]
			e := s.end.Add(time.Duration(rng.Int64N(int64(3 * time.Minute))))
			if err := db.AddFragments(ctx, []recording.Fragment{{SegmentID: s.id, Seq: 1, Start: s.start, End: e, Size: 1}}); err != nil {
				t.Fatal(err)
			}
			s.end = e
		case op < 9: // finish, possibly shorter (recovery truncation)
			s := &segs[rng.IntN(len(segs))]
			e := s.start.Add(time.Duration(rng.Int64N(int64(s.end.Sub(s.start)) + 1)))
			if err := db.FinishSegment(ctx, s.id, e, 1, ""); err != nil {
				t.Fatal(err)
			}
			s.end = e
		case rng.IntN(2) == 0:
			k := rng.IntN(len(segs))
			if err := db.DeleteSegment(ctx, segs[k].id); err != nil {
				t.Fatal(err)
			}
			segs = slices.Delete(segs, k, k+1)
		default: // retention's batch delete (the trigger dropped, buckets rebuilt once)
			var ids []int64
			for range 1 + rng.IntN(3) {
				if len(segs) == 0 {
					break
				}
				k := rng.IntN(len(segs))
				ids = append(ids, segs[k].id)
				segs = slices.Delete(segs, k, k+1)
			}
			if err := db.DeleteSegmentRows(ctx, ids); err != nil {
				t.Fatal(err)
			}
		}
		for _, cam := range []string{"cam0", "cam1"} {
			b := bases[rng.IntN(len(bases))]
			from := b.Add(time.Duration(rng.Int64N(int64(4*time.Hour))) - time.Hour)
			to := from.Add(time.Duration(rng.Int64N(int64(5 * time.Hour))))
			tol := time.Duration(rng.IntN(3)) * time.Duration(rng.Int64N(int64(time.Minute)))
			spans, gaps, err := db.Timeline(ctx, cam, from, to, tol)
			if err != nil {
				t.Fatal(err)
			}
			wantS, wantG := timelineFromSegments(t, db, cam, from, to, tol)
			if !slices.Equal(spans, wantS) || !slices.Equal(gaps, wantG) {
				t.Fatalf("step %d %s [%v, %v) tol %v:\nspans %v\nwant  %v\ngaps %v\nwant %v", step, cam, from, to, tol, spans, wantS, gaps, wantG)
			}
		}
	}
}
