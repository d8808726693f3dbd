package rtpdepack

import (
	"bytes"
	"fmt"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/rtp"
)

// H264 reassembles RTP/H.264 packets (RFC 6184: single NAL unit packets,
// STAP-A, FU-A) into access units, like gortsplib's rtph264.Decoder
// (v4.16.2) but into a reusable buffer: see the package documentation for
// the semantics and for how long the result is valid.
type H264 struct {
	a assembler

	firstPacketReceived bool
	fragmentNextSeqNum  uint16
	annexBMode          bool
	frameTimestamp      uint32
}

// NewH264 returns a decoder for the given SDP packetization-mode (0 or 1;
// gortsplib's format.H264.PacketizationMode).
func NewH264(packetizationMode int) (*H264, error) {
	if packetizationMode >= 2 {
		return nil, fmt.Errorf("PacketizationMode >= 2 is not supported")
	}
	return &H264{}, nil
}

// Decode adds a packet. It returns a complete access unit, valid until the
// next call, or ErrMorePacketsNeeded, ErrNonStartingPacketAndNoPrevious or
// another error (the packet, and sometimes the access unit being built, is
// dropped; decoding goes on with the next packet).
func (d *H264) Decode(pkt *rtp.Packet) ([][]byte, error) {
	a := &d.a
	a.compact()
	if err := d.decodeNALUs(pkt); err != nil {
		return nil, err
	}

	// An access unit also ends when the timestamp changes (some cameras
	// do not use the marker, like the FLIR M400).
	if a.frameLen() > 0 && pkt.Timestamp != d.frameTimestamp {
		from, to := a.split()
		if err := d.addToFrame(pkt.Timestamp); err != nil {
			return nil, err
		}
		return a.output(from, to), nil
	}

	if err := d.addToFrame(pkt.Timestamp); err != nil {
		return nil, err
	}
	if !pkt.Marker {
		return nil, ErrMorePacketsNeeded
	}
	from, to := a.split()
	return a.output(from, to), nil
}

func (d *H264) addToFrame(ts uint32) error {
	if err := d.a.addPending(h264.MaxNALUsPerAccessUnit, h264.MaxAccessUnitSize); err != nil {
		return err
	}
	d.frameTimestamp = ts
	return nil
}

// decodeNALUs appends the packet's NAL units to the buffer (as pending
// spans), or returns an error with the pending spans rolled back.
func (d *H264) decodeNALUs(pkt *rtp.Packet) error {
	a := &d.a
	p := pkt.Payload
	if len(p) < 1 {
		a.resetFragments()
		return errPayloadTooShort
	}

	typ := h264.NALUType(p[0] & 0x1F)

	switch typ {
	case h264.NALUTypeFUA:
		if len(p) < 2 {
			return errFUAInvalidSize
		}
		start := p[1] >> 7
		end := (p[1] >> 6) & 0x01

		if start == 1 {
			a.resetFragments()
			nri := (p[0] >> 5) & 0x03
			a.buf = append(a.buf, (nri<<5)|(p[1]&0x1F))
			a.buf = append(a.buf, p[2:]...)
			a.fragSize = len(p) - 1
			d.fragmentNextSeqNum = pkt.SequenceNumber + 1
			d.firstPacketReceived = true

			// RFC 6184 forbids start and end in one FU, but some cameras
			// (e.g. CostarHD) send small P-frames that way.
			if end != 0 {
				a.addSpan(a.frameEnd, len(a.buf))
				a.fragSize = 0
				break
			}
			return ErrMorePacketsNeeded
		}

		if err := a.continueFU(pkt, 2, &d.fragmentNextSeqNum, d.firstPacketReceived,
			h264.MaxAccessUnitSize, errFUANonStarting); err != nil {
			return err
		}

	case h264.NALUTypeSTAPA:
		a.resetFragments()
		payload := p[1:]
		for {
			if len(payload) < 2 {
				a.rollback()
				return errSTAPAInvalid
			}
			size := int(uint16(payload[0])<<8 | uint16(payload[1]))
			payload = payload[2:]

			if size == 0 {
				// discard padding
				if isAllZero(payload) {
					break
				}
				a.rollback()
				return errSTAPAInvalid
			}
			if size > len(payload) {
				a.rollback()
				return errSTAPAInvalid
			}
			off := len(a.buf)
			a.buf = append(a.buf, payload[:size]...)
			a.addSpan(off, len(a.buf))
			payload = payload[size:]
			if len(payload) == 0 {
				break
			}
		}
		if len(a.spans) == a.frameN {
			return errSTAPANoNALU
		}
		d.firstPacketReceived = true

	case h264.NALUTypeSTAPB, h264.NALUTypeMTAP16, h264.NALUTypeMTAP24, h264.NALUTypeFUB:
		a.resetFragments()
		d.firstPacketReceived = true
		return fmt.Errorf("packet type not supported (%v)", typ)

	default:
		a.resetFragments()
		d.firstPacketReceived = true
		off := len(a.buf)
		a.buf = append(a.buf, p...)
		a.addSpan(off, len(a.buf))
	}

	return d.removeAnnexB()
}

// removeAnnexB splits a packet's only NAL unit at Annex-B start codes,
// once a single NAL unit contained one (some cameras and servers wrap NAL
// units into Annex-B). Like gortsplib, which prepends a start code when
// missing and runs h264.AnnexB.Unmarshal; the split is done in place.
func (d *H264) removeAnnexB() error {
	a := &d.a
	if len(a.spans)-a.frameN != 1 {
		return nil
	}
	sp := a.spans[a.frameN]
	nalu := a.buf[sp.off:sp.end]
	if !d.annexBMode && hasStartCode4(nalu) {
		d.annexBMode = true
	}
	if !d.annexBMode {
		return nil
	}
	if err := checkAnnexB(nalu); err != nil {
		a.rollback()
		return err
	}
	a.spans = a.spans[:a.frameN]
	splitAnnexB(nalu, func(s, e int) { a.addSpan(sp.off+s, sp.off+e) })
	return nil
}

// hasStartCode4 is bytes.Contains(b, 00 00 00 01), searching for the 01
// (rarer than 00 in coded slices, which are full of 00 00 03).
func hasStartCode4(b []byte) bool {
	i := 3
	for i < len(b) {
		j := bytes.IndexByte(b[i:], 1)
		if j < 0 {
			return false
		}
		i += j
		if b[i-1] == 0 && b[i-2] == 0 && b[i-3] == 0 {
			return true
		}
		i++
	}
	return false
}

// checkAnnexB reports the errors of h264.AnnexB.Unmarshal on a buffer that
// starts with a 4-byte start code (gortsplib adds one when missing, which
// adds no NAL unit): access unit too big, or no NAL unit at all.
func checkAnnexB(buf []byte) error {
	n, auSize := 0, 0
	i, start := 0, 0
	for i < len(buf) {
		sc := startCodeAt(buf, i)
		if sc == 0 {
			i++
			continue
		}
		if i > start {
			auSize += i - start
			if auSize > h264.MaxAccessUnitSize {
				return errAUTooBig(auSize, h264.MaxAccessUnitSize)
			}
			n++
		}
		i += sc
		start = i
	}
	if i > start {
		if auSize+i-start > h264.MaxAccessUnitSize {
			return errAUTooBig(auSize+i-start, h264.MaxAccessUnitSize)
		}
		n++
	}
	if n == 0 {
		return h264.ErrAnnexBNoNALUs
	}
	return nil
}

// splitAnnexB calls fn with the bounds of each NAL unit of buf, as
// h264.AnnexB.Unmarshal does, without allocating.
func splitAnnexB(buf []byte, fn func(start, end int)) {
	i, start := 0, 0
	for i < len(buf) {
		sc := startCodeAt(buf, i)
		if sc == 0 {
			i++
			continue
		}
		if i > start {
			fn(start, i)
		}
		i += sc
		start = i
	}
	if i > start {
		fn(start, i)
	}
}

// startCodeAt returns the length of the start code at buf[i:] (3 or 4), or
// 0, with mediacommon's precedence (00 00 01 is checked first).
func startCodeAt(buf []byte, i int) int {
	r := len(buf) - i
	switch {
	case r >= 3 && buf[i] == 0 && buf[i+1] == 0 && buf[i+2] == 1:
		return 3
	case r >= 4 && buf[i] == 0 && buf[i+1] == 0 && buf[i+2] == 0 && buf[i+3] == 1:
		return 4
	}
	return 0
}

func isAllZero(buf []byte) bool {
	for _, b := range buf {
		if b != 0 {
			return false
		}
	}
	return true
}
