// Package compliance measures each camera's archive against its retention
// target: the days of continuous archive (the newest unbroken span of
// footage, ending now), the effective retention max_age (camera override >
// township override > server default), the oldest footage and the gaps of
// the last target period. It feeds the xueliang_camera_archive_days and
// xueliang_camera_retention_target_days metrics (Collector, cached and
// refreshed at most every Refresh) and the township compliance report
// (GET /api/v1/townships/{township}/compliance).
//
// Everything is read from the index's coverage table (index.CameraArchive,
// index.Timeline), never from the segment rows.
package compliance

import (
	"context"
	"fmt"
	"sync"
	"time"

	"xueliang/cmd/xueliang/internal/retention"
	"xueliang/index"
	"xueliang/storage/recording"
)

// Index is what the Service needs of the index.
type Index interface {
	CameraRetentions(ctx context.Context) ([]index.CameraRetention, error)
	TownshipRetentions(ctx context.Context) (map[string]index.RetentionOverride, error)
	CameraArchive(ctx context.Context, camera string, tolerance time.Duration) (index.Archive, error)
	Timeline(ctx context.Context, camera string, from, to time.Time, gapTolerance time.Duration) ([]recording.Span, []recording.Gap, error)
}

// Defaults.
const (
	DefaultRefresh = time.Minute
	DefaultLive    = time.Minute
	// Slack is what a camera's archive may fall short of its target and
	// still be compliant (retention deletes whole segments; the alert
	// CameraBelowRetentionTarget uses the same day).
	Slack = 24 * time.Hour
)

// Config configures a Service. Index is required.
type Config struct {
	Index Index
	// MaxAge is the server's retention.max_age; it defaults to
	// retention.DefaultMaxAge.
	MaxAge time.Duration
	// GapTolerance is replay.gap_tolerance: shorter holes are not gaps.
	GapTolerance time.Duration
	// Live is how far before now the newest footage may end and still
	// count as "ending now" (the fragment in progress is not indexed yet);
	// it defaults to a minute. A trailing gap shorter than Live is not
	// counted either.
	Live time.Duration
	// Refresh bounds how often Cached recomputes; it defaults to a minute.
	Refresh time.Duration
	// Now is the clock; it defaults to time.Now.
	Now func() time.Time
}

// Status is one camera's compliance.
type Status struct {
	Camera   string
	Township string
	// ArchiveDays is the length of the newest unbroken span, from its
	// start to now, in days; 0 when the newest footage does not end now
	// (within Live) or there is none.
	ArchiveDays float64
	// Target is the effective retention max_age.
	Target time.Duration
	// Oldest is the start of the oldest footage; zero when none.
	Oldest time.Time
	// Gaps and GapSeconds: the holes longer than the gap tolerance in
	// [now - Target, now) (a hole before the camera's first footage
	// included), except a trailing one shorter than Live.
	Gaps       int
	GapSeconds float64
	// Compliant: the archive ends now and is at least Target minus Slack
	// long.
	Compliant bool
}

// TargetDays is Target in days.
func (s Status) TargetDays() float64 { return s.Target.Hours() / 24 }

// Service computes Statuses.
type Service struct {
	cfg Config

	mu     sync.Mutex
	cached []Status
	at     time.Time
}

// New returns a Service.
func New(cfg Config) *Service {
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = retention.DefaultMaxAge
	}
	if cfg.Live <= 0 {
		cfg.Live = DefaultLive
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = DefaultRefresh
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{cfg: cfg}
}

// Target is the effective retention max_age of a camera: its own override,
// else its township's, else the server default.
func Target(c index.CameraRetention, towns map[string]index.RetentionOverride, def time.Duration) time.Duration {
	if c.Override.MaxAge > 0 {
		return c.Override.MaxAge
	}
	if t, ok := towns[c.Township]; ok && c.Township != "" && t.MaxAge > 0 {
		return t.MaxAge
	}
	return def
}

// Cached returns the Statuses of every camera, recomputed when the last
// computation is older than Refresh (a scrape never scans the index more
// than once per Refresh). Gaps and GapSeconds are not computed (zero):
// the metrics do not need them.
func (s *Service) Cached(ctx context.Context) ([]Status, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Now()
	if s.cached != nil && now.Sub(s.at) < s.cfg.Refresh && !now.Before(s.at) {
		return s.cached, nil
	}
	st, err := s.compute(ctx, "", false)
	if err != nil {
		return nil, err
	}
	s.cached, s.at = st, now
	return st, nil
}

// Compute returns the Statuses of the township's cameras (every camera
// when township is ""), sorted by camera, computed now.
func (s *Service) Compute(ctx context.Context, township string) ([]Status, error) {
	return s.compute(ctx, township, true)
}

func (s *Service) compute(ctx context.Context, township string, gaps bool) ([]Status, error) {
	cams, err := s.cfg.Index.CameraRetentions(ctx)
	if err != nil {
		return nil, fmt.Errorf("compliance: %w", err)
	}
	towns, err := s.cfg.Index.TownshipRetentions(ctx)
	if err != nil {
		return nil, fmt.Errorf("compliance: %w", err)
	}
	out := []Status{}
	for _, c := range cams {
		if township != "" && c.Township != township {
			continue
		}
		st, err := s.camera(ctx, c, towns, gaps)
		if err != nil {
			return nil, fmt.Errorf("compliance: %w", err)
		}
		out = append(out, st)
	}
	return out, nil
}

func (s *Service) camera(ctx context.Context, c index.CameraRetention, towns map[string]index.RetentionOverride, withGaps bool) (Status, error) {
	now := s.cfg.Now()
	st := Status{Camera: c.Camera, Township: c.Township, Target: Target(c, towns, s.cfg.MaxAge)}
	a, err := s.cfg.Index.CameraArchive(ctx, c.Camera, s.cfg.GapTolerance)
	if err != nil {
		return st, err
	}
	st.Oldest = a.Oldest
	live := !a.Until.IsZero() && now.Sub(a.Until) <= s.cfg.Live+s.cfg.GapTolerance
	if live && now.After(a.Since) {
		st.ArchiveDays = now.Sub(a.Since).Hours() / 24
	}
	st.Compliant = live && st.ArchiveDays >= max(st.Target-Slack, 0).Hours()/24
	if !withGaps {
		return st, nil
	}
	_, gaps, err := s.cfg.Index.Timeline(ctx, c.Camera, now.Add(-st.Target), now, s.cfg.GapTolerance)
	if err != nil {
		return st, err
	}
	for i, g := range gaps {
		d := g.End.Sub(g.Start)
		if i == len(gaps)-1 && !g.End.Before(now) && d < s.cfg.Live {
			continue // the fragment in progress
		}
		st.Gaps++
		st.GapSeconds += d.Seconds()
	}
	return st, nil
}
