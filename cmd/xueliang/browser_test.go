package main

// A real browser as a player: a page served on 127.0.0.1 plays an MP4
// (progressive <video src>, or Media Source Extensions), copies every frame
// it presents into a canvas and posts small thumbnails back. The test tells
// which frame each one is by comparing it with ffmpeg's decode of the same
// file, whose frames are known by their SEI stamps (thumbnails.go side:
// refThumbs). Nothing here trusts the browser's timestamps alone.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// thumbBlock is the side of the pixel blocks averaged into one thumbnail
// pixel, in the browser and in refThumbs alike.
const thumbBlock = 8

// blockLumaJS defines blockLuma(d, W, H, B) for the pages the tests load:
// the mean BT.601 luma of each B×B block of RGBA pixels d (W×H), as one
// base64 byte per block ({px, w: blocks per row}) — newThumb's input.
const blockLumaJS = `function blockLuma(d, W, H, B) {
  const bw = Math.floor(W / B), bh = Math.floor(H / B);
  let s = '';
  for (let by = 0; by < bh; by++) for (let bx = 0; bx < bw; bx++) {
    let sum = 0;
    for (let y = by * B; y < (by + 1) * B; y++) for (let x = bx * B; x < (bx + 1) * B; x++) {
      const i = (y * W + x) * 4;
      sum += 0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2];
    }
    s += String.fromCharCode(Math.round(sum / (B * B)));
  }
  return {px: btoa(s), w: bw};
}
`

// browserFrame is one frame the page saw.
type browserFrame struct {
	MediaTime float64 `json:"t"`  // seconds, the element's media time of the frame
	Presented int     `json:"pf"` // rVFC presentedFrames (0 without rVFC)
	Pixels    string  `json:"px"` // base64 thumbnail, one byte per block
	W         int     `json:"w"`  // thumbnail width in blocks
}

// browserResult is what the page posts when playback ended (or failed).
type browserResult struct {
	Mode     string         `json:"mode"`
	Agent    string         `json:"ua"`
	RVFC     bool           `json:"rvfc"`
	Rest     *browserFrame  `json:"rest"`     // shown after loading, before play
	Played   []browserFrame `json:"played"`   // presented while playing, in order
	Buffered [][2]float64   `json:"buffered"` // element's buffered ranges
	Duration float64        `json:"duration"`
	Dropped  int            `json:"dropped"` // getVideoPlaybackQuality
	Total    int            `json:"total"`
	Error    string         `json:"error"`
}

// The page: mode=src plays /v.mp4 as <video src>; mode=mse appends the
// whole file to a SourceBuffer of type `type`. It grabs the frame shown
// after loading (before play) and then every frame presented while playing
// (requestVideoFrameCallback; a requestAnimationFrame poll where the browser
// lacks it), and posts them to /result.
const playerPage = `<!doctype html><html><body>
<video id="v" muted playsinline preload="auto"></video><canvas id="c"></canvas>
<script>
const q = new URLSearchParams(location.search);
const v = document.getElementById('v'), c = document.getElementById('c');
const B = ` + "%d" + `;
const rvfc = 'requestVideoFrameCallback' in HTMLVideoElement.prototype;
const res = {mode: q.get('mode'), ua: navigator.userAgent, rvfc: rvfc, rest: null, played: [], buffered: [], error: ''};
let ctx = null, posted = false;
function thumb(t, pf) {
  const W = v.videoWidth, H = v.videoHeight;
  if (!ctx || c.width !== W || c.height !== H) { c.width = W; c.height = H; ctx = c.getContext('2d', {willReadFrequently: true}); }
  ctx.drawImage(v, 0, 0, W, H);
  const l = blockLuma(ctx.getImageData(0, 0, W, H).data, W, H, B);
  return {t: t, pf: pf, px: l.px, w: l.w};
}
` + blockLumaJS + `
function post() {
  if (posted) return;
  posted = true;
  for (let i = 0; i < v.buffered.length; i++) res.buffered.push([v.buffered.start(i), v.buffered.end(i)]);
  res.duration = v.duration;
  if (v.getVideoPlaybackQuality) { const pq = v.getVideoPlaybackQuality(); res.dropped = pq.droppedVideoFrames; res.total = pq.totalVideoFrames; }
  fetch('/result', {method: 'POST', body: JSON.stringify(res)});
}
function fail(e) { res.error = String(e); post(); }
window.onerror = (m) => fail('page error: ' + m);
v.onerror = () => fail('video error ' + (v.error ? v.error.code + ' ' + v.error.message : ''));
let lastPx = '';
function onFrame(now, meta) {
  const f = thumb(meta.mediaTime, meta.presentedFrames);
  res.played.push(f);
  if (!v.ended) v.requestVideoFrameCallback(onFrame);
}
function poll() {
  if (v.ended || posted) return;
  const f = thumb(v.currentTime, 0);
  if (f.px !== lastPx) { res.played.push(f); lastPx = f.px; }
  requestAnimationFrame(poll);
}
let started = false;
function start() {
  if (started) return;
  started = true;
  // The frame the element shows once loaded, before anything plays.
  res.rest = thumb(v.currentTime, 0);
  if (rvfc) v.requestVideoFrameCallback(onFrame); else requestAnimationFrame(poll);
  v.play().catch(fail);
}
v.addEventListener('loadeddata', () => setTimeout(start, 200));
v.addEventListener('ended', () => setTimeout(post, 300));
setTimeout(() => fail('timeout, readyState ' + v.readyState + ' currentTime ' + v.currentTime), ` + "%d" + `);
if (res.mode === 'mse') {
  const ms = new MediaSource();
  v.src = URL.createObjectURL(ms);
  ms.addEventListener('sourceopen', async () => {
    try {
      const sb = ms.addSourceBuffer(q.get('type'));
      const buf = await (await fetch('/v.mp4')).arrayBuffer();
      sb.addEventListener('updateend', () => { if (ms.readyState === 'open') ms.endOfStream(); }, {once: true});
      sb.appendBuffer(buf);
    } catch (e) { fail(e); }
  });
} else {
  v.src = '/v.mp4';
}
</script></body></html>`

// browserKind is a browser binary and how to start it headless on a URL
// with a fresh profile in dir, reaching nothing but 127.0.0.1.
type browserKind struct {
	name string
	bin  string
	args func(dir, url string) []string
}

var chromium = browserKind{name: "chromium", bin: "chromium", args: func(dir, url string) []string {
	return []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-default-apps", "--disable-extensions", "--no-default-browser-check",
		"--metrics-recording-only", "--safebrowsing-disable-auto-update", "--disable-domain-reliability",
		"--autoplay-policy=no-user-gesture-required", "--mute-audio",
		// Nothing but the test server: every other host resolves nowhere.
		"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", "--proxy-server=direct://",
		"--user-data-dir=" + dir, url}
}}

// firefox is measured by hand (docs/replay-players.md), not in make test.
var firefox = browserKind{name: "firefox", bin: "firefox-esr", args: func(dir, url string) []string {
	prefs := `user_pref("media.autoplay.default", 0);
user_pref("media.autoplay.blocking_policy", 0);
user_pref("network.proxy.type", 0);
user_pref("app.update.enabled", false);
user_pref("browser.shell.checkDefaultBrowser", false);
user_pref("datareporting.policy.dataSubmissionEnabled", false);
user_pref("toolkit.telemetry.enabled", false);
user_pref("browser.safebrowsing.malware.enabled", false);
user_pref("browser.safebrowsing.phishing.enabled", false);
user_pref("network.captive-portal-service.enabled", false);
user_pref("network.connectivity-service.enabled", false);
user_pref("extensions.update.enabled", false);
user_pref("browser.newtabpage.enabled", false);
user_pref("browser.startup.homepage_override.mstone", "ignore");
user_pref("network.dns.disablePrefetch", true);
user_pref("network.prefetch-next", false);
`
	if err := os.WriteFile(filepath.Join(dir, "user.js"), []byte(prefs), 0o644); err != nil {
		panic(err)
	}
	return []string{"--headless", "--no-remote", "--profile", dir, url}
}}

// playInBrowser plays mp4Path in browser b in mode "src" or "mse" (mseType
// is the SourceBuffer MIME type) and returns what the page saw.
func playInBrowser(t *testing.T, b browserKind, mp4Path, mode, mseType string) browserResult {
	t.Helper()
	res, err := tryPlayInBrowser(t, b, mp4Path, mode, mseType)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// tryPlayInBrowser is playInBrowser returning the page's failure.
func tryPlayInBrowser(t *testing.T, b browserKind, mp4Path, mode, mseType string) (browserResult, error) {
	t.Helper()
	if _, err := exec.LookPath(b.bin); err != nil {
		t.Fatalf("%s is required (make test installs it): %v", b.bin, err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	results := make(chan browserResult, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("/page", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, playerPage, thumbBlock, 60000)
	})
	mux.HandleFunc("/v.mp4", func(w http.ResponseWriter, r *http.Request) {
		f, err := os.Open(mp4Path)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		defer f.Close()
		w.Header().Set("Content-Type", "video/mp4")
		http.ServeContent(w, r, "v.mp4", time.Time{}, f) // honours Range
	})
	mux.HandleFunc("/result", func(w http.ResponseWriter, r *http.Request) {
		var res browserResult
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &res); err != nil {
			res.Error = "bad result: " + err.Error()
		}
		select {
		case results <- res:
		default:
		}
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(l)
	defer srv.Close()

	dir := t.TempDir()
	q := "mode=" + mode
	if mseType != "" {
		q += "&type=" + neturl.QueryEscape(mseType)
	}
	url := "http://" + l.Addr().String() + "/page?" + q
	cmd := exec.Command(b.bin, b.args(dir, url)...)
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_CONFIG_HOME="+dir, "XDG_CACHE_HOME="+dir, "MOZ_HEADLESS=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its helpers go with it
	logf, err := os.Create(filepath.Join(dir, "browser.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", b.bin, err)
	}
	defer func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	select {
	case res := <-results:
		if res.Error != "" {
			return res, fmt.Errorf("%s %s: page reports %s", b.name, mode, res.Error)
		}
		return res, nil
	case <-ctx.Done():
		log, _ := os.ReadFile(filepath.Join(dir, "browser.log"))
		return browserResult{}, fmt.Errorf("%s %s: no result after 90 s; browser log:\n%s", b.name, mode, tail(log, 4000))
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// thumb is a thumbnail, normalised to zero mean and unit variance so that
// the browser's and ffmpeg's colour conversions compare.
type thumb []float64

func newThumb(px []byte) thumb {
	var mean, sq float64
	for _, p := range px {
		mean += float64(p)
	}
	mean /= float64(len(px))
	out := make(thumb, len(px))
	for i, p := range px {
		out[i] = float64(p) - mean
		sq += out[i] * out[i]
	}
	sd := math.Sqrt(sq/float64(len(px))) + 1e-9
	for i := range out {
		out[i] /= sd
	}
	return out
}

func (f browserFrame) thumb(t *testing.T) thumb {
	t.Helper()
	px, err := base64.StdEncoding.DecodeString(f.Pixels)
	if err != nil {
		t.Fatalf("thumbnail: %v", err)
	}
	return newThumb(px)
}

func thumbDist(a, b thumb) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	var d float64
	for i := range a {
		d += math.Abs(a[i] - b[i])
	}
	return d / float64(len(a))
}

// nearest returns the index of the reference thumbnail closest to x, its
// distance and the distance of the second closest.
func nearest(refs []thumb, x thumb) (int, float64, float64) {
	best, d1, d2 := -1, math.Inf(1), math.Inf(1)
	for i, r := range refs {
		d := thumbDist(r, x)
		switch {
		case d < d1:
			best, d1, d2 = i, d, d1
		case d < d2:
			d2 = d
		}
	}
	return best, d1, d2
}

// blockThumbs decodes raw gray frames of w×h into thumbnails averaged over
// thumbBlock×thumbBlock blocks, as the page does.
func blockThumbs(raw []byte, w, h int) []thumb {
	bw, bh := w/thumbBlock, h/thumbBlock
	var out []thumb
	for off := 0; off+w*h <= len(raw); off += w * h {
		fr := raw[off : off+w*h]
		px := make([]byte, bw*bh)
		for by := 0; by < bh; by++ {
			for bx := 0; bx < bw; bx++ {
				sum := 0
				for y := by * thumbBlock; y < (by+1)*thumbBlock; y++ {
					for x := bx * thumbBlock; x < (bx+1)*thumbBlock; x++ {
						sum += int(fr[y*w+x])
					}
				}
				px[by*bw+bx] = byte((sum + thumbBlock*thumbBlock/2) / (thumbBlock * thumbBlock))
			}
		}
		out = append(out, newThumb(px))
	}
	return out
}

// colourConversions are the YUV→RGB conversions a browser may use for a
// stream without colour information; refThumbs makes references with each
// and the match uses whichever fits the browser's frames best.
var colourConversions = []string{"bt601:tv", "bt709:tv", "bt601:pc", "bt709:pc"}

// rgbRefThumbs decodes every frame of the video stream of path (no frame
// dropped or repeated) with conversion conv ("matrix:range") to RGB and
// returns their thumbnails computed like the page's.
func rgbRefThumbs(t *testing.T, path, conv string, w, h int, extra ...string) []thumb {
	t.Helper()
	m, r, _ := strings.Cut(conv, ":")
	args := append([]string{"-v", "error"}, extra...)
	args = append(args, "-i", path, "-map", "0:v", "-vsync", "passthrough",
		"-vf", fmt.Sprintf("scale=in_color_matrix=%s:in_range=%s:flags=neighbor,format=rgb24", m, r), "-f", "rawvideo", "-")
	raw := runTool(t, "ffmpeg", args...)
	gray := make([]byte, len(raw)/3)
	for i := range gray {
		p := raw[3*i:]
		gray[i] = byte(math.Round(0.299*float64(p[0]) + 0.587*float64(p[1]) + 0.114*float64(p[2])))
	}
	return blockThumbs(gray, w, h)
}
