package main

import (
	"archive/zip"
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"xueliang/cmd/xueliang/internal/export"
)

type exportJob struct {
	ID             string    `json:"id"`
	State          string    `json:"state"`
	Progress       float64   `json:"progress"`
	Error          string    `json:"error"`
	Files          int       `json:"files"`
	Size           int64     `json:"size"`
	ManifestSHA256 string    `json:"manifest_sha256"`
	From           time.Time `json:"from"`
	To             time.Time `json:"to"`
}

func doJSON(t *testing.T, method, u string, body, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %d, bad JSON %q: %v", method, u, resp.StatusCode, b, err)
		}
	}
	if resp.StatusCode >= 300 {
		t.Logf("%s %s: %d %s", method, u, resp.StatusCode, b)
	}
	return resp.StatusCode
}

// TestExportSignedPackage: record, restart (a gap), export a range that
// starts before the footage; the package has one MP4 per span, the gaps
// listed, a manifest signed by the published key; `xueliang export
// verify` passes on the zip and on the unpacked directory and fails when
// any one byte of an MP4 or of the manifest changes; ffprobe (the judge)
// reads every MP4 frame by frame; the request and the download are in the
// audit log.
func TestExportSignedPackage(t *testing.T) {
	t.Parallel() // waits on real time mostly: runs beside the others (Makefile TEST_PARALLEL)
	rtsp, _ := startCamsim(t, "-cameras", "1")
	srv := startServer(t, "recording:\n  segment_duration: 4s\nexport:\n  max_concurrent: 1\n"+cameraList(rtsp, 1))
	time.Sleep(9 * time.Second)
	srv.proc.stop()
	time.Sleep(2 * time.Second)
	srv.start(t)
	time.Sleep(9 * time.Second)

	db := openIndex(t, srv)
	segs, err := db.SegmentsInRange(t.Context(), "cam1", time.Unix(0, 0), time.Now().Add(time.Hour))
	if err != nil || len(segs) < 3 {
		t.Fatalf("%d segments: %v", len(segs), err)
	}
	from := segs[0].Start.Add(-2 * time.Second)
	to := time.Now().Add(-3 * time.Second)

	var key struct {
		PublicKey   string `json:"public_key"`
		Fingerprint string `json:"fingerprint"`
	}
	if code := doJSON(t, "GET", srv.base+"/api/v1/exports/public-key", nil, &key); code != 200 || !strings.HasPrefix(key.PublicKey, "ed25519:") {
		t.Fatalf("public key: %d %+v", code, key)
	}
	if fi, err := os.Stat(filepath.Join(srv.dataDir, "export-signing.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("signing key file: %v %v", fi, err)
	}

	var j exportJob
	req := map[string]any{"camera": "cam1", "from": from, "to": to}
	if code := doJSON(t, "POST", srv.base+"/api/v1/exports", req, &j); code != http.StatusAccepted || j.ID == "" {
		t.Fatalf("POST /api/v1/exports: %d %+v", code, j)
	}
	// max_concurrent 1: a second request while the first runs is refused.
	// (The first may already be done on a fast machine; then it is accepted.)
	var j2 exportJob
	switch code := doJSON(t, "POST", srv.base+"/api/v1/exports", req, &j2); code {
	case http.StatusTooManyRequests:
	case http.StatusAccepted:
		waitExport(t, srv, j2.ID)
	default:
		t.Errorf("second export: %d", code)
	}
	if code := doJSON(t, "POST", srv.base+"/api/v1/exports", map[string]any{"camera": "nope", "from": from, "to": to}, nil); code != 404 {
		t.Errorf("export of an unknown camera: %d, want 404", code)
	}
	j = waitExport(t, srv, j.ID)
	if j.State != "done" || j.Progress != 1 || j.Files != 2 {
		t.Fatalf("job %+v, want done with 2 files (one per span)", j)
	}

	// Download.
	resp, err := http.Get(srv.base + "/api/v1/exports/" + j.ID + "/download")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	zipPath := filepath.Join(dir, "export.zip")
	zb, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/zip" || int64(len(zb)) != j.Size {
		t.Fatalf("download: %d %q, %d bytes of %d: %v", resp.StatusCode, resp.Header.Get("Content-Type"), len(zb), j.Size, err)
	}
	if err := os.WriteFile(zipPath, zb, 0o644); err != nil {
		t.Fatal(err)
	}
	verify := func(what string, want int, args ...string) string {
		t.Helper()
		code, out, errOut := runCLI(t, append([]string{"export", "verify"}, args...)...)
		if code != want {
			t.Errorf("%s: export verify exit %d, want %d\n%s%s", what, code, want, out, errOut)
		}
		return out
	}
	out := verify("zip", 0, zipPath)
	if !strings.Contains(out, "export package OK") || !strings.Contains(out, key.Fingerprint) {
		t.Errorf("verify output %q", out)
	}
	verify("zip, pinned key", 0, "--key", key.PublicKey, zipPath)
	other, err := export.LoadOrCreateKey(filepath.Join(dir, "other.key"))
	if err != nil {
		t.Fatal(err)
	}
	if out := verify("zip, another server's key", 1, "--key", export.FormatPublicKey(other.Public().(ed25519.PublicKey)), zipPath); !strings.Contains(out, "signature") {
		t.Errorf("wrong key: %q", out)
	}

	pkgDir := filepath.Join(dir, "pkg")
	unzip(t, zipPath, pkgDir)
	verify("directory", 0, pkgDir)
	mb, err := os.ReadFile(filepath.Join(pkgDir, export.ManifestName))
	if err != nil {
		t.Fatal(err)
	}
	var man export.Manifest
	if err := json.Unmarshal(mb, &man); err != nil {
		t.Fatal(err)
	}
	if man.Camera.ID != "cam1" || !man.From.Equal(from) || !man.To.Equal(to) || man.PublicKey != key.PublicKey ||
		man.CreatedBy.User == "" || man.AuditHead.Hash == "" || man.AuditHead.ID == 0 || len(man.Files) != 2 {
		t.Errorf("manifest %s", mb)
	}
	// Gaps: before the first footage and the restart.
	if len(man.Gaps) < 2 || !man.Gaps[0].Start.Equal(from) || !man.Gaps[0].End.Equal(segs[0].Start) {
		t.Errorf("gaps %+v, want [from, first start) then the restart", man.Gaps)
	}
	if g := man.Gaps[1]; !g.Start.Equal(man.Files[0].End) || !g.End.Equal(man.Files[1].Start) || g.End.Sub(g.Start) < time.Second {
		t.Errorf("restart gap %+v between files %+v", g, man.Files)
	}

	// ffprobe reads every MP4; every frame is there, consecutive.
	for _, f := range man.Files {
		jd := judgeMP4(t, filepath.Join(pkgDir, f.Name))
		checkContinuous(t, "export "+f.Name, "cam1", jd.Shown)
		checkWindow(t, "export "+f.Name, jd.Shown, f.Start, f.End, 0)
	}

	// One changed byte anywhere fails the verification, naming the file.
	for _, name := range append([]string{export.ManifestName}, man.Files[0].Name, man.Files[1].Name) {
		bad := filepath.Join(dir, "bad-"+name)
		copyDir(t, pkgDir, bad)
		flipByte(t, filepath.Join(bad, name))
		if out := verify("flipped byte in "+name, 1, bad); !strings.Contains(out, "NOT verified") {
			t.Errorf("%s flipped: %q", name, out)
		}
	}
	// In the zip too (one byte inside the first MP4's data).
	badZip := bytes.Clone(zb)
	off := bytes.Index(badZip, []byte("mdat"))
	if off < 0 {
		t.Fatal("no mdat in the zip")
	}
	badZip[off+1000] ^= 0x01
	badZipPath := filepath.Join(dir, "bad.zip")
	if err := os.WriteFile(badZipPath, badZip, 0o644); err != nil {
		t.Fatal(err)
	}
	verify("flipped byte in the zip", 1, badZipPath)

	// The request and the download are audited.
	var audit struct {
		Entries []struct {
			Path, Action, Detail string
			Status               int
		} `json:"entries"`
	}
	if code := doJSON(t, "GET", srv.base+"/api/v1/audit?camera=cam1&limit=1000", nil, &audit); code != 200 {
		t.Fatalf("audit: %d", code)
	}
	var requested, downloaded bool
	for _, e := range audit.Entries {
		requested = requested || e.Path == "/api/v1/exports" && e.Status == 202 && strings.Contains(e.Detail, j.ID)
		downloaded = downloaded || e.Path == "/api/v1/exports/"+j.ID+"/download" && e.Status == 200 &&
			strings.Contains(e.Detail, j.ManifestSHA256)
	}
	if !requested || !downloaded {
		t.Errorf("audit: export request %v, download %v: %+v", requested, downloaded, audit.Entries)
	}

	// Delete: the package is gone.
	var del exportJob
	if code := doJSON(t, "DELETE", srv.base+"/api/v1/exports/"+j.ID, nil, &del); code != 200 || del.State != "cancelled" {
		t.Errorf("delete: %d %+v", code, del)
	}
	if code := doJSON(t, "GET", srv.base+"/api/v1/exports/"+j.ID+"/download", nil, nil); code != http.StatusConflict {
		t.Errorf("download after delete: %d, want 409", code)
	}
}

func waitExport(t *testing.T, srv *testServer, id string) exportJob {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var j exportJob
		if code := doJSON(t, "GET", srv.base+"/api/v1/exports/"+id, nil, &j); code != 200 {
			t.Fatalf("GET export %s: %d", id, code)
		}
		if j.Progress < 0 || j.Progress > 1 {
			t.Fatalf("progress %v", j.Progress)
		}
		if j.State != "running" {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("export %s still running: %+v", id, j)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func unzip(t *testing.T, zipPath, dir string) {
	t.Helper()
	zr, err := zip.OpenReader(zipPath)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f.Name)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
}

// flipByte flips one bit of the byte in the middle of the file.
func flipByte(t *testing.T, p string) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x01
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
