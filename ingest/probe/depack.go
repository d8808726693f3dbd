package probe

import (
	"errors"
	"fmt"

	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph265"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/pion/rtp"
)

// depacketizer turns RTP packets into access units and keeps the latest
// parameter sets (from the SDP, then in-band) so that a keyframe can be
// decoded on its own.
type depacketizer struct {
	h265          bool
	clockRate     int
	dec264        *rtph264.Decoder
	dec265        *rtph265.Decoder
	vps, sps, pps []byte
}

func newDepacketizer(f format.Format) (*depacketizer, error) {
	d := &depacketizer{clockRate: f.ClockRate()}
	var err error
	switch f := f.(type) {
	case *format.H264:
		d.dec264, err = f.CreateDecoder()
		d.sps, d.pps = f.SafeParams()
	case *format.H265:
		d.h265 = true
		d.dec265, err = f.CreateDecoder()
		d.vps, d.sps, d.pps = f.SafeParams()
	default:
		return nil, fmt.Errorf("codec %s", f.Codec())
	}
	// A parameter set from the SDP that is empty ("sprop-parameter-sets=<sps>,")
	// or not of its NAL type is unknown: it is not put in front of keyframes
	// (an empty NALU makes h264.IsRandomAccess panic; a wrong one would be
	// put in front of every keyframe, even one already prepared).
	if d.h265 {
		d.vps = paramOf(d.vps, 2, func(n []byte) bool { return h265.NALUType((n[0]>>1)&0x3f) == h265.NALUType_VPS_NUT })
		d.sps = paramOf(d.sps, 2, func(n []byte) bool { return h265.NALUType((n[0]>>1)&0x3f) == h265.NALUType_SPS_NUT })
		d.pps = paramOf(d.pps, 2, func(n []byte) bool { return h265.NALUType((n[0]>>1)&0x3f) == h265.NALUType_PPS_NUT })
	} else {
		d.sps = paramOf(d.sps, 1, func(n []byte) bool { return h264.NALUType(n[0]&0x1f) == h264.NALUTypeSPS })
		d.pps = paramOf(d.pps, 1, func(n []byte) bool { return h264.NALUType(n[0]&0x1f) == h264.NALUTypePPS })
	}
	if d.clockRate <= 0 {
		d.clockRate = 90000
	}
	return d, err
}

// paramOf returns n when it is at least minLen bytes long and is, else nil.
func paramOf(n []byte, minLen int, is func([]byte) bool) []byte {
	if len(n) < minLen || !is(n) {
		return nil
	}
	return n
}

// decode returns the next complete access unit, or nil.
func (d *depacketizer) decode(pkt *rtp.Packet) ([][]byte, error) {
	if d.h265 {
		au, err := d.dec265.Decode(pkt)
		if errors.Is(err, rtph265.ErrMorePacketsNeeded) || errors.Is(err, rtph265.ErrNonStartingPacketAndNoPrevious) {
			return nil, nil
		}
		return au, err
	}
	au, err := d.dec264.Decode(pkt)
	if errors.Is(err, rtph264.ErrMorePacketsNeeded) || errors.Is(err, rtph264.ErrNonStartingPacketAndNoPrevious) {
		return nil, nil
	}
	return au, err
}

// prepare remembers in-band parameter sets and puts the known ones in
// front of a random-access AU that lacks them. It returns the AU, whether it
// is random access, and the SPS in force.
func (d *depacketizer) prepare(au [][]byte) ([][]byte, bool, []byte) {
	if d.h265 {
		var has [3]bool
		for _, n := range au {
			if len(n) < 2 {
				continue
			}
			switch h265.NALUType((n[0] >> 1) & 0x3f) {
			case h265.NALUType_VPS_NUT:
				d.vps, has[0] = n, true
			case h265.NALUType_SPS_NUT:
				d.sps, has[1] = n, true
			case h265.NALUType_PPS_NUT:
				d.pps, has[2] = n, true
			}
		}
		key := h265.IsRandomAccess(au)
		if key && has != [3]bool{true, true, true} && d.vps != nil && d.sps != nil && d.pps != nil {
			out := [][]byte{d.vps, d.sps, d.pps}
			for _, n := range au {
				if len(n) >= 1 {
					switch h265.NALUType((n[0] >> 1) & 0x3f) {
					case h265.NALUType_VPS_NUT, h265.NALUType_SPS_NUT, h265.NALUType_PPS_NUT:
						continue
					}
				}
				out = append(out, n)
			}
			au = out
		}
		return au, key, d.sps
	}
	var hasSPS, hasPPS bool
	for _, n := range au {
		if len(n) < 1 {
			continue
		}
		switch h264.NALUType(n[0] & 0x1f) {
		case h264.NALUTypeSPS:
			d.sps, hasSPS = n, true
		case h264.NALUTypePPS:
			d.pps, hasPPS = n, true
		}
	}
	key := h264.IsRandomAccess(au)
	if key && (!hasSPS || !hasPPS) && d.sps != nil && d.pps != nil {
		out := [][]byte{d.sps, d.pps}
		for _, n := range au {
			if len(n) >= 1 {
				switch h264.NALUType(n[0] & 0x1f) {
				case h264.NALUTypeSPS, h264.NALUTypePPS, h264.NALUTypeAccessUnitDelimiter:
					continue
				}
			}
			out = append(out, n)
		}
		au = out
	}
	return au, key, d.sps
}

// spsInfo returns the picture size and declared frame rate of an SPS, zeros
// when it does not parse.
func (d *depacketizer) spsInfo(sps []byte) (width, height int, fps float64) {
	if d.h265 {
		var s h265.SPS
		if err := s.Unmarshal(sps); err != nil {
			return 0, 0, 0
		}
		return s.Width(), s.Height(), s.FPS()
	}
	var s h264.SPS
	if err := s.Unmarshal(sps); err != nil {
		return 0, 0, 0
	}
	return s.Width(), s.Height(), s.FPS()
}
