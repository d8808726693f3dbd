package segmenter

import (
	"bytes"
	"context"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"xueliang/index"
	"xueliang/ingest/segmenter/segmentertest"
	"xueliang/storage/local"
	"xueliang/storage/recording"
	"xueliang/storage/spool"
)

var _ Quota = (*spool.Quota)(nil)

// syncBuffer is a log sink safe for the writer's and the test's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) count(msg string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Count(s.b.String(), "msg=\""+msg+"\"")
}

type capEnv struct {
	dir   spool.Dir
	db    *index.DB
	store *local.Store
}

func newCapEnv(t *testing.T) capEnv {
	t.Helper()
	root := t.TempDir()
	dir, err := spool.NewDir(filepath.Join(root, "spool"))
	if err != nil {
		t.Fatal(err)
	}
	db, err := index.Open(context.Background(), filepath.Join(root, "index.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := local.New(filepath.Join(root, "store"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close(); st.Close() })
	return capEnv{dir: dir, db: db, store: st}
}

func spoolBytes(t *testing.T, d spool.Dir) int64 {
	t.Helper()
	var n int64
	if err := d.Walk(func(_ string, info fs.FileInfo) error { n += info.Size(); return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (e capEnv) segments(t *testing.T, st recording.SegmentState) []recording.Segment {
	t.Helper()
	segs, err := e.db.SegmentsByState(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	return segs
}

func startUploader(t *testing.T, dir spool.Dir, e capEnv) {
	t.Helper()
	u := spool.NewUploader(dir, e.store, e.db, spool.UploaderConfig{RescanInterval: 50 * time.Millisecond,
		MinBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- u.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// prefix returns the clip's AUs before first video PTS + d.
func prefix(c *segmentertest.Clip, d time.Duration) *segmentertest.Clip {
	first := firstVideo(c).PTS
	out := &segmentertest.Clip{AAC: c.AAC, SPS: c.SPS, PPS: c.PPS}
	for _, au := range c.AUs {
		if au.PTS-first < durTo90k(d) {
			out.AUs = append(out.AUs, au)
			if au.Video {
				out.VideoFrames++
			}
		}
	}
	return out
}

// checkRecorded verifies the closed or stored segments in the spool:
// file complete, parseable, indexed fragment by fragment, decodable.
func checkRecorded(t *testing.T, e capEnv, segs []recording.Segment) {
	t.Helper()
	ctx := context.Background()
	for i, s := range segs {
		data, err := os.ReadFile(e.dir.Path(s.ObjectKey))
		if err != nil {
			t.Fatalf("segment %d: spool file: %v", i, err)
		}
		if int64(len(data)) != s.Size {
			t.Errorf("segment %d: file %d bytes, row %d", i, len(data), s.Size)
		}
		pf, err := recording.ParseFile(bytes.NewReader(data), int64(len(data)))
		if err != nil || pf.StopReason != "" || len(pf.Fragments) == 0 {
			t.Fatalf("segment %d: parse %v %+v", i, err, pf)
		}
		frags, err := e.db.Fragments(ctx, s.ID, s.Start, s.End)
		if err != nil {
			t.Fatal(err)
		}
		if len(frags) != len(pf.Fragments) || !frags[len(frags)-1].End.Equal(s.End) {
			t.Errorf("segment %d: %d fragment rows, %d in the file; end %v", i, len(frags), len(pf.Fragments), s.End)
		}
		segmentertest.Decode(t, e.dir.Path(s.ObjectKey))
	}
}

// TestSpoolCap fills a small spool: recording pauses at a fragment
// boundary with the segment in progress closed and indexed, nothing in
// the spool is deleted, media is refused and counted; when the uploader
// drains the spool, recording resumes with a new segment at the right
// wall-clock time.
func TestSpoolCap(t *testing.T) {
	ctx := context.Background()
	clip := segmentertest.ReadTS(t, segmentertest.GenerateTS(t, t.TempDir(),
		segmentertest.ClipOptions{Seconds: 12, BFrames: 2, AAC: true}))
	first := firstVideo(clip)

	// Measure the spool bytes of the whole clip without a cap.
	m := newHarness(t, func(c *Config) { c.SegmentDuration = 3 * time.Second })
	m.w.Start(sessionFor(clip, first.PTS))
	m.feed(clip, 0)
	closeWait(m.w)
	var total int64
	for _, s := range m.idx.Segments() {
		total += s.Size
	}

	e := newCapEnv(t)
	quota, err := spool.NewQuota(e.dir, spool.QuotaConfig{MaxBytes: total / 2})
	if err != nil {
		t.Fatal(err)
	}
	dir := e.dir
	dir.Quota = quota
	logs := &syncBuffer{}
	var mu sync.Mutex
	var closed []recording.Segment
	w := startWriter(t, Config{
		CameraID: "cam1", SpoolRoot: dir.Root, Index: e.db, SegmentDuration: 3 * time.Second,
		Quota:  quota,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
		OnClosed: func(s recording.Segment) {
			mu.Lock()
			closed = append(closed, s)
			mu.Unlock()
		},
	})
	h := &harness{t: t, spool: dir.Root, w: w}
	if err := w.Start(sessionFor(clip, first.PTS)); err != nil {
		t.Fatal(err)
	}
	h.feed(clip, 0)

	st := w.Stats()
	if !st.Paused || st.PauseEpisodes != 1 || !quota.Full() {
		t.Fatalf("after filling: paused=%v episodes=%d quota full=%v", st.Paused, st.PauseEpisodes, quota.Full())
	}
	if st.RefusedFrames == 0 || st.RefusedAudio == 0 || st.RefusedBytes == 0 {
		t.Errorf("refusals not counted: %+v", st)
	}
	if got := st.VideoFrames + st.RefusedFrames + st.DroppedVideo; got != int64(clip.VideoFrames) {
		t.Errorf("frames: %d written + %d refused + %d dropped != %d fed", st.VideoFrames, st.RefusedFrames, st.DroppedVideo, clip.VideoFrames)
	}
	// Every segment opened is closed (FinishSegment + OnClosed), none is
	// left recording.
	waitUntil(t, "segments closed", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return int64(len(closed)) == st.Segments
	})
	if rec := e.segments(t, recording.StateRecording); len(rec) != 0 {
		t.Errorf("%d segments left recording", len(rec))
	}
	segs := e.segments(t, recording.StateClosed)
	if int64(len(segs)) != st.Segments || len(segs) < 2 {
		t.Fatalf("%d closed segments, %d opened", len(segs), st.Segments)
	}
	checkRecorded(t, e, segs) // nothing written was deleted
	for i := 1; i < len(segs); i++ {
		if !segs[i].Start.Equal(segs[i-1].End) {
			t.Errorf("segment %d starts at %v, previous ended %v", i, segs[i].Start, segs[i-1].End)
		}
	}
	pausedAt := segs[len(segs)-1].End
	if got, want := quota.Bytes(), spoolBytes(t, e.dir); got != want {
		t.Errorf("quota %d bytes, spool %d", got, want)
	}
	// The cap holds but for the documented exception: the first fragment
	// of a segment is never refused.
	var maxFrag int64
	for _, s := range segs {
		frags, _ := e.db.Fragments(ctx, s.ID, s.Start, s.End)
		for _, f := range frags {
			maxFrag = max(maxFrag, f.Size)
		}
	}
	if got := quota.Bytes(); got > quota.Cap()+maxFrag {
		t.Errorf("spool %d bytes over the cap %d + one fragment %d", got, quota.Cap(), maxFrag)
	}
	// More media while full is refused without reopening.
	more := prefix(clip, 2*time.Second)
	off := durTo90k(20 * time.Second)
	h.feed(more, off)
	if st2 := w.Stats(); !st2.Paused || st2.Segments != st.Segments || st2.RefusedFrames != st.RefusedFrames+int64(more.VideoFrames) {
		t.Errorf("while full: %+v", st2)
	}
	if n := logs.count("spool full, recording paused"); n != 1 {
		t.Errorf("pause logged %d times", n)
	}

	// The uploader drains the spool; recording resumes at the next keyframe.
	startUploader(t, dir, e)
	waitUntil(t, "spool drained", func() bool { return len(e.segments(t, recording.StateStored)) == len(segs) })
	if quota.Full() || quota.Bytes() != 0 || spoolBytes(t, e.dir) != 0 {
		t.Fatalf("after upload: full=%v quota=%d spool=%d", quota.Full(), quota.Bytes(), spoolBytes(t, e.dir))
	}
	off = durTo90k(40 * time.Second)
	h.feed(prefix(clip, 4*time.Second), off)
	st3 := w.Stats()
	if st3.Paused || st3.PauseEpisodes != 1 {
		t.Errorf("after drain: paused=%v episodes=%d", st3.Paused, st3.PauseEpisodes)
	}
	if n := logs.count("spool has room, recording resumed"); n != 1 {
		t.Errorf("resume logged %d times", n)
	}
	closeWait(w)
	waitUntil(t, "resumed segments stored", func() bool {
		return len(e.segments(t, recording.StateClosed)) == 0 && len(e.segments(t, recording.StateRecording)) == 0
	})
	all, err := e.db.SegmentsInRange(ctx, "cam1", testAnchor, testAnchor.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(all) <= len(segs) {
		t.Fatalf("no segment after resuming: %d segments", len(all))
	}
	resumed := all[len(segs)]
	wantStart := testAnchor.Add(recording.TicksToDuration(first.PTS+off-first.PTS, recording.VideoTimescale))
	if !resumed.Start.Equal(wantStart) || !resumed.Start.After(pausedAt) {
		t.Errorf("resumed segment starts %v, want %v (paused at %v)", resumed.Start, wantStart, pausedAt)
	}
	spans, _, err := e.db.Timeline(ctx, "cam1", testAnchor, testAnchor.Add(time.Minute), 250*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if len(spans) != 2 || !spans[0].End.Equal(pausedAt) || !spans[1].Start.Equal(wantStart) {
		t.Errorf("timeline %+v, want a gap from %v to %v", spans, pausedAt, wantStart)
	}
}

// TestQuotaAccounting checks the quota against the real directory after
// a mix of writes, a crash, recovery (truncation and deletion) and
// uploads.
func TestQuotaAccounting(t *testing.T) {
	ctx := context.Background()
	clip := segmentertest.ReadTS(t, segmentertest.GenerateTS(t, t.TempDir(),
		segmentertest.ClipOptions{Seconds: 6, GOP: 12, BFrames: 2, AAC: true}))
	first := firstVideo(clip)
	e := newCapEnv(t)
	check := func(step string, q *spool.Quota) {
		t.Helper()
		if got, want := q.Bytes(), spoolBytes(t, e.dir); got != want {
			t.Errorf("%s: quota %d bytes, spool %d", step, got, want)
		}
	}

	q1, err := spool.NewQuota(e.dir, spool.QuotaConfig{MaxBytes: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	// Not startWriter: this writer crashes and is never closed.
	w1, err := New(Config{CameraID: "cam1", SpoolRoot: e.dir.Root, Index: e.db, SegmentDuration: 2 * time.Second, Quota: q1})
	if err != nil {
		t.Fatal(err)
	}
	w1done := make(chan error, 1)
	go func() { w1done <- w1.Run(context.Background()) }()
	if err := w1.Start(sessionFor(clip, first.PTS)); err != nil {
		t.Fatal(err)
	}
	(&harness{t: t, w: w1}).feed(prefix(clip, 4500*time.Millisecond), 0)
	// While recording, the quota is ahead of the directory by what the
	// writer admitted and has not written yet: the fragment in progress's
	// staged media (at most stageSize) and its header room.
	if ahead := q1.Bytes() - spoolBytes(t, e.dir); ahead < 0 || ahead > stageSize+maxHeadroom {
		t.Errorf("writes: quota %d bytes ahead of the spool", ahead)
	}
	w1.mu.Lock()
	w1.writeStageLocked(&w1.frag)
	w1.mu.Unlock()
	check("writes", q1)
	waitUntil(t, "index", func() bool {
		return len(e.segments(t, recording.StateRecording)) == 1 && len(e.segments(t, recording.StateClosed)) == 1
	})
	// Crash: the writer stops without closing its segment, whose last
	// fragment is cut short; plus a segment that never got a fragment.
	w1.q.close()
	if err := <-w1done; err != nil {
		t.Fatal(err)
	}
	rec := e.segments(t, recording.StateRecording)[0]
	fi, err := os.Stat(e.dir.Path(rec.ObjectKey))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(e.dir.Path(rec.ObjectKey), fi.Size()-100); err != nil {
		t.Fatal(err)
	}
	empty := recording.Segment{CameraID: "cam1", Start: testAnchor.Add(time.Hour), ObjectKey: "cam1/2025/03/04/06/empty.mp4"}
	if err := e.db.CreateSegment(ctx, &empty); err != nil {
		t.Fatal(err)
	}
	f, err := e.dir.Create(empty.ObjectKey)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(rec.Init)
	f.Close()

	// Restart: the quota measured before recovery is credited with what
	// recovery freed.
	q2, err := spool.NewQuota(e.dir, spool.QuotaConfig{MaxBytes: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	check("restart", q2)
	rep, err := Recover(ctx, e.db, e.dir.Root, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Recovered != 1 || rep.Deleted != 1 || rep.FreedBytes != rep.TruncatedBytes+int64(len(rec.Init)) {
		t.Errorf("recovery report %+v", rep)
	}
	q2.Release(rep.FreedBytes)
	check("recovery", q2)

	// Uploads and new writes interleave.
	dir := e.dir
	dir.Quota = q2
	startUploader(t, dir, e)
	w2 := startWriter(t, Config{CameraID: "cam1", SpoolRoot: e.dir.Root, Index: e.db, SegmentDuration: 2 * time.Second, Quota: q2})
	if err := w2.Start(sessionFor(clip, first.PTS-durTo90k(time.Minute))); err != nil {
		t.Fatal(err)
	}
	(&harness{t: t, w: w2}).feed(clip, 0)
	closeWait(w2)
	waitUntil(t, "uploads", func() bool {
		return len(e.segments(t, recording.StateClosed)) == 0 && len(e.segments(t, recording.StateRecording)) == 0
	})
	// The uploader marks a segment uploaded before it removes the spool
	// file and releases its bytes: wait for the last removal.
	waitUntil(t, "the uploaded files' removal", func() bool { return q2.Bytes() == 0 })
	check("uploads", q2)
}
