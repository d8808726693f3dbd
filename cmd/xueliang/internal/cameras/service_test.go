package cameras

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"xueliang/cmd/xueliang/internal/registry"
	"xueliang/index"
	"xueliang/ingest"
	"xueliang/ingest/camnet"
)

const secret = "s3cr3t-Pässwort"

type fixture struct {
	svc *Service
	db  *index.DB
	mu  sync.Mutex
	got [][]ingest.CameraConfig
}

func (f *fixture) last() []ingest.CameraConfig {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.got) == 0 {
		return nil
	}
	return f.got[len(f.got)-1]
}

func (f *fixture) applies() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.got)
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	db, err := index.Open(context.Background(), filepath.Join(t.TempDir(), "index.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	sealer, err := registry.NewSealer(bytes.Repeat([]byte{7}, registry.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{db: db}
	f.svc = &Service{
		Store: db, Sealer: sealer,
		Defaults: Defaults{SegmentDuration: time.Minute, MaxFragmentDuration: 2 * time.Second, Transport: "tcp"},
		OnChange: func(c []ingest.CameraConfig) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.got = append(f.got, c)
		},
	}
	return f
}

func ptr[T any](v T) *T { return &v }

func validInput(serial int) Input {
	return Input{
		ID: fmt.Sprintf("4114260000132%07d", serial), Name: "村口", Township: "会亭镇", Village: "张庄村",
		Lat: ptr(34.2), Lon: ptr(116.1), MainURL: "rtsp://127.0.0.1:8554/cam1", Username: "admin", Password: ptr(secret),
	}
}

func TestValidateNamesEveryField(t *testing.T) {
	in := Input{
		ID: "41142700001320000001", Township: "", Village: strings.Repeat("村", 100),
		Lat: ptr(95.0), Lon: ptr(200.0), MainURL: "rtsp://admin:" + secret + "@10.0.0.1/main", SubURL: "http://x/",
		Password: ptr("p"), Transport: "sctp", SegmentDuration: "1s",
	}
	_, bad := validate(in, registry.XiayiCameras)
	want := []string{"id", "township", "village", "lat", "lon", "main_url", "sub_url", "password", "transport", "segment_duration"}
	var got []string
	for k := range bad {
		got = append(got, k)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("bad fields %v, want %v (%v)", got, want, bad)
	}
	if strings.Contains(bad.String(), secret) || strings.Contains(bad.String(), "admin") {
		t.Fatalf("validation message leaks the credentials: %s", bad)
	}
	if !strings.Contains(bad["main_url"], "username and password fields") {
		t.Errorf("main_url reason %q does not say where credentials go", bad["main_url"])
	}
	if _, bad := validate(validInput(1), registry.XiayiCameras); bad != nil {
		t.Fatalf("valid input rejected: %v", bad)
	}
}

func TestCreatePutDelete(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	in := validInput(1)
	c, err := f.svc.Create(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if c.SealedPassword == "" || strings.Contains(c.SealedPassword, secret) {
		t.Fatalf("password not sealed: %q", c.SealedPassword)
	}
	cfgs := f.last()
	if len(cfgs) != 1 || cfgs[0].ID != in.ID || cfgs[0].URL != "rtsp://admin:s3cr3t-P%C3%A4sswort@127.0.0.1:8554/cam1" ||
		cfgs[0].SegmentDuration != time.Minute || cfgs[0].Transport != "tcp" {
		t.Fatalf("ingest configs after create = %+v", cfgs)
	}
	if f.svc.Township(in.ID) != "会亭镇" {
		t.Errorf("Township = %q", f.svc.Township(in.ID))
	}
	if _, err := f.svc.Create(ctx, in); !errors.Is(err, ErrExists) {
		t.Fatalf("second create: %v, want ErrExists", err)
	}

	// PUT of the same input: unchanged, nothing applied.
	n := f.applies()
	if _, out, err := f.svc.Put(ctx, in.ID, in); err != nil || out != Unchanged {
		t.Fatalf("put same: %v %v", out, err)
	}
	// Without the password: keeps it, unchanged.
	noPass := in
	noPass.Password = nil
	if _, out, err := f.svc.Put(ctx, in.ID, noPass); err != nil || out != Unchanged {
		t.Fatalf("put without password: %v %v", out, err)
	}
	if f.applies() != n {
		t.Fatal("an unchanged put applied the cameras")
	}
	// Changing the URL restarts (a new config list with the new URL).
	moved := in
	moved.MainURL = "rtsp://127.0.0.1:8555/cam1"
	if _, out, err := f.svc.Put(ctx, in.ID, moved); err != nil || out != Updated {
		t.Fatalf("put moved: %v %v", out, err)
	}
	if got := f.last(); len(got) != 1 || !strings.Contains(got[0].URL, ":8555/") {
		t.Fatalf("after URL change: %+v", got)
	}
	// Disabled: not recorded.
	moved.Enabled = ptr(false)
	if _, out, err := f.svc.Put(ctx, in.ID, moved); err != nil || out != Updated {
		t.Fatalf("put disabled: %v %v", out, err)
	}
	if got := f.last(); len(got) != 0 {
		t.Fatalf("disabled camera still recorded: %+v", got)
	}
	// Path and body IDs must agree.
	var ve *ValidationError
	if _, _, err := f.svc.Put(ctx, validInput(2).ID, in); !errors.As(err, &ve) || ve.Fields["id"] == "" {
		t.Fatalf("put with another id: %v", err)
	}
	if err := f.svc.Delete(ctx, in.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Get(ctx, in.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get after delete: %v", err)
	}
	if err := f.svc.Delete(ctx, in.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	// Re-created: continues the same row.
	if _, out, err := f.svc.Put(ctx, in.ID, in); err != nil || out != Created {
		t.Fatalf("re-create: %v %v", out, err)
	}
}

func TestConfigCamerasReadOnly(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	cams := []ConfigCamera{
		{ID: "cam1", Name: "cam1", Township: "会亭镇", URL: "rtsp://u:s3cr3t-P%C3%A4sswort@127.0.0.1:8554/cam1", Transport: "tcp",
			SubURL: "rtsp://u:s3cr3t-P%C3%A4sswort@127.0.0.1:8554/cam1sub", Motion: true},
		{ID: "cam2", Name: "cam2", URL: "rtsp://127.0.0.1:8554/cam2", Transport: "udp", Disabled: true},
	}
	if err := f.svc.SyncConfig(ctx, cams); err != nil {
		t.Fatal(err)
	}
	c, err := f.svc.Get(ctx, "cam1")
	if err != nil {
		t.Fatal(err)
	}
	if c.Source != index.SourceConfig || c.MainURL != "rtsp://127.0.0.1:8554/cam1" || c.Username != "u" || strings.Contains(c.SealedPassword, secret) {
		t.Fatalf("config camera stored as %+v", c)
	}
	cfgs, err := f.svc.IngestConfigs(ctx)
	if err != nil || len(cfgs) != 1 || cfgs[0].URL != cams[0].URL || cfgs[0].SubURL != cams[0].SubURL || !cfgs[0].Motion {
		t.Fatalf("ingest configs %+v %v", cfgs, err)
	}
	if err := f.svc.Delete(ctx, "cam1"); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("delete config camera: %v", err)
	}
	// Running SyncConfig again writes nothing new; dropping cam2 from the
	// file unregisters it.
	before, _ := f.svc.Get(ctx, "cam1")
	if err := f.svc.SyncConfig(ctx, cams[:1]); err != nil {
		t.Fatal(err)
	}
	after, _ := f.svc.Get(ctx, "cam1")
	if after.SealedPassword != before.SealedPassword || !after.Updated.Equal(before.Updated) {
		t.Errorf("an unchanged config camera was rewritten")
	}
	if _, err := f.svc.Get(ctx, "cam2"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("cam2 after removal from the file: %v", err)
	}
}

func TestImport(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	row := func(n, serial int) ImportRow {
		in := validInput(serial)
		return ImportRow{Row: n, ID: in.ID, Name: in.Name, Township: in.Township, Village: in.Village, Lat: "34.2",
			Lon: "116.1", MainURL: in.MainURL, Username: "admin", Password: secret, Enabled: "false"}
	}
	rows := []ImportRow{row(2, 1), row(3, 2), row(4, 3), row(5, 4), row(6, 1)}
	rows[1].Lat = "north"
	rows[2].ID = "4114260000132000000x"
	rows[3].MainURL = "rtsp://a:b@h/x"
	// rows[4] repeats rows[0]'s ID.
	check := func(rep ImportReport, created, updated, unchanged int) {
		t.Helper()
		if rep.Created != created || rep.Updated != updated || rep.Unchanged != unchanged || rep.Failed != 4 {
			t.Fatalf("report %+v", rep)
		}
		wantBad := map[int]string{3: "lat", 4: "id", 5: "main_url", 6: "id"}
		for _, r := range rep.Rows {
			if field, ok := wantBad[r.Row]; ok != (r.Outcome == Failed) || ok && r.Fields[field] == "" {
				t.Errorf("row %d: %+v", r.Row, r)
			}
			if strings.Contains(r.Error, secret) {
				t.Errorf("row %d error leaks the password", r.Row)
			}
		}
	}
	rep, err := f.svc.Import(ctx, rows, true)
	if err != nil {
		t.Fatal(err)
	}
	check(rep, 1, 0, 0)
	if all, _ := f.svc.List(ctx); len(all) != 0 {
		t.Fatalf("dry run wrote %d cameras", len(all))
	}
	rep, err = f.svc.Import(ctx, rows, false)
	if err != nil {
		t.Fatal(err)
	}
	check(rep, 1, 0, 0)
	n := f.applies()
	rep, err = f.svc.Import(ctx, rows, false)
	if err != nil {
		t.Fatal(err)
	}
	check(rep, 0, 0, 1)
	if f.applies() != n {
		t.Fatal("an unchanged import applied the cameras")
	}
}

func TestNextIDAndSites(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	p, err := f.svc.NextID(ctx, "会亭镇", "张庄村", "")
	if err != nil {
		t.Fatal(err)
	}
	if p.ID != "41142600001320000001" || !p.NewBlock {
		t.Fatalf("first proposal %+v", p)
	}
	mk := func(id, town, village string, enabled bool) {
		t.Helper()
		in := validInput(0)
		in.ID, in.Township, in.Village, in.Enabled = id, town, village, ptr(enabled)
		if _, err := f.svc.Create(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	mk(p.ID, "会亭镇", "张庄村", true)
	mk("41142600001320000002", "会亭镇", "张庄村", false)
	// The next one of the same village stays in its block; another
	// village gets a new block.
	if p, err = f.svc.NextID(ctx, "会亭镇", "张庄村", ""); err != nil || p.ID != "41142600001320000003" || p.NewBlock {
		t.Fatalf("same village: %+v %v", p, err)
	}
	if p, err = f.svc.NextID(ctx, "会亭镇", "李庄村", ""); err != nil || p.ID != "41142600001320001001" || !p.NewBlock {
		t.Fatalf("other village: %+v %v", p, err)
	}
	mk(p.ID, "会亭镇", "李庄村", true)
	mk("41142600001320002001", "车站镇", "王楼村", true)
	var ve *ValidationError
	if _, err := f.svc.NextID(ctx, "", "", "118"); !errors.As(err, &ve) || len(ve.Fields) != 3 {
		t.Fatalf("bad next-id query: %v", err)
	}

	cams, _ := f.svc.List(ctx)
	sites := Sites(cams, func(id string) bool { return id == "41142600001320000001" })
	want := []Township{
		{Name: "会亭镇", Cameras: 3, Enabled: 2, Online: 1, Villages: []Village{
			{Name: "张庄村", Cameras: 2, Enabled: 1, Online: 1}, {Name: "李庄村", Cameras: 1, Enabled: 1}}},
		{Name: "车站镇", Cameras: 1, Enabled: 1, Villages: []Village{{Name: "王楼村", Cameras: 1, Enabled: 1}}},
	}
	if fmt.Sprint(sites) != fmt.Sprint(want) {
		t.Fatalf("Sites = %+v\nwant %+v", sites, want)
	}
}

// TestImportNewHostDropsPassword (issue #22 point 2): an import row without
// a password that moves a camera to another host drops the stored password
// and says so; the same host keeps it.
func TestImportNewHostDropsPassword(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	in := validInput(1)
	if _, err := f.svc.Create(ctx, in); err != nil {
		t.Fatal(err)
	}
	row := ImportRow{Row: 2, ID: in.ID, Name: in.Name, Township: in.Township, Village: in.Village,
		MainURL: "rtsp://127.0.0.1:8554/cam1?x=1", Username: "admin"}
	rep, err := f.svc.Import(ctx, []ImportRow{row}, false)
	if err != nil || rep.Rows[0].PasswordDropped || !strings.Contains(f.last()[0].URL, "s3cr3t") {
		t.Fatalf("same endpoint: %+v %v %v", rep, err, f.last())
	}
	row.MainURL = "rtsp://198.51.100.4:8554/cam1"
	rep, err = f.svc.Import(ctx, []ImportRow{row}, false)
	if err != nil || !rep.Rows[0].PasswordDropped || rep.Updated != 1 {
		t.Fatalf("new host: %+v %v", rep, err)
	}
	if got := f.last()[0].URL; got != "rtsp://admin@198.51.100.4:8554/cam1" {
		t.Fatalf("ingest URL after the move %q, want no password", got)
	}
}

// TestCameraNetworks (issue #22 point 5): with a camera network policy,
// create, put and import refuse a main_url or sub_url outside it.
func TestCameraNetworks(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.svc.Networks = &camnet.Policy{Allowed: camnet.DefaultAllowed()}
	in := validInput(1) // rtsp://127.0.0.1:8554/cam1
	_, err := f.svc.Create(ctx, in)
	var ve *ValidationError
	if !errors.As(err, &ve) || !strings.Contains(ve.Fields["main_url"], "not allowed") {
		t.Fatalf("create on loopback: %v", err)
	}
	in.MainURL, in.SubURL = "rtsp://10.0.0.7/main", "rtsp://169.254.169.254/sub"
	if _, err := f.svc.Create(ctx, in); !errors.As(err, &ve) || ve.Fields["sub_url"] == "" || ve.Fields["main_url"] != "" {
		t.Fatalf("create with a metadata sub_url: %v", err)
	}
	in.SubURL = "rtsp://10.0.0.7/sub"
	if _, err := f.svc.Create(ctx, in); err != nil {
		t.Fatalf("create on a private network: %v", err)
	}
	in.MainURL = "rtsp://203.0.113.5/main"
	if _, _, err := f.svc.Put(ctx, in.ID, in); !errors.As(err, &ve) || ve.Fields["main_url"] == "" {
		t.Fatalf("put to a public address: %v", err)
	}
	rep, err := f.svc.Import(ctx, []ImportRow{{Row: 2, ID: in.ID, Township: in.Township, Village: in.Village,
		MainURL: "rtsp://127.0.0.2/main"}}, false)
	if err != nil || rep.Failed != 1 || rep.Rows[0].Fields["main_url"] == "" {
		t.Fatalf("import on loopback: %+v %v", rep, err)
	}
}
