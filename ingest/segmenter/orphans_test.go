package segmenter

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"xueliang/index"
	"xueliang/ingest/segmenter/segmentertest"
	"xueliang/storage/recording"
)

var _ OrphanIndex = (*index.DB)(nil)

// TestRecoverOrphans: spool files whose row was never written are indexed
// from the file (with the real SQLite index); files with a row and files
// that are not segments are left alone.
func TestRecoverOrphans(t *testing.T) {
	seg, frags, data := recordOne(t)
	ctx := context.Background()
	db, err := index.Open(ctx, filepath.Join(t.TempDir(), "index.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	spool := t.TempDir()
	write := func(key string, b []byte) string {
		t.Helper()
		p := filepath.Join(spool, filepath.FromSlash(key))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	intactKey := seg.ObjectKey
	cutStart := seg.Start.Add(time.Hour)
	cutKey := recording.SegmentKey("cam1", cutStart)
	knownKey := recording.SegmentKey("cam1", seg.Start.Add(2*time.Hour))
	garbageKey := recording.SegmentKey("cam1", seg.Start.Add(3*time.Hour))
	write(intactKey, data)
	cutPath := write(cutKey, data[:frags[2].Offset+frags[2].Size/2]) // 2 whole fragments
	write(knownKey, data)
	garbage := bytes.Repeat([]byte{0x5a}, 1000)
	garbagePath := write(garbageKey, garbage)
	write("cam1/notes.mp4", data)

	known := recording.Segment{CameraID: "cam1", Start: seg.Start.Add(2 * time.Hour), ObjectKey: knownKey, State: recording.StateStored}
	if err := db.CreateSegment(ctx, &known); err != nil {
		t.Fatal(err)
	}

	var closed []recording.Segment
	rep, err := RecoverOrphans(ctx, db, spool, func(s recording.Segment) { closed = append(closed, s) }, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := OrphanReport{Files: 5, Orphans: 4, Indexed: 2, Fragments: 7, Skipped: 2,
		TruncatedBytes: frags[2].Size - frags[2].Size/2}
	if rep != want {
		t.Errorf("report %+v, want %+v", rep, want)
	}
	if len(closed) != 2 {
		t.Fatalf("%d segments handed to onClosed", len(closed))
	}
	for _, tc := range []struct {
		key   string
		start time.Time
		frags int
	}{{intactKey, seg.Start, 5}, {cutKey, cutStart, 2}} {
		got, err := db.SegmentByKey(ctx, tc.key)
		if err != nil {
			t.Fatalf("%s: %v", tc.key, err)
		}
		wantSize := frags[tc.frags-1].Offset + frags[tc.frags-1].Size
		if got.State != recording.StateClosed || got.Size != wantSize || got.SHA256 == "" || !got.Start.Equal(tc.start) ||
			got.CameraID != "cam1" || got.Codecs != seg.Codecs || len(got.Init) == 0 {
			t.Errorf("%s: row %+v, want closed, size %d", tc.key, got, wantSize)
		}
		rows, err := db.Fragments(ctx, got.ID, tc.start, tc.start.Add(time.Hour))
		if err != nil || len(rows) != tc.frags {
			t.Fatalf("%s: %d fragment rows (%v), want %d", tc.key, len(rows), err, tc.frags)
		}
		if end := rows[len(rows)-1].End; !got.End.Equal(end) || got.End.Sub(tc.start) < time.Duration(tc.frags-1)*time.Second {
			t.Errorf("%s: end %v, last fragment end %v", tc.key, got.End, end)
		}
		p := filepath.Join(spool, filepath.FromSlash(tc.key))
		if fi, _ := os.Stat(p); fi.Size() != wantSize {
			t.Errorf("%s: file size %d, want %d", tc.key, fi.Size(), wantSize)
		}
		sum, err := HashFile(mustOpen(t, p), wantSize)
		if err != nil || sum != got.SHA256 {
			t.Errorf("%s: sha256 %s, row %s (%v)", tc.key, sum, got.SHA256, err)
		}
	}
	segmentertest.Decode(t, cutPath)
	if b, _ := os.ReadFile(garbagePath); !bytes.Equal(b, garbage) {
		t.Error("garbage file changed")
	}
	if k, _ := db.Segment(ctx, known.ID); k.State != recording.StateStored || k.Size != 0 {
		t.Errorf("known row changed: %+v", k)
	}

	// A second run finds nothing new.
	rep, err = RecoverOrphans(ctx, db, spool, nil, nil)
	if err != nil || rep.Orphans != 2 || rep.Indexed != 0 {
		t.Errorf("second run: %+v, %v", rep, err)
	}
}

func mustOpen(t *testing.T, p string) *os.File {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}
