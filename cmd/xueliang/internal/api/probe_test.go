package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/jpeg"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"xueliang/ingest/camnet"
	"xueliang/ingest/probe"
	"xueliang/ingest/probe/probetest"
)

// The probe tests share one camsim (cam1 H.264, cam2 H.265, with
// credentials), started by the first test that needs it and stopped by
// TestMain.
var (
	simOnce sync.Once
	sim     *probetest.Camsim
	simErr  error
	simDir  string
)

const (
	simUser = "installer"
	simPass = "Pr0be-secret"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if sim != nil {
		if code != 0 {
			fmt.Fprintf(os.Stderr, "--- camsim log ---\n%s\n", sim.Log())
		}
		sim.Stop()
	}
	if simDir != "" {
		os.RemoveAll(simDir)
	}
	os.Exit(code)
}

func camsim(t *testing.T) *probetest.Camsim {
	t.Helper()
	simOnce.Do(func() {
		if simDir, simErr = os.MkdirTemp("", "api-probe-test"); simErr != nil {
			return
		}
		var bin string
		if bin, simErr = probetest.Build(simDir); simErr != nil {
			return
		}
		sim, simErr = probetest.Run(bin, "-cameras", "2", "-camera", "cam2:codec=h265", "-user", simUser, "-pass", simPass)
	})
	if simErr != nil {
		t.Fatal(simErr)
	}
	return sim
}

func postProbe(t *testing.T, h http.Handler, body string) (*http.Response, []byte) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	resp, err := http.Post(srv.URL+"/api/v1/probe", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func TestProbeEndpoint(t *testing.T) {
	cs := camsim(t)
	s := &Server{Prober: LimitProbes(ProberFunc(probe.Probe), 2)}
	h := s.Handler()
	closed := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().String()
	}()
	js := func(v any) string { b, _ := json.Marshal(v); return string(b) }

	t.Run("ok", func(t *testing.T) {
		for _, tc := range []struct{ cam, codec string }{{"cam1", "H264"}, {"cam2", "H265"}} {
			t.Run(tc.cam, func(t *testing.T) {
				t.Parallel()
				resp, b := postProbe(t, h, js(map[string]any{"url": cs.URL + "/" + tc.cam, "user": simUser, "password": simPass, "timeout": "8s"}))
				if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
					t.Fatalf("%d %s", resp.StatusCode, b)
				}
				if bytes.Contains(b, []byte(simPass)) {
					t.Fatal("password in the response")
				}
				var out ProbeResponse
				if err := json.Unmarshal(b, &out); err != nil {
					t.Fatal(err)
				}
				v := out.Video
				if v.Codec != tc.codec || v.Width != 320 || v.Height != 240 || v.FPS < 24 || v.FPS > 26 || v.Bitrate <= 0 {
					t.Fatalf("video %+v", v)
				}
				if out.Audio != nil || out.FirstKeyframeMS <= 0 || out.WindowMS < 1500 || out.URL != "rtsp://installer:xxxxx@"+cs.Host+"/"+tc.cam {
					t.Fatalf("response %+v", out)
				}
				if out.Snapshot == nil || out.Snapshot.ContentType != "image/jpeg" {
					t.Fatalf("snapshot %+v (%s)", out.Snapshot, out.SnapshotError)
				}
				// The JSON carries base64; decoded, it is a 320x240 JPEG.
				if !bytes.Contains(b, []byte(`"data":"/9j/`)) {
					t.Fatal("snapshot data is not base64 JPEG")
				}
				img, err := jpeg.Decode(bytes.NewReader(out.Snapshot.Data))
				if err != nil || img.Bounds().Dx() != 320 || img.Bounds().Dy() != 240 {
					t.Fatalf("jpeg: %v %v", err, img)
				}
			})
		}
	})

	probeErrs := []struct {
		name string
		body string
		code string
	}{
		{"wrong password", js(map[string]any{"url": cs.URL + "/cam1", "user": simUser, "password": "wrong-Pa55"}), probe.CodeUnauthorized},
		{"password in url", js(map[string]any{"url": "rtsp://" + simUser + ":wrong-Pa55@" + cs.Host + "/cam1"}), probe.CodeUnauthorized},
		{"no credentials", js(map[string]any{"url": cs.URL + "/cam1"}), probe.CodeUnauthorized},
		{"unknown path", js(map[string]any{"url": cs.URL + "/cam9", "user": simUser, "password": simPass}), probe.CodeNotFound},
		{"closed port", js(map[string]any{"url": "rtsp://" + closed + "/cam1", "user": "u", "password": "wrong-Pa55", "timeout": 2}), probe.CodeUnreachable},
	}
	for _, tc := range probeErrs {
		t.Run(tc.name, func(t *testing.T) {
			resp, b := postProbe(t, h, tc.body)
			var out ProbeError
			if err := json.Unmarshal(b, &out); err != nil {
				t.Fatalf("%d %s: %v", resp.StatusCode, b, err)
			}
			if resp.StatusCode != http.StatusUnprocessableEntity || out.Code != tc.code || out.Error == "" {
				t.Fatalf("%d %s, want 422 code %s", resp.StatusCode, b, tc.code)
			}
			// Coarse (issue #22 point 5): the code's text, no dial string.
			if want := probe.FromCode(tc.code).Error(); out.Error != want {
				t.Fatalf("error %q, want the coarse %q", out.Error, want)
			}
			if bytes.Contains(b, []byte("wrong-Pa55")) {
				t.Fatalf("password in the response: %s", b)
			}
		})
	}

	badReqs := []struct {
		name, body string
		want       []string
	}{
		{"empty object", `{}`, []string{"url: required"}},
		{"not json", `url=rtsp://x`, []string{"body:"}},
		{"unknown field names it", `{"url":"rtsp://h/c","passwd":"x"}`, []string{`unknown field "passwd"`}},
		{"http url and bad timeout", `{"url":"http://h/c","timeout":"soon"}`, []string{"url: scheme must be rtsp or rtsps", `timeout: want a duration`}},
		{"timeout too long", `{"url":"rtsp://h/c","timeout":"5m"}`, []string{"timeout: 5m0s is outside [1s, 30s]"}},
		{"timeout wrong type", `{"url":"rtsp://h/c","timeout":true}`, []string{"timeout: want a duration"}},
		{"password without user", `{"url":"rtsp://h/c","password":"x"}`, []string{"password: given without user"}},
		{"two objects", `{"url":"rtsp://h/c"}{}`, []string{"body: want one JSON object"}},
	}
	for _, tc := range badReqs {
		t.Run(tc.name, func(t *testing.T) {
			resp, b := postProbe(t, h, tc.body)
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("%d %s, want 400", resp.StatusCode, b)
			}
			var out struct{ Error string }
			if err := json.Unmarshal(b, &out); err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(out.Error, w) {
					t.Errorf("%q does not say %q", out.Error, w)
				}
			}
		})
	}
}

// blockingProber holds every probe until release is closed.
type blockingProber struct {
	started chan struct{}
	release chan struct{}
}

func (b *blockingProber) Probe(ctx context.Context, _ string, _ probe.Options) (probe.Result, error) {
	b.started <- struct{}{}
	<-b.release
	return probe.Result{Video: probe.Video{Codec: "H264"}}, nil
}

func TestProbeEndpointBusyAndDisabled(t *testing.T) {
	resp, b := postProbe(t, (&Server{}).Handler(), `{"url":"rtsp://h/c"}`)
	if resp.StatusCode != http.StatusNotImplemented || !bytes.Contains(b, []byte(`"code":"disabled"`)) {
		t.Fatalf("nil prober: %d %s", resp.StatusCode, b)
	}

	bp := &blockingProber{started: make(chan struct{}, 1), release: make(chan struct{})}
	h := (&Server{Prober: LimitProbes(bp, 1)}).Handler()
	done := make(chan int, 1)
	go func() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/api/v1/probe", strings.NewReader(`{"url":"rtsp://h/c"}`)))
		done <- rec.Code
	}()
	select {
	case <-bp.started:
	case <-time.After(5 * time.Second):
		t.Fatal("first probe did not start")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/api/v1/probe", strings.NewReader(`{"url":"rtsp://h/c"}`)))
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" || !strings.Contains(rec.Body.String(), `"code":"busy"`) {
		t.Fatalf("second probe: %d %s", rec.Code, rec.Body)
	}
	close(bp.release)
	if code := <-done; code != 200 {
		t.Fatalf("first probe: %d", code)
	}
}

// TestProbeCameraNetworks (issue #22 point 5): with the default camera
// networks, a probe of loopback (camsim), of the metadata address or of
// the server's own port is refused before any connection, with the coarse
// code not_allowed; 127.0.0.0/8 allowed explicitly lets camsim through.
func TestProbeCameraNetworks(t *testing.T) {
	cs := camsim(t)
	def := &camnet.Policy{Allowed: camnet.DefaultAllowed()}
	s := &Server{Prober: LimitProbes(ProberFunc(probe.Probe), 2), CameraNetworks: def}
	h := s.Handler()
	_, port, _ := net.SplitHostPort(cs.Host)
	for _, u := range []string{cs.URL + "/cam1", "rtsp://169.254.169.254/latest", "rtsp://[::1]:554/x", "rtsp://localhost:" + port + "/cam1"} {
		resp, b := postProbe(t, h, `{"url":"`+u+`","user":"`+simUser+`","password":"`+simPass+`","timeout":2}`)
		var out ProbeError
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusUnprocessableEntity || out.Code != probe.CodeNotAllowed || out.Error != probe.ErrNotAllowed.Error() {
			t.Fatalf("probe %s: %d %s, want 422 not_allowed", u, resp.StatusCode, b)
		}
	}
	if def.Refused() < 4 {
		t.Errorf("%d refusals counted, want 4", def.Refused())
	}
	lo, _ := camnet.ParsePrefixes([]string{"127.0.0.0/8"})
	srv := httptest.NewServer(nil)
	defer srv.Close()
	own := uint16(srv.Listener.Addr().(*net.TCPAddr).Port)
	s = &Server{Prober: LimitProbes(ProberFunc(probe.Probe), 2), CameraNetworks: &camnet.Policy{Allowed: lo, OwnPorts: []uint16{own}}}
	h = s.Handler()
	resp, b := postProbe(t, h, `{"url":"`+cs.URL+`/cam1","user":"`+simUser+`","password":"`+simPass+`"}`)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("probe with loopback allowed: %d %s", resp.StatusCode, b)
	}
	resp, b = postProbe(t, h, fmt.Sprintf(`{"url":"rtsp://127.0.0.1:%d/x","timeout":2}`, own))
	if resp.StatusCode != http.StatusUnprocessableEntity || !bytes.Contains(b, []byte(`"code":"not_allowed"`)) {
		t.Fatalf("probe of the server's own port: %d %s", resp.StatusCode, b)
	}
}
