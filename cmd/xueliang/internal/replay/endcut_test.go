package replay

import "testing"

// TestEndCut: a GOP with two B-frames, decode order I0 P3 B1 B2 P6 B4 B5
// (presentation frame numbers), one frame = 10 ticks. For every end point
// the output must stop without a hole and show the frame at the end ±1.
func TestEndCut(t *testing.T) {
	order := []int64{0, 3, 1, 2, 6, 4, 5}
	var v []rawSample
	for i, p := range order {
		dts := int64(i) * 10
		v = append(v, rawSample{dts: dts, cts: int32(p*10 + 20 - dts), dur: 10})
	}
	// presOff maps the +20 shift back so presentation = frame*10.
	const presOff = -20
	for endFrame := int64(1); endFrame <= 7; endFrame++ {
		endPres := endFrame * 10 // the frame at the end is endFrame-1
		n := len(v)
		for n > 0 && v[n-1].pts()+presOff >= endPres {
			n--
		}
		got := endCut(v, n, endPres, presOff)
		if !holeFree(v, got) {
			t.Errorf("end at frame %d: cut %d leaves a hole", endFrame, got)
		}
		last := (maxPts(v[:got]) + presOff) / 10
		if d := last - (endFrame - 1); d < -1 || d > 1 {
			t.Errorf("end at frame %d: last shown frame %d, want %d ±1", endFrame, last, endFrame-1)
		}
	}
}
