package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph265"
	"github.com/pion/rtp"

	"xueliang/ingest/rtpdepack"
	"xueliang/ingest/segmenter/segmentertest"
)

// TestVideoTrackReusableBuffer runs videoTrack (rtpdepack, whose AUs alias
// a reused buffer) and, as the reference, gortsplib's decoders (fresh
// memory for every AU) through prepare and extractDTS on streams whose
// parameter sets change mid-stream: every AU, random-access flag and DTS
// must be the same, and the parameter sets kept must be the last ones seen.
// Without the copies in prepare, the DTS extractor would compare the next
// SPS with bytes since overwritten.
func TestVideoTrackReusableBuffer(t *testing.T) {
	clips := func(t *testing.T, files ...string) []segmentertest.AU {
		var out []segmentertest.AU
		var off int64
		for _, f := range files {
			p := filepath.Join("..", "testdata", "clips", f)
			if _, err := os.Stat(p); err != nil {
				t.Skipf("%s missing (make the clips with scripts/gen-clip.sh)", p)
			}
			aus := segmentertest.ReadTS(t, p).Video()
			for _, au := range aus {
				au.PTS += off
				au.DTS += off
				out = append(out, au)
			}
			off = out[len(out)-1].PTS + 90000
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		h265  bool
		files []string
	}{
		// 320x240 with B-frames (POC type 0), 240x180 baseline (POC type
		// 2), 240x180 with B-frames: the SPSs are all 24 bytes, at the
		// start of the keyframe AU, and the later keyframes are smaller
		// (the buffer is not reallocated): an SPS kept by reference would
		// read the new SPS and look unchanged.
		{"h264/b2-b0-b2", false, []string{"h264_320x240_25fps_gop50_b2_none_10s.ts", "h264_240x180_25fps_gop50_b0_none_10s.ts", "h264_240x180_25fps_gop50_b2_alaw_10s.ts"}},
		{"h265/320-1080", true, []string{"h265_320x240_25fps_gop50_b0_none_10s.ts", "h265_1920x1080_25fps_gop50_b0_none_2M_10s.ts"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			aus := clips(t, tc.files...)
			var pkts []*rtp.Packet
			var enc interface {
				Encode([][]byte) ([]*rtp.Packet, error)
			}
			if tc.h265 {
				e := &rtph265.Encoder{PayloadType: 96}
				depackMust(t, e.Init())
				enc = e
			} else {
				e := &rtph264.Encoder{PayloadType: 96, PacketizationMode: 1}
				depackMust(t, e.Init())
				enc = e
			}
			for _, au := range aus {
				ps, err := enc.Encode(au.NALUs)
				depackMust(t, err)
				for _, p := range ps {
					p.Timestamp = uint32(au.PTS)
				}
				pkts = append(pkts, ps...)
			}

			own := &videoTrack{isH265: tc.h265}
			ref := &videoTrack{isH265: tc.h265}
			var refDecode func(*rtp.Packet) ([][]byte, error)
			if tc.h265 {
				var err error
				own.dec265, err = rtpdepack.NewH265(0)
				depackMust(t, err)
				d := &rtph265.Decoder{}
				depackMust(t, d.Init())
				refDecode = func(p *rtp.Packet) ([][]byte, error) {
					au, err := d.Decode(p)
					if errors.Is(err, rtph265.ErrMorePacketsNeeded) {
						return nil, nil
					}
					return au, err
				}
			} else {
				var err error
				own.dec264, err = rtpdepack.NewH264(1)
				depackMust(t, err)
				d := &rtph264.Decoder{PacketizationMode: 1}
				depackMust(t, d.Init())
				refDecode = func(p *rtp.Packet) ([][]byte, error) {
					au, err := d.Decode(p)
					if errors.Is(err, rtph264.ErrMorePacketsNeeded) {
						return nil, nil
					}
					return au, err
				}
			}
			// step is the puller's path after decode: prepare, extractDTS.
			step := func(v *videoTrack, au [][]byte, pts int64) (string, bool) {
				au, key := v.prepare(au)
				dts, ok, err := v.extractDTS(au, pts, key)
				if err != nil {
					v.resetDTS()
				}
				return fmt.Sprintf("%x key=%v dts=%d ok=%v err=%v", bytes.Join(au, []byte{0xff, 0xfe}), key, dts, ok, err), key
			}
			n, k := 0, 0
			for i, p := range pkts {
				oa, oerr := own.decode(p)
				ra, rerr := refDecode(p)
				if (oerr == nil) != (rerr == nil) || (oa == nil) != (ra == nil) {
					t.Fatalf("packet %d: decode: ours %v (%d NALUs), gortsplib %v (%d NALUs)", i, oerr, len(oa), rerr, len(ra))
				}
				if oa == nil {
					continue
				}
				pts := int64(p.Timestamp)
				o, _ := step(own, oa, pts)
				r, key := step(ref, ra, pts)
				if o != r {
					t.Fatalf("packet %d, AU %d: ours and gortsplib differ:\n ours %.200s\n gortsplib %.200s", i, n, o[max(0, len(o)-80):], r[max(0, len(r)-80):])
				}
				n++
				if key {
					k++
				}
			}
			for _, ps := range [][2][]byte{{own.vps, ref.vps}, {own.sps, ref.sps}, {own.pps, ref.pps}} {
				if !bytes.Equal(ps[0], ps[1]) {
					t.Errorf("parameter set kept: ours %x, gortsplib %x", ps[0], ps[1])
				}
			}
			if n != len(aus) || k < len(tc.files) {
				t.Errorf("%d AUs (%d random access), want %d", n, k, len(aus))
			}
		})
	}
}

func depackMust(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
