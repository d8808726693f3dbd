package segmenter

import (
	"context"
	"math"
	"os"
	"syscall"
	"testing"
	"time"

	"xueliang/ingest/segmenter/segmentertest"
	"xueliang/storage/recording"
)

// allocatedBytes is the disk space allocated to the file at path.
func allocatedBytes(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Blocks * 512
}

// TestWriterPreallocates checks that a segment being recorded has blocks
// allocated ahead of its writes (preallocate) while its size stays what
// was written, and that recovery gives back the blocks a crash leaves
// past a file's end. (checkSegments checks that a closed segment has
// none.)
func TestWriterPreallocates(t *testing.T) {
	ctx := context.Background()
	clip := segmentertest.ReadTS(t, segmentertest.GenerateTS(t, t.TempDir(), segmentertest.ClipOptions{Seconds: 4}))
	h := newHarness(t, func(c *Config) { c.SegmentDuration = time.Minute })
	if err := h.w.Start(sessionFor(clip, firstVideo(clip).PTS)); err != nil {
		t.Fatal(err)
	}
	h.feed(clip, 0)
	// "Crash": the writer is not closed, the segment stays in state
	// recording.
	time.Sleep(200 * time.Millisecond) // let the index worker catch up
	files := segmentertest.SpoolFiles(t, h.spool)
	if len(files) != 1 {
		t.Fatalf("got %d spool files, want 1", len(files))
	}
	path := files[0]
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if a := allocatedBytes(t, path); a < preallocStep || a < fi.Size()+4096 {
		t.Fatalf("recording file of %d bytes has %d allocated, want at least %d and more than its size", fi.Size(), a, preallocStep)
	}
	// Whatever the file holds past its last complete fragment, recovery
	// must also free the blocks past the end when it has nothing to cut.
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	pf, err := recording.ParseFile(f, fi.Size())
	if err != nil || len(pf.Fragments) == 0 {
		t.Fatalf("parse: %v (%d fragments)", err, len(pf.Fragments))
	}
	if err := f.Truncate(pf.ValidSize); err != nil {
		t.Fatal(err)
	}
	if end, err := preallocate(f, 0, pf.ValidSize+1); err != nil || end < pf.ValidSize+1 {
		t.Fatalf("preallocate: end %d, %v", end, err)
	}
	f.Close()
	if a := allocatedBytes(t, path); a < pf.ValidSize+4096 {
		t.Fatalf("crashed file of %d bytes has %d allocated, want blocks past its end", pf.ValidSize, a)
	}
	rep, err := Recover(ctx, h.idx, h.spool, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Recovered != 1 || rep.TruncatedBytes != 0 {
		t.Fatalf("report %+v, want one segment recovered with nothing cut", rep)
	}
	segs, err := h.idx.SegmentsByState(ctx, recording.StateClosed)
	if err != nil || len(segs) != 1 || segs[0].Size != pf.ValidSize {
		t.Fatalf("closed segments %+v %v, want one of %d bytes", segs, err, pf.ValidSize)
	}
	if a, max := allocatedBytes(t, path), (pf.ValidSize+4095)/4096*4096; a > max {
		t.Errorf("recovered file: %d bytes allocated for a file of %d", a, pf.ValidSize)
	}
}

// TestPreallocateFails checks that a failed preallocation is reported and
// stops further attempts (math.MaxInt64), for a pipe (no fallocate) and a
// closed file.
func TestPreallocateFails(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	f, err := os.Create(t.TempDir() + "/closed")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	for name, f := range map[string]*os.File{"pipe": w, "closed": f} {
		if end, err := preallocate(f, 0, 1); err == nil || end != math.MaxInt64 {
			t.Errorf("%s: preallocate = %d, %v; want math.MaxInt64 and an error", name, end, err)
		}
	}
}
