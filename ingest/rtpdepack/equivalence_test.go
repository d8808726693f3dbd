package rtpdepack

import (
	"math/rand/v2"
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/pion/rtp"

	"xueliang/ingest/segmenter/segmentertest"
)

// impairment describes what happens to a packet sequence on its way, each
// a probability per packet.
type impairment struct {
	drop, dup, swap, noMarker, corrupt float64
	// joinLate starts the sequence at a random packet of its first
	// third, as when joining a running stream.
	joinLate bool
}

// impair returns a damaged copy of pkts; the original packets and
// payloads are never modified.
func impair(r *rand.Rand, pkts []*rtp.Packet, m impairment, h265 bool) []*rtp.Packet {
	out := make([]*rtp.Packet, 0, len(pkts)+len(pkts)/10)
	if m.joinLate {
		pkts = pkts[r.IntN(len(pkts)/3+1):]
	}
	for _, p := range pkts {
		switch {
		case r.Float64() < m.drop:
			continue
		case r.Float64() < m.dup:
			out = append(out, p, p)
			continue
		}
		if r.Float64() < m.noMarker && p.Marker {
			c := *p
			c.Marker = false
			p = &c
		}
		if r.Float64() < m.corrupt {
			p = corrupt(r, p, h265)
		}
		out = append(out, p)
		if n := len(out); n >= 2 && r.Float64() < m.swap {
			out[n-1], out[n-2] = out[n-2], out[n-1]
		}
	}
	return out
}

// corrupt returns a copy of p with a damaged payload: truncated, a byte
// flipped, or a different (often unsupported) packet type.
func corrupt(r *rand.Rand, p *rtp.Packet, h265 bool) *rtp.Packet {
	c := *p
	pl := append([]byte(nil), p.Payload...)
	switch r.IntN(4) {
	case 0:
		pl = pl[:r.IntN(min(len(pl), 4)+1)]
	case 1:
		if len(pl) > 0 {
			pl[r.IntN(len(pl))] ^= byte(1 + r.IntN(255))
		}
	case 2:
		if len(pl) > 2 {
			pl[2+r.IntN(len(pl)-2)] = 0 // may break a STAP-A/AP length
		}
	case 3:
		if len(pl) > 0 {
			if h265 {
				typ := []byte{48, 49, 50, 1, 19, 32}[r.IntN(6)]
				pl[0] = pl[0]&0b10000001 | typ<<1
			} else {
				typ := []byte{24, 25, 26, 27, 28, 29, 0, 30, 31}[r.IntN(9)]
				pl[0] = pl[0]&0xe0 | typ
			}
		}
	}
	c.Payload = pl
	return &c
}

// annexBAUs wraps each AU into a single Annex-B "NAL unit", as some
// cameras and servers send them; gortsplib's encoder then carries it as a
// single NAL unit packet or FU-A (the leading zero byte is a valid FU-A
// header: type 0, NRI 0).
func annexBAUs(t testing.TB, aus []segmentertest.AU) []segmentertest.AU {
	t.Helper()
	out := make([]segmentertest.AU, len(aus))
	for i, au := range aus {
		b, err := h264.AnnexB(au.NALUs).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		out[i] = au
		out[i].NALUs = [][]byte{b}
	}
	return out
}

// kindsOf counts the packet kinds of a sequence (for coverage).
func kindsOf(pkts []*rtp.Packet, isH265 bool) map[string]int {
	k := map[string]int{}
	for _, p := range pkts {
		if len(p.Payload) < 3 {
			k["short"]++
			continue
		}
		if isH265 {
			switch h265.NALUType((p.Payload[0] >> 1) & 0x3f) {
			case h265.NALUType_AggregationUnit:
				k["AP"]++
			case h265.NALUType_FragmentationUnit:
				switch {
				case p.Payload[2]&0x80 != 0:
					k["FU-start"]++
				case p.Payload[2]&0x40 != 0:
					k["FU-end"]++
				default:
					k["FU-middle"]++
				}
			default:
				k["single"]++
			}
			continue
		}
		switch h264.NALUType(p.Payload[0] & 0x1f) {
		case h264.NALUTypeSTAPA:
			k["STAP-A"]++
		case h264.NALUTypeFUA:
			switch {
			case p.Payload[1]&0x80 != 0:
				k["FU-start"]++
			case p.Payload[1]&0x40 != 0:
				k["FU-end"]++
			default:
				k["FU-middle"]++
			}
		default:
			k["single"]++
		}
	}
	return k
}

// TestMatchesGortsplib feeds real streams, packetised by gortsplib's
// encoder with several payload sizes and then damaged, to gortsplib's
// decoder and to ours: every call must give the same outcome (access unit,
// "more packets needed", "non-starting packet", or the same error) and
// the same NAL units.
func TestMatchesGortsplib(t *testing.T) {
	type clipCase struct {
		name string
		h265 bool
		load func(t testing.TB) *segmentertest.Clip
	}
	clips := []clipCase{
		{"h264/320x240", false, func(t testing.TB) *segmentertest.Clip {
			return loadClip(t, "h264_320x240_25fps_gop50_b0_none_10s.ts", segmentertest.ClipOptions{Seconds: 4, GOP: 50})
		}},
		{"h264/320x240/bframes", false, func(t testing.TB) *segmentertest.Clip {
			return loadClip(t, "h264_320x240_25fps_gop50_b2_none_10s.ts", segmentertest.ClipOptions{Seconds: 4, GOP: 50, BFrames: 2})
		}},
		{"h264/1080p", false, func(t testing.TB) *segmentertest.Clip { return clip1080(t, false) }},
		{"h265/320x240", true, func(t testing.TB) *segmentertest.Clip {
			return loadClip(t, "h265_320x240_25fps_gop50_b0_none_10s.ts", segmentertest.ClipOptions{H265: true, Seconds: 4, GOP: 50})
		}},
		{"h265/1080p", true, func(t testing.TB) *segmentertest.Clip { return clip1080(t, true) }},
	}
	impairments := []struct {
		name string
		m    impairment
	}{
		{"clean", impairment{}},
		{"joined-late", impairment{joinLate: true}},
		{"lossy", impairment{drop: 0.02, dup: 0.01, swap: 0.01}},
		{"no-markers", impairment{noMarker: 1}},
		{"some-markers-lost", impairment{noMarker: 0.2, drop: 0.005}},
		{"hostile", impairment{drop: 0.03, dup: 0.03, swap: 0.03, noMarker: 0.05, corrupt: 0.05, joinLate: true}},
	}
	payloadSizes := []int{60, 200, 1000, 1450, 9000, 60000}

	for _, cc := range clips {
		t.Run(cc.name, func(t *testing.T) {
			t.Parallel()
			clip := cc.load(t)
			aus := clip.Video()
			streams := map[string][]segmentertest.AU{"plain": aus}
			if !cc.h265 {
				streams["annexb"] = annexBAUs(t, aus)
				// plain at first, Annex-B from the middle on
				mixed := append(append([]segmentertest.AU(nil), aus[:len(aus)/2]...), annexBAUs(t, aus[len(aus)/2:])...)
				streams["plain-then-annexb"] = mixed
			}
			kinds := map[string]int{}
			outcomes := map[string]int{}
			seed := uint64(1)
			for sname, saus := range streams {
				for _, size := range payloadSizes {
					pkts := packetize(t, cc.h265, size, saus)
					for k, n := range kindsOf(pkts, cc.h265) {
						kinds[k] += n
					}
					for _, im := range impairments {
						seed++
						r := rand.New(rand.NewPCG(seed, 7))
						in := impair(r, pkts, im.m, cc.h265)
						p := newPair(t, cc.h265)
						for i, pkt := range in {
							class, diff := p.step(pkt)
							outcomes[class]++
							if diff != "" {
								t.Fatalf("stream %s, payload max %d, %s: packet %d of %d (seq %d, ts %d, marker %v, %d bytes): %s",
									sname, size, im.name, i, len(in), pkt.SequenceNumber, pkt.Timestamp, pkt.Marker, len(pkt.Payload), diff)
							}
						}
					}
				}
			}
			t.Logf("packet kinds %v; outcomes %v", kinds, outcomes)
			want := []string{"single", "FU-start", "FU-middle", "FU-end", "STAP-A"}
			if cc.h265 {
				want[4] = "AP"
			}
			for _, k := range want {
				if kinds[k] == 0 {
					t.Errorf("no %s packet in the test streams", k)
				}
			}
			for _, o := range []string{outAU, outMore, outNonStarting, outError} {
				if outcomes[o] == 0 {
					t.Errorf("outcome %q never happened", o)
				}
			}
		})
	}
}

// TestMatchesGortsplibLimits checks the limits against gortsplib: a NAL
// unit and an access unit over the maximum size, too many NAL units in an
// access unit (over several packets and in one STAP-A/AP), and recovery
// afterwards.
func TestMatchesGortsplibLimits(t *testing.T) {
	for _, h265 := range []bool{false, true} {
		name := "h264"
		if h265 {
			name = "h265"
		}
		t.Run(name, func(t *testing.T) {
			var pkts []*rtp.Packet
			seq := uint16(100)
			add := func(payload []byte, marker bool, ts uint32) {
				pkts = append(pkts, &rtp.Packet{Header: rtp.Header{SequenceNumber: seq, Timestamp: ts, Marker: marker}, Payload: payload})
				seq++
			}
			single := func(n int) []byte {
				b := make([]byte, n)
				if h265 {
					b[0], b[1] = 1<<1, 1
				} else {
					b[0] = 0x41
				}
				for i := 2; i < n; i++ {
					b[i] = byte(i)
				}
				return b
			}
			fu := func(start, end bool, n int) []byte {
				var hdr []byte
				if h265 {
					hdr = []byte{49 << 1, 1, 1}
				} else {
					hdr = []byte{0x40 | 28, 5}
				}
				if start {
					hdr[len(hdr)-1] |= 0x80
				}
				if end {
					hdr[len(hdr)-1] |= 0x40
				}
				b := make([]byte, len(hdr)+n)
				copy(b, hdr)
				for i := len(hdr); i < len(b); i++ {
					b[i] = byte(i * 7)
				}
				return b
			}
			agg := func(count, size int) []byte {
				var b []byte
				if h265 {
					b = []byte{48 << 1, 1}
				} else {
					b = []byte{24}
				}
				for range count {
					b = append(b, byte(size>>8), byte(size))
					b = append(b, single(size)...)
				}
				return b
			}
			ts := uint32(0)
			// A NAL unit over the maximum size: 8 MiB in 60 KB fragments.
			add(fu(true, false, 60000), false, ts)
			for range 8*1024*1024/60000 + 2 {
				add(fu(false, false, 60000), false, ts)
			}
			add(fu(false, true, 100), true, ts)
			ts += 3000
			// An access unit over the maximum size: 150 NAL units of 60 KB.
			for i := range 150 {
				add(single(60000), i == 149, ts)
			}
			ts += 3000
			// Too many NAL units, one per packet, then in one aggregation.
			for i := range 30 {
				add(single(10), i == 29, ts)
			}
			ts += 3000
			add(agg(30, 5), true, ts)
			ts += 3000
			add(agg(10, 5), false, ts)
			add(agg(10, 5), false, ts)
			add(agg(10, 5), true, ts)
			ts += 3000
			// Recovery.
			add(agg(3, 20), false, ts)
			add(fu(true, false, 3000), false, ts)
			add(fu(false, true, 3000), true, ts)

			p := newPair(t, h265)
			outcomes := map[string]int{}
			for i, pkt := range pkts {
				class, diff := p.step(pkt)
				outcomes[class]++
				if diff != "" {
					t.Fatalf("packet %d: %s", i, diff)
				}
			}
			if outcomes[outError] < 4 || outcomes[outAU] < 1 {
				t.Errorf("outcomes %v: want at least 4 errors and the final AU", outcomes)
			}
			// The buffer is bounded by two maximum-size access units, and
			// given back once the large access units are gone.
			own := p.own.(interface{ buffer() *assembler }).buffer()
			if c := cap(own.buf); c > 2*h264.MaxAccessUnitSize+3*65536 {
				t.Errorf("buffer capacity %d", c)
			}
			ts += 3000
			add(single(100), true, ts)
			if _, diff := p.step(pkts[len(pkts)-1]); diff != "" {
				t.Fatal(diff)
			}
			if c := cap(own.buf); c > keepBufferMax {
				t.Errorf("buffer capacity %d after the large access units", c)
			}
		})
	}
}

// TestNoAllocs checks that a real stream, once the buffers have grown,
// is decoded without allocating.
func TestNoAllocs(t *testing.T) {
	for _, h265 := range []bool{false, true} {
		name := "h264"
		if h265 {
			name = "h265"
		}
		t.Run(name, func(t *testing.T) {
			var aus []segmentertest.AU
			if h265 {
				aus = loadClip(t, "h265_320x240_25fps_gop50_b0_none_10s.ts", segmentertest.ClipOptions{H265: true, Seconds: 4, GOP: 50}).Video()
			} else {
				aus = loadClip(t, "h264_320x240_25fps_gop50_b0_none_10s.ts", segmentertest.ClipOptions{Seconds: 4, GOP: 50}).Video()
			}
			for _, size := range []int{200, 1450} {
				pkts := packetize(t, h265, size, aus)
				var d decoder
				if h265 {
					d, _ = NewH265(0)
				} else {
					d, _ = NewH264(1)
				}
				n := 0
				run := func() {
					for _, p := range pkts {
						if au, err := d.Decode(p); err == nil {
							n += len(au)
						}
					}
				}
				run() // grow the buffers
				if a := testing.AllocsPerRun(3, run); a != 0 {
					t.Errorf("payload max %d: %v allocations per pass over %d packets", size, a, len(pkts))
				}
				if n == 0 {
					t.Fatal("no access unit decoded")
				}
			}
		})
	}
}

func (d *H264) buffer() *assembler { return &d.a }
func (d *H265) buffer() *assembler { return &d.a }
