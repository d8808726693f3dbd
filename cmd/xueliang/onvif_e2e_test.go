package main

// Acceptance for camera-side events (issue #5 part 4): camsim sends an ONVIF
// metadata track with a known motion schedule; the server records the
// video as usual and lists the camera's motion events on the timeline. A
// second camera sends garbage on its metadata track and still records.

import (
	"net/url"
	"testing"
	"time"
)

func TestONVIFEventsEndToEnd(t *testing.T) {
	t.Parallel() // waits on real time mostly: runs beside the others (Makefile TEST_PARALLEL)
	// Motion windows in capture time since camsim's start.
	type window struct{ from, to time.Duration }
	sched := []window{{5 * time.Second, 8 * time.Second}, {12 * time.Second, 15 * time.Second}, {19 * time.Second, 20500 * time.Millisecond}}
	cam1 := "cam1:"
	for i, w := range sched {
		if i > 0 {
			cam1 += ","
		}
		cam1 += "event=" + w.from.String() + "-" + w.to.String()
	}
	rtsp, camStart := startCamsim(t, "-cameras", "2", "-camera", cam1, "-camera", "cam2:metadata=garbage")
	srv := startServer(t, "recording:\n  segment_duration: 10s\ncameras:\n"+
		"  - id: cam1\n    url: "+rtsp+"/cam1\n"+
		"  - id: cam2\n    url: "+rtsp+"/cam2\n")

	// The last event ends at +20.5 s; leave time for the close to be written.
	time.Sleep(time.Until(camStart.Add(22 * time.Second)))

	type event struct {
		Source, Topic, Rule string
		Start               time.Time
		End                 *time.Time
	}
	var tl struct {
		Spans  []struct{ Start, End time.Time } `json:"spans"`
		Events []event                          `json:"events"`
	}
	timeline := func(cam string) {
		t.Helper()
		q := url.Values{"from": {camStart.Add(-time.Second).UTC().Format(time.RFC3339Nano)}, "to": {time.Now().UTC().Format(time.RFC3339Nano)}}
		tl.Spans, tl.Events = nil, nil
		if code := getJSON(t, srv.base+"/api/v1/cameras/"+cam+"/timeline?"+q.Encode(), &tl); code != 200 {
			t.Fatalf("%s timeline: %d", cam, code)
		}
	}
	recorded := func() time.Duration { // of the last timeline
		var d time.Duration
		for _, s := range tl.Spans {
			d += s.End.Sub(s.Start)
		}
		return d
	}

	timeline("cam1")
	if len(tl.Events) != len(sched) {
		t.Fatalf("cam1: %d camera events, want %d: %+v", len(tl.Events), len(sched), tl.Events)
	}
	const slack = 500 * time.Millisecond
	for i, w := range sched {
		e := tl.Events[i]
		t.Logf("event %d: scheduled +%v..+%v, recorded %+v", i, w.from, w.to, e)
		if e.Source != "onvif" || e.Topic != "RuleEngine/CellMotionDetector/Motion" || e.Rule != "MyMotionDetectorRule" {
			t.Errorf("event %d: %+v", i, e)
		}
		if d := e.Start.Sub(camStart.Add(w.from)); d.Abs() > slack {
			t.Errorf("event %d starts %v from the schedule (+%v)", i, d, w.from)
		}
		if e.End == nil {
			t.Errorf("event %d (+%v..+%v) still open", i, w.from, w.to)
		} else if d := e.End.Sub(camStart.Add(w.to)); d.Abs() > slack {
			t.Errorf("event %d ends %v from the schedule (+%v)", i, d, w.to)
		}
	}
	if d := recorded(); d < 12*time.Second {
		t.Errorf("cam1: only %v recorded: %+v", d, tl.Spans)
	}

	// Garbage metadata: no events, recording unaffected.
	timeline("cam2")
	if len(tl.Events) != 0 {
		t.Errorf("cam2 (garbage metadata): events %+v", tl.Events)
	}
	if d := recorded(); d < 12*time.Second {
		t.Errorf("cam2 (garbage metadata): only %v recorded: %+v", d, tl.Spans)
	}

	m := scrapeMetrics(t, srv)
	if v, _ := metricSum(m, "xueliang_camera_metadata_events_total", `camera="cam1"`); v < float64(2*len(sched)) {
		t.Errorf("cam1 metadata events_total = %v, want ≥ %d", v, 2*len(sched))
	}
	if v, _ := metricSum(m, "xueliang_camera_metadata_parse_errors_total", `camera="cam1"`); v != 0 {
		t.Errorf("cam1 metadata parse_errors_total = %v", v)
	}
	if v, _ := metricSum(m, "xueliang_camera_metadata_parse_errors_total", `camera="cam2"`); v < 5 {
		t.Errorf("cam2 metadata parse_errors_total = %v, want ≥ 5", v)
	}
	if !srv.logContains(t, "onvif metadata track", "camera=cam1") {
		t.Error("no log line for cam1's metadata track")
	}
}
