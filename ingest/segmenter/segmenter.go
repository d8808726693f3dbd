package segmenter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
	"xueliang/storage/recording"
)

// ErrFenced, wrapped by an Index's error, means the writes of this Writer
// are refused for good (the camera's lease has moved to another node, see
// index.ErrFenced): the operation is not retried, the segment is left in
// the spool unindexed, no further row is written and Config.OnFenced is
// called once.
var ErrFenced = errors.New("segment writes fenced off")

// Index is what the writer needs from the segment index. *index.DB
// implements it.
type Index interface {
	// CreateSegment inserts seg (state recording) and sets seg.ID.
	CreateSegment(ctx context.Context, seg *recording.Segment) error
	// AddFragments upserts fragment rows by (segment_id, seq) and raises the
	// segment's end and size.
	AddFragments(ctx context.Context, frags []recording.Fragment) error
	// FinishSegment marks the segment closed with its final end, size and
	// SHA-256.
	FinishSegment(ctx context.Context, id int64, end time.Time, size int64, sha256 string) error
}

// Quota admits bytes into the spool, which is capped. *spool.Quota
// implements it; one Quota is shared by every camera's Writer.
type Quota interface {
	// Reserve accounts n bytes about to be appended and reports true, or
	// reports false, accounting nothing, when the spool is full.
	Reserve(n int64) bool
	// Add accounts n bytes that must be written whatever the cap (the
	// first fragment of a segment, so that no segment is left without one).
	Add(n int64)
	// Release gives back n bytes reserved for a write that failed.
	Release(n int64)
	// Full reports whether the spool refuses footage (until it is back
	// below its low watermark).
	Full() bool
	// Bytes and Cap are the accounted spool size and the cap, for logs.
	Bytes() int64
	Cap() int64
}

// errSpoolFull is returned by openSegmentLocked when the quota refuses the
// init; the caller pauses recording.
var errSpoolFull = errors.New("spool full")

// Session describes one RTSP session's tracks and its wall-clock anchor.
type Session struct {
	// Anchor is the wall-clock time of video PTS AnchorPTS (90 kHz units on
	// the session's unwrapped RTP clock).
	Anchor    time.Time
	AnchorPTS int64
	Video     recording.Video
	// Audio is nil when the session has no recorded audio track.
	Audio *recording.Audio
}

// Config configures a Writer. Zero values take the documented defaults.
type Config struct {
	// CameraID names the camera; required.
	CameraID string
	// SpoolRoot is the spool directory; required.
	SpoolRoot string
	// Index receives segment and fragment rows; required.
	Index Index
	// OnClosed is called (from the index worker) with each segment after
	// FinishSegment succeeded; typically the uploader's Enqueue. Optional.
	OnClosed func(recording.Segment)
	// SegmentDuration: segments are cut at the first keyframe at or after
	// it. It defaults to 60 s.
	SegmentDuration time.Duration
	// MaxFragmentDuration caps a fragment's duration. It defaults to 2 s.
	MaxFragmentDuration time.Duration
	// Stagger cuts the first segment of each session at the first
	// keyframe after SegmentDuration × (1/10 + 9u/10), u ∈ [0, 1) a hash of
	// CameraID, instead of after SegmentDuration: cameras whose sessions
	// start together then close their segments spread over the period.
	Stagger bool
	// FsyncInterval is the minimum interval between fsyncs of the spool
	// file while recording. It defaults to 10 s.
	FsyncInterval time.Duration
	// IndexQueueSize bounds the queued fragment batches. It defaults to 256.
	IndexQueueSize int
	// IndexTimeout bounds one index call. It defaults to 10 s.
	IndexTimeout time.Duration
	// IndexRetries is the number of attempts per index operation. It
	// defaults to 5.
	IndexRetries int
	// IndexOutage is how long a segment's create and finish operations
	// keep being retried (after IndexRetries attempts) before the segment
	// is given up to start-up recovery: an index outage shorter than this
	// (a PostgreSQL restart or failover) loses no row. Meanwhile fragment
	// batches queue, and are dropped (counted) and re-sent at finish when
	// the queue is full. It defaults to 2 min.
	IndexOutage time.Duration
	// Quota caps the spool shared by all cameras: when it refuses a
	// fragment, the segment in progress is closed at the last fragment
	// written and recording pauses (access units are refused and counted)
	// until the quota is no longer full, then resumes with a new segment
	// at the next keyframe. It defaults to nil: unlimited.
	Quota Quota
	// OnFenced is called (once, from the index worker) when an index call
	// fails with ErrFenced; the caller should stop recording. Optional.
	OnFenced func()
	// Logger; nil discards.
	Logger *slog.Logger
	// Now is the clock used for fsync pacing. It defaults to time.Now.
	Now func() time.Time
}

// Stats is a snapshot of a Writer's counters.
type Stats struct {
	Segments, Fragments int64
	Bytes               int64
	VideoFrames         int64
	AudioSamples        int64
	DroppedVideo        int64 // before the first keyframe / without parameter sets
	DroppedAudio        int64 // outside any segment
	IndexDropped        int64 // fragment batches dropped from the full queue (re-sent at finish)
	IndexErrors         int64 // index operations that failed after all retries
	WriteErrors         int64
	LastKeyframe        time.Time
	// RefusedFrames and RefusedAudio count the video access units and
	// audio samples refused because the spool was full (including those of
	// the fragment that did not fit; they are not in VideoFrames and
	// AudioSamples), RefusedBytes their media bytes.
	RefusedFrames, RefusedAudio, RefusedBytes int64
	// PauseEpisodes counts the times recording paused on a full spool;
	// Paused is true while it is paused.
	PauseEpisodes int64
	Paused        bool
}

// Writer writes one camera's segments. Create it with New and run its index
// worker with Run; call Start for each RTSP session, WriteVideo/WriteAudio
// for the media, EndSession when the session ends and Close when done: Run
// returns once it has written what Close left queued.
type Writer struct {
	cfg     Config
	log     *slog.Logger
	q       *opQueue
	running atomic.Bool
	closed  bool
	// fenced: an index call failed with ErrFenced (index worker only).
	fenced bool

	mu      sync.Mutex
	sess    *Session
	active  bool
	params  videoParams // latest parameter sets seen
	audioQ  []asample   // pending audio, session units
	anchorA int64       // AnchorPTS in audio units
	pending []vsample   // video samples of the fragment being built
	frag    openFrag    // where they are in the current segment's file
	// stage collects the fragment's media not yet written (stage.go);
	// allocated with the first fragment of a session, freed at its end.
	stage []byte
	// headroom is reserved in front of each fragment's media for its
	// headers; it grows when a fragment needs more (fragment.go).
	headroom int
	// entries, aEntries, audio and header are reused per flush.
	entries, aEntries []recording.SampleEntry
	audio, header     []byte
	cur               *segment
	closing           *closingSeg
	stats             Stats
	warned            map[string]bool
	// paused: the spool is full, media is refused until it has room again
	// (persists across sessions). pauseReq: a fragment was refused, the
	// public method that caused it pauses before returning.
	paused   bool
	pauseReq bool
	// sessSegs counts the segments opened in the session (Config.Stagger
	// shortens the first).
	sessSegs int
}

// New returns a Writer; it starts nothing (see Run).
func New(cfg Config) (*Writer, error) {
	if cfg.CameraID == "" || cfg.SpoolRoot == "" || cfg.Index == nil {
		return nil, errors.New("segmenter: camera id, spool root and index are required")
	}
	if cfg.SegmentDuration <= 0 {
		cfg.SegmentDuration = 60 * time.Second
	}
	if cfg.MaxFragmentDuration <= 0 {
		cfg.MaxFragmentDuration = 2 * time.Second
	}
	if cfg.FsyncInterval <= 0 {
		cfg.FsyncInterval = 10 * time.Second
	}
	if cfg.IndexQueueSize <= 0 {
		cfg.IndexQueueSize = 256
	}
	if cfg.IndexTimeout <= 0 {
		cfg.IndexTimeout = 10 * time.Second
	}
	if cfg.IndexRetries <= 0 {
		cfg.IndexRetries = 5
	}
	if cfg.IndexOutage <= 0 {
		cfg.IndexOutage = 2 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("camera", cfg.CameraID, "component", "segmenter")
	w := &Writer{cfg: cfg, log: log, warned: map[string]bool{}, headroom: defaultHeadroom}
	w.q = newOpQueue(cfg.IndexQueueSize)
	return w, nil
}

// Stats returns a snapshot of the counters.
func (w *Writer) Stats() Stats {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.stats
	s.IndexDropped, s.IndexErrors = w.q.counters()
	s.Paused = w.paused
	return s
}

// Start begins a session. A session in progress is ended first.
func (w *Writer) Start(s Session) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return errors.New("segmenter: closed")
	}
	if w.active {
		w.endSessionLocked()
	}
	switch s.Video.Codec {
	case recording.H264, recording.H265:
	default:
		return fmt.Errorf("segmenter: unsupported video codec %d", s.Video.Codec)
	}
	if s.Audio != nil {
		switch s.Audio.Codec {
		case recording.AAC, recording.G711ALaw, recording.G711MuLaw:
		default:
			return fmt.Errorf("segmenter: unsupported audio codec %d", s.Audio.Codec)
		}
		if s.Audio.Rate() <= 0 {
			return errors.New("segmenter: audio sample rate must be positive")
		}
	}
	ss := s
	w.sess = &ss
	w.active = true
	w.sessSegs = 0
	w.params = videoParams{vps: s.Video.VPS, sps: s.Video.SPS, pps: s.Video.PPS}
	w.audioQ = nil
	w.pending = nil
	if s.Audio != nil {
		w.anchorA = recording.MulDiv(s.AnchorPTS, int64(s.Audio.Rate()), recording.VideoTimescale)
	}
	return nil
}

// EndSession finishes the fragment in progress and closes the segment.
// It is a no-op without a session.
func (w *Writer) EndSession() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.endSessionLocked()
}

// Close ends the session and closes the index queue: Run returns once it
// has handled what is queued. Safe to call twice.
func (w *Writer) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.endSessionLocked()
	w.closed = true
	w.mu.Unlock()
	w.q.close()
	return nil
}

func (w *Writer) endSessionLocked() {
	if !w.active {
		return
	}
	w.finishClosingLocked()
	if w.cur != nil && len(w.pending) > 0 {
		w.flushLocked(w.cur, w.pending, &w.frag, nil, true)
	}
	if w.cur != nil {
		w.closeSegmentLocked(w.cur)
		w.cur = nil
	}
	w.active = false
	w.sess = nil
	w.pending = nil
	w.audioQ = nil
	// An idle camera keeps no staging buffer.
	freeBuf(w.stage)
	w.stage = nil
	if w.pauseReq {
		w.pauseLocked()
	}
}

// warnOnce logs msg the first time key is seen in this writer.
func (w *Writer) warnOnce(key, msg string, args ...any) {
	if w.warned[key] {
		return
	}
	w.warned[key] = true
	w.log.Warn(msg, args...)
}
