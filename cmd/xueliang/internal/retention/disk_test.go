package retention

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"xueliang/index"
	"xueliang/storage/local"
	"xueliang/storage/recording"
	"xueliang/storage/spool"
)

// smallFS returns a directory on a small file system of size bytes: a
// tmpfs the test mounts (we run as root), or, when mounting is refused, a
// plain directory and a Free function that pretends it has size bytes
// (the size-limited abstraction). The second result names which.
func smallFS(t *testing.T, size int64) (string, func(string) (int64, error), string) {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput()
	if err == nil {
		t.Cleanup(func() {
			if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
				t.Errorf("umount %s: %v %s", dir, err, out)
			}
		})
		return dir, nil, "tmpfs"
	}
	t.Logf("mount tmpfs refused (%v: %s): using a size-limited free-space function", err, strings.TrimSpace(string(out)))
	free := func(string) (int64, error) {
		var used int64
		err := filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
			if err == nil && fi.Mode().IsRegular() {
				used += (fi.Size() + 4095) / 4096 * 4096
			}
			return err
		})
		return max(size-used, 0), err
	}
	return dir, free, "abstraction"
}

// TestDiskFullPurge: on a 6 MiB file system holding the index, the spool
// and the local store, filling it with footage makes the guard purge the
// oldest unlocked segments (never the locked one) until free space is back
// above the floor, the index stays writable and recording continues; with
// everything locked and the disk at its reserve, recording stops (the
// spool quota refuses) and resumes once a lock is lifted and the purge
// frees space.
func TestDiskFullPurge(t *testing.T) {
	ctx := context.Background()
	const segSize = 256 << 10
	dir, free, kind := smallFS(t, 6<<20)
	t.Logf("file system: %s", kind)
	db, err := index.Open(ctx, filepath.Join(dir, "index.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st, err := local.New(filepath.Join(dir, "objects"))
	if err != nil {
		t.Fatal(err)
	}
	sp, err := spool.NewDir(filepath.Join(dir, "spool"))
	if err != nil {
		t.Fatal(err)
	}
	quota, err := spool.NewQuota(sp, spool.QuotaConfig{})
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	now := base.Add(time.Hour)
	w := New(Config{Index: db, Store: st, RemoveSpool: sp.Remove, MaxAge: 30 * 24 * time.Hour, Chunk: 2,
		Now: func() time.Time { return now }})
	g := w.NewGuard(GuardConfig{Paths: []string{dir}, Purge: true, MinFreeBytes: 2 << 20, ReserveBytes: 1 << 20,
		Ingested: quota.Admitted, Stop: quota.SetStopped, Free: free, Now: func() time.Time { return now }}, nil)
	measure := func() int64 {
		f, err := g.free()
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	var segs []recording.Segment
	record := func() error { // one more minute of footage, through the quota
		i := len(segs)
		start := base.Add(time.Duration(i) * time.Minute)
		if !quota.Reserve(segSize) {
			return errors.New("quota refused")
		}
		seg := recording.Segment{CameraID: fmt.Sprintf("cam%d", i%2), Start: start, End: start.Add(time.Minute)}
		seg.ObjectKey = recording.SegmentKey(seg.CameraID, start)
		if err := db.CreateSegment(ctx, &seg); err != nil {
			return err
		}
		if _, err := st.Put(ctx, seg.ObjectKey, bytes.NewReader(make([]byte, segSize)), segSize); err != nil {
			return err
		}
		quota.Release(segSize) // stored: out of the spool
		if err := db.FinishSegment(ctx, seg.ID, seg.End, segSize, "00"); err != nil {
			return err
		}
		if err := db.MarkStored(ctx, seg.ID); err != nil {
			return err
		}
		segs = append(segs, seg)
		return nil
	}
	// Fill to just above the reserve.
	for measure() > (1<<20)+2*segSize {
		if err := record(); err != nil {
			t.Fatal(err)
		}
	}
	if len(segs) < 6 {
		t.Fatalf("only %d segments fit", len(segs))
	}
	// Lock the second oldest segment.
	if _, err := db.CreateEvidenceLock(ctx, index.EvidenceLock{Cameras: []string{segs[1].CameraID},
		From: segs[1].Start, To: segs[1].End, CaseNumber: "C-1", Created: now}); err != nil {
		t.Fatal(err)
	}
	res, err := g.Check(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Free < res.Floor || res.Stopped {
		t.Fatalf("after purge: %+v, want free above the floor and recording on", res)
	}
	// Exactly a prefix of the unlocked segments went, oldest first.
	gone := 0
	for i, s := range segs {
		_, err := db.Segment(ctx, s.ID)
		deleted := errors.Is(err, index.ErrNotFound)
		switch {
		case i == 1 && deleted:
			t.Fatal("the locked segment was purged")
		case i == 1:
		case deleted && gone != i-boolInt(i > 1):
			t.Fatalf("segment %d purged but an older unlocked one was kept", i)
		case deleted:
			gone++
		}
		if _, serr := st.Stat(ctx, s.ObjectKey); deleted != (serr != nil) {
			t.Fatalf("segment %d: row deleted %v, object %v", i, deleted, serr)
		}
	}
	if gone == 0 {
		t.Fatal("nothing purged")
	}
	t.Logf("filled %d segments, purged the %d oldest unlocked", len(segs), gone)
	if au := purgeAudits(t, db); au == 0 {
		t.Fatal("no purge audit entry")
	}
	// Recording continues and the index is writable.
	if err := record(); err != nil {
		t.Fatalf("recording after the purge: %v", err)
	}

	// Lock everything, fill to below the reserve: recording stops.
	if _, err := db.CreateEvidenceLock(ctx, index.EvidenceLock{Cameras: []string{"cam0", "cam1"},
		From: base, To: base.Add(24 * time.Hour), CaseNumber: "C-2", Created: now}); err != nil {
		t.Fatal(err)
	}
	for measure() >= (1<<20)-segSize/2 {
		if err := record(); err != nil {
			t.Fatal(err)
		}
	}
	res, err = g.Check(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Stopped || !quota.Stopped() || quota.Reserve(1) {
		t.Fatalf("everything locked at the reserve: %+v, quota stopped %v; want recording stopped", res, quota.Stopped())
	}
	// The index and the audit log are still writable in the reserve.
	if _, err := db.AppendAudit(ctx, index.AuditRecord{At: now, User: "t", Action: "probe"}, func(r *index.AuditRecord) { r.Hash = "x" }); err != nil {
		t.Fatalf("audit append at the reserve: %v", err)
	}
	// Unlock C-2: the purge frees space and recording resumes.
	locks, err := db.EvidenceLocks(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range locks {
		if l.CaseNumber == "C-2" {
			if err := db.UnlockEvidence(ctx, l.ID, "admin", now); err != nil {
				t.Fatal(err)
			}
		}
	}
	res, err = g.Check(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Stopped || quota.Stopped() || res.Free < res.Floor {
		t.Fatalf("after unlock: %+v; want recording resumed", res)
	}
	if _, err := db.Segment(ctx, segs[1].ID); err != nil {
		t.Fatalf("C-1's segment after the second purge: %v", err)
	}
	if err := record(); err != nil {
		t.Fatalf("recording after resume: %v", err)
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func purgeAudits(t *testing.T, db *index.DB) int {
	t.Helper()
	recs, err := db.QueryAudit(context.Background(), index.AuditQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range recs {
		if r.Action == "retention.delete" && strings.Contains(r.Detail, "reason=purge") {
			n++
		}
	}
	return n
}
