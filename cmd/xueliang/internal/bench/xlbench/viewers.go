package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph264"
	"github.com/coder/websocket"
	"github.com/pion/webrtc/v4"

	"xueliang/ingest/sei"
	"xueliang/storage/recording"
)

// viewerReport is what `xlbench viewers` prints on SIGTERM (one line,
// "viewers: result " + JSON): the frames received while measuring (between
// SIGUSR1 and SIGTERM) and their capture → receipt latency.
type viewerReport struct {
	Protocol  string  `json:"protocol"`
	Viewers   int     `json:"viewers"`
	Connected int     `json:"connected"` // viewers that received at least one frame
	Frames    int     `json:"frames"`    // stamped frames received while measuring
	P50ms     float64 `json:"latency_p50_ms"`
	P99ms     float64 `json:"latency_p99_ms"`
	MaxMs     float64 `json:"latency_max_ms"`
	// Missed is the frames absent from the viewers' streams while
	// measuring: gaps in the stamps' sequence numbers (a viewer cut to the
	// next keyframe, or for WebRTC RTP lost on the loopback).
	Missed int `json:"frames_missed"`
	// Failed counts viewers whose connection failed or ended early.
	Failed int      `json:"viewers_failed"`
	Errors []string `json:"errors,omitempty"` // the first few
}

// viewerStats collects the viewers' samples.
type viewerStats struct {
	measuring atomic.Bool
	mu        sync.Mutex
	lat       []float64 // ms
	missed    int
	connected int
	failed    int
	errs      []string
}

func (s *viewerStats) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failed++
	if len(s.errs) < 5 {
		s.errs = append(s.errs, err.Error())
	}
}

// viewerTrack is one viewer's position in its stream.
type viewerTrack struct {
	s       *viewerStats
	lastSeq uint64
	seen    bool
}

// frame records one stamped frame received at now.
func (v *viewerTrack) frame(st sei.Stamp, now time.Time) {
	first := !v.seen
	gap := 0
	if v.seen && st.Seq > v.lastSeq+1 {
		gap = int(st.Seq - v.lastSeq - 1)
	}
	v.seen, v.lastSeq = true, st.Seq
	if first {
		v.s.mu.Lock()
		v.s.connected++
		v.s.mu.Unlock()
	}
	if !v.s.measuring.Load() {
		return
	}
	v.s.mu.Lock()
	v.s.lat = append(v.s.lat, float64(now.Sub(st.Captured))/float64(time.Millisecond))
	v.s.missed += gap
	v.s.mu.Unlock()
}

// percentile returns the q-quantile (0..1) of sorted by the nearest-rank
// method; 0 for no samples.
func percentile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*q+0.999999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// runViewers is `xlbench viewers`: -per viewers on each of cam1..camN over
// MSE (the WebSocket live view) or WebRTC (WHEP, a pion client), every
// viewer in this process so that the server's CPU is the server's alone.
// It prints "viewers: ready" once every viewer has received a frame (or
// failed), starts measuring on SIGUSR1 and prints its report on SIGTERM.
func runViewers(args []string) {
	fs := flag.NewFlagSet("viewers", flag.ExitOnError)
	baseURL := fs.String("base", "", "server base URL http://host:port")
	token := fs.String("token", "", "API token")
	proto := fs.String("proto", "mse", "mse or webrtc")
	n := fs.Int("cameras", 1, "cameras cam1..camN")
	per := fs.Int("per", 1, "viewers per camera")
	_ = fs.Parse(args)
	if *proto != "mse" && *proto != "webrtc" {
		log.Fatalf("viewers: -proto %q: want mse or webrtc", *proto)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)

	s := &viewerStats{}
	total := *n * *per
	var wg sync.WaitGroup
	started := make(chan struct{}, total) // one per viewer: first frame or failure
	for i := 1; i <= *n; i++ {
		cam := fmt.Sprintf("cam%d", i)
		for range *per {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var once sync.Once
				ready := func() { once.Do(func() { started <- struct{}{} }) }
				var err error
				if *proto == "mse" {
					err = viewMSE(ctx, *baseURL, *token, cam, s, ready)
				} else {
					err = viewWHEP(ctx, *baseURL, *token, cam, s, ready)
				}
				ready()
				if err != nil && ctx.Err() == nil {
					s.fail(fmt.Errorf("%s: %w", cam, err))
				}
			}()
		}
	}
	for range total {
		select {
		case <-started:
		case <-ctx.Done():
		}
	}
	fmt.Println("viewers: ready")
	select {
	case <-usr1:
		s.measuring.Store(true)
	case <-ctx.Done():
	}
	<-ctx.Done()
	s.measuring.Store(false)
	s.mu.Lock()
	rep := viewerReport{Protocol: *proto, Viewers: total, Connected: s.connected, Frames: len(s.lat), Missed: s.missed,
		Failed: s.failed, Errors: s.errs}
	lat := slices.Clone(s.lat)
	s.mu.Unlock()
	slices.Sort(lat)
	rep.P50ms, rep.P99ms = percentile(lat, 0.5), percentile(lat, 0.99)
	if len(lat) > 0 {
		rep.MaxMs = lat[len(lat)-1]
	}
	b, _ := json.Marshal(rep)
	fmt.Printf("viewers: result %s\n", b)
	// The connections are not closed one by one: the process exits.
}

// viewMSE is one viewer of the WebSocket live view: the JSON header, the
// init segment, then one fragment per video frame, each carrying camsim's
// SEI stamp in its mdat.
func viewMSE(ctx context.Context, base, token, cam string, s *viewerStats, ready func()) error {
	u := strings.Replace(base, "http://", "ws://", 1) + "/api/v1/cameras/" + cam + "/live"
	h := http.Header{}
	h.Set("Authorization", "Bearer "+token)
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	c, _, err := websocket.Dial(dctx, u, &websocket.DialOptions{HTTPHeader: h})
	cancel()
	if err != nil {
		return err
	}
	defer c.CloseNow()
	c.SetReadLimit(16 << 20)
	v := &viewerTrack{s: s}
	for i := 0; ; i++ {
		typ, b, err := c.Read(ctx)
		if err != nil {
			return err
		}
		now := time.Now()
		if i < 2 || typ != websocket.MessageBinary { // header (text), init
			continue
		}
		st, ok := fragmentStamp(b)
		if !ok {
			continue // an audio fragment or no stamp
		}
		ready()
		v.frame(st, now)
	}
}

// fragmentStamp returns the SEI stamp in an fMP4 fragment's mdat (H.264,
// NAL units with 4-byte length prefixes).
func fragmentStamp(frag []byte) (sei.Stamp, bool) {
	mdat, ok := findBox(frag, "mdat")
	if !ok {
		return sei.Stamp{}, false
	}
	for len(mdat) >= 4 {
		l := int(binary.BigEndian.Uint32(mdat))
		if l <= 0 || l > len(mdat)-4 {
			break
		}
		if st, ok := sei.Parse(recording.H264, mdat[4:4+l]); ok {
			return st, true
		}
		mdat = mdat[4+l:]
	}
	return sei.Stamp{}, false
}

// findBox returns the payload of the first top-level ISO BMFF box of type
// typ in b.
func findBox(b []byte, typ string) ([]byte, bool) {
	for len(b) >= 8 {
		size := uint64(binary.BigEndian.Uint32(b))
		hdr := uint64(8)
		if size == 1 {
			if len(b) < 16 {
				return nil, false
			}
			size, hdr = binary.BigEndian.Uint64(b[8:]), 16
		} else if size == 0 {
			size = uint64(len(b))
		}
		if size < hdr || size > uint64(len(b)) {
			return nil, false
		}
		if string(b[4:8]) == typ {
			return b[hdr:size], true
		}
		b = b[size:]
	}
	return nil, false
}

// viewWHEP is one WebRTC viewer: a pion peer (loopback UDP only) offers a
// recvonly H.264 transceiver to the server's WHEP endpoint and depacketises
// the track to read each access unit's stamp.
func viewWHEP(ctx context.Context, base, token, cam string, s *viewerStats, ready func()) error {
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		return err
	}
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() }) // loopback only
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return err
	}
	defer pc.Close()
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		return err
	}
	done := make(chan error, 1)
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		var d rtph264.Decoder
		if err := d.Init(); err != nil {
			done <- err
			return
		}
		v := &viewerTrack{s: s}
		for {
			pkt, _, err := tr.ReadRTP()
			if err != nil {
				done <- err
				return
			}
			au, err := d.Decode(pkt)
			if err != nil {
				continue // fragments of an access unit
			}
			if st, ok := sei.FromAU(recording.H264, au); ok {
				ready()
				v.frame(st, time.Now())
			}
		}
	})
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return err
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		return err
	}
	<-gathered
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(rctx, http.MethodPost, base+"/api/v1/cameras/"+cam+"/whep", strings.NewReader(pc.LocalDescription().SDP))
	req.Header.Set("Content-Type", "application/sdp")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("WHEP offer: %s: %s", resp.Status, answer)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(answer)}); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-done:
		if errors.Is(err, io.EOF) && ctx.Err() != nil {
			return nil
		}
		return err
	}
}
