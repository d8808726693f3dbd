package api

import (
	"context"
	"net/http"
	"testing"
	"time"

	"xueliang/cmd/xueliang/internal/cameras"
	"xueliang/index"
	"xueliang/ingest"
	"xueliang/storage/recording"
)

// onlyCameraStatus returns the one camera of GET /api/v1/camera-status.
func onlyCameraStatus(t *testing.T, srv http.Handler) map[string]any {
	t.Helper()
	code, out := call(t, srv, "GET", "/api/v1/camera-status", "")
	l, _ := out["cameras"].([]any)
	if code != http.StatusOK || len(l) != 1 {
		t.Fatalf("%d %v", code, out)
	}
	return l[0].(map[string]any)
}

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
			cam := onlyCameraStatus(t, srv)
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

// motionPullers is fakePullers that also reports the live motion analysis.
type motionPullers struct {
	fakePullers
	motion map[string]ingest.MotionStats
}

func (m motionPullers) MotionStats() map[string]ingest.MotionStats { return m.motion }

// TestCameraStatusMotionNow: motion_now follows the live analysis (an
// interval is stored only when it closes, so a long stretch of motion would
// otherwise not show until it ended) and, without it, the stored intervals.
func TestCameraStatusMotionNow(t *testing.T) {
	now := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	connected := ingest.Status{Connected: true, LastKeyframe: now.Add(-time.Second), SessionStart: now.Add(-time.Minute)}
	cases := []struct {
		name      string
		motion    bool // the camera's motion analysis is configured
		st        ingest.Status
		last      time.Time // live LastMotion (zero: none)
		stored    *[2]time.Time
		want      bool
		wantField bool // last_motion in the answer
	}{
		{"live, 3 s ago", true, connected, now.Add(-3 * time.Second), nil, true, true},
		{"live, 30 s ago", true, connected, now.Add(-30 * time.Second), nil, false, true},
		{"live ahead of the server clock", true, connected, now.Add(2 * time.Second), nil, true, true},
		{"no live motion, stored interval ended 4 s ago", true, connected, time.Time{}, &[2]time.Time{now.Add(-20 * time.Second), now.Add(-4 * time.Second)}, true, false},
		{"old live motion, stored interval ended 30 s ago", true, connected, now.Add(-40 * time.Second), &[2]time.Time{now.Add(-50 * time.Second), now.Add(-30 * time.Second)}, false, true},
		{"disconnected", true, ingest.Status{LastError: "dial: refused"}, now.Add(-time.Second), nil, false, true},
		{"motion analysis not configured", false, connected, now.Add(-time.Second), nil, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv, _ := newRegistryServerWith(t, func(s *Server) {
				ctx := context.Background()
				if err := s.Cameras.(*cameras.Service).SyncConfig(ctx, []cameras.ConfigCamera{{ID: "cam1", Name: "cam1", Township: "会亭镇", URL: "rtsp://127.0.0.1/cam1", Motion: c.motion}}); err != nil {
					t.Fatal(err)
				}
				if c.stored != nil {
					if err := s.Index.(*index.DB).AddMotion(ctx, nil, []recording.MotionInterval{{CameraID: "cam1", Start: c.stored[0], End: c.stored[1], Peak: 0.2, Seconds: 3}}); err != nil {
						t.Fatal(err)
					}
				}
				p := motionPullers{fakePullers{"cam1": c.st}, map[string]ingest.MotionStats{}}
				if !c.last.IsZero() {
					p.motion["cam1"] = ingest.MotionStats{Source: "sub", LastMotion: c.last}
				}
				s.Pullers, s.Now = p, func() time.Time { return now }
			})
			cam := onlyCameraStatus(t, srv)
			if cam["motion_now"] != c.want {
				t.Errorf("motion_now %v, want %v (%v)", cam["motion_now"], c.want, cam)
			}
			lm, ok := cam["last_motion"].(string)
			if ok != c.wantField || ok && lm != c.last.Format(time.RFC3339Nano) {
				t.Errorf("last_motion %v, want it %v (%s)", cam["last_motion"], c.wantField, c.last.Format(time.RFC3339Nano))
			}
		})
	}
}
