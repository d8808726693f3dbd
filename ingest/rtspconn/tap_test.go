package rtspconn

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"reflect"
	"testing"

	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/conn"
	"github.com/pion/rtp"
)

// chunkConn is a net.Conn whose reads return a byte stream in chunks of
// random size.
type chunkConn struct {
	net.Conn
	data []byte
	rnd  *rand.Rand
}

func (c *chunkConn) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), len(c.data), 1+c.rnd.IntN(3000))
	copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

// item is what gortsplib's reader makes of the next part of a stream.
type item struct {
	kind    string // "res", "req", "frame", "rtp"
	ch      int
	msg     any
	payload []byte
	hdr     rtp.Header
	rtpErr  bool
}

// parse reads the stream the way gortsplib's client reader does
// (conn.Conn.Read, 4 KiB bufio), turning the RTP packets of tapped channels
// into whole packets with the tap, each as soon as it is read (like the
// callbacks). It stops at the first error.
func parse(r io.Reader, taps map[int]*Tap) ([]item, error) {
	cn := conn.NewConn(struct {
		io.Reader
		io.Writer
	}{r, io.Discard})
	var out []item
	for {
		what, err := cn.Read()
		if err != nil {
			return out, err
		}
		switch w := what.(type) {
		case *base.Response:
			out = append(out, item{kind: "res", msg: *w})
		case *base.Request:
			out = append(out, item{kind: "req", msg: *w})
		case *base.InterleavedFrame:
			it := item{kind: "frame", ch: w.Channel, payload: bytes.Clone(w.Payload)}
			if w.Channel%2 == 0 { // RTP, as the generated streams use the channels
				tp := taps[w.Channel]
				it.kind = "rtp"
				var pkt rtp.Packet
				if err := pkt.Unmarshal(w.Payload); err != nil {
					it.rtpErr = true
				} else {
					p := &pkt
					if tp != nil {
						p = tp.Packet(p)
					}
					it.hdr, it.payload = p.Header, bytes.Clone(p.Payload)
					it.hdr.CSRC = append([]uint32{}, it.hdr.CSRC...)
					it.hdr.Extensions = nil
				}
			}
			out = append(out, it)
		}
	}
}

// checkSame reads stream directly and through a Conn with taps on the even
// channels 0 and 2, and fails unless both give the same items up to the
// direct read's end or error.
func checkSame(t *testing.T, stream []byte, seed uint64) (shortened uint64) {
	t.Helper()
	want, werr := parse(bytes.NewReader(stream), nil)
	c := NewConn(&chunkConn{data: stream, rnd: rand.New(rand.NewPCG(seed, 1))})
	taps := map[int]*Tap{0: c.TapRTP(0, H264Prefix), 2: c.TapRTP(2, H265Prefix)}
	got, gerr := parse(c, taps)
	if len(got) < len(want) {
		t.Fatalf("through Conn: %d items then %v; directly: %d items then %v", len(got), gerr, len(want), werr)
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			g, w := got[i], want[i]
			g.payload, w.payload = g.payload[:min(len(g.payload), 16)], w.payload[:min(len(w.payload), 16)]
			t.Fatalf("item %d of %d differs (payloads of %d and %d bytes, first 16 shown):\n through Conn %+v\n directly     %+v",
				i, len(want), len(got[i].payload), len(want[i].payload), g, w)
		}
	}
	if len(got) > len(want) {
		t.Fatalf("through Conn: %d items, directly %d then %v", len(got), len(want), werr)
	}
	for _, tp := range taps {
		s, _ := tp.Stats()
		shortened += s
	}
	return shortened
}

// genStream writes a plausible session: responses with and without
// bodies, RTP on channels 0 and 2 (H.264 and H.265 payload shapes, with
// padding and CSRCs now and then), RTCP on 1 and 3, a header extension,
// broken packets, stray bytes, frames larger than the read buffer.
func genStream(rnd *rand.Rand, items int) []byte {
	var b bytes.Buffer
	seq := uint16(rnd.Uint32())
	frame := func(ch int, p []byte) {
		b.Write([]byte{'$', byte(ch), byte(len(p) >> 8), byte(len(p))})
		b.Write(p)
	}
	for i := 0; i < items; i++ {
		switch k := rnd.IntN(20); {
		case k == 0:
			body := bytes.Repeat([]byte("v=0\r\n$\x00\x05RTSP"), rnd.IntN(40))
			fmt.Fprintf(&b, "RTSP/1.0 200 OK\r\nCSeq: %d\r\ncontent-length:   %d\r\nSession: 12345678;timeout=60\r\n\r\n", i, len(body))
			b.Write(body)
		case k == 1:
			fmt.Fprintf(&b, "RTSP/1.0 200 OK\r\nCSeq: %d\r\nPublic: OPTIONS, DESCRIBE\r\n\r\n", i)
		case k == 2:
			fmt.Fprintf(&b, "SET_PARAMETER rtsp://127.0.0.1/cam1 RTSP/1.0\r\nCSeq: %d\r\nContent-Length: 4\r\n\r\n$\x00\x00\x01", i)
		case k == 3:
			b.WriteByte(byte(rnd.IntN(256))) // stray byte
		case k == 4:
			p := make([]byte, 28+rnd.IntN(60))
			p[0], p[1] = 0x81, 200 // RTCP SR
			frame(1+2*rnd.IntN(2), p)
		case k == 5:
			frame(2*rnd.IntN(3), make([]byte, rnd.IntN(14))) // too short for RTP
		case k == 6 && rnd.IntN(10) == 0:
			frame(0, make([]byte, 65535)) // larger than the read buffer with its header
		default:
			ch := 2 * rnd.IntN(3) // 4: not tapped
			cc := 0
			if rnd.IntN(10) == 0 {
				cc = rnd.IntN(3)
			}
			hdr := make([]byte, 12+4*cc)
			hdr[0] = 0x80 | byte(cc)
			hdr[1] = 96
			if rnd.IntN(4) == 0 {
				hdr[1] |= 0x80
			}
			seq++
			binary.BigEndian.PutUint16(hdr[2:], seq)
			binary.BigEndian.PutUint32(hdr[4:], uint32(i/5)*3600)
			binary.BigEndian.PutUint32(hdr[8:], 0x1234)
			payload := make([]byte, 1+rnd.IntN(1400))
			for j := range payload {
				payload[j] = byte(rnd.Uint32())
			}
			switch rnd.IntN(6) {
			case 0:
				payload[0] = 24 // H.264 STAP-A
			case 1:
				payload[0] = 48 << 1 // H.265 AP
			default:
				payload[0] = 28 // H.264 FU-A
			}
			if rnd.IntN(15) == 0 {
				hdr[0] |= 0x10 // extension, RFC 3550 profile
				hdr = append(hdr, 0xab, 0xcd, 0, 1, 1, 2, 3, 4)
			}
			pkt := append(hdr, payload...)
			if rnd.IntN(10) == 0 {
				pad := rnd.IntN(8)
				pkt[0] |= 0x20
				pkt = append(pkt, make([]byte, pad)...)
				pkt = append(pkt, byte(pad+1))
				if rnd.IntN(5) == 0 {
					pkt[len(pkt)-1] = 255 // padding longer than the packet
				}
			}
			frame(ch, pkt)
		}
	}
	return b.Bytes()
}

// TestTapMatchesGortsplib: through a Conn with taps, gortsplib's reader
// sees the same messages and frames, and the callbacks the same RTP
// packets (after Tap.Packet), as reading the stream directly — for
// generated sessions read in chunks of random size.
func TestTapMatchesGortsplib(t *testing.T) {
	var total uint64
	for seed := uint64(1); seed <= 200; seed++ {
		stream := genStream(rand.New(rand.NewPCG(seed, 7)), 400)
		total += checkSame(t, stream, seed)
	}
	if total == 0 {
		t.Fatal("no packet was shortened: the test does not exercise the tap")
	}
	t.Logf("%d packets shortened", total)
}

// TestTapShortensRTP: the frames gortsplib receives for a tapped channel
// are cut to the header and Keep's prefix, and the whole payload comes back
// through Packet — the bytes gortsplib copies shrink accordingly.
func TestTapShortensRTP(t *testing.T) {
	var b bytes.Buffer
	b.WriteString("RTSP/1.0 200 OK\r\nCSeq: 5\r\nContent-Length: 0\r\n\r\n")
	var want [][]byte
	for i := range 50 {
		pkt := make([]byte, 12+1400)
		pkt[0], pkt[1] = 0x80, 96
		binary.BigEndian.PutUint16(pkt[2:], uint16(i))
		pkt[12], pkt[13] = 28, 0x85 // FU-A start of an IDR
		for j := 14; j < len(pkt); j++ {
			pkt[j] = byte(i + j)
		}
		want = append(want, pkt[12:])
		b.Write([]byte{'$', 0, byte(len(pkt) >> 8), byte(len(pkt))})
		b.Write(pkt)
	}
	stream := b.Bytes()
	c := NewConn(&chunkConn{data: bytes.Clone(stream), rnd: rand.New(rand.NewPCG(1, 2))})
	tp := c.TapRTP(0, H264Prefix)
	raw, _ := io.ReadAll(c)
	if wantLen := len(stream) - 50*(1400-2); len(raw) != wantLen {
		t.Errorf("gortsplib would read %d bytes, want %d (frames cut to header + 2 bytes)", len(raw), wantLen)
	}
	c = NewConn(&chunkConn{data: stream, rnd: rand.New(rand.NewPCG(1, 2))})
	tp = c.TapRTP(0, H264Prefix)
	items, err := parse(c, map[int]*Tap{0: tp})
	if err != io.EOF || len(items) != 51 {
		t.Fatalf("%d items, %v", len(items), err)
	}
	for i, it := range items[1:] {
		if !bytes.Equal(it.payload, want[i]) {
			t.Fatalf("packet %d: payload of %d bytes differs from the %d sent", i, len(it.payload), len(want[i]))
		}
	}
	if len(tp.cuts) != 0 {
		t.Errorf("%d packets still remembered after the stream's end", len(tp.cuts))
	}
	if s, w := tp.Stats(); s != 50 || w != 0 {
		t.Errorf("shortened %d, whole %d; want 50, 0", s, w)
	}
}

// FuzzTap: for any byte stream and chunking, reading through a Conn with
// taps gives gortsplib's reader the same items as reading it directly.
func FuzzTap(f *testing.F) {
	for seed := uint64(1); seed <= 8; seed++ {
		f.Add(genStream(rand.New(rand.NewPCG(seed, 9)), 60), seed)
	}
	f.Add([]byte("RTSP/1.0 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n$\x00\x00\x0e\x80\x60\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01\x1c\x85"), uint64(3))
	f.Add([]byte("RTSP/1.0 200 OK\r\n:Content-Length: 2\r\n\r\n$\x00"), uint64(4))
	f.Fuzz(func(t *testing.T, stream []byte, seed uint64) {
		checkSame(t, stream, seed)
	})
}
