package metrics

import "github.com/prometheus/client_golang/prometheus"

// OrphanCounts is what start-up recovery found in the spool without an
// index row (segmenter.OrphanReport).
type OrphanCounts struct {
	Indexed, Skipped, Failed int
}

// RegisterOrphans exports the orphan spool files handled at start as
// xueliang_spool_orphans_total{result}: counters since the start, fixed
// for the life of the process (recovery runs once, before recording).
func RegisterOrphans(reg prometheus.Registerer, c OrphanCounts) {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "xueliang_spool_orphans_total",
		Help: "Spool files found at start without an index row, by result: indexed (rows written, uploaded as usual), skipped (not a segment, left on disk), failed (retried at the next start).",
	}, []string{"result"})
	v.WithLabelValues("indexed").Add(float64(c.Indexed))
	v.WithLabelValues("skipped").Add(float64(c.Skipped))
	v.WithLabelValues("failed").Add(float64(c.Failed))
	reg.MustRegister(v)
}
