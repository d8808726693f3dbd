package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"xueliang/ingest"
)

// CameraSource reports the status of every running camera
// (*ingest.Manager).
type CameraSource interface {
	Status() map[string]ingest.Status
}

// CameraCollector exports per-camera series from CameraSource at scrape
// time. Every series has the labels camera and township (empty when
// unknown).
type CameraCollector struct {
	src      CameraSource
	township func(camera string) string
	now      func() time.Time

	up, attempts, failures, reconnects, rtpReceived, rtpLost, bytes, frames,
	keyframeAge, bitrate, fps, clockOffset, clockRejections,
	segments, fragments, writtenBytes, droppedVideo, indexErrors, writeErrors *prometheus.Desc
}

var _ prometheus.Collector = (*CameraCollector)(nil)

// NewCameraCollector returns a collector over src. township maps a camera
// ID to its township label; nil means none.
func NewCameraCollector(src CameraSource, township func(camera string) string) *CameraCollector {
	if township == nil {
		township = func(string) string { return "" }
	}
	l := []string{"camera", "township"}
	d := func(name, help string, extra ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, append(append([]string(nil), l...), extra...), nil)
	}
	return &CameraCollector{
		src: src, township: township, now: time.Now,
		up:          d("xueliang_camera_up", "1 while the camera's RTSP session is recording, 0 otherwise."),
		attempts:    d("xueliang_camera_connection_attempts_total", "RTSP sessions started (dials)."),
		failures:    d("xueliang_camera_connection_failures_total", "RTSP sessions that ended in an error, by reason class.", "reason"),
		reconnects:  d("xueliang_camera_reconnects_total", "Sessions ended and retried (failed connects included)."),
		rtpReceived: d("xueliang_camera_rtp_packets_received_total", "RTP packets received (gortsplib client statistics)."),
		rtpLost:     d("xueliang_camera_rtp_packets_lost_total", "RTP packets lost, from sequence number gaps."),
		bytes:       d("xueliang_camera_received_bytes_total", "RTP payload bytes received."),
		frames:      d("xueliang_camera_frames_total", "Video frames recorded."),
		keyframeAge: d("xueliang_camera_last_keyframe_age_seconds", "Seconds since the last video keyframe was received; absent before the first."),
		bitrate:     d("xueliang_camera_receive_rate_bytes_per_second", "RTP payload bytes per second over the last ~2 s (the stream bitrate / 8); 0 while disconnected."),
		fps:         d("xueliang_camera_frames_per_second", "Recorded video frame rate over the last ~2 s; 0 while disconnected."),
		clockOffset: d("xueliang_camera_clock_offset_seconds", "Camera clock minus server clock, from RTCP sender reports; absent until measured."),
		clockRejections: d("xueliang_camera_clock_rejections_total",
			"Sessions whose RTCP wall clock was off the server's by more than recording.max_clock_skew, anchored to the receive time instead."),
		segments:     d("xueliang_recorder_segments_total", "Segments opened by the camera's recorder."),
		fragments:    d("xueliang_recorder_fragments_total", "Fragments written to the spool by the camera's recorder."),
		writtenBytes: d("xueliang_recorder_written_bytes_total", "Bytes written to the spool by the camera's recorder."),
		droppedVideo: d("xueliang_recorder_dropped_frames_total", "Video frames dropped (before the first keyframe or without parameter sets)."),
		indexErrors:  d("xueliang_recorder_index_errors_total", "Index operations of the recorder that failed after all retries."),
		writeErrors:  d("xueliang_recorder_write_errors_total", "Spool write errors of the recorder."),
	}
}

// Describe implements prometheus.Collector.
func (c *CameraCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.up, c.attempts, c.failures, c.reconnects, c.rtpReceived, c.rtpLost,
		c.bytes, c.frames, c.keyframeAge, c.bitrate, c.fps, c.clockOffset, c.clockRejections,
		c.segments, c.fragments, c.writtenBytes, c.droppedVideo, c.indexErrors, c.writeErrors} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *CameraCollector) Collect(ch chan<- prometheus.Metric) {
	now := c.now()
	classes := ingest.ErrClasses()
	for id, st := range c.src.Status() {
		tw := c.township(id)
		g := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, id, tw)
		}
		cnt := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, id, tw)
		}
		up := 0.0
		if st.Connected {
			up = 1
		}
		g(c.up, up)
		cnt(c.attempts, float64(st.ConnectAttempts))
		for _, class := range classes {
			ch <- prometheus.MustNewConstMetric(c.failures, prometheus.CounterValue, float64(st.Failures[class]), id, tw, class)
		}
		cnt(c.reconnects, float64(st.Reconnects))
		cnt(c.rtpReceived, float64(st.RTPPacketsReceived))
		cnt(c.rtpLost, float64(st.RTPPacketsLost))
		cnt(c.bytes, float64(st.Bytes))
		cnt(c.frames, float64(st.Frames))
		if !st.LastKeyframe.IsZero() {
			g(c.keyframeAge, max(0, now.Sub(st.LastKeyframe).Seconds()))
		}
		g(c.bitrate, st.Bitrate/8)
		g(c.fps, st.FPS)
		if st.ClockOffsetKnown {
			g(c.clockOffset, st.ClockOffset.Seconds())
		}
		cnt(c.clockRejections, float64(st.ClockRejections))
		r := st.Recorder
		cnt(c.segments, float64(r.Segments))
		cnt(c.fragments, float64(r.Fragments))
		cnt(c.writtenBytes, float64(r.Bytes))
		cnt(c.droppedVideo, float64(r.DroppedVideo))
		cnt(c.indexErrors, float64(r.IndexErrors))
		cnt(c.writeErrors, float64(r.WriteErrors))
	}
}
