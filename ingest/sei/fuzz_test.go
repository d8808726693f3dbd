package sei

import (
	"testing"
	"xueliang/storage/recording"
)

// FuzzParse checks that Parse never panics, and that whatever it accepts
// survives a NAL/Parse round trip unchanged.
func FuzzParse(f *testing.F) {
	for _, tc := range stampCases {
		f.Add(NAL(tc.codec, tc.stamp), tc.codec == recording.H265)
	}
	f.Add([]byte{0x06, 0x05, 0xFF, 0xFF, 0x80}, false)
	f.Add([]byte{0x4E, 0x01, 0x05, 0x00, 0x80}, true)

	f.Fuzz(func(t *testing.T, nalu []byte, h265 bool) {
		codec := recording.H264
		if h265 {
			codec = recording.H265
		}
		s, ok := Parse(codec, nalu)
		if !ok {
			return
		}
		if !IsSEI(codec, nalu) {
			t.Fatalf("parsed a stamp from a non-SEI NAL unit %x", nalu)
		}
		again, ok := Parse(codec, NAL(codec, s))
		if !ok || again.Camera != s.Camera || again.Seq != s.Seq || !again.Captured.Equal(s.Captured) {
			t.Fatalf("round trip of %+v gave %+v ok=%v", s, again, ok)
		}
	})
}
