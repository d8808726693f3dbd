package metrics

import "github.com/prometheus/client_golang/prometheus"

// ReencodeSource counts the exact replays' re-encodes (reencode.Reencoder).
type ReencodeSource interface {
	Stats() (count, frames int64, seconds float64)
}

// ReencodeCollector exports the re-encodes of exact replays and exports.
type ReencodeCollector struct {
	src                    ReencodeSource
	count, frames, seconds *prometheus.Desc
}

var _ prometheus.Collector = (*ReencodeCollector)(nil)

// NewReencodeCollector returns a collector over src.
func NewReencodeCollector(src ReencodeSource) *ReencodeCollector {
	return &ReencodeCollector{src: src,
		count:   prometheus.NewDesc("xueliang_replay_reencodes_total", "Partial first GOPs re-encoded for exact=1 replays and exports.", nil, nil),
		frames:  prometheus.NewDesc("xueliang_replay_reencoded_frames_total", "Frames re-encoded for exact=1 replays and exports.", nil, nil),
		seconds: prometheus.NewDesc("xueliang_replay_reencode_seconds_total", "Time spent decoding and re-encoding for exact=1 (single-threaded libav calls: CPU seconds, upper bound).", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *ReencodeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.count
	ch <- c.frames
	ch <- c.seconds
}

// Collect implements prometheus.Collector.
func (c *ReencodeCollector) Collect(ch chan<- prometheus.Metric) {
	n, f, s := c.src.Stats()
	ch <- prometheus.MustNewConstMetric(c.count, prometheus.CounterValue, float64(n))
	ch <- prometheus.MustNewConstMetric(c.frames, prometheus.CounterValue, float64(f))
	ch <- prometheus.MustNewConstMetric(c.seconds, prometheus.CounterValue, s)
}
