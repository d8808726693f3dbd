package motion

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestAggregator(t *testing.T) {
	t0 := time.Unix(100, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	var a Aggregator
	if _, ok := a.Flush(); ok {
		t.Fatal("Flush of an empty aggregator")
	}
	var done []Second
	add := func(ms int, g Grid, area float64) {
		if s, ok := a.Add(Result{Time: at(ms), Grid: g, Area: area}); ok {
			done = append(done, s)
		}
	}
	add(0, NewGrid(4, 2), 0)
	add(200, gridOf(4, 2, [2]int{0, 0}), 0.1)
	add(400, gridOf(4, 2, [2]int{1, 1}), 0.3)
	add(150, gridOf(4, 2, [2]int{2, 1}), 0.05) // clock step back: merged
	add(1000, NewGrid(4, 2), 0)                // closes second 100
	add(1800, NewGrid(4, 2), 0)
	add(3100, gridOf(4, 2, [2]int{3, 0}), 0.2) // closes second 101, skips 102
	if s, ok := a.Flush(); ok {
		done = append(done, s)
	}
	if len(done) != 3 {
		t.Fatalf("%d seconds, want 3", len(done))
	}
	s := done[0]
	if !s.Start.Equal(t0) || s.Frames != 4 || s.MotionFrames != 3 || s.Peak != 0.3 ||
		!s.Grid.Equal(gridOf(4, 2, [2]int{0, 0}, [2]int{1, 1}, [2]int{2, 1})) || s.Empty() {
		t.Fatalf("second 0: %+v\n%v", s, s.Grid)
	}
	if s := done[1]; !s.Start.Equal(at(1000)) || s.Frames != 2 || !s.Empty() {
		t.Fatalf("second 1: %+v", s)
	}
	if s := done[2]; !s.Start.Equal(at(3000)) || s.MotionFrames != 1 || s.Grid.Count() != 1 {
		t.Fatalf("second 3: %+v", s)
	}
}

// seconds builds per-second activity from a pattern: '.' still, a digit
// the number of motion frames (cell (digit,0) set), ' ' no data.
func seconds(pattern string) []Second {
	var out []Second
	for i, ch := range pattern {
		if ch == ' ' {
			continue
		}
		s := Second{Start: base.Add(time.Duration(i) * time.Second), Grid: NewGrid(32, 18), Frames: 5}
		if ch != '.' {
			s.MotionFrames = int(ch - '0')
			s.Grid.Set(int(ch-'0'), 0)
			s.Peak = float64(ch-'0') / 100
		}
		out = append(out, s)
	}
	return out
}

func TestIntervals(t *testing.T) {
	noPad := IntervalConfig{MaxGap: 2 * time.Second, MinFrames: 2}
	cases := []struct {
		name    string
		pattern string
		cfg     IntervalConfig
		want    string // "start-end" seconds, space separated
	}{
		{"none", ".........", noPad, ""},
		{"one", "..555....", noPad, "2-5"},
		{"gap of 2 merged", "..5..5...", noPad, "2-6"},
		{"gap of 3 split", "..5...5...", noPad, "2-3 6-7"},
		{"single frame dropped", "..1......5", noPad, "9-10"},
		{"two single frames merged pass", "..1.1....", noPad, "2-5"},
		{"min duration", "..5....55.", IntervalConfig{MaxGap: time.Second, MinDuration: 2 * time.Second}, "7-9"},
		{"padding", "....5.......", IntervalConfig{PrePad: time.Second, PostPad: 2 * time.Second, MinFrames: 1}, "3-7"},
		{"padding merges", "..5....5....", IntervalConfig{PrePad: 2 * time.Second, PostPad: 2 * time.Second, MinFrames: 1}, "0-10"},
		{"open at end", "......55", noPad, "6-8"},
		{"data gap splits", "..5      5..", noPad, "2-3 9-10"},
		{"zero config", "..5.5..", IntervalConfig{}, "2-3 4-5"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, iv := range Intervals(seconds(tc.pattern), tc.cfg) {
				got = append(got, spanString(iv))
			}
			if g := strings.Join(got, " "); g != tc.want {
				t.Fatalf("%q: got %q, want %q", tc.pattern, g, tc.want)
			}
		})
	}
}

func spanString(iv Interval) string {
	return fmt.Sprintf("%g-%g", iv.Start.Sub(base).Seconds(), iv.End.Sub(base).Seconds())
}

func TestIntervalFields(t *testing.T) {
	ivs := Intervals(seconds("..253..."), IntervalConfig{MaxGap: time.Second})
	if len(ivs) != 1 {
		t.Fatalf("%d intervals", len(ivs))
	}
	iv := ivs[0]
	if iv.Peak != 0.05 || iv.Seconds != 3 || iv.MotionFrames != 10 || iv.Cells.Count() != 3 || iv.Bounds.Min.X != 2 || iv.Bounds.Max.X != 6 {
		t.Fatalf("%+v", iv)
	}
}

func TestIntervalBuilderAdvance(t *testing.T) {
	b := NewIntervalBuilder(IntervalConfig{MaxGap: 2 * time.Second, MinFrames: 1})
	for _, s := range seconds("..55") {
		if out := b.Push(s); len(out) != 0 {
			t.Fatalf("closed early: %v", out)
		}
	}
	if out := b.Advance(base.Add(6 * time.Second)); len(out) != 0 {
		t.Fatalf("closed within the gap: %v", out)
	}
	out := b.Advance(base.Add(6*time.Second + time.Millisecond))
	if len(out) != 1 || spanString(out[0]) != "2-4" {
		t.Fatalf("Advance: %v", out)
	}
	if out := b.Flush(); len(out) != 0 {
		t.Fatalf("Flush after close: %v", out)
	}
}
