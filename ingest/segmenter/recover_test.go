package segmenter

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"xueliang/ingest/segmenter/segmentertest"
	"xueliang/storage/recording"
)

// recordOne records a 5 s clip with 1 s GOPs into one segment and returns
// its row, fragment rows and bytes.
func recordOne(t *testing.T) (recording.Segment, []recording.Fragment, []byte) {
	t.Helper()
	clip := segmentertest.ReadTS(t, segmentertest.GenerateTS(t, t.TempDir(),
		segmentertest.ClipOptions{Seconds: 5, BFrames: 2, AAC: true}))
	h := newHarness(t, nil)
	if err := h.w.Start(sessionFor(clip, firstVideo(clip).PTS)); err != nil {
		t.Fatal(err)
	}
	h.feed(clip, 0)
	segs := h.checkSegments(1, true)
	data, err := os.ReadFile(filepath.Join(h.spool, segs[0].ObjectKey))
	if err != nil {
		t.Fatal(err)
	}
	return segs[0], h.idx.Fragments(segs[0].ID), data
}

func TestRecover(t *testing.T) {
	seg, frags, data := recordOne(t)
	if len(frags) != 5 {
		t.Fatalf("%d fragments", len(frags))
	}
	initSize := int64(len(seg.Init))
	tests := []struct {
		name      string
		content   []byte // nil: no file
		wantFrags int    // 0: deleted
	}{
		{"intact", data, 5},
		{"mid-fragment", data[:frags[3].Offset+frags[3].Size/2], 3},
		{"mid-moof-header", data[:frags[4].Offset+5], 4},
		{"garbage-after", append(bytes.Clone(data[:frags[2].Offset]), bytes.Repeat([]byte{0xff}, 100)...), 2},
		{"zeros-after", append(bytes.Clone(data[:frags[1].Offset]), make([]byte, 4096)...), 1},
		{"init-only", data[:initSize], 0},
		{"half-init", data[:initSize/2], 0},
		{"no-file", nil, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spool := t.TempDir()
			idx := segmentertest.NewFakeIndex()
			row := seg
			row.State, row.End, row.Size, row.SHA256 = recording.StateRecording, row.Start, initSize, ""
			if err := idx.CreateSegment(context.Background(), &row); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(spool, row.ObjectKey)
			if tc.content != nil {
				os.MkdirAll(filepath.Dir(path), 0o755)
				if err := os.WriteFile(path, tc.content, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			var closed []recording.Segment
			rep, err := Recover(context.Background(), idx, spool, func(s recording.Segment) { closed = append(closed, s) }, nil)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Segments != 1 {
				t.Errorf("report %+v", rep)
			}
			if tc.wantFrags == 0 {
				if rep.Deleted != 1 || len(idx.Segments()) != 0 || len(closed) != 0 {
					t.Errorf("not deleted: %+v", rep)
				}
				if _, err := os.Stat(path); !os.IsNotExist(err) {
					t.Errorf("spool file still there: %v", err)
				}
				return
			}
			if rep.Recovered != 1 || rep.Fragments != tc.wantFrags || len(closed) != 1 {
				t.Fatalf("report %+v, closed %d", rep, len(closed))
			}
			got := idx.Segments()[0]
			wantSize := frags[tc.wantFrags-1].Offset + frags[tc.wantFrags-1].Size
			if got.State != recording.StateClosed || got.Size != wantSize || got.SHA256 == "" {
				t.Errorf("segment %+v, want size %d", got, wantSize)
			}
			if !got.End.Equal(closed[0].End) || got.SHA256 != closed[0].SHA256 {
				t.Errorf("OnClosed got %+v", closed[0])
			}
			fi, _ := os.Stat(path)
			if fi.Size() != wantSize {
				t.Errorf("file size %d, want %d", fi.Size(), wantSize)
			}
			rows := idx.Fragments(got.ID)
			if len(rows) != tc.wantFrags {
				t.Fatalf("%d rows", len(rows))
			}
			for i, r := range rows {
				w := frags[i]
				// The last recovered fragment's end is derived from its
				// own samples; the others match the writer's rows.
				if r.Offset != w.Offset || r.Size != w.Size || r.Keyframe != w.Keyframe || !r.Start.Equal(w.Start) && absDur(r.Start.Sub(w.Start)) > 1000 {
					t.Errorf("row %d %+v, writer wrote %+v", i, r, w)
				}
				if i < len(rows)-1 && absDur(r.End.Sub(w.End)) > 1000 {
					t.Errorf("row %d end %v, writer wrote %v", i, r.End, w.End)
				}
			}
			if tc.wantFrags == 5 && absDur(got.End.Sub(seg.End)) > 1000 {
				t.Errorf("intact end %v, writer %v", got.End, seg.End)
			}
			p := segmentertest.RunProbe(t, path)
			if n := len(p.VideoPackets()); n != 25*tc.wantFrags {
				t.Errorf("%d frames after recovery, want %d", n, 25*tc.wantFrags)
			}
			segmentertest.Decode(t, path)
		})
	}
}

// fencedFake is a FakeIndex behind a lease fence: Recoverable answers
// recoverable for every segment.
type fencedFake struct {
	*segmentertest.FakeIndex
	recoverable int
}

func (f fencedFake) Recoverable(context.Context, recording.Segment) (int, error) {
	return f.recoverable, nil
}

// TestRecoverFenced: on a shared index (Fence), a segment whose writer
// still holds the lease is recovered whole; one whose camera was taken
// over keeps only the fragments committed under the lease (the file is
// cut after them, no row is added, the segment ends at the last committed
// fragment), or is deleted when none was committed.
func TestRecoverFenced(t *testing.T) {
	seg, frags, data := recordOne(t)
	tests := []struct {
		name        string
		recoverable int // Fence's answer
		committed   int // fragment rows indexed before the crash
		wantFrags   int // 0: deleted
	}{
		{"lease-held", -1, 2, 5},
		{"taken-over", 3, 3, 3},
		{"taken-over-nothing-committed", 0, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spool := t.TempDir()
			fake := segmentertest.NewFakeIndex()
			row := seg
			row.State, row.End, row.Size, row.SHA256 = recording.StateRecording, row.Start, int64(len(seg.Init)), ""
			if err := fake.CreateSegment(context.Background(), &row); err != nil {
				t.Fatal(err)
			}
			if tc.committed > 0 {
				committed := append([]recording.Fragment(nil), frags[:tc.committed]...)
				for i := range committed {
					committed[i].SegmentID = row.ID
				}
				if err := fake.AddFragments(context.Background(), committed); err != nil {
					t.Fatal(err)
				}
			}
			calls := fake.AddCalls
			path := filepath.Join(spool, row.ObjectKey)
			os.MkdirAll(filepath.Dir(path), 0o755)
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			rep, err := Recover(context.Background(), fencedFake{fake, tc.recoverable}, spool, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantFrags == 0 {
				if rep.Deleted != 1 || len(fake.Segments()) != 0 {
					t.Fatalf("not deleted: %+v", rep)
				}
				return
			}
			if rep.Recovered != 1 {
				t.Fatalf("report %+v", rep)
			}
			got := fake.Segments()[0]
			wantSize := frags[tc.wantFrags-1].Offset + frags[tc.wantFrags-1].Size
			if got.State != recording.StateClosed || got.Size != wantSize {
				t.Errorf("segment %+v, want closed with size %d", got, wantSize)
			}
			if fi, _ := os.Stat(path); fi.Size() != wantSize {
				t.Errorf("file size %d, want %d", fi.Size(), wantSize)
			}
			if n := len(fake.Fragments(got.ID)); n != tc.wantFrags {
				t.Errorf("%d fragment rows, want %d", n, tc.wantFrags)
			}
			if tc.recoverable >= 0 {
				if fake.AddCalls != calls {
					t.Errorf("a taken-over segment got %d fragment writes", fake.AddCalls-calls)
				}
				if end := frags[tc.wantFrags-1].End; absDur(got.End.Sub(end)) > time.Millisecond {
					t.Errorf("end %v, last committed fragment ends %v", got.End, end)
				}
			}
			if n := len(segmentertest.RunProbe(t, path).VideoPackets()); n != 25*tc.wantFrags {
				t.Errorf("%d frames after recovery, want %d", n, 25*tc.wantFrags)
			}
		})
	}
}

// TestFragmentsResentThroughOutage: the index refuses every fragment
// batch of a segment and is still down when the segment closes (longer
// than IndexRetries, shorter than IndexOutage): the rows are re-sent until
// it is back, before the finish, so the closed segment lists every
// fragment of its file (a finished segment with rows missing would hide
// footage from replay without a gap).
func TestFragmentsResentThroughOutage(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	h := newHarness(t, func(c *Config) { c.IndexRetries = 2; c.IndexOutage = 30 * time.Second })
	h.idx.FailAdd = func() error {
		if down.Load() {
			return errors.New("index down")
		}
		return nil
	}
	clip := segmentertest.ReadTS(t, segmentertest.GenerateTS(t, t.TempDir(),
		segmentertest.ClipOptions{Seconds: 5}))
	if err := h.w.Start(sessionFor(clip, firstVideo(clip).PTS)); err != nil {
		t.Fatal(err)
	}
	h.feed(clip, 0)
	go func() {
		time.Sleep(2 * time.Second) // past IndexRetries' backoff
		down.Store(false)
	}()
	segs := h.checkSegments(1, true)
	if n := len(h.idx.Fragments(segs[0].ID)); n != 5 {
		t.Fatalf("closed segment has %d fragment rows, its file 5", n)
	}
}
