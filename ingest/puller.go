package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtpmpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/pion/rtp"

	"xueliang/ingest/live"
	"xueliang/ingest/rtpdepack"
	"xueliang/ingest/rtspconn"
	"xueliang/ingest/rtsperr"
	"xueliang/ingest/segmenter"
	"xueliang/storage/recording"
)

// Error classes reported in Status.LastErrorClass.
const (
	ErrClassConnect  = "connect"  // dial / RTSP handshake
	ErrClassNoVideo  = "no-video" // no H.264/H.265 track
	ErrClassStream   = "stream"   // error while streaming (EOF, reset, timeout)
	ErrClassTimeout  = "timeout"  // read timeout
	ErrClassPanic    = "panic"
	ErrClassRecorder = "recorder" // segmenter could not be created
	ErrClassAuth     = "auth"     // the camera answered 401 Unauthorized
	// ErrClassVideoStall: the session stayed up (audio or metadata, RTCP,
	// keep-alives still arriving) but its video track delivered no packet
	// for Options.VideoTimeout — a hung encoder.
	ErrClassVideoStall = "video-stall"
)

// ErrClasses returns every error class, for metrics that want a stable set
// of series.
func ErrClasses() []string {
	return []string{ErrClassConnect, ErrClassAuth, ErrClassNoVideo, ErrClassStream, ErrClassTimeout, ErrClassVideoStall, ErrClassPanic, ErrClassRecorder}
}

// rateWindow is the window over which Status.Bitrate and Status.FPS are
// computed.
const rateWindow = 2 * time.Second

// Status is a snapshot of a puller's state.
type Status struct {
	Connected      bool
	LastError      string // redacted
	LastErrorClass string
	Reconnects     int64
	Frames         int64 // video frames recorded
	Bytes          int64 // media bytes received (RTP payload)
	// TappedPackets counts the video RTP packets whose payload reached the
	// recorder from the connection's buffer, past gortsplib's copy
	// (interleaved TCP sessions; rtspconn.Tap).
	TappedPackets int64
	LastKeyframe  time.Time
	SessionStart  time.Time
	// Clock offset camera − server measured from RTCP sender reports;
	// valid when ClockOffsetKnown.
	ClockOffset      time.Duration
	ClockOffsetKnown bool
	// ClockUntrusted: the current session's RTCP wall clock was off the
	// server's by more than Options.MaxClockSkew when it was anchored, so
	// it is anchored to the receive time. ClockRejections counts such
	// sessions (main and sub stream).
	ClockUntrusted  bool
	ClockRejections int64

	// ConnectAttempts counts RTSP sessions started (each dial).
	ConnectAttempts int64
	// Failures counts ended sessions by error class (the ErrClass*
	// constants). The map is a copy.
	Failures map[string]int64
	// RTPPacketsReceived and RTPPacketsLost are gortsplib's client counters
	// summed over every session of this puller (the live session included).
	RTPPacketsReceived, RTPPacketsLost uint64
	// Bitrate (RTP payload bits per second) and FPS (recorded video frames
	// per second) over the last complete window of about 2 s; 0 while not
	// connected.
	Bitrate, FPS float64
	// Recorder is a snapshot of the segmenter's counters (zero before the
	// recorder exists).
	Recorder segmenter.Stats
}

// Puller records one camera: it runs RTSP sessions and reconnects.
type Puller struct {
	cfg  CameraConfig
	opts Options
	log  *slog.Logger
	red  rtsperr.Redactor // the main URL's password out of logs and Status

	mu     sync.Mutex
	status Status
	writer *segmenter.Writer
	// rate window start (for Bitrate/FPS)
	winStart          time.Time
	winBytes, winFrms int64

	// statsMu serialises reading the live session's RTP counters with
	// folding them into the totals when the session ends; it is never held
	// with mu while calling into gortsplib.
	statsMu sync.Mutex
	client  *gortsplib.Client // live session after PLAY, nil otherwise

	// motion is the running motion analysis (motion.go), nil when off;
	// motionCounters outlive sessions and restarts. Both under mu.
	motion         *motionWorker
	motionCounters *motionCounters

	// events queues and writes camera-side (ONVIF metadata) events
	// (events.go).
	events *eventPipe
}

// NewPuller returns a puller for cfg; call Run.
func NewPuller(cfg CameraConfig, opts Options) *Puller {
	if opts.BackoffMin <= 0 {
		opts.BackoffMin = 500 * time.Millisecond
	}
	if opts.BackoffMax <= 0 {
		opts.BackoffMax = 30 * time.Second
	}
	if opts.BackoffResetAfter <= 0 {
		opts.BackoffResetAfter = 10 * time.Second
	}
	if opts.ReadTimeout <= 0 {
		opts.ReadTimeout = 10 * time.Second
	}
	if opts.VideoTimeout <= 0 {
		opts.VideoTimeout = 2 * opts.ReadTimeout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxClockSkew <= 0 {
		opts.MaxClockSkew = 5 * time.Second
	}
	if opts.Jitter == nil {
		opts.Jitter = rand.Float64
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Puller{
		cfg:  cfg,
		opts: opts,
		red:  rtsperr.NewRedactor(cfg.URL),
		log:  log.With("camera", cfg.ID, "component", "ingest"),
		// events logs with the same attributes as log
		events: newEventPipe(cfg.ID, opts.Events, log.With("camera", cfg.ID, "component", "ingest")),
	}
}

// Status returns a snapshot of the puller's state. It is cheap: it copies
// counters and reads the live session's atomic RTP counters.
func (p *Puller) Status() Status {
	p.statsMu.Lock()
	defer p.statsMu.Unlock()
	p.mu.Lock()
	c, w := p.client, p.writer
	st := p.status
	st.Failures = make(map[string]int64, len(p.status.Failures))
	for k, v := range p.status.Failures {
		st.Failures[k] = v
	}
	p.mu.Unlock()
	if c != nil {
		recv, lost := rtpCounters(c)
		st.RTPPacketsReceived += recv
		st.RTPPacketsLost += lost
	}
	if w != nil {
		st.Recorder = w.Stats()
	}
	return st
}

// rtpCounters returns a playing client's RTP packet counters. It must only
// be called between PLAY and the end of the session (gortsplib does not
// change its media map then).
func rtpCounters(c *gortsplib.Client) (received, lost uint64) {
	s := c.Stats()
	return s.Session.RTPPacketsReceived, s.Session.RTPPacketsLost
}

// setClient publishes the playing client for Status, or (c == nil) folds
// the ending session's RTP counters into the totals.
func (p *Puller) setClient(c *gortsplib.Client) {
	p.statsMu.Lock()
	defer p.statsMu.Unlock()
	var recv, lost uint64
	p.mu.Lock()
	old := p.client
	p.mu.Unlock()
	if c == nil && old != nil {
		recv, lost = rtpCounters(old)
	}
	p.update(func(s *Status) {
		s.RTPPacketsReceived += recv
		s.RTPPacketsLost += lost
		p.client = c
	})
}

func (p *Puller) update(fn func(*Status)) {
	p.mu.Lock()
	fn(&p.status)
	p.mu.Unlock()
}

// Run records until ctx is cancelled; it returns nil then, or an error if
// the recorder cannot be created.
func (p *Puller) Run(ctx context.Context) error {
	idx := p.opts.Index
	if p.cfg.Epoch > 0 && p.opts.FencedIndex != nil {
		idx = p.opts.FencedIndex(p.cfg.ID, p.cfg.Epoch)
	}
	// A fenced writer (another node took the camera over) ends the
	// sessions; Run then reports segmenter.ErrFenced.
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	var fenced atomic.Bool
	w, err := segmenter.New(segmenter.Config{
		CameraID:            p.cfg.ID,
		SpoolRoot:           p.opts.SpoolRoot,
		Index:               idx,
		OnFenced:            func() { fenced.Store(true); stop() },
		OnClosed:            p.opts.OnClosed,
		Quota:               p.opts.Quota,
		SegmentDuration:     p.cfg.SegmentDuration,
		MaxFragmentDuration: p.cfg.MaxFragmentDuration,
		FsyncInterval:       p.opts.FsyncInterval,
		IndexOutage:         p.opts.IndexOutage,
		Stagger:             p.opts.StaggerSegments,
		Logger:              p.opts.Logger,
	})
	if err != nil {
		p.update(func(s *Status) { s.LastError, s.LastErrorClass = err.Error(), ErrClassRecorder })
		return fmt.Errorf("camera %s: %w", p.cfg.ID, err)
	}
	// The recorder's index worker outlives the sessions: the rows of the
	// segment the last one closes are written after ctx has ended.
	worker := make(chan error, 1)
	go func() { worker <- w.Run(context.WithoutCancel(ctx)) }()
	defer func() {
		w.Close()
		<-worker
	}()
	p.update(func(*Status) { p.writer = w })
	defer p.startMotion(ctx)()
	defer p.events.start(ctx)() // after the sessions: flushes their last events

	p.log.Info("puller started", "url", p.red.URL(), "transport", p.transport())
	backoff := p.opts.BackoffMin
	for {
		started := time.Now()
		p.update(func(s *Status) { s.ConnectAttempts++ })
		class, err := p.safeSession(ctx, w)
		w.EndSession()
		p.update(func(s *Status) {
			s.Connected = false
			s.Bitrate, s.FPS = 0, 0
			p.winStart = time.Time{}
		})
		if fenced.Load() {
			p.update(func(s *Status) { s.LastError, s.LastErrorClass = "camera taken over by another node", ErrClassRecorder })
			p.log.Warn("puller stopped: camera taken over by another node")
			return fmt.Errorf("camera %s: %w", p.cfg.ID, segmenter.ErrFenced)
		}
		if ctx.Err() != nil {
			p.log.Info("puller stopped")
			return nil
		}
		if time.Since(started) >= p.opts.BackoffResetAfter {
			backoff = p.opts.BackoffMin
		}
		msg := "session ended"
		if err != nil {
			msg = p.red.Err(err)
		}
		wait := time.Duration(float64(backoff) * (0.5 + 0.5*p.opts.Jitter()))
		p.update(func(s *Status) {
			s.LastError, s.LastErrorClass = msg, class
			s.Reconnects++
			if s.Failures == nil {
				s.Failures = map[string]int64{}
			}
			s.Failures[class]++
		})
		p.log.Warn("session ended, reconnecting", "error_class", class, "err", msg, "wait", wait)
		select {
		case <-ctx.Done():
			p.log.Info("puller stopped")
			return nil
		case <-time.After(wait):
		}
		backoff = min(backoff*2, p.opts.BackoffMax)
	}
}

func (p *Puller) transport() string {
	if p.cfg.Transport == "udp" {
		return "udp"
	}
	return "tcp"
}

// safeSession runs one session and turns a panic into an error.
func (p *Puller) safeSession(ctx context.Context, w *segmenter.Writer) (class string, err error) {
	defer func() {
		if r := recover(); r != nil {
			p.log.Error("session panicked", "panic", fmt.Sprint(r))
			class, err = ErrClassPanic, fmt.Errorf("panic: %v", r)
		}
	}()
	return p.session(ctx, w)
}

// videoTrack handles one video format's packets.
type videoTrack struct {
	isH265 bool
	// depacketisers; their AUs alias a reused buffer (depack.go)
	dec264 *rtpdepack.H264
	dec265 *rtpdepack.H265
	ext264 *h264.DTSExtractor
	ext265 *h265.DTSExtractor
	// latest parameter sets (SDP, then in-band)
	vps, sps, pps []byte
}

// decode returns the next complete access unit, or nil. The AU aliases the
// depacketiser's buffer: it is valid until the next call, and whatever
// keeps any of it longer must copy it (see depack.go).
func (v *videoTrack) decode(pkt *rtp.Packet) ([][]byte, error) {
	var au [][]byte
	var err error
	if v.isH265 {
		au, err = v.dec265.Decode(pkt)
	} else {
		au, err = v.dec264.Decode(pkt)
	}
	if errors.Is(err, rtpdepack.ErrMorePacketsNeeded) || errors.Is(err, rtpdepack.ErrNonStartingPacketAndNoPrevious) {
		return nil, nil
	}
	return au, err
}

// prepare remembers in-band parameter sets and prepends them to a random
// access AU that lacks them. It returns the AU and whether it is random
// access. The parameter sets it keeps are copies (keepParamSet: au aliases
// the depacketiser's buffer), and it puts them into au in place of the
// originals, because the H.264 DTS extractor keeps the last SPS it parsed.
func (v *videoTrack) prepare(au [][]byte) ([][]byte, bool) {
	if v.isH265 {
		var hasVPS, hasSPS, hasPPS bool
		for i, n := range au {
			if len(n) == 0 {
				continue
			}
			switch h265.NALUType((n[0] >> 1) & 0x3f) {
			case h265.NALUType_VPS_NUT:
				v.vps, hasVPS = keepParamSet(v.vps, n), true
				au[i] = v.vps
			case h265.NALUType_SPS_NUT:
				v.sps, hasSPS = keepParamSet(v.sps, n), true
				au[i] = v.sps
			case h265.NALUType_PPS_NUT:
				v.pps, hasPPS = keepParamSet(v.pps, n), true
				au[i] = v.pps
			}
		}
		key := h265.IsRandomAccess(au)
		if key && (!hasVPS || !hasSPS || !hasPPS) && v.vps != nil && v.sps != nil && v.pps != nil {
			out := [][]byte{v.vps, v.sps, v.pps}
			for _, n := range au {
				switch h265.NALUType((n[0] >> 1) & 0x3f) {
				case h265.NALUType_VPS_NUT, h265.NALUType_SPS_NUT, h265.NALUType_PPS_NUT:
					continue
				}
				out = append(out, n)
			}
			au = out
		}
		return au, key
	}
	var hasSPS, hasPPS bool
	for i, n := range au {
		if len(n) == 0 {
			continue
		}
		switch h264.NALUType(n[0] & 0x1f) {
		case h264.NALUTypeSPS:
			v.sps, hasSPS = keepParamSet(v.sps, n), true
			au[i] = v.sps
		case h264.NALUTypePPS:
			v.pps, hasPPS = keepParamSet(v.pps, n), true
			au[i] = v.pps
		}
	}
	key := h264.IsRandomAccess(au)
	if key && (!hasSPS || !hasPPS) && v.sps != nil && v.pps != nil {
		out := [][]byte{v.sps, v.pps}
		for _, n := range au {
			switch h264.NALUType(n[0] & 0x1f) {
			case h264.NALUTypeSPS, h264.NALUTypePPS, h264.NALUTypeAccessUnitDelimiter:
				continue
			}
			out = append(out, n)
		}
		au = out
	}
	return au, key
}

func (v *videoTrack) resetDTS() {
	if v.isH265 {
		v.ext265 = nil
	} else {
		v.ext264 = nil
	}
}

// extractDTS returns the AU's DTS; the extractor is created at the first
// random access AU. ok is false while waiting for one.
func (v *videoTrack) extractDTS(au [][]byte, pts int64, key bool) (int64, bool, error) {
	if v.isH265 {
		if v.ext265 == nil {
			if !key {
				return 0, false, nil
			}
			v.ext265 = &h265.DTSExtractor{}
			v.ext265.Initialize()
		}
		dts, err := v.ext265.Extract(au, pts)
		return dts, err == nil, err
	}
	if v.ext264 == nil {
		if !key {
			return 0, false, nil
		}
		v.ext264 = &h264.DTSExtractor{}
		v.ext264.Initialize()
	}
	dts, err := v.ext264.Extract(au, pts)
	return dts, err == nil, err
}

// dial starts an RTSP client for rawURL with the camera's transport and
// read timeout. The client is closed when ctx is cancelled (gortsplib calls
// are not context-aware) or by closeFn, which the caller defers.
func (p *Puller) dial(ctx context.Context, rawURL string) (c *gortsplib.Client, u *base.URL, d *rtspconn.Dialer, closeFn func(), err error) {
	u, err = base.ParseURL(rawURL)
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("parse url: %w", err)
	}
	tr := gortsplib.TransportTCP
	if p.transport() == "udp" {
		tr = gortsplib.TransportUDP
	}
	d = &rtspconn.Dialer{}
	d.Control = p.opts.DialControl
	c = &gortsplib.Client{
		Scheme:      u.Scheme,
		Host:        u.Host,
		Transport:   &tr,
		ReadTimeout: p.opts.ReadTimeout,
		DialContext: d.DialContext, // 64 KiB reads instead of gortsplib's 4 KiB
	}
	if err := c.Start2(); err != nil {
		return nil, nil, nil, nil, fmt.Errorf("start client: %w", err)
	}
	stop := context.AfterFunc(ctx, c.Close)
	return c, u, d, func() { stop(); c.Close() }, nil
}

// session runs one RTSP session until it fails or ctx is cancelled: it
// finds the tracks, sets up their pipelines and plays.
func (p *Puller) session(ctx context.Context, w *segmenter.Writer) (string, error) {
	c, u, dialer, closeClient, err := p.dial(ctx, p.cfg.URL)
	if err != nil {
		return ErrClassConnect, err
	}
	defer closeClient()

	desc, _, err := c.Describe(u)
	if err != nil {
		return connectClass(err), fmt.Errorf("describe: %w", err)
	}
	tr := p.pickTracks(desc)
	if tr.video == nil {
		return ErrClassNoVideo, errors.New("no H264 or H265 video track")
	}
	pl, err := p.newPipeline(c, w, tr.video, tr.vforma)
	if err != nil {
		return ErrClassConnect, err
	}
	vsetup, err := c.Setup(desc.BaseURL, tr.video, 0, 0)
	if err != nil {
		return connectClass(err), fmt.Errorf("setup video: %w", err)
	}
	pl.vtap = dialer.TapSetup(vsetup, rtspconn.PrefixFor(tr.vforma)) // nil with UDP
	if dec := p.audioDecoder(tr.aforma, &pl.sess); dec != nil {
		if _, err := c.Setup(desc.BaseURL, tr.audio, 0, 0); err != nil {
			return connectClass(err), fmt.Errorf("setup audio: %w", err)
		}
		c.OnPacketRTP(tr.audio, tr.aforma, func(pkt *rtp.Packet) { pl.onAudio(tr.audio, dec, pkt) })
	}
	c.OnPacketRTP(tr.video, tr.vforma, pl.onVideo)

	// Camera-side events; a bad metadata track never stops recording.
	meta := p.setupMetadata(c, desc.BaseURL, tr.meta, tr.mforma)
	defer meta.end()

	if _, err := c.Play(nil); err != nil {
		return connectClass(err), fmt.Errorf("play: %w", err)
	}
	p.setClient(c)
	defer p.setClient(nil)
	if pl.live != nil {
		defer pl.live.EndSession()
	}
	p.log.Info("session started", "url", p.red.URL())

	stalled := watchVideo(c, &pl.videoPackets, p.opts.VideoTimeout, p.log, p.red.URL())
	err = c.Wait()
	if pl.vtap != nil {
		short, whole := pl.vtap.Stats()
		p.log.Debug("video payload tap", "shortened", short, "whole", whole)
	}
	if ctx.Err() != nil {
		return "", ctx.Err()
	}
	if err := stalled(); err != nil {
		return ErrClassVideoStall, err
	}
	if rtsperr.Classify(err) == rtsperr.Timeout {
		return ErrClassTimeout, fmt.Errorf("read: %w", err)
	}
	return ErrClassStream, fmt.Errorf("stream: %w", err)
}

// errVideoStall ends a session whose video stopped while the connection
// stayed up.
var errVideoStall = errors.New("video stalled")

// watchVideo ends the session (closes c) when its video track delivers no
// packet (packets, counted by the session's RTP callback, stops growing)
// for timeout: a camera whose encoder hung but whose audio, metadata or
// RTCP keep the connection alive would otherwise stay "connected" and
// record or analyse nothing. It stops when the session ends; stalled,
// called after c.Wait, returns an errVideoStall error when it ended it,
// else nil.
func watchVideo(c *gortsplib.Client, packets *atomic.Int64, timeout time.Duration, log *slog.Logger, url string) (stalled func() error) {
	var fired atomic.Bool
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(min(time.Second, timeout/4))
		defer tick.Stop()
		last, since := packets.Load(), time.Now()
		for {
			select {
			case <-stop:
				return
			case now := <-tick.C:
				if n := packets.Load(); n != last {
					last, since = n, now
					continue
				}
				if now.Sub(since) >= timeout {
					fired.Store(true)
					log.Warn("video stalled, reconnecting", "url", url, "for", timeout)
					go c.Close() // c.Wait returns; Close waits for the callbacks
					return
				}
			}
		}
	}()
	go func() { _ = c.Wait(); close(stop) }()
	return func() error {
		<-done
		if !fired.Load() {
			return nil
		}
		return fmt.Errorf("%w: no video packet for %s while the session stayed up", errVideoStall, timeout)
	}
}

// connectClass is the class of a failure while connecting (a request
// before PLAY answered).
func connectClass(err error) string {
	if rtsperr.Classify(err) == rtsperr.Unauthorized {
		return ErrClassAuth
	}
	return ErrClassConnect
}

// sessionTracks are the tracks a session records, from the camera's SDP:
// the first H.264/H.265 video, the first AAC/G.711 audio and the first
// ONVIF metadata track. Missing ones are nil.
type sessionTracks struct {
	video, audio, meta     *description.Media
	vforma, aforma, mforma format.Format
}

func (p *Puller) pickTracks(desc *description.Session) sessionTracks {
	var tr sessionTracks
	for _, m := range desc.Medias {
		for _, f := range m.Formats {
			switch f.(type) {
			case *format.H264, *format.H265:
				if tr.video == nil {
					tr.video, tr.vforma = m, f
					continue
				}
			case *format.MPEG4Audio, *format.G711:
				if tr.audio == nil {
					tr.audio, tr.aforma = m, f
					continue
				}
			case *format.Generic: // ONVIF metadata (events.go)
				if tr.meta == nil && isONVIFMetadata(f) {
					tr.meta, tr.mforma = m, f
					continue
				}
			}
			if f != tr.vforma && f != tr.aforma {
				p.log.Info("ignoring track", "media", string(m.Type), "codec", f.Codec())
			}
		}
	}
	return tr
}

// audioDecoder returns the RTP decoder of the audio format f (nil for no
// usable audio: none, or an AAC track without config) and sets sess.Audio.
func (p *Puller) audioDecoder(f format.Format, sess *segmenter.Session) func(*rtp.Packet) ([][]byte, error) {
	switch f := f.(type) {
	case *format.MPEG4Audio:
		if f.Config == nil {
			p.log.Info("ignoring track", "media", "audio", "codec", f.Codec(), "reason", "no config")
			return nil
		}
		dec, err := f.CreateDecoder()
		if err != nil {
			p.log.Info("ignoring track", "media", "audio", "codec", f.Codec(), "err", err.Error())
			return nil
		}
		sess.Audio = &recording.Audio{Codec: recording.AAC, AAC: *f.Config}
		return func(pkt *rtp.Packet) ([][]byte, error) {
			aus, err := dec.Decode(pkt)
			if errors.Is(err, rtpmpeg4audio.ErrMorePacketsNeeded) {
				return nil, nil
			}
			return aus, err
		}
	case *format.G711:
		dec, err := f.CreateDecoder()
		if err != nil {
			p.log.Info("ignoring track", "media", "audio", "codec", f.Codec(), "err", err.Error())
			return nil
		}
		codec := recording.G711ALaw
		if f.MULaw {
			codec = recording.G711MuLaw
		}
		sess.Audio = &recording.Audio{Codec: codec, SampleRate: f.SampleRate, ChannelCount: f.ChannelCount}
		return func(pkt *rtp.Packet) ([][]byte, error) {
			b, err := dec.Decode(pkt)
			if err != nil {
				return nil, err
			}
			return [][]byte{b}, nil
		}
	}
	return nil
}

// pipeline carries one session's media from the RTP callbacks to the
// recorder: depacketising, parameter sets, DTS, the wall-clock anchor,
// keyframes for motion analysis. Its state is shared by the callbacks
// (one goroutine per media with UDP), under mu.
type pipeline struct {
	p     *Puller
	c     *gortsplib.Client
	w     *segmenter.Writer
	vmedi *description.Media
	vtap  *rtspconn.Tap // video RTP payloads from the read buffer; nil with UDP
	vt    *videoTrack
	// sess is the recorder session, anchored at the first access unit.
	sess segmenter.Session
	// mw receives keyframes for motion analysis (nil: none, or a sub
	// stream feeds the analyser); mcodec is their codec.
	mw     *motionWorker
	mcodec recording.VideoCodec
	// live is the main stream's fan-out to live viewers (nil: off).
	live *live.Stream

	// videoPackets counts the video track's RTP packets (the video
	// watchdog's view of the session).
	videoPackets atomic.Int64

	mu                    sync.Mutex
	anchored, offsetSeen  bool
	decodeErrs, writeErrs int64
	lastWarn              time.Time
	// wall clock of the session: anchorWall ↔ anchorPTS (for motion)
	anchorWall time.Time
	anchorPTS  int64
}

// newPipeline prepares the video track vforma of medi for recording.
func (p *Puller) newPipeline(c *gortsplib.Client, w *segmenter.Writer, medi *description.Media, vforma format.Format) (*pipeline, error) {
	pl := &pipeline{p: p, c: c, w: w, vmedi: medi, vt: &videoTrack{}}
	var err error
	switch f := vforma.(type) {
	case *format.H264:
		pl.vt.dec264, err = newH264Depacketizer(f)
		pl.vt.sps, pl.vt.pps = f.SafeParams()
		pl.sess.Video = recording.Video{Codec: recording.H264, SPS: pl.vt.sps, PPS: pl.vt.pps}
	case *format.H265:
		pl.vt.isH265 = true
		pl.vt.dec265, err = newH265Depacketizer(f)
		pl.vt.vps, pl.vt.sps, pl.vt.pps = f.SafeParams()
		pl.sess.Video = recording.Video{Codec: recording.H265, VPS: pl.vt.vps, SPS: pl.vt.sps, PPS: pl.vt.pps}
	}
	if err != nil {
		return nil, fmt.Errorf("create video decoder: %w", err)
	}
	pl.mcodec = pl.sess.Video.Codec
	if p.opts.Live != nil {
		pl.live = p.opts.Live.Stream(p.cfg.ID, live.Main)
	}
	p.mu.Lock()
	if p.motion != nil && p.motion.keyOnly {
		pl.mw = p.motion
	}
	p.mu.Unlock()
	return pl, nil
}

// countErr counts a decode or write error and logs the counts at most
// every 10 s. mu is held.
func (pl *pipeline) countErr(n *int64) {
	*n++
	if time.Since(pl.lastWarn) >= 10*time.Second {
		pl.lastWarn = time.Now()
		pl.p.log.Warn("stream errors", "decode_errors", pl.decodeErrs, "write_errors", pl.writeErrs)
	}
}

// onVideo handles one video RTP packet.
func (pl *pipeline) onVideo(pkt *rtp.Packet) {
	pl.videoPackets.Add(1)
	tapped := false
	if pl.vtap != nil {
		if whole := pl.vtap.Packet(pkt); whole != pkt { // valid during this call
			pkt, tapped = whole, true
		}
	}
	p := pl.p
	pl.mu.Lock()
	defer pl.mu.Unlock()
	p.update(func(s *Status) {
		s.Bytes += int64(len(pkt.Payload))
		if tapped {
			s.TappedPackets++
		}
	})
	pts, ok := pl.c.PacketPTS2(pl.vmedi, pkt)
	if !ok {
		return
	}
	au, err := pl.vt.decode(pkt)
	if err != nil {
		pl.countErr(&pl.decodeErrs)
		return
	}
	if au == nil {
		return
	}
	au, key := pl.vt.prepare(au)
	dts, ok, err := pl.vt.extractDTS(au, pts, key)
	if err != nil {
		pl.countErr(&pl.decodeErrs)
		pl.vt.resetDTS()
		return
	}
	if !ok {
		return
	}
	recvTime := p.opts.Now()
	ntp, ntpOK := pl.c.PacketNTP(pl.vmedi, pkt)
	if !pl.anchored && !pl.anchor(pts, recvTime, ntp, ntpOK) {
		return
	}
	if ntpOK && !pl.offsetSeen {
		pl.offsetSeen = true
		off := ntp.Sub(recvTime)
		p.update(func(st *Status) { st.ClockOffset, st.ClockOffsetKnown = off, true })
		p.log.Info("camera clock offset measured", "offset", off)
	}
	if pl.mw != nil && key {
		pl.mw.offer(pl.anchorWall.Add(ticksToWall(pts-pl.anchorPTS)), pl.mcodec, au) // never blocks
	}
	if pl.live != nil && pl.live.Active() { // one atomic load without viewers
		pl.live.PublishVideo(pts, dts, au, key, recvTime) // copies, never blocks
	}
	if err := pl.w.WriteVideo(pts, dts, au, key); err != nil {
		pl.countErr(&pl.writeErrs)
		return
	}
	p.update(func(st *Status) {
		st.Frames++
		if key {
			st.LastKeyframe = recvTime
		}
		switch el := recvTime.Sub(p.winStart); {
		case p.winStart.IsZero() || el < 0:
			p.winStart, p.winBytes, p.winFrms = recvTime, st.Bytes, st.Frames
		case el >= rateWindow:
			st.Bitrate = float64(st.Bytes-p.winBytes) * 8 / el.Seconds()
			st.FPS = float64(st.Frames-p.winFrms) / el.Seconds()
			p.winStart, p.winBytes, p.winFrms = recvTime, st.Bytes, st.Frames
		}
	})
}

// anchor starts the recorder session at the first access unit (PTS pts,
// received at recvTime): wall clock from the RTCP sender report (ntp, when
// ntpOK), the receive time otherwise. mu is held; it reports whether the
// session started.
func (pl *pipeline) anchor(pts int64, recvTime, ntp time.Time, ntpOK bool) bool {
	p := pl.p
	anchor, rejected := clockAnchor(recvTime, ntp, ntpOK, p.opts.MaxClockSkew)
	if rejected {
		p.log.Warn("camera clock off the server's, session anchored to the receive time",
			"offset", ntp.Sub(recvTime), "max_clock_skew", p.opts.MaxClockSkew)
	}
	s := pl.sess
	s.Anchor, s.AnchorPTS = anchor, pts
	if err := pl.w.Start(s); err != nil {
		pl.countErr(&pl.writeErrs)
		return false
	}
	pl.anchorWall, pl.anchorPTS, pl.anchored = anchor, pts, true
	if pl.live != nil {
		pl.live.StartSession(live.Session{Video: s.Video, Audio: s.Audio, Anchor: anchor, AnchorPTS: pts})
	}
	p.update(func(st *Status) {
		st.Connected, st.SessionStart, st.ClockUntrusted = true, anchor, rejected
		if rejected {
			st.ClockRejections++
		}
	})
	p.log.Info("recording", "anchor", anchor, "rtcp_anchor", ntpOK && !rejected, "codec", s.Video.Codec.String(), "audio", s.Audio != nil)
	return true
}

// clockAnchor is the wall clock of a session's first access unit, received
// at recvTime: the RTCP sender report's time ntp when there is one (ntpOK)
// within maxSkew of recvTime, recvTime otherwise; rejected reports an
// RTCP time refused for being off by more than maxSkew.
func clockAnchor(recvTime, ntp time.Time, ntpOK bool, maxSkew time.Duration) (anchor time.Time, rejected bool) {
	if !ntpOK {
		return recvTime, false
	}
	if d := ntp.Sub(recvTime); d > maxSkew || d < -maxSkew {
		return recvTime, true
	}
	return ntp, false
}

// onAudio handles one audio RTP packet of medi, decoded by dec.
func (pl *pipeline) onAudio(medi *description.Media, dec func(*rtp.Packet) ([][]byte, error), pkt *rtp.Packet) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	pl.p.update(func(s *Status) { s.Bytes += int64(len(pkt.Payload)) })
	if !pl.anchored {
		return
	}
	pts, ok := pl.c.PacketPTS2(medi, pkt)
	if !ok {
		return
	}
	aus, err := dec(pkt)
	if err != nil {
		pl.countErr(&pl.decodeErrs)
		return
	}
	if len(aus) == 0 {
		return
	}
	if pl.live != nil && pl.live.Active() {
		pl.live.PublishAudio(pts, aus, pl.p.opts.Now())
	}
	if err := pl.w.WriteAudio(pts, aus); err != nil {
		pl.countErr(&pl.writeErrs)
	}
}
