package spool

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"xueliang/index"
	"xueliang/storage"
	"xueliang/storage/local"
	"xueliang/storage/recording"
	"xueliang/storage/s3"
)

var t0 = time.Date(2024, 5, 6, 7, 0, 0, 0, time.UTC)

type env struct {
	dir   Dir
	store *local.Store
	db    *index.DB
}

func newEnv(t *testing.T) env {
	t.Helper()
	root := t.TempDir()
	dir, err := NewDir(filepath.Join(root, "spool"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := local.New(filepath.Join(root, "store"))
	if err != nil {
		t.Fatal(err)
	}
	db, err := index.Open(context.Background(), filepath.Join(root, "index.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close(); _ = st.Close() })
	return env{dir: dir, store: st, db: db}
}

func content(i int) []byte {
	return bytes.Repeat([]byte(fmt.Sprintf("segment %d;", i)), 100+i)
}

func hexSum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// addSegment records segment i of cam into the spool and the index, closed
// (or left recording).
func (e env) addSegment(t *testing.T, cam string, i int, close bool) recording.Segment {
	t.Helper()
	ctx := context.Background()
	start := t0.Add(time.Duration(i) * time.Minute)
	seg := recording.Segment{CameraID: cam, Start: start, ObjectKey: recording.SegmentKey(cam, start)}
	if err := e.db.CreateSegment(ctx, &seg); err != nil {
		t.Fatal(err)
	}
	f, err := e.dir.Create(seg.ObjectKey)
	if err != nil {
		t.Fatal(err)
	}
	data := content(i)
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if close {
		if err := e.db.FinishSegment(ctx, seg.ID, start.Add(time.Minute), int64(len(data)), hexSum(data)); err != nil {
			t.Fatal(err)
		}
	}
	seg, err = e.db.Segment(ctx, seg.ID)
	if err != nil {
		t.Fatal(err)
	}
	return seg
}

func TestDir(t *testing.T) {
	d, err := NewDir(filepath.Join(t.TempDir(), "spool"))
	if err != nil {
		t.Fatal(err)
	}
	keys := []string{"cam/2024/05/06/07/b.mp4", "cam/2024/05/06/07/a.mp4", "cam/2024/05/06/08/a.mp4", "cam2/x.mp4"}
	for _, k := range keys {
		f, err := d.Create(k)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(k)
		f.Close()
		if _, err := os.Stat(d.Path(k)); err != nil {
			t.Errorf("Path(%q) does not name the created file: %v", k, err)
		}
	}
	// Junk that is not a key is not walked.
	if err := os.WriteFile(filepath.Join(d.Root, "cam", "#tmp"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "../x", "/abs", "a//b"} {
		if _, err := d.Create(bad); err == nil {
			t.Errorf("Create(%q) succeeded", bad)
		}
		if err := d.Remove(bad); err == nil {
			t.Errorf("Remove(%q) succeeded", bad)
		}
	}
	var walked []string
	err = d.Walk(func(key string, info fs.FileInfo) error {
		if info.Size() != int64(len(key)) {
			t.Errorf("Walk %s size %d", key, info.Size())
		}
		walked = append(walked, key)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(keys)
	slices.Sort(want)
	if !slices.Equal(walked, want) {
		t.Errorf("Walk = %q, want %q", walked, want)
	}
	errStop := errors.New("stop")
	if err := d.Walk(func(string, fs.FileInfo) error { return errStop }); !errors.Is(err, errStop) {
		t.Errorf("Walk error = %v, want errStop", err)
	}

	for range 2 { // idempotent
		if err := d.Remove("cam/2024/05/06/08/a.mp4"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(filepath.Join(d.Root, "cam/2024/05/06/08")); !os.IsNotExist(err) {
		t.Errorf("empty parent not removed: %v", err)
	}
	if _, err := os.Stat(filepath.Join(d.Root, "cam/2024/05/06/07")); err != nil {
		t.Errorf("non-empty sibling dir removed: %v", err)
	}
	if err := d.Remove("cam2/x.mp4"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(d.Root); err != nil {
		t.Errorf("spool root removed: %v", err)
	}
}

func readAll(t *testing.T, rc io.ReadCloser, err error) []byte {
	t.Helper()
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

func TestReader(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	r := Reader{Dir: e.dir, Store: e.store}
	data := content(1)

	rec := e.addSegment(t, "cam", 1, false) // recording: spool only
	tests := []struct {
		name        string
		off, length int64
		want        []byte
		wantErr     bool
	}{
		{"whole", 0, -1, data, false},
		{"range", 10, 20, data[10:30], false},
		{"clipped", int64(len(data)) - 5, 100, data[len(data)-5:], false},
		{"past end", int64(len(data)) + 1, 1, nil, true},
	}
	for _, tt := range tests {
		t.Run("spool/"+tt.name, func(t *testing.T) {
			rc, err := r.ReadRange(ctx, rec, tt.off, tt.length)
			if tt.wantErr {
				if err == nil {
					rc.Close()
					t.Fatal("want error")
				}
				return
			}
			if got := readAll(t, rc, err); !bytes.Equal(got, tt.want) {
				t.Errorf("got %d bytes, want %d", len(got), len(tt.want))
			}
		})
	}

	// An open reader keeps working when the uploader removes the file.
	rc, err := r.ReadRange(ctx, rec, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.dir.Remove(rec.ObjectKey); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, rc, nil); !bytes.Equal(got, data) {
		t.Errorf("read after removal got %d bytes", len(got))
	}
	// Gone from spool and not in the store.
	if _, err := r.ReadRange(ctx, rec, 0, -1); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("ReadRange with neither copy: %v, want ErrNotFound", err)
	}
	// In the store only (uploaded meanwhile, even though the caller's row
	// still says recording/closed).
	if _, err := e.store.Put(ctx, rec.ObjectKey, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	rc, err = r.ReadRange(ctx, rec, 5, 10)
	if got := readAll(t, rc, err); !bytes.Equal(got, data[5:15]) {
		t.Errorf("store fallback got %q", got)
	}
	if _, err := r.ReadRange(ctx, recording.Segment{ObjectKey: "../etc/passwd"}, 0, -1); err == nil {
		t.Error("ReadRange with an invalid key succeeded")
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func startUploader(t *testing.T, u *Uploader) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- u.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

func fastConfig() UploaderConfig {
	return UploaderConfig{Workers: 2, QueueSize: 4, RescanInterval: time.Hour, MinBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond}
}

func checkStored(t *testing.T, e env, segs []recording.Segment) {
	t.Helper()
	ctx := context.Background()
	for i, s := range segs {
		got, err := e.db.Segment(ctx, s.ID)
		if err != nil || got.State != recording.StateStored {
			t.Errorf("segment %d state %v, %v", s.ID, got.State, err)
		}
		if _, err := os.Stat(e.dir.Path(s.ObjectKey)); !os.IsNotExist(err) {
			t.Errorf("spool file of segment %d still there: %v", s.ID, err)
		}
		rc, err := e.store.GetRange(ctx, s.ObjectKey, 0, -1)
		if b := readAll(t, rc, err); hexSum(b) != s.SHA256 {
			t.Errorf("stored object %d (#%d) has the wrong content", s.ID, i)
		}
	}
}

func TestUploaderUploadsEnqueuedAndOverflow(t *testing.T) {
	e := newEnv(t)
	cfg := fastConfig()
	cfg.Workers, cfg.QueueSize = 1, 2
	u := NewUploader(e.dir, e.store, e.db, cfg, nil)
	var segs []recording.Segment
	for i := range 12 {
		s := e.addSegment(t, fmt.Sprintf("cam%d", i%3), i, true)
		segs = append(segs, s)
		u.Enqueue(s) // before Run: most go to the overflow set
		u.Enqueue(s) // duplicates are ignored
	}
	if st := u.Stats(); st.Pending != 12 || st.Overflow != 10 {
		t.Errorf("before Run stats = %+v, want 12 pending, 10 in overflow", st)
	}
	startUploader(t, u)
	waitFor(t, "12 uploads", func() bool { return u.Stats().Uploaded == 12 })
	checkStored(t, e, segs)
	st := u.Stats()
	var bytes uint64
	for _, s := range segs {
		bytes += uint64(s.Size)
	}
	if st.Pending != 0 || st.Failed != 0 || st.Bytes != bytes || st.Overflowed < 10 {
		t.Errorf("stats = %+v, want nothing pending, no failures, %d bytes", st, bytes)
	}
	// The spool tree is empty: parents removed with the files.
	n := 0
	e.dir.Walk(func(string, fs.FileInfo) error { n++; return nil })
	entries, _ := os.ReadDir(e.dir.Root)
	if n != 0 || len(entries) != 0 {
		t.Errorf("spool not empty: %d files, %d entries", n, len(entries))
	}
}

func TestUploaderRescanAtStartAndPeriodically(t *testing.T) {
	e := newEnv(t)
	// Closed before the uploader existed (a crash): found at start.
	first := []recording.Segment{e.addSegment(t, "cam", 0, true), e.addSegment(t, "cam", 1, true)}
	openSeg := e.addSegment(t, "cam", 2, false)
	cfg := fastConfig()
	cfg.RescanInterval = 20 * time.Millisecond
	u := NewUploader(e.dir, e.store, e.db, cfg, nil)
	u.Enqueue(openSeg) // not closed: skipped, not uploaded
	startUploader(t, u)
	waitFor(t, "rescan at start", func() bool { return u.Stats().Uploaded == 2 })
	checkStored(t, e, first)
	// Closed later and never enqueued: found by the periodic rescan.
	if err := e.db.FinishSegment(context.Background(), openSeg.ID, t0.Add(3*time.Minute), int64(len(content(2))), hexSum(content(2))); err != nil {
		t.Fatal(err)
	}
	openSeg.SHA256 = hexSum(content(2))
	waitFor(t, "periodic rescan", func() bool { return u.Stats().Uploaded == 3 })
	checkStored(t, e, []recording.Segment{openSeg})
}

// flakyStore fails the first failures Puts; it does not offer PutFile, so
// the uploader streams.
type flakyStore struct {
	storage.Store
	failures atomic.Int32
	puts     atomic.Int32
}

func (s *flakyStore) Put(ctx context.Context, key string, r io.Reader, size int64) (storage.ObjectInfo, error) {
	s.puts.Add(1)
	if s.failures.Add(-1) >= 0 {
		io.CopyN(io.Discard, r, size/2)
		return storage.ObjectInfo{}, errors.New("injected put failure")
	}
	return s.Store.Put(ctx, key, r, size)
}

func TestUploaderRetriesStreaming(t *testing.T) {
	e := newEnv(t)
	fs := &flakyStore{Store: e.store}
	fs.failures.Store(3)
	segs := []recording.Segment{e.addSegment(t, "cam", 0, true), e.addSegment(t, "cam", 1, true)}
	u := NewUploader(e.dir, fs, e.db, fastConfig(), nil)
	startUploader(t, u)
	waitFor(t, "uploads after failures", func() bool { return u.Stats().Uploaded == 2 })
	checkStored(t, e, segs)
	if st := u.Stats(); st.Failed != 3 || fs.puts.Load() != 5 {
		t.Errorf("stats %+v, %d puts; want 3 failures and 5 puts", st, fs.puts.Load())
	}
}

// hashedStore offers HashedFilePutter over a local store and records its
// calls. It stores through PutFile (no check against the given hash) and
// returns the SHA-256 PutFile computed only when verified is set. Its PutFile and Put fail: the uploader
// must not fall back to them when the segment's SHA-256 is known.
type hashedStore struct {
	*local.Store
	verified bool
	mu       sync.Mutex
	calls    map[string]string // key → sha256Hex passed
}

func (h *hashedStore) PutFileSHA256(ctx context.Context, key, path, sha256Hex string) (storage.ObjectInfo, error) {
	h.mu.Lock()
	h.calls[key] = sha256Hex
	h.mu.Unlock()
	info, err := h.Store.PutFile(ctx, key, path)
	if !h.verified {
		info.SHA256 = ""
	}
	return info, err
}

func (h *hashedStore) PutFile(context.Context, string, string) (storage.ObjectInfo, error) {
	return storage.ObjectInfo{}, errors.New("PutFile used instead of PutFileSHA256")
}

func (h *hashedStore) Put(context.Context, string, io.Reader, int64) (storage.ObjectInfo, error) {
	return storage.ObjectInfo{}, errors.New("Put used instead of PutFileSHA256")
}

func (h *hashedStore) called() map[string]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return maps.Clone(h.calls)
}

func TestUploaderUsesKnownSHA256(t *testing.T) {
	for _, verified := range []bool{true, false} {
		t.Run(fmt.Sprintf("verified=%v", verified), func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t)
			hs := &hashedStore{Store: e.store, verified: verified, calls: map[string]string{}}
			segs := []recording.Segment{e.addSegment(t, "cam", 0, true), e.addSegment(t, "cam", 1, true)}
			// Corrupt after closing (same size): the SHA-256 the store
			// returns, or the uploader's own when it returns none, must
			// catch it.
			bad := e.addSegment(t, "cam", 2, true)
			b := content(2)
			b[0] ^= 0xff
			if err := os.WriteFile(e.dir.Path(bad.ObjectKey), b, 0o644); err != nil {
				t.Fatal(err)
			}
			u := NewUploader(e.dir, hs, e.db, fastConfig(), nil)
			startUploader(t, u)
			waitFor(t, "2 uploads and failures", func() bool { st := u.Stats(); return st.Uploaded == 2 && st.Failed >= 2 })
			if got, _ := e.db.Segment(ctx, bad.ID); got.State != recording.StateClosed {
				t.Errorf("corrupt segment state = %v, want closed", got.State)
			}
			if _, err := os.Stat(e.dir.Path(bad.ObjectKey)); err != nil {
				t.Errorf("spool file of the corrupt segment removed: %v", err)
			}
			checkStored(t, e, segs)
			calls := hs.called()
			for _, s := range append(segs, bad) {
				if got, ok := calls[s.ObjectKey]; !ok || got != s.SHA256 {
					t.Errorf("PutFileSHA256(%s) called with %q (called: %v), want the index's %s", s.ObjectKey, got, ok, s.SHA256)
				}
			}
		})
	}
}

func TestUploaderNeverMarksCorruptSegment(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	good := e.addSegment(t, "cam", 0, true)
	bad := e.addSegment(t, "cam", 1, true)
	// The spool file no longer matches the index's SHA-256 (same size).
	b := content(1)
	b[0] ^= 0xff
	if err := os.WriteFile(e.dir.Path(bad.ObjectKey), b, 0o644); err != nil {
		t.Fatal(err)
	}
	short := e.addSegment(t, "cam", 2, true)
	if err := os.Truncate(e.dir.Path(short.ObjectKey), 10); err != nil {
		t.Fatal(err)
	}
	u := NewUploader(e.dir, e.store, e.db, fastConfig(), nil)
	startUploader(t, u)
	waitFor(t, "repeated failures", func() bool { st := u.Stats(); return st.Uploaded == 1 && st.Failed >= 6 })
	checkStored(t, e, []recording.Segment{good})
	for _, s := range []recording.Segment{bad, short} {
		got, _ := e.db.Segment(ctx, s.ID)
		if got.State != recording.StateClosed {
			t.Errorf("corrupt segment %d state = %v, want closed", s.ID, got.State)
		}
		if _, err := os.Stat(e.dir.Path(s.ObjectKey)); err != nil {
			t.Errorf("spool file of corrupt segment %d removed: %v", s.ID, err)
		}
	}
	if st := u.Stats(); st.Pending != 2 {
		t.Errorf("pending = %d, want the 2 corrupt segments kept", st.Pending)
	}
}

func TestUploaderAlreadyInStore(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	// Crash after the put, before MarkStored, with the spool file gone.
	s := e.addSegment(t, "cam", 0, true)
	if _, err := e.store.PutFile(ctx, s.ObjectKey, e.dir.Path(s.ObjectKey)); err != nil {
		t.Fatal(err)
	}
	if err := e.dir.Remove(s.ObjectKey); err != nil {
		t.Fatal(err)
	}
	// And one that is lost for good: neither copy exists.
	lost := e.addSegment(t, "cam", 1, true)
	if err := e.dir.Remove(lost.ObjectKey); err != nil {
		t.Fatal(err)
	}
	u := NewUploader(e.dir, e.store, e.db, fastConfig(), nil)
	startUploader(t, u)
	waitFor(t, "adoption", func() bool { st := u.Stats(); return st.Uploaded == 1 && st.Failed >= 2 })
	checkStored(t, e, []recording.Segment{s})
	if got, _ := e.db.Segment(ctx, lost.ID); got.State != recording.StateClosed {
		t.Errorf("lost segment state = %v, want closed", got.State)
	}
}

func TestUploaderStopsOnCancel(t *testing.T) {
	e := newEnv(t)
	e.addSegment(t, "cam", 0, true)
	u := NewUploader(e.dir, e.store, e.db, fastConfig(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan error, 1)
	go func() { done <- u.Run(ctx) }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestBackoff(t *testing.T) {
	u := NewUploader(Dir{}, nil, nil, UploaderConfig{MinBackoff: time.Second, MaxBackoff: time.Minute}, nil)
	tests := []struct {
		attempts int
		max      time.Duration
	}{{1, time.Second}, {2, 2 * time.Second}, {4, 8 * time.Second}, {7, time.Minute}, {100, time.Minute}}
	for _, tt := range tests {
		for range 50 {
			if d := u.backoff(tt.attempts); d < tt.max/2 || d > tt.max {
				t.Errorf("backoff(%d) = %v, want in [%v, %v]", tt.attempts, d, tt.max/2, tt.max)
			}
		}
	}
}

// The real components satisfy the interfaces the uploader declares.
var (
	_ SegmentIndex     = (*index.DB)(nil)
	_ FilePutter       = (*local.Store)(nil)
	_ HashedFilePutter = (*local.Store)(nil)
	_ HashedFilePutter = (*s3.Store)(nil)
)
