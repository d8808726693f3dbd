package motion

import (
	"testing"
	"time"

	"xueliang/ingest/decode"
	"xueliang/ingest/decode/decodetest"
)

// BenchmarkAnalysis measures the CPU cost of motion analysis on the
// 640×360 H.264 scene (25 fps, GOP 50):
//
//	stage=decode          one access unit through libavcodec (per camera frame)
//	stage=gray            Frame.Gray(160, 90)
//	stage=detect          Detector.Analyze on a 160×90 frame
//	stage=per-analysed-frame  what one analysed frame costs at 5 fps of a
//	                      25 fps stream: 4 Feeds (decode, no copy) + 1 Decode
//	                      + gray + detect + aggregate
func BenchmarkAnalysis(b *testing.B) {
	ts, _ := ensureScene(b, "objects-640")
	clip, err := decodetest.ReadTS(ts)
	if err != nil {
		b.Fatal(err)
	}
	aus := clip.AUs[:500] // 20 s, whole GOPs, with moving objects
	frames := make([]*decode.Frame, 0, len(aus))
	{
		d, err := decode.New(clip.Codec)
		if err != nil {
			b.Fatal(err)
		}
		for _, au := range aus {
			if f, err := d.Decode(au.NALUs); err == nil && f != nil {
				frames = append(frames, f)
			}
		}
		d.Close()
	}
	grays := make([][]byte, len(frames))
	for i, f := range frames {
		grays[i] = f.Gray(160, 90)
	}

	b.Run("stage=decode", func(b *testing.B) {
		d, err := decode.New(clip.Codec)
		if err != nil {
			b.Fatal(err)
		}
		defer d.Close()
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := d.Decode(aus[i%len(aus)].NALUs); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("stage=gray", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			_ = frames[i%len(frames)].Gray(160, 90)
			i++
		}
	})
	b.Run("stage=detect", func(b *testing.B) {
		det, _ := NewDetector(Config{})
		b.ReportAllocs()
		i := 0
		t := base
		for b.Loop() {
			_ = det.Analyze(t, grays[(i*5)%len(grays)])
			t = t.Add(200 * time.Millisecond)
			i++
		}
	})
	b.Run("stage=per-analysed-frame", func(b *testing.B) {
		d, err := decode.New(clip.Codec)
		if err != nil {
			b.Fatal(err)
		}
		defer d.Close()
		det, _ := NewDetector(Config{})
		var agg Aggregator
		b.ReportAllocs()
		i := 0
		t := base
		for b.Loop() {
			for range 4 {
				_, _ = d.Feed(aus[i%len(aus)].NALUs)
				i++
			}
			f, _ := d.Decode(aus[i%len(aus)].NALUs)
			i++
			if f != nil {
				agg.Add(det.Analyze(t, f.Gray(160, 90)))
			}
			t = t.Add(200 * time.Millisecond)
		}
	})
}
