package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"xueliang/ingest"
)

type motionSource map[string]ingest.MotionStats

func (m motionSource) MotionStats() map[string]ingest.MotionStats { return m }

// TestMotionCollector: every MotionStats counter is exported per camera
// under its documented name, and the series pass the Prometheus linter.
func TestMotionCollector(t *testing.T) {
	c := NewMotionCollector(motionSource{
		"gate": {Source: "sub", Queued: 10, Dropped: 1, Decoded: 9, Analysed: 8, DecodeErrors: 2, Panics: 3, SinkErrors: 4,
			Chunks: 5, Intervals: 6, AnalysisNanos: 1_500_000_000, SubReconnects: 7, SubVideoStalls: 5},
		"road": {Source: "keyframes", Queued: 1},
	})
	if n := testutil.CollectAndCount(c); n != 2*12 {
		t.Errorf("%d series, want 12 per camera", n)
	}
	want := `
# HELP xueliang_motion_sub_stream_reconnects_total Sub-stream sessions (motion analysis) that ended and were redialled; 0 when motion uses the main stream's keyframes.
# TYPE xueliang_motion_sub_stream_reconnects_total counter
xueliang_motion_sub_stream_reconnects_total{camera="gate"} 7
xueliang_motion_sub_stream_reconnects_total{camera="road"} 0
# HELP xueliang_motion_sub_stream_video_stalls_total Sub-stream sessions ended by the video watchdog: no video packet for ingest's video timeout while the connection stayed up.
# TYPE xueliang_motion_sub_stream_video_stalls_total counter
xueliang_motion_sub_stream_video_stalls_total{camera="gate"} 5
xueliang_motion_sub_stream_video_stalls_total{camera="road"} 0
# HELP xueliang_motion_analysis_seconds_total Time spent decoding and analysing for motion.
# TYPE xueliang_motion_analysis_seconds_total counter
xueliang_motion_analysis_seconds_total{camera="gate"} 1.5
xueliang_motion_analysis_seconds_total{camera="road"} 0
# HELP xueliang_motion_write_errors_total Failed index writes of motion data (the data is lost).
# TYPE xueliang_motion_write_errors_total counter
xueliang_motion_write_errors_total{camera="gate"} 4
xueliang_motion_write_errors_total{camera="road"} 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want),
		"xueliang_motion_sub_stream_reconnects_total", "xueliang_motion_sub_stream_video_stalls_total",
		"xueliang_motion_analysis_seconds_total", "xueliang_motion_write_errors_total"); err != nil {
		t.Error(err)
	}
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint %s: %s", p.Metric, p.Text)
	}
}
