package main

import (
	"net"
	"sync"
	"time"
)

// In load-generator mode camsim writes hundreds of streams; gortsplib
// writes every interleaved RTP packet (≈1.4 KB) with its own write(2), which
// made the generator cost as much CPU as the server it feeds. batchListener
// hands gortsplib connections that collect interleaved frames for up to
// batchDelay (or batchSize bytes) and write them together. RTSP messages
// (anything not starting with '$') flush what is collected and go out at
// once, in order. The stream's bytes and pacing (frames leave every 40 ms,
// a few milliseconds later at most) are unchanged; only the number of
// syscalls drops. Not used outside -loadgen, so the fault-injecting camera
// keeps per-packet timing.
const (
	batchDelay = 2 * time.Millisecond
	batchSize  = 64 << 10
)

type batchListener struct{ net.Listener }

func (l batchListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &batchConn{Conn: c}, nil
}

// batchConn is a net.Conn whose interleaved-frame writes are batched.
type batchConn struct {
	net.Conn
	mu      sync.Mutex
	buf     []byte
	timer   *time.Timer
	pending bool  // timer armed
	err     error // a failed batched write, returned by the next Write
}

func (c *batchConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	if len(p) == 0 || p[0] != '$' || len(p) > batchSize {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
		return c.Conn.Write(p)
	}
	if len(c.buf)+len(p) > batchSize {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
	}
	if c.buf == nil {
		c.buf = make([]byte, 0, batchSize)
	}
	c.buf = append(c.buf, p...)
	if !c.pending {
		c.pending = true
		if c.timer == nil {
			c.timer = time.AfterFunc(batchDelay, c.flushTimer)
		} else {
			c.timer.Reset(batchDelay)
		}
	}
	return len(p), nil
}

func (c *batchConn) flushTimer() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pending = false
	if c.err == nil {
		c.err = c.flushLocked()
	}
}

func (c *batchConn) flushLocked() error {
	if len(c.buf) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.buf)
	c.buf = c.buf[:0]
	return err
}

func (c *batchConn) Close() error {
	c.mu.Lock()
	if c.timer != nil {
		c.timer.Stop()
	}
	c.buf = nil
	c.mu.Unlock()
	return c.Conn.Close()
}
