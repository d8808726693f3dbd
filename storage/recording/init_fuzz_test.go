package recording

import (
	"bytes"
	"runtime"
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
)

// camsim's 240x180 H.265 parameter sets (captured from its RTSP stream).
var (
	testVPS265 = []byte{0x40, 0x01, 0x0c, 0x01, 0xff, 0xff, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00, 0x03, 0x00, 0x3c, 0xba, 0x02, 0x40}
	testSPS265 = []byte{0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00, 0x03, 0x00, 0x3c, 0xa0, 0x1e, 0x20, 0x30, 0x7c, 0xf9, 0x6e, 0x92, 0x93, 0x0b, 0xc0, 0x5a, 0x02, 0x00, 0x00, 0x03, 0x00, 0x02, 0x00, 0x00, 0x03, 0x00, 0x32, 0x10}
	testPPS265 = []byte{0x44, 0x01, 0xc0, 0x73, 0xc1, 0x89}
)

// initSeeds adds inits as BuildInit writes them; testdata/fuzz holds the
// init of a segment the segmenter wrote.
func initSeeds(f *testing.F) {
	f.Helper()
	h264 := Video{Codec: H264, SPS: testSPS, PPS: testPPS}
	h265 := Video{Codec: H265, VPS: testVPS265, SPS: testSPS265, PPS: testPPS265}
	aac := &Audio{Codec: AAC, AAC: mpeg4audio.AudioSpecificConfig{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 48000, ChannelCount: 1}}
	alaw := &Audio{Codec: G711ALaw, SampleRate: 8000}
	for _, c := range []struct {
		v Video
		a *Audio
	}{{h264, nil}, {h264, aac}, {h264, alaw}, {h265, nil}, {h265, aac}} {
		b, _, err := BuildInit(c.v, c.a)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte("\x00\x00\x00\x08ftyp\x00\x00\x00\x08moov"))
}

// maxInitAlloc bounds what parsing an init of n bytes may allocate: a
// box's declared counts must not make the parser allocate far beyond its
// input (an init comes from the object store, where anyone holding the
// bucket credentials can write).
func maxInitAlloc(n int) uint64 { return 1<<20 + 64*uint64(n) }

// allocated returns the bytes fn allocates.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

var knownCodecs = map[string]bool{
	"H264": true, "H264,MPEG-4 Audio": true, "H264,LPCM": true,
	"H265": true, "H265,MPEG-4 Audio": true, "H265,LPCM": true,
}

// FuzzDescribeInit: DescribeInit never panics, its description is one the
// index knows, and it survives a round trip (the parsed init marshalled
// again, and the video track rebuilt by BuildInit, describe the same).
func FuzzDescribeInit(f *testing.F) {
	initSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		var info InitInfo
		var err error
		if n := allocated(func() { info, err = DescribeInit(b) }); n > maxInitAlloc(len(b)) {
			t.Fatalf("describing %d bytes allocated %d", len(b), n)
		}
		if err != nil {
			return
		}
		if !knownCodecs[info.Codecs] || info.Width < 0 || info.Height < 0 {
			t.Fatalf("description %+v", info)
		}
		in, err := ParseInit(b)
		if err != nil {
			t.Fatalf("described but ParseInit fails: %v", err)
		}
		var buf seekablebuffer.Buffer
		if err := in.Marshal(&buf); err != nil {
			t.Fatalf("re-marshal: %v", err)
		}
		again, err := DescribeInit(buf.Bytes())
		if err != nil || again != info {
			t.Fatalf("re-marshalled init describes %+v, %v; want %+v", again, err, info)
		}
		v := Video{}
		switch c := VideoTrack(in).Codec.(type) {
		case *fmp4.CodecH264:
			v = Video{Codec: H264, SPS: c.SPS, PPS: c.PPS}
		case *fmp4.CodecH265:
			v = Video{Codec: H265, VPS: c.VPS, SPS: c.SPS, PPS: c.PPS}
		}
		if len(v.SPS) == 0 || len(v.PPS) == 0 || (v.Codec == H265 && len(v.VPS) == 0) {
			return // BuildInit needs the parameter sets; a read init may lack some
		}
		_, built, err := BuildInit(v, nil)
		if err != nil {
			t.Fatalf("rebuild from the parsed video track: %v", err)
		}
		if built.Width != info.Width || built.Height != info.Height || built.Codecs != v.Codec.String() {
			t.Fatalf("rebuilt %+v, parsed %+v", built, info)
		}
	})
}

// FuzzParseInit: replay's init parsing (ParseInit, VideoTrack, FindTrack)
// never panics, bounds its allocations, and what it accepts has the
// recording's layout.
func FuzzParseInit(f *testing.F) {
	initSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		var in *fmp4.Init
		var err error
		if n := allocated(func() { in, err = ParseInit(b) }); n > maxInitAlloc(len(b)) {
			t.Fatalf("parsing %d bytes allocated %d", len(b), n)
		}
		if err != nil {
			if in != nil {
				t.Fatal("an init returned with an error")
			}
			return
		}
		if len(in.Tracks) < 1 || len(in.Tracks) > 2 {
			t.Fatalf("%d tracks accepted", len(in.Tracks))
		}
		vt := VideoTrack(in)
		if vt == nil || vt.ID != VideoTrackID || vt.TimeScale != VideoTimescale || vt != in.Tracks[0] {
			t.Fatalf("video track %+v", vt)
		}
		switch vt.Codec.(type) {
		case *fmp4.CodecH264, *fmp4.CodecH265:
		default:
			t.Fatalf("video codec %T accepted", vt.Codec)
		}
		if at := FindTrack(in, AudioTrackID); at != nil {
			if len(in.Tracks) != 2 || at != in.Tracks[1] || at.TimeScale == 0 {
				t.Fatalf("audio track %+v of %d", at, len(in.Tracks))
			}
		} else if len(in.Tracks) != 1 {
			t.Fatalf("%d tracks but no audio track %d", len(in.Tracks), AudioTrackID)
		}
		for _, id := range []int{0, 3, -1, 1 << 30} {
			if tr := FindTrack(in, id); tr != nil {
				t.Fatalf("track %d found: %+v", id, tr)
			}
		}
		// Parsing is deterministic: the same bytes give the same tracks.
		again, err := ParseInit(bytes.Clone(b))
		if err != nil || len(again.Tracks) != len(in.Tracks) {
			t.Fatalf("second parse: %v", err)
		}
	})
}
