package probe

import (
	"bytes"
	"encoding/binary"
	"math"
	"testing"

	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/pion/rtp"
)

// FuzzDepacketizer feeds the probe's depacketiser RTP payloads cut from
// stream (records of a 2-byte big-endian length, a marker byte and the
// payload), with vps/sps/pps as the SDP's parameter sets. The committed
// seeds (testdata/fuzz/FuzzDepacketizer) are packets captured from camsim,
// H.264 and H.265, from a keyframe and from mid-GOP.
//
// Invariants: no panic; an access unit never holds more bytes than the
// payloads fed plus the parameter sets it may be given; prepare is
// idempotent; a keyframe comes out with its parameter sets once they are
// known; the SPS information is never negative or NaN.
func FuzzDepacketizer(f *testing.F) {
	// A lone IDR slice: prepare has to put the SDP's SPS and PPS in front.
	sps := []byte{0x67, 0x42, 0xc0, 0x0c, 0xda, 0x0f, 0x19, 0xf9, 0xf0, 0x11, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x03, 0x00, 0x32, 0x0f, 0x14, 0x2a, 0xa0}
	pps := []byte{0x68, 0xce, 0x0f, 0xc8}
	f.Add(false, []byte(nil), sps, pps, []byte("\x00\x04\x01\x65\x88\x84\x00"))
	f.Add(false, []byte(nil), []byte(nil), []byte(nil), []byte("\x00\x04\x01\x65\x88\x84\x00"))
	f.Add(true, []byte(nil), []byte(nil), []byte(nil), []byte("\x00\x05\x01\x26\x01\xaf\x00\x00"))
	f.Fuzz(func(t *testing.T, isH265 bool, vps, sps, pps, stream []byte) {
		var ft format.Format
		if isH265 {
			ft = &format.H265{PayloadTyp: 96, VPS: vps, SPS: sps, PPS: pps}
		} else {
			ft = &format.H264{PayloadTyp: 96, PacketizationMode: 1, SPS: sps, PPS: pps}
		}
		d, err := newDepacketizer(ft)
		if err != nil {
			return
		}
		fed := 0
		seq := uint16(0)
		for len(stream) >= 3 {
			n := min(int(binary.BigEndian.Uint16(stream)), len(stream)-3)
			pkt := &rtp.Packet{
				Header:  rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: uint32(seq) * 3000, Marker: stream[2]&1 != 0},
				Payload: stream[3 : 3+n],
			}
			stream = stream[3+n:]
			seq++
			fed += n
			au, err := d.decode(pkt)
			if err != nil || au == nil {
				continue
			}
			if s := size(au); s > fed {
				t.Fatalf("access unit of %d bytes from %d payload bytes", s, fed)
			}
			params := len(d.vps) + len(d.sps) + len(d.pps)
			in := size(au)
			out, key, inForce := d.prepare(au)
			if s := size(out); s > in+params {
				t.Fatalf("prepared access unit of %d bytes from %d (+%d parameter bytes)", s, in, params)
			}
			again, key2, inForce2 := d.prepare(out)
			if key != key2 || !bytes.Equal(inForce, inForce2) || !sameAU(out, again) {
				t.Fatalf("prepare is not idempotent: %d NALUs (key %v) then %d (key %v)", len(out), key, len(again), key2)
			}
			if key && d.sps != nil && d.pps != nil && (!isH265 || d.vps != nil) && !hasParams(isH265, out) {
				t.Fatalf("keyframe without parameter sets: %d NALUs", len(out))
			}
			if inForce != nil {
				w, h, fps := d.spsInfo(inForce)
				if w < 0 || h < 0 || fps < 0 || math.IsNaN(fps) || math.IsInf(fps, 0) {
					t.Fatalf("SPS info %dx%d at %v fps", w, h, fps)
				}
			}
		}
	})
}

func size(au [][]byte) int {
	n := 0
	for _, x := range au {
		n += len(x)
	}
	return n
}

func sameAU(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// hasParams reports whether au carries an SPS and a PPS (and a VPS for
// H.265).
func hasParams(isH265 bool, au [][]byte) bool {
	var seen [3]bool
	for _, n := range au {
		if len(n) == 0 {
			continue
		}
		if isH265 {
			switch h265.NALUType((n[0] >> 1) & 0x3f) {
			case h265.NALUType_VPS_NUT:
				seen[0] = true
			case h265.NALUType_SPS_NUT:
				seen[1] = true
			case h265.NALUType_PPS_NUT:
				seen[2] = true
			}
			continue
		}
		seen[0] = true
		switch h264.NALUType(n[0] & 0x1f) {
		case h264.NALUTypeSPS:
			seen[1] = true
		case h264.NALUTypePPS:
			seen[2] = true
		}
	}
	return seen == [3]bool{true, true, true}
}
