package cluster

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"xueliang/index"
	"xueliang/index/pgtest"
)

type heldLog struct {
	mu   sync.Mutex
	last map[string]int64
}

func (h *heldLog) set(m map[string]int64) { h.mu.Lock(); h.last = m; h.mu.Unlock() }
func (h *heldLog) get() map[string]int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return maps.Clone(h.last)
}

// TestMembersTakeOver: two members with capacity 3 share four cameras on
// a real PostgreSQL; when A dies without releasing (crash), B, with room
// for its cameras, holds all four within 10 s (measured and printed) with
// new epochs; a member that stops normally releases at once.
func TestMembersTakeOver(t *testing.T) {
	ctx := context.Background()
	db := leaseIndex(t)
	cams := []string{"c1", "c2", "c3", "c4"}
	if err := db.AddLeaseCameras(ctx, cams); err != nil {
		t.Fatal(err)
	}
	const ttl = 2 * time.Second
	var ha, hb heldLog
	a := &Member{Store: db, Node: "a", TTL: ttl, Capacity: 2, OnChange: ha.set}
	bm := NewMetrics(prometheus.NewRegistry())
	b := &Member{Store: db, Node: "b", TTL: ttl, Capacity: 4, OnChange: hb.set, Metrics: bm}
	actx, crashA := context.WithCancel(ctx)
	aDone := make(chan error, 1)
	go func() { aDone <- a.run(actx, false) }()
	// Let A take its two before B starts.
	waitHeld(t, &ha, 2, 10*time.Second)
	bctx, stopB := context.WithCancel(ctx)
	bDone := make(chan error, 1)
	go func() { bDone <- b.Run(bctx) }()
	waitHeld(t, &hb, 2, 10*time.Second)
	before := ha.get()
	for cam := range before {
		if _, both := hb.get()[cam]; both {
			t.Fatalf("camera %s held by both nodes", cam)
		}
	}

	crashA()
	<-aDone
	crashed := time.Now()
	got := waitHeld(t, &hb, 4, 10*time.Second)
	t.Logf("node b holds all 4 cameras %v after node a crashed (ttl %v)", time.Since(crashed).Round(time.Millisecond), ttl)
	for cam, ep := range before {
		if got[cam] <= ep {
			t.Errorf("%s: epoch %d after takeover, %d before", cam, got[cam], ep)
		}
	}
	// B's first claims were of never-held cameras: only A's two count.
	if n := testutil.ToFloat64(bm.takeovers); n != 2 {
		t.Errorf("takeovers_total = %v after taking over 2 cameras, want 2", n)
	}

	// A normal stop releases: a new member claims at once.
	stopB()
	<-bDone
	var hc heldLog
	c := &Member{Store: db, Node: "c", TTL: time.Minute, Capacity: 4, OnChange: hc.set}
	cctx, stopC := context.WithCancel(ctx)
	defer stopC()
	go c.Run(cctx)
	held := waitHeld(t, &hc, 4, 5*time.Second)
	if ids := slices.Sorted(maps.Keys(held)); !slices.Equal(ids, cams) {
		t.Fatalf("after release c holds %v", ids)
	}
}

func waitHeld(t *testing.T, h *heldLog, n int, within time.Duration) map[string]int64 {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if m := h.get(); len(m) == n {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("holds %v after %v, want %d cameras", h.get(), within, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestMemberKeepsUnclaimedLeases: a member that cannot renew in time
// (interval > ttl, as during a PostgreSQL outage longer than the ttl)
// keeps the leases nobody claimed meanwhile, with their epochs (its
// segments in progress stay valid), and counts no takeover.
func TestMemberKeepsUnclaimedLeases(t *testing.T) {
	ctx := context.Background()
	db := leaseIndex(t)
	if err := db.AddLeaseCameras(ctx, []string{"c1", "c2"}); err != nil {
		t.Fatal(err)
	}
	var h heldLog
	m := NewMetrics(prometheus.NewRegistry())
	a := &Member{Store: db, Node: "a", TTL: 200 * time.Millisecond, Interval: 600 * time.Millisecond, Capacity: 2, OnChange: h.set, Metrics: m}
	actx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(actx) }()
	waitHeld(t, &h, 2, 10*time.Second)
	time.Sleep(3 * time.Second) // five rounds, each after the leases expired
	stop()
	<-done
	if got := h.get(); got["c1"] != 1 || got["c2"] != 1 {
		t.Errorf("held %v after its leases expired unclaimed, want both at epoch 1", got)
	}
	if n := testutil.ToFloat64(m.takeovers); n != 0 {
		t.Errorf("takeovers_total = %v, want 0", n)
	}
}

// flakyStore is the index behind a switch: while down, every lease and
// node call fails (a PostgreSQL outage).
type flakyStore struct {
	*index.DB
	down *atomic.Bool
}

var errDown = errors.New("index down")

func (f flakyStore) ClaimCameras(ctx context.Context, node string, max int, ttl time.Duration) ([]index.Lease, error) {
	if f.down.Load() {
		return nil, errDown
	}
	return f.DB.ClaimCameras(ctx, node, max, ttl)
}

func (f flakyStore) RenewLeases(ctx context.Context, node string, ttl time.Duration) ([]index.Lease, error) {
	if f.down.Load() {
		return nil, errDown
	}
	return f.DB.RenewLeases(ctx, node, ttl)
}

func (f flakyStore) Heartbeat(ctx context.Context, n index.Node, restart bool) error {
	if f.down.Load() {
		return errDown
	}
	return f.DB.Heartbeat(ctx, n, restart)
}

func (f flakyStore) Nodes(ctx context.Context, live time.Duration) ([]index.Node, error) {
	if f.down.Load() {
		return nil, errDown
	}
	return f.DB.Nodes(ctx, live)
}

// TestMembersSurviveIndexOutage: two members with room for every camera
// share four; the index is unreachable for several ttls, so every lease
// and heartbeat goes stale. When it is back each member keeps its own
// cameras with their epochs (renewed, not claimed by the other, which
// would fence off the segments in progress), and no takeover is counted.
func TestMembersSurviveIndexOutage(t *testing.T) {
	ctx := context.Background()
	db := leaseIndex(t)
	if err := db.AddLeaseCameras(ctx, []string{"c1", "c2", "c3", "c4"}); err != nil {
		t.Fatal(err)
	}
	var down atomic.Bool
	st := flakyStore{db, &down}
	const ttl = 500 * time.Millisecond
	logs := []*heldLog{{}, {}}
	metrics := []*Metrics{NewMetrics(prometheus.NewRegistry()), NewMetrics(prometheus.NewRegistry())}
	mctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for i, id := range []string{"a", "b"} {
		m := &Member{Store: st, Nodes: st, Node: id, TTL: ttl, Capacity: 4, OnChange: logs[i].set, Metrics: metrics[i]}
		wg.Add(1)
		go func() { defer wg.Done(); m.Run(mctx) }()
		// Rounds half an interval apart: the first node back has time
		// to claim before the other renews.
		time.Sleep(ttl / 10)
	}
	t.Cleanup(func() { stop(); wg.Wait() })
	waitHeld(t, logs[0], 2, 10*time.Second)
	waitHeld(t, logs[1], 2, 10*time.Second)
	before := []map[string]int64{logs[0].get(), logs[1].get()}

	down.Store(true)
	time.Sleep(4 * ttl)
	down.Store(false)
	time.Sleep(6 * ttl) // several rounds with the index back
	for i := range logs {
		if got := logs[i].get(); !maps.Equal(got, before[i]) {
			t.Errorf("node %d held %v before the outage, %v after", i, before[i], got)
		}
		if n := testutil.ToFloat64(metrics[i].takeovers); n != 0 {
			t.Errorf("node %d: %v takeovers across the outage", i, n)
		}
		if n := testutil.ToFloat64(metrics[i].renewFailures); n == 0 {
			t.Errorf("node %d: no failed round during the outage", i)
		}
	}
}

// leaseIndex returns an index handle on a fresh database of a real
// PostgreSQL (closed when the test ends).
func leaseIndex(t *testing.T) *index.DB {
	t.Helper()
	url := pgtest.Start(t).NewDatabase(t)
	db, err := index.OpenPostgres(context.Background(), url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
