package index

import (
	"context"
	"errors"
	"testing"
	"time"
)

func testCameraRegistryCRUD(t *testing.T, be *backend) {
	ctx := context.Background()
	db := be.open(t)
	lat, lon := 34.24, 116.13
	created := time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)
	c := Camera{
		ID: "41142600001320000001", Name: "村口", Township: "会亭镇", Village: "张庄村", Lat: &lat, Lon: &lon,
		MainURL: "rtsp://10.0.0.1/main", SubURL: "rtsp://10.0.0.1/sub", Username: "admin", SealedPassword: "xlseal:v1:…",
		Transport: "udp", SegmentDuration: 30 * time.Second, Motion: true, Enabled: true, Source: SourceAPI,
		Created: created, Updated: created,
	}
	if err := db.PutCamera(ctx, c); err != nil {
		t.Fatal(err)
	}
	got, err := db.Camera(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Lat == nil || *got.Lat != lat || got.Lon == nil || *got.Lon != lon {
		t.Fatalf("lat/lon = %v/%v", got.Lat, got.Lon)
	}
	got.Lat, got.Lon = c.Lat, c.Lon
	if got != c {
		t.Fatalf("Camera = %+v\nwant %+v", got, c)
	}

	// Update: every field replaced, Created kept; nil lat/lon stored as NULL.
	later := created.Add(time.Hour)
	c2 := Camera{ID: c.ID, Name: "新名", Township: "会亭镇", Village: "李庄村", MainURL: "rtsp://10.0.0.2/main",
		Source: SourceAPI, Created: later, Updated: later}
	if err := db.PutCamera(ctx, c2); err != nil {
		t.Fatal(err)
	}
	got, _ = db.Camera(ctx, c.ID)
	want := c2
	want.Created = created
	if got != want {
		t.Fatalf("after update = %+v\nwant %+v", got, want)
	}

	// Footage, then unregister: the row and segment stay, URLs and
	// credentials go.
	mustCreate(t, db, c.ID, at(0), at(1))
	if err := db.UnregisterCamera(ctx, c.ID, later.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	got, err = db.Camera(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Registered() || got.Enabled || got.MainURL != "" || got.Username != "" || got.SealedPassword != "" || got.Name != "新名" || got.Village != "李庄村" {
		t.Fatalf("after unregister = %+v", got)
	}
	if err := db.UnregisterCamera(ctx, c.ID, later); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second unregister: %v, want ErrNotFound", err)
	}
	if err := db.UnregisterCamera(ctx, "nope", later); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unregister of a missing camera: %v, want ErrNotFound", err)
	}
	// Registering it again continues the same row: Created is the new one
	// (the old registration ended).
	again := later.Add(2 * time.Hour)
	c2.Created, c2.Updated = again, again
	if err := db.PutCamera(ctx, c2); err != nil {
		t.Fatal(err)
	}
	got, _ = db.Camera(ctx, c.ID)
	if !got.Registered() || !got.Created.Equal(again) {
		t.Fatalf("re-registered = %+v", got)
	}
	segs, err := db.SegmentsInRange(ctx, c.ID, at(0), at(1))
	if err != nil || len(segs) != 1 {
		t.Fatalf("footage after unregister/register: %v %v", segs, err)
	}

	// A camera created by footage alone is not registered.
	mustCreate(t, db, "cam9", at(0), at(1))
	all, err := db.Cameras(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[1].ID != "cam9" || all[1].Registered() || !all[1].Created.IsZero() {
		t.Fatalf("Cameras = %+v", all)
	}
	if err := db.PutCamera(ctx, Camera{}); err == nil {
		t.Fatal("PutCamera with an empty id succeeded")
	}
}
