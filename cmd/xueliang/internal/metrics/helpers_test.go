package metrics

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
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
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"xueliang/ingest/segmenter/segmentertest"
)

// camera is a real gortsplib RTSP server streaming a clip in a loop.
type camera struct {
	srv    *gortsplib.Server
	stream *gortsplib.ServerStream
	medi   *description.Media
	url    string

	mu       sync.Mutex
	sessions []*gortsplib.ServerSession
	stop     context.CancelFunc
	done     chan struct{}
	once     sync.Once
}

func (c *camera) OnDescribe(*gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	return &base.Response{StatusCode: base.StatusOK}, c.stream, nil
}

func (c *camera) OnSetup(*gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	return &base.Response{StatusCode: base.StatusOK}, c.stream, nil
}

func (c *camera) OnPlay(ctx *gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	c.mu.Lock()
	c.sessions = append(c.sessions, ctx.Session)
	c.mu.Unlock()
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// kick drops every session, as a camera rebooting would.
func (c *camera) kick() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.sessions {
		s.Close()
	}
	c.sessions = nil
}

// close stops the camera for good.
func (c *camera) close() {
	c.once.Do(func() {
		c.stop()
		<-c.done
		c.stream.Close()
		c.srv.Close()
	})
}

// startCamera serves clip (H.264, TCP only) on 127.0.0.1 and feeds it in
// real time until close.
func startCamera(t *testing.T, clip *segmentertest.Clip) *camera {
	t.Helper()
	c := &camera{done: make(chan struct{})}
	var ln net.Listener
	c.srv = &gortsplib.Server{
		Handler:     c,
		RTSPAddress: "127.0.0.1:0",
		Listen: func(network, address string) (net.Listener, error) {
			l, err := net.Listen(network, address)
			ln = l
			return l, err
		},
	}
	if err := c.srv.Start(); err != nil {
		t.Fatal(err)
	}
	f := &format.H264{PayloadTyp: 96, PacketizationMode: 1, SPS: clip.SPS, PPS: clip.PPS}
	c.medi = &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{f}}
	c.stream = &gortsplib.ServerStream{Server: c.srv, Desc: &description.Session{Medias: []*description.Media{c.medi}}}
	if err := c.stream.Initialize(); err != nil {
		t.Fatal(err)
	}
	c.url = fmt.Sprintf("rtsp://%s/cam", ln.Addr())
	enc, err := f.CreateEncoder()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.stop = cancel
	t.Cleanup(c.close)
	video := clip.Video()
	v0 := video[0].PTS
	last := video[len(video)-1]
	clipDur := last.PTS - v0 + 3600
	go func() {
		defer close(c.done)
		start := time.Now()
		for loop := int64(0); ; loop++ {
			for _, au := range video {
				at := start.Add(time.Duration(loop*clipDur+au.DTS-v0) * time.Second / 90000)
				select {
				case <-ctx.Done():
					return
				case <-time.After(time.Until(at)):
				}
				pkts, err := enc.Encode(au.NALUs)
				if err != nil {
					t.Error(err)
					return
				}
				for _, p := range pkts {
					p.Timestamp = 1000 + uint32(loop*clipDur+au.PTS-v0)
					_ = c.stream.WritePacketRTP(c.medi, p)
				}
			}
		}
	}()
	return c
}

// clipPath is a committed H.264 clip (25 fps, 2 s GOP, no B-frames).
const clipPath = "../../../../testdata/clips/h264_320x240_25fps_gop50_b0_none_10s.ts"

// scrape GETs url and parses the text exposition.
func scrape(t *testing.T, url string) (map[string]*dto.MetricFamily, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s\n%s", url, resp.Status, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("parse scrape: %v", err)
	}
	return fams, body
}

// value returns the value of the series of family name whose labels
// include want; ok is false when there is none.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	f, ok := fams[name]
	if !ok {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		}
	}
	return 0, false
}

// exposedNames returns every sample name of a scrape (histograms add
// _bucket, _sum and _count).
func exposedNames(fams map[string]*dto.MetricFamily) map[string]bool {
	out := map[string]bool{}
	for name, f := range fams {
		out[name] = true
		switch f.GetType() {
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			out[name+"_bucket"], out[name+"_sum"], out[name+"_count"] = true, true, true
		case dto.MetricType_SUMMARY:
			out[name+"_sum"], out[name+"_count"] = true, true
		}
	}
	return out
}

// promtool returns the path of promtool, failing the test when it is not
// installed.
func promtool(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("promtool"); err == nil {
		return p
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
			gopath = strings.TrimSpace(string(out))
		}
	}
	if gopath != "" {
		p := filepath.Join(strings.Split(gopath, string(os.PathListSeparator))[0], "bin", "promtool")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatal("promtool is not installed: run `make test`, or " +
		"`scripts/deps.sh go-tool promtool github.com/prometheus/prometheus/cmd/promtool@v0.316.0`")
	return ""
}

// runPromtool runs promtool with args in dir (stdin optional) and fails
// the test on a non-zero exit.
func runPromtool(t *testing.T, dir string, stdin []byte, args ...string) string {
	t.Helper()
	cmd := exec.Command(promtool(t), args...)
	cmd.Dir = dir
	if stdin != nil {
		cmd.Stdin = strings.NewReader(string(stdin))
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timeout (%s) waiting for %s", d, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
