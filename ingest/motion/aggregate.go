package motion

import (
	"image"
	"time"
)

// Second is the motion of one wall-clock second: the OR of the grids of
// every frame analysed in it. Only seconds with motion need storing
// (Empty reports the others); a still second costs nothing.
type Second struct {
	Start        time.Time // truncated to the second
	Grid         Grid      // OR-merged motion cells
	Peak         float64   // largest Result.Area in the second
	Frames       int       // frames analysed
	MotionFrames int       // frames with motion
}

// Empty reports whether the second has no motion.
func (s Second) Empty() bool { return s.MotionFrames == 0 || s.Grid.Empty() }

// Aggregator OR-merges per-frame results into per-second grids. The zero
// value is ready to use; it is not safe for concurrent use.
type Aggregator struct {
	cur  Second
	open bool
}

// Add merges r into its second. When r belongs to a later second than the
// one being built, the finished second is returned with ok = true. Results
// that go back in time (clock steps) are merged into the current second.
// Warm-up and scene-change results count as analysed frames without motion.
func (a *Aggregator) Add(r Result) (done Second, ok bool) {
	sec := r.Time.Truncate(time.Second)
	if a.open && sec.After(a.cur.Start) {
		done, ok = a.cur, true
		a.open = false
	}
	if !a.open {
		a.cur = Second{Start: sec}
		if r.Grid.Cols() > 0 {
			a.cur.Grid = NewGrid(r.Grid.Cols(), r.Grid.Rows())
		}
		a.open = true
	}
	a.cur.Frames++
	if !r.Grid.Empty() {
		a.cur.MotionFrames++
		a.cur.Grid.Or(r.Grid)
		a.cur.Peak = max(a.cur.Peak, r.Area)
	}
	return done, ok
}

// Flush returns the second being built, if any, and starts afresh.
func (a *Aggregator) Flush() (Second, bool) {
	if !a.open {
		return Second{}, false
	}
	a.open = false
	return a.cur, true
}

// Interval is a stretch of motion.
type Interval struct {
	Start, End   time.Time       // padded; End exclusive
	Peak         float64         // largest fraction of the picture in motion
	Cells        Grid            // every cell that had motion
	Bounds       image.Rectangle // bounding box of Cells, in cells (Max exclusive)
	Seconds      int             // seconds with motion
	MotionFrames int             // analysed frames with motion
}

// IntervalConfig configures an IntervalBuilder. The zero value is literal
// (no padding, no merging across gaps, no minimum); DefaultIntervalConfig
// holds the recommended values.
type IntervalConfig struct {
	// PrePad and PostPad extend every interval before its first and after
	// its last second with motion (padded intervals that would overlap are
	// merged).
	PrePad, PostPad time.Duration
	// MaxGap is the longest run of still time inside one interval.
	MaxGap time.Duration
	// MinDuration is the shortest unpadded interval kept (first motion
	// second to the end of the last).
	MinDuration time.Duration
	// MinFrames is the fewest analysed frames with motion an interval
	// needs: one frame alone is more often a glitch than an event.
	MinFrames int
}

// DefaultIntervalConfig returns pre 1 s, post 2 s, gap 2 s, at least 2
// motion frames and no minimum duration.
func DefaultIntervalConfig() IntervalConfig {
	return IntervalConfig{PrePad: time.Second, PostPad: 2 * time.Second, MaxGap: 2 * time.Second, MinFrames: 2}
}

// IntervalBuilder turns a time-ordered sequence of Seconds into motion
// intervals. It is not safe for concurrent use.
type IntervalBuilder struct {
	cfg   IntervalConfig
	cur   Interval // unpadded while open
	last  time.Time
	open  bool
	ready []Interval
}

// NewIntervalBuilder returns a builder for cfg.
func NewIntervalBuilder(cfg IntervalConfig) *IntervalBuilder {
	return &IntervalBuilder{cfg: cfg}
}

// gap is the still time after which an open interval is closed.
func (b *IntervalBuilder) gap() time.Duration {
	return max(b.cfg.MaxGap, b.cfg.PrePad+b.cfg.PostPad)
}

// Push adds one second (empty or not) and returns the intervals it closed.
// Seconds must come in time order; one earlier than the last motion second
// is merged as if it were at that time.
func (b *IntervalBuilder) Push(s Second) []Interval {
	out := b.Advance(s.Start)
	if s.Empty() {
		return out
	}
	end := s.Start.Add(time.Second)
	if !b.open {
		b.cur = Interval{Start: s.Start, End: end, Cells: s.Grid.Clone()}
		b.open = true
	} else {
		if end.After(b.cur.End) {
			b.cur.End = end
		}
		b.cur.Cells.Or(s.Grid)
	}
	b.cur.Peak = max(b.cur.Peak, s.Peak)
	b.cur.Seconds++
	b.cur.MotionFrames += s.MotionFrames
	return out
}

// Advance tells the builder that time has reached now (no motion until
// then) and returns the intervals that are therefore complete. Call it
// periodically when frames stop arriving.
func (b *IntervalBuilder) Advance(now time.Time) []Interval {
	if b.open && now.Sub(b.cur.End) > b.gap() {
		b.close()
	}
	out := b.ready
	b.ready = nil
	return out
}

// Flush closes the open interval, if any, and returns what is complete.
func (b *IntervalBuilder) Flush() []Interval {
	if b.open {
		b.close()
	}
	out := b.ready
	b.ready = nil
	return out
}

func (b *IntervalBuilder) close() {
	b.open = false
	iv := b.cur
	if iv.MotionFrames < b.cfg.MinFrames || iv.End.Sub(iv.Start) < b.cfg.MinDuration {
		return
	}
	iv.Start = iv.Start.Add(-b.cfg.PrePad)
	iv.End = iv.End.Add(b.cfg.PostPad)
	iv.Bounds = iv.Cells.Bounds()
	b.ready = append(b.ready, iv)
}

// Intervals builds the intervals of a time-ordered slice of seconds.
func Intervals(seconds []Second, cfg IntervalConfig) []Interval {
	b := NewIntervalBuilder(cfg)
	var out []Interval
	for _, s := range seconds {
		out = append(out, b.Push(s)...)
	}
	return append(out, b.Flush()...)
}

// SearchRegion is the region search: it keeps the part of every stored
// second that lies in mask (Grid.And; seconds that miss it become still)
// and builds intervals from them. Interval.Cells are limited to the mask.
// It never needs the video, only the per-second grids.
func SearchRegion(seconds []Second, mask Grid, cfg IntervalConfig) []Interval {
	hit := make([]Second, 0, len(seconds))
	for _, s := range seconds {
		if !s.Grid.Intersects(mask) {
			continue
		}
		s.Grid = s.Grid.And(mask)
		hit = append(hit, s)
	}
	return Intervals(hit, cfg)
}
