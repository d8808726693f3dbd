package main

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the test's own SQL on the shared index

	"xueliang/index"
	"xueliang/index/pgtest"
	"xueliang/storage/miniotest"
	"xueliang/storage/recording"
)

// TestClusterFailover (issue #21): three nodes (the real binary) share one
// PostgreSQL index and one MinIO bucket and record 12 camsim cameras, each
// camera by the node holding its lease (capacity 6 each).
//
//   - Every camera is recorded, by one node at a time: segment rows of
//     different epochs (lease holders) of a camera never overlap.
//   - kill -9 of the busiest node: its cameras record on the others
//     within 10 s (measured, logged); the timeline gap is at most that
//     plus one fragment; once the dead node is back (its spool recovered
//     and uploaded) a replay across the takeover, served by the new
//     holder, plays footage from both sides (ffprobe judges it).
//   - SIGSTOP of the busiest node past its lease: the others take its
//     cameras over; after SIGCONT its late writes are refused by the epoch
//     (xueliang_cluster_fenced_writes_total, the log line), and no row of
//     its old epochs reaches past the stall.
func TestClusterFailover(t *testing.T) {
	t.Parallel() // waits on real time mostly: runs beside the others (Makefile TEST_PARALLEL)
	const cams = 12
	pg := pgtest.Start(t)
	dbURL := pg.NewDatabase(t)
	m := miniotest.Start(t)
	rtsp, _ := startCamsim(t, "-cameras", fmt.Sprint(cams))
	cfg := func(node string) string {
		return "index:\n  postgres_url: " + dbURL + "\nrecording:\n  segment_duration: 4s\n" +
			"cluster:\n  enabled: true\n  node_id: " + node + "\n  capacity: 6\n" + s3Config(m, "cluster") + cameraList(rtsp, cams)
	}
	ids := []string{"n1", "n2", "n3"}
	nodes := map[string]*testServer{}
	for _, id := range ids {
		nodes[id] = startServer(t, cfg(id))
	}
	ctx := context.Background()
	db, err := index.OpenPostgres(ctx, dbURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	sqldb, err := sql.Open("pgx", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sqldb.Close() })

	held := func() map[string]index.Lease { return liveLeases(t, db) }
	byNode := func(h map[string]index.Lease) map[string][]string {
		out := map[string][]string{}
		for cam, l := range h {
			out[l.Node] = append(out[l.Node], cam)
		}
		return out
	}
	busiest := func(h map[string]index.Lease, among []string) string {
		bn := byNode(h)
		best := among[0]
		for _, id := range among {
			if len(bn[id]) > len(bn[best]) {
				best = id
			}
		}
		return best
	}
	// firstStart is the start of cam's first segment row under epoch
	// (zero when none yet).
	firstStart := func(cam string, epoch int64) time.Time {
		var ns sql.NullInt64
		if err := sqldb.QueryRowContext(ctx, `SELECT min(start_ns) FROM segments WHERE camera_id = $1 AND epoch = $2`, cam, epoch).Scan(&ns); err != nil {
			t.Fatal(err)
		}
		if !ns.Valid {
			return time.Time{}
		}
		return time.Unix(0, ns.Int64)
	}
	// takeover waits until every camera of lost is held by another node
	// under a newer epoch and has a segment row under it; it returns the
	// new leases and the time from since to the last camera's first row.
	takeover := func(what string, lost map[string]index.Lease, since time.Time) (map[string]index.Lease, time.Duration) {
		t.Helper()
		var now map[string]index.Lease
		var worst time.Duration
		waitForFast(t, 20*time.Second, what, func() bool {
			now = held()
			worst = 0
			for cam, old := range lost {
				l, ok := now[cam]
				if !ok || l.Node == old.Node || l.Epoch <= old.Epoch {
					return false
				}
				s := firstStart(cam, l.Epoch)
				if s.IsZero() {
					return false
				}
				worst = max(worst, s.Sub(since))
			}
			return true
		})
		return now, worst
	}

	waitForFast(t, 30*time.Second, "every camera leased", func() bool { return len(held()) == cams })
	time.Sleep(12 * time.Second)
	h := held()
	t.Logf("leases: %v", byNode(h))
	for cam, l := range h {
		if firstStart(cam, l.Epoch).IsZero() {
			t.Errorf("%s: no segment row under its lease (node %s epoch %d)", cam, l.Node, l.Epoch)
		}
	}

	// kill -9 of the busiest node.
	victim := busiest(h, ids)
	lost := map[string]index.Lease{}
	for cam, l := range h {
		if l.Node == victim {
			lost[cam] = l
		}
	}
	if len(lost) == 0 {
		t.Fatalf("no node holds a camera: %v", byNode(h))
	}
	killed := time.Now()
	nodes[victim].kill9(t)
	after, failover := takeover("cameras of the killed node recording elsewhere", lost, killed)
	t.Logf("kill -9 of %s (%d cameras): recording on the other nodes after %v (lease_ttl 5s)", victim, len(lost), failover.Round(time.Millisecond))
	if failover > 10*time.Second {
		t.Errorf("failover took %v, want ≤ 10 s", failover)
	}
	cam := slices.Sorted(maps.Keys(lost))[0]
	holder := nodes[after[cam].Node]
	newStart := firstStart(cam, after[cam].Epoch)
	time.Sleep(time.Until(newStart.Add(7 * time.Second)))
	var tl timelineResp
	q := url.Values{"from": {killed.Add(-8 * time.Second).UTC().Format(time.RFC3339Nano)},
		"to": {newStart.Add(4 * time.Second).UTC().Format(time.RFC3339Nano)}}
	if code := getJSON(t, holder.base+"/api/v1/cameras/"+cam+"/timeline?"+q.Encode(), &tl); code != 200 {
		t.Fatalf("timeline: %d", code)
	}
	if len(tl.Gaps) != 1 {
		t.Errorf("%s: timeline across the takeover: %+v, want one gap", cam, tl)
	}
	for _, g := range tl.Gaps {
		t.Logf("%s: timeline gap at the takeover %v", cam, g.End.Sub(g.Start).Round(time.Millisecond))
		if d := g.End.Sub(g.Start); d > failover+2*time.Second+500*time.Millisecond {
			t.Errorf("%s: gap %v, want ≤ failover %v + one fragment (2 s)", cam, d, failover)
		}
	}

	// The dead node comes back: its spool (the segment it was recording)
	// is recovered and uploaded, so the footage before the takeover plays
	// from any node.
	nodes[victim].start(t)
	waitForFast(t, 30*time.Second, "the restarted node's footage uploaded", func() bool {
		segs, err := db.SegmentsInRange(ctx, cam, killed.Add(-8*time.Second), killed)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range segs {
			if s.State != recording.StateStored {
				return false
			}
		}
		return len(segs) > 0
	})
	from, to := killed.Add(-6*time.Second), newStart.Add(4*time.Second)
	r := fetchReplay(t, holder, cam, from, to, true)
	j := judgeMP4(t, r.path)
	if len(j.Shown) == 0 {
		t.Fatalf("%s: replay across the takeover shows no frame", cam)
	}
	first, last := j.Shown[0].Stamp.Captured, j.Shown[len(j.Shown)-1].Stamp.Captured
	t.Logf("%s: replay across the takeover: %d frames, %s … %s, gaps %v", cam, len(j.Shown),
		first.Format(time.TimeOnly), last.Format(time.TimeOnly), r.gaps)
	if first.After(from.Add(2*time.Second)) || last.Before(newStart.Add(2*time.Second)) {
		t.Errorf("%s: replay [%v, %v] does not cover both sides of the takeover at %v", cam, first, last, newStart)
	}

	// SIGSTOP of the busiest node past its lease, then SIGCONT.
	h = held()
	stalled := busiest(h, ids)
	lost = map[string]index.Lease{}
	for c, l := range h {
		if l.Node == stalled {
			lost[c] = l
		}
	}
	p := nodes[stalled].proc.cmd.Process
	if err := p.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	_, stall := takeover("cameras of the stalled node recording elsewhere", lost, stopped)
	t.Logf("SIGSTOP of %s (%d cameras): recording on the other nodes after %v", stalled, len(lost), stall.Round(time.Millisecond))
	if err := p.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	waitForFast(t, 20*time.Second, "the stalled node's late writes refused", func() bool {
		n, _ := metricSum(scrapeMetrics(t, nodes[stalled]), "xueliang_cluster_fenced_writes_total")
		return n >= 1 && nodes[stalled].logContains(t, "index refused a stale writer")
	})
	waitForFast(t, 10*time.Second, "the stalled node holding no camera", func() bool {
		n, ok := metricSum(scrapeMetrics(t, nodes[stalled]), "xueliang_cluster_cameras_held")
		return ok && n == 0
	})
	for c, old := range lost {
		// Footage after the stall never reaches a row of the old epoch: no
		// row starts after it, no fragment extends a row past it (the
		// segment in progress is left unfinished: its finish is refused).
		var late int
		if err := sqldb.QueryRowContext(ctx, `SELECT count(*) FROM segments WHERE camera_id = $1 AND epoch = $2
			AND (start_ns > $3 OR end_ns > $4)`, c, old.Epoch,
			stopped.UnixNano(), stopped.Add(500*time.Millisecond).UnixNano()).Scan(&late); err != nil {
			t.Fatal(err)
		}
		if late != 0 {
			t.Errorf("%s: %d rows of the stalled node's epoch %d reach past the stall", c, late, old.Epoch)
		}
	}

	// Drain (CLI, admin): the busiest node hands its cameras over and
	// holds none; undrained, it claims again when cameras are free.
	h = held()
	drained := busiest(h, ids)
	lost = map[string]index.Lease{}
	for c, l := range h {
		if l.Node == drained {
			lost[c] = l
		}
	}
	if code, out, errOut := runCLI(t, "node", "drain", "--server", holder.base, drained); code != 0 {
		t.Fatalf("node drain: %d %s %s", code, out, errOut)
	}
	drainedAt := time.Now()
	_, moved := takeover("cameras of the drained node recording elsewhere", lost, drainedAt)
	t.Logf("drain of %s (%d cameras): recording on the other nodes after %v", drained, len(lost), moved.Round(time.Millisecond))
	if n := len(byNode(held())[drained]); n != 0 {
		t.Errorf("drained node holds %d cameras", n)
	}
	if code, out, errOut := runCLI(t, "node", "drain", "--undrain", "--server", holder.base, drained); code != 0 {
		t.Fatalf("node drain --undrain: %d %s %s", code, out, errOut)
	}
	if code, out, _ := runCLI(t, "node", "list", "--server", holder.base); code != 0 || !strings.Contains(out, drained) {
		t.Errorf("node list: %d %s", code, out)
	}

	// One node at a time: no two segments of one camera under different
	// epochs overlap.
	rows, err := sqldb.QueryContext(ctx, `SELECT a.camera_id, a.epoch, b.epoch, a.start_ns, a.end_ns, b.start_ns, b.end_ns
		FROM segments a JOIN segments b ON a.camera_id = b.camera_id AND a.epoch < b.epoch
		WHERE a.start_ns < b.end_ns AND b.start_ns < a.end_ns`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var c string
		var ea, eb, as, ae, bs, be int64
		if err := rows.Scan(&c, &ea, &eb, &as, &ae, &bs, &be); err != nil {
			t.Fatal(err)
		}
		t.Errorf("%s: epoch %d segment [%v, %v] overlaps epoch %d segment [%v, %v]", c, ea,
			time.Unix(0, as).Format(time.StampMilli), time.Unix(0, ae).Format(time.StampMilli), eb,
			time.Unix(0, bs).Format(time.StampMilli), time.Unix(0, be).Format(time.StampMilli))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	var nodesResp struct {
		Nodes []struct {
			ID   string `json:"id"`
			Live bool   `json:"live"`
		} `json:"nodes"`
	}
	if code := getJSON(t, holder.base+"/api/v1/nodes", &nodesResp); code != 200 || len(nodesResp.Nodes) != 3 {
		t.Errorf("GET /api/v1/nodes: %d %+v", code, nodesResp)
	}
}

// liveLeases is camera → live lease of the cluster's index.
func liveLeases(t *testing.T, db *index.DB) map[string]index.Lease {
	t.Helper()
	ls, err := db.Leases(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]index.Lease{}
	for _, l := range ls {
		if l.Node != "" && l.Expires.After(time.Now()) {
			out[l.CameraID] = l
		}
	}
	return out
}
