package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"xueliang/cmd/xueliang/internal/cameras"
	"xueliang/cmd/xueliang/internal/registry"
	"xueliang/index"
	"xueliang/ingest"
)

const regSecret = "Hik-Secret-9876"

type fakePullers map[string]ingest.Status

func (f fakePullers) Status() map[string]ingest.Status { return f }

func newRegistryServer(t *testing.T) (http.Handler, *cameras.Service) {
	t.Helper()
	return newRegistryServerWith(t, nil)
}

// newRegistryServerWith is newRegistryServer with the Server changed by
// edit (nil: none) before it serves.
func newRegistryServerWith(t *testing.T, edit func(*Server)) (http.Handler, *cameras.Service) {
	t.Helper()
	ctx := context.Background()
	db, err := index.Open(ctx, filepath.Join(t.TempDir(), "index.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	sealer, err := registry.NewSealer(bytes.Repeat([]byte{3}, registry.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	svc := &cameras.Service{Store: db, Sealer: sealer}
	if err := svc.SyncConfig(ctx, []cameras.ConfigCamera{{ID: "cam1", Name: "cam1", Township: "会亭镇", URL: "rtsp://admin:" + regSecret + "@127.0.0.1/cam1"}}); err != nil {
		t.Fatal(err)
	}
	s := &Server{Index: db, Cameras: svc, Pullers: fakePullers{"41142600001320000001": {Connected: true}}}
	if edit != nil {
		edit(s)
	}
	return s.Handler(), svc
}

// call sends a request and returns the status and body; every body is
// checked for the password.
func call(t *testing.T, h http.Handler, method, path, body string) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, rd))
	b := rec.Body.Bytes()
	if bytes.Contains(b, []byte(regSecret)) {
		t.Fatalf("%s %s: the response contains the camera password: %s", method, path, b)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s %s: %d, not JSON: %s", method, path, rec.Code, b)
	}
	return rec.Code, out
}

func TestRegistryAPI(t *testing.T) {
	h, _ := newRegistryServer(t)

	// Every bad field is named.
	code, out := call(t, h, "POST", "/api/v1/cameras", `{"id":"41142700001320000001","township":"会亭镇","lat":91,"lon":0,
		"main_url":"rtsp://admin:`+regSecret+`@10.1.1.1/main","transport":"quic"}`)
	fields, _ := out["fields"].(map[string]any)
	if code != 400 || out["error"] != "invalid camera" {
		t.Fatalf("bad create: %d %v", code, out)
	}
	for _, f := range []string{"id", "village", "lat", "main_url", "transport"} {
		if fields[f] == nil {
			t.Errorf("field %s not reported: %v", f, fields)
		}
	}
	if len(fields) != 5 {
		t.Errorf("fields = %v, want exactly 5", fields)
	}
	if code, _ := call(t, h, "POST", "/api/v1/cameras", `{"id":"x","bogus":1}`); code != 400 {
		t.Errorf("unknown JSON field: %d", code)
	}

	// Create, read back: has_password, never the password.
	cam := `{"id":"41142600001320000001","name":"张庄村口","township":"会亭镇","village":"张庄村","lat":34.2,"lon":116.1,
		"main_url":"rtsp://10.1.1.1/main","username":"admin","password":"` + regSecret + `","enabled":false}`
	code, out = call(t, h, "POST", "/api/v1/cameras", cam)
	if code != 201 || out["has_password"] != true || out["source"] != "api" || out["username"] != "admin" {
		t.Fatalf("create: %d %v", code, out)
	}
	if code, _ := call(t, h, "POST", "/api/v1/cameras", cam); code != 409 {
		t.Errorf("duplicate create: %d, want 409", code)
	}
	code, out = call(t, h, "GET", "/api/v1/cameras/41142600001320000001", "")
	if code != 200 || out["online"] != true || out["village"] != "张庄村" {
		t.Fatalf("get: %d %v", code, out)
	}
	if code, _ := call(t, h, "GET", "/api/v1/cameras/41142600001320000009", ""); code != 404 {
		t.Errorf("get missing: %d", code)
	}

	// PUT is idempotent.
	if code, out = call(t, h, "PUT", "/api/v1/cameras/41142600001320000001", cam); code != 200 || out["outcome"] != "unchanged" {
		t.Fatalf("put same: %d %v", code, out)
	}
	moved := strings.Replace(cam, "10.1.1.1", "10.1.1.2", 1)
	if code, out = call(t, h, "PUT", "/api/v1/cameras/41142600001320000001", moved); code != 200 || out["outcome"] != "updated" {
		t.Fatalf("put moved: %d %v", code, out)
	}

	// PATCH changes only what it names.
	if code, out = call(t, h, "PATCH", "/api/v1/cameras/41142600001320000001", `{"enabled":true}`); code != 200 ||
		out["outcome"] != "updated" || out["enabled"] != true || out["main_url"] != "rtsp://10.1.1.2/main" || out["has_password"] != true {
		t.Fatalf("patch: %d %v", code, out)
	}
	if code, out = call(t, h, "PATCH", "/api/v1/cameras/41142600001320000001", `{"enabled":false}`); code != 200 || out["outcome"] != "updated" {
		t.Fatalf("patch back: %d %v", code, out)
	}
	if code, out = call(t, h, "PATCH", "/api/v1/cameras/41142600001320000001", `{"lat":null}`); code != 400 || out["fields"] == nil {
		t.Fatalf("patch lat without lon: %d %v", code, out)
	}

	// Lists and filters.
	list := func(q string) []any {
		t.Helper()
		code, out := call(t, h, "GET", "/api/v1/cameras"+q, "")
		if code != 200 {
			t.Fatalf("list %s: %d %v", q, code, out)
		}
		l, _ := out["cameras"].([]any)
		return l
	}
	if n := len(list("")); n != 2 {
		t.Errorf("list: %d cameras, want 2 (cam1 from the config and one from the API)", n)
	}
	if n := len(list("?village=张庄村&enabled=false&online=true&q=张庄")); n != 1 {
		t.Errorf("filtered list: %d", n)
	}
	if n := len(list("?township=车站镇")); n != 0 {
		t.Errorf("other township: %d", n)
	}
	if code, _ := call(t, h, "GET", "/api/v1/cameras?enabled=maybe", ""); code != 400 {
		t.Errorf("bad filter: %d", code)
	}

	// Sites and the next ID.
	code, out = call(t, h, "GET", "/api/v1/sites", "")
	towns, _ := out["townships"].([]any)
	if code != 200 || len(towns) != 1 {
		t.Fatalf("sites: %d %v", code, out)
	}
	town := towns[0].(map[string]any)
	if town["name"] != "会亭镇" || town["cameras"] != 2.0 || town["online"] != 1.0 {
		t.Errorf("sites: %v", town)
	}
	code, out = call(t, h, "GET", "/api/v1/sites/next-id?township=会亭镇&village=张庄村", "")
	if code != 200 || out["id"] != "41142600001320000002" {
		t.Errorf("next-id: %d %v", code, out)
	}
	if code, out = call(t, h, "GET", "/api/v1/sites/next-id", ""); code != 400 || out["fields"] == nil {
		t.Errorf("next-id without a village: %d %v", code, out)
	}

	// Import: dry run, then for real.
	rows := `{"rows":[
		{"row":2,"id":"41142600001320000003","township":"会亭镇","village":"张庄村","main_url":"rtsp://10.1.1.3/m","username":"a","password":"` + regSecret + `"},
		{"row":3,"id":"41142600001320000004","township":"会亭镇","village":"","main_url":"rtsp://a:` + regSecret + `@10.1.1.4/m"}]}`
	code, out = call(t, h, "POST", "/api/v1/cameras/import?dry_run=true", rows)
	if code != 200 || out["created"] != 1.0 || out["failed"] != 1.0 || out["dry_run"] != true {
		t.Fatalf("import dry run: %d %v", code, out)
	}
	code, out = call(t, h, "POST", "/api/v1/cameras/import", rows)
	if code != 200 || out["created"] != 1.0 || out["failed"] != 1.0 {
		t.Fatalf("import: %d %v", code, out)
	}
	code, out = call(t, h, "POST", "/api/v1/cameras/import", rows)
	if code != 200 || out["unchanged"] != 1.0 || out["created"] != 0.0 {
		t.Fatalf("import again: %d %v", code, out)
	}

	// Config cameras are read-only; delete keeps nothing in the list.
	if code, out = call(t, h, "DELETE", "/api/v1/cameras/cam1", ""); code != 409 {
		t.Errorf("delete config camera: %d %v", code, out)
	}
	if code, out = call(t, h, "PUT", "/api/v1/cameras/cam1", `{"township":"x","village":"y","main_url":"rtsp://h/p"}`); code != 400 && code != 409 {
		t.Errorf("put config camera: %d %v", code, out)
	}
	if code, out = call(t, h, "DELETE", "/api/v1/cameras/41142600001320000001", ""); code != 200 {
		t.Fatalf("delete: %d %v", code, out)
	}
	if code, _ := call(t, h, "GET", "/api/v1/cameras/41142600001320000001", ""); code != 404 {
		t.Errorf("get after delete: %d", code)
	}
	if n := len(list("?removed=true")); n != 1 {
		t.Errorf("removed cameras: %d, want 1", n)
	}
}

func TestRegistryScope(t *testing.T) {
	h, _ := newRegistryServer(t)
	scoped := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(withPrincipal(r.Context(), &Principal{User: "op", Role: "operator", Townships: []string{"车站镇"}})))
	})
	code, out := call(t, scoped, "GET", "/api/v1/cameras", "")
	if l, _ := out["cameras"].([]any); code != 200 || len(l) != 0 {
		t.Errorf("out-of-scope cameras listed: %v", out)
	}
	if code, _ := call(t, scoped, "GET", "/api/v1/cameras/cam1", ""); code != 404 {
		t.Errorf("out-of-scope get: %d", code)
	}
	code, out = call(t, scoped, "GET", "/api/v1/sites", "")
	if l, _ := out["townships"].([]any); code != 200 || len(l) != 0 {
		t.Errorf("out-of-scope sites: %v", out)
	}
}
