package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"xueliang/ingest"
)

// MetadataSource reports the ONVIF metadata counters of every running
// camera (*ingest.Manager).
type MetadataSource interface {
	MetadataStats() map[string]ingest.MetadataStats
}

// MetadataCollector exports per-camera series (label camera) of the
// cameras' ONVIF metadata tracks (camera-side events) at scrape time.
// Cameras without a metadata track report zeros.
type MetadataCollector struct {
	src                                             MetadataSource
	documents, events, parseErrors, dropped, writes *prometheus.Desc
}

var _ prometheus.Collector = (*MetadataCollector)(nil)

// NewMetadataCollector returns a collector over src.
func NewMetadataCollector(src MetadataSource) *MetadataCollector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, []string{"camera"}, nil)
	}
	return &MetadataCollector{
		src:         src,
		documents:   d("xueliang_camera_metadata_documents_total", "ONVIF metadata documents (tt:MetadataStream) received and parsed."),
		events:      d("xueliang_camera_metadata_events_total", "Motion notifications read from the camera's ONVIF metadata track."),
		parseErrors: d("xueliang_camera_metadata_parse_errors_total", "ONVIF metadata documents that could not be parsed."),
		dropped:     d("xueliang_camera_metadata_dropped_total", "ONVIF metadata documents lost in reassembly (RTP gaps, oversize) plus camera events dropped because the write queue was full."),
		writes:      d("xueliang_camera_metadata_write_errors_total", "Batches of camera events the index refused after retries (the events are lost)."),
	}
}

// Describe implements prometheus.Collector.
func (c *MetadataCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.documents, c.events, c.parseErrors, c.dropped, c.writes} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *MetadataCollector) Collect(ch chan<- prometheus.Metric) {
	for cam, s := range c.src.MetadataStats() {
		counter := func(d *prometheus.Desc, v int64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), cam)
		}
		counter(c.documents, s.Documents)
		counter(c.events, s.Events)
		counter(c.parseErrors, s.ParseErrors)
		counter(c.dropped, s.Dropped)
		counter(c.writes, s.WriteErrors)
	}
}
