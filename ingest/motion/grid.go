package motion

import (
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"math/bits"
	"strings"
)

// MaxCells bounds Cols and Rows of a Grid (they are stored in one byte).
const MaxCells = 255

// Grid is a coarse motion bitmap: Cols×Rows cells in row-major order,
// cell (0,0) top-left. The zero Grid has no cells (0×0) and is empty.
//
// Grids are values with a shared backing array: Set and Or modify the
// receiver's cells in place, so Clone a Grid before modifying one that
// someone else holds.
type Grid struct {
	cols, rows int
	w          []uint64
}

// NewGrid returns an empty cols×rows grid. It panics unless
// 1 <= cols, rows <= MaxCells.
func NewGrid(cols, rows int) Grid {
	if cols < 1 || rows < 1 || cols > MaxCells || rows > MaxCells {
		panic(fmt.Sprintf("motion: grid size %dx%d out of range", cols, rows))
	}
	return Grid{cols: cols, rows: rows, w: make([]uint64, (cols*rows+63)/64)}
}

// Cols returns the number of columns.
func (g Grid) Cols() int { return g.cols }

// Rows returns the number of rows.
func (g Grid) Rows() int { return g.rows }

// Set marks cell (c, r) as motion; out-of-range cells are ignored.
func (g Grid) Set(c, r int) {
	if c < 0 || r < 0 || c >= g.cols || r >= g.rows {
		return
	}
	i := r*g.cols + c
	g.w[i>>6] |= 1 << (i & 63)
}

// Get reports whether cell (c, r) is motion.
func (g Grid) Get(c, r int) bool {
	if c < 0 || r < 0 || c >= g.cols || r >= g.rows {
		return false
	}
	i := r*g.cols + c
	return g.w[i>>6]&(1<<(i&63)) != 0
}

// Count returns the number of motion cells.
func (g Grid) Count() int {
	n := 0
	for _, w := range g.w {
		n += bits.OnesCount64(w)
	}
	return n
}

// Empty reports whether no cell is set.
func (g Grid) Empty() bool {
	for _, w := range g.w {
		if w != 0 {
			return false
		}
	}
	return true
}

// Clone returns a copy that shares nothing with g.
func (g Grid) Clone() Grid {
	return Grid{cols: g.cols, rows: g.rows, w: append([]uint64(nil), g.w...)}
}

// Equal reports whether g and o have the same size and cells.
func (g Grid) Equal(o Grid) bool {
	if g.cols != o.cols || g.rows != o.rows {
		return false
	}
	for i := range g.w {
		if g.w[i] != o.w[i] {
			return false
		}
	}
	return true
}

// Or sets in g every cell set in o (OR-merge). o is resampled when the
// sizes differ; a zero g takes o's size.
func (g *Grid) Or(o Grid) {
	if o.cols == 0 {
		return
	}
	if g.cols == 0 {
		*g = o.Clone()
		return
	}
	if o.cols != g.cols || o.rows != g.rows {
		o = o.Resize(g.cols, g.rows)
	}
	for i := range g.w {
		g.w[i] |= o.w[i]
	}
}

// And returns the cells set in both g and mask, in g's size (mask is
// resampled when the sizes differ).
func (g Grid) And(mask Grid) Grid {
	out := g.Clone()
	if g.cols == 0 {
		return out
	}
	if mask.cols == 0 {
		clear(out.w)
		return out
	}
	if mask.cols != g.cols || mask.rows != g.rows {
		mask = mask.Resize(g.cols, g.rows)
	}
	for i := range out.w {
		out.w[i] &= mask.w[i]
	}
	return out
}

// Intersects reports whether any motion cell of g lies in mask (the region
// search primitive: AND, then test for non-zero). A mask of another size is
// resampled to g's size by normalised coordinates.
func (g Grid) Intersects(mask Grid) bool {
	if g.cols == 0 || mask.cols == 0 {
		return false
	}
	if mask.cols != g.cols || mask.rows != g.rows {
		mask = mask.Resize(g.cols, g.rows)
	}
	for i, w := range g.w {
		if w&mask.w[i] != 0 {
			return true
		}
	}
	return false
}

// Resize returns g resampled to cols×rows: a cell of the result is set when
// it overlaps (in normalised picture coordinates) any set cell of g.
func (g Grid) Resize(cols, rows int) Grid {
	out := NewGrid(cols, rows)
	if g.cols == 0 {
		return out
	}
	if g.cols == cols && g.rows == rows {
		copy(out.w, g.w)
		return out
	}
	for r := 0; r < g.rows; r++ {
		r0, r1 := spanCells(r, g.rows, rows)
		for c := 0; c < g.cols; c++ {
			if !g.Get(c, r) {
				continue
			}
			c0, c1 := spanCells(c, g.cols, cols)
			for rr := r0; rr < r1; rr++ {
				for cc := c0; cc < c1; cc++ {
					out.Set(cc, rr)
				}
			}
		}
	}
	return out
}

// spanCells returns the cells [lo, hi) of an n-cell axis that overlap cell
// i of an m-cell axis.
func spanCells(i, m, n int) (int, int) {
	lo := i * n / m
	hi := ((i+1)*n + m - 1) / m
	if hi <= lo {
		hi = lo + 1
	}
	return lo, hi
}

// Bounds returns the bounding rectangle of the motion cells in cell
// coordinates (Max exclusive), or the empty rectangle.
func (g Grid) Bounds() image.Rectangle {
	x0, y0, x1, y1 := g.cols, g.rows, -1, -1
	for wi, w := range g.w {
		for w != 0 {
			i := wi*64 + bits.TrailingZeros64(w)
			w &= w - 1
			c, r := i%g.cols, i/g.cols
			x0, y0, x1, y1 = min(x0, c), min(y0, r), max(x1, c), max(y1, r)
		}
	}
	if x1 < 0 {
		return image.Rectangle{}
	}
	return image.Rect(x0, y0, x1+1, y1+1)
}

// String draws the grid, one line per row, '#' for motion.
func (g Grid) String() string {
	var b strings.Builder
	for r := 0; r < g.rows; r++ {
		for c := 0; c < g.cols; c++ {
			if g.Get(c, r) {
				b.WriteByte('#')
			} else {
				b.WriteByte('.')
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// Binary encoding (3-byte header, then a payload chosen by kind):
//
//	kind(1) cols(1) rows(1)
//	kind 0 empty:  no payload
//	kind 1 dense:  ceil(cols*rows/8) bytes, cell i in bit i%8 of byte i/8,
//	               unused bits of the last byte zero
//	kind 2 sparse: uvarint count (>= 1), then count uvarints: the first cell
//	               index, then for each next cell (index - previous - 1)
//
// MarshalBinary picks the shorter of dense and sparse, so a 32×18 grid
// costs at most 3+72 bytes and a small moving object a handful.
const (
	kindEmpty  = 0
	kindDense  = 1
	kindSparse = 2
)

// Errors returned by UnmarshalBinary (wrapped).
var ErrBadGrid = errors.New("bad motion grid encoding")

// MarshalBinary implements encoding.BinaryMarshaler. The zero Grid
// encodes as an empty 0×0 grid.
func (g Grid) MarshalBinary() ([]byte, error) {
	n := g.cols * g.rows
	count := g.Count()
	hdr := []byte{kindEmpty, byte(g.cols), byte(g.rows)}
	if count == 0 {
		return hdr, nil
	}
	dense := (n + 7) / 8
	sparse := make([]byte, 0, 16)
	sparse = binary.AppendUvarint(sparse, uint64(count))
	prev := -1
	for i := 0; i < n && len(sparse) < dense; i++ {
		if g.w[i>>6]&(1<<(i&63)) == 0 {
			continue
		}
		sparse = binary.AppendUvarint(sparse, uint64(i-prev-1))
		prev = i
	}
	if len(sparse) < dense {
		hdr[0] = kindSparse
		return append(hdr, sparse...), nil
	}
	hdr[0] = kindDense
	out := make([]byte, 3+dense)
	copy(out, hdr)
	for i := 0; i < n; i++ {
		if g.w[i>>6]&(1<<(i&63)) != 0 {
			out[3+i/8] |= 1 << (i % 8)
		}
	}
	return out, nil
}

// UnmarshalBinary implements encoding.BinaryUnmarshaler. It rejects every
// malformed input (unknown kind, size 0 with cells, truncated or trailing
// bytes, cells out of range, non-increasing sparse indices, stray padding
// bits) and leaves g unchanged on error.
func (g *Grid) UnmarshalBinary(b []byte) error {
	if len(b) < 3 {
		return fmt.Errorf("%w: %d bytes, want at least 3", ErrBadGrid, len(b))
	}
	kind, cols, rows := b[0], int(b[1]), int(b[2])
	p := b[3:]
	if (cols == 0) != (rows == 0) {
		return fmt.Errorf("%w: size %dx%d", ErrBadGrid, cols, rows)
	}
	if cols == 0 {
		if kind != kindEmpty || len(p) != 0 {
			return fmt.Errorf("%w: 0x0 grid with payload", ErrBadGrid)
		}
		*g = Grid{}
		return nil
	}
	out := NewGrid(cols, rows)
	n := cols * rows
	switch kind {
	case kindEmpty:
		if len(p) != 0 {
			return fmt.Errorf("%w: %d trailing bytes", ErrBadGrid, len(p))
		}
	case kindDense:
		if len(p) != (n+7)/8 {
			return fmt.Errorf("%w: dense payload %d bytes, want %d", ErrBadGrid, len(p), (n+7)/8)
		}
		for i := 0; i < len(p)*8; i++ {
			if p[i/8]&(1<<(i%8)) == 0 {
				continue
			}
			if i >= n {
				return fmt.Errorf("%w: padding bit %d set", ErrBadGrid, i)
			}
			out.w[i>>6] |= 1 << (i & 63)
		}
	case kindSparse:
		count, k := binary.Uvarint(p)
		if k <= 0 || count == 0 || count > uint64(n) {
			return fmt.Errorf("%w: sparse count", ErrBadGrid)
		}
		p = p[k:]
		prev := -1
		for j := uint64(0); j < count; j++ {
			d, k := binary.Uvarint(p)
			if k <= 0 || d >= uint64(n) {
				return fmt.Errorf("%w: sparse cell %d", ErrBadGrid, j)
			}
			p = p[k:]
			i := prev + 1 + int(d)
			if i >= n {
				return fmt.Errorf("%w: sparse cell %d out of range", ErrBadGrid, j)
			}
			out.w[i>>6] |= 1 << (i & 63)
			prev = i
		}
		if len(p) != 0 {
			return fmt.Errorf("%w: %d trailing bytes", ErrBadGrid, len(p))
		}
	default:
		return fmt.Errorf("%w: unknown kind %d", ErrBadGrid, kind)
	}
	*g = out
	return nil
}

// MaskFromPolygon returns a cols×rows mask of the cells that a polygon
// covers. points are vertices in normalised picture coordinates (x right,
// y down, 0..1; parts outside the picture select nothing). A cell is in
// the mask when any of its 4×4 sample points lies inside the polygon
// (even-odd rule), so a region drawn over part of a cell selects it; a
// polygon too small to contain any sample point selects the cells of its
// vertices.
// Fewer than 3 points give an empty mask. It panics like NewGrid on a bad
// size.
func MaskFromPolygon(points [][2]float64, cols, rows int) Grid {
	g := NewGrid(cols, rows)
	if len(points) < 3 {
		return g
	}
	const s = 4
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
		sample:
			for sy := 0; sy < s; sy++ {
				for sx := 0; sx < s; sx++ {
					x := (float64(c) + (float64(sx)+0.5)/s) / float64(cols)
					y := (float64(r) + (float64(sy)+0.5)/s) / float64(rows)
					if inPolygon(points, x, y) {
						g.Set(c, r)
						break sample
					}
				}
			}
		}
	}
	if !g.Empty() {
		return g
	}
	for _, p := range points { // polygon smaller than the sampling pitch
		c, r := int(p[0]*float64(cols)), int(p[1]*float64(rows))
		if p[0] >= 0 && p[0] <= 1 && p[1] >= 0 && p[1] <= 1 {
			g.Set(min(c, cols-1), min(r, rows-1))
		}
	}
	return g
}

func inPolygon(pts [][2]float64, x, y float64) bool {
	in := false
	j := len(pts) - 1
	for i := range pts {
		xi, yi, xj, yj := pts[i][0], pts[i][1], pts[j][0], pts[j][1]
		if (yi > y) != (yj > y) && x < (xj-xi)*(y-yi)/(yj-yi)+xi {
			in = !in
		}
		j = i
	}
	return in
}
