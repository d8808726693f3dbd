package main

import (
	"xueliang/cmd/xueliang/internal/config"
	"xueliang/index"
	"xueliang/ingest"
	"xueliang/ingest/motion"
)

// motionOptions maps the motion: section to the analysis options shared by
// every camera with motion enabled; results go to the index.
func motionOptions(cfg config.Config, db *index.DB) ingest.MotionOptions {
	m := cfg.Motion
	ic := motion.DefaultIntervalConfig()
	ic.PrePad, ic.PostPad, ic.MinDuration = m.PrePad, m.PostPad, m.MinDuration
	return ingest.MotionOptions{
		Sink:      db,
		Detector:  motion.Config{FPS: float64(m.FPS), Cols: m.Cols, Rows: m.Rows},
		Intervals: &ic,
		QueueSize: m.QueueSize,
	}
}
