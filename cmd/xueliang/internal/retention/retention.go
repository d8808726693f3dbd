// Package retention deletes footage past its retention: the worker that
// ages segments out (retention.max_age, max_bytes per camera, with camera
// and township overrides) and the emergency purge that frees disk space.
//
// Both are driven by the index, never by listing the bucket or walking a
// directory. Every deletion is a three-step state machine, in chunks:
//
//	rows → state "deleting" (one transaction, index.MarkDeleting)
//	     → objects removed (S3 DeleteObjects of ≤ 1,000 keys; local unlink +
//	       directory fsync) and any spool copy
//	     → rows deleted (one transaction)
//
// A crash at any step leaves rows in "deleting", which the next run (and the
// start of Run) finishes first; removing a missing object is not an error,
// so nothing is half-deleted and nothing newer is touched. Segments that an
// active evidence lock overlaps are never chosen.
package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"xueliang/cmd/xueliang/internal/audit"
	"xueliang/index"
	"xueliang/storage/recording"
)

// Index is what the worker needs of the index.
type Index interface {
	CameraRetentions(ctx context.Context) ([]index.CameraRetention, error)
	TownshipRetentions(ctx context.Context) (map[string]index.RetentionOverride, error)
	SegmentsByState(ctx context.Context, st recording.SegmentState) ([]recording.Segment, error)
	MarkDeleting(ctx context.Context, sel index.DeleteSelect) ([]recording.Segment, error)
	DeleteSegmentRows(ctx context.Context, ids []int64) error
	ReleaseLocked(ctx context.Context, ids []int64) ([]int64, error)
	CameraBytes(ctx context.Context, camera string) (unlocked, locked int64, err error)
	LockedBytes(ctx context.Context, camera string) (int64, error)
	OldestUnlockedStart(ctx context.Context, camera string) (time.Time, error)
	DeleteMetadataBefore(ctx context.Context, camera string, t time.Time) (int64, error)
	AppendAudit(ctx context.Context, rec index.AuditRecord, seal func(*index.AuditRecord)) (index.AuditRecord, error)
}

// KeyDeleter removes objects in batches; a missing object is not an error
// (storage/s3 and storage/local implement it).
type KeyDeleter interface {
	DeleteKeys(ctx context.Context, keys []string) error
}

// Step names a point of the deletion state machine, for Config.Hook.
type Step string

// Steps, in order, within one chunk.
const (
	StepMarked  Step = "marked"  // rows are in state deleting
	StepObjects Step = "objects" // objects (and spool copies) are gone
	StepRows    Step = "rows"    // rows are deleted
)

// Defaults.
const (
	DefaultMaxAge   = 30 * 24 * time.Hour
	DefaultInterval = 10 * time.Minute
	DefaultChunk    = 500
)

// Config configures a Worker. Index and Store are required.
type Config struct {
	Index Index
	Store KeyDeleter
	// RemoveSpool removes a segment's spool copy if there is one (a stored
	// segment's spool file normally is gone); nil means none.
	RemoveSpool func(key string) error
	// MaxAge is the server-wide retention. It defaults to 30 days.
	MaxAge time.Duration
	// MaxBytes caps each camera's unlocked stored footage; 0 means no cap.
	MaxBytes int64
	// Interval between runs. It defaults to 10 minutes. The timer is the
	// worker's own: policy changes (read from the index at every run) do
	// not reset it.
	Interval time.Duration
	// Chunk is the number of segments per state-machine chunk. It defaults
	// to 500.
	Chunk int
	// Now is the clock. It defaults to time.Now.
	Now func() time.Time
	// Hook, when set, is called after each step of each chunk; an error
	// stops the run there (tests use it to simulate a crash).
	Hook func(step Step, segs []recording.Segment) error
	// Registerer receives the worker's metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Logger; nil discards.
	Logger *slog.Logger
}

// Worker is the retention worker and the emergency purge.
type Worker struct {
	cfg Config
	log *slog.Logger
	m   *metrics
	// mu serialises runs and purges: both move rows through the same states.
	mu sync.Mutex
}

// New returns a Worker; it starts nothing.
func New(cfg Config) *Worker {
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Chunk <= 0 {
		cfg.Chunk = DefaultChunk
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Worker{cfg: cfg, log: log.With("component", "retention"), m: newMetrics(cfg.Registerer)}
}

// Run finishes any deletion a crash interrupted, then runs a retention
// pass every Interval until ctx ends. A failed pass is logged and retried
// at the next tick.
func (w *Worker) Run(ctx context.Context) error {
	t := time.NewTicker(w.cfg.Interval)
	defer t.Stop()
	for {
		if _, err := w.RunOnce(ctx); err != nil && ctx.Err() == nil {
			w.log.Error("retention run failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// CameraReport is what one run deleted of one camera.
type CameraReport struct {
	Camera string
	// Segments and Bytes deleted; From and To bound their time range.
	Segments int
	Bytes    int64
	From, To time.Time
	// MetadataRows is the motion and event rows deleted.
	MetadataRows int64
	// Reason is "max_age", "max_bytes", "resume" or "purge" (the last
	// reason that deleted something).
	Reason string
}

// Report is one run's result, by camera.
type Report map[string]*CameraReport

func (r Report) add(reason string, segs []recording.Segment) {
	for _, s := range segs {
		c := r[s.CameraID]
		if c == nil {
			c = &CameraReport{Camera: s.CameraID, From: s.Start, To: s.End}
			r[s.CameraID] = c
		}
		c.Segments++
		c.Bytes += s.Size
		if s.Start.Before(c.From) {
			c.From = s.Start
		}
		if s.End.After(c.To) {
			c.To = s.End
		}
		c.Reason = reason
	}
}

// policy is a camera's effective retention.
type policy struct {
	maxAge   time.Duration
	maxBytes int64
}

// RunOnce is one retention pass: finish the deleting rows, then per camera
// age out what is past max_age, then the oldest beyond max_bytes, then the
// metadata past the horizon. One audit entry per camera that lost anything.
func (w *Worker) RunOnce(ctx context.Context) (Report, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.m.runs.Inc()
	rep := Report{}
	defer func() { w.audit(ctx, rep) }()
	if err := w.resume(ctx, rep); err != nil {
		return rep, err
	}
	cams, err := w.cfg.Index.CameraRetentions(ctx)
	if err != nil {
		return rep, err
	}
	towns, err := w.cfg.Index.TownshipRetentions(ctx)
	if err != nil {
		return rep, err
	}
	now := w.cfg.Now()
	var lag time.Duration
	var lockedTotal int64
	var errs []error
	for _, c := range cams {
		p := w.policy(c, towns)
		horizon := now.Add(-p.maxAge)
		if err := w.deleteWhile(ctx, rep, "max_age", index.DeleteSelect{Camera: c.Camera, Before: horizon}); err != nil {
			errs = append(errs, err)
			continue
		}
		// Only a byte cap needs the camera's total, which reads every
		// stored row of it: without one the pass costs what it deletes
		// (plus the locked ranges), not what the archive holds.
		var unlocked, locked int64
		if p.maxBytes > 0 {
			unlocked, locked, err = w.cfg.Index.CameraBytes(ctx, c.Camera)
		} else {
			locked, err = w.cfg.Index.LockedBytes(ctx, c.Camera)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if p.maxBytes > 0 && unlocked > p.maxBytes {
			if err := w.deleteWhile(ctx, rep, "max_bytes",
				index.DeleteSelect{Camera: c.Camera, Before: now, Bytes: unlocked - p.maxBytes}); err != nil {
				errs = append(errs, err)
				continue
			}
			_, locked, err = w.cfg.Index.CameraBytes(ctx, c.Camera)
			if err != nil {
				errs = append(errs, err)
				continue
			}
		}
		lockedTotal += locked
		oldest, err := w.cfg.Index.OldestUnlockedStart(ctx, c.Camera)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		// Motion and events go with the footage: past the horizon, and
		// before the oldest footage left when max_bytes cut deeper.
		cut := horizon
		if r := rep[c.Camera]; r != nil && r.Reason == "max_bytes" && oldest.After(cut) {
			cut = oldest
		}
		n, err := w.cfg.Index.DeleteMetadataBefore(ctx, c.Camera, cut)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if n > 0 {
			r := rep[c.Camera]
			if r == nil {
				r = &CameraReport{Camera: c.Camera, Reason: "max_age"}
				rep[c.Camera] = r
			}
			r.MetadataRows += n
			w.m.metadataRows.Add(float64(n))
		}
		if !oldest.IsZero() && oldest.Before(horizon) {
			lag = max(lag, horizon.Sub(oldest))
		}
	}
	if len(errs) == 0 {
		w.m.lag.Set(lag.Seconds())
		w.m.lockedBytes.Set(float64(lockedTotal))
		w.m.lastRun.Set(float64(now.UnixNano()) / 1e9)
	}
	return rep, errors.Join(errs...)
}

func (w *Worker) policy(c index.CameraRetention, towns map[string]index.RetentionOverride) policy {
	p := policy{maxAge: w.cfg.MaxAge, maxBytes: w.cfg.MaxBytes}
	if t, ok := towns[c.Township]; ok && c.Township != "" {
		if t.MaxAge > 0 {
			p.maxAge = t.MaxAge
		}
		if t.MaxBytes > 0 {
			p.maxBytes = t.MaxBytes
		}
	}
	if c.Override.MaxAge > 0 {
		p.maxAge = c.Override.MaxAge
	}
	if c.Override.MaxBytes > 0 {
		p.maxBytes = c.Override.MaxBytes
	}
	return p
}

// resume finishes the rows a crash left in state deleting.
func (w *Worker) resume(ctx context.Context, rep Report) error {
	segs, err := w.cfg.Index.SegmentsByState(ctx, recording.StateDeleting)
	if err != nil {
		return err
	}
	for len(segs) > 0 {
		chunk := segs[:min(len(segs), w.cfg.Chunk)]
		segs = segs[len(chunk):]
		if err := w.finish(ctx, rep, "resume", chunk); err != nil {
			return err
		}
	}
	return nil
}

// deleteWhile marks and deletes chunks chosen by sel until none is left
// (or, with sel.Bytes, until that many bytes are gone).
func (w *Worker) deleteWhile(ctx context.Context, rep Report, reason string, sel index.DeleteSelect) error {
	sel.Limit = w.cfg.Chunk
	for {
		segs, err := w.cfg.Index.MarkDeleting(ctx, sel)
		if err != nil {
			return err
		}
		if len(segs) == 0 {
			return nil
		}
		if err := w.hook(StepMarked, segs); err != nil {
			return err
		}
		if segs, err = w.releaseLocked(ctx, segs); err != nil {
			return err
		}
		if err := w.finish(ctx, rep, reason, segs); err != nil {
			return err
		}
		if sel.Bytes > 0 {
			var got int64
			for _, s := range segs {
				got += s.Size
			}
			if sel.Bytes -= got; sel.Bytes <= 0 {
				return nil
			}
		}
	}
}

// finish removes the objects of segs (in state deleting), then their rows.
func (w *Worker) finish(ctx context.Context, rep Report, reason string, segs []recording.Segment) error {
	keys := make([]string, len(segs))
	ids := make([]int64, len(segs))
	var bytes int64
	for i, s := range segs {
		keys[i], ids[i] = s.ObjectKey, s.ID
		bytes += s.Size
	}
	if err := w.cfg.Store.DeleteKeys(ctx, keys); err != nil {
		w.m.errors.Inc()
		return fmt.Errorf("retention: %w", err)
	}
	if w.cfg.RemoveSpool != nil {
		for _, k := range keys {
			if err := w.cfg.RemoveSpool(k); err != nil {
				w.m.errors.Inc()
				return fmt.Errorf("retention: remove spool copy %s: %w", k, err)
			}
		}
	}
	w.m.objects.Add(float64(len(keys)))
	w.m.bytes.Add(float64(bytes))
	if err := w.hook(StepObjects, segs); err != nil {
		return err
	}
	if err := w.cfg.Index.DeleteSegmentRows(ctx, ids); err != nil {
		w.m.errors.Inc()
		return fmt.Errorf("retention: %w", err)
	}
	w.m.rows.Add(float64(len(ids)))
	rep.add(reason, segs)
	return w.hook(StepRows, segs)
}

// releaseLocked gives back the segments an evidence lock made since they
// were marked (their objects are all still there) and returns the rest.
func (w *Worker) releaseLocked(ctx context.Context, segs []recording.Segment) ([]recording.Segment, error) {
	ids := make([]int64, len(segs))
	for i, s := range segs {
		ids[i] = s.ID
	}
	back, err := w.cfg.Index.ReleaseLocked(ctx, ids)
	if err != nil || len(back) == 0 {
		return segs, err
	}
	out := segs[:0:0]
	for _, s := range segs {
		if !slices.Contains(back, s.ID) {
			out = append(out, s)
		}
	}
	return out, nil
}

func (w *Worker) hook(step Step, segs []recording.Segment) error {
	if w.cfg.Hook == nil {
		return nil
	}
	return w.cfg.Hook(step, segs)
}

// audit appends one entry per camera of rep. A failure is logged: the
// deletion already happened and is in the deleted-objects metrics.
func (w *Worker) audit(ctx context.Context, rep Report) {
	ctx = context.WithoutCancel(ctx)
	for _, c := range rep {
		rec := index.AuditRecord{
			At: w.cfg.Now(), User: "system", Role: "system", Action: "retention.delete", Camera: c.Camera,
			From: c.From, To: c.To,
			Detail: fmt.Sprintf("reason=%s segments=%d bytes=%d metadata_rows=%d", c.Reason, c.Segments, c.Bytes, c.MetadataRows),
		}
		if _, err := w.cfg.Index.AppendAudit(ctx, rec, audit.Seal); err != nil {
			w.log.Error("retention audit failed", "camera", c.Camera, "err", err)
		}
	}
}

type metrics struct {
	runs, purges, errors, objects, bytes, rows, metadataRows prometheus.Counter
	lag, lockedBytes, lastRun                                prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: "xueliang_retention_" + name, Help: help})
	}
	g := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Name: "xueliang_retention_" + name, Help: help})
	}
	m := &metrics{
		runs:         c("runs_total", "Retention passes started."),
		purges:       c("purge_runs_total", "Emergency purges run (free space below the floor)."),
		errors:       c("errors_total", "Deletion steps that failed (retried at the next pass)."),
		objects:      c("deleted_objects_total", "Segment objects deleted by retention or the emergency purge."),
		bytes:        c("deleted_bytes_total", "Bytes of segment objects deleted by retention or the emergency purge."),
		rows:         c("deleted_rows_total", "Segment index rows deleted."),
		metadataRows: c("deleted_metadata_rows_total", "Motion and camera-event rows deleted past the horizon."),
		lag:          g("lag_seconds", "After the last pass: how far the oldest unlocked segment of any camera is past its horizon (0: none)."),
		lockedBytes:  g("locked_bytes", "Bytes of stored footage covered by an active evidence lock."),
		lastRun:      g("last_run_timestamp_seconds", "Clock time of the last complete retention pass."),
	}
	if reg != nil {
		reg.MustRegister(m.runs, m.purges, m.errors, m.objects, m.bytes, m.rows, m.metadataRows, m.lag, m.lockedBytes, m.lastRun)
	}
	return m
}
