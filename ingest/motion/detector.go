// Package motion detects motion in downscaled greyscale frames and turns it
// into compact per-second motion grids and motion intervals.
//
// Data flow (one Detector per camera, not safe for concurrent use):
//
//	decoded picture ──Frame.Gray(160, 90)──▶ Detector.Analyze ──Result──▶
//	Aggregator (OR per wall-clock second) ──Second──▶ IntervalBuilder ──▶ Interval
//	                                               └──▶ storage: only non-empty
//	                                                    seconds, Grid.MarshalBinary
//
// Region search never decodes video: it ANDs a mask (MaskFromPolygon)
// against stored per-second grids (Grid.Intersects) and builds intervals
// from the seconds that hit (SearchRegion). See docs/motion.md for the
// algorithm and the reasons behind every default.
package motion

import (
	"fmt"
	"math"
	"time"
)

// Config configures a Detector. Zero fields take the documented default.
type Config struct {
	// Width and Height of the analysis frames (Frame.Gray size).
	// They default to 160×90.
	Width, Height int
	// Cols and Rows of the motion grid; they must divide into the analysis
	// size at least once. They default to 32×18 (5×5 analysis pixels per cell).
	Cols, Rows int
	// FPS is the analysis rate used by Due. It defaults to 5.
	FPS float64
	// BackgroundTau is the time constant of the background model for pixels
	// without motion (slow light changes are absorbed at this speed). It
	// defaults to 4 s.
	BackgroundTau time.Duration
	// ForegroundTau is the time constant at which pixels that keep changing
	// are absorbed into the background (a parked car stops being motion).
	// It defaults to 15 s.
	ForegroundTau time.Duration
	// Sensitivity k: a pixel changed when |difference| > k × its mean
	// absolute deviation (and > MinDiff). It defaults to 4.
	Sensitivity float64
	// MinDiff is the smallest difference in grey levels that counts as a
	// change, whatever the pixel's noise. It defaults to 14.
	MinDiff float64
	// CellFraction is the fraction of a cell's pixels that must change for
	// the cell to be motion. It defaults to 0.2.
	CellFraction float64
	// MinArea is the smallest fraction of the picture (changed pixels in
	// motion cells) that counts as motion; below it the frame has none.
	// It defaults to 0.002 (about 29 of 14,400 analysis pixels).
	MinArea float64
	// SceneChange is the fraction of changed pixels above which the frame
	// is taken as a global change (lights, IR switch, camera moved): the
	// background is re-learnt and no motion is reported. It defaults to 0.6.
	SceneChange float64
	// Warmup is how long after the first frame (and after a scene change)
	// the model learns without reporting motion. It defaults to 1 s.
	Warmup time.Duration
	// StillAbsorb: a pixel that differs from the background but has kept
	// its value (within its threshold) from one analysed frame to the next
	// for this long is taken into the background at once. This removes
	// ghosts — the background learnt while an object stood where it no
	// longer is, e.g. at start-up — and objects that stopped, which would
	// otherwise stay "motion" for about ForegroundTau. Moving objects are
	// not still on any pixel for long. It defaults to 2 s; negative
	// disables it.
	StillAbsorb time.Duration
}

func (c *Config) fill() error {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	deff := func(v *float64, d float64) {
		if *v == 0 {
			*v = d
		}
	}
	defd := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Width, 160)
	def(&c.Height, 90)
	def(&c.Cols, 32)
	def(&c.Rows, 18)
	deff(&c.FPS, 5)
	defd(&c.BackgroundTau, 4*time.Second)
	defd(&c.ForegroundTau, 15*time.Second)
	deff(&c.Sensitivity, 4)
	deff(&c.MinDiff, 14)
	deff(&c.CellFraction, 0.2)
	deff(&c.MinArea, 0.002)
	deff(&c.SceneChange, 0.6)
	defd(&c.Warmup, time.Second)
	defd(&c.StillAbsorb, 2*time.Second)
	var errs []string
	if c.Width < 8 || c.Height < 8 || c.Width > 1920 || c.Height > 1080 {
		errs = append(errs, fmt.Sprintf("analysis size %dx%d out of 8x8..1920x1080", c.Width, c.Height))
	}
	if c.Cols < 1 || c.Rows < 1 || c.Cols > MaxCells || c.Rows > MaxCells || c.Cols > c.Width || c.Rows > c.Height {
		errs = append(errs, fmt.Sprintf("grid %dx%d must be 1..%d and not larger than the analysis size", c.Cols, c.Rows, MaxCells))
	}
	if c.FPS < 0 || c.FPS > 100 || math.IsNaN(c.FPS) {
		errs = append(errs, fmt.Sprintf("fps %v out of 0..100", c.FPS))
	}
	if c.BackgroundTau < 0 || c.ForegroundTau < 0 || c.Warmup < 0 {
		errs = append(errs, "negative time constant")
	}
	for _, f := range []struct {
		name   string
		v      float64
		lo, hi float64
	}{
		{"sensitivity", c.Sensitivity, 0, 100},
		{"min diff", c.MinDiff, 0, 255},
		{"cell fraction", c.CellFraction, 0, 1},
		{"min area", c.MinArea, 0, 1},
		{"scene change", c.SceneChange, 0, 1},
	} {
		if !(f.v > f.lo && f.v <= f.hi) {
			errs = append(errs, fmt.Sprintf("%s %v out of (%v, %v]", f.name, f.v, f.lo, f.hi))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("motion config: %v", errs)
	}
	return nil
}

// Result is the outcome of analysing one frame.
type Result struct {
	Time time.Time
	// Grid has the cells in motion; empty when there is none (always a
	// Cols×Rows grid).
	Grid Grid
	// Area is the fraction of the picture in motion: changed pixels inside
	// motion cells over all pixels (0 when Grid is empty).
	Area float64
	// Warmup is set while the model is still learning (no motion reported).
	Warmup bool
	// SceneChange is set when the whole picture changed at once and the
	// background was re-learnt (no motion reported).
	SceneChange bool
}

// Detector is a per-camera background-subtraction motion detector.
type Detector struct {
	cfg        Config
	n          int
	bg         []float32 // background mean per pixel
	dev        []float32 // mean absolute deviation per pixel
	fg         []uint8   // raw change mask
	clean      []uint8   // after speckle removal
	cellOf     []int32   // pixel -> cell index
	cellPixels []int32
	cellCount  []int32
	hist       [511]int32
	prev       []uint8   // previous analysed frame
	still      []float32 // seconds a changed pixel has kept its value
	last       time.Time
	warmUntil  time.Time
	next       time.Time
	started    bool
}

// NewDetector returns a detector; cfg's zero fields take defaults.
func NewDetector(cfg Config) (*Detector, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	n := cfg.Width * cfg.Height
	d := &Detector{
		cfg: cfg, n: n,
		bg: make([]float32, n), dev: make([]float32, n),
		fg: make([]uint8, n), clean: make([]uint8, n),
		prev: make([]uint8, n), still: make([]float32, n),
		cellOf:     make([]int32, n),
		cellPixels: make([]int32, cfg.Cols*cfg.Rows),
		cellCount:  make([]int32, cfg.Cols*cfg.Rows),
	}
	for y := 0; y < cfg.Height; y++ {
		r := y * cfg.Rows / cfg.Height
		for x := 0; x < cfg.Width; x++ {
			c := r*cfg.Cols + x*cfg.Cols/cfg.Width
			d.cellOf[y*cfg.Width+x] = int32(c)
			d.cellPixels[c]++
		}
	}
	return d, nil
}

// Config returns the effective configuration (defaults filled in).
func (d *Detector) Config() Config { return d.cfg }

// Due reports whether a frame at t should be analysed to keep the
// configured rate, and if so books it: call Gray and Analyze only when it
// returns true. Frames are taken on a fixed 1/FPS cadence; after a gap
// (or a clock step backwards) the cadence restarts at t.
func (d *Detector) Due(t time.Time) bool {
	step := time.Duration(float64(time.Second) / d.cfg.FPS)
	switch {
	case d.next.IsZero() || t.Before(d.next.Add(-2*step)) || t.Sub(d.next) >= step:
		d.next = t.Add(step) // first frame, clock step back, or a gap: restart
	case t.Before(d.next):
		return false
	default:
		d.next = d.next.Add(step) // keep the cadence
	}
	return true
}

// Reset forgets the background model (after a stream restart or a change
// of camera position).
func (d *Detector) Reset() {
	d.started = false
	d.next = time.Time{}
}

// Analyze runs one frame: gray is Width×Height bytes of luma (Frame.Gray).
// It updates the background model and returns the motion found. A frame
// of the wrong size returns an empty, Warmup result and leaves the model
// untouched.
func (d *Detector) Analyze(t time.Time, gray []byte) Result {
	cfg := &d.cfg
	res := Result{Time: t, Grid: NewGrid(cfg.Cols, cfg.Rows)}
	if len(gray) != d.n {
		res.Warmup = true
		return res
	}
	if !d.started {
		d.relearn(t, gray)
		res.Warmup = true
		return res
	}
	dt := t.Sub(d.last)
	if dt <= 0 {
		dt = time.Duration(float64(time.Second) / cfg.FPS)
	}
	if dt > 10*time.Second { // long gap: the old background is stale
		d.relearn(t, gray)
		res.Warmup = true
		return res
	}
	d.last = t
	warm := t.Before(d.warmUntil)

	// 1. Global brightness compensation: the median difference between the
	// frame and the background (robust to objects covering < 50%).
	clear(d.hist[:])
	for i, v := range gray {
		diff := int(v) - int(d.bg[i]+0.5)
		d.hist[diff+255]++
	}
	half, acc, off := int32(d.n/2), int32(0), 0
	for i, c := range d.hist {
		acc += c
		if acc > half {
			off = i - 255
			break
		}
	}
	offset := float32(off)

	// 2. Per-pixel change test with an adaptive threshold.
	k, minDiff := float32(cfg.Sensitivity), float32(cfg.MinDiff)
	changed := 0
	for i, v := range gray {
		diff := float32(v) - d.bg[i] - offset
		if diff < 0 {
			diff = -diff
		}
		th := k * d.dev[i]
		if th < minDiff {
			th = minDiff
		}
		if diff > th {
			d.fg[i] = 1
			changed++
		} else {
			d.fg[i] = 0
		}
	}

	// 3. Update the model (before clean-up, so speckle is learnt as noise).
	aBG := alpha(dt, cfg.BackgroundTau)
	aFG := alpha(dt, cfg.ForegroundTau)
	if warm {
		aFG = aBG
	}
	absorb := float32(cfg.StillAbsorb.Seconds())
	step := float32(dt.Seconds())
	for i, v := range gray {
		diff := float32(v) - d.bg[i] - offset
		ad := diff
		if ad < 0 {
			ad = -ad
		}
		a := aBG
		if d.fg[i] != 0 {
			a = aFG
			if absorb > 0 {
				// A changed pixel that keeps its value is a ghost or a
				// stopped object: absorb it after StillAbsorb.
				th := k * d.dev[i]
				if th < minDiff {
					th = minDiff
				}
				if pd := float32(v) - float32(d.prev[i]); pd <= th && pd >= -th {
					d.still[i] += step
					if d.still[i] >= absorb {
						a, d.still[i] = 1, 0
					}
				} else {
					d.still[i] = 0
				}
			}
		} else {
			d.dev[i] += aBG * (ad - d.dev[i])
			d.still[i] = 0
		}
		d.bg[i] += offset + a*diff
	}
	copy(d.prev, gray)

	if warm {
		res.Warmup = true
		return res
	}
	if float64(changed) > cfg.SceneChange*float64(d.n) {
		d.relearn(t, gray)
		res.SceneChange = true
		return res
	}
	if changed == 0 {
		return res
	}

	// 4. Speckle removal: keep a changed pixel only when at least two of
	// its 8 neighbours changed too (isolated noise and 1-pixel edges of
	// compression artefacts go away, blobs stay).
	W, H := cfg.Width, cfg.Height
	clear(d.cellCount)
	for y := 0; y < H; y++ {
		for x := 0; x < W; x++ {
			i := y*W + x
			if d.fg[i] == 0 {
				continue
			}
			nb := 0
			for yy := max(y-1, 0); yy <= min(y+1, H-1); yy++ {
				row := d.fg[yy*W:]
				for xx := max(x-1, 0); xx <= min(x+1, W-1); xx++ {
					nb += int(row[xx])
				}
			}
			if nb-1 >= 2 {
				d.cellCount[d.cellOf[i]]++
			}
		}
	}

	// 5. Cells and minimum area.
	moving := 0
	for c, cnt := range d.cellCount {
		if cnt > 0 && float64(cnt) >= cfg.CellFraction*float64(d.cellPixels[c]) {
			res.Grid.w[c>>6] |= 1 << (c & 63)
			moving += int(cnt)
		}
	}
	area := float64(moving) / float64(d.n)
	if area < cfg.MinArea {
		clear(res.Grid.w)
		return res
	}
	res.Area = area
	return res
}

func (d *Detector) relearn(t time.Time, gray []byte) {
	for i, v := range gray {
		d.bg[i] = float32(v)
		d.dev[i] = 2
		d.still[i] = 0
	}
	copy(d.prev, gray)
	d.started = true
	d.last = t
	d.warmUntil = t.Add(d.cfg.Warmup)
}

// alpha is the per-step weight of an exponential average with time
// constant tau for a step of dt.
func alpha(dt, tau time.Duration) float32 {
	if tau <= 0 {
		return 1
	}
	return float32(1 - math.Exp(-dt.Seconds()/tau.Seconds()))
}
