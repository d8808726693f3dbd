package index

import (
	"context"
	"testing"
	"time"
	"xueliang/storage/recording"
)

func testCameraEvents(t *testing.T, be *backend) {
	db := be.open(t)
	ctx := context.Background()
	t0 := time.Date(2026, 11, 28, 8, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	ev := func(rule string, start, end int) recording.CameraEvent {
		e := recording.CameraEvent{CameraID: "cam1", Source: recording.CameraEventSourceONVIF, Topic: "RuleEngine/CellMotionDetector/Motion", Rule: rule, Start: at(start)}
		if end >= 0 {
			e.End = at(end)
		}
		return e
	}

	// Open two, close one, add a closed one without its open row, replay a
	// batch (idempotent), another camera.
	if err := db.AddCameraEvents(ctx, []recording.CameraEvent{ev("r1", 10, -1), ev("r2", 12, -1)}); err != nil {
		t.Fatal(err)
	}
	closed := ev("r1", 10, 14)
	closed.Data = `{"cells":"zwA="}`
	batch := []recording.CameraEvent{closed, ev("r1", 20, 25), ev("r2", 12, -1)}
	for range 2 {
		if err := db.AddCameraEvents(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	other := ev("r1", 10, 30)
	other.CameraID = "cam2"
	if err := db.AddCameraEvents(ctx, []recording.CameraEvent{other}); err != nil {
		t.Fatal(err)
	}

	type iv struct {
		rule       string
		start, end int // end -1 = open
	}
	check := func(from, to int, want []iv) {
		t.Helper()
		got, err := db.CameraEvents(ctx, "cam1", at(from), at(to))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("[%d,%d): %d events %+v, want %+v", from, to, len(got), got, want)
		}
		for i, w := range want {
			g := got[i]
			end := -1
			if !g.End.IsZero() {
				end = int(g.End.Sub(t0) / time.Second)
			}
			if g.Rule != w.rule || !g.Start.Equal(at(w.start)) || end != w.end || g.Source != "onvif" {
				t.Errorf("[%d,%d) event %d = %+v, want %+v", from, to, i, g, w)
			}
		}
	}
	check(0, 100, []iv{{"r1", 10, 14}, {"r2", 12, -1}, {"r1", 20, 25}})
	check(14, 20, []iv{{"r2", 12, -1}}) // [10,14) ends at from; [20,25) starts at to
	check(13, 21, []iv{{"r1", 10, 14}, {"r2", 12, -1}, {"r1", 20, 25}})
	check(26, 100, []iv{{"r2", 12, -1}}) // the open one overlaps everything after it
	if got, _ := db.CameraEvents(ctx, "cam1", at(0), at(100)); got[0].Data != `{"cells":"zwA="}` {
		t.Errorf("data %q", got[0].Data)
	}

	// Dangling events are closed, and cut to the maximum duration.
	if n, err := db.CloseOpenCameraEvents(ctx, "cam1", at(40)); err != nil || n != 1 {
		t.Fatalf("closed %d, %v", n, err)
	}
	check(0, 100, []iv{{"r1", 10, 14}, {"r2", 12, 40}, {"r1", 20, 25}})
	if err := db.AddCameraEvents(ctx, []recording.CameraEvent{ev("r3", 50, -1)}); err != nil {
		t.Fatal(err)
	}
	late := at(50).Add(3 * recording.MaxCameraEventDuration)
	if n, err := db.CloseOpenCameraEvents(ctx, "", late); err != nil || n != 1 {
		t.Fatalf("closed %d, %v", n, err)
	}
	got, err := db.CameraEvents(ctx, "cam1", at(49), at(51))
	if err != nil || len(got) != 1 || !got[0].End.Equal(at(50).Add(recording.MaxCameraEventDuration)) {
		t.Fatalf("long event %+v %v", got, err)
	}

	// Invalid events are refused as a batch.
	bad := ev("r4", 60, 59)
	if err := db.AddCameraEvents(ctx, []recording.CameraEvent{ev("r4", 60, -1), bad}); err == nil {
		t.Fatal("end before start accepted")
	}
	if err := db.AddCameraEvents(ctx, []recording.CameraEvent{{CameraID: "cam1", Source: "onvif", Topic: "x"}}); err == nil {
		t.Fatal("zero start accepted")
	}
	got, _ = db.CameraEvents(ctx, "cam1", at(59), at(61))
	for _, e := range got {
		if e.Rule == "r4" {
			t.Fatalf("partial batch written: %+v", e)
		}
	}
}
