package decode_test

import (
	"bytes"
	"errors"
	"fmt"
	"image/jpeg"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"xueliang/ingest/decode"
	"xueliang/ingest/decode/decodetest"
	"xueliang/storage/recording"
)

type clipSpec struct {
	codec   recording.VideoCodec
	w, h    int
	pixfmt  string
	bframes int
	frames  int
}

func (c clipSpec) String() string {
	return fmt.Sprintf("%v/%dx%d/%s/b=%d", c.codec, c.w, c.h, c.pixfmt, c.bframes)
}

// genClip encodes testsrc2 with ffmpeg into an MPEG-TS file.
func genClip(t testing.TB, c clipSpec) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "clip.ts")
	args := []string{"-hide_banner", "-nostdin", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%dx%d:rate=25", c.w, c.h),
		"-frames:v", fmt.Sprint(c.frames), "-pix_fmt", c.pixfmt}
	params := fmt.Sprintf("keyint=25:min-keyint=25:scenecut=0:bframes=%d:repeat-headers=1", c.bframes)
	if c.codec == recording.H264 {
		args = append(args, "-c:v", "libx264", "-preset", "ultrafast", "-x264-params", params)
		if c.pixfmt == "yuv422p" {
			args = append(args, "-profile:v", "high422")
		}
	} else {
		args = append(args, "-c:v", "libx265", "-preset", "ultrafast", "-x265-params", params+":log-level=error")
	}
	args = append(args, "-f", "mpegts", out)
	if b, err := exec.Command("ffmpeg", args...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, b)
	}
	return out
}

// ffmpegYUV decodes a clip with the ffmpeg CLI into 8-bit yuv420p frames:
// the independent judge of what Decode returns.
func ffmpegYUV(t testing.TB, path string, w, h int) [][]byte {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error",
		"-i", path, "-f", "rawvideo", "-pix_fmt", "yuv420p", "-").Output()
	if err != nil {
		t.Fatalf("ffmpeg decode: %v", err)
	}
	size := w*h + 2*((w+1)/2)*((h+1)/2)
	var frames [][]byte
	for len(out) >= size {
		frames = append(frames, out[:size])
		out = out[size:]
	}
	return frames
}

func decodeAll(t testing.TB, d *decode.Decoder, clip *decodetest.Clip) []*decode.Frame {
	t.Helper()
	var out []*decode.Frame
	for i, au := range clip.AUs {
		f, err := d.Decode(au.NALUs)
		if err != nil {
			t.Fatalf("AU %d: %v", i, err)
		}
		if f != nil {
			out = append(out, f)
		}
	}
	return out
}

func packed(f *decode.Frame) []byte {
	var b []byte
	b = append(b, f.Y[:f.YStride*f.Height]...)
	ch := (f.Height + 1) / 2
	b = append(b, f.Cb[:f.CStride*ch]...)
	return append(b, f.Cr[:f.CStride*ch]...)
}

func TestDecodeMatchesFFmpeg(t *testing.T) {
	cases := []struct {
		spec  clipSpec
		exact bool // same decoder, no conversion: bit-exact
	}{
		{clipSpec{recording.H264, 320, 240, "yuv420p", 0, 30}, true},
		{clipSpec{recording.H264, 322, 182, "yuv420p", 2, 30}, true}, // odd chroma sizes, B-frames
		{clipSpec{recording.H265, 320, 240, "yuv420p", 0, 30}, true},
		{clipSpec{recording.H264, 160, 120, "yuv422p", 0, 10}, false},     // swscale path
		{clipSpec{recording.H265, 160, 120, "yuv420p10le", 0, 10}, false}, // 10-bit -> 8-bit
	}
	for _, tc := range cases {
		t.Run(tc.spec.String(), func(t *testing.T) {
			path := genClip(t, tc.spec)
			clip, err := decodetest.ReadTS(path)
			if err != nil {
				t.Fatal(err)
			}
			if clip.Codec != tc.spec.codec {
				t.Fatalf("clip codec %v", clip.Codec)
			}
			d, err := decode.New(tc.spec.codec)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			got := decodeAll(t, d, clip)
			want := ffmpegYUV(t, path, tc.spec.w, tc.spec.h)
			// B-frames delay output by up to bframes pictures (no flush API).
			if len(got) < tc.spec.frames-tc.spec.bframes || len(want) != tc.spec.frames {
				t.Fatalf("decoded %d frames, ffmpeg %d, clip %d", len(got), len(want), tc.spec.frames)
			}
			for i, f := range got {
				if f.Width != tc.spec.w || f.Height != tc.spec.h || f.YStride < f.Width || f.CStride < (f.Width+1)/2 {
					t.Fatalf("frame %d: %dx%d strides %d/%d", i, f.Width, f.Height, f.YStride, f.CStride)
				}
				g := packed(f)
				if tc.exact {
					if !bytes.Equal(g, want[i]) {
						t.Fatalf("frame %d differs from ffmpeg's", i)
					}
					continue
				}
				var sum int
				for j := range g {
					d := int(g[j]) - int(want[i][j])
					sum += max(d, -d)
				}
				if mad := float64(sum) / float64(len(g)); mad > 1.5 {
					t.Fatalf("frame %d: mean abs difference %.2f from ffmpeg's", i, mad)
				}
			}
		})
	}
}

// TestResolutionChange feeds two streams of different sizes (new parameter
// sets at the IDR) to one decoder.
func TestResolutionChange(t *testing.T) {
	for _, codec := range []recording.VideoCodec{recording.H264, recording.H265} {
		t.Run(codec.String(), func(t *testing.T) {
			a, err := decodetest.ReadTS(genClip(t, clipSpec{codec, 320, 240, "yuv420p", 0, 10}))
			if err != nil {
				t.Fatal(err)
			}
			b, err := decodetest.ReadTS(genClip(t, clipSpec{codec, 176, 144, "yuv420p", 0, 10}))
			if err != nil {
				t.Fatal(err)
			}
			d, err := decode.New(codec)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			fa := decodeAll(t, d, a)
			fb := decodeAll(t, d, b)
			fa2 := decodeAll(t, d, a)
			if len(fa) != 10 || len(fb) != 10 || len(fa2) != 10 {
				t.Fatalf("frames %d %d %d, want 10 each", len(fa), len(fb), len(fa2))
			}
			if fb[0].Width != 176 || fb[0].Height != 144 || fa2[0].Width != 320 {
				t.Fatalf("sizes %dx%d then %dx%d", fb[0].Width, fb[0].Height, fa2[0].Width, fa2[0].Height)
			}
		})
	}
}

func TestCorruptInput(t *testing.T) {
	clip, err := decodetest.ReadTS(genClip(t, clipSpec{recording.H264, 160, 120, "yuv420p", 0, 50}))
	if err != nil {
		t.Fatal(err)
	}
	first := clip.AUs[0].NALUs
	var sps, pps []byte
	var idr []byte
	for _, n := range first {
		switch n[0] & 0x1f {
		case 7:
			sps = n
		case 8:
			pps = n
		case 5:
			idr = n
		}
	}
	if sps == nil || pps == nil || idr == nil {
		t.Fatal("first AU lacks SPS/PPS/IDR")
	}
	garbage := make([]byte, 2000)
	for i := range garbage {
		garbage[i] = byte(i*7919 + i/3)
	}
	truncated := idr[:len(idr)/3]
	flipped := append([]byte(nil), idr...)
	for i := 8; i < len(flipped); i += 5 {
		flipped[i] ^= 0xa5
	}
	cases := []struct {
		name    string
		au      [][]byte
		invalid bool // rejected before libavcodec
	}{
		{"empty AU", nil, true},
		{"empty NALU", [][]byte{{}}, true},
		{"forbidden bit", [][]byte{{0x85, 1, 2, 3}}, true},
		{"reserved type", [][]byte{{0x1f, 1, 2, 3}}, true},
		{"garbage IDR with real parameter sets", [][]byte{sps, pps, append([]byte{0x65}, garbage...)}, false},
		{"garbage SPS", [][]byte{append([]byte{0x67}, garbage[:40]...), pps, idr}, false},
		{"truncated IDR", [][]byte{sps, pps, truncated}, false},
		{"bit-flipped IDR", [][]byte{sps, pps, flipped}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := decode.New(recording.H264)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			f, err := d.Decode(tc.au)
			if err == nil {
				t.Fatalf("no error (frame %v)", f != nil)
			}
			if f != nil {
				t.Fatalf("frame returned with error %v", err)
			}
			if got := errors.Is(err, decode.ErrInvalidAU); got != tc.invalid {
				t.Fatalf("errors.Is(ErrInvalidAU) = %v for %v", got, err)
			}
			if !tc.invalid && !errors.Is(err, decode.ErrDecode) {
				t.Fatalf("error %v does not wrap ErrDecode", err)
			}
			// The decoder recovers at the next IDR.
			n := 0
			for _, au := range clip.AUs[25:] { // GOP 25: AU 25 is an IDR
				if f, err := d.Decode(au.NALUs); err == nil && f != nil {
					n++
				}
			}
			if n != 25 {
				t.Fatalf("after the corrupt AU, %d of 25 frames decoded", n)
			}
		})
	}
}

func TestClose(t *testing.T) {
	d, err := decode.New(recording.H265)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	d.Close()
	if _, err := d.Decode([][]byte{{0x40, 0x01, 0x0c}}); !errors.Is(err, decode.ErrClosed) {
		t.Fatalf("Decode after Close: %v", err)
	}
	if _, err := decode.New(recording.VideoCodec(7)); err == nil {
		t.Fatal("New(7) succeeded")
	}
}

func TestGrayAndImage(t *testing.T) {
	// 6×4 luma with a stride of 8; chroma 3×2 with a stride of 4.
	f := &decode.Frame{Width: 6, Height: 4, YStride: 8, CStride: 4,
		Y: []byte{
			0, 10, 20, 30, 40, 50, 99, 99,
			10, 20, 30, 40, 50, 60, 99, 99,
			100, 100, 200, 200, 0, 0, 99, 99,
			100, 100, 200, 200, 255, 255, 99, 99,
		},
		Cb: make([]byte, 8), Cr: make([]byte, 8),
	}
	cases := []struct {
		w, h int
		want []byte
	}{
		{3, 2, []byte{10, 30, 50, 100, 200, 128}},
		{1, 1, []byte{(0 + 10 + 20 + 30 + 40 + 50 + 10 + 20 + 30 + 40 + 50 + 60 + 400 + 800 + 510 + 12) / 24}},
		{6, 4, []byte{0, 10, 20, 30, 40, 50, 10, 20, 30, 40, 50, 60, 100, 100, 200, 200, 0, 0, 100, 100, 200, 200, 255, 255}},
		{12, 1, []byte{0, 0, 10, 10, 20, 20, 30, 30, 40, 40, 50, 50}}, // upscale: nearest
	}
	for _, tc := range cases {
		got := f.Gray(tc.w, tc.h)
		if !bytes.Equal(got, tc.want) {
			t.Errorf("Gray(%d,%d) = %v, want %v", tc.w, tc.h, got, tc.want)
		}
	}
	if f.Gray(0, 3) != nil {
		t.Error("Gray(0,3) not nil")
	}
	img := f.Image()
	if img.Bounds().Dx() != 6 || img.Bounds().Dy() != 4 || img.YCbCrAt(2, 2).Y != 200 || img.YCbCrAt(5, 1).Y != 60 {
		t.Fatalf("Image: bounds %v", img.Bounds())
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, nil); err != nil {
		t.Fatal(err)
	}
}

// TestJPEGSnapshot decodes an IDR and encodes it as JPEG (the probe's use).
func TestJPEGSnapshot(t *testing.T) {
	clip, err := decodetest.ReadTS(genClip(t, clipSpec{recording.H265, 320, 240, "yuv420p", 0, 1}))
	if err != nil {
		t.Fatal(err)
	}
	d, err := decode.New(clip.Codec)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	f, err := d.Decode(clip.AUs[0].NALUs)
	if err != nil || f == nil {
		t.Fatalf("Decode IDR: %v, frame %v", err, f != nil)
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, f.Image(), &jpeg.Options{Quality: 80}); err != nil {
		t.Fatal(err)
	}
	img, err := jpeg.Decode(&buf)
	if err != nil || img.Bounds().Dx() != 320 {
		t.Fatalf("jpeg round trip: %v", err)
	}
}

// TestFeed: Feed decodes without copying; the picture after a run of Feeds
// is the one ffmpeg decodes at that position.
func TestFeed(t *testing.T) {
	path := genClip(t, clipSpec{recording.H264, 160, 120, "yuv420p", 0, 12})
	clip, err := decodetest.ReadTS(path)
	if err != nil {
		t.Fatal(err)
	}
	want := ffmpegYUV(t, path, 160, 120)
	d, err := decode.New(recording.H264)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for i, au := range clip.AUs {
		if i%4 != 3 {
			ok, err := d.Feed(au.NALUs)
			if err != nil || !ok {
				t.Fatalf("Feed %d: %v %v", i, ok, err)
			}
			continue
		}
		f, err := d.Decode(au.NALUs)
		if err != nil || f == nil {
			t.Fatalf("Decode %d: %v", i, err)
		}
		if !bytes.Equal(packed(f), want[i]) {
			t.Fatalf("frame %d differs from ffmpeg's", i)
		}
	}
}

// TestDecodeIntra: keyframes alone, from streams with and without
// B-frames, each give their own picture at once (Decode would hold it
// back by the reorder delay), identical to ffmpeg's.
func TestDecodeIntra(t *testing.T) {
	for _, c := range []clipSpec{
		{recording.H264, 160, 120, "yuv420p", 2, 75},
		{recording.H264, 160, 120, "yuv420p", 0, 75},
		{recording.H265, 160, 120, "yuv420p", 3, 75},
	} {
		t.Run(c.String(), func(t *testing.T) {
			path := genClip(t, c)
			clip, err := decodetest.ReadTS(path)
			if err != nil {
				t.Fatal(err)
			}
			want := ffmpegYUV(t, path, c.w, c.h)
			d, err := decode.New(c.codec)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			n := 0
			for _, au := range clip.AUs {
				pi := int(au.PTS * 25 / time.Second) // presentation index
				if pi%25 != 0 {
					continue // keyint=25: the keyframes
				}
				f, err := d.DecodeIntra(au.NALUs)
				if err != nil || f == nil {
					t.Fatalf("keyframe %d: %v, %v", pi, f != nil, err)
				}
				if !bytes.Equal(packed(f), want[pi]) {
					t.Fatalf("keyframe %d differs from ffmpeg's frame %d", pi, pi)
				}
				n++
			}
			if n != 3 {
				t.Fatalf("%d keyframes, want 3", n)
			}
		})
	}
}
