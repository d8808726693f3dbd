package motion

import (
	"math/rand/v2"
	"testing"
	"time"
)

var chunkT0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

// randomSeconds returns n seconds of the minute at chunkT0 with random
// boxes (some dense, some sparse, some empty).
func randomSeconds(rng *rand.Rand, n int) []Second {
	var out []Second
	for s := range n {
		g := NewGrid(32, 18)
		switch rng.IntN(4) {
		case 0: // still
		case 1: // dense
			for i := range 400 {
				g.Set(i%32, i/32)
			}
		default:
			x, y := rng.IntN(30), rng.IntN(16)
			g.Set(x, y)
			g.Set(x+1, y+1)
		}
		frames := 1 + rng.IntN(5)
		out = append(out, Second{Start: chunkT0.Add(time.Duration(s) * time.Second), Grid: g, Peak: rng.Float64() / 10,
			Frames: frames, MotionFrames: rng.IntN(frames + 1)})
	}
	return out
}

func TestChunkRoundTripAndSearch(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		name string
		secs []Second
	}{
		{"empty", nil},
		{"still", []Second{{Start: chunkT0, Grid: NewGrid(32, 18), Frames: 5}}},
		{"random", randomSeconds(rng, 60)},
		{"other grid size", []Second{{Start: chunkT0.Add(3 * time.Second), Grid: MaskFromPolygon([][2]float64{{0, 0}, {0.5, 0}, {0.5, 0.5}}, 16, 9), Frames: 2, MotionFrames: 2}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := PackChunk(chunkT0, chunkT0.Add(time.Minute), tc.secs)
			if err != nil {
				t.Fatal(err)
			}
			var want []Second
			var or Grid
			for _, s := range tc.secs {
				if !s.Empty() {
					want = append(want, s)
					or.Or(s.Grid)
				}
			}
			if c.Active != len(want) || c.Summary != Summary(or) {
				t.Fatalf("active %d summary %v, want %d %v", c.Active, c.Summary, len(want), Summary(or))
			}
			got, err := c.Unpack()
			if err != nil || len(got) != len(want) {
				t.Fatalf("unpack: %d seconds, %v; want %d", len(got), err, len(want))
			}
			for i := range got {
				w := want[i]
				if !got[i].Start.Equal(w.Start) || !got[i].Grid.Equal(w.Grid) || got[i].Frames != w.Frames ||
					got[i].MotionFrames != w.MotionFrames || got[i].Peak-w.Peak > 1e-6 || w.Peak-got[i].Peak > 1e-6 {
					t.Fatalf("second %d: %+v, want %+v", i, got[i], w)
				}
			}
			// RegionSearch over the packed chunk equals SearchRegion over
			// the seconds.
			for _, mask := range []Grid{
				MaskFromPolygon([][2]float64{{0, 0}, {0.3, 0}, {0.3, 0.3}, {0, 0.3}}, 32, 18),
				MaskFromPolygon([][2]float64{{0.5, 0.5}, {1, 0.5}, {1, 1}}, 64, 36),
			} {
				cfg := IntervalConfig{MaxGap: 2 * time.Second, PostPad: time.Second}
				rs := NewRegionSearch(mask, cfg)
				if err := rs.Add(c); err != nil {
					t.Fatal(err)
				}
				a, b := rs.Intervals(), SearchRegion(want, mask, cfg)
				if len(a) != len(b) {
					t.Fatalf("RegionSearch %d intervals, SearchRegion %d", len(a), len(b))
				}
				for i := range a {
					if !a[i].Start.Equal(b[i].Start) || !a[i].End.Equal(b[i].End) || !a[i].Cells.Equal(b[i].Cells) || a[i].Bounds != b[i].Bounds {
						t.Fatalf("interval %d: %+v, want %+v", i, a[i], b[i])
					}
				}
			}
		})
	}
	if _, err := PackChunk(chunkT0, chunkT0.Add(time.Minute), []Second{{Start: chunkT0.Add(time.Minute), Grid: MaskFromPolygon([][2]float64{{0, 0}, {1, 0}, {1, 1}}, 32, 18), MotionFrames: 1, Frames: 1}}); err == nil {
		t.Error("second outside the chunk accepted")
	}
}

// FuzzChunk: unpacking and searching stored bytes never panics.
func FuzzChunk(f *testing.F) {
	c, _ := PackChunk(chunkT0, chunkT0.Add(time.Minute), randomSeconds(rand.New(rand.NewPCG(3, 4)), 20))
	f.Add(c.Data)
	f.Add([]byte{0, 1, 1, 0, 3, 2, 32, 18})
	f.Add([]byte{})
	mask := MaskFromPolygon([][2]float64{{0, 0}, {0.6, 0}, {0.6, 0.6}, {0, 0.6}}, 32, 18)
	f.Fuzz(func(t *testing.T, data []byte) {
		ch := Chunk{Start: chunkT0, End: chunkT0.Add(time.Minute), Data: data}
		_, _ = ch.Unpack()
		rs := NewRegionSearch(mask, DefaultIntervalConfig())
		_ = rs.Add(ch)
		_ = rs.Intervals()
	})
}

// BenchmarkRegionSearch: one day of a busy camera (50 % of seconds with
// motion) in one-minute chunks, searched with a quarter-picture region.
func BenchmarkRegionSearch(b *testing.B) {
	rng := rand.New(rand.NewPCG(5, 6))
	var chunks []Chunk
	for m := range 1440 {
		start := chunkT0.Add(time.Duration(m) * time.Minute)
		var secs []Second
		for s := range 60 {
			if rng.IntN(2) == 0 {
				continue
			}
			g := NewGrid(32, 18)
			x, y := rng.IntN(29), rng.IntN(15)
			for i := range 9 {
				g.Set(x+i%3, y+i/3)
			}
			secs = append(secs, Second{Start: start.Add(time.Duration(s) * time.Second), Grid: g, Frames: 5, MotionFrames: 5})
		}
		c, err := PackChunk(start, start.Add(time.Minute), secs)
		if err != nil {
			b.Fatal(err)
		}
		chunks = append(chunks, c)
	}
	mask := MaskFromPolygon([][2]float64{{0, 0}, {0.5, 0}, {0.5, 0.5}, {0, 0.5}}, 32, 18)
	b.ReportAllocs()
	for b.Loop() {
		rs := NewRegionSearch(mask, DefaultIntervalConfig())
		for _, c := range chunks {
			if err := rs.Add(c); err != nil {
				b.Fatal(err)
			}
		}
		_ = rs.Intervals()
	}
	b.ReportMetric(float64(len(chunks)*30), "seconds/op")
}
