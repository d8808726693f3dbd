package metrics

import "github.com/prometheus/client_golang/prometheus"

// CameraNetworkSource counts refusals of the camera network policy
// (camnet.Policy).
type CameraNetworkSource interface {
	Refused() int64
}

// CameraNetworkCollector exports the camera network policy's refusals.
type CameraNetworkCollector struct {
	src     CameraNetworkSource
	refused *prometheus.Desc
}

var _ prometheus.Collector = (*CameraNetworkCollector)(nil)

// NewCameraNetworkCollector returns a collector over src.
func NewCameraNetworkCollector(src CameraNetworkSource) *CameraNetworkCollector {
	return &CameraNetworkCollector{src: src, refused: prometheus.NewDesc("xueliang_camera_network_refused_total",
		"Connections and camera URLs refused because the address is outside camera_networks.allowed, loopback, link-local or the server's own port.", nil, nil)}
}

// Describe implements prometheus.Collector.
func (c *CameraNetworkCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.refused }

// Collect implements prometheus.Collector.
func (c *CameraNetworkCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(c.refused, prometheus.CounterValue, float64(c.src.Refused()))
}
