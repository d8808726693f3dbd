package ingest

import (
	"context"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"net"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"xueliang/ingest/segmenter"
	"xueliang/ingest/segmenter/segmentertest"
	"xueliang/storage/recording"
)

// rtspServer is a real gortsplib server serving one stream fed from a clip.
type rtspServer struct {
	srv    *gortsplib.Server
	stream *gortsplib.ServerStream
	url    string
	vmedi  *description.Media
	amedi  *description.Media

	mu       sync.Mutex
	sessions []*gortsplib.ServerSession
	played   chan struct{}

	// srClock, when set, is the camera's wall clock: feed sends an RTCP
	// sender report with it before every video access unit, and skips the
	// first keyframe (the client ignores a sender report before it has
	// received an RTP packet, so the session is anchored at the second).
	srClock func() time.Time
	// videoOff, while set, makes feed skip the video access units (the
	// audio keeps flowing: a hung encoder).
	videoOff atomic.Bool
}

// senderReport sends an RTCP sender report mapping RTP time ts of the
// video track to wall clock at.
func (s *rtspServer) senderReport(ts uint32, at time.Time) {
	var ssrc uint32
	for _, f := range s.stream.Stats().Medias[s.vmedi].Formats {
		ssrc = f.LocalSSRC
	}
	secs := uint64(at.Unix() + 2208988800) // NTP era 0
	frac := uint64(at.Nanosecond()) << 32 / 1e9
	s.stream.WritePacketRTCP(s.vmedi, &rtcp.SenderReport{SSRC: ssrc, NTPTime: secs<<32 | frac, RTPTime: ts})
}

func (s *rtspServer) OnDescribe(*gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	return &base.Response{StatusCode: base.StatusOK}, s.stream, nil
}

func (s *rtspServer) OnSetup(*gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	return &base.Response{StatusCode: base.StatusOK}, s.stream, nil
}

func (s *rtspServer) OnPlay(ctx *gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	s.mu.Lock()
	s.sessions = append(s.sessions, ctx.Session)
	s.mu.Unlock()
	select {
	case s.played <- struct{}{}:
	default:
	}
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// kick closes every session (the camera drops the connection).
func (s *rtspServer) kick() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ss := range s.sessions {
		ss.Close()
	}
	s.sessions = nil
}

func startServer(t *testing.T, clip *segmentertest.Clip, withAudio bool) *rtspServer {
	t.Helper()
	s := &rtspServer{played: make(chan struct{}, 16)}
	// UDP needs an even/odd port pair: try a few random ones.
	var ln net.Listener
	var err error
	for try := 0; ; try++ {
		port := 20000 + 2*mathrand.IntN(10000)
		s.srv = &gortsplib.Server{
			Handler:        s,
			RTSPAddress:    "127.0.0.1:0",
			UDPRTPAddress:  fmt.Sprintf("127.0.0.1:%d", port),
			UDPRTCPAddress: fmt.Sprintf("127.0.0.1:%d", port+1),
			Listen: func(network, address string) (net.Listener, error) {
				l, err := net.Listen(network, address)
				ln = l
				return l, err
			},
		}
		if err = s.srv.Start(); err == nil {
			break
		}
		if try == 20 {
			t.Fatal(err)
		}
	}
	t.Cleanup(s.srv.Close)
	var vf format.Format = &format.H264{PayloadTyp: 96, PacketizationMode: 1, SPS: clip.SPS, PPS: clip.PPS}
	if clip.H265 {
		vf = &format.H265{PayloadTyp: 96, VPS: clip.VPS, SPS: clip.SPS, PPS: clip.PPS}
	}
	s.vmedi = &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{vf}}
	desc := &description.Session{Medias: []*description.Media{s.vmedi}}
	// A track the puller must ignore.
	desc.Medias = append(desc.Medias, &description.Media{Type: description.MediaTypeApplication,
		Formats: []format.Format{&format.Generic{PayloadTyp: 107, RTPMa: "private/90000", ClockRat: 90000}}})
	if withAudio {
		s.amedi = &description.Media{Type: description.MediaTypeAudio, Formats: []format.Format{&format.MPEG4Audio{
			PayloadTyp: 97, Config: clip.AAC, SizeLength: 13, IndexLength: 3, IndexDeltaLength: 3}}}
		desc.Medias = append(desc.Medias, s.amedi)
	}
	s.stream = &gortsplib.ServerStream{Server: s.srv, Desc: desc}
	if err := s.stream.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.stream.Close)
	s.url = fmt.Sprintf("rtsp://user:s3cret@%s/cam", ln.Addr())
	return s
}

// feed streams the clip in a loop, in real time, with RTP timestamps
// starting at rtpBase, until ctx is done.
func (s *rtspServer) feed(ctx context.Context, t *testing.T, clip *segmentertest.Clip, rtpBase uint32) {
	var venc interface {
		Encode([][]byte) ([]*rtp.Packet, error)
	}
	switch f := s.vmedi.Formats[0].(type) {
	case *format.H264:
		e, err := f.CreateEncoder()
		if err != nil {
			t.Error(err)
			return
		}
		venc = e
	case *format.H265:
		e, err := f.CreateEncoder()
		if err != nil {
			t.Error(err)
			return
		}
		venc = e
	}
	var aenc interface {
		Encode([][]byte) ([]*rtp.Packet, error)
	}
	if s.amedi != nil {
		e, err := s.amedi.Formats[0].(*format.MPEG4Audio).CreateEncoder()
		if err != nil {
			t.Error(err)
			return
		}
		aenc = e
	}
	type ev struct {
		t  int64 // 90 kHz, relative to the first video pts
		au segmentertest.AU
	}
	v0 := clip.Video()[0].PTS
	var evs []ev
	var clipDur int64
	for _, au := range clip.AUs {
		if au.Video {
			evs = append(evs, ev{au.DTS - v0, au})
			clipDur = max(clipDur, au.PTS-v0+3600)
		} else if s.amedi != nil {
			evs = append(evs, ev{au.PTS - v0, au})
		}
	}
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].t < evs[j].t })
	start := time.Now()
	for loop := int64(0); ; loop++ {
		for _, e := range evs {
			at := start.Add(time.Duration(loop*clipDur+e.t) * time.Second / 90000)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Until(at)):
			}
			if e.au.Video && s.srClock != nil && loop == 0 && e.t == 0 {
				continue
			}
			if e.au.Video && s.videoOff.Load() {
				continue
			}
			if e.au.Video {
				pkts, err := venc.Encode(e.au.NALUs)
				if err != nil {
					t.Error(err)
					return
				}
				ts := rtpBase + uint32(loop*clipDur+e.au.PTS-v0)
				if s.srClock != nil {
					s.senderReport(ts, s.srClock())
				}
				for _, p := range pkts {
					p.Timestamp = ts
					s.stream.WritePacketRTP(s.vmedi, p)
				}
			} else {
				base := (loop*clipDur + e.au.PTS - v0) * 48000 / 90000
				for i, a := range e.au.AACs {
					pkts, err := aenc.Encode([][]byte{a})
					if err != nil {
						t.Error(err)
						return
					}
					for _, p := range pkts {
						p.Timestamp = uint32(1234 + base + int64(i)*1024)
						s.stream.WritePacketRTP(s.amedi, p)
					}
				}
			}
		}
	}
}

type closedLog struct {
	mu   sync.Mutex
	segs []recording.Segment
}

func (c *closedLog) add(s recording.Segment) {
	c.mu.Lock()
	c.segs = append(c.segs, s)
	c.mu.Unlock()
}

func testOptions(t *testing.T, idx segmenter.Index, closed *closedLog) Options {
	return Options{
		SpoolRoot:   t.TempDir(),
		Index:       idx,
		OnClosed:    closed.add,
		BackoffMin:  50 * time.Millisecond,
		BackoffMax:  200 * time.Millisecond,
		ReadTimeout: 2 * time.Second,
	}
}

// runInBackground starts r.Run (a Puller or a Manager) on its own
// goroutine with a context that stop cancels; stop then waits for Run and
// fails t unless it returned nil. A test that ends early leaves Run
// cancelled by cleanup.
func runInBackground(t *testing.T, r interface{ Run(context.Context) error }) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	return ctx, func() {
		t.Helper()
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timeout waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkRecording ffprobes every segment and returns the total frame count.
func checkRecording(t *testing.T, idx *segmentertest.FakeIndex, spool string, wantAudio string) int {
	t.Helper()
	total := 0
	for _, s := range idx.Segments() {
		if s.State != recording.StateClosed {
			t.Errorf("segment %s state %v", s.ObjectKey, s.State)
		}
		path := filepath.Join(spool, s.ObjectKey)
		p := segmentertest.RunProbe(t, path)
		vp := p.VideoPackets()
		if len(vp) == 0 || vp[0].Flags[0] != 'K' {
			t.Fatalf("segment %s does not start with a keyframe", s.ObjectKey)
		}
		for i := 1; i < len(vp); i++ {
			if vp[i].DTS <= vp[i-1].DTS {
				t.Fatalf("segment %s: non-monotonic dts %d after %d", s.ObjectKey, vp[i].DTS, vp[i-1].DTS)
			}
		}
		total += len(vp)
		if wantAudio != "" {
			if len(p.Streams) != 2 || p.Streams[1].CodecName != wantAudio || len(p.AudioPackets()) == 0 {
				t.Errorf("segment %s: streams %+v, %d audio packets", s.ObjectKey, p.Streams, len(p.AudioPackets()))
			}
		}
		frags := idx.Fragments(s.ID)
		if len(frags) == 0 || !frags[0].Start.Equal(s.Start) || !frags[len(frags)-1].End.Equal(s.End) {
			t.Errorf("segment %s: bad fragment rows", s.ObjectKey)
		}
		segmentertest.Decode(t, path)
	}
	return total
}

func TestPullerH264AAC(t *testing.T) {
	t.Parallel()
	clip := segmentertest.ReadTS(t, segmentertest.GenerateTS(t, t.TempDir(),
		segmentertest.ClipOptions{Seconds: 2, BFrames: 2, AAC: true}))
	srv := startServer(t, clip, true)
	idx := segmentertest.NewFakeIndex()
	closed := &closedLog{}
	opts := testOptions(t, idx, closed)
	p := NewPuller(CameraConfig{ID: "cam1", URL: srv.url, SegmentDuration: 2 * time.Second}, opts)

	ctx, stop := runInBackground(t, p)
	<-srv.played
	feedCtx, stopFeed := context.WithCancel(ctx)
	defer stopFeed()
	go srv.feed(feedCtx, t, clip, 4000000000)

	waitFor(t, 15*time.Second, "100 frames", func() bool { return p.Status().Frames >= 100 })
	stop()
	st := p.Status()
	if st.Connected || st.Frames < 100 || st.Bytes == 0 || st.LastKeyframe.IsZero() {
		t.Errorf("status %+v", st)
	}
	if st.TappedPackets == 0 {
		t.Error("no video packet came past gortsplib's copy (rtspconn.Tap)")
	}
	segs := idx.Segments()
	if len(segs) < 2 {
		t.Fatalf("%d segments, want >= 2", len(segs))
	}
	for i := 1; i < len(segs); i++ {
		if !segs[i].Start.Equal(segs[i-1].End) {
			t.Errorf("segments %d/%d not contiguous: %v vs %v", i-1, i, segs[i-1].End, segs[i].Start)
		}
	}
	if got := checkRecording(t, idx, opts.SpoolRoot, "aac"); int64(got) != st.Frames {
		t.Errorf("%d frames in files, %d received", got, st.Frames)
	}
	closed.mu.Lock()
	if len(closed.segs) != len(segs) {
		t.Errorf("%d closed notifications for %d segments", len(closed.segs), len(segs))
	}
	closed.mu.Unlock()
	// The wall clock follows the RTP clock: 100+ frames at 25 fps.
	span := segs[len(segs)-1].End.Sub(segs[0].Start)
	if want := time.Duration(st.Frames) * 40 * time.Millisecond; span < want-100*time.Millisecond || span > want+100*time.Millisecond {
		t.Errorf("recorded span %v for %d frames", span, st.Frames)
	}
}

func TestPullerReconnectAndWrapH265(t *testing.T) {
	t.Parallel()
	clip := segmentertest.ReadTS(t, segmentertest.GenerateTS(t, t.TempDir(),
		segmentertest.ClipOptions{H265: true, Seconds: 2, BFrames: 2}))
	srv := startServer(t, clip, false)
	idx := segmentertest.NewFakeIndex()
	closed := &closedLog{}
	opts := testOptions(t, idx, closed)
	p := NewPuller(CameraConfig{ID: "cam2", URL: srv.url}, opts)

	ctx, stop := runInBackground(t, p)
	<-srv.played
	// RTP timestamps wrap 1 s into the stream.
	go srv.feed(ctx, t, clip, uint32(1<<32-90000))

	waitFor(t, 15*time.Second, "60 frames", func() bool { return p.Status().Frames >= 60 })
	srv.kick() // the camera drops the connection
	<-srv.played
	waitFor(t, 15*time.Second, "frames after reconnect", func() bool { return p.Status().Frames >= 110 })
	stop()
	st := p.Status()
	if st.Reconnects < 1 || st.LastErrorClass == "" || st.TappedPackets == 0 {
		t.Errorf("status %+v", st)
	}
	if strings.Contains(st.LastError, "s3cret") {
		t.Errorf("password in status error: %q", st.LastError)
	}
	segs := idx.Segments()
	if len(segs) < 2 {
		t.Fatalf("%d segments, want one per session", len(segs))
	}
	if got := checkRecording(t, idx, opts.SpoolRoot, ""); int64(got) != st.Frames {
		t.Errorf("%d frames in files, %d received", got, st.Frames)
	}
	// The first session crossed the RTP wrap: its segment spans > 1 s.
	if d := segs[0].End.Sub(segs[0].Start); d < 2*time.Second {
		t.Errorf("first session segment lasts %v", d)
	}
}

func TestPullerBackoff(t *testing.T) {
	t.Parallel()
	// Nothing listens: every session fails to connect; the waits grow.
	var attempts atomic.Int64
	opts := Options{
		SpoolRoot:  t.TempDir(),
		Index:      segmentertest.NewFakeIndex(),
		BackoffMin: 20 * time.Millisecond,
		BackoffMax: 80 * time.Millisecond,
		Jitter:     func() float64 { attempts.Add(1); return 1 },
	}
	p := NewPuller(CameraConfig{ID: "cam3", URL: "rtsp://u:pw@127.0.0.1:1/x"}, opts)
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	if err := p.Run(ctx); err != nil {
		t.Fatal(err)
	}
	// 20+40+80+80+... ms: about 9 attempts in 700 ms; without the cap ~5.
	n := attempts.Load()
	if n < 6 || n > 12 {
		t.Errorf("%d attempts in 700 ms", n)
	}
	st := p.Status()
	if st.LastErrorClass != ErrClassConnect || st.Reconnects != n || strings.Contains(st.LastError, "pw@") {
		t.Errorf("status %+v", st)
	}
}

func TestManager(t *testing.T) {
	t.Parallel()
	clip := segmentertest.ReadTS(t, segmentertest.GenerateTS(t, t.TempDir(), segmentertest.ClipOptions{Seconds: 2}))
	srv := startServer(t, clip, false)
	idx := segmentertest.NewFakeIndex()
	closed := &closedLog{}
	m := NewManager(testOptions(t, idx, closed))
	m.Update([]CameraConfig{{ID: "a", URL: srv.url}, {ID: "b", URL: "rtsp://127.0.0.1:1/none"}, {ID: "", URL: "bad"}})
	ctx, stop := runInBackground(t, m)
	go srv.feed(ctx, t, clip, 0)
	waitFor(t, 15*time.Second, "camera a recording", func() bool { return m.Status()["a"].Frames >= 30 })
	if st := m.Status(); len(st) != 2 || st["b"].Reconnects == 0 {
		t.Errorf("status %+v", st)
	}
	// Change a's transport (restart), remove b.
	m.Update([]CameraConfig{{ID: "a", URL: srv.url, Transport: "udp"}})
	waitFor(t, 15*time.Second, "restarted camera a recording", func() bool {
		st, ok := m.Status()["a"]
		return ok && st.Frames >= 30
	})
	if _, ok := m.Status()["b"]; ok {
		t.Errorf("camera b still running")
	}
	stop()
	if n := len(idx.Segments()); n < 2 {
		t.Errorf("%d segments, want one per puller run", n)
	}
	for _, s := range idx.Segments() {
		if s.CameraID != "a" || s.State != recording.StateClosed {
			t.Errorf("segment %+v", s)
		}
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		checkRecording(t, idx, m.opts.SpoolRoot, "")
	}
}
