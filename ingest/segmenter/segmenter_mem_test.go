package segmenter_test

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"testing"

	"xueliang/ingest/segmenter"
)

// BenchmarkCamerasMemory records cameras=N copies of the 1080p 4 Mbit/s
// clip (GOP 2 s) through N Writers, frames interleaved as they would
// arrive, and reports the Go heap per camera: live-B/camera right after a
// GC (what each camera retains), peak-B/camera the largest HeapInuse seen
// between frames (what the GC lets accumulate), rss-B/camera the growth of
// the process's resident set (Linux; the media goes to the spool files as
// it arrives, see flush.go and stage.go). One op = one frame of every camera.
func BenchmarkCamerasMemory(b *testing.B) {
	bc := loadBenchClip(b)
	clipTicks := bc.aus[len(bc.aus)-1].DTS - bc.aus[0].DTS + 3600
	for _, n := range []int{20} {
		b.Run(fmt.Sprintf("cameras=%d", n), func(b *testing.B) {
			ws := make([]*segmenter.Writer, n)
			for i := range ws {
				ws[i] = newBenchWriter(b, bc.clip)
			}
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			base := ms.HeapInuse
			rss0 := rss()
			var peak, peakRSS uint64
			i := 0
			for b.Loop() {
				au := bc.aus[i%len(bc.aus)]
				off := int64(i/len(bc.aus)) * clipTicks
				for _, w := range ws {
					if err := w.WriteVideo(au.PTS+off, au.DTS+off, au.NALUs, au.Key); err != nil {
						b.Fatal(err)
					}
				}
				if i%5 == 0 {
					runtime.ReadMemStats(&ms)
					peak = max(peak, ms.HeapInuse)
					peakRSS = max(peakRSS, rss())
				}
				i++
			}
			runtime.GC()
			runtime.ReadMemStats(&ms)
			b.ReportMetric(float64(ms.HeapInuse-min(base, ms.HeapInuse))/float64(n), "live-B/camera")
			b.ReportMetric(float64(peak-min(base, peak))/float64(n), "peak-B/camera")
			if rss0 > 0 {
				b.ReportMetric(float64(peakRSS-min(rss0, peakRSS))/float64(n), "rss-B/camera")
			}
		})
	}
}

// rss returns the resident set size from /proc/self/statm, 0 elsewhere.
func rss() uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := bytes.Fields(b)
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseUint(string(f[1]), 10, 64)
	return pages * uint64(os.Getpagesize())
}
