package index

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"xueliang/index/pgtest"
	"xueliang/storage/recording"
)

func leaseIDs(ls []Lease) []string {
	var out []string
	for _, l := range ls {
		out = append(out, l.CameraID)
	}
	slices.Sort(out)
	return out
}

// TestPostgresLeases: two nodes (two DBs on one PostgreSQL database) share
// four cameras. Concurrent claims never take a camera twice (SKIP LOCKED);
// when node A stops renewing, node B claims its cameras within 10 s
// (database now()); A's late writes with its old epoch are refused
// (ErrFenced) and change nothing, B's are accepted and carry B's epoch.
func TestPostgresLeases(t *testing.T) {
	ctx := context.Background()
	a, b := twoPostgresHandles(t)
	cams := []string{"cam1", "cam2", "cam3", "cam4"}
	if err := a.AddLeaseCameras(ctx, cams); err != nil {
		t.Fatal(err)
	}
	if err := b.AddLeaseCameras(ctx, cams); err != nil { // idempotent
		t.Fatal(err)
	}

	// Concurrent claims of two each: disjoint, all four taken.
	const ttl = 3 * time.Second
	var wg sync.WaitGroup
	got := make([][]Lease, 2)
	errs := make([]error, 2)
	for i, db := range []*DB{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = db.ClaimCameras(ctx, fmt.Sprintf("node%c", 'A'+i), 2, ttl)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	all := append(leaseIDs(got[0]), leaseIDs(got[1])...)
	slices.Sort(all)
	if !slices.Equal(all, cams) {
		t.Fatalf("concurrent claims took %v and %v, want each camera once", leaseIDs(got[0]), leaseIDs(got[1]))
	}
	// Nothing is left to claim while the leases are renewed.
	if more, err := b.ClaimCameras(ctx, "nodeB", 4, ttl); err != nil || len(more) != 0 {
		t.Fatalf("claim of held cameras: %v %v", leaseIDs(more), err)
	}
	renewed, err := a.RenewLeases(ctx, "nodeA", ttl)
	if err != nil || !slices.Equal(leaseIDs(renewed), leaseIDs(got[0])) {
		t.Fatalf("renew: %v %v, want %v", leaseIDs(renewed), err, leaseIDs(got[0]))
	}
	aLease := got[0][0]

	// A records on its camera under its epoch.
	seg := recording.Segment{CameraID: aLease.CameraID, Start: at(0), ObjectKey: aLease.CameraID + "/a.mp4"}
	if err := a.CreateSegmentFenced(ctx, &seg, aLease.Epoch); err != nil {
		t.Fatal(err)
	}
	if err := a.AddFragmentsFenced(ctx, []recording.Fragment{{SegmentID: seg.ID, Seq: 1, Start: at(0), End: at(2), Size: 10}}, aLease.Epoch); err != nil {
		t.Fatal(err)
	}
	// The row names A as the node whose spool holds the segment, with
	// A's advertised address from the node registry.
	if err := a.Heartbeat(ctx, Node{ID: "nodeA", AdvertiseURL: "http://127.0.0.1:1"}, true); err != nil {
		t.Fatal(err)
	}
	if n, err := b.SegmentNode(ctx, seg.ID); err != nil || n != (SegmentNode{State: recording.StateRecording, Node: "nodeA", AdvertiseURL: "http://127.0.0.1:1"}) {
		t.Errorf("SegmentNode of A's segment: %+v %v", n, err)
	}
	if _, err := b.SegmentNode(ctx, seg.ID+1000); !errors.Is(err, ErrNotFound) {
		t.Errorf("SegmentNode of no segment: %v, want ErrNotFound", err)
	}

	if ep, stale, n, err := b.SegmentFence(ctx, seg.ID); err != nil || stale || n != 1 || ep != aLease.Epoch {
		t.Errorf("fence of a held lease's segment: epoch %d stale %v committed %d %v", ep, stale, n, err)
	}

	// A stalls (no more renewals); B keeps claiming and renewing.
	stalled := time.Now()
	var takeover time.Duration
	for {
		if _, err := b.RenewLeases(ctx, "nodeB", ttl); err != nil {
			t.Fatal(err)
		}
		if _, err := b.ClaimCameras(ctx, "nodeB", 4, ttl); err != nil {
			t.Fatal(err)
		}
		held, err := b.RenewLeases(ctx, "nodeB", ttl)
		if err != nil {
			t.Fatal(err)
		}
		if slices.Equal(leaseIDs(held), cams) {
			takeover = time.Since(stalled)
			break
		}
		if time.Since(stalled) > 10*time.Second {
			t.Fatalf("node B holds %v 10 s after node A stalled", leaseIDs(held))
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("takeover of node A's cameras %v after its last renewal (ttl %v)", takeover.Round(time.Millisecond), ttl)
	bLeases, _ := b.RenewLeases(ctx, "nodeB", ttl)
	var bEpoch int64
	for _, l := range bLeases {
		if l.CameraID == aLease.CameraID {
			bEpoch = l.Epoch
		}
	}
	if bEpoch <= aLease.Epoch {
		t.Fatalf("epoch after takeover %d, before %d", bEpoch, aLease.Epoch)
	}

	// Recovery of A's segment may keep only the fragment committed under
	// A's lease.
	if ep, stale, n, err := a.SegmentFence(ctx, seg.ID); err != nil || !stale || n != 1 || ep != aLease.Epoch {
		t.Errorf("fence after the takeover: epoch %d stale %v committed %d %v, want %d true 1", ep, stale, n, err, aLease.Epoch)
	}

	// A wakes up: its leases are gone and every write is refused.
	if held, err := a.RenewLeases(ctx, "nodeA", ttl); err != nil || len(held) != 0 {
		t.Fatalf("stalled node renewed %v %v", leaseIDs(held), err)
	}
	late := recording.Segment{CameraID: aLease.CameraID, Start: at(10), ObjectKey: aLease.CameraID + "/late.mp4"}
	if err := a.CreateSegmentFenced(ctx, &late, aLease.Epoch); !errors.Is(err, ErrFenced) {
		t.Errorf("late create: %v, want ErrFenced", err)
	}
	if err := a.AddFragmentsFenced(ctx, []recording.Fragment{{SegmentID: seg.ID, Seq: 2, Start: at(2), End: at(4), Offset: 10, Size: 10}}, aLease.Epoch); !errors.Is(err, ErrFenced) {
		t.Errorf("late fragments: %v, want ErrFenced", err)
	}
	if err := a.FinishSegmentFenced(ctx, seg.ID, at(4), 20, "x", aLease.Epoch); !errors.Is(err, ErrFenced) {
		t.Errorf("late finish: %v, want ErrFenced", err)
	}
	s, err := b.Segment(ctx, seg.ID)
	if err != nil || s.State != recording.StateRecording || !s.End.Equal(at(2)) {
		t.Errorf("segment after refused writes: %+v %v", s, err)
	}
	if fs, _ := b.Fragments(ctx, seg.ID, at(0), at(100)); len(fs) != 1 {
		t.Errorf("fragments after refused writes: %d, want 1", len(fs))
	}
	if segs, _ := b.SegmentsInRange(ctx, aLease.CameraID, at(0), at(100)); len(segs) != 1 {
		t.Errorf("segments after refused create: %d, want 1", len(segs))
	}

	// B writes under its epoch, which the row carries; B cannot finish
	// A's segment with its own epoch either (created under A's).
	next := recording.Segment{CameraID: aLease.CameraID, Start: at(10), ObjectKey: aLease.CameraID + "/b.mp4"}
	if err := b.CreateSegmentFenced(ctx, &next, bEpoch); err != nil {
		t.Fatal(err)
	}
	if err := b.AddFragmentsFenced(ctx, []recording.Fragment{{SegmentID: next.ID, Seq: 1, Start: at(10), End: at(12), Size: 10}}, bEpoch); err != nil {
		t.Fatal(err)
	}
	if err := b.FinishSegmentFenced(ctx, next.ID, at(12), 10, "y", bEpoch); err != nil {
		t.Fatal(err)
	}
	var rowEpoch int64
	if err := b.r.QueryRow(`SELECT epoch FROM segments WHERE id = ?`, next.ID).Scan(&rowEpoch); err != nil || rowEpoch != bEpoch {
		t.Errorf("segment row epoch %d %v, want %d", rowEpoch, err, bEpoch)
	}
	if n, err := a.SegmentNode(ctx, next.ID); err != nil || n != (SegmentNode{State: recording.StateClosed, Node: "nodeB"}) {
		t.Errorf("SegmentNode of B's segment (B never registered): %+v %v", n, err)
	}
	if err := b.FinishSegmentFenced(ctx, seg.ID, at(4), 20, "x", bEpoch); !errors.Is(err, ErrFenced) {
		t.Errorf("finishing another epoch's segment: %v, want ErrFenced", err)
	}

	// Drain: released leases are claimable at once.
	if err := b.ReleaseLeases(ctx, "nodeB"); err != nil {
		t.Fatal(err)
	}
	back, err := a.ClaimCameras(ctx, "nodeA", 4, ttl)
	if err != nil || !slices.Equal(leaseIDs(back), cams) {
		t.Fatalf("claim after drain: %v %v", leaseIDs(back), err)
	}
	for _, l := range back {
		if l.Previous != "nodeB" {
			t.Errorf("%s claimed from %q, want nodeB", l.CameraID, l.Previous)
		}
	}
}

// TestPostgresLeaseCamerasRetired: SetLeaseCameras adds the registry's
// cameras and retires the others. A retired camera is neither claimed,
// renewed, listed nor counted; its holder loses it at its next renewal
// but still closes its segment under its epoch. Registered again, the
// camera is claimable with its epoch kept (its next claim increments it),
// so that a writer from before the removal stays fenced off.
func TestPostgresLeaseCamerasRetired(t *testing.T) {
	srv := pgtest.Start(t)
	db, err := OpenPostgres(context.Background(), srv.NewDatabase(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ctx := context.Background()
	const ttl = time.Minute
	if added, removed, err := db.SetLeaseCameras(ctx, []string{"c1", "c2", "c3"}); err != nil || added != 3 || removed != 0 {
		t.Fatalf("set: %d %d %v", added, removed, err)
	}
	claimed, err := db.ClaimCameras(ctx, "n1", 3, ttl)
	if err != nil || len(claimed) != 3 {
		t.Fatalf("claim: %v %v", leaseIDs(claimed), err)
	}
	for _, l := range claimed {
		if l.Previous != "" {
			t.Errorf("first claim of %s: previous %q", l.CameraID, l.Previous)
		}
	}
	var c2 Lease
	for _, l := range claimed {
		if l.CameraID == "c2" {
			c2 = l
		}
	}
	seg := recording.Segment{CameraID: "c2", Start: at(0), ObjectKey: "c2/a.mp4"}
	if err := db.CreateSegmentFenced(ctx, &seg, c2.Epoch); err != nil {
		t.Fatal(err)
	}

	// c2 is removed from the registry.
	if added, removed, err := db.SetLeaseCameras(ctx, []string{"c1", "c3"}); err != nil || added != 0 || removed != 1 {
		t.Fatalf("set without c2: %d %d %v", added, removed, err)
	}
	if added, removed, err := db.SetLeaseCameras(ctx, []string{"c1", "c3"}); err != nil || added != 0 || removed != 0 {
		t.Fatalf("set again: %d %d %v, want no change", added, removed, err)
	}
	renewed, err := db.RenewLeases(ctx, "n1", ttl)
	if err != nil || !slices.Equal(leaseIDs(renewed), []string{"c1", "c3"}) {
		t.Fatalf("renew after the removal: %v %v", leaseIDs(renewed), err)
	}
	if err := db.FinishSegmentFenced(ctx, seg.ID, at(2), 10, "x", c2.Epoch); err != nil {
		t.Errorf("the holder cannot close its segment of the removed camera: %v", err)
	}
	if err := db.ReleaseLeases(ctx, "n1"); err != nil {
		t.Fatal(err)
	}
	if more, err := db.ClaimCameras(ctx, "n2", 3, ttl); err != nil || !slices.Equal(leaseIDs(more), []string{"c1", "c3"}) {
		t.Fatalf("claim with c2 retired: %v %v", leaseIDs(more), err)
	}
	if ls, err := db.Leases(ctx); err != nil || !slices.Equal(leaseIDs(ls), []string{"c1", "c3"}) {
		t.Errorf("leases with c2 retired: %v %v", leaseIDs(ls), err)
	}
	if n, err := db.LeaseCameraCount(ctx); err != nil || n != 2 {
		t.Errorf("lease camera count %d %v, want 2", n, err)
	}

	// c2 comes back: claimable, with a newer epoch than before.
	if added, removed, err := db.SetLeaseCameras(ctx, []string{"c1", "c2", "c3"}); err != nil || added != 1 || removed != 0 {
		t.Fatalf("set with c2 back: %d %d %v", added, removed, err)
	}
	back, err := db.ClaimCameras(ctx, "n3", 3, ttl)
	if err != nil || len(back) != 1 || back[0].CameraID != "c2" || back[0].Epoch <= c2.Epoch {
		t.Fatalf("claim of the camera back: %+v %v, want c2 with an epoch above %d", back, err, c2.Epoch)
	}
	late := recording.Segment{CameraID: "c2", Start: at(10), ObjectKey: "c2/late.mp4"}
	if err := db.CreateSegmentFenced(ctx, &late, c2.Epoch); !errors.Is(err, ErrFenced) {
		t.Errorf("write under the epoch from before the removal: %v, want ErrFenced", err)
	}

	// A lease that expired unclaimed is still its node's: renewed, same
	// epoch.
	if _, err := db.RenewLeases(ctx, "n3", time.Millisecond); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	again, err := db.RenewLeases(ctx, "n3", ttl)
	if err != nil || len(again) != 1 || again[0].Epoch != back[0].Epoch {
		t.Errorf("renewal of an expired, unclaimed lease: %+v %v, want c2 at epoch %d", again, err, back[0].Epoch)
	}
}

// TestLeasesNeedPostgres: SQLite serves one node and says so.
func TestLeasesNeedPostgres(t *testing.T) {
	db := openTest(t)
	if _, err := db.ClaimCameras(context.Background(), "n", 1, time.Second); !errors.Is(err, ErrLeasesUnsupported) {
		t.Fatalf("claim on SQLite: %v", err)
	}
}

// TestPostgresStalledWriterReleases: a node stopped in the middle of a
// fenced write (its transaction open, the camera's lease row share-locked)
// does not keep the camera from the other nodes: the server ends the
// idle transaction (pgIdleInTxTimeout) and the next claim after expiry
// takes the camera; the stalled writer's transaction is gone.
func TestPostgresStalledWriterReleases(t *testing.T) {
	ctx := context.Background()
	a, b := twoPostgresHandles(t)
	if err := a.AddLeaseCameras(ctx, []string{"cam1"}); err != nil {
		t.Fatal(err)
	}
	const ttl = time.Second
	got, err := a.ClaimCameras(ctx, "nodeA", 1, ttl)
	if err != nil || len(got) != 1 {
		t.Fatalf("claim: %v %v", got, err)
	}
	// A's write connection stops between two statements of a fenced write.
	tx, err := a.w.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkEpoch(ctx, tx, "cam1", got[0].Epoch); err != nil {
		t.Fatal(err)
	}
	stalled := time.Now()
	for {
		claimed, err := b.ClaimCameras(ctx, "nodeB", 1, ttl)
		if err != nil {
			t.Fatal(err)
		}
		if len(claimed) == 1 {
			t.Logf("camera claimed %v after the writer stalled (lease ttl %v, idle transaction timeout %v)",
				time.Since(stalled).Round(time.Millisecond), ttl, pgIdleInTxTimeout)
			break
		}
		if time.Since(stalled) > ttl+pgIdleInTxTimeout+5*time.Second {
			t.Fatal("the stalled writer's lock keeps the camera from being claimed")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := tx.Commit(); err == nil {
		t.Error("the stalled writer's transaction committed after the takeover")
	}
}

// twoPostgresHandles opens two index handles on one fresh PostgreSQL
// database, as two nodes of a cluster hold (closed when the test ends).
func twoPostgresHandles(t *testing.T) (a, b *DB) {
	t.Helper()
	url := pgtest.Start(t).NewDatabase(t)
	open := func() *DB {
		db, err := OpenPostgres(context.Background(), url, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	return open(), open()
}
