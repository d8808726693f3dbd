package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/pion/rtp"

	"xueliang/ingest/sei"
	"xueliang/storage/recording"
)

func TestParseFlags(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		wantErr string
		check   func(t *testing.T, cfg config)
	}{
		{
			name: "defaults",
			args: nil,
			check: func(t *testing.T, cfg config) {
				if len(cfg.Cameras) != 1 || cfg.Cameras[0].ID != "cam1" || cfg.Cameras[0].String() != "codec=h264,size=320x240,fps=25,gop=50,bframes=0,audio=none" {
					t.Errorf("got %+v", cfg.Cameras)
				}
			},
		},
		{
			name: "lead e2e command",
			args: []string{"-listen", "127.0.0.1:0", "-cameras", "4", "-camera", "cam2:codec=h265", "-camera", "cam3:audio=aac", "-camera", "cam4:bframes=on"},
			check: func(t *testing.T, cfg config) {
				got := []string{}
				for _, c := range cfg.Cameras {
					got = append(got, c.ID+" "+c.String())
				}
				want := []string{
					"cam1 codec=h264,size=320x240,fps=25,gop=50,bframes=0,audio=none",
					"cam2 codec=h265,size=320x240,fps=25,gop=50,bframes=0,audio=none",
					"cam3 codec=h264,size=320x240,fps=25,gop=50,bframes=0,audio=aac",
					"cam4 codec=h264,size=320x240,fps=25,gop=50,bframes=2,audio=none",
				}
				if !slices.Equal(got, want) {
					t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
				}
			},
		},
		{
			name: "globals, faults and an extra camera",
			args: []string{"-cameras", "2", "-size", "1920x1080", "-fps", "30", "-gop", "60", "-stall", "5s@20s", "-rtpstart", "4294960000",
				"-camera", "cam2:stall=,drop=15s,jump=-500ms@10s,jump=+2s@40s,switch=30s:240x180,stall=1s@3s",
				"-camera", "gate:size=640x360,audio=alaw"},
			check: func(t *testing.T, cfg config) {
				want := []string{
					"cam1 codec=h264,size=1920x1080,fps=30,gop=60,bframes=0,audio=none,rtpstart=4294960000,stall=5s@20s",
					"cam2 codec=h264,size=1920x1080,fps=30,gop=60,bframes=0,audio=none,rtpstart=4294960000,drop=15s,stall=1s@3s,jump=-500ms@10s,jump=2s@40s,switch=30s:240x180",
					"gate codec=h264,size=640x360,fps=30,gop=60,bframes=0,audio=alaw,rtpstart=4294960000,stall=5s@20s",
				}
				var got []string
				for _, c := range cfg.Cameras {
					got = append(got, c.ID+" "+c.String())
				}
				if !slices.Equal(got, want) {
					t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
				}
			},
		},
		{name: "bad codec", args: []string{"-camera", "cam1:codec=vp8"}, wantErr: "want h264 or h265"},
		{name: "unknown key", args: []string{"-camera", "cam1:colour=red"}, wantErr: "unknown key"},
		{name: "bad stall", args: []string{"-stall", "5s"}, wantErr: "DURATION@AT"},
		{name: "bad switch", args: []string{"-camera", "cam1:switch=30s"}, wantErr: "AT:WIDTHxHEIGHT"},
		{name: "odd size", args: []string{"-size", "321x240"}, wantErr: "must be even"},
		{name: "rtpstart too big", args: []string{"-rtpstart", "4294967296"}, wantErr: "rtpstart"},
		{name: "zero jump", args: []string{"-jump", "0s@1s"}, wantErr: "non-zero"},
		{name: "no id", args: []string{"-camera", ":codec=h264"}, wantErr: "want ID"},
		{name: "several errors reported at once", args: []string{"-fps", "x", "-gop", "-1"}, wantErr: "-gop"},
		{name: "stray argument", args: []string{"cam1"}, wantErr: "unexpected arguments"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := parseFlags(tc.args, io.Discard)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, cfg)
		})
	}
}

// startCamsim runs camsim in-process on 127.0.0.1:0 and returns its URL.
func startCamsim(t *testing.T, clipsDir string, args ...string) string {
	t.Helper()
	args = append([]string{"-listen", "127.0.0.1:0", "-clips", clipsDir, "-script", "../../scripts/gen-clip.sh", "-clipdur", "4s"}, args...)
	cfg, err := parseFlags(args, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	urlc := make(chan string, 1)
	done := make(chan error, 1)
	var log *slog.Logger
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	go func() { done <- run(ctx, cfg, log, func(u string) { urlc <- u }) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("camsim did not shut down within 5s")
		}
	})
	select {
	case u := <-urlc:
		return u
	case err := <-done:
		t.Fatalf("camsim exited before ready: %v", err)
	case <-time.After(90 * time.Second):
		t.Fatal("camsim not ready after 90s")
	}
	return ""
}

type receivedAU struct {
	ts      uint32
	recv    time.Time
	stamp   sei.Stamp
	stamped bool
	nalus   [][]byte
}

type received struct {
	videoCodec  string
	aus         []receivedAU
	audioFormat format.Format
	audioPkts   int
	audioTS     []uint32
	waitErr     error // non-nil when the server closed the session early
	waitAfter   time.Duration
}

// readCamera plays url for d (or until the server ends the session).
func readCamera(url string, d time.Duration, user, pass string) (received, error) {
	return readCameraUntil(url, d, user, pass, nil)
}

// readCameraUntil is readCamera that also stops as soon as until reports true
// for a received video access unit. It may run on any goroutine.
func readCameraUntil(url string, d time.Duration, user, pass string, until func(receivedAU) bool) (received, error) {
	u, err := base.ParseURL(url)
	if err != nil {
		return received{}, err
	}
	if user != "" {
		u.User = nil
		u, _ = base.ParseURL(strings.Replace(url, "rtsp://", "rtsp://"+user+":"+pass+"@", 1))
	}
	tcp := gortsplib.TransportTCP
	c := gortsplib.Client{Scheme: u.Scheme, Host: u.Host, Transport: &tcp}
	if err := c.Start2(); err != nil {
		return received{}, err
	}
	defer c.Close()
	desc, _, err := c.Describe(u)
	if err != nil {
		return received{}, err
	}
	if err := c.SetupAll(desc.BaseURL, desc.Medias); err != nil {
		return received{}, err
	}

	var mu sync.Mutex
	var res received
	reached := make(chan struct{})
	var reachedOnce sync.Once
	addAU := func(au receivedAU) { // called with mu held
		res.aus = append(res.aus, au)
		if until != nil && until(au) {
			reachedOnce.Do(func() { close(reached) })
		}
	}
	for _, m := range desc.Medias {
		switch f := m.Formats[0].(type) {
		case *format.H264:
			res.videoCodec = "h264"
			dec, err := f.CreateDecoder()
			if err != nil {
				return received{}, err
			}
			c.OnPacketRTP(m, f, func(p *rtp.Packet) {
				au, err := dec.Decode(p)
				if err != nil {
					return
				}
				mu.Lock()
				addAU(newAU(recording.H264, p, au))
				mu.Unlock()
			})
		case *format.H265:
			res.videoCodec = "h265"
			dec, err := f.CreateDecoder()
			if err != nil {
				return received{}, err
			}
			c.OnPacketRTP(m, f, func(p *rtp.Packet) {
				au, err := dec.Decode(p)
				if err != nil {
					return
				}
				mu.Lock()
				addAU(newAU(recording.H265, p, au))
				mu.Unlock()
			})
		default:
			res.audioFormat = f
			c.OnPacketRTP(m, f, func(p *rtp.Packet) {
				mu.Lock()
				res.audioPkts++
				res.audioTS = append(res.audioTS, p.Timestamp)
				mu.Unlock()
			})
		}
	}
	if _, err := c.Play(nil); err != nil {
		return received{}, err
	}
	start := time.Now()
	waitc := make(chan error, 1)
	go func() { waitc <- c.Wait() }()
	select {
	case res.waitErr = <-waitc:
		res.waitAfter = time.Since(start)
	case <-reached:
	case <-time.After(d):
	}
	mu.Lock()
	defer mu.Unlock()
	return res, nil
}

// isKeyAU reports whether an H.264 access unit carries an SPS (camsim sends
// one before every IDR).
func isKeyAU(au receivedAU) bool {
	for _, n := range au.nalus {
		if len(n) > 0 && h264.NALUType(n[0]&0x1F) == h264.NALUTypeSPS {
			return true
		}
	}
	return false
}

func newAU(codec recording.VideoCodec, p *rtp.Packet, au [][]byte) receivedAU {
	s, ok := sei.FromAU(codec, au)
	return receivedAU{ts: p.Timestamp, recv: time.Now(), stamp: s, stamped: ok, nalus: au}
}

// checkStamps checks that every AU is stamped by cam and that, in capture
// order, sequence numbers have no holes other than allowed ones and RTP
// timestamps are rtpStart + seq*3600 (25 fps).
func checkStamps(t *testing.T, res received, cam string, rtpStart int64, allowedHoles func(seq uint64) bool) []receivedAU {
	t.Helper()
	if len(res.aus) < 25 {
		t.Fatalf("received only %d access units", len(res.aus))
	}
	for i, au := range res.aus {
		if !au.stamped {
			t.Fatalf("AU %d (ts %d) has no stamp", i, au.ts)
		}
		if au.stamp.Camera != cam {
			t.Fatalf("AU %d: camera %q, want %q", i, au.stamp.Camera, cam)
		}
		if lag := au.recv.Sub(au.stamp.Captured); lag < -10*time.Millisecond || lag > time.Second {
			t.Errorf("AU %d seq %d: received %s after capture", i, au.stamp.Seq, lag)
		}
		if rtpStart >= 0 {
			if want := uint32(rtpStart + int64(au.stamp.Seq)*3600); au.ts != want {
				t.Errorf("AU %d seq %d: rtp timestamp %d, want %d", i, au.stamp.Seq, au.ts, want)
			}
		}
	}
	sorted := slices.Clone(res.aus)
	slices.SortFunc(sorted, func(a, b receivedAU) int { return int(int64(a.stamp.Seq) - int64(b.stamp.Seq)) })
	for i := 1; i < len(sorted); i++ {
		prev, cur := sorted[i-1].stamp, sorted[i].stamp
		if cur.Seq == prev.Seq {
			t.Fatalf("duplicate seq %d", cur.Seq)
		}
		for s := prev.Seq + 1; s < cur.Seq; s++ {
			if allowedHoles == nil || !allowedHoles(s) {
				t.Errorf("seq %d missing (between %d and %d)", s, prev.Seq, cur.Seq)
			}
		}
		if want := time.Duration(cur.Seq-prev.Seq) * 40 * time.Millisecond; cur.Captured.Sub(prev.Captured) != want {
			t.Errorf("seq %d→%d: capture times %s apart, want %s", prev.Seq, cur.Seq, cur.Captured.Sub(prev.Captured), want)
		}
	}
	return sorted
}

// TestCamsim's scripted events, in frames of capture (25 fps). Every reader
// connects at once, right after camsim is ready (never queued behind other
// subtests by -parallel), and each event is 4 s after the start: margin for a
// loaded machine, checked by checkAcross.
const (
	cam1WrapSeq  = 100                      // cam1's 32-bit video RTP timestamp wraps
	cam1RTPStart = 1<<32 - cam1WrapSeq*3600 // 3600 ticks a frame
	cam6StallSeq = 100                      // cam6 sends nothing for 1 s (25 frames)
	cam7SwitchAt = 4500 * time.Millisecond  // cam7 switches resolution
)

// readAcross reads a TestCamsim camera until 40 frames after the event at
// frame eventSeq. The camera's clock runs from camsim's start, not from our
// connection, so a fixed read time could end before the event.
func readAcross(url string, eventSeq uint64) (received, error) {
	return readCameraUntil(url, 30*time.Second, "", "",
		func(au receivedAU) bool { return au.stamp.Seq >= eventSeq+40 })
}

// checkAcross fails unless res, read by readAcross, began before the event.
func checkAcross(t *testing.T, res received, eventSeq uint64) {
	t.Helper()
	if len(res.aus) == 0 {
		t.Fatal("no video received")
	}
	if first := res.aus[0].stamp.Seq; first >= eventSeq {
		t.Fatalf("connected at frame %d, after the event at frame %d (%s after camsim started): the machine is too loaded for this test",
			first, eventSeq, time.Duration(eventSeq)*40*time.Millisecond)
	}
}

// reading is the outcome of a camera read started in the background.
type reading struct {
	res received
	err error
}

// readInBackground starts read now and returns a function that waits for its
// outcome and fails t on a read error.
func readInBackground(read func() (received, error)) func(t *testing.T) received {
	c := make(chan reading, 1)
	go func() {
		res, err := read()
		c <- reading{res, err}
	}()
	return func(t *testing.T) received {
		t.Helper()
		r := <-c
		if r.err != nil {
			t.Fatal(r.err)
		}
		return r.res
	}
}

func TestCamsim(t *testing.T) {
	clips := t.TempDir()
	url := startCamsim(t, clips, "-cameras", "7",
		"-camera", "cam1:rtpstart="+strconv.Itoa(cam1RTPStart),
		"-camera", "cam2:codec=h265,rtpstart=0",
		"-camera", "cam3:audio=aac",
		"-camera", "cam4:bframes=on,audio=alaw,rtpstart=0",
		"-camera", "cam5:drop=2s",
		"-camera", "cam6:stall=1s@"+strconv.Itoa(cam6StallSeq*40)+"ms,rtpstart=0",
		"-camera", "cam7:switch="+cam7SwitchAt.String()+":240x180,rtpstart=0",
	)
	const readFor = 3500 * time.Millisecond
	const switchSeq = uint64(cam7SwitchAt / (40 * time.Millisecond))
	cam1 := readInBackground(func() (received, error) { return readAcross(url+"/cam1", cam1WrapSeq) })
	cam2 := readInBackground(func() (received, error) { return readCamera(url+"/cam2", readFor, "", "") })
	cam3 := readInBackground(func() (received, error) { return readCamera(url+"/cam3", readFor, "", "") })
	cam4 := readInBackground(func() (received, error) { return readCamera(url+"/cam4", readFor, "", "") })
	cam5 := readInBackground(func() (received, error) { return readCamera(url+"/cam5", 5*time.Second, "", "") })
	cam6 := readInBackground(func() (received, error) { return readAcross(url+"/cam6", cam6StallSeq) })
	cam7 := readInBackground(func() (received, error) { return readAcross(url+"/cam7", switchSeq) })

	t.Run("h264 stamps and rtp wrap", func(t *testing.T) {
		res := cam1(t)
		checkAcross(t, res, cam1WrapSeq)
		if res.videoCodec != "h264" || res.audioFormat != nil {
			t.Fatalf("codec %s audio %v", res.videoCodec, res.audioFormat)
		}
		checkStamps(t, res, "cam1", cam1RTPStart, nil)
		wrapped := false
		for i := 1; i < len(res.aus); i++ {
			if res.aus[i].ts < res.aus[i-1].ts {
				wrapped = res.aus[i-1].ts > 0xFFF00000 && res.aus[i].ts < 0x00100000
			}
		}
		if !wrapped {
			t.Errorf("rtp timestamps did not wrap: first %d last %d", res.aus[0].ts, res.aus[len(res.aus)-1].ts)
		}
	})
	t.Run("h265", func(t *testing.T) {
		res := cam2(t)
		if res.videoCodec != "h265" {
			t.Fatalf("codec %s", res.videoCodec)
		}
		checkStamps(t, res, "cam2", 0, nil)
		idrWithParams := 0
		for _, au := range res.aus {
			if h265.IsRandomAccess(au.nalus) {
				types := map[h265.NALUType]bool{}
				for _, n := range au.nalus {
					types[h265.NALUType((n[0]>>1)&0x3F)] = true
				}
				if !types[h265.NALUType_VPS_NUT] || !types[h265.NALUType_SPS_NUT] || !types[h265.NALUType_PPS_NUT] {
					t.Errorf("IDR without VPS/SPS/PPS: %v", types)
				}
				idrWithParams++
			}
		}
		if idrWithParams == 0 {
			t.Error("no IDR received")
		}
	})
	t.Run("aac audio", func(t *testing.T) {
		res := cam3(t)
		checkStamps(t, res, "cam3", -1, nil)
		f, ok := res.audioFormat.(*format.MPEG4Audio)
		if !ok || f.Config.SampleRate != 48000 {
			t.Fatalf("audio format %#v", res.audioFormat)
		}
		// 48000/1024 AUs per second
		if res.audioPkts < 100 {
			t.Errorf("only %d AAC packets", res.audioPkts)
		}
		for i := 1; i < len(res.audioTS); i++ {
			if d := res.audioTS[i] - res.audioTS[i-1]; d != 1024 {
				t.Fatalf("AAC timestamp step %d, want 1024", d)
			}
		}
	})
	t.Run("b-frames and alaw", func(t *testing.T) {
		res := cam4(t)
		f, ok := res.audioFormat.(*format.G711)
		if !ok || f.MULaw || f.SampleRate != 8000 {
			t.Fatalf("audio format %#v", res.audioFormat)
		}
		if res.audioPkts < 100 {
			t.Errorf("only %d G.711 packets", res.audioPkts)
		}
		// Frames captured before the session started but sent after it
		// and B-frames not sent yet at the end leave holes at the edges.
		var lo, hi uint64 = res.aus[0].stamp.Seq, 0
		for _, au := range res.aus {
			hi = max(hi, au.stamp.Seq)
		}
		checkStamps(t, res, "cam4", 0, func(s uint64) bool { return s < lo+3 || s+3 > hi })
		reordered := false
		for i := 1; i < len(res.aus); i++ {
			reordered = reordered || res.aus[i].stamp.Seq < res.aus[i-1].stamp.Seq
		}
		if !reordered {
			t.Error("no B-frames: decode order equals capture order")
		}
	})
	t.Run("drop closes the session", func(t *testing.T) {
		res := cam5(t)
		if res.waitErr == nil {
			t.Fatal("session still open after 5s with drop=2s")
		}
		if res.waitAfter > 2500*time.Millisecond {
			t.Errorf("session closed after %s, want within 2s (+jitter)", res.waitAfter)
		}
		// a new session works again
		res, err := readCamera(url+"/cam5", time.Second, "", "")
		if err != nil || len(res.aus) == 0 {
			t.Fatalf("reconnect: %v, %d AUs", err, len(res.aus))
		}
	})
	t.Run("stall", func(t *testing.T) {
		res := cam6(t)
		checkAcross(t, res, cam6StallSeq)
		// the 25 frames captured during the stall are never sent, and the
		// timestamps afterwards advanced by the stall time.
		inStall := func(s uint64) bool { return s >= cam6StallSeq && s < cam6StallSeq+25 }
		sorted := checkStamps(t, res, "cam6", 0, inStall)
		for _, au := range sorted {
			if inStall(au.stamp.Seq) {
				t.Fatalf("frame %d sent during the stall", au.stamp.Seq)
			}
		}
		if sorted[len(sorted)-1].stamp.Seq < cam6StallSeq+25 {
			t.Fatal("nothing received after the stall")
		}
	})
	t.Run("resolution switch", func(t *testing.T) {
		res := cam7(t)
		checkAcross(t, res, switchSeq)
		checkStamps(t, res, "cam7", 0, nil)
		var sizes []string
		sawBefore := false
		for _, au := range res.aus {
			if au.stamped && au.stamp.Seq < switchSeq-1 && isKeyAU(au) {
				sawBefore = true
			}
			for _, n := range au.nalus {
				if h264.NALUType(n[0]&0x1F) != h264.NALUTypeSPS {
					continue
				}
				var sps h264.SPS
				if err := sps.Unmarshal(n); err != nil {
					t.Fatal(err)
				}
				s := strconv.Itoa(sps.Width()) + "x" + strconv.Itoa(sps.Height())
				if len(sizes) == 0 || sizes[len(sizes)-1] != s {
					sizes = append(sizes, s)
				}
			}
		}
		if !sawBefore {
			t.Errorf("no keyframe before the switch at frame %d (first frame %d)", switchSeq, res.aus[0].stamp.Seq)
		}
		if want := []string{"320x240", "240x180"}; !slices.Equal(sizes, want) {
			t.Errorf("in-band SPS sizes %v, want %v", sizes, want)
		}
	})
}

func TestAuth(t *testing.T) {
	url := startCamsim(t, t.TempDir(), "-cameras", "1", "-user", "admin", "-pass", "s3cret")
	if _, err := readCamera(url+"/cam1", 100*time.Millisecond, "", ""); err == nil {
		t.Fatal("read without credentials succeeded")
	}
	if _, err := readCamera(url+"/cam1", 100*time.Millisecond, "admin", "wrong"); err == nil {
		t.Fatal("read with a wrong password succeeded")
	}
	res, err := readCamera(url+"/cam1", 1500*time.Millisecond, "admin", "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.aus) == 0 {
		t.Fatal("no access units with valid credentials")
	}
	if _, err := readCamera(url+"/nosuchcam", 100*time.Millisecond, "admin", "s3cret"); err == nil {
		t.Fatal("unknown path accepted")
	}
}
