// Package probe checks a camera the way an installer needs before adding it:
// it opens one RTSP session (TCP), reads the stream for a short window and
// reports the video codec, resolution, measured frame rate and bitrate, the
// audio track, the time to the first keyframe, and a JPEG snapshot of that
// keyframe (decoded with ingest/decode).
//
//	DESCRIBE ─▶ pick tracks ─▶ SETUP video ─▶ PLAY ─▶ first keyframe ─▶ window (2 s) ─▶ Result
//	  │                          │                        │
//	  unreachable / unauthorized no_video /               no_keyframe
//	  / not_found / rtsp_error   unsupported_codec
//
// Every failure wraps exactly one of the sentinel errors below (test with
// errors.Is; Code gives its machine-readable name). Error messages and log
// lines never carry the password: URLs are redacted and the password text
// is scrubbed from messages coming from the RTSP library.
//
// Bounds: Options.Timeout (default 10 s) covers connecting and waiting for
// the first keyframe; the measuring window (default 2 s) follows it, so a
// probe takes at most Timeout + Window, plus the snapshot's decode.
package probe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/jpeg"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/rtp"

	"xueliang/ingest/camnet"
	"xueliang/ingest/decode"
	"xueliang/ingest/rtsperr"
	"xueliang/storage/recording"
)

// Probe errors. Every error returned by Probe wraps exactly one of them,
// except when ctx ends first: then it wraps ctx.Err().
var (
	// ErrUnreachable: the address does not answer (DNS, connection refused,
	// dial or RTSP response timeout).
	ErrUnreachable = errors.New("camera unreachable")
	// ErrUnauthorized: the camera answered 401 or 403 (wrong or missing
	// credentials).
	ErrUnauthorized = errors.New("wrong credentials")
	// ErrNotFound: the camera answered 404 to DESCRIBE (wrong stream path).
	ErrNotFound = errors.New("stream not found")
	// ErrNoVideo: the stream has no video track.
	ErrNoVideo = errors.New("no video track")
	// ErrUnsupportedCodec: the video track is neither H.264 nor H.265.
	ErrUnsupportedCodec = errors.New("unsupported video codec")
	// ErrNoKeyframe: no keyframe arrived within the timeout.
	ErrNoKeyframe = errors.New("no keyframe")
	// ErrNotAllowed: the camera's address is outside the allowed camera
	// networks (a dialer that refuses with camnet.ErrRefused).
	ErrNotAllowed = errors.New("camera address not allowed")
	// ErrRTSP: any other RTSP failure (bad URL, protocol error, SETUP or
	// PLAY refused, stream ended).
	ErrRTSP = errors.New("rtsp error")
)

// Codes returned by Code, stable for machines (the HTTP API, scripts).
const (
	CodeUnreachable      = "unreachable"
	CodeUnauthorized     = "unauthorized"
	CodeNotFound         = "not_found"
	CodeNoVideo          = "no_video"
	CodeUnsupportedCodec = "unsupported_codec"
	CodeNoKeyframe       = "no_keyframe"
	CodeNotAllowed       = "not_allowed"
	CodeRTSP             = "rtsp_error"
)

var codes = []struct {
	err  error
	code string
}{
	{ErrUnreachable, CodeUnreachable},
	{ErrUnauthorized, CodeUnauthorized},
	{ErrNotFound, CodeNotFound},
	{ErrNoVideo, CodeNoVideo},
	{ErrUnsupportedCodec, CodeUnsupportedCodec},
	{ErrNoKeyframe, CodeNoKeyframe},
	{ErrNotAllowed, CodeNotAllowed},
	{ErrRTSP, CodeRTSP},
}

// Code returns the machine-readable code of a probe error, "" for nil or an
// error that wraps none of the sentinels.
func Code(err error) string {
	for _, c := range codes {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return ""
}

// FromCode returns the sentinel for a code (the inverse of Code), nil when
// the code is unknown. Clients of the HTTP API use it to rebuild the error.
func FromCode(code string) error {
	for _, c := range codes {
		if c.code == code {
			return c.err
		}
	}
	return nil
}

// Options configure a probe. The zero value is ready to use.
type Options struct {
	// User and Pass override the URL's credentials when User is not empty;
	// Pass alone replaces the URL's password.
	User, Pass string
	// Timeout bounds connecting and waiting for the first keyframe. It
	// defaults to 10s.
	Timeout time.Duration
	// Window is how long the stream is measured after the first keyframe.
	// It defaults to 2s.
	Window time.Duration
	// JPEGQuality of the snapshot. It defaults to 85.
	JPEGQuality int
	// DialContext opens the TCP connection. It defaults to a net.Dialer.
	DialContext func(ctx context.Context, network, address string) (net.Conn, error)
	// Logger receives debug lines (redacted). Nil discards.
	Logger *slog.Logger
}

// Result is what a probe found.
type Result struct {
	// URL is the probed URL with the password redacted.
	URL   string
	Video Video
	// Audio is nil when the stream has no audio track.
	Audio *Audio
	// Connect is the time from the dial to the PLAY response.
	Connect time.Duration
	// FirstKeyframe is the time from the PLAY response to the first
	// keyframe's last packet.
	FirstKeyframe time.Duration
	// Window is the measuring window actually observed after the first
	// keyframe.
	Window time.Duration
	// Snapshot is a JPEG of the first decoded picture (the first keyframe);
	// empty when it could not be decoded, with SnapshotError saying why.
	Snapshot      []byte
	SnapshotError string
}

// Video describes the video track.
type Video struct {
	Codec string // "H264" or "H265"
	// Width and Height come from the SPS (in-band when sent, else the SDP's),
	// or from the decoded picture when no SPS could be parsed.
	Width, Height int
	// FPS is measured from the presentation timestamps of the frames
	// received in the window.
	FPS float64
	// DeclaredFPS is the frame rate in the SPS timing info, 0 when absent.
	DeclaredFPS float64
	// Bitrate is the measured video bitrate in bits per second (access unit
	// bytes over the frames' duration).
	Bitrate float64
	// Frames is the number of access units measured in the window.
	Frames int
}

// Audio describes the audio track as the SDP declares it.
type Audio struct {
	Codec      string // "AAC", "G711A", "G711U", "LPCM", "Opus" or the SDP's name
	SampleRate int
	Channels   int
}

// Probe probes the camera at rawURL (rtsp:// or rtsps://).
func Probe(ctx context.Context, rawURL string, opts Options) (Result, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.Window <= 0 {
		opts.Window = 2 * time.Second
	}
	if opts.JPEGQuality <= 0 || opts.JPEGQuality > 100 {
		opts.JPEGQuality = 85
	}
	if opts.DialContext == nil {
		opts.DialContext = (&net.Dialer{}).DialContext
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &prober{opts: opts}
	u, err := p.parseURL(rawURL)
	if err != nil {
		return Result{URL: p.redacted}, err
	}
	p.log = log.With("component", "probe", "url", p.redacted)
	res, err := p.run(ctx, u)
	res.URL = p.redacted
	if err != nil {
		p.log.Debug("probe failed", "code", Code(err), "err", err.Error())
	}
	return res, err
}

type prober struct {
	opts     Options
	log      *slog.Logger
	redacted string // the URL without its password
	red      rtsperr.Redactor
}

func (p *prober) parseURL(raw string) (*base.URL, error) {
	p.redacted = "<invalid url>"
	pu, err := url.Parse(raw)
	if err != nil {
		// url.Parse quotes the input in its error: do not repeat it.
		return nil, fmt.Errorf("%w: invalid url", ErrRTSP)
	}
	if p.opts.User != "" {
		pu.User = url.UserPassword(p.opts.User, p.opts.Pass)
	} else if p.opts.Pass != "" && pu.User != nil {
		pu.User = url.UserPassword(pu.User.Username(), p.opts.Pass)
	}
	p.red = rtsperr.NewRedactor(pu.String())
	p.redacted = p.red.URL()
	if pu.Scheme != "rtsp" && pu.Scheme != "rtsps" {
		return nil, fmt.Errorf("%w: %s: scheme must be rtsp or rtsps", ErrRTSP, p.redacted)
	}
	if pu.Host == "" {
		return nil, fmt.Errorf("%w: %s: no host", ErrRTSP, p.redacted)
	}
	u, err := base.ParseURL(pu.String())
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %s", ErrRTSP, p.redacted, p.scrub(err))
	}
	return u, nil
}

// scrub renders err without the password.
func (p *prober) scrub(err error) string { return p.red.Err(err) }

// fail builds the error returned for cause, classified as kind.
func (p *prober) fail(kind error, what string, cause error) error {
	if cause == nil {
		return fmt.Errorf("probe %s: %w: %s", p.redacted, kind, what)
	}
	return fmt.Errorf("probe %s: %w: %s: %s", p.redacted, kind, what, p.scrub(cause))
}

// classifyRequest turns the error of an RTSP request into a probe error.
func (p *prober) classifyRequest(ctx, kfCtx context.Context, what string, err error) error {
	switch {
	case ctx.Err() != nil:
		return p.canceled(ctx)
	case kfCtx.Err() != nil:
		return p.fail(ErrUnreachable, what, fmt.Errorf("no answer within %s", p.opts.Timeout))
	}
	if errors.Is(err, camnet.ErrRefused) {
		return p.fail(ErrNotAllowed, what, nil)
	}
	switch rtsperr.Classify(err) {
	case rtsperr.Unreachable, rtsperr.Timeout:
		return p.fail(ErrUnreachable, what, err)
	case rtsperr.Unauthorized:
		return p.fail(ErrUnauthorized, what, err)
	case rtsperr.NotFound:
		return p.fail(ErrNotFound, what, err)
	}
	return p.fail(ErrRTSP, what, err)
}

func (p *prober) run(ctx context.Context, u *base.URL) (Result, error) {
	var res Result
	// kfCtx ends when the first keyframe is overdue.
	kfCtx, kfCancel := context.WithTimeout(ctx, p.opts.Timeout)
	defer kfCancel()

	tr := gortsplib.TransportTCP
	c := &gortsplib.Client{
		Scheme:    u.Scheme,
		Host:      u.Host,
		Transport: &tr,
		// The deadlines below bound requests and the wait for a keyframe;
		// gortsplib's own (with 1 s granularity) only backs them up.
		ReadTimeout:  p.opts.Timeout + 2*time.Second,
		WriteTimeout: p.opts.Timeout,
		DialContext: func(dctx context.Context, network, address string) (net.Conn, error) {
			conn, err := p.opts.DialContext(dctx, network, address)
			if err != nil {
				return nil, rtsperr.DialError{Err: err}
			}
			return conn, nil
		},
	}
	if err := c.Start2(); err != nil {
		return res, p.fail(ErrRTSP, "start client", err)
	}
	defer c.Close()
	// gortsplib calls are not context-aware: closing the client unblocks
	// them. Until PLAY has answered, the keyframe deadline aborts the
	// requests too; after it, the wait below reports the deadline.
	defer context.AfterFunc(ctx, c.Close)()
	abortRequests := context.AfterFunc(kfCtx, c.Close)
	defer abortRequests()

	started := time.Now()
	desc, _, err := c.Describe(u)
	if err != nil {
		return res, p.classifyRequest(ctx, kfCtx, "describe", err)
	}
	vmedi, vforma, audio, err := p.pickTracks(desc)
	if err != nil {
		return res, err
	}
	res.Audio = audio

	col, err := newCollector(vforma, p.opts.Window)
	if err != nil {
		return res, p.fail(ErrRTSP, "video track", err)
	}
	defer col.close()
	res.Video.Codec = col.codecName()

	if _, err := c.Setup(desc.BaseURL, vmedi, 0, 0); err != nil {
		return res, p.classifyRequest(ctx, kfCtx, "setup", err)
	}
	c.OnPacketRTP(vmedi, vforma, func(pkt *rtp.Packet) {
		pts, ok := c.PacketPTS2(vmedi, pkt)
		if !ok {
			return
		}
		col.packet(pkt, pts, time.Now())
	})
	if _, err := c.Play(nil); err != nil {
		return res, p.classifyRequest(ctx, kfCtx, "play", err)
	}
	if !abortRequests() {
		// The deadline passed just as PLAY answered; the client is closed.
		if ctx.Err() != nil {
			return res, p.canceled(ctx)
		}
		return res, p.fail(ErrNoKeyframe, fmt.Sprintf("none within %s", p.opts.Timeout), nil)
	}
	played := time.Now()
	res.Connect = played.Sub(started)
	p.log.Debug("playing", "connect", res.Connect)

	ended := make(chan error, 1)
	go func() { ended <- c.Wait() }()

	select {
	case <-col.keyframe:
	case err := <-ended:
		switch {
		case ctx.Err() != nil:
			return res, p.canceled(ctx)
		case rtsperr.Classify(err) == rtsperr.Timeout:
			return res, p.fail(ErrNoKeyframe, fmt.Sprintf("no data for %s (%d video RTP packets received)", p.opts.Timeout, col.packetCount()), nil)
		}
		return res, p.fail(ErrRTSP, "stream ended before a keyframe", err)
	case <-kfCtx.Done():
		if ctx.Err() != nil {
			return res, p.canceled(ctx)
		}
		return res, p.fail(ErrNoKeyframe, fmt.Sprintf("none within %s (%d video RTP packets received)", p.opts.Timeout, col.packetCount()), nil)
	}

	// Measure for the window; then keep waiting for the snapshot picture
	// (decoder delay may need a few more frames) for at most one more window.
	kfAt := col.firstKeyframeAt()
	res.FirstKeyframe = kfAt.Sub(played)
	windowEnd := time.NewTimer(time.Until(kfAt.Add(p.opts.Window)))
	defer windowEnd.Stop()
	var streamErr error
	select {
	case <-windowEnd.C:
	case streamErr = <-ended:
	case <-ctx.Done():
		return res, p.canceled(ctx)
	}
	if streamErr == nil {
		snapDeadline := time.NewTimer(p.opts.Window)
		defer snapDeadline.Stop()
		select {
		case <-col.picture:
		case <-snapDeadline.C:
		case streamErr = <-ended:
		case <-ctx.Done():
			return res, p.canceled(ctx)
		}
	}
	c.Close() // no more callbacks after this
	if streamErr != nil && ctx.Err() == nil {
		p.log.Debug("stream ended during the window", "err", p.scrub(streamErr))
	}

	m := col.result()
	res.Window = m.window
	res.Video.Width, res.Video.Height = m.width, m.height
	res.Video.FPS, res.Video.DeclaredFPS = m.fps, m.declaredFPS
	res.Video.Bitrate, res.Video.Frames = m.bitrate, m.frames
	switch {
	case m.picture != nil:
		img := m.picture.Image()
		if res.Video.Width == 0 {
			res.Video.Width, res.Video.Height = img.Rect.Dx(), img.Rect.Dy()
		}
		var buf bytes.Buffer
		if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: p.opts.JPEGQuality}); err != nil {
			res.SnapshotError = "jpeg: " + err.Error()
		} else {
			res.Snapshot = buf.Bytes()
		}
	case m.decodeErr != nil:
		res.SnapshotError = m.decodeErr.Error()
	default:
		res.SnapshotError = "no picture decoded"
	}
	return res, nil
}

// canceled is the error when the caller's context ended.
func (p *prober) canceled(ctx context.Context) error {
	return fmt.Errorf("probe %s: %w", p.redacted, ctx.Err())
}

// pickTracks returns the first H.264/H.265 video format and the first
// audio track's description.
func (p *prober) pickTracks(desc *description.Session) (*description.Media, format.Format, *Audio, error) {
	var vmedi *description.Media
	var vforma format.Format
	var other []string
	var audio *Audio
	for _, m := range desc.Medias {
		for _, f := range m.Formats {
			switch f.(type) {
			case *format.H264, *format.H265:
				if vmedi == nil {
					vmedi, vforma = m, f
				}
				continue
			}
			switch m.Type {
			case description.MediaTypeVideo:
				other = append(other, f.Codec())
			case description.MediaTypeAudio:
				if audio == nil {
					audio = describeAudio(f)
				}
			}
		}
	}
	if vmedi != nil {
		return vmedi, vforma, audio, nil
	}
	if len(other) > 0 {
		return nil, nil, audio, p.fail(ErrUnsupportedCodec, strings.Join(other, ", ")+" (want H264 or H265)", nil)
	}
	return nil, nil, audio, p.fail(ErrNoVideo, fmt.Sprintf("the stream has %d tracks, none of them video", len(desc.Medias)), nil)
}

func describeAudio(f format.Format) *Audio {
	switch f := f.(type) {
	case *format.MPEG4Audio:
		a := &Audio{Codec: "AAC", SampleRate: f.ClockRate()}
		if f.Config != nil {
			a.SampleRate, a.Channels = f.Config.SampleRate, f.Config.ChannelCount
		}
		return a
	case *format.G711:
		a := &Audio{Codec: "G711A", SampleRate: f.SampleRate, Channels: f.ChannelCount}
		if f.MULaw {
			a.Codec = "G711U"
		}
		return a
	case *format.LPCM:
		return &Audio{Codec: "LPCM", SampleRate: f.SampleRate, Channels: f.ChannelCount}
	case *format.Opus:
		return &Audio{Codec: "Opus", SampleRate: 48000, Channels: f.ChannelCount}
	}
	return &Audio{Codec: f.Codec(), SampleRate: f.ClockRate()}
}

// collector receives the video track's packets (on gortsplib's reader
// goroutine) and measures the window.
type collector struct {
	window time.Duration

	mu       sync.Mutex
	depack   *depacketizer
	dec      *decode.Decoder
	packets  int
	kfAt     time.Time
	done     bool // window over
	closed   bool
	frames   int
	bytes    int64
	minPTS   int64
	maxPTS   int64
	sps      []byte
	pic      *decode.Frame
	decErr   error
	keyframe chan struct{} // closed at the first keyframe
	picture  chan struct{} // closed when the snapshot picture is decoded
}

type measurement struct {
	window           time.Duration
	width, height    int
	fps, declaredFPS float64
	bitrate          float64
	frames           int
	picture          *decode.Frame
	decodeErr        error
}

func newCollector(f format.Format, window time.Duration) (*collector, error) {
	d, err := newDepacketizer(f)
	if err != nil {
		return nil, err
	}
	return &collector{window: window, depack: d, keyframe: make(chan struct{}), picture: make(chan struct{})}, nil
}

func (c *collector) codecName() string {
	if c.depack.h265 {
		return "H265"
	}
	return "H264"
}

func (c *collector) packetCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.packets
}

func (c *collector) firstKeyframeAt() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.kfAt
}

func (c *collector) packet(pkt *rtp.Packet, pts int64, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.packets++
	if c.done && c.pic != nil {
		return
	}
	au, err := c.depack.decode(pkt)
	if err != nil || au == nil {
		return
	}
	au, key, sps := c.depack.prepare(au)
	if c.kfAt.IsZero() {
		if !key {
			return
		}
		c.kfAt = now
		c.sps = sps
		c.minPTS, c.maxPTS = pts, pts
		close(c.keyframe)
	}
	if !c.done && now.Sub(c.kfAt) >= c.window {
		c.done = true
	}
	if !c.done {
		c.frames++
		for _, n := range au {
			c.bytes += int64(len(n))
		}
		c.minPTS, c.maxPTS = min(c.minPTS, pts), max(c.maxPTS, pts)
	}
	if c.pic == nil {
		c.decodeSnapshot(au)
	}
}

// decodeSnapshot feeds the decoder from the first keyframe on until it
// produces a picture (the keyframe itself: pictures come out in display
// order and a closed GOP starts with the keyframe).
func (c *collector) decodeSnapshot(au [][]byte) {
	if c.dec == nil {
		if c.decErr != nil {
			return
		}
		codec := recording.H264
		if c.depack.h265 {
			codec = recording.H265
		}
		d, err := decode.New(codec)
		if err != nil {
			c.decErr = err
			return
		}
		c.dec = d
	}
	f, err := c.dec.Decode(au)
	if err != nil {
		c.decErr = err
		return
	}
	if f != nil {
		c.pic = f
		c.dec.Close()
		close(c.picture)
	}
}

func (c *collector) result() measurement {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := measurement{frames: c.frames, picture: c.pic, decodeErr: c.decErr}
	if c.sps != nil {
		m.width, m.height, m.declaredFPS = c.depack.spsInfo(c.sps)
	}
	if c.frames > 1 && c.maxPTS > c.minPTS {
		span := float64(c.maxPTS-c.minPTS) / float64(c.depack.clockRate)
		m.fps = float64(c.frames-1) / span
		// The window's frames last frames/fps seconds.
		m.bitrate = float64(c.bytes) * 8 * m.fps / float64(c.frames)
		m.window = time.Duration(float64(c.frames) / m.fps * float64(time.Second))
	}
	return m
}

// close frees the decoder; packets arriving afterwards are ignored.
func (c *collector) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	c.dec.Close()
	c.dec = nil
}
