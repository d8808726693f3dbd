package main

// The camera registry end to end: cameras created, changed and removed
// through the API are recorded / restarted / stopped live, the installer
// CLI imports a CSV, and camera passwords never leak.

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"xueliang/cmd/xueliang/internal/cameras"
)

// registryToken is the bearer token the registry tests send explicitly
// (the API requests and the CLI's --token): the test servers' bootstrap
// token (auth_test.go).
const registryToken = testBootstrapToken

// camPassword is the RTSP password of the cameras; it must never appear in
// a log line, an API response or /metrics.
const camPassword = "Secr3t-Camsim-Pw!"

// apiRecorder sends authenticated API requests and keeps every response
// body for the final leak check.
type apiRecorder struct {
	t      *testing.T
	s      *testServer
	mu     sync.Mutex
	bodies [][]byte
}

func (a *apiRecorder) do(method, path string, body any) (int, []byte) {
	a.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			a.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, a.s.base+path, rd)
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+registryToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatal(err)
	}
	a.mu.Lock()
	a.bodies = append(a.bodies, b)
	a.mu.Unlock()
	return resp.StatusCode, b
}

func (a *apiRecorder) json(method, path string, body any, out any) int {
	a.t.Helper()
	code, b := a.do(method, path, body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			a.t.Fatalf("%s %s: %d, bad JSON %q: %v", method, path, code, b, err)
		}
	}
	return code
}

// startRegistryServer starts a server and an apiRecorder for it.
func startRegistryServer(t *testing.T, cfg string) (*testServer, *apiRecorder) {
	t.Helper()
	s := startServer(t, cfg)
	return s, &apiRecorder{t: t, s: s}
}

// runCLI runs the xueliang binary and returns its exit code, stdout and
// stderr.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "xueliang"), args...)
	cmd.Env = append(os.Environ(), "XUELIANG_TOKEN="+registryToken)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, stdout.String(), stderr.String()
}

func TestRegistryLiveChanges(t *testing.T) {
	rtsp, _ := startCamsim(t, "-cameras", "2", "-user", "admin", "-pass", camPassword)
	// A configuration-file camera, with its credentials in the URL.
	cfgURL := strings.Replace(rtsp, "rtsp://", "rtsp://admin:"+camPassword+"@", 1) + "/cam2"
	s, api := startRegistryServer(t, "recording:\n  segment_duration: 4s\ncameras:\n  - id: cfgcam\n    township: 车站镇\n    url: "+cfgURL+"\n")
	const id = "41142600001320000001"
	body := map[string]any{
		"id": id, "name": "张庄村口", "township": "会亭镇", "village": "张庄村", "lat": 34.24, "lon": 116.13,
		"main_url": rtsp + "/cam1", "username": "admin", "password": camPassword,
	}

	// Credentials in the URL are refused, naming the field.
	bad := map[string]any{"id": id, "township": "会亭镇", "village": "张庄村",
		"main_url": strings.Replace(rtsp, "rtsp://", "rtsp://admin:"+camPassword+"@", 1) + "/cam1"}
	var verr struct {
		Error  string            `json:"error"`
		Fields map[string]string `json:"fields"`
	}
	if code := api.json("POST", "/api/v1/cameras", bad, &verr); code != 400 || verr.Fields["main_url"] == "" {
		t.Fatalf("URL with credentials: %d %+v", code, verr)
	}

	// Created → recording within 5 s.
	created := time.Now()
	var cam map[string]any
	if code := api.json("POST", "/api/v1/cameras", body, &cam); code != 201 || cam["has_password"] != true {
		t.Fatalf("create: %d %v", code, cam)
	}
	recording := func() bool {
		var tl timelineResp
		api.json("GET", "/api/v1/cameras/"+id+"/timeline", nil, &tl)
		return len(tl.Spans) > 0
	}
	waitForFast(t, 5*time.Second, "the created camera to record", recording)
	t.Logf("recording %v after the create", time.Since(created).Round(time.Millisecond))
	waitForFast(t, 5*time.Second, "the camera to be online", func() bool {
		var c map[string]any
		api.json("GET", "/api/v1/cameras/"+id, nil, &c)
		return c["online"] == true
	})

	// Another URL → the puller restarts on it.
	body["main_url"] = rtsp + "/cam2"
	var put map[string]any
	if code := api.json("PUT", "/api/v1/cameras/"+id, body, &put); code != 200 || put["outcome"] != "updated" {
		t.Fatalf("put: %d %v", code, put)
	}
	waitForFast(t, 5*time.Second, "the puller to restart", func() bool {
		return s.logContains(t, "camera config changed, restarting", id)
	})
	if code := api.json("PUT", "/api/v1/cameras/"+id, body, &put); code != 200 || put["outcome"] != "unchanged" {
		t.Fatalf("put again: %d %v", code, put)
	}
	waitForFast(t, 8*time.Second, "the camera to be online again", func() bool {
		var c map[string]any
		api.json("GET", "/api/v1/cameras/"+id, nil, &c)
		return c["online"] == true
	})
	var sites struct {
		Townships []struct {
			Name    string `json:"name"`
			Cameras int    `json:"cameras"`
			Online  int    `json:"online"`
		} `json:"townships"`
	}
	if api.json("GET", "/api/v1/sites", nil, &sites); len(sites.Townships) != 2 || sites.Townships[0].Name != "会亭镇" ||
		sites.Townships[0].Online != 1 || sites.Townships[1].Cameras != 1 {
		t.Errorf("sites: %+v", sites)
	}

	// The configuration-file camera records, is listed, and is read-only.
	var cfgCam map[string]any
	if code := api.json("GET", "/api/v1/cameras/cfgcam", nil, &cfgCam); code != 200 || cfgCam["source"] != "config" ||
		cfgCam["has_password"] != true || cfgCam["main_url"] != rtsp+"/cam2" || cfgCam["online"] != true {
		t.Errorf("config camera: %d %v", code, cfgCam)
	}
	if code, b := api.do("DELETE", "/api/v1/cameras/cfgcam", nil); code != 409 || !strings.Contains(string(b), "configuration file") {
		t.Errorf("delete of a config camera: %d %s", code, b)
	}
	up := `xueliang_camera_up{camera="` + id + `",township="会亭镇"}`
	if v, ok := scrapeMetrics(t, s)[up]; !ok || v != 1 {
		t.Errorf("%s = %v, %v", up, v, ok)
	}

	// The CLI lists it and removes it: the puller stops, footage stays.
	code, out, errOut := runCLI(t, "camera", "list", "--server", s.base)
	if code != 0 || !strings.Contains(out, id) || strings.Contains(out+errOut, camPassword) {
		t.Fatalf("camera list: %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, "camera", "rm", "--server", s.base, id)
	if code != 0 || strings.Contains(out+errOut, camPassword) {
		t.Fatalf("camera rm: %d\n%s\n%s", code, out, errOut)
	}
	waitForFast(t, 5*time.Second, "the puller to stop", func() bool {
		_, ok := scrapeMetrics(t, s)[up]
		return !ok && s.logContains(t, "camera removed, stopping", id)
	})
	if code, _ := api.do("GET", "/api/v1/cameras/"+id, nil); code != 404 {
		t.Errorf("get after rm: %d", code)
	}
	if !recording() {
		t.Error("the removed camera's footage is gone from its timeline")
	}

	// No password anywhere: the server log, every response, /metrics.
	resp, err := http.Get(s.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metricsText, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	logText, err := os.ReadFile(s.proc.log)
	if err != nil {
		t.Fatal(err)
	}
	for what, b := range map[string][]byte{"server log": logText, "/metrics": metricsText} {
		if bytes.Contains(b, []byte(camPassword)) {
			t.Errorf("the camera password appears in the %s", what)
		}
	}
	for _, b := range api.bodies {
		if bytes.Contains(b, []byte(camPassword)) {
			t.Errorf("the camera password appears in an API response: %s", b)
		}
	}
	if len(logText) == 0 || len(api.bodies) < 10 {
		t.Fatalf("nothing to check: %d log bytes, %d bodies", len(logText), len(api.bodies))
	}
}

// waitForFast is waitFor polling every 100 ms.
func waitForFast(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// importFixture writes a 1,000-row CSV: 980 valid cameras (disabled, so
// that no puller starts) and 20 bad rows, and returns the file and the bad
// rows' line numbers with the field each one must name.
func importFixture(t *testing.T) (string, map[int]string) {
	t.Helper()
	header := []string{"id", "name", "township", "village", "lat", "lon", "main_url", "sub_url", "username", "password", "transport", "enabled", "motion"}
	bads := []struct {
		field string
		edit  func(r []string) []string
	}{
		{"id", func(r []string) []string { r[0] = r[0][:19]; return r }},                                           // 19 digits
		{"id", func(r []string) []string { r[0] = r[0][:17] + "A01"; return r }},                                   // not digits
		{"id", func(r []string) []string { r[0] = "411427" + r[0][6:]; return r }},                                 // another county
		{"id", func(r []string) []string { r[0] = r[0][:10] + "118" + r[0][13:]; return r }},                       // an NVR
		{"id", func(r []string) []string { r[0] = r[0][:14] + "000000"; return r }},                                // reserved serial
		{"id", func(r []string) []string { r[0] = ""; return r }},                                                  // missing
		{"id", func(r []string) []string { r[0] = "41142600001320000001"; return r }},                              // duplicate of line 2
		{"main_url", func(r []string) []string { r[6] = "http://10.0.0.1/live"; return r }},                        // not RTSP
		{"main_url", func(r []string) []string { r[6] = "rtsp://admin:" + camPassword + "@10.0.0.1/x"; return r }}, // credentials
		{"main_url", func(r []string) []string { r[6] = ""; return r }},                                            // missing
		{"sub_url", func(r []string) []string { r[7] = "rtsp:///nohost"; return r }},                               // no host
		{"village", func(r []string) []string { r[3] = ""; return r }},                                             // missing village
		{"township", func(r []string) []string { r[2] = " "; return r }},                                           // blank township
		{"lat", func(r []string) []string { r[4] = "north"; return r }},                                            // not a number
		{"lat", func(r []string) []string { r[4] = "95"; return r }},                                               // out of range
		{"lon", func(r []string) []string { r[5] = ""; return r }},                                                 // lat without lon
		{"transport", func(r []string) []string { r[10] = "sctp"; return r }},                                      // unknown transport
		{"enabled", func(r []string) []string { r[11] = "maybe"; return r }},                                       // not a boolean
		{"password", func(r []string) []string { r[8] = ""; return r }},                                            // password without user
		{"row", func(r []string) []string { return r[:5] }},                                                        // too few fields
	}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.Write(header)
	badRows := map[int]string{}
	serial := 0
	for i := range 1000 {
		line := i + 2
		k := i - 25
		isBad := k >= 0 && k%50 == 0 && k/50 < len(bads)
		id := 0
		if isBad {
			id = 900000 + k/50 // unused by the valid rows (1..980)
		} else {
			serial++
			id = serial
		}
		village := fmt.Sprintf("村%03d", serial/4)
		row := []string{
			fmt.Sprintf("4114260000132%07d", id), fmt.Sprintf("camera %d", serial), "会亭镇", village,
			"34.2", "116.1", fmt.Sprintf("rtsp://10.%d.%d.%d/main", serial/65536, serial/256%256, serial%256), "",
			"admin", camPassword, "tcp", "false", "false",
		}
		if isBad {
			b := bads[k/50]
			row = b.edit(row)
			badRows[line] = b.field
		}
		_ = w.Write(row)
	}
	w.Flush()
	if len(badRows) != 20 {
		t.Fatalf("fixture has %d bad rows", len(badRows))
	}
	path := filepath.Join(t.TempDir(), "cameras.csv")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, badRows
}

// failedRows parses the "row N\tid X\treason" lines of an import report.
func failedRows(t *testing.T, out string) map[int]string {
	t.Helper()
	got := map[int]string{}
	for _, line := range strings.Split(out, "\n") {
		var n int
		if _, err := fmt.Sscanf(line, "row %d", &n); err == nil {
			got[n] = line
		}
	}
	return got
}

func TestRegistryImportCSV(t *testing.T) {
	s, api := startRegistryServer(t, "")
	path, badRows := importFixture(t)
	count := func() int {
		var out struct {
			Cameras []json.RawMessage `json:"cameras"`
		}
		api.json("GET", "/api/v1/cameras", nil, &out)
		return len(out.Cameras)
	}
	checkReport := func(what, out string) {
		t.Helper()
		got := failedRows(t, out)
		var gotRows, wantRows []int
		for n := range got {
			gotRows = append(gotRows, n)
		}
		for n := range badRows {
			wantRows = append(wantRows, n)
		}
		slices.Sort(gotRows)
		slices.Sort(wantRows)
		if !slices.Equal(gotRows, wantRows) {
			t.Fatalf("%s: failed rows %v, want %v\n%s", what, gotRows, wantRows, out)
		}
		for n, field := range badRows {
			if field != "row" && !strings.Contains(got[n], field+":") {
				t.Errorf("%s: row %d does not name %s: %s", what, n, field, got[n])
			}
		}
		if strings.Contains(out, camPassword) {
			t.Errorf("%s: the report shows a camera password", what)
		}
	}

	// Dry run: the report, nothing written.
	code, out, errOut := runCLI(t, "camera", "import", "--server", s.base, "--dry-run", path)
	if code != 1 {
		t.Fatalf("dry run exit %d\n%s\n%s", code, out, errOut)
	}
	checkReport("dry run", out)
	if !strings.Contains(out, "would create 980, update 0, leave 0 unchanged; 20 rows failed") {
		t.Errorf("dry run summary:\n%s", out)
	}
	if n := count(); n != 0 {
		t.Fatalf("dry run registered %d cameras", n)
	}

	// Import: 980 created, the 20 reported, exit 1.
	start := time.Now()
	code, out, errOut = runCLI(t, "camera", "import", "--server", s.base, path)
	t.Logf("import of 1,000 rows took %v", time.Since(start).Round(time.Millisecond))
	if code != 1 {
		t.Fatalf("import exit %d\n%s\n%s", code, out, errOut)
	}
	checkReport("import", out)
	if !strings.Contains(out, "summary: created 980, updated 0, unchanged 0, failed 20") {
		t.Errorf("import summary:\n%s", out)
	}
	if !strings.Contains(errOut, "980/980") {
		t.Errorf("no progress bar on stderr: %q", errOut)
	}
	if n := count(); n != 980 {
		t.Fatalf("%d cameras registered, want 980", n)
	}

	// Again: nothing changes.
	code, out, _ = runCLI(t, "camera", "import", "--server", s.base, path)
	if code != 1 || !strings.Contains(out, "summary: created 0, updated 0, unchanged 980, failed 20") {
		t.Fatalf("second import: exit %d\n%s", code, out)
	}
	checkReport("second import", out)
	if n := count(); n != 980 {
		t.Fatalf("%d cameras after the second import", n)
	}

	// A file larger than one request may hold (cameras.MaxImportRows) is
	// checked in several; an ID repeated across them is still found.
	var big bytes.Buffer
	bw := csv.NewWriter(&big)
	_ = bw.Write([]string{"id", "township", "village", "main_url", "enabled"})
	const bigRows = cameras.MaxImportRows + 1200
	for i := range bigRows {
		serial := 100001 + i
		if i == bigRows-3 {
			serial = 100001 // the ID of line 2, several requests later
		}
		_ = bw.Write([]string{fmt.Sprintf("4114260000132%07d", serial), "会亭镇", fmt.Sprintf("大村%03d", i/8),
			fmt.Sprintf("rtsp://10.200.%d.%d/main", i/256, i%256), "false"})
	}
	bw.Flush()
	bigPath := filepath.Join(t.TempDir(), "big.csv")
	if err := os.WriteFile(bigPath, big.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runCLI(t, "camera", "import", "--server", s.base, "--dry-run", bigPath)
	dupLine := bigRows - 3 + 2
	if got := failedRows(t, out); code != 1 || len(got) != 1 || !strings.Contains(got[dupLine], "duplicate: the same ID is on row 2") {
		t.Fatalf("dry run of %d rows: exit %d, failed rows %v\n%s", bigRows, code, got, errOut)
	}
	if want := fmt.Sprintf("dry run: %d rows: would create %d, update 0, leave 0 unchanged; 1 rows failed", bigRows, bigRows-1); !strings.Contains(out, want) {
		t.Fatalf("dry run of %d rows: want %q in\n%s", bigRows, want, out)
	}

	// camera add: the server proposes the ID (a new village gets a new
	// block), the password comes from a file, bad fields are named.
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte(camPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runCLI(t, "camera", "add", "--server", s.base, "--township", "车站镇", "--url", "rtsp://10.9.9.9/main")
	if code != 1 || !strings.Contains(errOut, "village: required") {
		t.Fatalf("camera add without a village: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, "camera", "add", "--server", s.base, "--township", "车站镇", "--village", "王楼村",
		"--name", "王楼村口", "--url", "rtsp://10.9.9.9/main", "--user", "admin", "--password-file", pwFile, "--disabled")
	if code != 0 || !strings.Contains(out, "created camera 41142600001320001001") {
		t.Fatalf("camera add: exit %d\n%s%s", code, out, errOut)
	}
	var added map[string]any
	if api.json("GET", "/api/v1/cameras/41142600001320001001", nil, &added); added["has_password"] != true || added["enabled"] != false {
		t.Errorf("added camera: %v", added)
	}
	code, out, _ = runCLI(t, "camera", "list", "--server", s.base, "--township", "车站镇")
	if code != 0 || strings.Count(out, "\n") != 2 || !strings.Contains(out, "王楼村口") {
		t.Errorf("camera list --township: exit %d\n%s", code, out)
	}

	logText, err := os.ReadFile(s.proc.log)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(logText, []byte(camPassword)) {
		t.Error("the camera password appears in the server log")
	}
	for _, b := range api.bodies {
		if bytes.Contains(b, []byte(camPassword)) {
			t.Errorf("the camera password appears in an API response")
		}
	}
}
