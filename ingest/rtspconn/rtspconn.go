// Package rtspconn dials the TCP connections of RTSP clients with a large
// read buffer.
//
// gortsplib reads a connection through a 4 KiB bufio.Reader, so a camera's
// 4 Mbit/s of interleaved RTP costs a read(2) per three packets: 15 KB
// P-frames take five reads and an I-frame dozens, and these syscalls were a
// sixth of the server's CPU at 200 cameras. The connections dialled here
// read up to ReadBufferSize bytes per syscall — whatever the socket holds —
// and serve gortsplib's small reads from memory. Bytes, order and
// deadlines are unchanged; buffered bytes are returned before a deadline
// or an error of the socket is.
package rtspconn

import (
	"bufio"
	"context"
	"net"
)

// ReadBufferSize is the read buffer of a dialled connection: an I-frame of
// a 4 Mbit/s stream arrives in two or three reads.
const ReadBufferSize = 64 << 10

// Dialer dials buffered connections; its zero value is ready to use. Its
// DialContext has the signature of gortsplib.Client.DialContext.
type Dialer struct {
	net.Dialer
}

// DialContext dials address and wraps the connection in a read buffer.
func (d *Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	c, err := d.Dialer.DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	return NewConn(c), nil
}

// Conn is a net.Conn whose reads go through a ReadBufferSize buffer.
type Conn struct {
	net.Conn
	br *bufio.Reader
}

// NewConn wraps c.
func NewConn(c net.Conn) *Conn {
	return &Conn{Conn: c, br: bufio.NewReaderSize(c, ReadBufferSize)}
}

// Read reads from the buffer, refilling it with one read of the socket
// when it is empty (reads of at least ReadBufferSize bytes go straight to
// the socket).
func (c *Conn) Read(p []byte) (int, error) { return c.br.Read(p) }
