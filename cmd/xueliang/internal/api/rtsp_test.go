package api

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"
	"github.com/pion/rtp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"xueliang/ingest/live"
	"xueliang/storage/recording"
)

func TestParseRTSPPath(t *testing.T) {
	for _, tc := range []struct {
		path, camera, name string
		ok                 bool
	}{
		{"/cam1", "cam1", live.Main, true},
		{"cam1/", "cam1", live.Main, true},
		{"/cam1/sub", "cam1", live.Sub, true},
		{"/cam1/main", "", "", false},
		{"/cam1/sub/x", "", "", false},
		{"/", "", "", false},
		{"", "", "", false},
	} {
		t.Run(tc.path, func(t *testing.T) {
			c, n, ok := parseRTSPPath(tc.path)
			if ok != tc.ok || (ok && (c != tc.camera || n != tc.name)) {
				t.Fatalf("parseRTSPPath(%q) = %q, %q, %v", tc.path, c, n, ok)
			}
		})
	}
}

func TestWithParams(t *testing.T) {
	h264 := recording.Video{Codec: recording.H264, SPS: []byte{0x67, 1}, PPS: []byte{0x68, 2}}
	h265 := recording.Video{Codec: recording.H265, VPS: []byte{0x40, 1}, SPS: []byte{0x42, 1}, PPS: []byte{0x44, 1}}
	idr := []byte{0x65, 9}
	cra := []byte{0x2a, 9} // H.265 CRA (type 21)
	for _, tc := range []struct {
		name string
		v    recording.Video
		au   [][]byte
		want [][]byte
	}{
		{"h264 without params", h264, [][]byte{idr}, [][]byte{h264.SPS, h264.PPS, idr}},
		{"h264 with params", h264, [][]byte{{0x67, 7}, {0x68, 8}, idr}, [][]byte{{0x67, 7}, {0x68, 8}, idr}},
		{"h265 without params", h265, [][]byte{cra}, [][]byte{h265.VPS, h265.SPS, h265.PPS, cra}},
		{"h265 with params", h265, [][]byte{{0x40, 7}, {0x42, 7}, {0x44, 7}, cra}, [][]byte{{0x40, 7}, {0x42, 7}, {0x44, 7}, cra}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := withParams(tc.v, tc.au)
			if !slices.EqualFunc(got, tc.want, slices.Equal) {
				t.Fatalf("withParams = %x, want %x", got, tc.want)
			}
		})
	}
}

// TestRTSPRestreamInProcess plays a published stream through the RTSP
// server with a gortsplib client: every access unit arrives, in order,
// with its PTS as RTP timestamp (the first, from the kept GOP, included),
// the keyframe first; an operator outside the camera's township gets 403;
// the view is audited and counted.
func TestRTSPRestreamInProcess(t *testing.T) {
	f := newAuthFixture(t)
	reg := prometheus.NewRegistry()
	f.s.lm = newLiveMetrics(reg)
	hub := live.NewHub(live.HubConfig{})
	f.s.Live = hub
	sps := []byte{0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00, 0xa0, 0x47, 0xfe, 0xc8}
	pps := []byte{0x68, 0xce, 0x3c, 0x80}
	st := hub.Stream("camA", live.Main)
	st.StartSession(live.Session{Video: recording.Video{Codec: recording.H264, SPS: sps, PPS: pps}, Anchor: time.Now()})
	st.Subscribe().Close() // the stream keeps its GOP from now on

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	r := f.s.NewRTSP(addr)
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	// The publisher: 25 fps, a keyframe every 10 frames, PTS = n·3600.
	stop := make(chan struct{})
	pubDone := make(chan struct{})
	go func() {
		defer close(pubDone)
		for n := int64(0); ; n++ {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			key := n%10 == 0
			nal := []byte{0x41, byte(n), byte(n >> 8), 0x80}
			if key {
				nal = []byte{0x65, byte(n), byte(n >> 8), 0x80}
			}
			st.PublishVideo(n*3600, n*3600, [][]byte{nal}, key, time.Now())
		}
	}()
	defer func() { close(stop); <-pubDone }()

	tok := f.token(t, operator)
	describe := func(cam string) (*gortsplib.Client, *description.Session, *base.URL, error) {
		u, err := base.ParseURL("rtsp://u-operator:" + tok + "@" + addr + "/" + cam)
		if err != nil {
			t.Fatal(err)
		}
		tcp := gortsplib.TransportTCP
		c := &gortsplib.Client{Transport: &tcp}
		if err := c.Start(u.Scheme, u.Host); err != nil {
			t.Fatal(err)
		}
		desc, _, err := c.Describe(u)
		return c, desc, u, err
	}
	c, _, _, err := describe("camB")
	c.Close()
	var bad liberrors.ErrClientBadStatusCode
	if !errors.As(err, &bad) || bad.Code != base.StatusForbidden {
		t.Fatalf("camB (other township): %v, want 403", err)
	}

	// UDP is refused: 461.
	{
		u, _ := base.ParseURL("rtsp://u-operator:" + tok + "@" + addr + "/camA")
		udp := gortsplib.TransportUDP
		c := &gortsplib.Client{Transport: &udp}
		if err := c.Start(u.Scheme, u.Host); err != nil {
			t.Fatal(err)
		}
		desc, _, err := c.Describe(u)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Setup(desc.BaseURL, desc.Medias[0], 0, 0)
		c.Close()
		if !errors.As(err, &bad) || bad.Code != base.StatusUnsupportedTransport {
			t.Fatalf("UDP SETUP: %v, want 461", err)
		}
	}

	c, desc, u, err := describe("camA")
	if err != nil {
		t.Fatal(err)
	}
	type au struct {
		ts  uint32
		key bool
	}
	got := make(chan au, 1024)
	var forma *format.H264
	medi := desc.FindFormat(&forma)
	if medi == nil {
		t.Fatalf("no H.264 in %+v", desc)
	}
	dec, err := forma.CreateDecoder()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Setup(desc.BaseURL, medi, 0, 0); err != nil {
		t.Fatal(err)
	}
	c.OnPacketRTP(medi, forma, func(pkt *rtp.Packet) {
		nalus, err := dec.Decode(pkt)
		if err != nil {
			return // fragments, parameter sets waiting for their frame
		}
		key := false
		for _, n := range nalus {
			key = key || n[0]&0x1f == 5
		}
		got <- au{pkt.Timestamp, key}
	})
	if _, err := c.Play(nil); err != nil {
		t.Fatal(err)
	}
	_ = u
	var aus []au
	for len(aus) < 40 {
		select {
		case a := <-got:
			aus = append(aus, a)
		case <-time.After(20 * time.Second):
			t.Fatalf("%d units in 20 s", len(aus))
		}
	}
	c.Close()
	if !aus[0].key {
		t.Fatal("the first unit is not a keyframe")
	}
	for i := 1; i < len(aus); i++ {
		if aus[i].ts-aus[i-1].ts != 3600 {
			t.Fatalf("unit %d: RTP timestamp %d after %d", i, aus[i].ts, aus[i-1].ts)
		}
	}

	// The end entry is written when the session closes.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		a := lastAudit(t, f.db)
		if strings.Contains(a.Detail, "protocol rtsp; live view ended") {
			if a.User != "u-operator" || a.Camera != "camA" || a.Action != string(ActLive) || !a.To.After(a.From) {
				t.Fatalf("end entry %+v", a)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no end entry; last %+v", a)
		}
	}
	if v := testutil.ToFloat64(f.s.lm.views.WithLabelValues("camA", protoRTSP)); v != 1 {
		t.Fatalf("rtsp views %v", v)
	}
}
