package api

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"xueliang/cmd/xueliang/internal/cameras"
	"xueliang/cmd/xueliang/internal/registry"
	"xueliang/index"
)

// TestPatchNewHostDropsPassword (issue #22 point 2): an installer who
// points a camera's main_url at a host of theirs does not receive the
// stored password; the change and the drop are audited.
func TestPatchNewHostDropsPassword(t *testing.T) {
	ctx := context.Background()
	f := newAuthFixture(t)
	sealer, err := registry.NewSealer(bytes.Repeat([]byte{5}, registry.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	svc := &cameras.Service{Store: f.db, Sealer: sealer}
	f.s.Cameras = svc
	h := f.s.Handler()
	tok := f.token(t, installer)
	const id = "41142600001320000001"
	create := map[string]any{"id": id, "township": "会亭镇", "village": "张庄村", "main_url": "rtsp://10.1.1.1/main",
		"sub_url": "rtsp://10.1.1.1/sub", "username": "admin", "password": regSecret}
	if rec := do(t, h, "POST", "/api/v1/cameras", tok, create); rec.Code != 201 {
		t.Fatalf("create: %d %s", rec.Code, rec.Body)
	}
	url := func() string {
		t.Helper()
		cfgs, err := svc.IngestConfigs(ctx)
		if err != nil || len(cfgs) != 1 {
			t.Fatalf("ingest configs %v %v", cfgs, err)
		}
		return cfgs[0].URL
	}
	for _, tc := range []struct {
		name  string
		patch map[string]any
		keeps bool
	}{
		{"rename", map[string]any{"name": "村口"}, true},
		{"same endpoint, other path and explicit default port", map[string]any{"main_url": "rtsp://10.1.1.1:554/other"}, true},
		{"main to the old sub's endpoint", map[string]any{"main_url": "rtsp://10.1.1.1/sub2"}, true},
		{"new host", map[string]any{"main_url": "rtsp://203.0.113.9/main"}, false},
		{"new port", map[string]any{"main_url": "rtsp://10.1.1.1:8554/main"}, false},
		{"new sub host", map[string]any{"sub_url": "rtsp://203.0.113.9/sub"}, false},
		{"rtsps to rtsp", map[string]any{"main_url": "rtsp://10.1.1.1:322/main"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Start each case from the camera with its password.
			reset := map[string]any{"main_url": "rtsp://10.1.1.1/main", "sub_url": "rtsp://10.1.1.1/sub", "password": regSecret}
			if tc.name == "rtsps to rtsp" {
				reset["main_url"] = "rtsps://10.1.1.1/main"
			}
			if rec := do(t, h, "PATCH", "/api/v1/cameras/"+id, tok, reset); rec.Code != 200 {
				t.Fatalf("reset: %d %s", rec.Code, rec.Body)
			}
			rec := do(t, h, "PATCH", "/api/v1/cameras/"+id, tok, tc.patch)
			if rec.Code != 200 {
				t.Fatalf("patch: %d %s", rec.Code, rec.Body)
			}
			hasPass := strings.Contains(rec.Body.String(), `"has_password":true`)
			sent := strings.Contains(url(), "Hik-Secret")
			if hasPass != tc.keeps || sent != tc.keeps {
				t.Fatalf("has_password=%v, password in the ingest URL=%v, want %v (%s)", hasPass, sent, tc.keeps, rec.Body)
			}
			recs, err := f.db.QueryAudit(ctx, index.AuditQuery{Camera: id, Limit: 1})
			if err != nil || len(recs) != 1 || recs[0].Method != "PATCH" {
				t.Fatalf("audit %+v %v", recs, err)
			}
			d := recs[0].Detail
			if strings.Contains(d, "password dropped") == tc.keeps || strings.Contains(d, "endpoint changed") == tc.keeps {
				t.Fatalf("audit detail %q (keeps=%v)", d, tc.keeps)
			}
			if strings.Contains(d, regSecret) {
				t.Fatalf("audit detail has the password: %q", d)
			}
		})
	}
	// A new host with the password given again keeps it (the installer
	// knows it).
	rec := do(t, h, "PATCH", "/api/v1/cameras/"+id, tok, map[string]any{"main_url": "rtsp://10.9.9.9/main", "password": regSecret})
	if rec.Code != 200 || !strings.Contains(url(), "Hik-Secret") {
		t.Fatalf("new host with password: %d %s", rec.Code, rec.Body)
	}
}
