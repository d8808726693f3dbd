package main

// RTSP restream end to end: camsim → server (live.rtsp_listen) → ffmpeg
// reading rtsp://user:token@…/{camera} over TCP; the copy is judged by
// ffprobe and camsim's SEI stamps; a gortsplib client checks the refusals.

import (
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"
)

// rtspDescribeStatus DESCRIBEs u with a gortsplib client and returns the
// status code (200 when it succeeded).
func rtspDescribeStatus(t *testing.T, u string) base.StatusCode {
	t.Helper()
	pu, err := base.ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	tcp := gortsplib.TransportTCP
	c := gortsplib.Client{Transport: &tcp, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second}
	if err := c.Start(pu.Scheme, pu.Host); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _, err = c.Describe(pu)
	var bad liberrors.ErrClientBadStatusCode
	switch {
	case err == nil:
		return base.StatusOK
	case errors.As(err, &bad):
		return bad.Code
	default:
		t.Fatalf("describe %s: %v", pu.Path, err)
		return 0
	}
}

func TestLiveRTSP(t *testing.T) {
	t.Parallel() // waits on real time mostly
	rtsp, _ := startCamsim(t, "-cameras", "2", "-camera", "cam2:codec=h265,audio=aac")
	rtspAddr := freeAddr(t)
	srv := startServer(t, fmt.Sprintf("live:\n  rtsp_listen: %s\ncameras:\n"+
		"  - id: cam1\n    url: %s/cam1\n    township: Huiting\n"+
		"  - id: cam2\n    url: %s/cam2\n    township: Huiting\n", rtspAddr, rtsp, rtsp))
	waitLive(t, srv, "cam1")
	waitLive(t, srv, "cam2")
	in := propertyLiveUser(t, srv, "zhao", "Huiting")
	out := propertyLiveUser(t, srv, "li", "Jiyang")

	t.Run("Refusals", func(t *testing.T) {
		for _, tc := range []struct {
			name, url string
			want      base.StatusCode
		}{
			{"no credentials", "rtsp://" + rtspAddr + "/cam1", base.StatusUnauthorized},
			{"wrong token", "rtsp://zhao:not-a-token@" + rtspAddr + "/cam1", base.StatusUnauthorized},
			{"token of another user", "rtsp://li:" + in + "@" + rtspAddr + "/cam1", base.StatusUnauthorized},
			{"other township", "rtsp://li:" + out + "@" + rtspAddr + "/cam1", base.StatusForbidden},
			{"unknown camera", "rtsp://zhao:" + in + "@" + rtspAddr + "/cam9", base.StatusNotFound},
			{"no sub stream", "rtsp://zhao:" + in + "@" + rtspAddr + "/cam1/sub", base.StatusServiceUnavailable},
			{"allowed", "rtsp://zhao:" + in + "@" + rtspAddr + "/cam1", base.StatusOK},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if got := rtspDescribeStatus(t, tc.url); got != tc.want {
					t.Fatalf("DESCRIBE: status %d, want %d", got, tc.want)
				}
			})
		}
	})

	for _, tc := range []struct {
		cam, codec string
		audio      bool
	}{{"cam1", "h264", false}, {"cam2", "hevc", true}} {
		t.Run("Read/"+tc.cam, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "rtsp.mp4")
			cmd := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-rtsp_transport", "tcp",
				"-i", "rtsp://zhao:"+in+"@"+rtspAddr+"/"+tc.cam, "-t", "4", "-c", "copy", "-y", p)
			b, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("ffmpeg: %v\n%s", err, b)
			}
			j := judgeMP4(t, p)
			if j.Codec != tc.codec || j.HasAudio != tc.audio {
				t.Fatalf("ffprobe: codec %s audio %v, want %s %v", j.Codec, j.HasAudio, tc.codec, tc.audio)
			}
			if len(j.Frames) < 75 {
				t.Fatalf("%d frames in 4 s", len(j.Frames))
			}
			if !j.Frames[0].Keyframe || j.Frames[1].Stamp.Seq != j.Frames[0].Stamp.Seq+1 {
				t.Fatalf("first frames: key %v, seq %d then %d", j.Frames[0].Keyframe, j.Frames[0].Stamp.Seq, j.Frames[1].Stamp.Seq)
			}
			// ffmpeg's RTSP demuxer hands over the very first packet without
			// timestamps ("Timestamps are unset in a packet", then the mp4
			// muxer's "Non-monotonous DTS … changing to 1"), whatever its
			// RTP timestamp: presentation times are judged from the second
			// frame on.
			checkContinuous(t, "rtsp "+tc.cam, tc.cam, j.Frames[1:])
		})
	}

	t.Run("AuditAndMetrics", func(t *testing.T) {
		// The view's end entry is written when its session closes.
		var started, ended int
		for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			started, ended = 0, 0
			for _, r := range liveAudit(t, srv, "zhao") {
				switch {
				case strings.Contains(r.Detail, "protocol rtsp; live view started"):
					started++
				case strings.Contains(r.Detail, "protocol rtsp; live view ended") && !r.From.IsZero() && r.To.After(r.From):
					ended++
				}
			}
			if (started == 2 && ended == 2) || time.Now().After(deadline) {
				break
			}
		}
		if started != 2 || ended != 2 {
			t.Fatalf("rtsp audit: %d started, %d ended entries, want 2 and 2", started, ended)
		}
		denied := 0
		for _, r := range liveAudit(t, srv, "li") {
			if r.Status == 403 && strings.Contains(r.Detail, "protocol rtsp; denied") {
				denied++
			}
		}
		if denied != 1 {
			t.Fatalf("%d rtsp denials audited for li, want 1", denied)
		}
		m := scrapeMetrics(t, srv)
		for _, cam := range []string{"cam1", "cam2"} {
			if v := m[`xueliang_live_views_total{camera="`+cam+`",protocol="rtsp"}`]; v != 1 {
				t.Errorf("%s rtsp views %v, want 1", cam, v)
			}
			if v := m[`xueliang_live_sent_bytes_total{camera="`+cam+`",protocol="rtsp"}`]; v <= 0 {
				t.Errorf("%s rtsp bytes %v", cam, v)
			}
		}
	})
}

// propertyLiveUser creates an operator of township and returns a token.
func propertyLiveUser(t *testing.T, s *testServer, name, township string) string {
	t.Helper()
	pw := "a long password"
	body := fmt.Sprintf(`{"name":%q,"role":"operator","password":%q,"townships":[%q]}`, name, pw, township)
	resp, err := http.Post(s.base+"/api/v1/users", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("create %s: %d", name, resp.StatusCode)
	}
	return loginToken(t, s.base, name, pw)
}
