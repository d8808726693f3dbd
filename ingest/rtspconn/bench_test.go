package rtspconn

import (
	"bytes"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/conn"
	"github.com/pion/rtp"
)

// BenchmarkReceive: what gortsplib's reader costs per 1.4 KB RTP packet of
// a 4 Mbit/s-like stream — frame parsing and RTP decoding as
// readPacketRTPTCPPlay does them — reading through a Conn without a tap
// (every payload allocated and copied by gortsplib) and with one (payloads
// cut, the whole packet from Tap.Packet).
func BenchmarkReceive(b *testing.B) {
	const packets = 1000
	var s bytes.Buffer
	for i := range packets {
		pkt := make([]byte, 12+1400)
		pkt[0], pkt[1] = 0x80, 96
		binary.BigEndian.PutUint16(pkt[2:], uint16(i))
		binary.BigEndian.PutUint32(pkt[4:], uint32(i/10)*3600)
		pkt[12], pkt[13] = 28, 0x05 // FU-A, middle of a slice
		s.Write([]byte{'$', 0, byte(len(pkt) >> 8), byte(len(pkt))})
		s.Write(pkt)
	}
	stream := s.Bytes()
	for _, tapped := range []bool{false, true} {
		name := "impl=gortsplib"
		if tapped {
			name = "impl=tap"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(stream)))
			var sum int
			for b.Loop() {
				c := NewConn(&chunkConn{data: stream, rnd: rand.New(rand.NewPCG(1, 1))})
				var tp *Tap
				if tapped {
					tp = c.TapRTP(0, H264Prefix)
				}
				cn := conn.NewConn(struct {
					io.Reader
					io.Writer
				}{c, io.Discard})
				for {
					what, err := cn.Read()
					if err != nil {
						break
					}
					fr := what.(*base.InterleavedFrame)
					pkt := &rtp.Packet{} // as gortsplib's decodeRTP
					if err := pkt.Unmarshal(fr.Payload); err != nil {
						b.Fatal(err)
					}
					if tp != nil {
						pkt = tp.Packet(pkt)
					}
					sum += len(pkt.Payload)
				}
			}
			if sum%(packets*1400) != 0 {
				b.Fatalf("%d payload bytes, want a multiple of %d", sum, packets*1400)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*packets), "ns/packet")
		})
	}
}
