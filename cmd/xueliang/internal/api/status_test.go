package api

import (
	"net/http"
	"testing"
	"time"

	"xueliang/ingest"
)

func TestCameraStatus(t *testing.T) {
	now := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	cases := []struct {
		name  string
		st    ingest.Status
		known bool
		want  string
	}{
		{"no puller", ingest.Status{}, false, StateOffline},
		{"disconnected", ingest.Status{LastError: "dial: refused", LastErrorClass: "dial"}, true, StateOffline},
		{"connected, keyframes", ingest.Status{Connected: true, LastKeyframe: now.Add(-2 * time.Second), SessionStart: now.Add(-10 * time.Second), Bytes: 1_000_000}, true, StateRecording},
		{"connected, stale", ingest.Status{Connected: true, LastKeyframe: now.Add(-time.Minute), SessionStart: now.Add(-2 * time.Minute)}, true, StateNoFootage},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv, _ := newRegistryServerWith(t, func(s *Server) {
				p := fakePullers{}
				if c.known {
					p["cam1"] = c.st
				}
				s.Pullers, s.Now = p, func() time.Time { return now }
			})
			code, out := call(t, srv, "GET", "/api/v1/camera-status", "")
			l, _ := out["cameras"].([]any)
			if code != http.StatusOK || len(l) != 1 {
				t.Fatalf("%d %v", code, out)
			}
			cam := l[0].(map[string]any)
			if cam["id"] != "cam1" || cam["state"] != c.want || cam["township"] != "会亭镇" {
				t.Errorf("got %v, want state %s", cam, c.want)
			}
			if c.want == StateRecording && cam["bitrate_bps"].(float64) != 800_000 { // 1 MB in 10 s
				t.Errorf("bitrate %v, want the session average 800000", cam["bitrate_bps"])
			}
			if c.st.LastError != "" && cam["last_error"] != c.st.LastError {
				t.Errorf("last_error %v", cam["last_error"])
			}
		})
	}
	t.Run("scope", func(t *testing.T) {
		srv, _ := newRegistryServerWith(t, nil)
		scoped := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			srv.ServeHTTP(w, r.WithContext(withPrincipal(r.Context(), &Principal{User: "op", Role: "operator", Townships: []string{"车站镇"}})))
		})
		code, out := call(t, scoped, "GET", "/api/v1/camera-status", "")
		if l, _ := out["cameras"].([]any); code != 200 || len(l) != 0 {
			t.Errorf("out-of-scope camera listed: %v", out)
		}
	})
}

func TestBitrateSampler(t *testing.T) {
	var b bitrates
	t0 := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	if got := b.rate("c", 500_000, t0, t0.Add(-4*time.Second)); got != 1_000_000 {
		t.Errorf("first: %d, want the session average", got)
	}
	if got := b.rate("c", 600_000, t0.Add(time.Second), time.Time{}); got != 1_000_000 {
		t.Errorf("within 2 s: %d, want the last figure", got)
	}
	if got := b.rate("c", 750_000, t0.Add(2*time.Second), time.Time{}); got != 1_000_000 {
		t.Errorf("after 2 s: %d", got) // 250 kB in 2 s
	}
	if got := b.rate("c", 10, t0.Add(5*time.Second), t0.Add(3*time.Second)); got != 40 {
		t.Errorf("after a reconnect: %d, want the new session's average", got)
	}
}
