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
	"time"

	"xueliang/index"
)

// LeaseStore is the part of the index a Member uses.
type LeaseStore interface {
	ClaimCameras(ctx context.Context, node string, max int, ttl time.Duration) ([]index.Lease, error)
	RenewLeases(ctx context.Context, node string, ttl time.Duration) ([]index.Lease, error)
	ReleaseLeases(ctx context.Context, node string) error
}

var _ LeaseStore = (*index.DB)(nil)

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
	for {
		next, err := m.round(ctx, ttl, capacity)
		switch {
		case err != nil && ctx.Err() == nil:
			// Leases not renewed expire; keep the last known set until the
			// store answers again (the fenced writes refuse stale epochs).
			log.Warn("lease round failed", "err", err)
		case err == nil && !maps.Equal(next, held):
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

// round renews the held leases and claims free ones up to capacity.
func (m *Member) round(ctx context.Context, ttl time.Duration, capacity int) (map[string]int64, error) {
	renewed, err := m.Store.RenewLeases(ctx, m.Node, ttl)
	if err != nil {
		return nil, err
	}
	next := make(map[string]int64, len(renewed))
	for _, l := range renewed {
		next[l.CameraID] = l.Epoch
	}
	if free := capacity - len(next); free > 0 {
		claimed, err := m.Store.ClaimCameras(ctx, m.Node, free, ttl)
		if err != nil {
			return nil, err
		}
		for _, l := range claimed {
			next[l.CameraID] = l.Epoch
		}
	}
	return next, nil
}
