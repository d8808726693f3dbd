package replay

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"xueliang/cmd/xueliang/internal/reencode"
)

// grayFrames decodes every frame ffmpeg outputs for path (no frame
// dropped or duplicated) as 8-bit luma planes of w x h.
func grayFrames(t *testing.T, path string, w, h int) [][]byte {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-v", "error", "-i", path, "-map", "0:v", "-vsync", "passthrough",
		"-f", "rawvideo", "-pix_fmt", "gray", "-").Output()
	if err != nil {
		t.Fatalf("ffmpeg gray decode of %s: %v", path, err)
	}
	n := w * h
	if len(out)%n != 0 {
		t.Fatalf("%d bytes of gray frames, not a multiple of %d", len(out), n)
	}
	var fs [][]byte
	for len(out) > 0 {
		fs = append(fs, out[:n])
		out = out[n:]
	}
	return fs
}

func meanAbsDiff(a, b []byte) float64 {
	var s int64
	for i := range a {
		d := int64(a[i]) - int64(b[i])
		if d < 0 {
			d = -d
		}
		s += d
	}
	return float64(s) / float64(len(a))
}

// nearest returns the source frame index closest in picture to f.
func nearest(src [][]byte, f []byte) (int, float64) {
	best, bd := -1, 1e18
	for i, s := range src {
		if d := meanAbsDiff(s, f); d < bd {
			best, bd = i, d
		}
	}
	return best, bd
}

// TestReplayExact: the exact form (Request.Exact) of a window starting
// mid-GOP decodes, in the ffmpeg CLI (which shows every decoded frame of
// a fragmented file, pre-roll included, see the package doc), to exactly
// the frames from the frame at start: the re-encoded ones are identified
// by picture (nearest source frame), the recorded ones from the next
// keyframe on are bit-identical to the source.
func TestReplayExact(t *testing.T) {
	t.Parallel()
	const s = time.Second
	ms := time.Millisecond
	for _, bf := range []int{0, 2} {
		c := getClip(t, "320x240", bf, bf > 0)
		src := grayFrames(t, c.path, 320, 240)
		t.Run("bframes="+string(rune('0'+bf)), func(t *testing.T) {
			t.Parallel()
			rec := newRecording(t, segSpec{clip: c, from: 0, to: 75, start: at(0)}, segSpec{clip: c, from: 75, to: 150, start: at(3 * s)})
			re := &reencode.Reencoder{}
			r := &Replayer{Index: rec, Reader: rec, Reencoder: re}
			p, err := r.Plan(context.Background(), Request{Camera: "cam1", Start: at(1500 * ms), End: at(4500 * ms), Exact: true})
			if err != nil {
				t.Fatal(err)
			}
			want := frames(c, 37, 113)
			var fb bytes.Buffer
			if err := r.Write(context.Background(), p, &fb); err != nil {
				t.Fatal(err)
			}
			m, err := r.PrepareMP4(context.Background(), p)
			if err != nil {
				t.Fatal(err)
			}
			var pb bytes.Buffer
			if err := m.Write(context.Background(), &pb); err != nil {
				t.Fatal(err)
			}
			for name, b := range map[string][]byte{"fmp4": fb.Bytes(), "mp4": pb.Bytes()} {
				path := filepath.Join(t.TempDir(), "exact-"+name+".mp4")
				if err := os.WriteFile(path, b, 0o644); err != nil {
					t.Fatal(err)
				}
				if keep := os.Getenv("XL_KEEP_EXACT"); keep != "" {
					_ = os.WriteFile(filepath.Join(keep, name+"-bf"+string(rune('0'+bf))+".mp4"), b, 0o644)
				}
				if out := runCmd(t, "ffmpeg", "-v", "error", "-i", path, "-f", "null", "-"); out != "" {
					t.Errorf("%s: ffmpeg decode errors:\n%s", name, out)
				}
				got := grayFrames(t, path, 320, 240)
				if d := len(got) - len(want); d < -1 || d > 1 {
					t.Errorf("%s: %d frames shown, want %d ±1", name, len(got), len(want))
				}
				for i := 0; i < min(len(got), len(want)); i++ {
					wn := want[i].n
					if wn >= 50 { // recorded samples from the next keyframe on
						if !bytes.Equal(got[i], src[wn]) {
							n, _ := nearest(src, got[i])
							t.Errorf("%s: frame %d is source frame %d, want %d (bit-exact)", name, i, n, wn)
							break
						}
						continue
					}
					n, d := nearest(src, got[i])
					if n != wn || d > 2 {
						t.Errorf("%s: re-encoded frame %d is nearest to source frame %d (mean abs diff %.2f), want %d", name, i, n, d, wn)
						break
					}
				}
				fr := probeFrames(t, path)
				if len(fr) > 0 && fr[0].pts != 0 {
					t.Errorf("%s: first decoded frame at pts %v, want 0", name, fr[0].pts)
				}
			}
			if n, f, _ := re.Stats(); n != 1 || f != 13 {
				t.Errorf("re-encodes %d (frames %d), want 1 (13): the progressive form's second pass must reuse the first", n, f)
			}
		})
	}
}
