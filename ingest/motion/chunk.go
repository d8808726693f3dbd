package motion

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// SummaryCols × SummaryRows is the fixed size of a chunk's pre-filter
// bitmap (SummaryWords 64-bit words): the OR of every grid in the chunk,
// resampled to 32×18. The index tests it against a region mask in SQL, so
// chunks that cannot match are never read.
const (
	SummaryCols  = 32
	SummaryRows  = 18
	SummaryWords = (SummaryCols*SummaryRows + 63) / 64
)

// Summary returns g resampled to SummaryCols×SummaryRows as words (cell i
// in bit i%64 of word i/64). A zero grid gives all zeros.
func Summary(g Grid) [SummaryWords]uint64 {
	var out [SummaryWords]uint64
	if g.cols == 0 {
		return out
	}
	if g.cols != SummaryCols || g.rows != SummaryRows {
		g = g.Resize(SummaryCols, SummaryRows)
	}
	copy(out[:], g.w)
	return out
}

// Chunk is the packed motion of a stretch of time (one index row): every
// non-empty Second in [Start, End).
//
// Data layout, per stored second in time order:
//
//	uvarint offset     whole seconds since Start
//	uvarint frames     analysed frames in the second
//	uvarint motion     frames with motion
//	uvarint peak       Second.Peak × 10⁶, rounded
//	uvarint n, n bytes Grid.MarshalBinary
//
// A still stretch has no stored second and is not written at all.
type Chunk struct {
	Start, End time.Time
	Active     int // stored seconds
	Summary    [SummaryWords]uint64
	Data       []byte
}

// ErrBadChunk is returned (wrapped) for malformed chunk data.
var ErrBadChunk = errors.New("bad motion chunk")

// PackChunk packs the non-empty seconds among secs (time order, each in
// [start, end)) into a Chunk. Empty seconds are skipped.
func PackChunk(start, end time.Time, secs []Second) (Chunk, error) {
	c := Chunk{Start: start, End: end}
	var sum Grid
	for _, s := range secs {
		if s.Empty() {
			continue
		}
		off := s.Start.Sub(start)
		if off < 0 || !s.Start.Before(end) {
			return Chunk{}, fmt.Errorf("second %s outside chunk [%s, %s)", s.Start, start, end)
		}
		g, err := s.Grid.MarshalBinary()
		if err != nil {
			return Chunk{}, err
		}
		c.Data = binary.AppendUvarint(c.Data, uint64(off/time.Second))
		c.Data = binary.AppendUvarint(c.Data, uint64(max(s.Frames, 0)))
		c.Data = binary.AppendUvarint(c.Data, uint64(max(s.MotionFrames, 0)))
		c.Data = binary.AppendUvarint(c.Data, uint64(math.Round(min(max(s.Peak, 0), 1)*1e6)))
		c.Data = binary.AppendUvarint(c.Data, uint64(len(g)))
		c.Data = append(c.Data, g...)
		sum.Or(s.Grid)
		c.Active++
	}
	c.Summary = Summary(sum)
	return c, nil
}

// chunkEntry is one stored second, its grid still encoded.
type chunkEntry struct {
	start                time.Time
	frames, motionFrames int
	peak                 float64
	grid                 []byte
}

// next decodes the entry at the head of p and returns the rest.
func nextEntry(start time.Time, p []byte) (chunkEntry, []byte, error) {
	var v [5]uint64
	for i := range v {
		x, k := binary.Uvarint(p)
		if k <= 0 {
			return chunkEntry{}, nil, fmt.Errorf("%w: truncated entry", ErrBadChunk)
		}
		v[i], p = x, p[k:]
	}
	if v[0] > 1<<40 || v[1] > 1<<30 || v[2] > v[1] || v[3] > 1e6 || v[4] > uint64(len(p)) {
		return chunkEntry{}, nil, fmt.Errorf("%w: bad entry", ErrBadChunk)
	}
	e := chunkEntry{
		start:        start.Add(time.Duration(v[0]) * time.Second),
		frames:       int(v[1]),
		motionFrames: int(v[2]),
		peak:         float64(v[3]) / 1e6,
		grid:         p[:v[4]],
	}
	return e, p[v[4]:], nil
}

// Unpack returns the chunk's stored seconds.
func (c Chunk) Unpack() ([]Second, error) {
	var out []Second
	p := c.Data
	for len(p) > 0 {
		e, rest, err := nextEntry(c.Start, p)
		if err != nil {
			return nil, err
		}
		p = rest
		var g Grid
		if err := g.UnmarshalBinary(e.grid); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadChunk, err)
		}
		out = append(out, Second{Start: e.start, Grid: g, Peak: e.peak, Frames: e.frames, MotionFrames: e.motionFrames})
	}
	return out, nil
}

// RegionSearch finds motion intervals inside a region over a time-ordered
// stream of chunks, without decoding grids that miss the region: the
// encoded grid is tested against the mask first, and only hits are
// decoded (into a reused buffer) and ANDed with the mask. It is not safe
// for concurrent use.
type RegionSearch struct {
	mask    Grid
	masks   map[[2]int]Grid // mask resampled per grid size
	lastKey [2]int          // the last size looked up, and its mask
	lastM   Grid
	b       *IntervalBuilder
	out     []Interval
	scratch Grid
	// Seconds counts seconds examined, Hits seconds that met the region.
	Seconds, Hits int
}

// NewRegionSearch returns a search for mask (any size; resampled to each
// stored grid's size) building intervals with cfg.
func NewRegionSearch(mask Grid, cfg IntervalConfig) *RegionSearch {
	return &RegionSearch{mask: mask, masks: map[[2]int]Grid{}, b: NewIntervalBuilder(cfg)}
}

func (s *RegionSearch) maskFor(cols, rows int) Grid {
	k := [2]int{cols, rows}
	if k == s.lastKey && s.lastM.cols != 0 {
		return s.lastM
	}
	defer func() { s.lastKey, s.lastM = k, s.masks[k] }()
	m, ok := s.masks[k]
	if !ok {
		m = s.mask.Resize(cols, rows)
		s.masks[k] = m
	}
	return m
}

// Add scans one chunk; chunks must come in time order.
func (s *RegionSearch) Add(c Chunk) error {
	p := c.Data
	for len(p) > 0 {
		e, rest, err := nextEntry(c.Start, p)
		if err != nil {
			return err
		}
		p = rest
		s.Seconds++
		if len(e.grid) < 3 || e.grid[1] == 0 || e.grid[2] == 0 {
			continue
		}
		mask := s.maskFor(int(e.grid[1]), int(e.grid[2]))
		hit, err := encodedIntersects(e.grid, mask)
		if err != nil {
			return err
		}
		if !hit {
			continue
		}
		s.Hits++
		if err := decodeInto(&s.scratch, e.grid); err != nil {
			return err
		}
		for i := range s.scratch.w {
			s.scratch.w[i] &= mask.w[i]
		}
		// Push clones the grid when it opens an interval and ORs it
		// otherwise, so the scratch grid can be reused.
		s.out = append(s.out, s.b.Push(Second{Start: e.start, Grid: s.scratch, Peak: e.peak,
			Frames: e.frames, MotionFrames: e.motionFrames})...)
	}
	return nil
}

// Intervals closes the search and returns the intervals found, oldest
// first.
func (s *RegionSearch) Intervals() []Interval {
	out := append(s.out, s.b.Flush()...)
	s.out = nil
	return out
}

// decodeInto decodes the encoded grid b into g, reusing g's cells when
// the size matches (UnmarshalBinary allocates; this is the search's hot
// path).
func decodeInto(g *Grid, b []byte) error {
	cols, rows := int(b[1]), int(b[2])
	if b[0] != kindSparse || g.cols != cols || g.rows != rows {
		if err := g.UnmarshalBinary(b); err != nil {
			return fmt.Errorf("%w: %w", ErrBadChunk, err)
		}
		return nil
	}
	clear(g.w)
	n := cols * rows
	p := b[3:]
	count, k := binary.Uvarint(p)
	if k <= 0 {
		return fmt.Errorf("%w: sparse grid", ErrBadChunk)
	}
	p = p[k:]
	prev := -1
	for j := uint64(0); j < count; j++ {
		d, k := binary.Uvarint(p)
		if k <= 0 || d >= uint64(n) {
			return fmt.Errorf("%w: sparse grid", ErrBadChunk)
		}
		p = p[k:]
		i := prev + 1 + int(d)
		if i >= n {
			return fmt.Errorf("%w: sparse grid", ErrBadChunk)
		}
		g.w[i>>6] |= 1 << (i & 63)
		prev = i
	}
	return nil
}

// encodedIntersects reports whether the encoded grid b has a cell in mask
// (same size as b).
func encodedIntersects(b []byte, mask Grid) (bool, error) {
	n := int(b[1]) * int(b[2])
	p := b[3:]
	switch b[0] {
	case kindEmpty:
		return false, nil
	case kindDense:
		if len(p) != (n+7)/8 {
			return false, fmt.Errorf("%w: dense grid size", ErrBadChunk)
		}
		for i, x := range p {
			if x == 0 {
				continue
			}
			// 8 cells starting at bit 8i of the mask.
			bit := 8 * i
			w := mask.w[bit>>6] >> (bit & 63)
			if uint8(w)&x != 0 {
				return true, nil
			}
		}
		return false, nil
	case kindSparse:
		count, k := binary.Uvarint(p)
		if k <= 0 {
			return false, fmt.Errorf("%w: sparse grid", ErrBadChunk)
		}
		p = p[k:]
		prev := -1
		for j := uint64(0); j < count; j++ {
			d, k := binary.Uvarint(p)
			if k <= 0 || d >= uint64(n) {
				return false, fmt.Errorf("%w: sparse grid", ErrBadChunk)
			}
			p = p[k:]
			i := prev + 1 + int(d)
			if i >= n {
				return false, fmt.Errorf("%w: sparse grid", ErrBadChunk)
			}
			if mask.w[i>>6]&(1<<(i&63)) != 0 {
				return true, nil
			}
			prev = i
		}
		return false, nil
	}
	return false, fmt.Errorf("%w: grid kind %d", ErrBadChunk, b[0])
}
