package recording

import (
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
)

// A 1920x1080 H.264 SPS and a PPS.
var (
	testSPS = []byte{0x67, 0x64, 0x00, 0x28, 0xac, 0xd9, 0x40, 0x78, 0x02, 0x27, 0xe5, 0x84, 0x00, 0x00, 0x03, 0x00, 0x04, 0x00, 0x00, 0x03, 0x00, 0xf0, 0x3c, 0x60, 0xc6, 0x58}
	testPPS = []byte{0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0}
)

func TestBuildAndDescribeInit(t *testing.T) {
	v := Video{Codec: H264, SPS: testSPS, PPS: testPPS}
	aac := &Audio{Codec: AAC, AAC: mpeg4audio.AudioSpecificConfig{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 48000, ChannelCount: 1}}
	alaw := &Audio{Codec: G711ALaw, SampleRate: 8000}
	for _, tc := range []struct {
		name  string
		audio *Audio
		want  string
	}{
		{"video only", nil, "H264"},
		{"AAC", aac, "H264,MPEG-4 Audio"},
		{"G.711 as LPCM", alaw, "H264,LPCM"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, info, err := BuildInit(v, tc.audio)
			if err != nil {
				t.Fatal(err)
			}
			want := InitInfo{Codecs: tc.want, Width: 1920, Height: 1080}
			if info != want {
				t.Fatalf("BuildInit info %+v, want %+v", info, want)
			}
			got, err := DescribeInit(b)
			if err != nil || got != want {
				t.Fatalf("DescribeInit = %+v, %v; want %+v", got, err, want)
			}
			in, err := ParseInit(b)
			if err != nil {
				t.Fatal(err)
			}
			if vt := VideoTrack(in); vt == nil || vt.TimeScale != VideoTimescale {
				t.Fatalf("video track %+v", vt)
			}
			if a := FindTrack(in, AudioTrackID); (a != nil) != (tc.audio != nil) || a != nil && int(a.TimeScale) != tc.audio.Rate() {
				t.Fatalf("audio track %+v", a)
			}
		})
	}
	if _, _, err := BuildInit(Video{Codec: H264, SPS: testSPS}, nil); err == nil {
		t.Error("init without PPS built")
	}
	if _, _, err := BuildInit(Video{Codec: H265, SPS: testSPS, PPS: testPPS}, nil); err == nil {
		t.Error("H.265 init without VPS built")
	}
}

// TestParseInitRejectsOtherLayouts: only the recording's track layout is
// accepted.
func TestParseInitRejectsOtherLayouts(t *testing.T) {
	h264 := &fmp4.CodecH264{SPS: testSPS, PPS: testPPS}
	for name, tracks := range map[string][]*fmp4.InitTrack{
		"video not track 1": {{ID: 2, TimeScale: VideoTimescale, Codec: h264}},
		"video at 1 kHz":    {{ID: 1, TimeScale: 1000, Codec: h264}},
		"audio first":       {{ID: 1, TimeScale: 48000, Codec: &fmp4.CodecLPCM{BitDepth: 16, SampleRate: 48000, ChannelCount: 1}}},
		"audio track 3": {{ID: 1, TimeScale: VideoTimescale, Codec: h264},
			{ID: 3, TimeScale: 8000, Codec: &fmp4.CodecLPCM{BitDepth: 16, SampleRate: 8000, ChannelCount: 1}}},
		"three tracks": {{ID: 1, TimeScale: VideoTimescale, Codec: h264}, {ID: 2, TimeScale: 8000, Codec: &fmp4.CodecLPCM{BitDepth: 16, SampleRate: 8000, ChannelCount: 1}},
			{ID: 3, TimeScale: 8000, Codec: &fmp4.CodecLPCM{BitDepth: 16, SampleRate: 8000, ChannelCount: 1}}},
	} {
		var buf seekablebuffer.Buffer
		if err := (&fmp4.Init{Tracks: tracks}).Marshal(&buf); err != nil {
			t.Fatal(err)
		}
		if _, err := ParseInit(buf.Bytes()); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
	if _, err := ParseInit([]byte("not an init")); err == nil {
		t.Error("garbage parsed")
	}
}
