// Package rtspconn dials the TCP connections of RTSP clients with a large
// read buffer, and can hand the RTP payloads of chosen interleaved channels
// to the caller without gortsplib copying them.
//
// gortsplib reads a connection through a 4 KiB bufio.Reader, so a camera's
// 4 Mbit/s of interleaved RTP costs a read(2) per three packets: 15 KB
// P-frames take five reads and an I-frame dozens, and these syscalls were a
// sixth of the server's CPU at 200 cameras. The connections dialled here
// read up to ReadBufferSize bytes per syscall — whatever the socket holds —
// and serve gortsplib's small reads from memory. Buffered bytes are
// returned before a deadline or an error of the socket is.
//
// gortsplib then copies every interleaved frame into a new slice (an
// allocation of ≈1.4 KB per packet, and the garbage collection behind it)
// and into its own buffer on the way. A Tap (tap.go) avoids both for the
// channels it is set on: see there.
package rtspconn

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
)

// ReadBufferSize is the read buffer of a dialled connection: an I-frame of
// a 4 Mbit/s stream arrives in two or three reads.
const ReadBufferSize = 64 << 10

// Dialer dials buffered connections; its zero value is ready to use. Its
// DialContext has the signature of gortsplib.Client.DialContext.
type Dialer struct {
	net.Dialer

	mu   sync.Mutex
	last *Conn
}

// DialContext dials address and wraps the connection in a read buffer.
func (d *Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	c, err := d.Dialer.DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	bc := NewConn(c)
	d.mu.Lock()
	d.last = bc
	d.mu.Unlock()
	return bc, nil
}

// Last returns the connection dialled last, nil before the first dial. A
// gortsplib client dials one connection per session (TCP transport).
func (d *Dialer) Last() *Conn {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.last
}

// Conn is a net.Conn whose reads go through a ReadBufferSize buffer. It
// follows the RTSP stream it carries (stream.go) so that it can shorten the
// RTP packets of tapped channels.
type Conn struct {
	net.Conn

	buf  []byte
	r, w int   // buf[r:w] is read from the socket, not yet returned
	err  error // the socket's error, returned once buf[r:w] is

	pos  position               // where buf[r] is in the RTSP stream
	taps atomic.Pointer[[]*Tap] // copy on write: set by TapRTP, read by Read
}

// NewConn wraps c.
func NewConn(c net.Conn) *Conn {
	return &Conn{Conn: c, buf: make([]byte, ReadBufferSize)}
}

// Read returns the stream's bytes, refilling the buffer with one read of
// the socket when it holds nothing Read can return yet. A tapped channel's
// RTP packets come out shortened (tap.go).
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	// gortsplib asks for bytes only once it has parsed, and delivered to
	// the callbacks, every whole frame returned before: what the taps hold
	// from earlier reads is stale, and buf may be refilled.
	c.resetTaps()
	for {
		if n := c.produce(p); n > 0 {
			return n, nil
		}
		if c.err != nil { // produce returns everything once the socket failed
			err := c.err
			c.err = nil // like bufio: a deadline error is not sticky
			return 0, err
		}
		c.fill()
	}
}

// fill moves the unreturned bytes to the front of buf and reads the socket
// once behind them.
func (c *Conn) fill() {
	if c.r > 0 {
		c.w = copy(c.buf, c.buf[c.r:c.w])
		c.r = 0
	}
	n, err := c.Conn.Read(c.buf[c.w:])
	c.w += n
	c.err = err
}
