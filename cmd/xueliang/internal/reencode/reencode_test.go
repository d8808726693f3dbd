package reencode

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"syscall"
	"testing"

	"xueliang/ingest/segmenter/segmentertest"
	"xueliang/storage/recording"
)

// testGOP encodes a 2 s 25 fps 320x240 clip (GOP 25, closed, bframes
// B-frames) with ffmpeg into MPEG-TS and returns its first GOP (decode
// order, AVCC, pts at 90 kHz from 0) and the gray luma planes of every
// frame of the clip in presentation order.
func testGOP(t *testing.T, codec recording.VideoCodec, bframes int) (gop []Sample, src [][]byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "clip.ts")
	all := encodeClip(t, path, codec, bframes, "320x240", 25, 2)
	if len(all) != 50 {
		t.Fatalf("%d access units in the clip, want 50", len(all))
	}
	src = gray(t, "mpegts", path)
	if len(src) != 50 {
		t.Fatalf("%d decoded frames in the clip, want 50", len(src))
	}
	return all[:25], src
}

// encodeClip encodes seconds of testsrc2 at size, 25 fps, with closed
// GOPs of gop frames and bframes B-frames, into the MPEG-TS path, and
// returns its access units (decode order, AVCC, pts at 90 kHz from 0).
func encodeClip(t testing.TB, path string, codec recording.VideoCodec, bframes int, size string, gop, seconds int) []Sample {
	t.Helper()
	args := []string{"-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=" + size + ":rate=25", "-t", fmt.Sprint(seconds), "-pix_fmt", "yuv420p"}
	if codec == recording.H265 {
		args = append(args, "-c:v", "libx265", "-x265-params",
			fmt.Sprintf("keyint=%d:min-keyint=%d:scenecut=0:open-gop=0:bframes=%d:log-level=none", gop, gop, bframes))
	} else {
		args = append(args, "-c:v", "libx264", "-g", fmt.Sprint(gop), "-keyint_min", fmt.Sprint(gop), "-sc_threshold", "0", "-bf", fmt.Sprint(bframes))
	}
	args = append(args, "-f", "mpegts", path)
	if out, err := exec.Command("ffmpeg", args...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg encode: %v\n%s", err, out)
	}
	var all []Sample
	for _, au := range segmentertest.ReadTS(t, path).Video() {
		var b []byte
		for _, n := range au.NALUs {
			b = binary.BigEndian.AppendUint32(b, uint32(len(n)))
			b = append(b, n...)
		}
		all = append(all, Sample{PTS: au.PTS, Payload: b})
	}
	minPTS := all[0].PTS
	for _, s := range all {
		minPTS = min(minPTS, s.PTS)
	}
	for i := range all {
		all[i].PTS -= minPTS
	}
	return all
}

// gray decodes every frame of the input (no frame dropped or repeated)
// into 320x240 luma planes.
func gray(t *testing.T, format, path string) [][]byte {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-v", "error", "-f", format, "-i", path, "-vsync", "passthrough",
		"-f", "rawvideo", "-pix_fmt", "gray", "-").Output()
	if err != nil {
		t.Fatalf("ffmpeg decode of %s: %v", path, err)
	}
	const n = 320 * 240
	var fs [][]byte
	for len(out) >= n {
		fs = append(fs, out[:n])
		out = out[n:]
	}
	return fs
}

func nearestFrame(src [][]byte, f []byte) (int, float64) {
	best, bd := -1, 1e18
	for i, s := range src {
		var sum int64
		for k := range s {
			d := int64(s[k]) - int64(f[k])
			sum += max(d, -d)
		}
		if d := float64(sum) / float64(len(s)); d < bd {
			best, bd = i, d
		}
	}
	return best, bd
}

func nalType(n []byte, hevc bool) int {
	if hevc {
		return int(n[0]>>1) & 0x3f
	}
	return int(n[0] & 0x1f)
}

// TestReencode re-encodes a GOP from its 13th presented picture on, for
// H.264 and H.265 with and without B-frames: 12 pictures, an IDR first
// with its parameter sets in-band (VPS, SPS, PPS for H.265), the pts of
// the source pictures in order, and a decode (ffmpeg, Annex B) whose
// pictures are the source pictures.
func TestReencode(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		codec   recording.VideoCodec
		bframes int
	}{{recording.H264, 0}, {recording.H264, 2}, {recording.H265, 0}, {recording.H265, 2}} {
		name := fmt.Sprintf("%v-bframes%d", c.codec, c.bframes)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if !Available(c.codec) {
				t.Fatalf("libavcodec has no encoder for %v", c.codec)
			}
			hevc := c.codec == recording.H265
			gop, src := testGOP(t, c.codec, c.bframes)
			var pts []int64
			for _, s := range gop {
				pts = append(pts, s.PTS)
			}
			sort.Slice(pts, func(i, j int) bool { return pts[i] < pts[j] })
			const from = 13
			re := &Reencoder{}
			enc, err := re.Reencode(c.codec, 90000, gop, pts[from])
			if err != nil {
				t.Fatal(err)
			}
			if len(enc) != len(pts)-from {
				t.Fatalf("%d pictures re-encoded, want %d", len(enc), len(pts)-from)
			}
			for i, e := range enc {
				if e.PTS != pts[from+i] {
					t.Errorf("picture %d: pts %d, want %d", i, e.PTS, pts[from+i])
				}
			}
			var types []int
			for _, n := range nalus(enc[0].Payload) {
				types = append(types, nalType(n, hevc))
			}
			want := []int{7, 8, 5} // SPS, PPS, IDR slice
			if hevc {
				want = []int{32, 33, 34, 19} // VPS, SPS, PPS, IDR (_W_RADL or _N_LP)
			}
			got := []int{}
			for _, ty := range types {
				if hevc && ty == 20 {
					ty = 19
				}
				if len(got) < len(want) && ty == want[len(got)] {
					got = append(got, ty)
				}
			}
			if len(got) != len(want) {
				t.Errorf("first picture's NAL unit types %v, want %v in order", types, want)
			}
			var es bytes.Buffer
			for _, e := range enc {
				es.Write(annexB(e.Payload))
			}
			format := "h264"
			if hevc {
				format = "hevc"
			}
			path := filepath.Join(t.TempDir(), "out."+format)
			if err := os.WriteFile(path, es.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			dec := gray(t, format, path)
			if len(dec) != len(enc) {
				t.Fatalf("the re-encoded stream decodes to %d pictures, want %d", len(dec), len(enc))
			}
			for i, f := range dec {
				if n, d := nearestFrame(src, f); n != from+i || d > 2 {
					t.Errorf("re-encoded picture %d is nearest to source picture %d (mean abs luma diff %.2f), want %d", i, n, d, from+i)
				}
			}
			if n, frames, secs := re.Stats(); n != 1 || frames != int64(len(enc)) || secs <= 0 {
				t.Errorf("stats: %d re-encodes, %d frames, %.3f s; want 1, %d, > 0", n, frames, secs, len(enc))
			}
		})
	}
}

// BenchmarkReencode: the cost of one exact=1 replay's re-encode at 1080p
// (25 fps, 2 s GOP of 50 frames, 2 B-frames as cameras send): decode of
// the whole GOP and re-encode of its second half (the mean case: a start
// uniformly inside the GOP leaves 25 frames), and of 49 frames (the worst
// case, start one frame after the keyframe). Reports the process CPU
// seconds per re-encode (getrusage; libav runs single-threaded here).
// Figures: bench/notes.md.
//
//	go test -run '^$' -bench Reencode -benchtime 5x ./cmd/xueliang/internal/reencode/
func BenchmarkReencode(b *testing.B) {
	for _, codec := range []recording.VideoCodec{recording.H264, recording.H265} {
		all := encodeClip(b, filepath.Join(b.TempDir(), "clip.ts"), codec, 2, "1920x1080", 50, 2)
		if len(all) != 50 {
			b.Fatalf("%d access units, want 50", len(all))
		}
		var pts []int64
		for _, s := range all {
			pts = append(pts, s.PTS)
		}
		sort.Slice(pts, func(i, j int) bool { return pts[i] < pts[j] })
		for _, from := range []int{25, 1} {
			b.Run(fmt.Sprintf("%v-1080p-frames%d", codec, 50-from), func(b *testing.B) {
				re := &Reencoder{}
				cpu0 := cpuSeconds(b)
				b.ResetTimer()
				for range b.N {
					if _, err := re.Reencode(codec, 90000, all, pts[from]); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				b.ReportMetric((cpuSeconds(b)-cpu0)/float64(b.N), "cpu-s/op")
				b.ReportMetric(float64(50-from), "frames/op")
			})
		}
	}
}

func cpuSeconds(tb testing.TB) float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
