package index

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestPostgresNodes: heartbeats upsert the node registry (keeping the
// operator's draining flag), liveness is judged on the database clock, an
// unknown node cannot be drained, and a singleton lock is held by one
// session at a time and passes to another when its holder closes.
func TestPostgresNodes(t *testing.T) {
	ctx := context.Background()
	a, b := twoPostgresHandles(t)
	if err := a.Heartbeat(ctx, Node{ID: "a", AdvertiseURL: "http://127.0.0.1:1", Version: "v1", Cameras: 3, Capacity: 8, Weight: 2}, true); err != nil {
		t.Fatal(err)
	}
	if err := b.Heartbeat(ctx, Node{ID: "b", Capacity: 4, Weight: 1}, true); err != nil {
		t.Fatal(err)
	}
	if err := a.SetNodeDraining(ctx, "a", true); err != nil {
		t.Fatal(err)
	}
	if err := a.SetNodeDraining(ctx, "nope", true); !errors.Is(err, ErrNotFound) {
		t.Errorf("drain unknown node: %v", err)
	}
	if err := a.Heartbeat(ctx, Node{ID: "a", AdvertiseURL: "http://127.0.0.1:1", Version: "v1", Cameras: 5, Capacity: 8, Weight: 2}, false); err != nil {
		t.Fatal(err)
	}
	nodes, err := b.Nodes(ctx, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 2 || nodes[0].ID != "a" || !nodes[0].Draining || nodes[0].Cameras != 5 || nodes[0].Weight != 2 ||
		nodes[0].AdvertiseURL != "http://127.0.0.1:1" || !nodes[0].Live || !nodes[1].Live || nodes[1].Draining {
		t.Fatalf("nodes: %+v", nodes)
	}
	time.Sleep(300 * time.Millisecond)
	if nodes, err = b.Nodes(ctx, 100*time.Millisecond); err != nil || nodes[0].Live || nodes[1].Live {
		t.Fatalf("nodes after 300 ms with a 100 ms window: %+v %v", nodes, err)
	}

	la, err := a.TryLockSingleton(ctx, "retention")
	if err != nil || la == nil {
		t.Fatalf("a lock: %v %v", la, err)
	}
	if lb, err := b.TryLockSingleton(ctx, "retention"); err != nil || lb != nil {
		t.Fatalf("b took a held lock: %v %v", lb, err)
	}
	other, err := b.TryLockSingleton(ctx, "reconcile")
	if err != nil || other == nil {
		t.Fatalf("another name: %v %v", other, err)
	}
	defer other.Close()
	if err := la.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(la.Close(), la.Close()); err != nil {
		t.Fatal(err)
	}
	lb, err := b.TryLockSingleton(ctx, "retention")
	if err != nil || lb == nil {
		t.Fatalf("b after a released: %v %v", lb, err)
	}
	lb.Close()
}
