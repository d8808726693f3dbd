package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"xueliang/ingest"
)

// MotionSource reports the motion-analysis counters of every camera with
// analysis running (*ingest.Manager).
type MotionSource interface {
	MotionStats() map[string]ingest.MotionStats
}

// MotionCollector exports per-camera motion-analysis series (label camera)
// from MotionSource at scrape time.
type MotionCollector struct {
	src                                                                  MotionSource
	queued, dropped, decoded, analysed, decodeErrors, restarts, sinkErrs *prometheus.Desc
	chunks, intervals, seconds, subReconnects, subVideoStalls            *prometheus.Desc
}

var _ prometheus.Collector = (*MotionCollector)(nil)

// NewMotionCollector returns a collector over src.
func NewMotionCollector(src MotionSource) *MotionCollector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, []string{"camera"}, nil)
	}
	return &MotionCollector{
		src:          src,
		queued:       d("xueliang_motion_queued_frames_total", "Access units handed to the camera's motion analyser."),
		dropped:      d("xueliang_motion_dropped_frames_total", "Access units dropped because the analysis queue was full (recording is never slowed)."),
		decoded:      d("xueliang_motion_decoded_frames_total", "Access units decoded for motion analysis."),
		analysed:     d("xueliang_motion_analysed_frames_total", "Frames analysed for motion."),
		decodeErrors: d("xueliang_motion_decode_errors_total", "Access units the motion decoder rejected."),
		restarts:     d("xueliang_motion_restarts_total", "Motion analyser restarts after a panic."),
		sinkErrs:     d("xueliang_motion_write_errors_total", "Failed index writes of motion data (the data is lost)."),
		chunks:       d("xueliang_motion_chunks_total", "Chunks of per-second motion grids written to the index."),
		intervals:    d("xueliang_motion_intervals_total", "Motion intervals written to the index."),
		seconds:      d("xueliang_motion_analysis_seconds_total", "Time spent decoding and analysing for motion."),
		subReconnects: d("xueliang_motion_sub_stream_reconnects_total",
			"Sub-stream sessions (motion analysis) that ended and were redialled; 0 when motion uses the main stream's keyframes."),
		subVideoStalls: d("xueliang_motion_sub_stream_video_stalls_total",
			"Sub-stream sessions ended by the video watchdog: no video packet for ingest's video timeout while the connection stayed up."),
	}
}

// Describe implements prometheus.Collector.
func (c *MotionCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.queued, c.dropped, c.decoded, c.analysed, c.decodeErrors, c.restarts,
		c.sinkErrs, c.chunks, c.intervals, c.seconds, c.subReconnects, c.subVideoStalls} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *MotionCollector) Collect(ch chan<- prometheus.Metric) {
	for cam, s := range c.src.MotionStats() {
		counter := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, cam)
		}
		counter(c.queued, float64(s.Queued))
		counter(c.dropped, float64(s.Dropped))
		counter(c.decoded, float64(s.Decoded))
		counter(c.analysed, float64(s.Analysed))
		counter(c.decodeErrors, float64(s.DecodeErrors))
		counter(c.restarts, float64(s.Panics))
		counter(c.sinkErrs, float64(s.SinkErrors))
		counter(c.chunks, float64(s.Chunks))
		counter(c.intervals, float64(s.Intervals))
		counter(c.seconds, float64(s.AnalysisNanos)/1e9)
		counter(c.subReconnects, float64(s.SubReconnects))
		counter(c.subVideoStalls, float64(s.SubVideoStalls))
	}
}
