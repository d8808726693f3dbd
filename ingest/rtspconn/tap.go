package rtspconn

import (
	"encoding/binary"
	"sync"
	"sync/atomic"

	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/headers"
	"github.com/pion/rtp"
)

// A Tap hands the RTP payloads of one interleaved channel to the caller
// without gortsplib copying them.
//
// For every RTP packet of the channel, Conn returns to gortsplib the same
// packet with its payload cut to the few bytes gortsplib looks at (Keep)
// and remembers where the whole payload is in its own read buffer.
// gortsplib still parses the header and does everything it does with a
// packet — session timeout, loss count, RTCP receiver statistics,
// timestamps — and calls the packet callback, which calls Packet to get the
// whole packet back: its header as gortsplib parsed it, its payload from
// the read buffer. What gortsplib no longer does is allocate and copy ≈1.4
// KB per packet, twice.
//
// The whole payload is valid until the callback returns: gortsplib calls
// the callbacks of a TCP session from the goroutine that reads the
// connection, one frame after the other, and asks the connection for more
// bytes only after it has delivered every whole frame it holds; Conn
// refills its buffer only then. (The shortened frames are returned whole,
// never split across reads, so that this holds.)
//
// Packets the tap does not shorten reach the callback as gortsplib made
// them, and Packet returns them unchanged: packets with a header
// extension, packets gortsplib would reject (too short, bad padding),
// payloads not longer than Keep's prefix, frames larger than the read
// buffer, and every packet once Conn has lost the stream (stream.go).
type Tap struct {
	keep func(payload []byte) int

	mu   sync.Mutex
	cuts []cut      // packets shortened since the last Read, in order
	next int        // cuts[:next] are resolved or dropped
	pkt  rtp.Packet // returned by Packet

	shortened, whole atomic.Uint64
}

// cut is a packet returned shortened.
type cut struct {
	seq     uint16
	ts      uint32
	ssrc    uint32
	padded  bool // the P bit, cleared in the short packet
	padding byte
	payload []byte // in Conn's buffer, without padding
}

// TapRTP sets a tap on the RTP packets of an interleaved channel (gortsplib
// uses the SETUP response's Transport interleaved=RTP-RTCP pair). keep
// returns how many leading payload bytes gortsplib must still see of a
// payload (H264Prefix, H265Prefix). Set it before PLAY.
func (c *Conn) TapRTP(channel int, keep func(payload []byte) int) *Tap {
	t := &Tap{keep: keep}
	var taps []*Tap
	if old := c.taps.Load(); old != nil {
		taps = append(taps, *old...)
	}
	for len(taps) <= channel {
		taps = append(taps, nil)
	}
	taps[channel] = t
	c.taps.Store(&taps)
	return t
}

// TapSetup sets a tap on the RTP channel of the media a SETUP response
// is for, on the connection d dialled last, when the session is interleaved
// (the response's Transport header has interleaved=RTP-RTCP, which
// gortsplib uses); nil otherwise (UDP).
func (d *Dialer) TapSetup(setup *base.Response, keep func(payload []byte) int) *Tap {
	var th headers.Transport
	c := d.Last()
	if c == nil || setup == nil || th.Unmarshal(setup.Header["Transport"]) != nil || th.InterleavedIDs == nil {
		return nil
	}
	return c.TapRTP(th.InterleavedIDs[0], keep)
}

func (c *Conn) tap(ch byte) *Tap {
	taps := c.taps.Load()
	if taps == nil || c.pos.state == lost || int(ch) >= len(*taps) {
		return nil
	}
	return (*taps)[ch]
}

func (c *Conn) resetTaps() {
	taps := c.taps.Load()
	if taps == nil {
		return
	}
	for _, t := range *taps {
		if t != nil {
			t.mu.Lock()
			t.cuts, t.next = t.cuts[:0], 0
			t.mu.Unlock()
		}
	}
}

// cut writes into dst the interleaved frame of channel ch carrying pkt with
// its payload shortened, and remembers the payload. ok is false when the
// packet is to pass whole, room false when dst is too small for it.
func (t *Tap) cut(ch byte, pkt, dst []byte) (n int, ok, room bool) {
	// The checks of pion/rtp's Packet.Unmarshal, which gortsplib uses: a
	// packet it would reject passes whole, for gortsplib to report.
	if len(pkt) < 12 || pkt[0]&0x10 != 0 { // too short; header extension
		t.whole.Add(1)
		return 0, false, true
	}
	hdr := 12 + 4*int(pkt[0]&0x0f)
	end := len(pkt)
	var pad byte
	if pkt[0]&0x20 != 0 {
		if end <= hdr {
			t.whole.Add(1)
			return 0, false, true
		}
		pad = pkt[end-1]
		end -= int(pad)
	}
	if end < hdr {
		t.whole.Add(1)
		return 0, false, true
	}
	payload := pkt[hdr:end]
	keep := t.keep(payload)
	if keep >= len(payload) {
		t.whole.Add(1)
		return 0, false, true
	}
	size := hdr + keep
	if len(dst) < 4+size {
		return 0, false, false
	}
	dst[0], dst[1] = '$', ch
	binary.BigEndian.PutUint16(dst[2:], uint16(size))
	copy(dst[4:], pkt[:hdr])
	dst[4] &^= 0x20 // no padding in the short packet
	copy(dst[4+hdr:], payload[:keep])
	t.mu.Lock()
	t.cuts = append(t.cuts, cut{
		seq:     binary.BigEndian.Uint16(pkt[2:]),
		ts:      binary.BigEndian.Uint32(pkt[4:]),
		ssrc:    binary.BigEndian.Uint32(pkt[8:]),
		padded:  pkt[0]&0x20 != 0,
		padding: pad,
		payload: payload,
	})
	t.mu.Unlock()
	t.shortened.Add(1)
	return 4 + size, true, true
}

// Packet returns pkt whole: pkt itself when the tap did not shorten it,
// otherwise a packet with pkt's header and the whole payload, valid until
// the callback returns (and the next call of Packet).
func (t *Tap) Packet(pkt *rtp.Packet) *rtp.Packet {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := t.next; i < len(t.cuts); i++ {
		c := &t.cuts[i]
		if c.seq != pkt.SequenceNumber || c.ts != pkt.Timestamp || c.ssrc != pkt.SSRC {
			continue
		}
		t.next = i + 1 // earlier cuts are packets gortsplib dropped (decode errors)
		t.pkt.Header = pkt.Header
		t.pkt.Header.Padding = c.padded
		t.pkt.Header.PaddingSize = c.padding
		t.pkt.PaddingSize = c.padding
		t.pkt.Payload = c.payload
		return &t.pkt
	}
	return pkt
}

// Stats returns the packets shortened and the tapped channel's packets
// passed whole.
func (t *Tap) Stats() (shortened, whole uint64) { return t.shortened.Load(), t.whole.Load() }

// PrefixFor returns the Keep for a video format (H264Prefix, H265Prefix),
// nil for any other format, which is not tapped.
func PrefixFor(f format.Format) func(payload []byte) int {
	switch f.(type) {
	case *format.H264:
		return H264Prefix
	case *format.H265:
		return H265Prefix
	}
	return nil
}

// H264Prefix is a Keep for H.264 (RFC 6184): the payload bytes gortsplib's
// format.H264.PTSEqualsDTS reads — the NAL unit header, and the FU header
// of an FU-A — and every byte of an aggregation packet (STAP/MTAP), which
// it walks.
func H264Prefix(payload []byte) int {
	if len(payload) == 0 {
		return 0
	}
	switch payload[0] & 0x1f {
	case 24, 25, 26, 27: // STAP-A, STAP-B, MTAP16, MTAP24
		return len(payload)
	}
	return 2
}

// H265Prefix is a Keep for H.265 (RFC 7798): the two-byte NAL unit header
// and an FU's FU header, and every byte of an aggregation packet or PACI.
func H265Prefix(payload []byte) int {
	if len(payload) == 0 {
		return 0
	}
	switch (payload[0] >> 1) & 0x3f {
	case 48, 50: // AP, PACI
		return len(payload)
	}
	return 3
}
