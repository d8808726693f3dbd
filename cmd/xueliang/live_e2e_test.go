package main

// Live view end to end: camsim → server → a Go WebSocket client; what it
// receives is judged by ffmpeg (judgeMP4) and the SEI stamps of camsim.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/jpeg"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/pion/webrtc/v4"

	"xueliang/index"
	"xueliang/ingest/live"
)

// liveClip is what a live viewer received: the header, the init, the
// fragments and when each arrived.
type liveClip struct {
	header live.Header
	init   []byte
	frags  [][]byte
	recv   []time.Time
	dialed time.Time
}

// file writes init + fragments as one fMP4 file.
func (c *liveClip) file(t *testing.T) string {
	t.Helper()
	var b bytes.Buffer
	b.Write(c.init)
	for _, f := range c.frags {
		b.Write(f)
	}
	p := filepath.Join(t.TempDir(), "live.mp4")
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// smallBufClient dials with an 8 KiB receive buffer, so that a viewer that
// stops reading makes the server's writes block soon.
var smallBufClient = &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{
	Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 8192) })
		if err != nil {
			return err
		}
		return serr
	},
}).DialContext}}

// dialLive opens a live view; token "" sends the bootstrap token.
func dialLive(ctx context.Context, s *testServer, cam, query, token string, client *http.Client) (*websocket.Conn, *http.Response, error) {
	if token == "" {
		token = testBootstrapToken
	}
	h := http.Header{}
	if token != "-" {
		h.Set("Authorization", "Bearer "+token)
	}
	if client == nil {
		client = anonymousClient
	}
	u := strings.Replace(s.base, "http://", "ws://", 1) + "/api/v1/cameras/" + cam + "/live"
	if query != "" {
		u += "?" + query
	}
	c, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPHeader: h, HTTPClient: client})
	if c != nil {
		c.SetReadLimit(16 << 20)
	}
	return c, resp, err
}

// readHeader reads the JSON header and the init.
func readHeader(t *testing.T, ctx context.Context, c *websocket.Conn, clip *liveClip) {
	t.Helper()
	typ, b, err := c.Read(ctx)
	if err != nil || typ != websocket.MessageText {
		t.Fatalf("header: %v %v", typ, err)
	}
	if err := json.Unmarshal(b, &clip.header); err != nil {
		t.Fatalf("header %s: %v", b, err)
	}
	typ, clip.init, err = c.Read(ctx)
	if err != nil || typ != websocket.MessageBinary || !bytes.Contains(clip.init[:min(len(clip.init), 64)], []byte("ftyp")) {
		t.Fatalf("init: %v %v", typ, err)
	}
}

// readFrags reads fragments until n are read, the deadline passes or stop
// is closed.
func readFrags(ctx context.Context, c *websocket.Conn, clip *liveClip, n int, until time.Time, stop <-chan struct{}) error {
	for len(clip.frags) < n && time.Now().Before(until) {
		select {
		case <-stop:
			return nil
		default:
		}
		rctx, cancel := context.WithDeadline(ctx, until)
		typ, b, err := c.Read(rctx)
		cancel()
		if err != nil {
			select {
			case <-stop:
				return nil // closed by the test
			default:
			}
			if time.Now().After(until) {
				return nil
			}
			return err
		}
		if typ != websocket.MessageBinary {
			return fmt.Errorf("unexpected text message %s", b)
		}
		clip.frags = append(clip.frags, b)
		clip.recv = append(clip.recv, time.Now())
	}
	return nil
}

// waitLive waits until cam's live stream is up (the puller has a session).
func waitLive(t *testing.T, s *testServer, cam string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, resp, err := dialLive(ctx, s, cam, "", "", nil)
		cancel()
		if err == nil {
			c.CloseNow()
			return
		}
		if resp == nil || resp.StatusCode != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("live %s: %v (%v)", cam, err, resp)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

const liveGOP = 2 * time.Second // camsim's default: 50 frames at 25 fps

func TestLiveView(t *testing.T) {
	t.Parallel() // waits on real time mostly: runs beside the others (Makefile TEST_PARALLEL)
	rtsp, _ := startCamsim(t, "-cameras", "4",
		"-camera", "cam2:codec=h265",
		"-camera", "cam3:audio=aac",
		"-camera", "cam4:bitrate=8M",
	)
	var cams strings.Builder
	for i := 1; i <= 4; i++ {
		fmt.Fprintf(&cams, "  - id: cam%d\n    url: %s/cam%d\n    township: Huiting\n", i, rtsp, i)
	}
	// cam5 records camsim's cam1 and reads camsim's cam2 (H.265) as its
	// sub stream (motion analysis).
	fmt.Fprintf(&cams, "  - id: cam5\n    url: %s/cam1\n    sub_url: %s/cam2\n    motion: true\n    township: Huiting\n", rtsp, rtsp)
	srv := startServer(t, "live:\n  viewer_ring: 32\ncameras:\n"+cams.String())
	for i := 1; i <= 4; i++ {
		waitLive(t, srv, fmt.Sprintf("cam%d", i))
	}

	t.Run("MSE", func(t *testing.T) {
		for _, tc := range []struct {
			cam, codec, wantCodec string
			audio                 bool
		}{
			{"cam1", "h264", "avc1.", false},
			{"cam2", "hevc", "hvc1.", false},
			{"cam3", "h264", "avc1.", true},
		} {
			t.Run(tc.cam, func(t *testing.T) {
				// waitLive's probe made the stream keep its last GOP: the
				// view starts with it (or, past the linger, at the next
				// keyframe).
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				clip := &liveClip{dialed: time.Now()}
				c, _, err := dialLive(ctx, srv, tc.cam, "", "", nil)
				if err != nil {
					t.Fatal(err)
				}
				defer c.CloseNow()
				readHeader(t, ctx, c, clip)
				if !strings.HasPrefix(clip.header.Codecs[0], tc.wantCodec) || clip.header.Audio != tc.audio ||
					(tc.audio && (len(clip.header.Codecs) != 2 || !strings.HasPrefix(clip.header.Codecs[1], "mp4a.40."))) {
					t.Fatalf("header %+v", clip.header)
				}
				if err := readFrags(ctx, c, clip, 125, time.Now().Add(20*time.Second), nil); err != nil {
					t.Fatal(err)
				}
				c.Close(websocket.StatusNormalClosure, "")
				if len(clip.frags) < 100 {
					t.Fatalf("%d fragments in 20 s", len(clip.frags))
				}
				j := judgeMP4(t, clip.file(t))
				if j.Codec != tc.codec || j.HasAudio != tc.audio {
					t.Fatalf("ffprobe: codec %s audio %v", j.Codec, j.HasAudio)
				}
				// One video frame per fragment, in order, all consecutive.
				if len(j.DecodeOrder) != len(clip.frags) {
					t.Fatalf("%d fragments but %d frames", len(clip.frags), len(j.DecodeOrder))
				}
				checkContinuous(t, "live "+tc.cam, tc.cam, j.Frames)
				if !j.Frames[0].Keyframe {
					t.Fatal("the first frame is not a keyframe")
				}
				// The first frame arrives within one GOP (generous: the
				// host is shared).
				if d := clip.recv[0].Sub(clip.dialed); d > liveGOP+3*time.Second {
					t.Errorf("first frame %v after dialing (GOP %v)", d, liveGOP)
				}
				// Latency from camsim's capture stamp to receipt, after the
				// first GOP (which may be the kept one, already old).
				var lat []time.Duration
				for i, st := range j.DecodeOrder {
					if i >= 50 {
						lat = append(lat, clip.recv[i].Sub(st.Captured))
					}
				}
				slices.Sort(lat)
				p50, p99 := lat[len(lat)/2], lat[len(lat)*99/100]
				t.Logf("%s: %d frames, capture→receipt latency p50 %v p99 %v max %v", tc.cam, len(lat), p50, p99, lat[len(lat)-1])
				if p50 > 2*time.Second {
					t.Errorf("latency p50 %v, want < 2 s (generous bound)", p50)
				}
			})
		}
	})

	t.Run("SubStream", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		// No sub stream is read for cam1: 503.
		if _, resp, err := dialLive(ctx, srv, "cam1", "stream=sub", "", nil); err == nil || resp == nil || resp.StatusCode != 503 {
			t.Fatalf("cam1 sub: %v %v", err, resp)
		}
		var c *websocket.Conn
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			var resp *http.Response
			var err error
			if c, resp, err = dialLive(ctx, srv, "cam5", "stream=sub", "", nil); err == nil {
				break
			}
			if resp == nil || resp.StatusCode != 503 || time.Now().After(deadline) {
				t.Fatalf("cam5 sub: %v %v", err, resp)
			}
		}
		defer c.CloseNow()
		clip := &liveClip{dialed: time.Now()}
		readHeader(t, ctx, c, clip)
		if !strings.HasPrefix(clip.header.Codecs[0], "hvc1.") {
			t.Fatalf("sub stream header %+v", clip.header)
		}
		if err := readFrags(ctx, c, clip, 60, time.Now().Add(15*time.Second), nil); err != nil || len(clip.frags) < 60 {
			t.Fatalf("sub stream: %d fragments, %v", len(clip.frags), err)
		}
		c.Close(websocket.StatusNormalClosure, "")
		j := judgeMP4(t, clip.file(t))
		checkContinuous(t, "cam5 sub stream", "cam2", j.Frames)
	})

	t.Run("Chromium", func(t *testing.T) {
		checkLivePlayback(t, playLiveInChromium(t, srv, "cam1"))
	})

	t.Run("WHEP", func(t *testing.T) {
		checkWHEP(t, srv, "cam1")
		// H.265 is not carried: 415, play it through MSE.
		if _, code, _ := whepClient(t, srv, "cam2", func(*webrtc.TrackRemote) {}); code != http.StatusUnsupportedMediaType {
			t.Fatalf("WHEP for the H.265 camera: %d", code)
		}
	})

	t.Run("Snapshot", func(t *testing.T) {
		get := func(cam string) ([]byte, string) {
			resp, err := http.Get(srv.base + "/api/v1/cameras/" + cam + "/snapshot.jpg")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/jpeg" {
				t.Fatalf("%s snapshot: %d %s", cam, resp.StatusCode, b)
			}
			return b, resp.Header.Get("X-Snapshot-Time")
		}
		for _, cam := range []string{"cam1", "cam2"} {
			b, at := get(cam)
			img, err := jpeg.Decode(bytes.NewReader(b))
			if err != nil || img.Bounds().Dx() != 320 || img.Bounds().Dy() != 240 {
				t.Fatalf("%s snapshot: %v %v", cam, err, img.Bounds())
			}
			// Served again within a second: the cached one.
			if b2, at2 := get(cam); !bytes.Equal(b, b2) || at2 != at {
				t.Errorf("%s: second snapshot within 1 s differs (%s, %s)", cam, at, at2)
			}
			time.Sleep(2500 * time.Millisecond) // past the cache and a GOP
			if _, at3 := get(cam); at3 == at {
				t.Errorf("%s: snapshot after 2.5 s is still the keyframe of %s", cam, at)
			}
		}
	})

	t.Run("SlowViewer", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		fast := &liveClip{dialed: time.Now()}
		fc, _, err := dialLive(ctx, srv, "cam4", "", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer fc.CloseNow()
		readHeader(t, ctx, fc, fast)
		stopFast := make(chan struct{})
		var wg sync.WaitGroup
		var fastErr error
		wg.Add(1)
		go func() {
			defer wg.Done()
			fastErr = readFrags(ctx, fc, fast, 1<<30, time.Now().Add(80*time.Second), stopFast)
		}()

		slow := &liveClip{dialed: time.Now()}
		sc, _, err := dialLive(ctx, srv, "cam4", "", "", smallBufClient)
		if err != nil {
			t.Fatal(err)
		}
		defer sc.CloseNow()
		readHeader(t, ctx, sc, slow)
		if err := readFrags(ctx, sc, slow, 25, time.Now().Add(20*time.Second), nil); err != nil {
			t.Fatal(err)
		}
		before := len(slow.frags)
		if m := scrapeMetrics(t, srv); m[`xueliang_live_viewers{camera="cam4",protocol="mse"}`] != 2 {
			t.Errorf("viewers metric %v with two viewers", m[`xueliang_live_viewers{camera="cam4",protocol="mse"}`])
		}
		t.Log("slow viewer stops reading for 15 s")
		time.Sleep(15 * time.Second)
		if err := readFrags(ctx, sc, slow, 1<<30, time.Now().Add(8*time.Second), nil); err != nil {
			t.Fatal(err)
		}
		sc.Close(websocket.StatusNormalClosure, "")
		time.Sleep(time.Second)
		close(stopFast)
		fc.Close(websocket.StatusNormalClosure, "")
		wg.Wait()
		if fastErr != nil {
			t.Fatalf("fast viewer: %v", fastErr)
		}

		// The fast viewer saw every frame.
		fj := judgeMP4(t, fast.file(t))
		checkContinuous(t, "fast viewer", "cam4", fj.Frames)
		// The slow one was cut once or more, each time to a keyframe.
		sj := judgeMP4(t, slow.file(t))
		cuts := 0
		for i := 1; i < len(sj.Frames); i++ {
			if sj.Frames[i].Stamp.Seq != sj.Frames[i-1].Stamp.Seq+1 {
				cuts++
				if !sj.Frames[i].Keyframe {
					t.Errorf("slow viewer resumed at frame seq %d, not a keyframe", sj.Frames[i].Stamp.Seq)
				}
			}
		}
		t.Logf("slow viewer: %d frames before it stopped, %d in all, %d cut(s); fast viewer %d frames", before, len(sj.Frames), cuts, len(fj.Frames))
		if cuts == 0 {
			t.Fatalf("slow viewer was never cut: %s", describeSeqs(sj.Frames))
		}
		m := scrapeMetrics(t, srv)
		if d := m[`xueliang_live_viewer_drops_total{camera="cam4",protocol="mse"}`]; d < float64(cuts) {
			t.Errorf("drops metric %v, %d cuts seen", d, cuts)
		}
		if b := m[`xueliang_live_sent_bytes_total{camera="cam4",protocol="mse"}`]; b < 1e6 {
			t.Errorf("sent bytes metric %v", b)
		}
		if n := m[`xueliang_live_latency_seconds_count{protocol="mse"}`]; n < float64(len(fj.Frames)) {
			t.Errorf("latency observations %v, fast viewer alone got %d frames", n, len(fj.Frames))
		}
		if v := m[`xueliang_live_viewers{camera="cam4",protocol="mse"}`]; v != 0 {
			t.Errorf("viewers metric %v after both left", v)
		}
		// The recording of the same span is SEI-exact.
		first, last := fj.Frames[0].Stamp.Captured, fj.Frames[len(fj.Frames)-1].Stamp.Captured
		time.Sleep(3 * time.Second) // the fragment in progress
		r := fetchReplay(t, srv, "cam4", first.Add(200*time.Millisecond), last.Add(-time.Second), false)
		rj := judgeMP4(t, r.path)
		checkContinuous(t, "recording during the live views", "cam4", rj.Shown)
		if n := len(rj.Shown); n < len(fj.Frames)-40 {
			t.Errorf("recording shows %d frames of the %d the fast viewer got", n, len(fj.Frames))
		}
	})

	t.Run("Auth", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// 401 without credentials, and with a forged ticket.
		for _, q := range []string{"", "ticket=forged.sig"} {
			_, resp, err := dialLive(ctx, srv, "cam1", q, "-", nil)
			if err == nil || resp == nil || resp.StatusCode != 401 {
				t.Fatalf("anonymous live %q: %v %v", q, err, resp)
			}
		}
		// Operators of another township get 403, for a ticket too.
		post := func(token, path, body string) (int, []byte) {
			req, _ := http.NewRequest("POST", srv.base+path, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			resp, err := anonymousClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, b
		}
		login := func(name, township string) string {
			if code, b := post(testBootstrapToken, "/api/v1/users", fmt.Sprintf(`{"name":%q,"role":"operator","password":"a long password","townships":[%q]}`, name, township)); code != 201 {
				t.Fatalf("create user: %d %s", code, b)
			}
			code, b := post("", "/api/v1/login", fmt.Sprintf(`{"user":%q,"password":"a long password"}`, name))
			var s struct{ Token string }
			if code != 200 || json.Unmarshal(b, &s) != nil {
				t.Fatalf("login: %d %s", code, b)
			}
			return s.Token
		}
		out, in := login("li", "Jiyang"), login("zhao", "Huiting")
		if _, resp, err := dialLive(ctx, srv, "cam1", "", out, nil); err == nil || resp == nil || resp.StatusCode != 403 {
			t.Fatalf("out-of-township live: %v %v", err, resp)
		}
		if code, _ := post(out, "/api/v1/cameras/cam1/live/ticket", ""); code != 403 {
			t.Fatalf("out-of-township ticket: %d", code)
		}
		// An operator of the township views with a ticket (the browser's way).
		code, b := post(in, "/api/v1/cameras/cam1/live/ticket", "")
		var tk struct{ Ticket string }
		if code != 200 || json.Unmarshal(b, &tk) != nil || tk.Ticket == "" {
			t.Fatalf("ticket: %d %s", code, b)
		}
		if _, resp, err := dialLive(ctx, srv, "cam2", "ticket="+tk.Ticket, "-", nil); err == nil || resp.StatusCode != 401 {
			t.Fatalf("cam1's ticket for cam2: %v %v", err, resp)
		}
		start := time.Now()
		c, _, err := dialLive(ctx, srv, "cam1", "ticket="+tk.Ticket, "-", nil)
		if err != nil {
			t.Fatal(err)
		}
		var clip liveClip
		readHeader(t, ctx, c, &clip)
		if err := readFrags(ctx, c, &clip, 5, time.Now().Add(10*time.Second), nil); err != nil || len(clip.frags) < 5 {
			t.Fatalf("ticket view: %d fragments, %v", len(clip.frags), err)
		}
		c.Close(websocket.StatusNormalClosure, "")
		end := time.Now()

		// The view is audited: opened (101) and closed with its span.
		var recs []index.AuditRecord
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			recs = liveAudit(t, srv, "zhao")
			// The view's end is written when the server sees the close,
			// after the entries of the ticket and of the upgrade.
			ended := slices.ContainsFunc(recs, func(r index.AuditRecord) bool {
				return r.Status == 101 && strings.HasPrefix(r.Detail, "live view ended")
			})
			if ended || time.Now().After(deadline) {
				break
			}
		}
		var opened, closed bool
		for _, r := range recs {
			if r.Camera != "cam1" || r.Status != 101 {
				continue
			}
			if strings.Contains(r.Path, tk.Ticket) {
				t.Errorf("the ticket reached the audit log: %s", r.Path)
			}
			if strings.HasPrefix(r.Detail, "live view ended") {
				closed = !r.From.Before(start.Add(-time.Second)) && !r.To.After(end.Add(2*time.Second)) && r.To.After(r.From)
			} else {
				opened = true
			}
		}
		if !opened || !closed {
			t.Fatalf("audit entries of zhao's view: %+v", recs)
		}
	})
}

// liveAudit returns user's live-view audit entries.
func liveAudit(t *testing.T, s *testServer, user string) []index.AuditRecord {
	t.Helper()
	var out struct {
		Entries []struct {
			User, Path, Action, Camera, Detail string
			Status                             int
			From, To                           *time.Time
		} `json:"entries"`
	}
	getJSON(t, s.base+"/api/v1/audit?user="+user+"&limit=50", &out)
	var recs []index.AuditRecord
	for _, e := range out.Entries {
		if e.Action != "live" {
			continue
		}
		r := index.AuditRecord{User: e.User, Path: e.Path, Action: e.Action, Camera: e.Camera, Detail: e.Detail, Status: e.Status}
		if e.From != nil {
			r.From = *e.From
		}
		if e.To != nil {
			r.To = *e.To
		}
		recs = append(recs, r)
	}
	return recs
}
