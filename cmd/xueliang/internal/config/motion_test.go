package config

import (
	"strings"
	"testing"
	"time"
)

func TestMotionConfig(t *testing.T) {
	cfg, err := Parse([]byte(`motion:
  fps: 10
  pre_pad: 0s
cameras:
  - id: gate
    url: rtsp://10.0.0.2/main
    sub_url: rtsp://10.0.0.2/sub
    motion: true
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	m := cfg.Motion
	if m.FPS != 10 || m.PrePad != 0 || m.PostPad != 2*time.Second || m.Cols != 32 || m.Rows != 18 || m.QueueSize != 50 {
		t.Errorf("motion = %+v", m)
	}
	if c := cfg.Cameras[0]; c.SubURL != "rtsp://10.0.0.2/sub" || !c.Motion {
		t.Errorf("camera = %+v", c)
	}
	cfg, err = Parse([]byte("motion:\n  fps: 5\n"), []string{"XUELIANG_MOTION_FPS=2"})
	if err != nil || cfg.Motion.FPS != 2 {
		t.Errorf("env override: %v %+v", err, cfg.Motion)
	}

	_, err = Parse([]byte(`motion:
  fps: 0
  cols: 7
  pre_pad: -1s
  min_duration: 2h
  queue_size: 0
cameras:
  - id: gate
    url: rtsp://10.0.0.2/main
    sub_url: http://10.0.0.2/sub
`), nil)
	if err == nil {
		t.Fatal("invalid motion config accepted")
	}
	for _, want := range []string{"motion.fps", "motion.cols", "motion.pre_pad", "motion.min_duration", "motion.queue_size", "cameras[0].sub_url"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}
