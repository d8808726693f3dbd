package main

// A real browser plays the live view: headless Chromium opens the live
// WebSocket with a ticket and feeds the fragments to Media Source
// Extensions in a <video>.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// livePage gets a ticket, opens the WebSocket and appends what it receives
// to a SourceBuffer of the header's MIME type, keeping the playhead within
// 1.5 s of the live edge; every 500 ms it samples currentTime and
// getVideoPlaybackQuality(), and posts the samples to /result.
const livePage = `<!doctype html><html><body>
<video id="v" autoplay muted playsinline></video>
<script>
const q = new URLSearchParams(location.search);
const v = document.getElementById('v');
const res = {ua: navigator.userAgent, mime: '', supported: false, samples: [], error: ''};
let posted = false;
function post() { if (posted) return; posted = true; fetch('/result', {method: 'POST', body: JSON.stringify(res)}); }
function fail(e) { res.error = String(e); post(); }
window.onerror = (m) => fail('page error: ' + m);
v.onerror = () => fail('video error ' + (v.error ? v.error.code + ' ' + v.error.message : ''));
(async () => {
  try {
    const cam = q.get('cam');
    const r = await fetch('/api/v1/cameras/' + cam + '/live/ticket', {method: 'POST', headers: {Authorization: 'Bearer ' + q.get('token')}});
    if (!r.ok) throw 'ticket: HTTP ' + r.status;
    const tk = (await r.json()).ticket;
    const ms = new MediaSource();
    v.src = URL.createObjectURL(ms);
    await new Promise(ok => ms.addEventListener('sourceopen', ok, {once: true}));
    const ws = new WebSocket('ws://' + location.host + '/api/v1/cameras/' + cam + '/live?audio=false&ticket=' + encodeURIComponent(tk));
    ws.binaryType = 'arraybuffer';
    let sb = null;
    const queue = [];
    const pump = () => { if (sb && !sb.updating && queue.length) sb.appendBuffer(queue.shift()); };
    ws.onmessage = (e) => {
      if (typeof e.data === 'string') {
        const h = JSON.parse(e.data);
        res.mime = h.mime;
        res.supported = MediaSource.isTypeSupported(h.mime);
        if (!res.supported) { fail('not supported: ' + h.mime); return; }
        if (!sb) {
          sb = ms.addSourceBuffer(h.mime);
          sb.addEventListener('updateend', () => {
            const b = v.buffered;
            if (b.length && b.end(b.length - 1) - v.currentTime > 1.5) v.currentTime = b.end(b.length - 1) - 0.3;
            if (v.paused) v.play().catch(() => {});
            pump();
          });
        }
        return;
      }
      queue.push(e.data);
      pump();
    };
    ws.onerror = () => fail('websocket error');
    const t0 = performance.now();
    const iv = setInterval(() => {
      const pq = v.getVideoPlaybackQuality();
      res.samples.push({at: (performance.now() - t0) / 1000, ct: v.currentTime, frames: pq.totalVideoFrames, dropped: pq.droppedVideoFrames, rs: v.readyState});
      if (res.samples.length >= 20) { clearInterval(iv); ws.close(); post(); }
    }, 500);
  } catch (e) { fail(e); }
})();
</script></body></html>`

type liveSample struct {
	At      float64 `json:"at"`
	CT      float64 `json:"ct"`
	Frames  int     `json:"frames"`
	Dropped int     `json:"dropped"`
	RS      int     `json:"rs"`
}

type liveBrowserResult struct {
	Agent     string       `json:"ua"`
	MIME      string       `json:"mime"`
	Supported bool         `json:"supported"`
	Samples   []liveSample `json:"samples"`
	Error     string       `json:"error"`
}

// playLiveInChromium plays cam's live view in headless Chromium. The page
// is served by a local server that proxies /api/ to the xueliang server, so
// page and WebSocket share one origin, as behind the command room's proxy.
func playLiveInChromium(t *testing.T, s *testServer, cam string) liveBrowserResult {
	t.Helper()
	if _, err := exec.LookPath(chromium.bin); err != nil {
		t.Fatalf("%s is required (make test installs it): %v", chromium.bin, err)
	}
	target, err := url.Parse(s.base)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = &http.Transport{} // not the tests' bearer-adding default
	results := make(chan liveBrowserResult, 1)
	mux := http.NewServeMux()
	mux.Handle("/api/", proxy)
	mux.HandleFunc("/page", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, livePage)
	})
	mux.HandleFunc("/result", func(w http.ResponseWriter, r *http.Request) {
		var res liveBrowserResult
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &res); err != nil {
			res.Error = "bad result: " + err.Error()
		}
		select {
		case results <- res:
		default:
		}
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(l)
	defer srv.Close()

	dir := t.TempDir()
	page := fmt.Sprintf("http://%s/page?cam=%s&token=%s", l.Addr(), cam, url.QueryEscape(testBootstrapToken))
	cmd := exec.Command(chromium.bin, chromium.args(dir, page)...)
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_CONFIG_HOME="+dir, "XDG_CACHE_HOME="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	logf, err := os.Create(filepath.Join(dir, "browser.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	select {
	case res := <-results:
		return res
	case <-ctx.Done():
		log, _ := os.ReadFile(filepath.Join(dir, "browser.log"))
		t.Fatalf("chromium: no result after 90 s; browser log:\n%s", tail(log, 4000))
		return liveBrowserResult{}
	}
}

// checkLivePlayback asserts that the page played: currentTime advanced by
// at least 3 s and the decoded frame count rose by at least 50 over the
// ten seconds sampled.
func checkLivePlayback(t *testing.T, res liveBrowserResult) {
	t.Helper()
	t.Logf("chromium (%s) played %s: %+v", res.Agent, res.MIME, res.Samples)
	if res.Error != "" {
		t.Fatalf("page reports: %s", res.Error)
	}
	if !res.Supported || len(res.Samples) < 10 {
		t.Fatalf("supported %v, %d samples", res.Supported, len(res.Samples))
	}
	first, last := res.Samples[3], res.Samples[len(res.Samples)-1]
	if last.CT-first.CT < 3 {
		t.Errorf("currentTime went from %.2f to %.2f in %.1f s", first.CT, last.CT, last.At-first.At)
	}
	if last.Frames-first.Frames < 50 {
		t.Errorf("totalVideoFrames went from %d to %d in %.1f s", first.Frames, last.Frames, last.At-first.At)
	}
}
