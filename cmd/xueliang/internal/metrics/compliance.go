package metrics

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"xueliang/cmd/xueliang/internal/compliance"
)

// ComplianceSource returns every camera's compliance, cached
// (*compliance.Service: recomputed at most once a minute, whatever the
// scrape rate).
type ComplianceSource interface {
	Cached(ctx context.Context) ([]compliance.Status, error)
}

// ComplianceCollector exports, per camera (labels camera and township, the
// latter from the index's camera row), the days of
// continuous archive, the effective retention target and the start of
// the oldest footage (cameras with footage only).
type ComplianceCollector struct {
	src                     ComplianceSource
	log                     *slog.Logger
	archive, target, oldest *prometheus.Desc
	failures                prometheus.Counter
}

var _ prometheus.Collector = (*ComplianceCollector)(nil)

// NewComplianceCollector returns a collector over src; logger may be nil.
func NewComplianceCollector(src ComplianceSource, logger *slog.Logger) *ComplianceCollector {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cam := []string{"camera", "township"}
	return &ComplianceCollector{
		src: src, log: logger.With("component", "compliance"),
		archive: prometheus.NewDesc("xueliang_camera_archive_days",
			"Length of the camera's newest unbroken span of footage ending now (holes up to replay.gap_tolerance ignored), in days; 0 when its footage does not end now.", cam, nil),
		target: prometheus.NewDesc("xueliang_camera_retention_target_days",
			"The camera's effective retention max_age (camera override, else township override, else retention.max_age), in days.", cam, nil),
		oldest: prometheus.NewDesc("xueliang_camera_oldest_footage_timestamp_seconds",
			"Start of the camera's oldest footage in the index (Unix seconds); absent for a camera without footage.", cam, nil),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "xueliang_compliance_errors_total",
			Help: "Scrapes whose compliance computation failed (the archive series are then missing)."}),
	}
}

// Describe implements prometheus.Collector.
func (c *ComplianceCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.archive
	ch <- c.target
	ch <- c.oldest
	c.failures.Describe(ch)
}

// Collect implements prometheus.Collector.
func (c *ComplianceCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sts, err := c.src.Cached(ctx)
	if err != nil {
		c.failures.Inc()
		c.log.Error("compliance computation failed", "err", err)
	}
	for _, s := range sts {
		ch <- prometheus.MustNewConstMetric(c.archive, prometheus.GaugeValue, s.ArchiveDays, s.Camera, s.Township)
		ch <- prometheus.MustNewConstMetric(c.target, prometheus.GaugeValue, s.TargetDays(), s.Camera, s.Township)
		if !s.Oldest.IsZero() {
			ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, float64(s.Oldest.UnixNano())/1e9, s.Camera, s.Township)
		}
	}
	c.failures.Collect(ch)
}
