package peer

import "github.com/prometheus/client_golang/prometheus"

// Results of a spool fetch from another node
// (xueliang_cluster_spool_fetch_total{result}).
const (
	FetchOK           = "ok"           // the owner sent the bytes
	FetchNotFound     = "not_found"    // the owner no longer has the file (uploaded meanwhile)
	FetchUnavailable  = "unavailable"  // no address, connection refused, timeout, stalled
	FetchUnauthorized = "unauthorized" // the owner refused this node's signature
	FetchError        = "error"        // any other answer
)

// Results of a spool request served to another node
// (xueliang_cluster_spool_served_total{result}).
const (
	ServedOK           = "ok"
	ServedNotFound     = "not_found"
	ServedUnauthorized = "unauthorized"
	ServedBadRequest   = "bad_request"
)

// Metrics counts the spool fetches and the requests served. A nil
// *Metrics counts nothing.
type Metrics struct {
	fetch  *prometheus.CounterVec
	served *prometheus.CounterVec
}

// NewMetrics registers the peer metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		fetch: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "xueliang_cluster_spool_fetch_total",
			Help: "Reads of footage still in another node's spool, by result (ok, not_found, unavailable, unauthorized, error)."},
			[]string{"result"}),
		served: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "xueliang_cluster_spool_served_total",
			Help: "Spool reads this node served to the other nodes, by result (ok, not_found, unauthorized, bad_request)."},
			[]string{"result"}),
	}
	for _, r := range []string{FetchOK, FetchNotFound, FetchUnavailable, FetchUnauthorized, FetchError} {
		m.fetch.WithLabelValues(r)
	}
	for _, r := range []string{ServedOK, ServedNotFound, ServedUnauthorized, ServedBadRequest} {
		m.served.WithLabelValues(r)
	}
	reg.MustRegister(m.fetch, m.served)
	return m
}

func (m *Metrics) fetched(result string) {
	if m != nil {
		m.fetch.WithLabelValues(result).Inc()
	}
}

func (m *Metrics) servedOne(result string) {
	if m != nil {
		m.served.WithLabelValues(result).Inc()
	}
}
