package replay

import "testing"

// TestEndCut: GOPs with two B-frames, one frame = 10 ticks, in the decode
// orders of x264 (I0 P3 B1 B2 P6 B4 B5) and of x265 with b-pyramid (I0 P3
// B2 B1 P6 B5 B4; camsim's H.265 clips). For every end point the output
// must stop without a hole; the fragmented form (nearest) must show the
// frame at the end ±1, the progressive form (whose edit list hides the
// rest) must hold the frame at the end and at most two more.
func TestEndCut(t *testing.T) {
	for _, c := range []struct {
		name  string
		order []int64
	}{
		{"x264", []int64{0, 3, 1, 2, 6, 4, 5, 9, 7, 8}},
		{"x265", []int64{0, 3, 2, 1, 6, 5, 4, 9, 8, 7}},
	} {
		var v []rawSample
		for i, p := range c.order {
			dts := int64(i) * 10
			v = append(v, rawSample{dts: dts, cts: int32(p*10 + 20 - dts), dur: 10})
		}
		// presOff maps the +20 shift back so presentation = frame*10.
		const presOff = -20
		for endFrame := int64(1); endFrame <= int64(len(v)); endFrame++ {
			endPres := endFrame*10 - 5 // inside frame endFrame-1, the frame at the end
			for _, nearest := range []bool{true, false} {
				got := endCut(v, endPres, presOff, nearest)
				if !holeFree(v, got) {
					t.Errorf("%s nearest=%v, end in frame %d: cut %d leaves a hole", c.name, nearest, endFrame-1, got)
				}
				last := (maxPts(v[:got]) + presOff) / 10
				d := last - (endFrame - 1)
				if nearest && (d < -1 || d > 1) {
					t.Errorf("%s fragmented, end in frame %d: last shown frame %d, want %d ±1", c.name, endFrame-1, last, endFrame-1)
				}
				if !nearest && (d < 0 || d > 2) {
					t.Errorf("%s progressive, end in frame %d: last frame written %d, want %d…%d", c.name, endFrame-1, last, endFrame-1, endFrame+1)
				}
			}
		}
	}
}
