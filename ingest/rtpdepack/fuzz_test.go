package rtpdepack

import (
	"bytes"
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/pion/rtp"
)

// fuzzPackets turns fuzz input into a packet sequence. Each packet is a
// control byte, a length byte and that many payload bytes. Control bits:
// 0 marker; 1 timestamp +3000; 2 sequence number unchanged (duplicate);
// 3 sequence number +2 (a loss); 4–7 repeat the packet 1–15 extra times
// with the sequence number advancing (long fragmented NAL units, many NAL
// units in one access unit).
func fuzzPackets(data []byte) []*rtp.Packet {
	var out []*rtp.Packet
	seq, ts := uint16(65530), uint32(1<<32-6000) // both wrap
	for len(data) >= 2 {
		ctl, n := data[0], int(data[1])
		data = data[2:]
		n = min(n, len(data))
		payload := data[:n]
		data = data[n:]
		for range 1 + int(ctl>>4) {
			switch {
			case ctl&4 != 0:
			case ctl&8 != 0:
				seq += 2
			default:
				seq++
			}
			if ctl&2 != 0 {
				ts += 3000
			}
			out = append(out, &rtp.Packet{
				Header:  rtp.Header{SequenceNumber: seq, Timestamp: ts, Marker: ctl&1 != 0},
				Payload: payload,
			})
		}
	}
	return out
}

// fuzzSeed encodes packets for fuzzPackets (control, payload).
func fuzzSeed(pkts ...[]byte) []byte {
	var b []byte
	for i := 0; i+1 < len(pkts); i += 2 {
		b = append(b, pkts[i][0], byte(len(pkts[i+1])))
		b = append(b, pkts[i+1]...)
	}
	return b
}

func fuzzDecoder(t *testing.T, isH265 bool, data []byte) {
	p := newPair(t, isH265)
	maxNALUs, maxSize := h264.MaxNALUsPerAccessUnit, h264.MaxAccessUnitSize
	if isH265 {
		maxNALUs, maxSize = h265.MaxNALUsPerAccessUnit, h265.MaxAccessUnitSize
	}
	own := p.own.(interface{ buffer() *assembler }).buffer()
	for i, pkt := range fuzzPackets(data) {
		// A panic (ours or gortsplib's) fails the test; so does any
		// difference from gortsplib.
		_, diff := p.step(pkt)
		if diff != "" {
			t.Fatalf("packet %d (seq %d, ts %d, marker %v, payload %x): %s",
				i, pkt.SequenceNumber, pkt.Timestamp, pkt.Marker, pkt.Payload, diff)
		}
		if n := len(own.out); n > maxNALUs {
			t.Fatalf("access unit of %d NAL units", n)
		}
		size := 0
		for _, n := range own.out {
			if len(n) == 0 {
				t.Fatal("empty NAL unit")
			}
			size += len(n)
		}
		if size > maxSize {
			t.Fatalf("access unit of %d bytes", size)
		}
		if len(own.buf) > 2*maxSize+2*256 {
			t.Fatalf("buffer of %d bytes", len(own.buf))
		}
	}
}

// FuzzH264 feeds arbitrary packet sequences to our H.264 decoder and to
// gortsplib's: ours must never panic or exceed the limits, and must give
// the same result as gortsplib for every packet.
func FuzzH264(f *testing.F) {
	sps := []byte{0x67, 0x42, 0xc0, 0x28, 0xd9, 0x00, 0x78, 0x02, 0x27, 0xe5, 0x84, 0x00}
	pps := []byte{0x68, 0xcb, 0x83, 0xcb, 0x20}
	idr := []byte{0x65, 0x88, 0x84, 0x00, 0x33, 0xff}
	stapA := append([]byte{24, 0, byte(len(sps))}, sps...)
	stapA = append(append(stapA, 0, byte(len(pps))), pps...)
	m, c, ts := []byte{1}, []byte{0}, []byte{3}
	f.Add(fuzzSeed(m, idr))
	f.Add(fuzzSeed(c, stapA, m, idr))
	f.Add(fuzzSeed(c, append(stapA, 0, 0, 0)))                                                       // STAP-A padding
	f.Add(fuzzSeed(c, []byte{24, 0, 0, 1}))                                                          // STAP-A bad padding
	f.Add(fuzzSeed(c, []byte{0x7c, 0x85, 1, 2}, c, []byte{0x7c, 0x05, 3}, m, []byte{0x7c, 0x45, 4})) // FU-A
	f.Add(fuzzSeed(m, []byte{0x7c, 0xc5, 1, 2}))                                                     // FU-A start and end
	f.Add(fuzzSeed(c, []byte{0x7c, 0x05, 3}, m, []byte{0x7c, 0x45, 4}))                              // non-starting
	f.Add(fuzzSeed([]byte{8}, []byte{0x7c, 0x85, 1}, m, []byte{0x7c, 0x45, 4}))                      // gap
	f.Add(fuzzSeed(c, idr, ts, idr, m, idr))                                                         // timestamp split
	f.Add(fuzzSeed(m, []byte{0, 0, 0, 1, 0x67, 1, 0, 0, 1, 0x68, 2}, m, idr, m, []byte{0x65, 0, 0, 1, 0x41}))
	f.Add(fuzzSeed(m, []byte{0, 0, 0, 1}, m, []byte{0, 0, 1, 0, 0, 0, 1}))
	f.Add(fuzzSeed([]byte{0xf0}, idr, []byte{0xf0}, idr, m, idr)) // too many NAL units
	f.Add(fuzzSeed(m, []byte{25, 1}, m, []byte{26, 1}, m, []byte{27}, m, []byte{29, 1}, m, []byte{}))
	f.Fuzz(func(t *testing.T, data []byte) { fuzzDecoder(t, false, data) })
}

// FuzzH265 is FuzzH264 for H.265.
func FuzzH265(f *testing.F) {
	vps := []byte{0x40, 0x01, 0x0c, 0x01, 0xff, 0xff}
	sps := []byte{0x42, 0x01, 0x01, 0x01, 0x60, 0x00}
	idr := []byte{0x26, 0x01, 0xaf, 0x08, 0x40}
	ap := append([]byte{48 << 1, 1, 0, byte(len(vps))}, vps...)
	ap = append(append(ap, 0, byte(len(sps))), sps...)
	m, c := []byte{1}, []byte{0}
	f.Add(fuzzSeed(m, idr))
	f.Add(fuzzSeed(c, ap, m, idr))
	f.Add(fuzzSeed(c, append(ap, 0, 0)))                                                             // AP zero size
	f.Add(fuzzSeed(c, []byte{98, 1, 0x93, 1}, c, []byte{98, 1, 0x13, 2}, m, []byte{98, 1, 0x53, 3})) // FU
	f.Add(fuzzSeed(m, []byte{98, 1, 0xd3, 1}))                                                       // FU start and end
	f.Add(fuzzSeed(c, []byte{98, 1, 0x13, 2}, m, []byte{98, 1, 0x53, 3}))                            // non-starting
	f.Add(fuzzSeed([]byte{8}, []byte{98, 1, 0x93, 1}, m, []byte{98, 1, 0x53, 3}))                    // gap
	f.Add(fuzzSeed(m, []byte{100, 1, 0}, m, []byte{1}, m, []byte{98, 1}))                            // PACI, short
	f.Add(fuzzSeed([]byte{0xf0}, idr, []byte{0xf0}, idr, m, idr))                                    // too many NAL units
	f.Fuzz(func(t *testing.T, data []byte) { fuzzDecoder(t, true, data) })
}

// FuzzHasStartCode4 checks hasStartCode4 against bytes.Contains.
func FuzzHasStartCode4(f *testing.F) {
	for _, s := range [][]byte{{}, {0, 0, 0, 1}, {1, 0, 0, 0, 1}, {0, 0, 1}, {0, 0, 0, 0, 1, 5}, {1}, {0, 1, 0, 0, 0, 1}} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := hasStartCode4(b), bytes.Contains(b, []byte{0, 0, 0, 1}); got != want {
			t.Fatalf("hasStartCode4(%x) = %v, want %v", b, got, want)
		}
	})
}
