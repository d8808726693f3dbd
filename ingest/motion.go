package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"xueliang/ingest/decode"
	"xueliang/ingest/motion"
	"xueliang/storage/recording"
)

// MotionSink stores motion analysis results (*index.DB). AddMotion is
// called from the camera's analysis goroutine, never from the recording
// path, so a slow sink only makes analysis frames drop.
type MotionSink interface {
	AddMotion(ctx context.Context, chunks []recording.MotionChunk, intervals []recording.MotionInterval) error
}

// MotionOptions configure motion analysis for the cameras with
// CameraConfig.Motion set. A nil Sink disables analysis for every camera.
type MotionOptions struct {
	// Sink receives chunks of per-second grids and closed intervals.
	Sink MotionSink
	// Detector configures the detector; Detector.FPS (the analysis rate of
	// a sub stream) defaults to 5. Zero fields take motion's defaults.
	Detector motion.Config
	// Intervals configures interval building (padding, merge gap, minimum
	// duration, minimum motion frames). The zero value takes
	// motion.DefaultIntervalConfig. In keyframes-only mode MaxGap is at
	// least KeyframeGap and MinFrames at most 1 (one frame per GOP).
	Intervals *motion.IntervalConfig
	// KeyframeGap is the least merge gap in keyframes-only mode; it
	// defaults to 2.5 s: two keyframes of a 2 s GOP
	// stay in one interval, a keyframe without motion splits it (set it to
	// about GOP + 0.5 s).
	KeyframeGap time.Duration
	// Chunk is the length of one stored chunk of grids; it defaults to
	// 1 minute (aligned to the wall-clock minute; the per-minute activity
	// of the timeline is one chunk row).
	Chunk time.Duration
	// QueueSize bounds the access units waiting for analysis per camera;
	// when it is full new ones are dropped and counted. It defaults to 50.
	QueueSize int
}

func (o MotionOptions) filled() MotionOptions {
	if o.Detector.FPS <= 0 {
		o.Detector.FPS = 5
	}
	if o.Intervals == nil {
		ic := motion.DefaultIntervalConfig()
		o.Intervals = &ic
	}
	if o.KeyframeGap <= 0 {
		o.KeyframeGap = 2500 * time.Millisecond
	}
	if o.Chunk <= 0 || o.Chunk > recording.MaxMotionChunk {
		o.Chunk = time.Minute
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 50
	}
	return o
}

// KeyframeForegroundTau is the detector's ForegroundTau in keyframes-only
// mode when none is configured.
const KeyframeForegroundTau = time.Minute

// MotionStats are a camera's analysis counters.
type MotionStats struct {
	Source        string // "sub" or "keyframes"
	Queued        int64  // access units handed to the analyser
	Dropped       int64  // access units dropped because the queue was full
	Decoded       int64  // access units decoded
	Analysed      int64  // frames analysed
	DecodeErrors  int64
	Panics        int64 // analyser restarts after a panic
	SinkErrors    int64 // failed index writes (data lost)
	Chunks        int64 // chunks written
	Intervals     int64 // intervals written
	AnalysisNanos int64 // time spent decoding and analysing
	// SubReconnects counts sub-stream sessions that ended and were
	// redialled; SubVideoStalls those of them ended by the video watchdog
	// (no video packet for Options.VideoTimeout while the connection
	// stayed up). Both stay 0 with Source "keyframes".
	SubReconnects, SubVideoStalls int64
	// LastMotion is the end of the latest analysed second with motion
	// (stream time); zero before the first. It is what "motion now" is
	// judged on while an interval is still open (intervals are stored when
	// they close).
	LastMotion time.Time
}

// MotionAnalyser is one camera's synchronous analysis pipeline: decode →
// Detector → Aggregator → chunks of per-second grids and intervals. It is
// not safe for concurrent use; the puller runs it on its own goroutine
// behind a bounded queue, benchmarks call it directly.
type MotionAnalyser struct {
	camera  string
	opts    MotionOptions
	keyOnly bool
	ivCfg   motion.IntervalConfig

	dec   *decode.Decoder
	codec recording.VideoCodec
	det   *motion.Detector
	agg   motion.Aggregator
	ib    *motion.IntervalBuilder

	lastFrame  time.Time
	chunkStart time.Time
	pending    []motion.Second
	chunks     []recording.MotionChunk
	intervals  []recording.MotionInterval
	stats      *motionCounters
}

// NewMotionAnalyser returns the pipeline for one camera. keyframesOnly
// selects the main-stream mode: every access unit given is a keyframe and
// every one is analysed; otherwise every access unit must be given (the
// decoder needs the references) and Detector.FPS of them are analysed.
func NewMotionAnalyser(camera string, opts MotionOptions, keyframesOnly bool) (*MotionAnalyser, error) {
	opts = opts.filled()
	dc := opts.Detector
	if keyframesOnly && dc.ForegroundTau == 0 {
		// One frame per GOP: at 2 s steps the default 15 s foreground
		// constant blends 12 % of a passing object into the background,
		// enough to leave a ghost on the next keyframe.
		dc.ForegroundTau = KeyframeForegroundTau
	}
	det, err := motion.NewDetector(dc)
	if err != nil {
		return nil, err
	}
	ic := *opts.Intervals
	if keyframesOnly {
		ic.MaxGap = max(ic.MaxGap, opts.KeyframeGap)
		ic.MinFrames = min(ic.MinFrames, 1)
	}
	return &MotionAnalyser{camera: camera, opts: opts, keyOnly: keyframesOnly, ivCfg: ic, det: det,
		ib: motion.NewIntervalBuilder(ic), stats: &motionCounters{}}, nil
}

// Process decodes one access unit captured at wall-clock t and, when due,
// analyses it. Decode errors are counted and returned; the analyser stays
// usable (the decoder recovers at the next keyframe).
func (a *MotionAnalyser) Process(t time.Time, codec recording.VideoCodec, au [][]byte) error {
	start := time.Now()
	defer func() { a.stats.analysisNanos.Add(int64(time.Since(start))) }()
	if a.dec == nil || a.codec != codec {
		if a.dec != nil {
			a.dec.Close()
		}
		d, err := decode.New(codec)
		if err != nil {
			return err
		}
		a.dec, a.codec = d, codec
	}
	if !a.lastFrame.IsZero() && t.Sub(a.lastFrame) > time.Second {
		a.Advance(t)
	}
	a.lastFrame = t
	a.stats.decoded.Add(1)
	if !a.keyOnly && !a.det.Due(t) {
		if _, err := a.dec.Feed(au); err != nil {
			a.stats.decodeErrors.Add(1)
			return err
		}
		return nil
	}
	var f *decode.Frame
	var err error
	if a.keyOnly {
		// Each keyframe alone: its picture now, whatever the stream's
		// B-frame reorder delay.
		f, err = a.dec.DecodeIntra(au)
	} else {
		f, err = a.dec.Decode(au)
	}
	if err != nil {
		a.stats.decodeErrors.Add(1)
		return err
	}
	if f == nil {
		return nil
	}
	cfg := a.det.Config()
	r := a.det.Analyze(t, f.Gray(cfg.Width, cfg.Height))
	a.stats.analysed.Add(1)
	if s, ok := a.agg.Add(r); ok {
		a.second(s)
	}
	return nil
}

// Advance tells the analyser that no frames came until now: the second in
// progress, a chunk whose time is over and an interval whose gap has
// passed are completed.
func (a *MotionAnalyser) Advance(now time.Time) {
	if !a.lastFrame.IsZero() && now.Sub(a.lastFrame) >= time.Second {
		if s, ok := a.agg.Flush(); ok {
			a.second(s)
		}
	}
	a.addIntervals(a.ib.Advance(now))
	if !a.chunkStart.IsZero() && !now.Before(a.chunkStart.Add(a.opts.Chunk)) {
		a.sealChunk()
	}
}

// Flush completes everything in progress (end of stream).
func (a *MotionAnalyser) Flush() {
	if s, ok := a.agg.Flush(); ok {
		a.second(s)
	}
	a.addIntervals(a.ib.Flush())
	a.sealChunk()
}

// Take returns the chunks and intervals completed so far and forgets them.
func (a *MotionAnalyser) Take() ([]recording.MotionChunk, []recording.MotionInterval) {
	c, iv := a.chunks, a.intervals
	a.chunks, a.intervals = nil, nil
	return c, iv
}

// Stats returns the analyser's counters.
func (a *MotionAnalyser) Stats() MotionStats { return a.stats.snapshot(a.keyOnly) }

// Close frees the decoder; safe to call twice.
func (a *MotionAnalyser) Close() {
	if a.dec != nil {
		a.dec.Close()
		a.dec = nil
	}
}

func (a *MotionAnalyser) second(s motion.Second) {
	cs := s.Start.Truncate(a.opts.Chunk)
	if !a.chunkStart.IsZero() && !cs.Equal(a.chunkStart) {
		if cs.Before(a.chunkStart) {
			return // clock stepped back past the chunk: drop the second
		}
		a.sealChunk()
	}
	if a.chunkStart.IsZero() {
		a.chunkStart = cs
	}
	if !s.Empty() {
		s.Grid = s.Grid.Clone()
		a.pending = append(a.pending, s)
		a.stats.lastMotion.Store(s.Start.Add(time.Second).UnixNano())
	}
	a.addIntervals(a.ib.Push(s))
}

func (a *MotionAnalyser) sealChunk() {
	if a.chunkStart.IsZero() {
		return
	}
	start := a.chunkStart
	a.chunkStart = time.Time{}
	secs := a.pending
	a.pending = nil
	if len(secs) == 0 {
		return
	}
	c, err := motion.PackChunk(start, start.Add(a.opts.Chunk), secs)
	if err != nil {
		return // cannot happen: seconds are in the chunk by construction
	}
	a.chunks = append(a.chunks, recording.MotionChunk{CameraID: a.camera, Start: c.Start, End: c.End,
		Active: c.Active, Summary: c.Summary, Data: c.Data})
}

func (a *MotionAnalyser) addIntervals(ivs []motion.Interval) {
	for _, iv := range ivs {
		cells, _ := iv.Cells.MarshalBinary()
		a.intervals = append(a.intervals, recording.MotionInterval{CameraID: a.camera, Start: iv.Start, End: iv.End,
			Peak: iv.Peak, Seconds: iv.Seconds, Cells: cells,
			X0: iv.Bounds.Min.X, Y0: iv.Bounds.Min.Y, X1: iv.Bounds.Max.X, Y1: iv.Bounds.Max.Y})
	}
}

type motionCounters struct {
	queued, dropped, decoded, analysed, decodeErrors, panics, sinkErrors, chunks, intervals, analysisNanos atomic.Int64
	subReconnects, subVideoStalls                                                                          atomic.Int64

	// lastMotion is MotionStats.LastMotion as UnixNano; 0 = none.
	lastMotion atomic.Int64
}

func (c *motionCounters) snapshot(keyOnly bool) MotionStats {
	src := "sub"
	if keyOnly {
		src = "keyframes"
	}
	st := MotionStats{Source: src, Queued: c.queued.Load(), Dropped: c.dropped.Load(), Decoded: c.decoded.Load(),
		Analysed: c.analysed.Load(), DecodeErrors: c.decodeErrors.Load(), Panics: c.panics.Load(),
		SinkErrors: c.sinkErrors.Load(), Chunks: c.chunks.Load(), Intervals: c.intervals.Load(),
		AnalysisNanos: c.analysisNanos.Load(), SubReconnects: c.subReconnects.Load(), SubVideoStalls: c.subVideoStalls.Load()}
	if n := c.lastMotion.Load(); n != 0 {
		st.LastMotion = time.Unix(0, n)
	}
	return st
}

// motionFrame is one access unit waiting for analysis (its own copy).
type motionFrame struct {
	t     time.Time
	codec recording.VideoCodec
	au    [][]byte
}

// motionWorker runs a camera's analyser on its own goroutine, fed through
// a bounded queue by the puller (keyframes) or the sub-stream reader.
type motionWorker struct {
	camera  string
	opts    MotionOptions
	keyOnly bool
	log     *slog.Logger
	q       chan motionFrame
	stats   *motionCounters
	now     func() time.Time
}

func newMotionWorker(camera string, opts MotionOptions, keyOnly bool, log *slog.Logger) *motionWorker {
	opts = opts.filled()
	return &motionWorker{camera: camera, opts: opts, keyOnly: keyOnly, log: log.With("component", "motion"),
		q: make(chan motionFrame, opts.QueueSize), stats: &motionCounters{}, now: time.Now}
}

// offer hands an access unit to the analyser without ever blocking: when
// the queue is full it is dropped and counted. au is copied.
func (w *motionWorker) offer(t time.Time, codec recording.VideoCodec, au [][]byte) {
	n := 0
	for _, nalu := range au {
		n += len(nalu)
	}
	buf := make([]byte, 0, n)
	cp := make([][]byte, len(au))
	for i, nalu := range au {
		buf = append(buf, nalu...)
		cp[i] = buf[len(buf)-len(nalu):]
	}
	select {
	case w.q <- motionFrame{t: t, codec: codec, au: cp}:
		w.stats.queued.Add(1)
	default:
		w.stats.dropped.Add(1)
	}
}

func (w *motionWorker) snapshot() MotionStats { return w.stats.snapshot(w.keyOnly) }

// run analyses until ctx ends. A panic in the analyser (decoder, detector)
// is recovered and counted, and the analyser restarts with a fresh state;
// the puller and every other camera are unaffected.
func (w *motionWorker) run(ctx context.Context) {
	for {
		err := w.safeRun(ctx)
		if ctx.Err() != nil {
			return
		}
		w.stats.panics.Add(1)
		w.log.Error("motion analyser failed, restarting", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

var errAnalyserPanic = errors.New("motion analyser panicked")

func (w *motionWorker) safeRun(ctx context.Context) (err error) {
	a, err := NewMotionAnalyser(w.camera, w.opts, w.keyOnly)
	if err != nil {
		return err
	}
	a.stats = w.stats
	defer a.Close()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", errAnalyserPanic, r)
		}
	}()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	// Stream time advances with the server clock since the last frame
	// (the camera clock may be offset from ours).
	var lastT, lastRecv time.Time
	var lastWarn time.Time
	var errsSinceWarn int64
	for {
		select {
		case <-ctx.Done():
			a.Flush()
			w.write(context.WithoutCancel(ctx), a)
			return nil
		case f := <-w.q:
			lastT, lastRecv = f.t, w.now()
			if err := a.Process(f.t, f.codec, f.au); err != nil {
				errsSinceWarn++
				if time.Since(lastWarn) >= 10*time.Second {
					w.log.Warn("motion decode errors", "errors", errsSinceWarn, "err", err)
					lastWarn, errsSinceWarn = time.Now(), 0
				}
			}
		case <-tick.C:
			if !lastT.IsZero() {
				a.Advance(lastT.Add(w.now().Sub(lastRecv)))
			}
		}
		w.write(ctx, a)
	}
}

// write stores what the analyser completed; on failure the data is lost
// (counted), analysis goes on.
func (w *motionWorker) write(ctx context.Context, a *MotionAnalyser) {
	chunks, ivs := a.Take()
	if len(chunks) == 0 && len(ivs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := w.opts.Sink.AddMotion(ctx, chunks, ivs); err != nil {
		w.stats.sinkErrors.Add(1)
		w.log.Warn("motion write failed", "err", err, "chunks", len(chunks), "intervals", len(ivs))
		return
	}
	w.stats.chunks.Add(int64(len(chunks)))
	w.stats.intervals.Add(int64(len(ivs)))
}

// startMotion starts the camera's analysis when it has motion enabled and
// a sink is configured: a worker, plus the sub-stream reader when SubURL
// is set (otherwise the puller offers its keyframes). stop waits for them.
func (p *Puller) startMotion(ctx context.Context) (stop func()) {
	if !p.cfg.Motion || p.opts.Motion.Sink == nil {
		return func() {}
	}
	keyOnly := p.cfg.SubURL == ""
	w := newMotionWorker(p.cfg.ID, p.opts.Motion, keyOnly, p.log)
	p.mu.Lock()
	if p.motionCounters == nil {
		p.motionCounters = &motionCounters{} // kept across sessions and restarts
	}
	w.stats = p.motionCounters
	p.mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { w.run(ctx) })
	if !keyOnly {
		wg.Go(func() { p.runSubStream(ctx, w) })
	}
	p.mu.Lock()
	p.motion = w
	p.mu.Unlock()
	return func() {
		cancel()
		wg.Wait()
	}
}

// MotionStats returns the camera's analysis counters; ok is false when
// motion analysis is not running.
func (p *Puller) MotionStats() (MotionStats, bool) {
	p.mu.Lock()
	w := p.motion
	p.mu.Unlock()
	if w == nil {
		return MotionStats{}, false
	}
	return w.snapshot(), true
}

// MotionStats returns the analysis counters of every camera with motion
// analysis running, by camera ID.
func (m *Manager) MotionStats() map[string]MotionStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]MotionStats{}
	for id, r := range m.running {
		if s, ok := r.puller.MotionStats(); ok {
			out[id] = s
		}
	}
	return out
}
