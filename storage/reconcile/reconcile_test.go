package reconcile

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"xueliang/index"
	"xueliang/ingest/segmenter"
	"xueliang/ingest/segmenter/segmentertest"
	"xueliang/storage"
	"xueliang/storage/local"
	"xueliang/storage/miniotest"
	"xueliang/storage/recording"
	"xueliang/storage/s3"
	"xueliang/storage/spool"
)

var _ Index = (*index.DB)(nil)

// The recording crosses midnight, so reconciliation spans two days.
var anchor = time.Date(2025, 3, 4, 23, 59, 57, 0, time.UTC)

type env struct {
	db    *index.DB
	store storage.Store
	dir   spool.Dir
	segs  []recording.Segment // as recorded, stored
	data  map[string][]byte
}

func clip(t *testing.T) *segmentertest.Clip {
	t.Helper()
	return segmentertest.ReadTS(t, segmentertest.GenerateTS(t, t.TempDir(),
		segmentertest.ClipOptions{Seconds: 7, BFrames: 2, AAC: true}))
}

// record records c into the spool and the index with the real writer and
// uploads everything with the real uploader: a consistent starting point.
func record(t *testing.T, c *segmentertest.Clip, store storage.Store) env {
	t.Helper()
	ctx := context.Background()
	root := t.TempDir()
	db, err := index.Open(ctx, filepath.Join(root, "index.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	dir, err := spool.NewDir(filepath.Join(root, "spool"))
	if err != nil {
		t.Fatal(err)
	}
	w, err := segmenter.New(segmenter.Config{CameraID: "cam1", SpoolRoot: dir.Root, Index: db, SegmentDuration: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	worker := make(chan error, 1)
	go func() { worker <- w.Run(ctx) }()
	first := c.Video()[0].PTS
	if err := w.Start(segmenter.Session{Anchor: anchor, AnchorPTS: first,
		Video: recording.Video{Codec: recording.H264, SPS: c.SPS, PPS: c.PPS},
		Audio: &recording.Audio{Codec: recording.AAC, AAC: *c.AAC}}); err != nil {
		t.Fatal(err)
	}
	for _, au := range c.AUs {
		if au.Video {
			err = w.WriteVideo(au.PTS, au.DTS, au.NALUs, au.Key)
		} else {
			err = w.WriteAudio(au.PTS*int64(c.AAC.SampleRate)/90000, au.AACs)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	if err := <-worker; err != nil {
		t.Fatal(err)
	}
	e := env{db: db, store: store, dir: dir, data: map[string][]byte{}}
	closed, err := db.SegmentsByState(ctx, recording.StateClosed)
	if err != nil || len(closed) < 3 {
		t.Fatalf("%d closed segments, %v", len(closed), err)
	}
	for _, s := range closed {
		b, err := os.ReadFile(dir.Path(s.ObjectKey))
		if err != nil {
			t.Fatal(err)
		}
		e.data[s.ObjectKey] = b
	}
	u := spool.NewUploader(dir, store, db, spool.UploaderConfig{}, nil)
	uctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- u.Run(uctx) }()
	deadline := time.Now().Add(20 * time.Second)
	for u.Stats().Uploaded < uint64(len(closed)) {
		if time.Now().After(deadline) {
			t.Fatal("upload timed out")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	for _, s := range closed {
		s, _ = db.Segment(ctx, s.ID)
		e.segs = append(e.segs, s)
	}
	if dayOf(e.segs[0].Start).Equal(dayOf(e.segs[len(e.segs)-1].Start)) {
		t.Fatal("recording does not cross midnight")
	}
	return e
}

func (e env) run(t *testing.T, mod func(*Config)) Report {
	t.Helper()
	cfg := Config{Index: e.db, Store: e.store, Spool: e.dir, Cameras: []string{"cam1", "cam2"},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), TempDir: t.TempDir()}
	if mod != nil {
		mod(&cfg)
	}
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func (e env) rows(t *testing.T) []recording.Segment {
	t.Helper()
	segs, err := e.db.SegmentsInRange(context.Background(), "cam1", anchor.Add(-time.Hour), anchor.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return segs
}

func (e env) fragments(t *testing.T, s recording.Segment) []recording.Fragment {
	t.Helper()
	f, err := e.db.Fragments(context.Background(), s.ID, s.Start, s.End)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (e env) objectBytes(t *testing.T, key string) []byte {
	t.Helper()
	rc, err := e.store.GetRange(context.Background(), key, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func zeroCounts(r Report) Report {
	r.Cameras, r.Objects, r.Rows, r.Examples = 0, 0, 0, nil
	return r
}

// scenarios run against every backend.
func scenarios(t *testing.T, c *segmentertest.Clip, newStore func(t *testing.T) storage.Store) {
	ctx := context.Background()
	t.Run("consistent", func(t *testing.T) {
		e := record(t, c, newStore(t))
		rep := e.run(t, nil)
		if rep.Findings() != 0 || rep.Objects != len(e.segs) || rep.Rows != len(e.segs) || rep.Cameras != 2 {
			t.Errorf("report %+v", rep)
		}
	})
	t.Run("orphan imported", func(t *testing.T) {
		e := record(t, c, newStore(t))
		// A row deleted (or never committed) on each side of midnight.
		victims := []recording.Segment{e.segs[0], e.segs[len(e.segs)-1]}
		wantFrags := map[string][]recording.Fragment{}
		for _, v := range victims {
			wantFrags[v.ObjectKey] = e.fragments(t, v)
			if err := e.db.DeleteSegment(ctx, v.ID); err != nil {
				t.Fatal(err)
			}
		}
		var audited []Finding
		rep := e.run(t, func(c *Config) {
			c.Audit = func(_ context.Context, f Finding) error { audited = append(audited, f); return nil }
		})
		if got := zeroCounts(rep); !reflect.DeepEqual(got, Report{Orphans: 2, Imported: 2}) {
			t.Errorf("report %+v", rep)
		}
		// Issue #22 point 8: every import is audited.
		if len(audited) != 2 || audited[0].Kind != OrphanImported || audited[1].Kind != OrphanImported {
			t.Errorf("audited %+v, want the 2 imports", audited)
		}
		rows := e.rows(t)
		if len(rows) != len(e.segs) {
			t.Fatalf("%d rows after import, want %d", len(rows), len(e.segs))
		}
		for _, v := range victims {
			i := slices.IndexFunc(rows, func(s recording.Segment) bool { return s.ObjectKey == v.ObjectKey })
			if i < 0 {
				t.Fatalf("%s not imported", v.ObjectKey)
			}
			got := rows[i]
			if !got.Start.Equal(v.Start) || !got.End.Equal(v.End) || got.Size != v.Size || got.SHA256 != v.SHA256 ||
				!bytes.Equal(got.Init, v.Init) || got.Codecs != v.Codecs || got.Width != v.Width ||
				got.Height != v.Height || got.State != recording.StateStored {
				t.Errorf("imported %+v\nrecorded %+v", got, v)
			}
			frags := e.fragments(t, got)
			want := wantFrags[v.ObjectKey]
			if len(frags) != len(want) {
				t.Fatalf("%d fragments imported, want %d", len(frags), len(want))
			}
			for j := range frags {
				a, b := frags[j], want[j]
				if a.Seq != b.Seq || a.Offset != b.Offset || a.Size != b.Size || a.Keyframe != b.Keyframe ||
					!a.Start.Equal(b.Start) || !a.End.Equal(b.End) {
					t.Errorf("fragment %d: imported %+v, recorded %+v", j, a, b)
				}
			}
		}
		if rep := e.run(t, nil); rep.Findings() != 0 {
			t.Errorf("second run %+v", rep)
		}
	})
	t.Run("foreign objects left alone", func(t *testing.T) {
		e := record(t, c, newStore(t))
		junk := []byte("not a segment")
		for _, k := range []string{"cam1/notes.txt", "cam1/2025/03/04/23/20250304T235958.000000000Z.mp4",
			recording.SegmentKey("cam1", anchor.Add(time.Hour))} {
			if _, err := e.store.Put(ctx, k, bytes.NewReader(junk), int64(len(junk))); err != nil {
				t.Fatal(err)
			}
		}
		// Not a configured camera: not even listed.
		e.store.Put(ctx, "cam3/x.mp4", bytes.NewReader(junk), int64(len(junk)))
		rep := e.run(t, nil)
		if got := zeroCounts(rep); !reflect.DeepEqual(got, Report{Orphans: 3, Unrecognised: 3}) {
			t.Errorf("report %+v", rep)
		}
		if len(e.rows(t)) != len(e.segs) {
			t.Error("rows changed")
		}
	})
	t.Run("lost", func(t *testing.T) {
		e := record(t, c, newStore(t))
		withCopy, noCopy, leftover := e.segs[0], e.segs[1], e.segs[2]
		for _, s := range []recording.Segment{withCopy, noCopy} {
			if err := e.store.Delete(ctx, s.ObjectKey); err != nil {
				t.Fatal(err)
			}
		}
		for _, s := range []recording.Segment{withCopy, leftover} {
			f, err := e.dir.Create(s.ObjectKey)
			if err != nil {
				t.Fatal(err)
			}
			f.Write(e.data[s.ObjectKey])
			f.Close()
		}
		quota, err := spool.NewQuota(e.dir, spool.QuotaConfig{})
		if err != nil {
			t.Fatal(err)
		}
		e.dir.Quota = quota
		var audited []Finding
		at := time.Date(2026, 12, 7, 2, 0, 0, 0, time.UTC)
		rep := e.run(t, func(c *Config) {
			c.Now = func() time.Time { return at }
			c.Audit = func(_ context.Context, f Finding) error { audited = append(audited, f); return nil }
		})
		if got := zeroCounts(rep); !reflect.DeepEqual(got, Report{Lost: 2, Reuploaded: 1, Marked: 1, SpoolRemoved: 1}) {
			t.Errorf("report %+v", rep)
		}
		// Issue #22 point 8: the lost row is not silently deleted: it is in
		// the record of lost segments, and audited.
		lost, err := e.db.LostSegments(ctx, "cam1", noCopy.Start, noCopy.End)
		if err != nil || len(lost) != 1 || lost[0].ID != noCopy.ID || lost[0].ObjectKey != noCopy.ObjectKey ||
			!lost[0].Start.Equal(noCopy.Start) || !lost[0].End.Equal(noCopy.End) || !lost[0].Lost.Equal(at) {
			t.Errorf("lost segments %+v %v", lost, err)
		}
		if len(audited) != 1 || audited[0].Kind != LostMarked || audited[0].Key != noCopy.ObjectKey {
			t.Errorf("audited %+v, want the lost segment", audited)
		}
		if b := e.objectBytes(t, withCopy.ObjectKey); !bytes.Equal(b, e.data[withCopy.ObjectKey]) {
			t.Error("re-uploaded object differs")
		}
		for _, s := range []recording.Segment{withCopy, leftover} {
			if _, err := os.Stat(e.dir.Path(s.ObjectKey)); !os.IsNotExist(err) {
				t.Errorf("spool file %s kept: %v", s.ObjectKey, err)
			}
		}
		if quota.Bytes() != 0 {
			t.Errorf("quota %d after the spool files were removed", quota.Bytes())
		}
		if _, err := e.db.Segment(ctx, noCopy.ID); err == nil {
			t.Error("lost row without copy kept")
		}
		if s, err := e.db.Segment(ctx, withCopy.ID); err != nil || s.State != recording.StateStored {
			t.Errorf("re-uploaded row %+v %v", s, err)
		}
		if len(e.rows(t)) != len(e.segs)-1 {
			t.Error("other rows changed")
		}
		found := slices.ContainsFunc(rep.Examples, func(f Finding) bool {
			return f.Kind == LostMarked && f.Key == noCopy.ObjectKey && f.Start.Equal(noCopy.Start) && f.End.Equal(noCopy.End)
		})
		if !found {
			t.Errorf("examples %+v", rep.Examples)
		}
	})
	t.Run("too many lost are kept", func(t *testing.T) {
		e := record(t, c, newStore(t))
		for _, s := range e.segs {
			e.store.Delete(ctx, s.ObjectKey)
		}
		rep := e.run(t, func(c *Config) { c.MaxLostDeletes = 2; c.MaxExamples = 1 })
		if got := zeroCounts(rep); !reflect.DeepEqual(got, Report{Lost: len(e.segs), Kept: len(e.segs)}) || len(rep.Examples) != 1 {
			t.Errorf("report %+v", rep)
		}
		if len(e.rows(t)) != len(e.segs) {
			t.Error("rows deleted")
		}
	})
}

func TestRunLocal(t *testing.T) {
	c := clip(t)
	scenarios(t, c, func(t *testing.T) storage.Store {
		st, err := local.New(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return st
	})
}

func TestRunMinIO(t *testing.T) {
	c := clip(t)
	srv := miniotest.Start(t)
	n := 0
	scenarios(t, c, func(t *testing.T) storage.Store {
		n++
		st, err := s3.New(context.Background(), s3.Config{Endpoint: srv.Endpoint, Bucket: "rec" + string(rune('a'+n)),
			AccessKey: srv.AccessKey, SecretKey: srv.SecretKey}, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	})
}
