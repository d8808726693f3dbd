package ingest

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"

	"xueliang/ingest/camnet"
	"xueliang/ingest/segmenter/segmentertest"
	"xueliang/storage/recording"
)

// refusingCamera answers every DESCRIBE with a 401 challenge (the
// credentials are wrong).
type refusingCamera struct{}

func (refusingCamera) OnDescribe(*gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	return &base.Response{StatusCode: base.StatusUnauthorized,
		Header: base.Header{"WWW-Authenticate": base.HeaderValue{`Basic realm="cam"`}}}, nil, nil
}

// TestPullerFailureClasses: the puller reports why sessions end from the
// RTSP client's typed errors (rtsperr), with the password redacted: a 401
// is "auth", a camera that plays and then sends nothing is "timeout", a
// closed port is "connect".
func TestPullerFailureClasses(t *testing.T) {
	t.Parallel()
	clip := segmentertest.ReadTS(t, segmentertest.GenerateTS(t, t.TempDir(), segmentertest.ClipOptions{Seconds: 2}))
	silent := startServer(t, clip, false) // plays, never fed

	refusing := &gortsplib.Server{Handler: refusingCamera{}, RTSPAddress: "127.0.0.1:0"}
	var refusingAddr string
	refusing.Listen = func(network, address string) (net.Listener, error) {
		l, err := net.Listen(network, address)
		if err == nil {
			refusingAddr = l.Addr().String()
		}
		return l, err
	}
	if err := refusing.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(refusing.Close)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()

	for _, tc := range []struct {
		name, url, class string
	}{
		{"401", "rtsp://user:s3cret@" + refusingAddr + "/cam", ErrClassAuth},
		{"silent after play", silent.url, ErrClassTimeout},
		{"closed port", "rtsp://user:s3cret@" + closed + "/cam", ErrClassConnect},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opts := testOptions(t, segmentertest.NewFakeIndex(), &closedLog{})
			opts.ReadTimeout = time.Second
			p := NewPuller(CameraConfig{ID: "cam", URL: tc.url}, opts)
			_, stop := runInBackground(t, p)
			waitFor(t, 15*time.Second, "a failed session", func() bool { return p.Status().Reconnects > 0 })
			stop()
			st := p.Status()
			if st.LastErrorClass != tc.class || st.Failures[tc.class] == 0 {
				t.Errorf("class %q (failures %v), want %q; error %q", st.LastErrorClass, st.Failures, tc.class, st.LastError)
			}
			if strings.Contains(st.LastError, "s3cret") {
				t.Errorf("password in LastError %q", st.LastError)
			}
		})
	}
}

// TestPullerDialControl (issue #22 point 5): with a camera network policy
// that refuses loopback, the puller never reaches a camera on loopback,
// and its status says why.
func TestPullerDialControl(t *testing.T) {
	t.Parallel()
	clip := segmentertest.ReadTS(t, segmentertest.GenerateTS(t, t.TempDir(), segmentertest.ClipOptions{Seconds: 2}))
	srv := startServer(t, clip, false)
	idx := segmentertest.NewFakeIndex()
	opts := testOptions(t, idx, &closedLog{})
	opts.DialControl = (&camnet.Policy{Allowed: camnet.DefaultAllowed()}).Control
	p := NewPuller(CameraConfig{ID: "cam", URL: srv.url}, opts)
	_, stop := runInBackground(t, p)
	waitFor(t, 15*time.Second, "a failed session", func() bool { return p.Status().Reconnects > 0 })
	stop()
	st := p.Status()
	if st.Connected || st.LastErrorClass != ErrClassConnect || !strings.Contains(st.LastError, camnet.ErrRefused.Error()) {
		t.Fatalf("status %+v, want a refused connection", st)
	}
}

// TestClockAnchor (issue #22 point 6): an RTCP wall clock within
// MaxClockSkew of the receive time anchors the session; one further off
// (a camera set to UTC+8, a hostile one) is refused for the receive time.
func TestClockAnchor(t *testing.T) {
	recv := time.Date(2026, 12, 7, 2, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		ntp      time.Time
		ntpOK    bool
		want     time.Time
		rejected bool
	}{
		{"no sender report", time.Time{}, false, recv, false},
		{"camera 1 s ahead", recv.Add(time.Second), true, recv.Add(time.Second), false},
		{"camera 4.9 s behind", recv.Add(-4900 * time.Millisecond), true, recv.Add(-4900 * time.Millisecond), false},
		{"camera on UTC+8", recv.Add(8 * time.Hour), true, recv, true},
		{"camera 6 s behind", recv.Add(-6 * time.Second), true, recv, true},
		{"camera in 1970", time.Unix(0, 0), true, recv, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, rejected := clockAnchor(recv, tc.ntp, tc.ntpOK, 5*time.Second)
			if !got.Equal(tc.want) || rejected != tc.rejected {
				t.Fatalf("clockAnchor = %v, %v; want %v, %v", got, rejected, tc.want, tc.rejected)
			}
		})
	}
}

// TestPullerCameraClock (issue #22 point 6): a camera whose RTCP sender
// reports put it 8 h ahead (UTC+8 set as UTC) is recorded on the receive
// time and flagged; one 2 s ahead is trusted (bound 30 s here).
func TestPullerCameraClock(t *testing.T) {
	t.Parallel()
	clip := segmentertest.ReadTS(t, segmentertest.GenerateTS(t, t.TempDir(), segmentertest.ClipOptions{Seconds: 2}))
	for _, tc := range []struct {
		name      string
		offset    time.Duration
		untrusted bool
	}{
		{"UTC+8", 8 * time.Hour, true},
		{"2 s ahead", 2 * time.Second, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startServer(t, clip, false)
			srv.srClock = func() time.Time { return time.Now().Add(tc.offset) }
			opts := testOptions(t, segmentertest.NewFakeIndex(), &closedLog{})
			// A bound well above the 2 s case's offset: on a loaded machine the
			// first packet can be received seconds after the camera stamped it,
			// which adds to the skew seen (the bound itself is clockAnchor's
			// test).
			opts.MaxClockSkew = 30 * time.Second
			p := NewPuller(CameraConfig{ID: "cam", URL: srv.url}, opts)
			ctx, stop := runInBackground(t, p)
			<-srv.played
			go srv.feed(ctx, t, clip, 1000)
			waitFor(t, 15*time.Second, "recording", func() bool { return p.Status().Frames > 10 })
			st := p.Status()
			stop()
			skew := st.SessionStart.Sub(time.Now())
			switch {
			case st.ClockUntrusted != tc.untrusted || (st.ClockRejections == 1) != tc.untrusted:
				t.Fatalf("untrusted %v, rejections %d, want %v", st.ClockUntrusted, st.ClockRejections, tc.untrusted)
			case tc.untrusted && (skew > time.Minute || skew < -time.Minute):
				t.Fatalf("session anchored at %v, %v from now: the camera's clock was used", st.SessionStart, skew)
			case !tc.untrusted && skew < time.Second:
				t.Fatalf("session anchored %v from now: the trusted RTCP clock (+2 s) was not used", skew)
			}
		})
	}
}

// TestPullerVideoStall: a camera whose video stops while its audio keeps
// the session up (a hung encoder) is reconnected after VideoTimeout with
// class "video-stall", and records again once video comes back; what was
// recorded before the stall stays.
func TestPullerVideoStall(t *testing.T) {
	t.Parallel()
	clip := segmentertest.ReadTS(t, segmentertest.GenerateTS(t, t.TempDir(),
		segmentertest.ClipOptions{Seconds: 2, AAC: true}))
	srv := startServer(t, clip, true)
	idx := segmentertest.NewFakeIndex()
	opts := testOptions(t, idx, &closedLog{})
	opts.ReadTimeout = 10 * time.Second // audio alone keeps the session well inside it
	opts.VideoTimeout = 2 * time.Second
	p := NewPuller(CameraConfig{ID: "cam1", URL: srv.url, SegmentDuration: 2 * time.Second}, opts)
	ctx, stop := runInBackground(t, p)
	<-srv.played
	go srv.feed(ctx, t, clip, 90000)

	waitFor(t, 15*time.Second, "50 frames", func() bool { return p.Status().Frames >= 50 })
	srv.videoOff.Store(true)
	stalledAt := time.Now()
	waitFor(t, 15*time.Second, "a video-stall reconnect", func() bool { return p.Status().Failures[ErrClassVideoStall] > 0 })
	took := time.Since(stalledAt)
	st := p.Status()
	if st.LastErrorClass != ErrClassVideoStall || st.Failures[ErrClassTimeout] != 0 || took < opts.VideoTimeout {
		t.Fatalf("after %v: class %q, failures %v (want video-stall after at least %v)", took, st.LastErrorClass, st.Failures, opts.VideoTimeout)
	}
	t.Logf("video-stall reconnect %v after the video stopped (VideoTimeout %v)", took.Round(10*time.Millisecond), opts.VideoTimeout)
	before := st.Frames
	srv.videoOff.Store(false)
	waitFor(t, 20*time.Second, "frames again", func() bool { s := p.Status(); return s.Connected && s.Frames >= before+50 })
	stop()
	if got := checkRecording(t, idx, opts.SpoolRoot, "aac"); int64(got) != p.Status().Frames {
		t.Errorf("%d frames in the segments, %d received", got, p.Status().Frames)
	}
}

// TestSubStreamVideoStall: the motion sub stream has the same watchdog. Its
// session carries video only, so a hung encoder shows as no packet at all;
// the watchdog redials it after VideoTimeout, well before the read timeout,
// counted in MotionStats, and analysis resumes when video comes back. The
// main stream's session is untouched.
func TestSubStreamVideoStall(t *testing.T) {
	t.Parallel()
	clip := segmentertest.ReadTS(t, segmentertest.GenerateTS(t, t.TempDir(), segmentertest.ClipOptions{Seconds: 2}))
	main, sub := startServer(t, clip, false), startServer(t, clip, false)
	opts := testOptions(t, segmentertest.NewFakeIndex(), &closedLog{})
	opts.ReadTimeout = 10 * time.Second
	opts.VideoTimeout = 2 * time.Second
	opts.Motion = MotionOptions{Sink: funcSink(func(context.Context, []recording.MotionChunk, []recording.MotionInterval) error { return nil })}
	p := NewPuller(CameraConfig{ID: "cam1", URL: main.url, SubURL: sub.url, Motion: true, SegmentDuration: 2 * time.Second}, opts)
	ctx, stop := runInBackground(t, p)
	<-main.played
	go main.feed(ctx, t, clip, 90000)
	<-sub.played
	go sub.feed(ctx, t, clip, 90000)
	motionStats := func() MotionStats { st, _ := p.MotionStats(); return st }

	waitFor(t, 15*time.Second, "sub-stream frames decoded", func() bool { return motionStats().Decoded >= 10 })
	if st := motionStats(); st.Source != "sub" || st.SubReconnects != 0 {
		t.Fatalf("before the stall: %+v", st)
	}
	sub.videoOff.Store(true)
	stalledAt := time.Now()
	waitFor(t, 9*time.Second, "a sub-stream video-stall redial", func() bool { return motionStats().SubVideoStalls > 0 })
	took := time.Since(stalledAt)
	if took < opts.VideoTimeout {
		t.Fatalf("redialled %v after the video stopped, before VideoTimeout %v", took, opts.VideoTimeout)
	}
	t.Logf("sub-stream video-stall redial %v after the video stopped (VideoTimeout %v)", took.Round(10*time.Millisecond), opts.VideoTimeout)
	before := motionStats().Decoded
	sub.videoOff.Store(false)
	waitFor(t, 20*time.Second, "sub-stream frames again", func() bool { return motionStats().Decoded >= before+10 })
	if st := p.Status(); !st.Connected || len(st.Failures) != 0 {
		t.Errorf("main stream: connected %v, failures %v (want untouched)", st.Connected, st.Failures)
	}
	stop()
}
