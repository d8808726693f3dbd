package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"xueliang/storage/spool"
)

// QuotaSource is the spool quota (spool.Quota).
type QuotaSource interface {
	Stats() spool.QuotaStats
}

// QuotaCollector exports the spool cap's state at scrape time.
type QuotaCollector struct {
	src                                   QuotaSource
	full, episodes, refused, refusedBytes *prometheus.Desc
}

var _ prometheus.Collector = (*QuotaCollector)(nil)

// NewQuotaCollector returns a collector over src.
func NewQuotaCollector(src QuotaSource) *QuotaCollector {
	d := func(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, nil, nil) }
	return &QuotaCollector{
		src:          src,
		full:         d("xueliang_spool_full", "1 while the spool is at its cap and new footage is refused."),
		episodes:     d("xueliang_spool_full_episodes_total", "Times the spool reached its cap."),
		refused:      d("xueliang_spool_refused_writes_total", "Spool writes (fragments or segment starts) refused because the spool was at its cap."),
		refusedBytes: d("xueliang_spool_refused_bytes_total", "Bytes of footage refused because the spool was at its cap."),
	}
}

// Describe implements prometheus.Collector.
func (c *QuotaCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.full, c.episodes, c.refused, c.refusedBytes} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *QuotaCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.src.Stats()
	full := 0.0
	if st.Full {
		full = 1
	}
	ch <- prometheus.MustNewConstMetric(c.full, prometheus.GaugeValue, full)
	ch <- prometheus.MustNewConstMetric(c.episodes, prometheus.CounterValue, float64(st.FullEpisodes))
	ch <- prometheus.MustNewConstMetric(c.refused, prometheus.CounterValue, float64(st.Refused))
	ch <- prometheus.MustNewConstMetric(c.refusedBytes, prometheus.CounterValue, float64(st.RefusedBytes))
}
