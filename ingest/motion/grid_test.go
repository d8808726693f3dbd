package motion

import (
	"errors"
	"image"
	"testing"
)

func gridOf(cols, rows int, cells ...[2]int) Grid {
	g := NewGrid(cols, rows)
	for _, c := range cells {
		g.Set(c[0], c[1])
	}
	return g
}

func fullGrid(cols, rows int) Grid {
	g := NewGrid(cols, rows)
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			g.Set(c, r)
		}
	}
	return g
}

// gridCases feed the round-trip test and the fuzz seeds.
var gridCases = []struct {
	name string
	g    Grid
	size int // encoded bytes
}{
	{"zero", Grid{}, 3},
	{"empty 32x18", NewGrid(32, 18), 3},
	{"first row cell", gridOf(32, 18, [2]int{5, 0}), 3 + 1 + 1},
	{"one cell", gridOf(32, 18, [2]int{5, 7}), 3 + 1 + 2},
	{"last cell", gridOf(32, 18, [2]int{31, 17}), 3 + 1 + 2},
	{"small object", gridOf(32, 18, [2]int{10, 4}, [2]int{11, 4}, [2]int{10, 5}, [2]int{11, 5}), 3 + 1 + 5},
	{"full 32x18", fullGrid(32, 18), 3 + 72},
	{"full 1x1", fullGrid(1, 1), 3 + 1},
	{"44x32 corner", gridOf(44, 32, [2]int{0, 0}, [2]int{43, 31}), 3 + 1 + 1 + 2},
	{"255x255 full", fullGrid(255, 255), 3 + (255*255+7)/8},
}

func TestGridMarshalRoundTrip(t *testing.T) {
	for _, tc := range gridCases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.g.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if len(b) != tc.size {
				t.Errorf("encoded %d bytes, want %d", len(b), tc.size)
			}
			var g Grid
			if err := g.UnmarshalBinary(b); err != nil {
				t.Fatal(err)
			}
			if !g.Equal(tc.g) || g.Count() != tc.g.Count() {
				t.Fatalf("round trip:\n%v\nwant\n%v", g, tc.g)
			}
		})
	}
}

func TestGridMarshalNeverLargerThanDense(t *testing.T) {
	// Checkerboards and stripes: sparse would be longer, dense must win.
	g := NewGrid(32, 18)
	for i := 0; i < 32*18; i += 2 {
		g.Set(i%32, i/32)
	}
	b, _ := g.MarshalBinary()
	if len(b) != 75 || b[0] != kindDense {
		t.Fatalf("checkerboard: %d bytes kind %d", len(b), b[0])
	}
}

func TestGridUnmarshalRejects(t *testing.T) {
	cases := []struct {
		name string
		b    []byte
	}{
		{"short", []byte{0, 32}},
		{"half size", []byte{0, 0, 18}},
		{"0x0 with payload", []byte{0, 0, 0, 1}},
		{"0x0 dense", []byte{1, 0, 0}},
		{"empty with payload", []byte{0, 32, 18, 0}},
		{"unknown kind", []byte{3, 2, 2, 0}},
		{"dense short", []byte{1, 32, 18, 0xff}},
		{"dense padding bit", []byte{1, 3, 3, 0, 0x02}},
		{"sparse zero count", []byte{2, 4, 4, 0}},
		{"sparse count too big", []byte{2, 2, 2, 5, 0, 0, 0, 0, 0}},
		{"sparse truncated", []byte{2, 4, 4, 2, 1}},
		{"sparse out of range", []byte{2, 4, 4, 1, 16}},
		{"sparse delta past end", []byte{2, 4, 4, 2, 10, 5}},
		{"sparse trailing", []byte{2, 4, 4, 1, 3, 0}},
		{"sparse overlong varint", []byte{2, 4, 4, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := gridOf(2, 2, [2]int{1, 1})
			err := g.UnmarshalBinary(tc.b)
			if !errors.Is(err, ErrBadGrid) {
				t.Fatalf("err = %v, want ErrBadGrid", err)
			}
			if !g.Equal(gridOf(2, 2, [2]int{1, 1})) {
				t.Fatal("receiver modified on error")
			}
		})
	}
}

func FuzzGridUnmarshal(f *testing.F) {
	for _, tc := range gridCases {
		b, _ := tc.g.MarshalBinary()
		f.Add(b)
	}
	mask := MaskFromPolygon([][2]float64{{0, 0}, {1, 0}, {0, 1}}, 32, 18)
	f.Fuzz(func(t *testing.T, b []byte) {
		var g Grid
		if err := g.UnmarshalBinary(b); err != nil {
			return
		}
		re, err := g.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if len(re) > len(b) {
			t.Fatalf("canonical encoding %d bytes longer than accepted input %d", len(re), len(b))
		}
		var g2 Grid
		if err := g2.UnmarshalBinary(re); err != nil || !g2.Equal(g) {
			t.Fatalf("re-encoding does not round-trip: %v", err)
		}
		_ = g.Bounds()
		_ = g.Intersects(mask)
	})
}

func TestGridOps(t *testing.T) {
	a := gridOf(4, 2, [2]int{0, 0}, [2]int{3, 1})
	b := gridOf(4, 2, [2]int{3, 1}, [2]int{1, 0})
	c := gridOf(4, 2, [2]int{2, 0})
	if !a.Intersects(b) || a.Intersects(c) || b.Intersects(c) {
		t.Fatal("Intersects")
	}
	if got := a.And(b); !got.Equal(gridOf(4, 2, [2]int{3, 1})) {
		t.Fatalf("And:\n%v", got)
	}
	u := a.Clone()
	u.Or(c)
	if u.Count() != 3 || a.Count() != 2 {
		t.Fatalf("Or: %d, original %d", u.Count(), a.Count())
	}
	if got := a.Bounds(); got != image.Rect(0, 0, 4, 2) {
		t.Fatalf("Bounds %v", got)
	}
	if got := c.Bounds(); got != image.Rect(2, 0, 3, 1) {
		t.Fatalf("Bounds %v", got)
	}
	if (Grid{}).Intersects(a) || a.Intersects(Grid{}) || !NewGrid(3, 3).Empty() {
		t.Fatal("zero grid")
	}
	// Masks of another size are resampled by normalised position.
	fine := gridOf(32, 18, [2]int{31, 17})
	coarse := gridOf(8, 6, [2]int{7, 5})
	if !fine.Intersects(coarse) || !coarse.Intersects(fine) || fine.Intersects(gridOf(8, 6, [2]int{0, 0})) {
		t.Fatal("resampled Intersects")
	}
	if got := gridOf(2, 2, [2]int{1, 0}).Resize(4, 4); got.Count() != 4 || !got.Get(2, 0) || !got.Get(3, 1) {
		t.Fatalf("Resize:\n%v", got)
	}
}

func TestMaskFromPolygon(t *testing.T) {
	cases := []struct {
		name  string
		pts   [][2]float64
		count int
		in    [][2]int
		out   [][2]int
	}{
		{"whole picture", [][2]float64{{0, 0}, {1, 0}, {1, 1}, {0, 1}}, 32 * 18, [][2]int{{0, 0}, {31, 17}}, nil},
		{"left half", [][2]float64{{0, 0}, {0.5, 0}, {0.5, 1}, {0, 1}}, 16 * 18, [][2]int{{15, 9}}, [][2]int{{16, 9}}},
		{"triangle", [][2]float64{{0, 0}, {1, 0}, {0, 1}}, -1, [][2]int{{0, 0}, {30, 0}, {0, 16}}, [][2]int{{31, 17}, {20, 10}}},
		{"tiny inside one cell", [][2]float64{{0.501, 0.501}, {0.502, 0.501}, {0.502, 0.502}}, 1, [][2]int{{16, 9}}, nil},
		{"two points", [][2]float64{{0, 0}, {1, 1}}, 0, nil, nil},
		{"concave U", [][2]float64{{0, 0}, {0.25, 0}, {0.25, 0.8}, {0.75, 0.8}, {0.75, 0}, {1, 0}, {1, 1}, {0, 1}}, -1,
			[][2]int{{2, 2}, {29, 2}, {16, 17}}, [][2]int{{16, 2}, {16, 10}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := MaskFromPolygon(tc.pts, 32, 18)
			if tc.count >= 0 && m.Count() != tc.count {
				t.Errorf("count %d, want %d\n%v", m.Count(), tc.count, m)
			}
			for _, c := range tc.in {
				if !m.Get(c[0], c[1]) {
					t.Errorf("cell %v not in mask\n%v", c, m)
				}
			}
			for _, c := range tc.out {
				if m.Get(c[0], c[1]) {
					t.Errorf("cell %v in mask\n%v", c, m)
				}
			}
		})
	}
}
