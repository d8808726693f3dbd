package index

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"xueliang/storage/recording"
)

var t0 = time.Date(2024, 5, 6, 7, 0, 0, 0, time.UTC)

func at(sec float64) time.Time { return t0.Add(time.Duration(sec * float64(time.Second))) }

func openTest(t *testing.T) *DB {
	t.Helper()
	db, err := Open(context.Background(), filepath.Join(t.TempDir(), "sub", "index.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func mustCreate(t *testing.T, db *DB, cam string, start, end time.Time) recording.Segment {
	t.Helper()
	seg := recording.Segment{CameraID: cam, Start: start, End: end, ObjectKey: fmt.Sprintf("%s/%d.mp4", cam, start.UnixNano()),
		Init: []byte{1, 2, 3}, Codecs: "H264", Width: 1920, Height: 1080}
	if err := db.CreateSegment(context.Background(), &seg); err != nil {
		t.Fatal(err)
	}
	if seg.ID == 0 {
		t.Fatal("CreateSegment did not set ID")
	}
	return seg
}

func versions(t *testing.T, db *DB) []string {
	t.Helper()
	rows, err := db.r.Query(`SELECT version, applied_ns FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v, ns int64
		if err := rows.Scan(&v, &ns); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprint(v, "@", ns))
	}
	return out
}

func testOpenMigratesOnceAndReopenIsNoop(t *testing.T, be *backend) {
	ctx := context.Background()
	path := be.newDB(t)
	db, err := be.openDSN(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	first := versions(t, db)
	if len(first) != len(migrations) {
		t.Fatalf("schema_migrations has %d rows, want %d", len(first), len(migrations))
	}
	if be.dialect == dialectSQLite {
		var mode string
		if err := db.r.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
			t.Errorf("journal_mode = %q, %v; want wal", mode, err)
		}
		var fk int
		if err := db.w.QueryRow(`PRAGMA foreign_keys`).Scan(&fk); err != nil || fk != 1 {
			t.Errorf("foreign_keys = %d, %v; want 1", fk, err)
		}
	}
	// Foreign keys hold on both engines.
	if _, err := db.w.Exec(`INSERT INTO segments (camera_id, start_ns, end_ns, object_key) VALUES ('nobody', 0, 0, 'orphan')`); err == nil {
		t.Error("a segment of an unknown camera was inserted")
	}
	mustCreate(t, db, "cam", at(0), at(10))
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	db, err = be.openDSN(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if again := versions(t, db); !slices.Equal(first, again) {
		t.Errorf("reopen changed schema_migrations: %v -> %v", first, again)
	}
	if segs, err := db.SegmentsByState(ctx, recording.StateRecording); err != nil || len(segs) != 1 {
		t.Errorf("data after reopen: %v, %v", segs, err)
	}
}

func TestUpgradeFromVersion1(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "index.db")
	// Build a version-1 database by hand, with data.
	w, err := sqlOpenWriter(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := migrate(ctx, w, dialectSQLite, migrations[:1], discard()); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO cameras (id, name) VALUES ('cam', 'Gate')`,
		// A 1 h segment ending at t0+1h and a 10 s one.
		fmt.Sprintf(`INSERT INTO segments (camera_id, start_ns, end_ns, object_key, state) VALUES ('cam', %d, %d, 'a', 2)`,
			t0.UnixNano(), t0.Add(time.Hour).UnixNano()),
		fmt.Sprintf(`INSERT INTO segments (camera_id, start_ns, end_ns, object_key, state) VALUES ('cam', %d, %d, 'b', 2)`,
			t0.Add(time.Hour).UnixNano(), t0.Add(time.Hour+10*time.Second).UnixNano()),
	} {
		if _, err := w.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	db, err := Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if v := versions(t, db); len(v) != len(migrations) {
		t.Fatalf("after upgrade versions = %v, want %d", v, len(migrations))
	}
	var maxNS int64
	if err := db.r.QueryRow(`SELECT max_segment_ns FROM cameras WHERE id = 'cam'`).Scan(&maxNS); err != nil {
		t.Fatal(err)
	}
	if maxNS != int64(time.Hour) {
		t.Errorf("backfilled max_segment_ns = %v, want 1h", time.Duration(maxNS))
	}
	// The long segment is found from a window near its end.
	segs, err := db.SegmentsInRange(ctx, "cam", t0.Add(59*time.Minute), t0.Add(61*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) != 2 || segs[0].ObjectKey != "a" || segs[1].ObjectKey != "b" {
		t.Errorf("SegmentsInRange after upgrade = %+v", segs)
	}
	if c, err := db.Camera(ctx, "cam"); err != nil || c.Name != "Gate" {
		t.Errorf("Camera after upgrade = %+v, %v", c, err)
	}
}

func testSchemaTooNew(t *testing.T, be *backend) {
	ctx := context.Background()
	path := be.newDB(t)
	db, err := be.openDSN(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.w.Exec(`INSERT INTO schema_migrations (version, name, applied_ns) VALUES (999, 'future', 0)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := be.openDSN(ctx, path); !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Open of a newer schema: %v, want ErrSchemaTooNew", err)
	}
}

func testCameras(t *testing.T, be *backend) {
	ctx := context.Background()
	db := be.open(t)
	if _, err := db.Camera(ctx, "x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Camera of missing: %v, want ErrNotFound", err)
	}
	for _, c := range []Camera{{ID: "b", Name: "B"}, {ID: "a", Name: "A"}, {ID: "b", Name: "B2"}} {
		if err := db.UpsertCamera(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.UpsertCamera(ctx, Camera{}); err == nil {
		t.Error("UpsertCamera with an empty id succeeded")
	}
	// CreateSegment auto-creates with an empty name and keeps existing names.
	mustCreate(t, db, "c", at(0), at(1))
	mustCreate(t, db, "a", at(0), at(1))
	got, err := db.Cameras(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []Camera{{ID: "a", Name: "A"}, {ID: "b", Name: "B2"}, {ID: "c"}}
	if !slices.Equal(got, want) {
		t.Errorf("Cameras = %v, want %v", got, want)
	}
	if c, err := db.Camera(ctx, "b"); err != nil || c.ID != "b" || c.Name != "B2" {
		t.Errorf("Camera(b) = %v, %v", c, err)
	}
}

func testSegmentLifecycle(t *testing.T, be *backend) {
	ctx := context.Background()
	db := be.open(t)
	seg := recording.Segment{CameraID: "cam", Start: at(0), ObjectKey: "cam/k.mp4", Init: []byte("init"), Codecs: "H265,MPEG-4 Audio",
		Width: 640, Height: 480}
	if err := db.CreateSegment(ctx, &seg); err != nil {
		t.Fatal(err)
	}
	dup := recording.Segment{CameraID: "cam", Start: at(5), ObjectKey: "cam/k.mp4"}
	if err := db.CreateSegment(ctx, &dup); err == nil {
		t.Error("CreateSegment with a duplicate object key succeeded")
	}
	got, err := db.Segment(ctx, seg.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.End.Equal(at(0)) || got.State != recording.StateRecording || string(got.Init) != "init" ||
		got.Codecs != seg.Codecs || got.Width != 640 || got.Height != 480 || got.Size != 0 {
		t.Errorf("new segment = %+v", got)
	}
	// Not written under a lease: no node holds it (one-node spool).
	if n, err := db.SegmentNode(ctx, seg.ID); err != nil || n != (SegmentNode{State: recording.StateRecording}) {
		t.Errorf("SegmentNode of an unfenced segment = %+v, %v", n, err)
	}

	frags := []recording.Fragment{
		{SegmentID: seg.ID, Seq: 1, Start: at(0), End: at(2), Offset: 100, Size: 1000, Keyframe: true},
		{SegmentID: seg.ID, Seq: 2, Start: at(2), End: at(4), Offset: 1100, Size: 900, Keyframe: true},
	}
	if err := db.AddFragments(ctx, frags); err != nil {
		t.Fatal(err)
	}
	// Re-adding (a retry, or recovery re-indexing) is idempotent and an
	// older fragment does not lower end/size.
	frags[0].Keyframe = false
	if err := db.AddFragments(ctx, frags[:1]); err != nil {
		t.Fatal(err)
	}
	fs, err := db.Fragments(ctx, seg.ID, at(-100), at(100))
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 2 || fs[0].Keyframe || !fs[1].Keyframe || fs[1].Offset != 1100 || !fs[1].End.Equal(at(4)) {
		t.Errorf("fragments after upsert = %+v", fs)
	}
	got, _ = db.Segment(ctx, seg.ID)
	if !got.End.Equal(at(4)) || got.Size != 2000 {
		t.Errorf("after AddFragments end = %v size = %d, want %v 2000", got.End, got.Size, at(4))
	}

	// Unknown segment: ErrNotFound and nothing written.
	err = db.AddFragments(ctx, []recording.Fragment{
		{SegmentID: seg.ID, Seq: 3, Start: at(4), End: at(6), Offset: 2000, Size: 10},
		{SegmentID: 9999, Seq: 1, Start: at(0), End: at(1), Offset: 0, Size: 1},
	})
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("AddFragments to a missing segment: %v, want ErrNotFound", err)
	}
	if fs, _ := db.Fragments(ctx, seg.ID, at(-100), at(100)); len(fs) != 2 {
		t.Errorf("failed AddFragments wrote %d fragments", len(fs)-2)
	}
	if err := db.AddFragments(ctx, []recording.Fragment{{SegmentID: seg.ID, Seq: 0}}); err == nil {
		t.Error("AddFragments with seq 0 succeeded")
	}

	if err := db.FinishSegment(ctx, seg.ID, at(4), 2000, "abc123"); err != nil {
		t.Fatal(err)
	}
	closed, err := db.SegmentsByState(ctx, recording.StateClosed)
	if err != nil || len(closed) != 1 || closed[0].SHA256 != "abc123" || closed[0].Size != 2000 {
		t.Errorf("SegmentsByState(closed) = %+v, %v", closed, err)
	}
	if err := db.MarkStored(ctx, seg.ID); err != nil {
		t.Fatal(err)
	}
	if stored, _ := db.SegmentsByState(ctx, recording.StateStored); len(stored) != 1 || stored[0].ID != seg.ID {
		t.Errorf("SegmentsByState(stored) = %+v", stored)
	}
	if closed, _ := db.SegmentsByState(ctx, recording.StateClosed); len(closed) != 0 {
		t.Errorf("still closed: %+v", closed)
	}

	for name, fn := range map[string]func() error{
		"FinishSegment":     func() error { return db.FinishSegment(ctx, 9999, at(1), 1, "") },
		"MarkStored":        func() error { return db.MarkStored(ctx, 9999) },
		"recording.Segment": func() error { _, err := db.Segment(ctx, 9999); return err },
		"DeleteSegment":     func() error { return db.DeleteSegment(ctx, 9999) },
	} {
		if err := fn(); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s of a missing segment: %v, want ErrNotFound", name, err)
		}
	}

	if err := db.DeleteSegment(ctx, seg.ID); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.r.QueryRow(`SELECT COUNT(*) FROM fragments`).Scan(&n); err != nil || n != 0 {
		t.Errorf("fragments after DeleteSegment: %d, %v (want cascade)", n, err)
	}
	if _, err := db.Segment(ctx, seg.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("recording.Segment after delete: %v", err)
	}
}

func testSegmentsInRange(t *testing.T, be *backend) {
	ctx := context.Background()
	db := be.open(t)
	// cam: [0,10) [10,20) [30,40), plus a long [100,1000); other camera noise.
	mustCreate(t, db, "cam", at(0), at(10))
	mustCreate(t, db, "cam", at(10), at(20))
	mustCreate(t, db, "cam", at(30), at(40))
	mustCreate(t, db, "cam", at(100), at(1000))
	mustCreate(t, db, "other", at(0), at(2000))
	// A segment whose end grows through AddFragments must raise the bound.
	grow := mustCreate(t, db, "cam", at(2000), time.Time{})
	if err := db.AddFragments(ctx, []recording.Fragment{{SegmentID: grow.ID, Seq: 1, Start: at(2000), End: at(5000), Size: 1}}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		from, to float64
		want     []float64 // starts
	}{
		{"all", -1, 10000, []float64{0, 10, 30, 100, 2000}},
		{"end equal from excluded", 10, 25, []float64{10}},
		{"start equal to excluded", 0, 10, []float64{0}},
		{"inside one", 12, 13, []float64{10}},
		{"hole", 21, 29, nil},
		{"deep inside long segment", 900, 901, []float64{100}},
		{"deep inside grown segment", 4999, 5001, []float64{2000}},
		{"before", -100, -1, nil},
		{"after", 6000, 7000, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			segs, err := db.SegmentsInRange(ctx, "cam", at(tt.from), at(tt.to))
			if err != nil {
				t.Fatal(err)
			}
			var got []float64
			for _, s := range segs {
				got = append(got, s.Start.Sub(t0).Seconds())
				if s.CameraID != "cam" {
					t.Errorf("segment of camera %s", s.CameraID)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("starts = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSegmentsInRangeUsesIndex(t *testing.T) {
	db := openTest(t)
	rows, err := db.r.Query(`EXPLAIN QUERY PLAN SELECT `+segmentColumns+` FROM segments WHERE `+overlapWhere+` ORDER BY start_ns, id`,
		"cam", 0, "cam", 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	joined := strings.Join(plan, "; ")
	if !strings.Contains(joined, "segments_camera_start (camera_id=? AND start_ns>? AND start_ns<?)") {
		t.Errorf("plan does not range-scan segments_camera_start: %s", joined)
	}
}

func testFragmentsRange(t *testing.T, be *backend) {
	ctx := context.Background()
	db := be.open(t)
	seg := mustCreate(t, db, "cam", at(0), time.Time{})
	other := mustCreate(t, db, "cam", at(100), time.Time{})
	var frags []recording.Fragment
	for i := range 5 { // [0,2) [2,4) ... [8,10)
		frags = append(frags, recording.Fragment{SegmentID: seg.ID, Seq: i + 1, Start: at(float64(2 * i)), End: at(float64(2*i + 2)),
			Offset: int64(100 + 10*i), Size: 10, Keyframe: i%2 == 0})
	}
	frags = append(frags, recording.Fragment{SegmentID: other.ID, Seq: 1, Start: at(0), End: at(100), Offset: 0, Size: 5})
	if err := db.AddFragments(ctx, frags); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		seg      int64
		from, to float64
		want     []int
	}{
		{"all", seg.ID, -1, 100, []int{1, 2, 3, 4, 5}},
		{"boundaries exclusive", seg.ID, 2, 4, []int{2}},
		{"partial overlap both sides", seg.ID, 3, 7, []int{2, 3, 4}},
		{"point inside", seg.ID, 5, 5.001, []int{3}},
		{"after", seg.ID, 10, 20, nil},
		{"missing segment", 9999, -1, 100, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs, err := db.Fragments(ctx, tt.seg, at(tt.from), at(tt.to))
			if err != nil {
				t.Fatal(err)
			}
			var got []int
			for _, f := range fs {
				got = append(got, f.Seq)
				if f.SegmentID != tt.seg {
					t.Errorf("fragment of segment %d", f.SegmentID)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("seqs = %v, want %v", got, tt.want)
			}
		})
	}
	got, _ := db.Segment(ctx, seg.ID)
	if !got.End.Equal(at(10)) || got.Size != 150 {
		t.Errorf("segment end/size = %v/%d, want %v/150", got.End, got.Size, at(10))
	}
}

func testTimeline(t *testing.T, be *backend) {
	type iv = [2]float64
	tests := []struct {
		name     string
		segs     []iv
		from, to float64
		now      float64
		tol      time.Duration
		spans    []iv
		gaps     []iv
	}{
		{name: "empty window in the past", from: 0, to: 100, now: 1000, gaps: []iv{{0, 100}}},
		{name: "empty window in the future", from: 2000, to: 3000, now: 1000},
		{name: "inverted window", segs: []iv{{0, 10}}, from: 10, to: 0, now: 1000},
		{name: "contiguous", segs: []iv{{0, 10}, {10, 20}, {20, 30}}, from: 0, to: 30, now: 1000,
			spans: []iv{{0, 30}}},
		{name: "within tolerance", segs: []iv{{0, 10}, {10.2, 20}}, from: 0, to: 20, now: 1000, tol: 250 * time.Millisecond,
			spans: []iv{{0, 20}}},
		{name: "beyond tolerance", segs: []iv{{0, 10}, {10.3, 20}}, from: 0, to: 20, now: 1000, tol: 250 * time.Millisecond,
			spans: []iv{{0, 10}, {10.3, 20}}, gaps: []iv{{10, 10.3}}},
		{name: "gap with leading and trailing holes", segs: []iv{{10, 20}, {50, 60}}, from: 0, to: 100, now: 1000,
			spans: []iv{{10, 20}, {50, 60}}, gaps: []iv{{0, 10}, {20, 50}, {60, 100}}},
		{name: "overlap", segs: []iv{{0, 30}, {10, 20}, {25, 40}}, from: 0, to: 50, now: 1000,
			spans: []iv{{0, 40}}, gaps: []iv{{40, 50}}},
		{name: "clipped both ends", segs: []iv{{0, 100}}, from: 10, to: 20, now: 1000,
			spans: []iv{{10, 20}}},
		{name: "clipped with gap", segs: []iv{{0, 30}, {40, 100}}, from: 20, to: 50, now: 1000,
			spans: []iv{{20, 30}, {40, 50}}, gaps: []iv{{30, 40}}},
		{name: "trailing gap stops at now", segs: []iv{{0, 10}}, from: 0, to: 1000, now: 15,
			spans: []iv{{0, 10}}, gaps: []iv{{10, 15}}},
		{name: "live edge", segs: []iv{{0, 10}}, from: 0, to: 1000, now: 10,
			spans: []iv{{0, 10}}},
		{name: "span past now (clock skew)", segs: []iv{{0, 20}}, from: 0, to: 1000, now: 15,
			spans: []iv{{0, 20}}},
		{name: "empty segment ignored", segs: []iv{{0, 10}, {10, 10}, {20, 30}}, from: 0, to: 30, now: 1000,
			spans: []iv{{0, 10}, {20, 30}}, gaps: []iv{{10, 20}}},
		{name: "segment ending at from excluded", segs: []iv{{0, 10}, {20, 30}}, from: 10, to: 30, now: 1000,
			spans: []iv{{20, 30}}, gaps: []iv{{10, 20}}},
	}
	ctx := context.Background()
	db := be.open(t)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cam := fmt.Sprintf("cam%d", i)
			for _, s := range tt.segs {
				mustCreate(t, db, cam, at(s[0]), at(s[1]))
			}
			db.now = func() time.Time { return at(tt.now) }
			spans, gaps, err := db.Timeline(ctx, cam, at(tt.from), at(tt.to), tt.tol)
			if err != nil {
				t.Fatal(err)
			}
			var gotSpans, gotGaps []iv
			for _, s := range spans {
				gotSpans = append(gotSpans, iv{s.Start.Sub(t0).Seconds(), s.End.Sub(t0).Seconds()})
			}
			for _, g := range gaps {
				gotGaps = append(gotGaps, iv{g.Start.Sub(t0).Seconds(), g.End.Sub(t0).Seconds()})
			}
			if !slices.Equal(gotSpans, tt.spans) {
				t.Errorf("spans = %v, want %v", gotSpans, tt.spans)
			}
			if !slices.Equal(gotGaps, tt.gaps) {
				t.Errorf("gaps = %v, want %v", gotGaps, tt.gaps)
			}
		})
	}
}

func testConcurrentAddFragments(t *testing.T, be *backend) {
	ctx := context.Background()
	db := be.open(t)
	const cameras, frags = 16, 40
	segs := make([]recording.Segment, cameras)
	for i := range segs {
		segs[i] = mustCreate(t, db, fmt.Sprintf("cam%02d", i), at(0), time.Time{})
	}
	var wg sync.WaitGroup
	errc := make(chan error, cameras*frags)
	for i := range cameras {
		wg.Go(func() {
			for s := 1; s <= frags; s++ {
				f := recording.Fragment{SegmentID: segs[i].ID, Seq: s, Start: at(float64(2 * (s - 1))), End: at(float64(2 * s)),
					Offset: int64(100 * s), Size: 100, Keyframe: true}
				if err := db.AddFragments(ctx, []recording.Fragment{f}); err != nil {
					errc <- err
				}
				// Readers run concurrently with the writers.
				if _, _, err := db.Timeline(ctx, segs[i].CameraID, at(0), at(1000), 0); err != nil {
					errc <- err
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	for _, seg := range segs {
		fs, err := db.Fragments(ctx, seg.ID, at(0), at(1000))
		if err != nil || len(fs) != frags {
			t.Errorf("segment %d: %d fragments, %v", seg.ID, len(fs), err)
		}
		got, _ := db.Segment(ctx, seg.ID)
		if !got.End.Equal(at(2*frags)) || got.Size != 100*frags+100 {
			t.Errorf("segment %d end/size = %v/%d", seg.ID, got.End, got.Size)
		}
	}
}

func BenchmarkTimeline(b *testing.B) {
	ctx := context.Background()
	for _, nSegs := range []int{1000, 10000} {
		for _, window := range []time.Duration{time.Hour, 24 * time.Hour} {
			b.Run(fmt.Sprintf("segments=%d/window=%s", nSegs, window), func(b *testing.B) {
				db, err := Open(ctx, filepath.Join(b.TempDir(), "index.db"), nil)
				if err != nil {
					b.Fatal(err)
				}
				defer db.Close()
				// One-minute segments with a 5 s hole every 10th.
				err = db.withTx(ctx, func(tx *sqlTx) error {
					if _, err := tx.ExecContext(ctx, `INSERT INTO cameras (id, max_segment_ns) VALUES ('cam', ?)`, int64(time.Minute)); err != nil {
						return err
					}
					for i := range nSegs {
						start := t0.Add(time.Duration(i) * time.Minute)
						end := start.Add(time.Minute)
						if i%10 == 9 {
							end = end.Add(-5 * time.Second)
						}
						if _, err := tx.ExecContext(ctx, `INSERT INTO segments (camera_id, start_ns, end_ns, object_key) VALUES ('cam', ?, ?, ?)`,
							start.UnixNano(), end.UnixNano(), fmt.Sprint(i)); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
				last := t0.Add(time.Duration(nSegs) * time.Minute)
				from := last.Add(-window)
				b.ReportAllocs()
				for b.Loop() {
					if _, _, err := db.Timeline(ctx, "cam", from, last, 250*time.Millisecond); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkTimeline30Days is the BENCHMARKS.md timeline figure in
// miniature: one camera × 30 days of 60 s segments (43,200 rows, every 97th
// missing, so ≈445 spans), queried over the whole 30 days.
func BenchmarkTimeline30Days(b *testing.B) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(b.TempDir(), "index.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	const nSegs = 30 * 24 * 60
	err = db.withTx(ctx, func(tx *sqlTx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO cameras (id, max_segment_ns) VALUES ('cam', ?)`, int64(time.Minute)); err != nil {
			return err
		}
		for i := range nSegs {
			if i%97 == 0 {
				continue
			}
			start := t0.Add(time.Duration(i) * time.Minute)
			if _, err := tx.ExecContext(ctx, `INSERT INTO segments (camera_id, start_ns, end_ns, object_key) VALUES ('cam', ?, ?, ?)`,
				start.UnixNano(), start.Add(time.Minute).UnixNano(), fmt.Sprint(i)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := db.w.ExecContext(ctx, `ANALYZE`); err != nil {
		b.Fatal(err)
	}
	last := t0.Add(nSegs * time.Minute)
	b.ReportAllocs()
	for b.Loop() {
		spans, _, err := db.Timeline(ctx, "cam", t0, last, 250*time.Millisecond)
		if err != nil {
			b.Fatal(err)
		}
		if len(spans) != 446 {
			b.Fatalf("%d spans", len(spans))
		}
	}
}

// BenchmarkRecordSegment is the segmenter's write pattern for one 60 s
// segment: CreateSegment (empty), 30 AddFragments of one 2 s fragment,
// FinishSegment. One op = one segment.
func BenchmarkRecordSegment(b *testing.B) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(b.TempDir(), "index.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		st := t0.Add(time.Duration(i) * time.Minute)
		seg := recording.Segment{CameraID: "cam", Start: st, ObjectKey: fmt.Sprint(i), Init: make([]byte, 700), Codecs: "H264"}
		if err := db.CreateSegment(ctx, &seg); err != nil {
			b.Fatal(err)
		}
		for j := range 30 {
			fs := st.Add(time.Duration(j) * 2 * time.Second)
			f := recording.Fragment{SegmentID: seg.ID, Seq: j + 1, Start: fs, End: fs.Add(2 * time.Second),
				Offset: int64(j) << 20, Size: 1 << 20, Keyframe: true}
			if err := db.AddFragments(ctx, []recording.Fragment{f}); err != nil {
				b.Fatal(err)
			}
		}
		if err := db.FinishSegment(ctx, seg.ID, st.Add(time.Minute), 30<<20, "x"); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
