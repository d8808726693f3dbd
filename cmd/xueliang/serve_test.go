package main

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"xueliang/cmd/xueliang/internal/config"
)

// TestHTTPServerSlowClients (issue #22 point 4): a client that trickles a
// request body, or idles on a keep-alive connection, is disconnected by
// the server's ReadTimeout and IdleTimeout; the server has no
// WriteTimeout (replays are bounded per request instead).
func TestHTTPServerSlowClients(t *testing.T) {
	c := config.Default().HTTP
	c.ReadTimeout, c.IdleTimeout = time.Second, time.Second
	srv := newHTTPServer(c, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok")
	}), slog.New(slog.DiscardHandler))
	if srv.WriteTimeout != 0 {
		t.Fatalf("WriteTimeout %s would cut replays", srv.WriteTimeout)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	closedWithin := func(conn net.Conn, what string) {
		t.Helper()
		conn.SetReadDeadline(time.Now().Add(60 * time.Second)) // generous: only "not for ever"
		if _, err := io.ReadAll(conn); err != nil {
			t.Fatalf("%s: the server kept the connection: %v", what, err)
		}
	}
	// A body that never completes.
	slow, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	io.WriteString(slow, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\nabc")
	closedWithin(slow, "trickled body")
	// An idle keep-alive connection after one request.
	idle, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	io.WriteString(idle, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(idle)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(b), "ok") {
		t.Fatalf("answer %q", b)
	}
	idle.SetReadDeadline(time.Now().Add(60 * time.Second))
	if _, err := io.ReadAll(br); err != nil {
		t.Fatalf("idle keep-alive connection kept: %v", err)
	}
}
