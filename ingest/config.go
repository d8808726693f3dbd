package ingest

import (
	"fmt"
	"log/slog"
	"net/url"
	"syscall"
	"time"
	"xueliang/ingest/live"

	"xueliang/ingest/segmenter"
	"xueliang/storage/recording"
)

// CameraConfig configures one camera's puller.
type CameraConfig struct {
	ID  string
	URL string // rtsp://[user:pass@]host[:port]/path
	// Transport is "tcp" (default) or "udp".
	Transport string
	// SegmentDuration defaults to 60 s, MaxFragmentDuration to 2 s.
	SegmentDuration, MaxFragmentDuration time.Duration
	// SubURL is the optional sub stream (rtsp://[user:pass@]host/path),
	// analysed for motion when Motion is set.
	SubURL string
	// Motion enables motion analysis: the sub stream when SubURL is set,
	// otherwise the main stream's keyframes.
	Motion bool
	// Epoch is the camera's lease epoch on a cluster node (0: not
	// clustered): its segment rows go through Options.FencedIndex, and a
	// new epoch restarts the puller.
	Epoch int64
}

// Validate reports a configuration problem.
func (c CameraConfig) Validate() error {
	if c.ID == "" {
		return fmt.Errorf("camera id is empty")
	}
	u, err := url.Parse(c.URL)
	if err != nil {
		return fmt.Errorf("camera %s: invalid url", c.ID)
	}
	if u.Scheme != "rtsp" && u.Scheme != "rtsps" {
		return fmt.Errorf("camera %s: url scheme must be rtsp or rtsps", c.ID)
	}
	switch c.Transport {
	case "", "tcp", "udp":
	default:
		return fmt.Errorf("camera %s: transport must be tcp or udp", c.ID)
	}
	return nil
}

// Options are shared by the pullers of a Manager. Zero values take the
// documented defaults.
type Options struct {
	// SpoolRoot is the spool directory; required.
	SpoolRoot string
	// Index receives segment and fragment rows; required.
	Index segmenter.Index
	// FencedIndex, on a cluster node, returns the index a camera recorded
	// under lease epoch writes through (CameraConfig.Epoch > 0): its
	// writes fail with segmenter.ErrFenced once another node has taken the
	// camera over, and the puller then stops for good (Manager does not
	// restart it). Nil: Index for every camera.
	FencedIndex func(camera string, epoch int64) segmenter.Index
	// OnClosed receives every closed segment (the uploader's Enqueue).
	OnClosed func(recording.Segment)
	// Quota is the spool size cap shared by all cameras; nil = no cap.
	Quota segmenter.Quota
	// Logger; nil discards.
	Logger *slog.Logger
	// BackoffMin defaults to 500 ms, BackoffMax to 30 s; the backoff is
	// reset after a session that lasted BackoffResetAfter (default 10 s):
	// a camera whose link drops every few tens of seconds must come back at
	// once each time, not after ever longer waits.
	BackoffMin, BackoffMax, BackoffResetAfter time.Duration
	// ReadTimeout is the RTSP read timeout. It defaults to 10 s.
	ReadTimeout time.Duration
	// VideoTimeout ends a session whose video track has delivered no
	// packet for this long although the connection stays up (audio,
	// metadata or RTCP still arriving; class ErrClassVideoStall), and the
	// puller reconnects; the motion sub stream's session likewise
	// (MotionStats.SubVideoStalls). It defaults to twice ReadTimeout, so a
	// camera that falls silent altogether is a read timeout first.
	VideoTimeout time.Duration
	// FsyncInterval is passed to the segmenter (default 10 s).
	FsyncInterval time.Duration
	// StaggerSegments is passed to the segmenter (segmenter.Config.Stagger).
	StaggerSegments bool
	// Now is the wall clock used to anchor sessions without RTCP sender
	// reports. It defaults to time.Now.
	Now func() time.Time
	// MaxClockSkew bounds how far a camera's RTCP wall clock may be from
	// Now when a session is anchored: beyond it (a camera set to UTC+8, a
	// drifting or hostile clock) the session is anchored to the receive
	// time instead and Status.ClockUntrusted is set. It defaults to 5s.
	MaxClockSkew time.Duration
	// IndexOutage is how long each segment's create and finish keep being
	// retried through an index outage before the segment is left to
	// start-up recovery (segmenter.Config.IndexOutage; default 2 min).
	IndexOutage time.Duration
	// Jitter returns a number in [0,1) scaling each backoff wait. It
	// defaults to math/rand/v2.Float64.
	Jitter func() float64
	// Motion configures motion analysis of the cameras with Motion set
	// (motion.go); a nil Motion.Sink disables it.
	Motion MotionOptions
	// DialControl, when set, is the net.Dialer Control of every RTSP
	// connection (camnet.Policy.Control): it runs after name resolution,
	// for every address tried, and refuses the disallowed ones.
	DialControl func(network, address string, c syscall.RawConn) error
	// Events receives the events cameras report on their ONVIF metadata
	// track (events.go). Nil: the track is still read and
	// counted, the events are not recorded.
	Events EventSink
	// Live receives every camera's access units for live viewers
	// (ingest/live): the main stream's, and the sub stream's while the
	// puller reads it. Nil disables live view.
	Live *live.Hub
}
