package api

import (
	"slices"
	"testing"

	"xueliang/ingest/live"
	"xueliang/storage/recording"
)

func TestParseRTSPPath(t *testing.T) {
	for _, tc := range []struct {
		path, camera, name string
		ok                 bool
	}{
		{"/cam1", "cam1", live.Main, true},
		{"cam1/", "cam1", live.Main, true},
		{"/cam1/sub", "cam1", live.Sub, true},
		{"/cam1/main", "", "", false},
		{"/cam1/sub/x", "", "", false},
		{"/", "", "", false},
		{"", "", "", false},
	} {
		t.Run(tc.path, func(t *testing.T) {
			c, n, ok := parseRTSPPath(tc.path)
			if ok != tc.ok || (ok && (c != tc.camera || n != tc.name)) {
				t.Fatalf("parseRTSPPath(%q) = %q, %q, %v", tc.path, c, n, ok)
			}
		})
	}
}

func TestWithParams(t *testing.T) {
	h264 := recording.Video{Codec: recording.H264, SPS: []byte{0x67, 1}, PPS: []byte{0x68, 2}}
	h265 := recording.Video{Codec: recording.H265, VPS: []byte{0x40, 1}, SPS: []byte{0x42, 1}, PPS: []byte{0x44, 1}}
	idr := []byte{0x65, 9}
	cra := []byte{0x2a, 9} // H.265 CRA (type 21)
	for _, tc := range []struct {
		name string
		v    recording.Video
		au   [][]byte
		want [][]byte
	}{
		{"h264 without params", h264, [][]byte{idr}, [][]byte{h264.SPS, h264.PPS, idr}},
		{"h264 with params", h264, [][]byte{{0x67, 7}, {0x68, 8}, idr}, [][]byte{{0x67, 7}, {0x68, 8}, idr}},
		{"h265 without params", h265, [][]byte{cra}, [][]byte{h265.VPS, h265.SPS, h265.PPS, cra}},
		{"h265 with params", h265, [][]byte{{0x40, 7}, {0x42, 7}, {0x44, 7}, cra}, [][]byte{{0x40, 7}, {0x42, 7}, {0x44, 7}, cra}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := withParams(tc.v, tc.au)
			if !slices.EqualFunc(got, tc.want, slices.Equal) {
				t.Fatalf("withParams = %x, want %x", got, tc.want)
			}
		})
	}
}
