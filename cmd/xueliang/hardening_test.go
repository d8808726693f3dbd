package main

import (
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
)

// TestHTTPServerMaxHeaderBytes (issue #22.1): the API's http.Server answers
// a 64 KiB header block with 431 before any handler runs; a normal one
// (8 KiB) gets through.
func TestHTTPServerMaxHeaderBytes(t *testing.T) {
	reached := 0
	srv := newHTTPServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		reached++
		w.WriteHeader(http.StatusNoContent)
	}), slog.New(slog.DiscardHandler))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	for _, tc := range []struct {
		size int
		want int
	}{{8 << 10, http.StatusNoContent}, {64 << 10, http.StatusRequestHeaderFieldsTooLarge}} {
		req, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+"/healthz", nil)
		req.Header.Set("X-Filler", strings.Repeat("a", tc.size))
		resp, err := anonymousClient.Do(req)
		if err != nil {
			t.Fatalf("%d bytes: %v", tc.size, err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%d byte header: status %d, want %d", tc.size, resp.StatusCode, tc.want)
		}
	}
	if reached != 1 {
		t.Errorf("handler reached %d times, want 1", reached)
	}
}
