package retention

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"xueliang/index"
	"xueliang/storage"
	"xueliang/storage/local"
	"xueliang/storage/miniotest"
	"xueliang/storage/recording"
	"xueliang/storage/s3"
	"xueliang/storage/spool"
)

var base = time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)

// store is a backend under test: the Store the footage is in, the
// deleter the worker uses (the same object).
type store interface {
	storage.Store
	KeyDeleter
}

type backend struct {
	name string
	open func(t *testing.T) store
}

func backends() []backend {
	return []backend{
		{"local", func(t *testing.T) store {
			st, err := local.New(filepath.Join(t.TempDir(), "objects"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		}},
		{"minio", func(t *testing.T) store {
			srv := miniotest.Start(t)
			st, err := s3.New(context.Background(), s3.Config{Endpoint: srv.Endpoint, Bucket: "rec",
				AccessKey: srv.AccessKey, SecretKey: srv.SecretKey}, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		}},
	}
}

type fixture struct {
	db    *index.DB
	st    store
	spool spool.Dir
	segs  map[string][]recording.Segment // by camera, oldest first
}

// newFixture records n one-minute segments per camera from base, each
// object size bytes, stored (and, for the first segment of "a", also left
// in the spool), plus one motion interval and one camera event per minute.
func newFixture(t *testing.T, st store, cams []string, n int) *fixture {
	t.Helper()
	ctx := context.Background()
	db, err := index.Open(ctx, filepath.Join(t.TempDir(), "index.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	sp, err := spool.NewDir(filepath.Join(t.TempDir(), "spool"))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{db: db, st: st, spool: sp, segs: map[string][]recording.Segment{}}
	for _, cam := range cams {
		if err := db.PutCamera(ctx, index.Camera{ID: cam, Township: "t-" + cam, Source: index.SourceAPI, Enabled: true}); err != nil {
			t.Fatal(err)
		}
		for i := range n {
			start := base.Add(time.Duration(i) * time.Minute)
			end := start.Add(time.Minute)
			seg := recording.Segment{CameraID: cam, Start: start, End: end, ObjectKey: recording.SegmentKey(cam, start),
				Init: []byte{1}, Codecs: "H264"}
			body := bytes.Repeat([]byte{byte(i)}, 1000+i)
			if err := db.CreateSegment(ctx, &seg); err != nil {
				t.Fatal(err)
			}
			if _, err := st.Put(ctx, seg.ObjectKey, bytes.NewReader(body), int64(len(body))); err != nil {
				t.Fatal(err)
			}
			if err := db.FinishSegment(ctx, seg.ID, end, int64(len(body)), "00"); err != nil {
				t.Fatal(err)
			}
			if err := db.MarkStored(ctx, seg.ID); err != nil {
				t.Fatal(err)
			}
			seg.Size, seg.State = int64(len(body)), recording.StateStored
			if cam == "a" && i == 0 {
				fh, err := sp.Create(seg.ObjectKey)
				if err != nil {
					t.Fatal(err)
				}
				fh.Write(body)
				fh.Close()
			}
			f.segs[cam] = append(f.segs[cam], seg)
			if err := db.AddMotion(ctx, nil, []recording.MotionInterval{{CameraID: cam, Start: start.Add(time.Second),
				End: start.Add(2 * time.Second), Peak: 0.1, Seconds: 1, Cells: []byte{1}, X1: 1, Y1: 1}}); err != nil {
				t.Fatal(err)
			}
			if err := db.AddCameraEvents(ctx, []recording.CameraEvent{{CameraID: cam, Source: "onvif", Topic: "Motion",
				Start: start.Add(time.Second), End: start.Add(3 * time.Second)}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return f
}

func (f *fixture) worker(cfg Config) *Worker {
	cfg.Index, cfg.Store, cfg.RemoveSpool = f.db, f.st, f.spool.Remove
	return New(cfg)
}

// check asserts that the camera's bucket listing, its index rows and its
// timeline are exactly segments keep.. of the fixture.
func (f *fixture) check(t *testing.T, cam string, keep int) {
	t.Helper()
	ctx := context.Background()
	var want []string
	for _, s := range f.segs[cam][keep:] {
		want = append(want, s.ObjectKey)
	}
	var listed []string
	if err := f.st.List(ctx, cam+"/", func(o storage.ObjectInfo) error {
		listed = append(listed, o.Key)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(listed, want) {
		t.Errorf("%s: bucket has %d objects %v, want %d", cam, len(listed), listed, len(want))
	}
	rows, err := f.db.SegmentsInRange(ctx, cam, base.Add(-time.Hour), base.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rows {
		got = append(got, r.ObjectKey)
		if r.State != recording.StateStored {
			t.Errorf("%s: segment %s left in state %s", cam, r.ObjectKey, r.State)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s: index has %d rows, want %d", cam, len(got), len(want))
	}
	spans, _, err := f.db.Timeline(ctx, cam, base.Add(-time.Hour), base.Add(24*time.Hour), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	last := f.segs[cam][len(f.segs[cam])-1]
	if keep == len(f.segs[cam]) {
		if len(spans) != 0 {
			t.Errorf("%s: timeline %v, want empty", cam, spans)
		}
	} else if len(spans) != 1 || !spans[0].Start.Equal(f.segs[cam][keep].Start) || !spans[0].End.Equal(last.End) {
		t.Errorf("%s: timeline %v, want one span [%s, %s)", cam, spans, f.segs[cam][keep].Start, last.End)
	}
	ivs, err := f.db.MotionIntervals(ctx, cam, base.Add(-time.Hour), base.Add(24*time.Hour), 1000)
	if err != nil {
		t.Fatal(err)
	}
	evs, err := f.db.CameraEvents(ctx, cam, base.Add(-time.Hour), base.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(f.segs[cam]) - keep; len(ivs) != n || len(evs) != n {
		t.Errorf("%s: %d motion intervals and %d events left, want %d", cam, len(ivs), len(evs), n)
	}
}

func auditEntries(t *testing.T, db *index.DB, cam string) []index.AuditRecord {
	t.Helper()
	recs, err := db.QueryAudit(context.Background(), index.AuditQuery{Camera: cam, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var out []index.AuditRecord
	for _, r := range recs {
		if r.Action == "retention.delete" {
			out = append(out, r)
		}
	}
	return out
}

// TestRetentionMaxAge: with a 6-minute max_age at base+10m, exactly the
// four segments ending by base+4m go, on both backends; bucket, index,
// timeline, motion and events agree; one audit entry per camera.
func TestRetentionMaxAge(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			f := newFixture(t, b.open(t), []string{"a", "b"}, 10)
			now := base.Add(10 * time.Minute)
			w := f.worker(Config{MaxAge: 6 * time.Minute, Chunk: 3, Now: func() time.Time { return now }})
			rep, err := w.RunOnce(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			for _, cam := range []string{"a", "b"} {
				f.check(t, cam, 4)
				if r := rep[cam]; r == nil || r.Segments != 4 || !r.From.Equal(base) || !r.To.Equal(base.Add(4*time.Minute)) {
					t.Errorf("%s: report %+v", cam, r)
				}
				au := auditEntries(t, f.db, cam)
				if len(au) != 1 || !strings.Contains(au[0].Detail, "segments=4") || !au[0].From.Equal(base) {
					t.Errorf("%s: audit %+v, want one entry for 4 segments", cam, au)
				}
			}
			if _, err := os.Stat(f.spool.Path(f.segs["a"][0].ObjectKey)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("spool copy of the oldest segment: %v, want removed", err)
			}
			// A second pass at the same time deletes nothing and audits nothing.
			if rep, err := w.RunOnce(context.Background()); err != nil || len(rep) != 0 {
				t.Fatalf("second pass: %v, %v", rep, err)
			}
			if au := auditEntries(t, f.db, "a"); len(au) != 1 {
				t.Errorf("audit after an empty pass: %d entries", len(au))
			}
		})
	}
}

var errCrash = errors.New("simulated crash")

// TestRetentionCrashResume stops a run after each step of its second chunk
// (as a kill would), then runs a fresh worker: nothing is half-deleted
// (no row without its object, no deleting row left), nothing newer is lost.
func TestRetentionCrashResume(t *testing.T) {
	for _, b := range backends() {
		for _, step := range []Step{StepMarked, StepObjects, StepRows} {
			t.Run(b.name+"/"+string(step), func(t *testing.T) {
				f := newFixture(t, b.open(t), []string{"a"}, 10)
				now := base.Add(10 * time.Minute)
				chunks := 0
				w := f.worker(Config{MaxAge: 3 * time.Minute, Chunk: 2, Now: func() time.Time { return now },
					Hook: func(s Step, segs []recording.Segment) error {
						if s == StepMarked {
							chunks++
						}
						if s == step && chunks == 2 {
							return errCrash
						}
						return nil
					}})
				if _, err := w.RunOnce(context.Background()); !errors.Is(err, errCrash) {
					t.Fatalf("run: %v, want the simulated crash", err)
				}
				// In between: rows not yet deleted are stored or deleting,
				// never stored without an object.
				ctx := context.Background()
				for _, s := range f.segs["a"] {
					row, err := f.db.Segment(ctx, s.ID)
					if errors.Is(err, index.ErrNotFound) {
						continue
					}
					if err != nil {
						t.Fatal(err)
					}
					_, serr := f.st.Stat(ctx, s.ObjectKey)
					if row.State == recording.StateStored && serr != nil {
						t.Errorf("segment %s stored but its object is gone: %v", s.ObjectKey, serr)
					}
				}
				// Restart: the interrupted chunk is finished first, then the rest.
				w2 := f.worker(Config{MaxAge: 3 * time.Minute, Chunk: 2, Now: func() time.Time { return now }})
				if _, err := w2.RunOnce(ctx); err != nil {
					t.Fatal(err)
				}
				f.check(t, "a", 7)
				if dl, _ := f.db.SegmentsByState(ctx, recording.StateDeleting); len(dl) != 0 {
					t.Errorf("%d rows left deleting", len(dl))
				}
			})
		}
	}
}

// TestRetentionOverridesAndBytes: a camera override beats its township's,
// which beats the server's; max_bytes deletes the oldest beyond the cap.
func TestRetentionOverridesAndBytes(t *testing.T) {
	b := backends()[0]
	f := newFixture(t, b.open(t), []string{"a", "b", "c"}, 10)
	ctx := context.Background()
	now := base.Add(10 * time.Minute)
	if err := f.db.SetTownshipRetention(ctx, "t-a", index.RetentionOverride{MaxAge: 8 * time.Minute}, now); err != nil {
		t.Fatal(err)
	}
	if err := f.db.SetCameraRetention(ctx, "a", index.RetentionOverride{MaxAge: 5 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	if err := f.db.SetTownshipRetention(ctx, "t-b", index.RetentionOverride{MaxAge: 8 * time.Minute}, now); err != nil {
		t.Fatal(err)
	}
	// c: 10 segments of 1000..1009 bytes; a cap of 3,030 keeps the newest 3
	// (1007+1008+1009 = 3024).
	if err := f.db.SetCameraRetention(ctx, "c", index.RetentionOverride{MaxBytes: 3030}); err != nil {
		t.Fatal(err)
	}
	w := f.worker(Config{MaxAge: time.Hour, Now: func() time.Time { return now }})
	if _, err := w.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	f.check(t, "a", 5) // camera: 5 min
	f.check(t, "b", 2) // township: 8 min
	f.check(t, "c", 7) // bytes
	au := auditEntries(t, f.db, "c")
	if len(au) != 1 || !strings.Contains(au[0].Detail, "reason=max_bytes") {
		t.Errorf("c: audit %+v", au)
	}
}

// TestRetentionSkipsLocked: a segment an active evidence lock overlaps
// survives retention; once unlocked, the next pass deletes it.
func TestRetentionSkipsLocked(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			f := newFixture(t, b.open(t), []string{"a"}, 6)
			ctx := context.Background()
			now := base.Add(time.Hour)
			lock, err := f.db.CreateEvidenceLock(ctx, index.EvidenceLock{Cameras: []string{"a"},
				From: base.Add(2*time.Minute + 10*time.Second), To: base.Add(3*time.Minute + 5*time.Second),
				CaseNumber: "2026-017", CreatedBy: "op", Created: now})
			if err != nil {
				t.Fatal(err)
			}
			w := f.worker(Config{MaxAge: time.Minute, Now: func() time.Time { return now }})
			if _, err := w.RunOnce(ctx); err != nil {
				t.Fatal(err)
			}
			var left []string
			if err := f.st.List(ctx, "a/", func(o storage.ObjectInfo) error { left = append(left, o.Key); return nil }); err != nil {
				t.Fatal(err)
			}
			want := []string{f.segs["a"][2].ObjectKey, f.segs["a"][3].ObjectKey}
			if !slices.Equal(left, want) {
				t.Fatalf("objects left %v, want the two locked ones %v", left, want)
			}
			if err := f.db.UnlockEvidence(ctx, lock.ID, "admin", now); err != nil {
				t.Fatal(err)
			}
			if _, err := w.RunOnce(ctx); err != nil {
				t.Fatal(err)
			}
			f.check(t, "a", 6)
			if au := auditEntries(t, f.db, "a"); len(au) != 2 {
				t.Errorf("audit entries %d, want 2 (one per pass)", len(au))
			}
		})
	}
}

func TestPolicyPrecedence(t *testing.T) {
	w := New(Config{MaxAge: time.Hour, MaxBytes: 10})
	towns := map[string]index.RetentionOverride{"t": {MaxAge: 2 * time.Hour}}
	for _, tc := range []struct {
		name string
		c    index.CameraRetention
		want policy
	}{
		{"server", index.CameraRetention{Camera: "x"}, policy{time.Hour, 10}},
		{"township", index.CameraRetention{Camera: "x", Township: "t"}, policy{2 * time.Hour, 10}},
		{"camera", index.CameraRetention{Camera: "x", Township: "t", Override: index.RetentionOverride{MaxAge: 3 * time.Hour, MaxBytes: 5}}, policy{3 * time.Hour, 5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := w.policy(tc.c, towns); got != tc.want {
				t.Fatalf("policy = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestRetentionLockAfterMark: a lock made between marking a chunk and
// removing its objects still saves the segment it covers (it goes back to
// stored, object intact); the rest of the chunk is deleted.
func TestRetentionLockAfterMark(t *testing.T) {
	f := newFixture(t, backends()[0].open(t), []string{"a"}, 5)
	ctx := context.Background()
	now := base.Add(time.Hour)
	locked := false
	w := f.worker(Config{MaxAge: time.Minute, Now: func() time.Time { return now },
		Hook: func(s Step, segs []recording.Segment) error {
			if s == StepMarked && !locked {
				locked = true
				_, err := f.db.CreateEvidenceLock(ctx, index.EvidenceLock{Cameras: []string{"a"}, From: f.segs["a"][2].Start,
					To: f.segs["a"][2].End, CaseNumber: "late", Created: now})
				return err
			}
			return nil
		}})
	if _, err := w.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	for i, s := range f.segs["a"] {
		row, err := f.db.Segment(ctx, s.ID)
		_, serr := f.st.Stat(ctx, s.ObjectKey)
		if i == 2 {
			if err != nil || row.State != recording.StateStored || serr != nil {
				t.Fatalf("locked-after-mark segment: row %+v %v, object %v", row.State, err, serr)
			}
		} else if !errors.Is(err, index.ErrNotFound) || serr == nil {
			t.Fatalf("segment %d: row %v, object %v; want both gone", i, err, serr)
		}
	}
}
