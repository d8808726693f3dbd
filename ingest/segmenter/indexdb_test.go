package segmenter

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"xueliang/index"
	"xueliang/ingest/segmenter/segmentertest"
	"xueliang/storage/recording"
)

var (
	_ Index         = (*index.DB)(nil)
	_ RecoveryIndex = (*index.DB)(nil)
)

// TestIndexDB records into and recovers with the real SQLite index.
func TestIndexDB(t *testing.T) {
	ctx := context.Background()
	db, err := index.Open(ctx, filepath.Join(t.TempDir(), "index.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	clip := segmentertest.ReadTS(t, segmentertest.GenerateTS(t, t.TempDir(),
		segmentertest.ClipOptions{Seconds: 5, GOP: 12, BFrames: 2, AAC: true}))
	spool := t.TempDir()
	w := startWriter(t, Config{CameraID: "cam1", SpoolRoot: spool, Index: db, SegmentDuration: 2 * time.Second})
	h := &harness{t: t, spool: spool, w: w}
	if err := w.Start(sessionFor(clip, firstVideo(clip).PTS)); err != nil {
		t.Fatal(err)
	}
	// Feed 4.5 of the 5 seconds, then "crash": the writer is never closed,
	// the last segment stays in state recording.
	var fed []segmentertest.AU
	for _, au := range clip.AUs {
		if au.PTS-firstVideo(clip).PTS < 45*9000 {
			fed = append(fed, au)
		}
	}
	h.feed(&segmentertest.Clip{AUs: fed, AAC: clip.AAC}, 0)
	// The staged media of the fragment in progress reaches the file (as it
	// does every stageSize bytes) before the crash.
	w.mu.Lock()
	w.writeStageLocked(&w.frag)
	w.mu.Unlock()
	time.Sleep(200 * time.Millisecond) // let the index worker catch up
	segs, err := db.SegmentsByState(ctx, recording.StateRecording)
	if err != nil || len(segs) != 1 {
		t.Fatalf("recording segments %v %v", segs, err)
	}
	closedSegs, _ := db.SegmentsByState(ctx, recording.StateClosed)
	if len(closedSegs) != 1 {
		t.Fatalf("%d closed segments, want 1", len(closedSegs))
	}
	rec := segs[0]
	// Cut the file in the middle of its last fragment (as a crash would).
	path := filepath.Join(spool, rec.ObjectKey)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	pf, err := recording.ParseFile(f, fi.Size())
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("before crash: %d fragments, size %d, init %d, %q", len(pf.Fragments), fi.Size(), pf.InitSize, pf.StopReason)
	// The crash left the fragment in progress behind the last complete
	// one: its media written, its header room still zeros.
	if pf.ValidSize != rec.Size || pf.ValidSize >= fi.Size() || !strings.Contains(pf.StopReason, "extends to end of file") {
		t.Errorf("crashed file: valid %d of %d bytes (index says %d), stop %q; want the fragment in progress with zero headers",
			pf.ValidSize, fi.Size(), rec.Size, pf.StopReason)
	}
	if len(pf.Fragments) < 2 {
		t.Fatalf("%d complete fragments, want at least 2", len(pf.Fragments))
	}
	last := pf.Fragments[len(pf.Fragments)-1]
	if err := os.Truncate(path, last.Offset+last.Size/2); err != nil {
		t.Fatal(err)
	}
	wantFrags := len(pf.Fragments) - 1
	var handed []recording.Segment
	rep, err := Recover(ctx, db, spool, func(s recording.Segment) { handed = append(handed, s) }, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Recovered != 1 || len(handed) != 1 || rep.TruncatedBytes == 0 || rep.Fragments != wantFrags {
		t.Fatalf("report %+v", rep)
	}
	got, err := db.Segment(ctx, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != recording.StateClosed || got.Size != handed[0].Size || got.SHA256 == "" {
		t.Errorf("recovered segment %+v", got)
	}
	if !got.Start.Equal(closedSegs[0].End) {
		t.Errorf("recovered start %v, previous end %v", got.Start, closedSegs[0].End)
	}
	frags, err := db.Fragments(ctx, rec.ID, got.Start, got.End)
	if err != nil || len(frags) == 0 {
		t.Fatalf("fragments %v %v", frags, err)
	}
	if last := frags[len(frags)-1]; !last.End.Equal(got.End) || last.Offset+last.Size != got.Size {
		t.Errorf("last fragment %+v, segment %+v", last, got)
	}
	segmentertest.Decode(t, path)
	// Close now; the writer's later ops on the recovered segment must not
	// corrupt anything (its fd was still open: only the close is left).
	closeWait(w)
}
