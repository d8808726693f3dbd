package sei

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"xueliang/storage/recording"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

var stampCases = []struct {
	name  string
	codec recording.VideoCodec
	stamp Stamp
}{
	{"h264 basic", recording.H264, Stamp{Camera: "cam1", Seq: 42, Captured: time.Unix(1700000000, 123456789)}},
	{"h265 basic", recording.H265, Stamp{Camera: "cam2", Seq: 1 << 40, Captured: time.Unix(1800000000, 1)}},
	{"h264 zeros need emulation prevention", recording.H264, Stamp{Camera: "", Seq: 0, Captured: time.Unix(0, 0)}},
	{"h265 zeros need emulation prevention", recording.H265, Stamp{Camera: "\x00\x00\x00\x01", Seq: 0x0000000300000001, Captured: time.Unix(0, 3)}},
	{"h264 max values", recording.H264, Stamp{Camera: "x", Seq: ^uint64(0), Captured: time.Unix(0, 1<<62)}},
	{"h264 negative time", recording.H264, Stamp{Camera: "村口", Seq: 7, Captured: time.Unix(-5, 0)}},
	{"h264 long camera id (size needs 0xFF run)", recording.H264, Stamp{Camera: strings.Repeat("c", 255), Seq: 9, Captured: time.Unix(1, 0)}},
	{"h265 long camera id", recording.H265, Stamp{Camera: strings.Repeat("\x00", 255), Seq: 9, Captured: time.Unix(1, 0)}},
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range stampCases {
		t.Run(tc.name, func(t *testing.T) {
			nalu := NAL(tc.codec, tc.stamp)
			if !IsSEI(tc.codec, nalu) {
				t.Fatalf("NAL %x is not an SEI NAL unit", nalu)
			}
			assertNoStartCodeEmulation(t, nalu)
			if nalu[len(nalu)-1] != 0x80 {
				t.Errorf("last byte %#x, want rbsp trailing bits 0x80", nalu[len(nalu)-1])
			}
			got, ok := Parse(tc.codec, nalu)
			if !ok {
				t.Fatalf("Parse(%x) failed", nalu)
			}
			if got.Camera != tc.stamp.Camera || got.Seq != tc.stamp.Seq || !got.Captured.Equal(tc.stamp.Captured) {
				t.Errorf("got %+v, want %+v", got, tc.stamp)
			}
			// Cross-check our emulation-prevention removal with mediacommon's.
			hdr := 1
			if tc.codec == recording.H265 {
				hdr = 2
			}
			if a, b := removeEmulationPrevention(nalu[hdr:]), h264.EmulationPreventionRemove(nalu[hdr:]); !bytes.Equal(a, b) {
				t.Errorf("emulation prevention removal differs from mediacommon:\n%x\n%x", a, b)
			}
			// The other codec must not see a stamp in it (different NAL header).
			other := recording.H265
			if tc.codec == recording.H265 {
				other = recording.H264
			}
			if _, ok := Parse(other, nalu); ok {
				t.Errorf("%s SEI parsed as %s", tc.codec, other)
			}
		})
	}
}

func assertNoStartCodeEmulation(t *testing.T, nalu []byte) {
	t.Helper()
	for i := 2; i < len(nalu); i++ {
		if nalu[i-2] == 0 && nalu[i-1] == 0 && nalu[i] <= 3 && nalu[i] != 3 {
			t.Fatalf("forbidden sequence 00 00 %02x at %d in %x", nalu[i], i-2, nalu)
		}
	}
}

func TestCameraTruncated(t *testing.T) {
	long := strings.Repeat("a", 300)
	got, ok := Parse(recording.H264, NAL(recording.H264, Stamp{Camera: long}))
	if !ok || got.Camera != long[:MaxCameraLen] {
		t.Fatalf("got %q ok=%v, want the first %d bytes", got.Camera, ok, MaxCameraLen)
	}
}

func TestParseRejects(t *testing.T) {
	valid264 := NAL(recording.H264, Stamp{Camera: "cam1", Seq: 1, Captured: time.Unix(1, 0)})
	otherUUID := bytes.Clone(valid264)
	otherUUID[3] ^= 0x01 // inside the UUID (header, type, size precede it)

	cases := []struct {
		name  string
		codec recording.VideoCodec
		nalu  []byte
	}{
		{"nil", recording.H264, nil},
		{"empty", recording.H265, []byte{}},
		{"idr slice", recording.H264, []byte{0x65, 0x88, 0x84, 0x00}},
		{"h264 sps", recording.H264, []byte{0x67, 0x42, 0x00, 0x1f}},
		{"h265 vps", recording.H265, []byte{0x40, 0x01, 0x0c}},
		{"h265 suffix sei", recording.H265, append([]byte{40 << 1, 0x01}, valid264[1:]...)},
		{"h265 header only", recording.H265, []byte{39 << 1}},
		{"other uuid", recording.H264, otherUUID},
		{"truncated", recording.H264, valid264[:len(valid264)-8]},
		{"header only", recording.H264, []byte{0x06}},
		{"only trailing bits", recording.H264, []byte{0x06, 0x80}},
		{"endless ff type", recording.H264, append([]byte{0x06}, bytes.Repeat([]byte{0xFF}, 100)...)},
		{"size beyond end", recording.H264, []byte{0x06, 0x05, 0xFF, 0x10, 0x00}},
		{"other payload type", recording.H264, append([]byte{0x06, 0x04}, valid264[2:]...)},
		{"version 0", recording.H264, func() []byte {
			b := bytes.Clone(valid264)
			b[3+16] = 0
			return b
		}()},
		{"camera length beyond body", recording.H264, []byte{0x06, 0x05, 34,
			'x', 'u', 'e', 'l', 'i', 'a', 'n', 'g', '/', 's', 't', 'a', 'm', 'p', '/', '1',
			1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 200, 0x80}},
		{"unknown codec", recording.VideoCodec(0), valid264},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if s, ok := Parse(tc.codec, tc.nalu); ok {
				t.Fatalf("Parse(%x) = %+v, want false", tc.nalu, s)
			}
		})
	}
}

func TestParseSkipsOtherMessages(t *testing.T) {
	want := Stamp{Camera: "cam9", Seq: 99, Captured: time.Unix(1234, 5678)}
	stamp := NAL(recording.H264, want)
	// An SEI NAL unit with a recovery point message (type 6, size 1) and a
	// foreign user-data-unregistered message before ours.
	foreign := append([]byte{5, 17}, bytes.Repeat([]byte{0xAB}, 17)...)
	nalu := append([]byte{0x06, 6, 1, 0x84}, foreign...)
	nalu = append(nalu, stamp[1:]...) // our message + trailing bits
	got, ok := Parse(recording.H264, nalu)
	if !ok || got.Seq != want.Seq || got.Camera != want.Camera || !got.Captured.Equal(want.Captured) {
		t.Fatalf("got %+v ok=%v, want %+v", got, ok, want)
	}
}

func TestParseIgnoresTrailingFieldsOfNewerVersion(t *testing.T) {
	// Build a version-2 body by hand: v1 fields + 3 extra bytes.
	body := append([]byte{}, UUID[:]...)
	body = append(body, 2, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 9, 1, 'c', 0xEE, 0xEE, 0xEE)
	rbsp := append(appendFFCoded(appendFFCoded(nil, 5), len(body)), body...)
	rbsp = append(rbsp, 0x80)
	nalu := appendEmulationPrevented([]byte{0x06}, rbsp)
	got, ok := Parse(recording.H264, nalu)
	if !ok || got.Seq != 5 || got.Camera != "c" || got.Captured.UnixNano() != 9 {
		t.Fatalf("got %+v ok=%v", got, ok)
	}
}

func TestFFCoding(t *testing.T) {
	for _, v := range []int{0, 1, 254, 255, 256, 509, 510, 511, 100000} {
		b := appendFFCoded(nil, v)
		if len(b) != v/255+1 {
			t.Errorf("%d coded in %d bytes, want %d", v, len(b), v/255+1)
		}
		got, n, ok := readFFCoded(append(b, 0x42))
		if !ok || got != v || n != len(b) {
			t.Errorf("%d: read %d,%d,%v", v, got, n, ok)
		}
	}
}

func TestFromAU(t *testing.T) {
	want := Stamp{Camera: "cam3", Seq: 3, Captured: time.Unix(3, 3)}
	au := [][]byte{
		{0x67, 0x42, 0x00, 0x1f}, // SPS
		{0x68, 0xce, 0x3c, 0x80}, // PPS
		{0x06, 0x05, 0x01, 0x00, 0x80},
		NAL(recording.H264, want),
		{0x65, 0x88, 0x84},
	}
	got, ok := FromAU(recording.H264, au)
	if !ok || got.Seq != 3 || got.Camera != "cam3" {
		t.Fatalf("got %+v ok=%v", got, ok)
	}
	if _, ok := FromAU(recording.H264, au[:3]); ok {
		t.Fatal("found a stamp in an AU without one")
	}
	if _, ok := FromAU(recording.H265, au); ok {
		t.Fatal("found an H.265 stamp in an H.264 AU")
	}
}

// TestFFmpegDecodesStampedStream inserts a stamp into every access unit of an
// ffmpeg-encoded elementary stream and lets ffmpeg decode it: there must be no
// decode errors and every frame must carry the unregistered-SEI side data.
func TestFFmpegDecodesStampedStream(t *testing.T) {
	for _, tc := range []struct {
		codec recording.VideoCodec
		enc   []string
		fmt   string
	}{
		{recording.H264, []string{"-c:v", "libx264", "-x264-params", "bframes=2:keyint=5"}, "h264"},
		{recording.H265, []string{"-c:v", "libx265", "-x265-params", "bframes=2:keyint=5:log-level=error"}, "hevc"},
	} {
		t.Run(tc.codec.String(), func(t *testing.T) {
			dir := t.TempDir()
			raw := filepath.Join(dir, "raw."+tc.fmt)
			args := append([]string{"-hide_banner", "-loglevel", "error", "-nostdin", "-f", "lavfi",
				"-i", "testsrc2=size=64x64:rate=10", "-frames:v", "12", "-preset", "ultrafast"}, tc.enc...)
			args = append(args, "-f", tc.fmt, raw)
			if out, err := exec.Command("ffmpeg", args...).CombinedOutput(); err != nil {
				t.Fatalf("ffmpeg encode: %v\n%s", err, out)
			}
			data, err := os.ReadFile(raw)
			if err != nil {
				t.Fatal(err)
			}
			var nalus h264.AnnexB
			if err := nalus.Unmarshal(data); err != nil {
				t.Fatal(err)
			}

			// Insert a stamp before the first VCL NAL unit of every picture.
			var out [][]byte
			frames := 0
			for _, n := range nalus {
				if isFirstSliceOfPicture(tc.codec, n) {
					out = append(out, NAL(tc.codec, Stamp{Camera: "cam1", Seq: uint64(frames), Captured: time.Unix(0, 0)}))
					frames++
				}
				out = append(out, n)
			}
			if frames != 12 {
				t.Fatalf("found %d pictures, want 12", frames)
			}
			stamped, err := h264.AnnexB(out).Marshal()
			if err != nil {
				t.Fatal(err)
			}
			in := filepath.Join(dir, "stamped."+tc.fmt)
			if err := os.WriteFile(in, stamped, 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command("ffprobe", "-v", "error", "-f", tc.fmt, "-show_frames",
				"-show_entries", "frame=key_frame:side_data=side_data_type", "-of", "compact", in)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			probe, err := cmd.Output()
			if err != nil || stderr.Len() > 0 {
				t.Fatalf("ffprobe: %v\n%s", err, stderr.String())
			}
			// x264/x265 add their own unregistered SEI to some frames, so
			// count frames that have at least one.
			blocks := strings.Split(string(probe), "frame|")[1:]
			withSEI := 0
			for _, b := range blocks {
				if strings.Contains(b, "User Data Unregistered") {
					withSEI++
				}
			}
			if len(blocks) != 12 || withSEI != 12 {
				t.Fatalf("ffprobe saw %d frames, %d with unregistered SEI side data, want 12 and 12:\n%s", len(blocks), withSEI, probe)
			}
		})
	}
}

// isFirstSliceOfPicture reports whether n is a VCL NAL unit that starts a
// new picture (first_mb_in_slice == 0 / first_slice_segment_in_pic_flag).
func isFirstSliceOfPicture(codec recording.VideoCodec, n []byte) bool {
	if codec == recording.H264 {
		typ := n[0] & 0x1F
		// first_mb_in_slice is ue(v); value 0 is the single bit '1'.
		return (typ == 1 || typ == 5) && len(n) > 1 && n[1]&0x80 != 0
	}
	typ := (n[0] >> 1) & 0x3F
	return typ <= 31 && len(n) > 2 && n[2]&0x80 != 0
}
