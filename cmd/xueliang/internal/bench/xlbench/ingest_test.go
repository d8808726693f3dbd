package main

import "testing"

func TestGrowing(t *testing.T) {
	for _, tc := range []struct {
		name    string
		samples []float64
		cams    int
		want    bool
	}{
		{"steady few", []float64{0, 3, 4, 2, 5, 3, 4, 3, 2, 4, 3, 4}, 200, false},
		{"ramp to steady", []float64{0, 0, 1, 3, 4, 4, 3, 5, 4, 4, 3, 4}, 200, false},
		{"falling behind", []float64{0, 8, 15, 22, 30, 37, 45, 52, 60, 66, 72, 80}, 200, true},
		{"small site, slow growth", []float64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, 20, true},
		{"too few samples", []float64{0, 100}, 10, false},
	} {
		if got := growth(tc.samples) > segmentsTolerance(tc.cams); got != tc.want {
			t.Errorf("%s: growing = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestLossFree(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    ingestResult
		want bool
	}{
		{"in step", ingestResult{Cameras: 200, FramesDeficit: 150}, true},
		{"window edges either way", ingestResult{Cameras: 200, FramesDeficit: -2600}, true},
		{"0.22 s behind at the end", ingestResult{Cameras: 200, FramesDeficit: 1108}, true},
		{"frames missing", ingestResult{Cameras: 200, FramesDeficit: 2800}, false},
		// 250 cameras × 90 s, 1 % more frames than the window allows: the
		// server was still catching up on frames received late.
		{"catch-up surplus", ingestResult{Cameras: 250, FramesDeficit: -5625}, false},
		{"recorder drops", ingestResult{Cameras: 200, DroppedFrames: 3}, false},
		{"rtp lost", ingestResult{Cameras: 200, RTPLost: 1}, false},
		{"reconnect", ingestResult{Cameras: 200, Reconnects: 1}, false},
	} {
		if got := tc.r.lossFree(); got != tc.want {
			t.Errorf("%s: lossFree = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestKeepsUp(t *testing.T) {
	steady := []float64{2, 9, 4, 12, 3, 8, 11, 2, 6, 10, 3, 9, 5, 11, 4, 8, 2, 10}
	behind := []float64{3, 5, 8, 10, 13, 15, 18, 21, 23, 26, 29, 31, 34, 37, 39, 42, 45, 47} // +2.6 s per 5 s
	for _, tc := range []struct {
		name    string
		lag     []float64
		backlog bool
		want    bool
	}{
		{"steady lag", steady, false, true},
		{"lag growing", behind, false, false},
		{"backlog growing", steady, true, false},
	} {
		g := growth(tc.lag)
		r := ingestResult{BacklogGrowing: tc.backlog, LagGrowing: g > lagTolerance.Seconds()}
		if got := r.keepsUp(); got != tc.want {
			t.Errorf("%s: keepsUp = %v (lag growth %.1f s), want %v", tc.name, got, g, tc.want)
		}
	}
}
