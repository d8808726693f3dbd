package retention

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"xueliang/index"
)

// Disk-guard defaults.
const (
	DefaultReserveBytes  = 256 << 20
	DefaultCheckInterval = 10 * time.Second
	// DefaultMinFloor is the smallest automatic floor (before the ingest
	// rate is known, and for a quiet site).
	DefaultMinFloor = 1 << 30
	// floorWindow: the automatic floor is this much of the ingest rate.
	floorWindow = time.Hour
)

// GuardConfig configures a DiskGuard.
type GuardConfig struct {
	// Paths are the directories whose file systems are watched (the spool,
	// the local store, the index); the least free space counts.
	Paths []string
	// Purge enables the emergency purge: true when the stored footage is on
	// a watched file system (the local store). With S3 deleting objects
	// frees nothing here, so only the stop applies.
	Purge bool
	// MinFreeBytes is the floor; 0 means one hour of the measured ingest
	// rate, at least DefaultMinFloor.
	MinFreeBytes int64
	// ReserveBytes is kept for the index and the audit log: below it,
	// with nothing unlocked left to purge, recording stops. It defaults
	// to 256 MiB.
	ReserveBytes int64
	// CheckInterval defaults to 10s.
	CheckInterval time.Duration
	// Ingested returns the bytes ever admitted into the spool
	// (spool.Quota.Admitted); nil: the rate is unknown.
	Ingested func() int64
	// Stop stops (true) or resumes (false) recording
	// (spool.Quota.SetStopped); nil: never stopped.
	Stop func(stopped bool)
	// Free returns the bytes available on path's file system; it defaults
	// to statfs(2) (f_bavail × f_bsize). A test hook.
	Free func(path string) (int64, error)
	// Now defaults to time.Now.
	Now func() time.Time
}

// DiskGuard keeps the watched file systems from filling up: below the
// floor it purges the oldest unlocked stored footage (across cameras)
// through the worker's deletion state machine; below the reserve with
// nothing unlocked left it stops recording until space comes back.
type DiskGuard struct {
	w   *Worker
	cfg GuardConfig
	log *slog.Logger
	m   *guardMetrics

	mu       sync.Mutex
	lastAt   time.Time
	lastIn   int64
	rate     float64 // bytes/s, smoothed
	stopped  bool
	lastFree int64
}

// NewGuard returns a guard purging through w; it starts nothing.
func (w *Worker) NewGuard(cfg GuardConfig, reg prometheus.Registerer) *DiskGuard {
	if cfg.ReserveBytes <= 0 {
		cfg.ReserveBytes = DefaultReserveBytes
	}
	if cfg.CheckInterval <= 0 {
		cfg.CheckInterval = DefaultCheckInterval
	}
	if cfg.Free == nil {
		cfg.Free = statfsFree
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &DiskGuard{w: w, cfg: cfg, log: w.log.With("component", "diskguard"), m: newGuardMetrics(reg)}
}

func statfsFree(path string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// Run checks every CheckInterval until ctx ends.
func (g *DiskGuard) Run(ctx context.Context) error {
	t := time.NewTicker(g.cfg.CheckInterval)
	defer t.Stop()
	for {
		if _, err := g.Check(ctx); err != nil && ctx.Err() == nil {
			g.log.Error("disk check failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// CheckResult is one check's outcome.
type CheckResult struct {
	Free, Floor int64
	// Purged is what the emergency purge deleted (nil: no purge).
	Purged Report
	// Stopped: recording is stopped after this check.
	Stopped bool
}

func (g *DiskGuard) free() (int64, error) {
	least := int64(-1)
	for _, p := range g.cfg.Paths {
		f, err := g.cfg.Free(p)
		if err != nil {
			return 0, fmt.Errorf("free space of %s: %w", p, err)
		}
		if least < 0 || f < least {
			least = f
		}
	}
	return least, nil
}

// floor measures the ingest rate and returns the current floor.
func (g *DiskGuard) floor(now time.Time) int64 {
	if g.cfg.Ingested != nil {
		in := g.cfg.Ingested()
		if !g.lastAt.IsZero() {
			if dt := now.Sub(g.lastAt).Seconds(); dt > 0 {
				r := float64(in-g.lastIn) / dt
				if g.rate == 0 {
					g.rate = r
				} else {
					g.rate = 0.8*g.rate + 0.2*r
				}
			}
		}
		g.lastAt, g.lastIn = now, in
	}
	g.m.rate.Set(g.rate)
	if g.cfg.MinFreeBytes > 0 {
		return g.cfg.MinFreeBytes
	}
	return max(int64(g.rate*floorWindow.Seconds()), DefaultMinFloor)
}

// Check measures free space once, purges when it is below the floor, and
// stops or resumes recording.
func (g *DiskGuard) Check(ctx context.Context) (CheckResult, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.cfg.Now()
	floor := g.floor(now)
	free, err := g.free()
	if err != nil {
		return CheckResult{}, err
	}
	res := CheckResult{Free: free, Floor: floor}
	g.m.floor.Set(float64(floor))
	if free < floor && g.cfg.Purge {
		res.Purged = Report{}
		g.w.m.purges.Inc()
		// Delete oldest unlocked first, a chunk at a time, re-measuring:
		// sizes in the index are a guess of the blocks freed.
		for free < floor {
			n, err := g.w.purgeChunk(ctx, res.Purged, now, floor-free)
			if err == nil {
				free, err = g.free()
			}
			if err != nil {
				g.w.audit(ctx, res.Purged)
				return res, err
			}
			if n == 0 {
				break // nothing unlocked is left
			}
		}
		res.Free = free
		// One audit entry per camera for the whole purge.
		g.w.audit(ctx, res.Purged)
		if len(res.Purged) > 0 {
			g.log.Warn("emergency purge", "free_bytes", free, "floor_bytes", floor, "cameras", len(res.Purged))
		}
	}
	switch {
	case !g.stopped && free < g.cfg.ReserveBytes:
		g.stopped = true
		g.m.stops.Inc()
		g.log.Error("recording stopped: disk at its reserve and nothing unlocked left to purge",
			"free_bytes", free, "reserve_bytes", g.cfg.ReserveBytes)
	case g.stopped && free >= g.cfg.ReserveBytes+g.cfg.ReserveBytes/2:
		g.stopped = false
		g.log.Info("recording resumed", "free_bytes", free)
	}
	if g.cfg.Stop != nil {
		g.cfg.Stop(g.stopped)
	}
	g.m.free.Set(float64(free))
	g.m.stopped.Set(b2f(g.stopped))
	res.Stopped = g.stopped
	return res, nil
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// purgeChunk deletes one chunk of the oldest unlocked stored segments
// (across cameras) worth about need bytes, auditing per camera, and
// returns how many it deleted.
func (w *Worker) purgeChunk(ctx context.Context, rep Report, now time.Time, need int64) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	chunk := Report{}
	defer func() {
		for cam, c := range chunk {
			if r := rep[cam]; r != nil {
				r.Segments += c.Segments
				r.Bytes += c.Bytes
				r.From, r.To = minTime(r.From, c.From), maxTime(r.To, c.To)
			} else {
				rep[cam] = c
			}
		}
	}()
	if err := w.resume(ctx, chunk); err != nil {
		return 0, err
	}
	segs, err := w.cfg.Index.MarkDeleting(ctx, index.DeleteSelect{Before: now, Bytes: need, Limit: w.cfg.Chunk})
	if err != nil || len(segs) == 0 {
		return 0, err
	}
	if err := w.hook(StepMarked, segs); err != nil {
		return 0, err
	}
	n := len(segs)
	if segs, err = w.releaseLocked(ctx, segs); err != nil {
		return 0, err
	}
	if err := w.finish(ctx, chunk, "purge", segs); err != nil {
		return 0, err
	}
	return n, nil
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

type guardMetrics struct {
	purges, stops              prometheus.Counter
	free, floor, rate, stopped prometheus.Gauge
}

func newGuardMetrics(reg prometheus.Registerer) *guardMetrics {
	g := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Name: "xueliang_disk_" + name, Help: help})
	}
	m := &guardMetrics{
		stops: prometheus.NewCounter(prometheus.CounterOpts{Name: "xueliang_disk_recording_stops_total",
			Help: "Times recording was stopped: free space at the reserve and nothing unlocked left to purge."}),
		free:    g("free_bytes", "Least free space of the spool, local-store and index file systems."),
		floor:   g("floor_bytes", "Free-space floor below which the emergency purge runs."),
		rate:    g("ingest_bytes_per_second", "Measured ingest rate (smoothed) the automatic floor is based on."),
		stopped: g("recording_stopped", "1 while recording is stopped for lack of disk space."),
	}
	if reg != nil {
		reg.MustRegister(m.stops, m.free, m.floor, m.rate, m.stopped)
	}
	return m
}
