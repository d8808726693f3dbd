package cluster

import (
	"testing"

	"xueliang/index"
)

func TestShare(t *testing.T) {
	n := func(id string, w float64, capacity int, live, draining bool) index.Node {
		return index.Node{ID: id, Weight: w, Capacity: capacity, Live: live, Draining: draining}
	}
	for _, tc := range []struct {
		name         string
		nodes        []index.Node
		total, cap   int
		want         int
		wantDraining bool
	}{
		{"alone", []index.Node{n("a", 1, 64, true, false)}, 12, 64, 12, false},
		{"alone over capacity", []index.Node{n("a", 1, 5, true, false)}, 12, 5, 5, false},
		{"three equal", []index.Node{n("a", 1, 64, true, false), n("b", 1, 64, true, false), n("c", 1, 64, true, false)}, 12, 64, 4, false},
		{"rounds up", []index.Node{n("a", 1, 64, true, false), n("b", 1, 64, true, false), n("c", 1, 64, true, false)}, 13, 64, 5, false},
		{"weighted", []index.Node{n("a", 3, 64, true, false), n("b", 1, 64, true, false)}, 12, 64, 9, false},
		{"dead and draining peers do not count", []index.Node{n("a", 1, 64, true, false), n("b", 1, 64, false, false), n("c", 1, 64, true, true)}, 12, 64, 12, false},
		{"others lack room", []index.Node{n("a", 1, 64, true, false), n("b", 1, 2, true, false)}, 12, 64, 10, false},
		{"draining self", []index.Node{n("a", 1, 64, true, true), n("b", 1, 64, true, false)}, 12, 64, 0, true},
		{"not registered yet", []index.Node{n("b", 1, 64, true, false)}, 12, 64, 64, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, draining := Share("a", tc.nodes, tc.total, tc.cap)
			if got != tc.want || draining != tc.wantDraining {
				t.Errorf("Share = %d, %t; want %d, %t", got, draining, tc.want, tc.wantDraining)
			}
		})
	}
}
