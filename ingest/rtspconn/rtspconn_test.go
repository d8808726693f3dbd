package rtspconn

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"
)

// countingConn counts the reads that reach the socket.
type countingConn struct {
	net.Conn
	reads atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	c.reads.Add(1)
	return c.Conn.Read(p)
}

// TestSmallReads: a stream written in bursts arrives intact, byte for
// byte, through 4 KiB reads (gortsplib's), with far fewer socket reads than
// 4 KiB reads.
func TestSmallReads(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	want := make([]byte, 2<<20)
	for i := range want {
		want[i] = byte(i*7 + i>>11)
	}
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		for off := 0; off < len(want); off += 60 << 10 { // bursts, like frames
			c.Write(want[off:min(off+60<<10, len(want))])
			time.Sleep(time.Millisecond)
		}
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	cc := &countingConn{Conn: raw}
	c := NewConn(cc)
	defer c.Close()
	var got bytes.Buffer
	buf := make([]byte, 4096)
	small := 0
	for {
		n, err := c.Read(buf)
		got.Write(buf[:n])
		small++
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("read %d bytes, content differs from the %d written", got.Len(), len(want))
	}
	if r := cc.reads.Load(); r*4 > int64(small) {
		t.Errorf("%d socket reads for %d 4 KiB reads: not buffered", r, small)
	}
	t.Logf("%d 4 KiB reads, %d socket reads", small, cc.reads.Load())
}

// TestDeadline: a read deadline still interrupts a read that waits on the
// socket, and the connection dialled by Dialer is buffered.
func TestDeadline(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.Write([]byte("RTSP/1.0 200 OK\r\n\r\n"))
			time.Sleep(2 * time.Second)
			c.Close()
		}
	}()
	var d Dialer
	c, err := d.DialContext(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := c.(*Conn); !ok {
		t.Fatalf("dialled %T, want *Conn", c)
	}
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	b := make([]byte, 64)
	n, err := c.Read(b)
	if err != nil || string(b[:n]) != "RTSP/1.0 200 OK\r\n\r\n" {
		t.Fatalf("first read %q, %v", b[:n], err)
	}
	start := time.Now()
	if _, err := c.Read(b); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v, want a deadline error", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("deadline honoured after %v", took)
	}
}
