package probe

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"image/jpeg"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"

	"xueliang/ingest/probe/probetest"
)

// Shared simulators, started by TestMain: an open one with four cameras
// (H.264; H.265; H.264 + AAC; H.264 with B-frames, 240x180, G.711 A-law)
// and one requiring credentials.
var openSim, authSim *probetest.Camsim

const (
	testUser = "installer"
	testPass = "s3cret-pa55"
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	flag.Parse()
	for _, name := range []string{"test.fuzz", "test.list"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" {
			// Fuzzing or listing (make fuzz): no test needs the
			// simulators, and every fuzz worker would start its own.
			return m.Run()
		}
	}
	dir, err := os.MkdirTemp("", "probe-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if _, err := exec.LookPath("ffprobe"); err != nil {
		fmt.Fprintln(os.Stderr, "ffprobe is required (make test installs it):", err)
		return 1
	}
	bin, err := probetest.Build(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	openSim, err = probetest.Run(bin, "-cameras", "4",
		"-camera", "cam2:codec=h265",
		"-camera", "cam3:audio=aac",
		"-camera", "cam4:bframes=on,size=240x180,audio=alaw")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer openSim.Stop()
	authSim, err = probetest.Run(bin, "-cameras", "1", "-user", testUser, "-pass", testPass)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer authSim.Stop()
	code := m.Run()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "--- camsim (open) log ---\n%s\n--- camsim (auth) log ---\n%s\n", openSim.Log(), authSim.Log())
	}
	return code
}

func TestProbeCamsim(t *testing.T) {
	sim := openSim
	cases := []struct {
		cam           string
		codec         string
		width, height int
		audio         *Audio
	}{
		{cam: "cam1", codec: "H264", width: 320, height: 240},
		{cam: "cam2", codec: "H265", width: 320, height: 240},
		{cam: "cam3", codec: "H264", width: 320, height: 240, audio: &Audio{Codec: "AAC", SampleRate: 48000, Channels: 1}},
		{cam: "cam4", codec: "H264", width: 240, height: 180, audio: &Audio{Codec: "G711A", SampleRate: 8000, Channels: 1}},
	}
	for _, tc := range cases {
		t.Run(tc.cam, func(t *testing.T) {
			t.Parallel()
			started := time.Now()
			res, err := Probe(context.Background(), sim.URL+"/"+tc.cam, Options{})
			if err != nil {
				t.Fatal(err)
			}
			took := time.Since(started)
			v := res.Video
			t.Logf("%s: %+v audio=%+v connect=%s first_keyframe=%s window=%s took=%s snapshot=%d bytes %s",
				tc.cam, v, res.Audio, res.Connect, res.FirstKeyframe, res.Window, took, len(res.Snapshot), res.SnapshotError)
			if v.Codec != tc.codec || v.Width != tc.width || v.Height != tc.height {
				t.Errorf("video %s %dx%d, want %s %dx%d", v.Codec, v.Width, v.Height, tc.codec, tc.width, tc.height)
			}
			if v.FPS < 24 || v.FPS > 26 {
				t.Errorf("fps %.2f, want 25 ± 1", v.FPS)
			}
			if v.Frames < 40 || v.Frames > 60 {
				t.Errorf("%d frames in the 2 s window, want about 50", v.Frames)
			}
			if v.Bitrate < 10_000 || v.Bitrate > 5_000_000 {
				t.Errorf("bitrate %.0f bit/s implausible", v.Bitrate)
			}
			// camsim's GOP is 2 s: the first keyframe comes within one GOP.
			if res.FirstKeyframe <= 0 || res.FirstKeyframe > 2500*time.Millisecond {
				t.Errorf("first keyframe after %s", res.FirstKeyframe)
			}
			if took > 7*time.Second {
				t.Errorf("probe took %s", took)
			}
			switch {
			case tc.audio == nil && res.Audio != nil:
				t.Errorf("audio %+v, want none", res.Audio)
			case tc.audio != nil && (res.Audio == nil || *res.Audio != *tc.audio):
				t.Errorf("audio %+v, want %+v", res.Audio, tc.audio)
			}
			checkJPEG(t, res.Snapshot, tc.width, tc.height)
		})
	}
}

// checkJPEG decodes the snapshot with image/jpeg and with ffprobe.
func checkJPEG(t *testing.T, b []byte, width, height int) {
	t.Helper()
	if len(b) == 0 {
		t.Fatal("no snapshot")
	}
	img, err := jpeg.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("image/jpeg: %v", err)
	}
	if img.Bounds().Dx() != width || img.Bounds().Dy() != height {
		t.Fatalf("snapshot %v, want %dx%d", img.Bounds(), width, height)
	}
	// testsrc2 is colourful: a decoded picture is not a flat grey frame.
	var lo, hi uint32 = 1 << 16, 0
	for y := img.Bounds().Min.Y; y < img.Bounds().Max.Y; y += 7 {
		for x := img.Bounds().Min.X; x < img.Bounds().Max.X; x += 7 {
			r, _, _, _ := img.At(x, y).RGBA()
			lo, hi = min(lo, r), max(hi, r)
		}
	}
	if hi-lo < 1<<14 {
		t.Errorf("snapshot looks flat (red range %d..%d)", lo, hi)
	}
	path := filepath.Join(t.TempDir(), "snap.jpg")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_name,width,height", "-of", "csv=p=0", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe: %v\n%s", err, out)
	}
	if got, want := strings.TrimSpace(string(out)), fmt.Sprintf("mjpeg,%d,%d", width, height); got != want {
		t.Fatalf("ffprobe says %q, want %q", got, want)
	}
}

func TestProbeCredentials(t *testing.T) {
	sim := authSim
	var logs syncBuf
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	const wrong = "Wr0ng-pa55word"
	cases := []struct {
		name    string
		url     string
		opts    Options
		wantErr error
		secret  string
	}{
		{name: "right password in URL", url: "rtsp://" + testUser + ":" + testPass + "@" + sim.Host + "/cam1", secret: testPass},
		{name: "right password in options", url: sim.URL + "/cam1", opts: Options{User: testUser, Pass: testPass}, secret: testPass},
		{name: "options override URL", url: "rtsp://" + testUser + ":" + wrong + "@" + sim.Host + "/cam1", opts: Options{Pass: testPass}, secret: testPass},
		{name: "wrong password in URL", url: "rtsp://" + testUser + ":" + wrong + "@" + sim.Host + "/cam1", wantErr: ErrUnauthorized, secret: wrong},
		{name: "wrong password in options", url: sim.URL + "/cam1", opts: Options{User: testUser, Pass: wrong}, wantErr: ErrUnauthorized, secret: wrong},
		{name: "no credentials", url: sim.URL + "/cam1", wantErr: ErrUnauthorized},
	}
	t.Run("group", func(t *testing.T) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				tc.opts.Logger = logger
				res, err := Probe(context.Background(), tc.url, tc.opts)
				if tc.wantErr == nil {
					if err != nil {
						t.Fatal(err)
					}
					if res.Video.Codec != "H264" || res.Video.Width != 320 || len(res.Snapshot) == 0 {
						t.Fatalf("result %+v", res.Video)
					}
				} else {
					if !errors.Is(err, tc.wantErr) {
						t.Fatalf("err = %v, want %v", err, tc.wantErr)
					}
					if Code(err) != CodeUnauthorized {
						t.Fatalf("code %q", Code(err))
					}
					t.Logf("error: %v", err)
				}
				if tc.secret != "" {
					if strings.Contains(res.URL, tc.secret) || err != nil && strings.Contains(err.Error(), tc.secret) {
						t.Fatalf("password leaked: url %q err %v", res.URL, err)
					}
				}
			})
		}
	})
	for _, sec := range []string{testPass, wrong} {
		if strings.Contains(logs.String(), sec) {
			t.Fatalf("password %q in the logs:\n%s", sec, logs.String())
		}
	}
	if !strings.Contains(logs.String(), "xxxxx") {
		t.Fatalf("logs show no redacted URL:\n%s", logs.String())
	}
}

func TestProbeUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := l.Addr().String()
	l.Close()

	// A port that accepts TCP but never answers RTSP.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { silent.Close() })
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()

	cases := []struct {
		name    string
		url     string
		opts    Options
		wantErr error
		maxTime time.Duration
	}{
		{name: "closed port", url: "rtsp://admin:pw123456@" + closedAddr + "/cam1", wantErr: ErrUnreachable, maxTime: 2 * time.Second},
		{name: "silent port", url: "rtsp://" + silent.Addr().String() + "/cam1", opts: Options{Timeout: time.Second}, wantErr: ErrUnreachable, maxTime: 3 * time.Second},
		{name: "http scheme", url: "http://" + closedAddr + "/", wantErr: ErrRTSP, maxTime: time.Second},
		{name: "no host", url: "rtsp:///cam1", wantErr: ErrRTSP, maxTime: time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			_, err := Probe(context.Background(), tc.url, tc.opts)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if took := time.Since(start); took > tc.maxTime {
				t.Fatalf("took %s", took)
			}
			if strings.Contains(err.Error(), "pw123456") {
				t.Fatalf("password in %v", err)
			}
			t.Logf("%s: %v", Code(err), err)
		})
	}
}

func TestProbeNotFound(t *testing.T) {
	sim := openSim
	_, err := Probe(context.Background(), sim.URL+"/nosuchcam", Options{})
	if !errors.Is(err, ErrNotFound) || Code(err) != CodeNotFound {
		t.Fatalf("err = %v (code %q), want not_found", err, Code(err))
	}
}

// fakeCamera is a gortsplib server with a chosen description; it sends no
// packets.
type fakeCamera struct {
	srv    *gortsplib.Server
	stream *gortsplib.ServerStream
}

func (f *fakeCamera) OnDescribe(*gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	return &base.Response{StatusCode: base.StatusOK}, f.stream, nil
}

func (f *fakeCamera) OnSetup(*gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	return &base.Response{StatusCode: base.StatusOK}, f.stream, nil
}

func (f *fakeCamera) OnPlay(*gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	return &base.Response{StatusCode: base.StatusOK}, nil
}

func startFakeCamera(t *testing.T, medias ...*description.Media) string {
	t.Helper()
	f := &fakeCamera{}
	var ln net.Listener
	f.srv = &gortsplib.Server{
		Handler:     f,
		RTSPAddress: "127.0.0.1:0",
		Listen: func(network, address string) (net.Listener, error) {
			l, err := net.Listen(network, address)
			ln = l
			return l, err
		},
	}
	if err := f.srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.srv.Close)
	f.stream = &gortsplib.ServerStream{Server: f.srv, Desc: &description.Session{Medias: medias}}
	if err := f.stream.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.stream.Close)
	return "rtsp://" + ln.Addr().String() + "/cam"
}

func TestProbeStreamErrors(t *testing.T) {
	alaw := &description.Media{Type: description.MediaTypeAudio, Formats: []format.Format{&format.G711{PayloadTyp: 8, SampleRate: 8000, ChannelCount: 1}}}
	mjpeg := &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{&format.MJPEG{}}}
	h264 := &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{&format.H264{PayloadTyp: 96, PacketizationMode: 1}}}
	cases := []struct {
		name     string
		medias   []*description.Media
		wantErr  error
		wantCode string
		wantMsg  string
	}{
		{name: "audio only", medias: []*description.Media{alaw}, wantErr: ErrNoVideo, wantCode: CodeNoVideo},
		{name: "MJPEG", medias: []*description.Media{mjpeg, alaw}, wantErr: ErrUnsupportedCodec, wantCode: CodeUnsupportedCodec, wantMsg: "M-JPEG"},
		{name: "H264 without packets", medias: []*description.Media{h264}, wantErr: ErrNoKeyframe, wantCode: CodeNoKeyframe, wantMsg: "0 video RTP packets"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u := startFakeCamera(t, tc.medias...)
			start := time.Now()
			_, err := Probe(context.Background(), u, Options{Timeout: 1500 * time.Millisecond})
			if !errors.Is(err, tc.wantErr) || Code(err) != tc.wantCode {
				t.Fatalf("err = %v (code %q), want %v", err, Code(err), tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("err %q does not say %q", err, tc.wantMsg)
			}
			if took := time.Since(start); took > 3*time.Second {
				t.Fatalf("took %s", took)
			}
			t.Logf("%v", err)
		})
	}
}

func TestProbeCanceled(t *testing.T) {
	u := startFakeCamera(t, &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{&format.H264{PayloadTyp: 96, PacketizationMode: 1}}})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := Probe(ctx, u, Options{})
	if !errors.Is(err, context.DeadlineExceeded) || Code(err) != "" {
		t.Fatalf("err = %v (code %q), want the context's error", err, Code(err))
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("took %s", took)
	}
}

func TestCodes(t *testing.T) {
	for _, c := range codes {
		wrapped := fmt.Errorf("x: %w", c.err)
		if Code(wrapped) != c.code || FromCode(c.code) != c.err {
			t.Errorf("%v ↔ %q", c.err, c.code)
		}
	}
	if Code(nil) != "" || Code(errors.New("other")) != "" || FromCode("nope") != nil {
		t.Error("unknown errors/codes must map to nothing")
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
