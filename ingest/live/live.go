// Package live fans the access units a puller receives out to live viewers,
// without transcoding: one Stream per camera stream (main, sub), one
// bounded ring per Viewer, and Muxer, which turns a viewer's units into
// fMP4 (init + one moof/mdat per video frame) for MSE players.
//
// Data flow:
//
//	ingest pipeline ──Publish──▶ Stream ──ring (bounded)──▶ Viewer ──▶ Muxer ──▶ WebSocket
//	 (RTP callback)               │ last GOP (while watched)
//	                              └──▶ other viewers, each with its own ring
//
// Cost without viewers: Publish is not called at all; the pipeline asks
// Active (one atomic load) before it copies an access unit. While a stream
// has viewers, and for Linger after the last one left, the stream keeps the
// units since the last keyframe, so a viewer joining then starts at once
// with that GOP; the first viewer of an idle stream waits for the next
// keyframe (at most one GOP).
//
// Back-pressure: Publish never blocks. When a viewer's ring is full the
// viewer is cut: its ring is emptied and it gets nothing until the next
// video keyframe (a drop, counted per viewer and per stream). Recording and
// the other viewers are never slowed.
//
// Sessions: each RTSP session (and each change of parameter sets) is a
// Session; units point to theirs, and a viewer's Muxer sends a new init when
// the session changes.
package live

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/g711"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"

	"xueliang/storage/recording"
)

// Stream names.
const (
	Main = "main"
	Sub  = "sub"
)

// Defaults.
const (
	// DefaultRing is a viewer's ring size in units (about 10 s of 25 fps
	// video with audio).
	DefaultRing = 512
	// DefaultLinger is how long a stream keeps its last GOP after its last
	// viewer left.
	DefaultLinger = 30 * time.Second
	// maxGOP bounds the kept GOP (units); a longer GOP is not kept.
	maxGOP = 2048
)

// ErrClosed is returned by Viewer.Next once the viewer is closed.
var ErrClosed = errors.New("live: viewer closed")

// Session is one RTSP session's media description, as the recorder's.
type Session struct {
	Video recording.Video
	Audio *recording.Audio
	// Anchor is the wall clock of video PTS AnchorPTS (90 kHz).
	Anchor    time.Time
	AnchorPTS int64
}

// Unit is one access unit. It is shared by every viewer and never changed
// after Publish.
type Unit struct {
	Session *Session
	Audio   bool
	// PTS is 90 kHz for video, the audio clock rate for audio, both on
	// the session's RTP clock (gortsplib PacketPTS2). DTS is video only.
	PTS, DTS int64
	Key      bool     // video random access point
	Data     [][]byte // video: NAL units; audio: AAC access units or 16-bit LPCM chunks
	Size     int      // bytes in Data
	Recv     time.Time
}

// Wall is the unit's wall-clock capture estimate (video only).
func (u *Unit) Wall() time.Time {
	d := u.PTS - u.Session.AnchorPTS
	return u.Session.Anchor.Add(time.Duration(d/90000)*time.Second + time.Duration(d%90000)*time.Second/90000)
}

// Stats are a stream's counters.
type Stats struct {
	Viewers int
	// Joined counts viewers ever subscribed, Drops the times a viewer was
	// cut to the next keyframe, Units the units published.
	Joined, Drops, Units int64
}

// Stream is one camera stream's fan-out. The zero value is not usable:
// get streams from a Hub.
type Stream struct {
	Camera, Name string
	ring         int
	linger       time.Duration
	now          func() time.Time

	active atomic.Bool // viewers > 0 or within linger

	mu        sync.Mutex
	sess      *Session
	gop       []*Unit // since the last keyframe; nil when not kept
	viewers   map[*Viewer]struct{}
	idleSince time.Time
	stats     Stats
}

// Active reports whether Publish has anyone to deliver to (or a GOP to
// keep). Publishers check it before copying a unit.
func (s *Stream) Active() bool { return s.active.Load() }

// StartSession starts a new session: units published after it point to a
// copy of sess. It is cheap and called for every session, watched or not.
func (s *Stream) StartSession(sess Session) {
	c := sess
	s.mu.Lock()
	s.sess = &c
	s.gop = nil
	s.mu.Unlock()
}

// EndSession ends the current session.
func (s *Stream) EndSession() {
	s.mu.Lock()
	s.sess = nil
	s.gop = nil
	s.mu.Unlock()
}

// PublishVideo publishes one video access unit. au is copied. A keyframe
// whose in-band parameter sets differ from the session's starts a new
// session (viewers get a new init).
func (s *Stream) PublishVideo(pts, dts int64, au [][]byte, key bool, recv time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sess == nil {
		return
	}
	if key {
		if v, changed := paramsChanged(s.sess.Video, au); changed {
			c := *s.sess
			c.Video = v
			s.sess = &c
		}
	}
	u := &Unit{Session: s.sess, PTS: pts, DTS: dts, Key: key, Recv: recv}
	u.Data, u.Size = copyAU(au)
	s.publishLocked(u)
}

// PublishAudio publishes audio at pts: AAC access units, or G.711 chunks,
// which it expands to 16-bit big-endian LPCM as the recorder does (the
// init describes G.711 as LPCM); aus are copied.
func (s *Stream) PublishAudio(pts int64, aus [][]byte, recv time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sess == nil || s.sess.Audio == nil {
		return
	}
	u := &Unit{Session: s.sess, Audio: true, PTS: pts, Recv: recv}
	switch s.sess.Audio.Codec {
	case recording.G711ALaw, recording.G711MuLaw:
		u.Data = make([][]byte, 0, len(aus))
		for _, b := range aus {
			var pcm []byte
			if s.sess.Audio.Codec == recording.G711ALaw {
				var a g711.Alaw
				a.Unmarshal(b)
				pcm = a
			} else {
				var m g711.Mulaw
				m.Unmarshal(b)
				pcm = m
			}
			u.Data = append(u.Data, pcm)
			u.Size += len(pcm)
		}
	default:
		u.Data, u.Size = copyAU(aus)
	}
	s.publishLocked(u)
}

func copyAU(au [][]byte) ([][]byte, int) {
	n := 0
	for _, b := range au {
		n += len(b)
	}
	buf := make([]byte, 0, n)
	out := make([][]byte, len(au))
	for i, b := range au {
		buf = append(buf, b...)
		out[i] = buf[len(buf)-len(b) : len(buf) : len(buf)]
	}
	return out, n
}

// publishLocked keeps u in the GOP and offers it to every viewer.
func (s *Stream) publishLocked(u *Unit) {
	s.stats.Units++
	switch {
	case !u.Audio && u.Key:
		s.gop = append(make([]*Unit, 0, 64), u)
	case s.gop != nil && len(s.gop) < maxGOP:
		s.gop = append(s.gop, u)
	default:
		s.gop = nil
	}
	for v := range s.viewers {
		v.offerLocked(u)
	}
	if len(s.viewers) == 0 && s.now().Sub(s.idleSince) >= s.linger {
		s.active.Store(false)
		s.gop = nil
	}
}

// Subscribe adds a viewer. It starts with the kept GOP when there is one,
// otherwise with the next keyframe.
func (s *Stream) Subscribe() *Viewer {
	s.mu.Lock()
	defer s.mu.Unlock()
	// The ring has room for the kept GOP on top of its size.
	v := &Viewer{s: s, ch: make(chan *Unit, s.ring+len(s.gop)), done: make(chan struct{}), needKey: true}
	s.viewers[v] = struct{}{}
	s.stats.Joined++
	s.active.Store(true)
	for _, u := range s.gop {
		v.offerLocked(u)
	}
	return v
}

// Stats returns the stream's counters.
func (s *Stream) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Viewers = len(s.viewers)
	return st
}

// Viewer receives one stream's units through a bounded ring.
type Viewer struct {
	s    *Stream
	ch   chan *Unit
	done chan struct{}
	once sync.Once
	// needKey (under s.mu): deliver nothing until the next video keyframe.
	needKey bool
	drops   atomic.Int64
}

// offerLocked delivers u, or cuts the viewer to the next keyframe when its
// ring is full. s.mu is held.
func (v *Viewer) offerLocked(u *Unit) {
	if v.needKey {
		if u.Audio || !u.Key {
			return
		}
		v.needKey = false
		// Resume from this keyframe: what is still in a full ring is
		// older than it, and goes.
		if len(v.ch) == cap(v.ch) {
			for len(v.ch) > 0 {
				select {
				case <-v.ch:
				default:
				}
			}
		}
	}
	select {
	case v.ch <- u:
	default:
		// Full: nothing more until the next keyframe.
		v.needKey = true
		v.drops.Add(1)
		v.s.stats.Drops++
	}
}

// Next returns the next unit, waiting for it.
func (v *Viewer) Next(ctx context.Context) (*Unit, error) {
	select {
	case u := <-v.ch:
		return u, nil
	case <-v.done:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Drops is how many times this viewer was cut to the next keyframe.
func (v *Viewer) Drops() int64 { return v.drops.Load() }

// Close removes the viewer; it is safe to call twice.
func (v *Viewer) Close() {
	v.once.Do(func() {
		close(v.done)
		s := v.s
		s.mu.Lock()
		delete(s.viewers, v)
		if len(s.viewers) == 0 {
			s.idleSince = s.now()
		}
		s.mu.Unlock()
	})
}

// Hub holds the streams of every camera. The zero value is not usable:
// NewHub.
type Hub struct {
	// Ring and Linger: see DefaultRing, DefaultLinger.
	ring   int
	linger time.Duration
	now    func() time.Time

	mu      sync.Mutex
	streams map[[2]string]*Stream
}

// HubConfig configures a Hub; zero fields take their defaults.
type HubConfig struct {
	Ring   int           // units per viewer ring; defaults to DefaultRing
	Linger time.Duration // defaults to DefaultLinger
	Now    func() time.Time
}

// NewHub returns an empty hub.
func NewHub(c HubConfig) *Hub {
	if c.Ring <= 0 {
		c.Ring = DefaultRing
	}
	if c.Linger <= 0 {
		c.Linger = DefaultLinger
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return &Hub{ring: c.Ring, linger: c.Linger, now: c.Now, streams: map[[2]string]*Stream{}}
}

// Stream returns camera's stream name (Main or Sub), creating it.
func (h *Hub) Stream(camera, name string) *Stream {
	h.mu.Lock()
	defer h.mu.Unlock()
	k := [2]string{camera, name}
	s := h.streams[k]
	if s == nil {
		s = &Stream{Camera: camera, Name: name, ring: h.ring, linger: h.linger, now: h.now, viewers: map[*Viewer]struct{}{}}
		h.streams[k] = s
	}
	return s
}

// Lookup returns camera's stream name if it exists and has a session.
func (h *Hub) Lookup(camera, name string) (*Stream, bool) {
	h.mu.Lock()
	s := h.streams[[2]string{camera, name}]
	h.mu.Unlock()
	if s == nil {
		return nil, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s, s.sess != nil
}

// StreamStats is one stream's Stats with its names.
type StreamStats struct {
	Camera, Name string
	Stats
}

// Stats returns every stream's counters.
func (h *Hub) Stats() []StreamStats {
	h.mu.Lock()
	ss := make([]*Stream, 0, len(h.streams))
	for _, s := range h.streams {
		ss = append(ss, s)
	}
	h.mu.Unlock()
	out := make([]StreamStats, 0, len(ss))
	for _, s := range ss {
		out = append(out, StreamStats{Camera: s.Camera, Name: s.Name, Stats: s.Stats()})
	}
	return out
}

// paramsChanged returns v with the parameter sets of the keyframe au, and
// whether any differs from v's.
func paramsChanged(v recording.Video, au [][]byte) (recording.Video, bool) {
	out := v
	for _, n := range au {
		if len(n) == 0 {
			continue
		}
		if v.Codec == recording.H265 {
			switch h265.NALUType((n[0] >> 1) & 0x3f) {
			case h265.NALUType_VPS_NUT:
				out.VPS = n
			case h265.NALUType_SPS_NUT:
				out.SPS = n
			case h265.NALUType_PPS_NUT:
				out.PPS = n
			}
			continue
		}
		switch h264.NALUType(n[0] & 0x1f) {
		case h264.NALUTypeSPS:
			out.SPS = n
		case h264.NALUTypePPS:
			out.PPS = n
		}
	}
	changed := !bytes.Equal(out.VPS, v.VPS) || !bytes.Equal(out.SPS, v.SPS) || !bytes.Equal(out.PPS, v.PPS)
	if changed {
		out.VPS = bytes.Clone(out.VPS)
		out.SPS = bytes.Clone(out.SPS)
		out.PPS = bytes.Clone(out.PPS)
	}
	return out, changed
}

// Session returns the current session (nil when none).
func (s *Stream) Session() *Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sess
}
