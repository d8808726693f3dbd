package index

import (
	"context"
	"testing"
	"time"

	"xueliang/ingest/motion"
	"xueliang/storage/recording"
)

// motionSecond returns a Second at t with the given cells set (32×18).
func motionSecond(t time.Time, cells ...[2]int) motion.Second {
	g := motion.NewGrid(32, 18)
	for _, c := range cells {
		g.Set(c[0], c[1])
	}
	return motion.Second{Start: t, Grid: g, Peak: 0.01, Frames: 5, MotionFrames: 5}
}

func chunkRow(t *testing.T, cam string, start time.Time, secs []motion.Second) recording.MotionChunk {
	t.Helper()
	c, err := motion.PackChunk(start, start.Add(time.Minute), secs)
	if err != nil {
		t.Fatal(err)
	}
	return recording.MotionChunk{CameraID: cam, Start: c.Start, End: c.End, Active: c.Active, Summary: c.Summary, Data: c.Data}
}

func testMotionStoreAndSearch(t *testing.T, be *backend) {
	db := be.open(t)
	ctx := context.Background()
	m0 := at(0).Truncate(time.Minute)
	// minute 0: an object in the top-left, seconds 10..14; minute 2: one in
	// the bottom-right, seconds 5..7; another camera has top-left motion.
	var a, b []motion.Second
	for s := 10; s < 15; s++ {
		a = append(a, motionSecond(m0.Add(time.Duration(s)*time.Second), [2]int{1, 1}, [2]int{2, 1}))
	}
	for s := 5; s < 8; s++ {
		b = append(b, motionSecond(m0.Add(2*time.Minute+time.Duration(s)*time.Second), [2]int{30, 16}))
	}
	chunks := []recording.MotionChunk{
		chunkRow(t, "cam1", m0, a),
		chunkRow(t, "cam1", m0.Add(2*time.Minute), b),
		chunkRow(t, "cam2", m0, a),
	}
	iv := recording.MotionInterval{CameraID: "cam1", Start: m0.Add(9 * time.Second), End: m0.Add(17 * time.Second), Peak: 0.01, Seconds: 5, X0: 1, Y0: 1, X1: 3, Y1: 2}
	if err := db.AddMotion(ctx, chunks, []recording.MotionInterval{iv}); err != nil {
		t.Fatal(err)
	}
	if err := db.AddMotion(ctx, []recording.MotionChunk{{CameraID: "x", Start: m0, End: m0.Add(2 * time.Hour)}}, nil); err == nil {
		t.Error("chunk longer than recording.MaxMotionChunk accepted")
	}

	ivs, err := db.MotionIntervals(ctx, "cam1", m0, m0.Add(time.Hour), 0)
	if err != nil || len(ivs) != 1 || !ivs[0].Start.Equal(iv.Start) || ivs[0].X1 != 3 {
		t.Fatalf("MotionIntervals = %+v, %v", ivs, err)
	}
	if ivs, _ := db.MotionIntervals(ctx, "cam1", m0.Add(20*time.Second), m0.Add(time.Hour), 0); len(ivs) != 0 {
		t.Errorf("interval outside window returned: %+v", ivs)
	}

	act, err := db.MotionActivity(ctx, "cam1", m0, m0.Add(time.Hour))
	if err != nil || len(act) != 2 || act[0].Active != 5 || act[1].Active != 3 || !act[1].Start.Equal(m0.Add(2*time.Minute)) {
		t.Fatalf("MotionActivity = %+v, %v", act, err)
	}

	search := func(cam string, mask motion.Grid) []motion.Interval {
		t.Helper()
		sum := motion.Summary(mask)
		rs := motion.NewRegionSearch(mask, motion.IntervalConfig{})
		read := 0
		err := db.ScanMotion(ctx, cam, m0, m0.Add(time.Hour), &sum, func(c recording.MotionChunk) error {
			read++
			return rs.Add(motion.Chunk{Start: c.Start, End: c.End, Active: c.Active, Summary: c.Summary, Data: c.Data})
		})
		if err != nil {
			t.Fatal(err)
		}
		if read > 1 {
			t.Errorf("summary pre-filter read %d chunks, want at most 1", read)
		}
		return rs.Intervals()
	}
	topLeft := motion.MaskFromPolygon([][2]float64{{0, 0}, {0.2, 0}, {0.2, 0.2}, {0, 0.2}}, 32, 18)
	got := search("cam1", topLeft)
	if len(got) != 1 || !got[0].Start.Equal(m0.Add(10*time.Second)) || !got[0].End.Equal(m0.Add(15*time.Second)) {
		t.Fatalf("top-left search = %+v", got)
	}
	bottomRight := motion.MaskFromPolygon([][2]float64{{0.8, 0.8}, {1, 0.8}, {1, 1}, {0.8, 1}}, 32, 18)
	if got := search("cam1", bottomRight); len(got) != 1 || !got[0].Start.Equal(m0.Add(2*time.Minute+5*time.Second)) {
		t.Fatalf("bottom-right search = %+v", got)
	}
	if got := search("cam2", bottomRight); len(got) != 0 {
		t.Fatalf("cam2 bottom-right search = %+v", got)
	}
	middle := motion.MaskFromPolygon([][2]float64{{0.4, 0.4}, {0.6, 0.4}, {0.6, 0.6}, {0.4, 0.6}}, 32, 18)
	if got := search("cam1", middle); len(got) != 0 {
		t.Fatalf("middle search = %+v", got)
	}
}
