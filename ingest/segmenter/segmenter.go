package segmenter

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"
	"xueliang/storage/recording"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/g711"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
)

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
	// Quota caps the spool shared by all cameras: when it refuses a
	// fragment, the segment in progress is closed at the last fragment
	// written and recording pauses (access units are refused and counted)
	// until the quota is no longer full, then resumes with a new segment
	// at the next keyframe. It defaults to nil: unlimited.
	Quota Quota
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

// Writer writes one camera's segments. Create it with New; call Start for
// each RTSP session, WriteVideo/WriteAudio for the media, EndSession when
// the session ends and Close when done.
type Writer struct {
	cfg    Config
	log    *slog.Logger
	q      *opQueue
	wg     sync.WaitGroup
	closed bool

	mu      sync.Mutex
	sess    *Session
	active  bool
	params  videoParams // latest parameter sets seen
	audioQ  []asample   // pending audio, session units
	anchorA int64       // AnchorPTS in audio units
	pending []vsample   // video samples of the fragment being built
	frag    openFrag    // where they are in the current segment's file
	// stage collects the fragment's media not yet written (fragment.go);
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

type videoParams struct {
	vps, sps, pps []byte
}

func (p videoParams) equal(o videoParams) bool {
	return bytes.Equal(p.vps, o.vps) && bytes.Equal(p.sps, o.sps) && bytes.Equal(p.pps, o.pps)
}

type vsample struct {
	pts, dts int64 // session 90 kHz units
	size     int   // AVCC payload bytes (in the fragment buffer, in order)
	key      bool
}

type asample struct {
	t       int64 // audio units relative to the session anchor
	payload []byte
	nominal int64
}

type segment struct {
	h        *segHandle
	limit    int64 // the segment is cut at the first keyframe this long (90 kHz) after its start
	f        *os.File
	size     int64 // end of the last complete fragment
	seq      int
	startPTS int64 // session 90 kHz (Ps)
	startDTS int64 // session 90 kHz (Ds)
	audioOff int64 // audio units relative to anchor at segStart
	params   videoParams
	prevEnd  int64 // rel pts (from AnchorPTS) of the last fragment's End
	lastSync time.Time
	// alloc is the end of the file's preallocated blocks (writeAtLocked,
	// preallocate).
	alloc int64
}

// New returns a Writer and starts its index worker.
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
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		w.runWorker()
	}()
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

// Close ends the session and waits for the index worker to drain its queue.
// Safe to call twice.
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
	w.wg.Wait()
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

// pauseLocked pauses recording because the quota refused a fragment: the
// segment waiting for its late audio and the current segment are closed
// at their last fragment written (a segment without one gets its pending
// fragment, admitted by Quota.Add), what is pending is refused, and the
// pause is logged once per episode.
func (w *Writer) pauseLocked() {
	w.finishClosingLocked()
	if w.cur != nil {
		if w.cur.seq == 0 {
			w.flushLocked(w.cur, w.pending, &w.frag, nil, true)
		} else if len(w.pending) > 0 {
			w.refuseVideoLocked(w.pending)
			w.discardLocked(w.cur, &w.frag)
		}
		w.closeSegmentLocked(w.cur)
		w.cur = nil
	}
	w.pending = nil
	for _, a := range w.audioQ {
		w.refuseAudioLocked(a)
	}
	w.audioQ = nil
	w.pauseReq = false
	if !w.paused {
		w.paused = true
		w.stats.PauseEpisodes++
		q := w.cfg.Quota
		w.log.Warn("spool full, recording paused", "spool_bytes", q.Bytes(), "spool_cap", q.Cap())
	}
}

// refuseVideoLocked counts samples that were accepted into a fragment
// that is now refused.
func (w *Writer) refuseVideoLocked(samples []vsample) {
	for _, s := range samples {
		w.stats.VideoFrames--
		w.stats.RefusedFrames++
		w.stats.RefusedBytes += int64(s.size)
	}
}

func (w *Writer) refuseAudioLocked(a asample) {
	w.stats.AudioSamples--
	w.stats.RefusedAudio++
	w.stats.RefusedBytes += int64(len(a.payload))
}

// warnOnce logs msg the first time key is seen in this writer.
func (w *Writer) warnOnce(key, msg string, args ...any) {
	if w.warned[key] {
		return
	}
	w.warned[key] = true
	w.log.Warn(msg, args...)
}

// WriteVideo writes one access unit. pts and dts are 90 kHz on the
// session's unwrapped RTP clock; key marks a random-access AU (IDR/IRAP).
func (w *Writer) WriteVideo(pts, dts int64, au [][]byte, key bool) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	err := w.writeVideoLocked(pts, dts, au, key)
	if w.pauseReq {
		w.pauseLocked()
	}
	return err
}

func (w *Writer) writeVideoLocked(pts, dts int64, au [][]byte, key bool) error {
	if !w.active {
		return errors.New("segmenter: no session")
	}
	if p, ok := w.extractParams(au); ok {
		w.params = p
	}
	// The AU is written (in AVCC form) into the segment file only when it
	// joins a fragment (startPending/addPending).
	s := vsample{pts: pts, dts: dts, size: avccSize(au), key: key}

	if w.cur == nil {
		w.checkClosingLocked(s.dts)
		if w.paused && (!key || w.cfg.Quota.Full()) {
			w.refuseFrame(s)
			return nil
		}
		if !key {
			w.stats.DroppedVideo++
			return nil
		}
		if err := w.openSegmentLocked(s); errors.Is(err, errSpoolFull) {
			w.refuseFrame(s)
			w.pauseReq = true
			return nil
		} else if err != nil {
			w.stats.DroppedVideo++
			w.stats.WriteErrors++
			return err
		}
		if w.paused {
			w.paused = false
			q := w.cfg.Quota
			w.log.Info("spool has room, recording resumed", "spool_bytes", q.Bytes(), "spool_cap", q.Cap())
		}
		w.startPending(s, au)
		w.countVideo(s)
		return nil
	}

	if key {
		changed := !w.params.equal(w.cur.params)
		segLen := s.pts - w.cur.startPTS
		if changed || segLen >= w.cur.limit {
			if changed {
				w.log.Info("parameter sets changed, starting a new segment")
			}
			w.finishClosingLocked()
			w.writeStageLocked(&w.frag) // the stage is the current fragment's
			w.closing = &closingSeg{seg: w.cur, pending: w.pending, frag: w.frag, next: s,
				boundaryDTS: s.dts}
			if a := w.sess.Audio; a != nil {
				w.closing.boundaryA = recording.MulDiv(s.pts-w.sess.AnchorPTS, int64(a.Rate()), recording.VideoTimescale)
			}
			w.cur, w.pending, w.frag = nil, nil, openFrag{}
			if w.sess.Audio == nil {
				w.finishClosingLocked()
			}
			if err := w.openSegmentLocked(s); errors.Is(err, errSpoolFull) {
				w.refuseFrame(s)
				w.pauseReq = true
				return nil
			} else if err != nil {
				w.pending = nil
				w.stats.DroppedVideo++
				w.stats.WriteErrors++
				return err
			}
			w.startPending(s, au)
			w.countVideo(s)
			return nil
		}
		w.flushLocked(w.cur, w.pending, &w.frag, &s, false)
		w.startPending(s, au)
		w.countVideo(s)
		return nil
	}

	w.checkClosingLocked(s.dts)
	if len(w.pending) > 0 && (s.dts-w.pending[0].dts >= durTo90k(w.cfg.MaxFragmentDuration) ||
		recording.HeaderNeed(len(w.pending)+1, w.audioNeedLocked(0)) > w.frag.head) {
		// Too long, or its headers would not fit the reservation: the
		// sample starts a continuation fragment.
		w.flushLocked(w.cur, w.pending, &w.frag, &s, false)
		w.startPending(s, au)
	} else {
		w.addPending(s, au)
	}
	w.countVideo(s)
	return nil
}

// audioSlack is the audio samples that may arrive between the check of a
// fragment's header room (at a video sample) and its flush.
const audioSlack = 8

// audioNeedLocked is the number of audio entries to reserve header room
// for: taken (already in the fragment) plus the queue and some slack, or 0
// for a session without audio.
func (w *Writer) audioNeedLocked(taken int) int {
	if w.sess.Audio == nil {
		return 0
	}
	return taken + len(w.audioQ) + audioSlack
}

// startPending starts the next fragment of the current segment with s,
// whose NAL units are au: the pending samples (flushed, refused or handed
// to a closing segment) are forgotten.
func (w *Writer) startPending(s vsample, au [][]byte) {
	w.pending = w.pending[:0]
	w.frag = openFrag{seg: w.cur, off: w.cur.size, head: w.headroom}
	w.addPending(s, au)
}

// addPending adds s to the fragment being built and writes au behind its
// header reservation. A failed write is remembered: the fragment is dropped
// at flush. The quota accounts the bytes (with the reservation, at the
// first sample) before they are written; when it refuses them, the
// fragment is refused and the caller pauses (pauseReq).
func (w *Writer) addPending(s vsample, au [][]byte) {
	fr := &w.frag
	s.size = avccSize(au)
	w.pending = append(w.pending, s)
	if fr.err == nil && w.cfg.Quota != nil {
		n := int64(s.size)
		if len(w.pending) == 1 {
			n += int64(fr.head)
		}
		if !w.admitLocked(w.cur, n) {
			fr.err = errSpoolFull
			w.pauseReq = true
		} else {
			fr.reserved += n
		}
	}
	if fr.err == nil {
		w.stageLocked(fr, s.size, func(b []byte) []byte { return appendAVCC(b, au) })
	}
	fr.videoLen += s.size
}

// admitLocked accounts n bytes of seg in the quota: always for its first
// fragment (no segment is left without one), else only if the spool has
// room.
func (w *Writer) admitLocked(seg *segment, n int64) bool {
	q := w.cfg.Quota
	if seg.seq == 0 {
		q.Add(n)
		return true
	}
	return q.Reserve(n)
}

// stageLocked appends n bytes of fr's media, produced by put, to the stage
// (fr must be w.frag), writing the stage out first when they do not fit.
// Media larger than the stage is written directly, from a pooled buffer.
// Failed writes are recorded in fr.err.
func (w *Writer) stageLocked(fr *openFrag, n int, put func([]byte) []byte) {
	if w.stage == nil {
		w.stage = allocBuf(stageSize)
	}
	if len(w.stage)+n > cap(w.stage) {
		w.writeStageLocked(fr)
	}
	if n <= cap(w.stage) {
		w.stage = put(w.stage)
		return
	}
	bp := bigPool.Get().(*[]byte)
	b := put((*bp)[:0])
	w.writeAtLocked(fr, b)
	if cap(b) <= maxPooled {
		*bp = b
		bigPool.Put(bp)
	}
}

// writeStageLocked writes the staged media of fr (w.frag) to its file.
func (w *Writer) writeStageLocked(fr *openFrag) {
	if len(w.stage) > 0 {
		w.writeAtLocked(fr, w.stage)
		w.stage = w.stage[:0]
	}
}

// writeAtLocked writes b behind what fr has written of its media.
func (w *Writer) writeAtLocked(fr *openFrag, b []byte) {
	if fr.err == nil {
		seg, off := fr.seg, fr.off+int64(fr.head)+fr.written
		if end := off + int64(len(b)); end > seg.alloc {
			var err error
			if seg.alloc, err = preallocate(seg.f, seg.alloc, end); err != nil {
				w.warnOnce("prealloc", "cannot preallocate spool file, writing without", "error", err)
			}
		}
		if _, err := seg.f.WriteAt(b, off); err != nil {
			fr.err = err
		}
	}
	fr.written += int64(len(b))
}

// stageSize is a camera's write staging buffer: media is written in
// chunks of up to 256 KiB instead of one write per access unit. A 4 Mbit/s
// P frame is ≈20 KB; on ext4 (Linux 6.18, preallocated file) a 30 MB
// segment written in such chunks costs the kernel ≈22 ms of CPU with
// writes of ≈256 KiB against ≈37 ms with writes of ≈64 KiB (write, fsync
// and unlink; bench/notes.md item 34), for 192 KiB more memory per camera.
const stageSize = 256 << 10

// preallocStep is how far ahead of its writes a segment's file is
// preallocated (preallocate).
const preallocStep = 1 << 20

// bigPool holds buffers for access units larger than the stage, shared by
// all cameras; maxPooled: larger ones are left to the GC.
var bigPool = sync.Pool{New: func() any { b := make([]byte, 0, 256<<10); return &b }}

const maxPooled = 4 << 20

// discardLocked removes a fragment that is not flushed from seg's file and
// gives its bytes back to the quota.
func (w *Writer) discardLocked(seg *segment, fr *openFrag) {
	if fr == &w.frag {
		w.stage = w.stage[:0]
	}
	if err := seg.f.Truncate(fr.off); err != nil {
		w.stats.WriteErrors++
		w.log.Error("cannot truncate a dropped fragment", "error", err)
	}
	if q := w.cfg.Quota; q != nil && fr.reserved > 0 {
		q.Release(fr.reserved)
	}
	fr.reserved = 0
}

// refuseFrame counts a frame refused because the spool is full.
func (w *Writer) refuseFrame(s vsample) {
	w.stats.RefusedFrames++
	w.stats.RefusedBytes += int64(s.size)
}

func (w *Writer) countVideo(s vsample) {
	w.stats.VideoFrames++
	if s.key {
		w.stats.LastKeyframe = w.wallLocked(s.pts)
	}
}

// WriteAudio writes audio. pts is in the audio clock rate on the session's
// unwrapped RTP clock, aligned with the video clock (gortsplib PacketPTS2).
// For AAC each element of aus is one access unit; for G.711 each element is
// a chunk of encoded samples. Audio before the session's first segment is
// dropped.
func (w *Writer) WriteAudio(pts int64, aus [][]byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.active || w.sess.Audio == nil {
		return nil
	}
	a := w.sess.Audio
	t := pts - w.anchorA
	for _, au := range aus {
		if len(au) == 0 {
			continue
		}
		var s asample
		switch a.Codec {
		case recording.AAC:
			n := int64(mpeg4audio.SamplesPerAccessUnit)
			if a.AAC.FrameLengthFlag {
				n = 960
			}
			s = asample{t: t, payload: au, nominal: n}
		case recording.G711ALaw:
			var pcm g711.Alaw
			pcm.Unmarshal(au)
			s = asample{t: t, payload: pcm, nominal: int64(len(au) / a.Channels())}
		case recording.G711MuLaw:
			var pcm g711.Mulaw
			pcm.Unmarshal(au)
			s = asample{t: t, payload: pcm, nominal: int64(len(au) / a.Channels())}
		}
		t += s.nominal
		if n := len(w.audioQ); n > 0 && s.t <= w.audioQ[n-1].t {
			// Non-monotonic audio (duplicate/reordered packet): drop.
			w.stats.DroppedAudio++
			continue
		}
		if w.cur != nil && w.closing == nil && s.t < w.cur.audioOff {
			w.stats.DroppedAudio++
			continue
		}
		w.audioQ = append(w.audioQ, s)
		w.stats.AudioSamples++
	}
	if w.closing != nil && len(w.audioQ) > 0 && w.audioQ[len(w.audioQ)-1].t >= w.closing.boundaryA {
		w.finishClosingLocked()
	}
	if w.cur == nil {
		// No segment yet: keep at most ~5 s (the audio of the segment
		// that opens at the next keyframe may arrive before its video).
		limit := int64(5 * a.Rate())
		for len(w.audioQ) > 0 && w.audioQ[len(w.audioQ)-1].t-w.audioQ[0].t > limit {
			if w.paused {
				w.refuseAudioLocked(w.audioQ[0])
			} else {
				w.stats.DroppedAudio++
			}
			w.audioQ = w.audioQ[1:]
		}
	}
	if w.pauseReq {
		w.pauseLocked()
	}
	return nil
}

func (w *Writer) extractParams(au [][]byte) (videoParams, bool) {
	p := w.params
	found := false
	for _, n := range au {
		if len(n) == 0 {
			continue
		}
		switch w.sess.Video.Codec {
		case recording.H264:
			switch h264.NALUType(n[0] & 0x1f) {
			case h264.NALUTypeSPS:
				p.sps, found = n, true
			case h264.NALUTypePPS:
				p.pps, found = n, true
			}
		case recording.H265:
			switch h265.NALUType((n[0] >> 1) & 0x3f) {
			case h265.NALUType_VPS_NUT:
				p.vps, found = n, true
			case h265.NALUType_SPS_NUT:
				p.sps, found = n, true
			case h265.NALUType_PPS_NUT:
				p.pps, found = n, true
			}
		}
	}
	if found {
		// Copy: the NALUs may alias a reused buffer.
		p = videoParams{vps: bytes.Clone(p.vps), sps: bytes.Clone(p.sps), pps: bytes.Clone(p.pps)}
	}
	return p, found
}

// wallLocked converts a session 90 kHz timestamp into wall-clock time.
func (w *Writer) wallLocked(pts int64) time.Time {
	return w.sess.Anchor.Add(recording.TicksToDuration(pts-w.sess.AnchorPTS, recording.VideoTimescale))
}

// buildInit returns the init of a segment with the session's tracks and
// parameter sets p.
func (w *Writer) buildInit(p videoParams) ([]byte, recording.InitInfo, error) {
	v := recording.Video{Codec: w.sess.Video.Codec, VPS: p.vps, SPS: p.sps, PPS: p.pps}
	return recording.BuildInit(v, w.sess.Audio)
}

func (w *Writer) openSegmentLocked(s vsample) (err error) {
	p := w.params
	init, info, err := w.buildInit(p)
	if err != nil {
		w.warnOnce("init:"+err.Error(), "cannot build init, dropping video until parameter sets are known", "error", err)
		return fmt.Errorf("open segment: %w", err)
	}
	initSize := int64(len(init))
	if q := w.cfg.Quota; q != nil {
		if !q.Reserve(initSize) {
			return errSpoolFull
		}
		defer func() {
			if err != nil {
				q.Release(initSize)
			}
		}()
	}
	start := w.wallLocked(s.pts)
	var f *os.File
	var key string
	for range 1000 {
		key = recording.SegmentKey(w.cfg.CameraID, start)
		path := filepath.Join(w.cfg.SpoolRoot, filepath.FromSlash(key))
		if err = os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return fmt.Errorf("open segment: %w", err)
		}
		// Read-write: the index worker hashes the closed file.
		f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, os.ErrExist) {
			// A file of the same instant exists (clock jump): never
			// overwrite recorded bytes, shift by 1 ns.
			start = start.Add(time.Nanosecond)
			continue
		}
		break
	}
	if err != nil {
		return fmt.Errorf("open segment: %w", err)
	}
	if _, err := f.Write(init); err != nil {
		f.Close()
		os.Remove(f.Name())
		return fmt.Errorf("write init: %w", err)
	}
	seg := &segment{
		limit:    w.segmentLimit(),
		f:        f,
		size:     int64(len(init)),
		startPTS: s.pts,
		startDTS: s.dts,
		params:   p,
		prevEnd:  s.pts - w.sess.AnchorPTS,
		lastSync: w.cfg.Now(),
	}
	if a := w.sess.Audio; a != nil {
		seg.audioOff = recording.MulDiv(s.pts-w.sess.AnchorPTS, int64(a.Rate()), recording.VideoTimescale)
	}
	seg.h = &segHandle{
		f: f,
		seg: recording.Segment{
			CameraID:  w.cfg.CameraID,
			Start:     start,
			End:       start,
			ObjectKey: key,
			Size:      seg.size,
			Init:      init,
			Codecs:    info.Codecs,
			Width:     info.Width,
			Height:    info.Height,
			State:     recording.StateRecording,
		},
	}
	w.cur = seg
	w.stats.Segments++
	w.stats.Bytes += seg.size
	// Drop audio before the segment start (unless a cut segment still
	// waits for it).
	for w.closing == nil && len(w.audioQ) > 0 && w.audioQ[0].t < seg.audioOff {
		w.audioQ = w.audioQ[1:]
		w.stats.DroppedAudio++
	}
	w.q.push(op{kind: opCreate, h: seg.h})
	w.log.Debug("segment opened", "key", key)
	return nil
}

// segmentLimit is the length (90 kHz) after which the next segment of the
// session is cut; it counts the segment as opened.
func (w *Writer) segmentLimit() int64 {
	d := durTo90k(w.cfg.SegmentDuration)
	w.sessSegs++
	if !w.cfg.Stagger || w.sessSegs > 1 {
		return d
	}
	sum := sha256.Sum256([]byte(w.cfg.CameraID))                  // well mixed: IDs differ in a digit or two
	u := float64(binary.BigEndian.Uint64(sum[:])>>11) / (1 << 53) // [0, 1)
	return d/10 + int64(u*float64(d-d/10))
}

// closingSeg is a segment cut at a keyframe whose last fragment waits for
// the audio up to the cut (audio usually arrives a little after video).
type closingSeg struct {
	seg         *segment
	pending     []vsample
	frag        openFrag
	next        vsample
	boundaryDTS int64 // video DTS of the cut
	boundaryA   int64 // audio time of the cut, session audio units
}

// lateAudioWait is how long (in video time) a cut segment waits for audio.
const lateAudioWait = recording.VideoTimescale // 1 s

// checkClosingLocked finishes the closing segment once video is
// lateAudioWait past the cut.
func (w *Writer) checkClosingLocked(dts int64) {
	if w.closing != nil && dts-w.closing.boundaryDTS >= lateAudioWait {
		w.finishClosingLocked()
	}
}

func (w *Writer) finishClosingLocked() {
	c := w.closing
	if c == nil {
		return
	}
	w.closing = nil
	w.flushLocked(c.seg, c.pending, &c.frag, &c.next, true)
	w.closeSegmentLocked(c.seg)
	// Audio of the closed segment that did not make it is dropped.
	if w.cur != nil {
		for len(w.audioQ) > 0 && w.audioQ[0].t < w.cur.audioOff {
			w.audioQ = w.audioQ[1:]
			w.stats.DroppedAudio++
		}
	}
}

func (w *Writer) closeSegmentLocked(seg *segment) {
	end := w.wallLocked(seg.prevEnd + w.sess.AnchorPTS)
	w.q.push(op{kind: opFinish, h: seg.h, end: end, size: seg.size})
}

// flushLocked completes the fragment fr of seg, whose video samples
// (pending) are already in the file: it writes the audio up to the boundary
// behind them and fills the header reservation (free box, moof, mdat
// header). next is the sample that follows (nil at the end of a session).
// final means the segment is closed after this fragment. A fragment whose
// writes failed, or that the quota refuses, is cut off the file.
func (w *Writer) flushLocked(seg *segment, pending []vsample, fr *openFrag, next *vsample, final bool) {
	if len(pending) == 0 {
		return
	}
	entries := w.entries[:0]
	var maxEnd int64 = -1 << 62
	for i, s := range pending {
		var dur int64
		switch {
		case i+1 < len(pending):
			dur = pending[i+1].dts - s.dts
		case next != nil:
			dur = next.dts - s.dts
		case i > 0:
			dur = s.dts - pending[i-1].dts
		default:
			dur = recording.VideoTimescale / 25
		}
		if dur < 0 {
			dur = 0
		}
		entries = append(entries, recording.SampleEntry{
			Duration: uint32(dur),
			Size:     uint32(s.size),
			NonSync:  !s.key,
			CTS:      int32((s.pts - s.dts) - (seg.startPTS - seg.startDTS)),
		})
		if e := s.pts + dur; e > maxEnd {
			maxEnd = e
		}
	}
	w.entries = entries
	first := pending[0]
	anchor := w.sess.AnchorPTS
	startRel := seg.prevEnd
	if first.key {
		startRel = first.pts - anchor
	}
	var endRel int64
	if next != nil && next.key {
		endRel = next.pts - anchor
	} else {
		endRel = maxEnd - anchor
	}
	if endRel < startRel {
		endRel = startRel
	}

	var tracksArr [2]recording.TrackRun
	tracks := append(tracksArr[:0], recording.TrackRun{
		ID: recording.VideoTrackID, BaseTime: uint64(first.dts - seg.startDTS), Entries: entries, DataLen: fr.videoLen,
	})
	w.audio = w.audio[:0]
	// Audio entries that fit the reservation beside the video's (the
	// header-room check at each video sample keeps this ≥ the queue but
	// for late audio of a cut segment).
	room := recording.AudioEntriesFit(fr.head, tracks)
	if a := w.sess.Audio; a != nil {
		if at, ok := w.takeAudioLocked(seg, next, final, a, max(room, 0)); ok {
			tracks = append(tracks, at)
		}
	}
	hdrLen := recording.HeaderSize(tracks)
	audioBytes := len(w.audio)
	dataLen := fr.videoLen + audioBytes
	// Reserve more for the next fragments when this one came close.
	taken := 0
	if len(tracks) > 1 {
		taken = len(tracks[1].Entries)
	}
	if need := recording.HeaderNeed(len(entries), w.audioNeedLocked(taken)); need > w.headroom {
		w.headroom = min((need*3/2+255)/256*256, maxHeadroom)
	}
	if fr.err == nil && hdrLen != fr.head && fr.head-hdrLen < recording.FreeBoxMin {
		// Cannot happen: the room check cuts fragments before this.
		fr.err = fmt.Errorf("fragment headers need %d bytes, %d reserved", hdrLen, fr.head)
	}
	if fr.err == nil && audioBytes > 0 && w.cfg.Quota != nil {
		// The audio of a fragment whose video the quota admitted is
		// admitted with it (a few KiB): a cut segment's last fragment is
		// never refused while it waits for its audio.
		w.cfg.Quota.Add(int64(audioBytes))
		fr.reserved += int64(audioBytes)
	}
	if errors.Is(fr.err, errSpoolFull) {
		// The quota refused a video sample: the fragment is refused, the
		// segment ends at the previous one and the caller pauses
		// (pauseReq is set).
		w.refuseVideoLocked(pending)
		if len(tracks) > 1 {
			k := int64(len(tracks[1].Entries))
			w.stats.AudioSamples -= k
			w.stats.RefusedAudio += k
			w.stats.RefusedBytes += int64(audioBytes)
		}
		w.discardLocked(seg, fr)
		return
	}
	if fr.err != nil {
		w.stats.WriteErrors++
		w.log.Error("cannot write fragment", "error", fr.err)
		w.discardLocked(seg, fr)
		return
	}
	n := int64(fr.head + dataLen)
	if cap(w.header) < fr.head {
		w.header = make([]byte, fr.head)
	}
	hdr := w.header[:fr.head]
	recording.PutHeader(hdr, uint32(seg.seq+1), tracks, dataLen)
	// The rest of the media (staged video, then the audio), then the
	// headers.
	if fr == &w.frag {
		w.stageLocked(fr, audioBytes, func(b []byte) []byte { return append(b, w.audio...) })
		w.writeStageLocked(fr)
	} else if audioBytes > 0 {
		w.writeAtLocked(fr, w.audio)
	}
	err := fr.err
	if err == nil {
		_, err = seg.f.WriteAt(hdr, fr.off)
	}
	if cap(w.audio) > 256<<10 {
		w.audio = nil // a burst of audio: do not keep its buffer
	}
	if err != nil {
		w.stats.WriteErrors++
		w.log.Error("cannot write fragment", "error", err)
		w.discardLocked(seg, fr)
		return
	}
	fr.reserved = 0
	seg.seq++
	frag := recording.Fragment{
		Seq:      seg.seq,
		Start:    w.wallLocked(startRel + anchor),
		End:      w.wallLocked(endRel + anchor),
		Offset:   fr.off,
		Size:     n,
		Keyframe: first.key,
	}
	seg.size = fr.off + n
	seg.prevEnd = endRel
	w.stats.Fragments++
	w.stats.Bytes += n
	w.q.push(op{kind: opFragments, h: seg.h, frags: []recording.Fragment{frag}})
	if now := w.cfg.Now(); !final && now.Sub(seg.lastSync) >= w.cfg.FsyncInterval {
		seg.lastSync = now
		w.q.push(op{kind: opSync, h: seg.h})
	}
}

// takeAudioLocked removes from the audio queue the samples that belong in
// the fragment being flushed, at most room of them, appends their payloads
// to w.audio and returns them as a track run (false when there are none).
// Samples beyond room stay queued for the next fragment (or, at a segment
// cut, are dropped with the rest of the closed segment's late audio).
func (w *Writer) takeAudioLocked(seg *segment, next *vsample, final bool, a *recording.Audio, room int) (recording.TrackRun, bool) {
	rate := int64(a.Rate())
	// Samples before this segment's start: while a cut segment waits for
	// its audio they belong to it and stay queued; otherwise they are
	// stale and dropped. Never write negative times.
	k := 0
	for k < len(w.audioQ) && w.audioQ[k].t < seg.audioOff {
		k++
	}
	if k > 0 && (w.closing == nil || w.closing.seg == seg) {
		w.stats.DroppedAudio += int64(k)
		w.audioQ = append(w.audioQ[:0:0], w.audioQ[k:]...)
		k = 0
	}
	q := w.audioQ[k:]
	n := 0
	switch {
	case final && next == nil:
		n = len(q) // end of session: everything
	case final:
		// Segment cut: everything before the next segment's start.
		bound := recording.MulDiv(next.pts-w.sess.AnchorPTS, rate, recording.VideoTimescale)
		for n < len(q) && q[n].t < bound {
			n++
		}
	default:
		// Everything but the last sample, whose duration needs its successor.
		n = len(q) - 1
	}
	n = min(n, room)
	if n <= 0 {
		return recording.TrackRun{}, false
	}
	take := q[:n]
	entries := w.aEntries[:0]
	for i, s := range take {
		dur := s.nominal
		if i+1 < len(q) {
			// From the next timestamp, so a gap (lost packets) stretches
			// one sample instead of shifting the rest of the fragment.
			if d := q[i+1].t - s.t; d > 0 {
				dur = d
			}
		}
		entries = append(entries, recording.SampleEntry{Duration: uint32(dur), Size: uint32(len(s.payload))})
		w.audio = append(w.audio, s.payload...)
	}
	w.aEntries = entries
	tr := recording.TrackRun{ID: recording.AudioTrackID, BaseTime: uint64(take[0].t - seg.audioOff), Entries: entries, DataLen: len(w.audio)}
	rest := append([]asample(nil), w.audioQ[:k]...)
	w.audioQ = append(rest, q[n:]...)
	return tr, true
}

// durTo90k converts a duration to 90 kHz ticks.
func durTo90k(d time.Duration) int64 {
	return recording.MulDiv(int64(d), recording.VideoTimescale, int64(time.Second))
}
