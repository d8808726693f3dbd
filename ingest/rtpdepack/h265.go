package rtpdepack

import (
	"fmt"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/pion/rtp"
)

// H265 reassembles RTP/H.265 packets (RFC 7798: single NAL unit packets,
// aggregation packets, fragmentation units) into access units, like
// gortsplib's rtph265.Decoder (v4.16.2) but into a reusable buffer: see the
// package documentation for the semantics and for how long the result is
// valid.
type H265 struct {
	a assembler

	firstPacketReceived bool
	fragmentNextSeqNum  uint16
}

// NewH265 returns a decoder. maxDONDiff is the SDP sprop-max-don-diff
// (gortsplib's format.H265.MaxDONDiff); only 0 is supported, as in
// gortsplib.
func NewH265(maxDONDiff int) (*H265, error) {
	if maxDONDiff != 0 {
		return nil, fmt.Errorf("MaxDONDiff != 0 is not supported (yet)")
	}
	return &H265{}, nil
}

// Decode adds a packet. It returns a complete access unit, valid until the
// next call, or ErrMorePacketsNeeded, ErrNonStartingPacketAndNoPrevious or
// another error (the packet, and sometimes the access unit being built, is
// dropped; decoding goes on with the next packet).
func (d *H265) Decode(pkt *rtp.Packet) ([][]byte, error) {
	a := &d.a
	a.compact()
	if err := d.decodeNALUs(pkt); err != nil {
		return nil, err
	}
	if err := a.addPending(h265.MaxNALUsPerAccessUnit, h265.MaxAccessUnitSize); err != nil {
		return nil, err
	}
	if !pkt.Marker {
		return nil, ErrMorePacketsNeeded
	}
	from, to := a.split()
	return a.output(from, to), nil
}

// decodeNALUs appends the packet's NAL units to the buffer (as pending
// spans), or returns an error with the pending spans rolled back.
func (d *H265) decodeNALUs(pkt *rtp.Packet) error {
	a := &d.a
	p := pkt.Payload
	if len(p) < 2 {
		a.resetFragments()
		return errPayloadTooShort
	}

	switch h265.NALUType((p[0] >> 1) & 0b111111) {
	case h265.NALUType_AggregationUnit:
		a.resetFragments()
		payload := p[2:]
		for {
			if len(payload) < 2 {
				a.rollback()
				return errAPInvalidSize
			}
			size := int(uint16(payload[0])<<8 | uint16(payload[1]))
			payload = payload[2:]
			if size == 0 || size > len(payload) {
				a.rollback()
				return errAPInvalidSize
			}
			off := len(a.buf)
			a.buf = append(a.buf, payload[:size]...)
			a.addSpan(off, len(a.buf))
			payload = payload[size:]
			if len(payload) == 0 {
				break
			}
		}
		d.firstPacketReceived = true

	case h265.NALUType_FragmentationUnit:
		if len(p) < 3 {
			a.resetFragments()
			return errPayloadTooShort
		}
		start := p[2] >> 7
		end := (p[2] >> 6) & 0x01

		if start == 1 {
			a.resetFragments()
			if end != 0 {
				return errFUStartAndEnd
			}
			typ := p[2] & 0b111111
			head := uint16(p[0]&0b10000001)<<8 | uint16(typ)<<9 | uint16(p[1])
			a.buf = append(a.buf, byte(head>>8), byte(head))
			a.buf = append(a.buf, p[3:]...)
			a.fragSize = len(p) - 1
			d.fragmentNextSeqNum = pkt.SequenceNumber + 1
			d.firstPacketReceived = true
			return ErrMorePacketsNeeded
		}

		if err := a.continueFU(pkt, 3, &d.fragmentNextSeqNum, d.firstPacketReceived,
			h265.MaxAccessUnitSize, errFUNonStarting); err != nil {
			return err
		}

	case h265.NALUType_PACI:
		a.resetFragments()
		return errPACINotSupported

	default:
		a.resetFragments()
		off := len(a.buf)
		a.buf = append(a.buf, p...)
		a.addSpan(off, len(a.buf))
	}
	return nil
}
