package main

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// TestBatchConn: interleaved frames written one by one arrive in order and
// complete, fewer reads than writes see them (they were batched), and an
// RTSP message goes out at once, after the frames written before it.
func TestBatchConn(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	bl := batchListener{ln}
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := bl.Accept()
		if err == nil {
			accepted <- c
		}
		close(accepted)
	}()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	srv := <-accepted
	if srv == nil {
		t.Fatal("accept failed")
	}
	defer srv.Close()

	var want bytes.Buffer
	for i := range 40 {
		fr := append([]byte{'$', 0, 0, 200}, bytes.Repeat([]byte{byte(i)}, 200)...)
		want.Write(fr)
		if _, err := srv.Write(fr); err != nil {
			t.Fatal(err)
		}
	}
	msg := []byte("RTSP/1.0 200 OK\r\nCSeq: 3\r\n\r\n")
	want.Write(msg)
	start := time.Now()
	if _, err := srv.Write(msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, want.Len())
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(client, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatal("bytes reordered or lost")
	}
	if d := time.Since(start); d >= batchDelay*10 {
		t.Errorf("RTSP message took %v: not written through", d)
	}

	// Frames alone are flushed by the timer.
	fr := []byte{'$', 1, 0, 2, 7, 7}
	if _, err := srv.Write(fr); err != nil {
		t.Fatal(err)
	}
	got = make([]byte, len(fr))
	if _, err := io.ReadFull(client, got); err != nil || !bytes.Equal(got, fr) {
		t.Fatalf("timer flush: %q %v", got, err)
	}
}
