package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"xueliang/index"
	"xueliang/storage/recording"
)

// eventsIndex is an Index with one camera, one span and two camera events.
type eventsIndex struct {
	from, to time.Time // of the last CameraEvents call
}

func (*eventsIndex) Cameras(context.Context) ([]index.Camera, error) {
	return []index.Camera{{ID: "cam1"}}, nil
}

func (*eventsIndex) Camera(_ context.Context, id string) (index.Camera, error) {
	if id != "cam1" {
		return index.Camera{}, index.ErrNotFound
	}
	return index.Camera{ID: id}, nil
}

func (*eventsIndex) Timeline(_ context.Context, _ string, from, to time.Time, _ time.Duration) ([]recording.Span, []recording.Gap, error) {
	return []recording.Span{{Start: from, End: to}}, nil, nil
}

func (x *eventsIndex) CameraEvents(_ context.Context, camera string, from, to time.Time) ([]recording.CameraEvent, error) {
	x.from, x.to = from, to
	return []recording.CameraEvent{
		{CameraID: camera, Source: "onvif", Topic: "RuleEngine/CellMotionDetector/Motion", Rule: "r1", Start: from.Add(time.Second), End: from.Add(3 * time.Second)},
		{CameraID: camera, Source: "onvif", Topic: "VideoSource/MotionAlarm", Start: from.Add(5 * time.Second)},
	}, nil
}

func TestTimelineCameraEvents(t *testing.T) {
	idx := &eventsIndex{}
	s := &Server{Index: idx}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	from := time.Date(2026, 11, 28, 8, 0, 0, 0, time.UTC)
	resp, err := http.Get(srv.URL + "/api/v1/cameras/cam1/timeline?from=2026-11-28T08:00:00Z&to=2026-11-28T08:01:00Z")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	var body struct {
		Events []map[string]any `json:"events"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if !idx.from.Equal(from) || !idx.to.Equal(from.Add(time.Minute)) {
		t.Errorf("asked [%v, %v)", idx.from, idx.to)
	}
	want := []map[string]any{
		{"source": "onvif", "topic": "RuleEngine/CellMotionDetector/Motion", "rule": "r1", "start": "2026-11-28T08:00:01Z", "end": "2026-11-28T08:00:03Z"},
		{"source": "onvif", "topic": "VideoSource/MotionAlarm", "rule": "", "start": "2026-11-28T08:00:05Z", "end": nil},
	}
	if len(body.Events) != len(want) {
		t.Fatalf("events %v", body.Events)
	}
	for i, w := range want {
		for k, v := range w {
			if got, ok := body.Events[i][k]; !ok || got != v {
				t.Errorf("event %d %s = %v (present %v), want %v", i, k, got, ok, v)
			}
		}
	}
}
