// Package cluster keeps a node's camera leases: it claims cameras up to
// the node's capacity, renews them well before they expire, and reports
// the set it holds (camera → epoch, the fencing token for the index's
// fenced writes) whenever it changes. Leases live in the PostgreSQL index
// (index.ClaimCameras and friends); expiry is the database's clock.
package cluster

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"maps"
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"xueliang/index"
)

// LeaseStore is the part of the index a Member uses.
type LeaseStore interface {
	ClaimCameras(ctx context.Context, node string, max int, ttl time.Duration) ([]index.Lease, error)
	RenewLeases(ctx context.Context, node string, ttl time.Duration) ([]index.Lease, error)
	ReleaseLeases(ctx context.Context, node string) error
}

var _ LeaseStore = (*index.DB)(nil)

// NodeStore is the node registry a Member heartbeats into and reads the
// other nodes' weights and draining flags from.
type NodeStore interface {
	Heartbeat(ctx context.Context, n index.Node, restart bool) error
	Nodes(ctx context.Context, live time.Duration) ([]index.Node, error)
	LeaseCameraCount(ctx context.Context) (int, error)
}

var _ NodeStore = (*index.DB)(nil)

// Member holds one node's leases. Fill the fields, then Run.
type Member struct {
	Store LeaseStore
	// Node is this node's id (cluster.node_id); required.
	Node string
	// TTL is the lease duration; a camera of a node that stops renewing is
	// claimed by another within about TTL + Interval. It defaults to 5 s.
	TTL time.Duration
	// Interval between renew-and-claim rounds. It defaults to TTL/5.
	Interval time.Duration
	// Capacity is the most cameras this node records. It defaults to 64.
	Capacity int
	// Nodes, when set, is the node registry: every round heartbeats this
	// node (Info, with Cameras the leases held), and the claims are bounded
	// by the node's fair share (Share), and stop while the node is
	// draining (its leases are then released).
	Nodes NodeStore
	// Info describes this node in the registry (ID is Node; Capacity is
	// Capacity; Weight defaults to 1).
	Info index.Node
	// Metrics, when set, counts renew failures and takeovers and shows
	// the cameras held (NewMetrics).
	Metrics *Metrics
	// OnChange receives the held set (camera → epoch) after every round
	// that changed it; called from Run's goroutine. Optional.
	OnChange func(held map[string]int64)
	// Logger; nil discards.
	Logger *slog.Logger
}

// Run renews and claims every Interval until ctx ends, then releases the
// node's leases (so that others take over at once) unless release is
// false (a crash is simulated by tests that way).
func (m *Member) Run(ctx context.Context) error {
	return m.run(ctx, true)
}

func (m *Member) run(ctx context.Context, release bool) error {
	if m.Node == "" {
		return errors.New("cluster: empty node id")
	}
	ttl := m.TTL
	if ttl <= 0 {
		ttl = 5 * time.Second
	}
	every := m.Interval
	if every <= 0 {
		every = ttl / 5
	}
	capacity := m.Capacity
	if capacity <= 0 {
		capacity = 64
	}
	log := m.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	log = log.With("component", "cluster", "node", m.Node)
	held := map[string]int64{}
	t := time.NewTicker(every)
	defer t.Stop()
	restart, failed := true, false
	for {
		next, err := m.round(ctx, ttl, capacity, len(held), restart, !failed, log)
		switch {
		case err != nil && ctx.Err() == nil:
			// Leases not renewed expire; keep the last known set until the
			// store answers again (the fenced writes refuse stale epochs).
			m.Metrics.renewFailed()
			log.Warn("lease round failed", "err", err)
			failed = true
		case err == nil:
			restart, failed = false, false
			if maps.Equal(next, held) {
				break
			}
			for cam := range held {
				if _, ok := next[cam]; !ok {
					log.Info("camera lease lost", "camera", cam)
				}
			}
			for cam, ep := range next {
				if old, ok := held[cam]; !ok || old != ep {
					log.Info("camera lease acquired", "camera", cam, "epoch", ep)
				}
			}
			held = next
			m.Metrics.setHeld(len(held))
			if m.OnChange != nil {
				m.OnChange(maps.Clone(held))
			}
		}
		select {
		case <-ctx.Done():
			if release {
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				defer cancel()
				if err := m.Store.ReleaseLeases(rctx, m.Node); err != nil {
					log.Warn("cannot release leases", "err", err)
				}
			}
			return nil
		case <-t.C:
		}
	}
}

// round heartbeats (with the number of cameras held before it), renews
// the held leases and claims free ones up to the node's limit. A draining
// node renews nothing: its pullers are stopped (the empty set is
// reported) and its leases released one round later, for others to claim.
// claim is false on the first round after a failed one: after an outage
// of the store every node's heartbeat is stale and every lease expired, so
// the first node back would count itself alone and claim the others'
// cameras; renewing only, for one round, lets every node renew its own
// first.
func (m *Member) round(ctx context.Context, ttl time.Duration, capacity, holding int, restart, claim bool, log *slog.Logger) (map[string]int64, error) {
	limit := capacity
	if m.Nodes != nil {
		info := m.Info
		info.ID, info.Capacity, info.Cameras = m.Node, capacity, holding
		if info.Weight <= 0 {
			info.Weight = 1
		}
		if err := m.Nodes.Heartbeat(ctx, info, restart); err != nil {
			return nil, err
		}
		if restart {
			// Registered: claim from the next round on, so that nodes
			// started together see each other's weights first.
			return map[string]int64{}, nil
		}
		// A node that has not heartbeaten for ttl has lost its leases
		// too: its weight no longer counts.
		nodes, err := m.Nodes.Nodes(ctx, ttl)
		if err != nil {
			return nil, err
		}
		total, err := m.Nodes.LeaseCameraCount(ctx)
		if err != nil {
			return nil, err
		}
		var draining bool
		limit, draining = Share(m.Node, nodes, total, capacity)
		if draining {
			if holding > 0 {
				// Stop the pullers first (they close their segments
				// under the lease), release at the next round.
				log.Info("node draining, releasing its cameras", "cameras", holding)
				return map[string]int64{}, nil
			}
			if err := m.Store.ReleaseLeases(ctx, m.Node); err != nil {
				return nil, err
			}
			return map[string]int64{}, nil
		}
	}
	renewed, err := m.Store.RenewLeases(ctx, m.Node, ttl)
	if err != nil {
		return nil, err
	}
	next := make(map[string]int64, len(renewed))
	for _, l := range renewed {
		next[l.CameraID] = l.Epoch
	}
	if free := limit - len(next); free > 0 && claim {
		claimed, err := m.Store.ClaimCameras(ctx, m.Node, free, ttl)
		if err != nil {
			return nil, err
		}
		for _, l := range claimed {
			next[l.CameraID] = l.Epoch
			if l.Previous != "" && l.Previous != m.Node {
				// Another node held the camera (it died, stalled,
				// drained or stopped); this node's own expired lease
				// claimed again is no takeover.
				m.Metrics.tookOver()
			}
		}
	}
	return next, nil
}

// Share is the most cameras node self should hold: its weighted share of
// the total among the live nodes that are not draining,
// ceil(total × weight / Σ weights), raised when the others together lack
// room for the rest, and never above capacity. draining reports that self
// is marked draining (it should hold none).
func Share(self string, nodes []index.Node, total, capacity int) (limit int, draining bool) {
	var weights, mine float64
	othersRoom := 0
	found := false
	for _, n := range nodes {
		if n.ID == self {
			found = true
			if n.Draining {
				return 0, true
			}
			mine = max(n.Weight, 0)
			weights += mine
			continue
		}
		if !n.Live || n.Draining {
			continue
		}
		weights += max(n.Weight, 0)
		othersRoom += n.Capacity
	}
	if !found || weights <= 0 || mine <= 0 {
		return capacity, false
	}
	share := int(math.Ceil(float64(total) * mine / weights))
	share = max(share, total-othersRoom)
	return min(capacity, share), false
}

// Metrics are a Member's counters (xueliang_cluster_*).
type Metrics struct {
	held          prometheus.Gauge
	renewFailures prometheus.Counter
	takeovers     prometheus.Counter
	// FencedWrites counts segment writes the index refused because the
	// camera's lease had moved on (counted by the fenced index adapter).
	FencedWrites prometheus.Counter
	leader       *prometheus.GaugeVec
}

// Leader is the gauge of singleton name: 1 while this node runs it.
func (m *Metrics) Leader(name string) prometheus.Gauge {
	if m == nil {
		return nil
	}
	return m.leader.WithLabelValues(name)
}

// NewMetrics registers the cluster metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		held: prometheus.NewGauge(prometheus.GaugeOpts{Name: "xueliang_cluster_cameras_held",
			Help: "Camera leases this node holds (it records those cameras)."}),
		renewFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "xueliang_cluster_lease_renew_failures_total",
			Help: "Lease rounds (heartbeat, renew, claim) that failed; leases not renewed within lease_ttl are lost."}),
		takeovers: prometheus.NewCounter(prometheus.CounterOpts{Name: "xueliang_cluster_takeovers_total",
			Help: "Cameras this node claimed from another node (that died, stalled, drained or stopped); re-claims of its own expired leases are not counted."}),
		FencedWrites: prometheus.NewCounter(prometheus.CounterOpts{Name: "xueliang_cluster_fenced_writes_total",
			Help: "Segment index writes refused because the camera's lease had passed to another node (stale epoch)."}),
	}
	m.leader = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "xueliang_cluster_singleton_leader",
		Help: "1 while this node holds the singleton's lock and runs it (retention, reconcile)."}, []string{"singleton"})
	reg.MustRegister(m.held, m.renewFailures, m.takeovers, m.FencedWrites, m.leader)
	return m
}

func (m *Metrics) renewFailed() {
	if m != nil {
		m.renewFailures.Inc()
	}
}

func (m *Metrics) tookOver() {
	if m != nil {
		m.takeovers.Inc()
	}
}

func (m *Metrics) setHeld(n int) {
	if m != nil {
		m.held.Set(float64(n))
	}
}
