package export

import "github.com/prometheus/client_golang/prometheus"

type exportMetrics struct {
	jobs                                  *prometheus.CounterVec
	running                               prometheus.Gauge
	rejected, downloads, expired, deleted prometheus.Counter
	bytes                                 prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *exportMetrics {
	m := &exportMetrics{
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "xueliang_export_jobs_total",
			Help: "Export jobs finished, by state: done, failed, cancelled."}, []string{"state"}),
		running: prometheus.NewGauge(prometheus.GaugeOpts{Name: "xueliang_export_running",
			Help: "Export jobs running."}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{Name: "xueliang_export_rejected_total",
			Help: "Export requests refused because export.max_concurrent jobs were running."}),
		downloads: prometheus.NewCounter(prometheus.CounterOpts{Name: "xueliang_export_downloads_total",
			Help: "Export packages downloaded."}),
		expired: prometheus.NewCounter(prometheus.CounterOpts{Name: "xueliang_export_expired_total",
			Help: "Export packages removed after export.expiry."}),
		deleted: prometheus.NewCounter(prometheus.CounterOpts{Name: "xueliang_export_deleted_total",
			Help: "Finished export packages deleted on request."}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "xueliang_export_bytes_total",
			Help: "Bytes of export packages written."}),
	}
	for _, s := range []string{StateDone, StateFailed, StateCancelled} {
		m.jobs.WithLabelValues(s)
	}
	if reg != nil {
		reg.MustRegister(m.jobs, m.running, m.rejected, m.downloads, m.expired, m.deleted, m.bytes)
	}
	return m
}
