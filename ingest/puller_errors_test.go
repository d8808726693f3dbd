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
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- p.Run(ctx) }()
			waitFor(t, 15*time.Second, "a failed session", func() bool { return p.Status().Reconnects > 0 })
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
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
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	waitFor(t, 15*time.Second, "a failed session", func() bool { return p.Status().Reconnects > 0 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st := p.Status()
	if st.Connected || st.LastErrorClass != ErrClassConnect || !strings.Contains(st.LastError, camnet.ErrRefused.Error()) {
		t.Fatalf("status %+v, want a refused connection", st)
	}
}
