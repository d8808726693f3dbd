package main

import "testing"

func TestGrowing(t *testing.T) {
	for _, tc := range []struct {
		name    string
		samples []float64
		cams    float64
		want    bool
	}{
		{"steady few", []float64{0, 3, 4, 2, 5, 3, 4, 3, 2, 4, 3, 4}, 200, false},
		{"ramp to steady", []float64{0, 0, 1, 3, 4, 4, 3, 5, 4, 4, 3, 4}, 200, false},
		{"falling behind", []float64{0, 8, 15, 22, 30, 37, 45, 52, 60, 66, 72, 80}, 200, true},
		{"small site, slow growth", []float64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, 20, true},
		{"too few samples", []float64{0, 100}, 10, false},
	} {
		if got := growing(tc.samples, tc.cams); got != tc.want {
			t.Errorf("%s: growing = %v, want %v", tc.name, got, tc.want)
		}
	}
}
