package main

// The web console against the real server + camsim: one server per test
// function, pages as subtests; every page leaves its 1920×1080 screenshot
// in docs/screenshots/.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestWebUIServed loads / in chromium: the embedded console starts (its
// script ran under the server's CSP) and shows the login form.
func TestWebUIServed(t *testing.T) {
	t.Parallel()
	srv := startServer(t, "")
	ctx := consoleBrowser(t)
	browse(t, ctx, 30*time.Second, chromedp.Navigate(srv.base+"/"), chromedp.WaitVisible(chromedp.ID("login-user")))
	title := browseValue(t, ctx, 10*time.Second, chromedp.Title())
	form := browseValue(t, ctx, 10*time.Second, chromedp.Text(chromedp.CSS("form.login h1")))
	if !strings.Contains(title, "雪亮") || form != "登录" {
		t.Fatalf("title %q, form heading %q", title, form)
	}
}

// consolePassword is the password of every user the console tests create.
const consolePassword = "a long console password"

// addConsoleUser creates a user through the API (bootstrap token).
func addConsoleUser(t *testing.T, s *testServer, name, role string, townships ...string) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"name": name, "role": role, "password": consolePassword, "townships": townships})
	resp, err := http.Post(s.base+"/api/v1/users", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create user %s: %d", name, resp.StatusCode)
	}
}

// apiAs sends one API request with token and returns the status and body.
func apiAs(t *testing.T, s *testServer, token, method, path, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, s.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := anonymousClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// setSearch types q into the tree's search (as one input event).
func setSearch(t *testing.T, ctx context.Context, q string) {
	t.Helper()
	js, _ := json.Marshal(q)
	browse(t, ctx, 10*time.Second, chromedp.Evaluate[chromedp.Void](`(() => { const s = document.getElementById('tree-search'); s.value = `+string(js)+`; s.dispatchEvent(new Event('input')); })()`))
}

// waitOrDump waits until expr is true; when it is not within timeout the
// test fails with the value of dump (a JavaScript expression).
func waitOrDump(t *testing.T, ctx context.Context, timeout time.Duration, expr, dump string) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := chromedp.Do(tctx, until(expr)); err != nil {
		state := browseValue(t, ctx, 5*time.Second, chromedp.Evaluate[string](dump))
		t.Fatalf("waiting for %s: %v; state %s", expr, err, state)
	}
}

// tileCameras returns the camera of every tile of the live wall.
func tileCameras(t *testing.T, ctx context.Context) []string {
	t.Helper()
	return browseValue(t, ctx, 5*time.Second, chromedp.Evaluate[[]string](`[...document.querySelectorAll('[data-tile]')].map(e => e.dataset.camera || '')`))
}

// treeCameras returns the camera IDs the tree shows.
func treeCameras(t *testing.T, ctx context.Context) []string {
	t.Helper()
	ids := browseValue(t, ctx, 10*time.Second, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#camera-tree .cam')].map(e => e.dataset.camera)`))
	slices.Sort(ids)
	return ids
}

// waitTree waits until the tree lists n cameras.
func waitTree(t *testing.T, ctx context.Context, n int) {
	t.Helper()
	browse(t, ctx, 30*time.Second, until(fmt.Sprintf(`document.querySelectorAll('#camera-tree .cam').length === %d`, n)))
}

// TestWebUIConsole logs in with each role and uses the pages: the tree
// shows the demo cameras with their state, a live tile plays (its video
// time advances), an operator of one township sees only its cameras, the
// installer probes a camera (snapshot preview) and imports a CSV, the
// auditor queries and verifies the audit log.
func TestWebUIConsole(t *testing.T) {
	const offlineCam = "41142600001320005001"
	t.Parallel() // waits on real time mostly
	// cam1 has a sub stream (160×120) beside its main one (320×240).
	rtsp, _ := startCamsim(t, "-cameras", "4", "-camera", "cam1sub:size=160x120")
	names := []string{"会亭镇村口", "会亭镇十字路口", "济阳镇广场", "济阳镇学校门口"}
	var cams strings.Builder
	for i := 1; i <= 4; i++ {
		town := "会亭镇"
		if i > 2 {
			town = "济阳镇"
		}
		fmt.Fprintf(&cams, "  - id: cam%d\n    name: %s\n    url: %s/cam%d\n    township: %s\n", i, names[i-1], rtsp, i, town)
		if i == 1 {
			// The sub stream is read for motion analysis (and so is live).
			fmt.Fprintf(&cams, "    sub_url: %s/cam1sub\n    motion: true\n", rtsp)
		}
	}
	cams.WriteString("    motion: true\n") // cam4 analyses motion
	srv := startServer(t, "recording:\n  segment_duration: 4s\ncameras:\n"+cams.String())
	for i := 1; i <= 4; i++ {
		waitLive(t, srv, fmt.Sprintf("cam%d", i))
	}
	// A registry camera in a village that never answers (the discard
	// port): offline.
	body := `{"id":"` + offlineCam + `","name":"济阳镇东门","township":"济阳镇","village":"东村","main_url":"rtsp://127.0.0.1:9/none","enabled":true}`
	if resp, err := http.Post(srv.base+"/api/v1/cameras", "application/json", strings.NewReader(body)); err != nil {
		t.Fatal(err)
	} else if resp.Body.Close(); resp.StatusCode != http.StatusCreated {
		t.Fatalf("create the offline camera: %d", resp.StatusCode)
	}
	// The admin last: once an admin exists the bootstrap token stops
	// working (#22 point 3).
	addConsoleUser(t, srv, "li", "operator", "会亭镇")
	addConsoleUser(t, srv, "wang", "installer")
	addConsoleUser(t, srv, "zhao", "auditor")
	addConsoleUser(t, srv, "zhang", "admin")
	adminTok := loginToken(t, srv.base, "zhang", consolePassword)
	ctx := consoleBrowser(t)

	t.Run("Login", func(t *testing.T) {
		browse(t, ctx, 30*time.Second, chromedp.Navigate(srv.base+"/#/live"), chromedp.WaitVisible(chromedp.ID("login-user")))
		screenshot(t, ctx, "login")
		// A wrong password is refused on the page.
		browse(t, ctx, 30*time.Second,
			chromedp.SendKeys(chromedp.ID("login-user"), "zhang"),
			chromedp.SendKeys(chromedp.ID("login-password"), "wrong password"),
			chromedp.Click(chromedp.ID("login-submit")),
			until(`document.getElementById('login-error').textContent !== ''`))
		if msg := browseValue(t, ctx, 5*time.Second, chromedp.Text(chromedp.ID("login-error"))); msg != "用户名或密码错误" {
			t.Errorf("bad login message %q", msg)
		}
		consoleLogin(t, ctx, srv, "zhang", consolePassword)
		nav := browseValue(t, ctx, 5*time.Second, chromedp.Evaluate[[]string](`[...document.querySelectorAll('.nav a')].map(a => a.dataset.route)`))
		if want := []string{"live", "replay", "search", "exports", "cameras", "import", "audit", "health"}; !slices.Equal(nav, want) {
			t.Errorf("admin navigation %v, want %v", nav, want)
		}
	})

	t.Run("Tree", func(t *testing.T) {
		browse(t, ctx, 30*time.Second, chromedp.Navigate(srv.base+"/#/cameras"))
		waitTree(t, ctx, 5)
		if got := treeCameras(t, ctx); !slices.Equal(got, []string{offlineCam, "cam1", "cam2", "cam3", "cam4"}) {
			t.Fatalf("tree shows %v", got)
		}
		browse(t, ctx, 30*time.Second, until(`document.querySelectorAll('#camera-tree [data-state=recording]').length === 4 && document.querySelector('#camera-tree .cam[data-camera="`+offlineCam+`"] [data-state=offline]') !== null`))
		// The offline camera is under its village 东村 of 济阳镇.
		if v := browseValue(t, ctx, 5*time.Second, chromedp.Evaluate[string](`document.querySelector('#camera-tree .cam[data-camera="`+offlineCam+`"]').closest('.township').dataset.township + '/' + document.querySelector('#camera-tree .cam[data-camera="`+offlineCam+`"]').closest('.tree-kids').parentElement.querySelector('.tree-head').textContent`)); !strings.Contains(v, "济阳镇/") || !strings.Contains(v, "东村") {
			t.Errorf("the offline camera's tree node is under %q", v)
		}
		towns := browseValue(t, ctx, 5*time.Second, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#camera-tree .township')].map(e => e.dataset.township)`))
		if !slices.Equal(towns, []string{"会亭镇", "济阳镇"}) {
			t.Errorf("townships %v", towns)
		}
		// Villages under their township: 会亭镇 has two cameras, no village.
		kids := browseValue(t, ctx, 5*time.Second, chromedp.Evaluate[int](`document.querySelector('#camera-tree .township[data-township="会亭镇"] .tree-kids .tree-kids').querySelectorAll('.cam').length`))
		if kids != 2 {
			t.Errorf("会亭镇's village node holds %d cameras, want 2", kids)
		}
		// Search by name (typed), then by ID.
		browse(t, ctx, 10*time.Second, chromedp.SendKeys(chromedp.ID("tree-search"), "广场"))
		if got := treeCameras(t, ctx); !slices.Equal(got, []string{"cam3"}) {
			t.Errorf("search 广场: %v", got)
		}
		setSearch(t, ctx, "CAM4")
		if got := treeCameras(t, ctx); !slices.Equal(got, []string{"cam4"}) {
			t.Errorf("search CAM4: %v", got)
		}
		setSearch(t, ctx, "")
		waitTree(t, ctx, 5)
		browse(t, ctx, 20*time.Second, chromedp.Click(chromedp.CSS(`#camera-tree .cam[data-camera="cam1"]`)), chromedp.WaitVisible(chromedp.ID("camera-snapshot")))
		screenshot(t, ctx, "cameras")
	})

	t.Run("Live", func(t *testing.T) {
		browse(t, ctx, 30*time.Second, chromedp.Navigate(srv.base+"/#/live"), chromedp.Click(chromedp.CSS(`[data-grid="4"]`)))
		waitTree(t, ctx, 5)
		// Drag cam1 onto the first tile; click the others into the next free ones.
		browse(t, ctx, 30*time.Second,
			chromedp.DragAndDrop(chromedp.CSS(`#camera-tree .cam[data-camera="cam1"]`), chromedp.CSS(`[data-tile="0"]`)),
			until(`document.querySelector('[data-tile="0"]').dataset.camera === 'cam1'`),
			chromedp.Click(chromedp.CSS(`#camera-tree .cam[data-camera="cam2"]`)),
			chromedp.Click(chromedp.CSS(`#camera-tree .cam[data-camera="cam3"]`)),
			chromedp.Click(chromedp.CSS(`#camera-tree .cam[data-camera="cam4"]`)),
		)
		tiles := browseValue(t, ctx, 5*time.Second, chromedp.Evaluate[[]string](`[...document.querySelectorAll('[data-tile]')].map(e => e.dataset.camera)`))
		if !slices.Equal(tiles, []string{"cam1", "cam2", "cam3", "cam4"}) {
			t.Fatalf("tiles %v", tiles)
		}
		// Every tile plays: its video time advances.
		const times = `[...document.querySelectorAll('[data-tile] video')].map(v => v.currentTime)`
		browse(t, ctx, 40*time.Second, until(`[...document.querySelectorAll('[data-tile] video')].every(v => v.currentTime > 0.5)`))
		before := browseValue(t, ctx, 5*time.Second, chromedp.Evaluate[[]float64](times))
		browse(t, ctx, 10*time.Second, chromedp.Sleep(3*time.Second))
		after := browseValue(t, ctx, 5*time.Second, chromedp.Evaluate[[]float64](times))
		for i := range after {
			if after[i]-before[i] < 1.5 {
				t.Errorf("tile %d: currentTime %.2f → %.2f in 3 s", i, before[i], after[i])
			}
		}
		screenshot(t, ctx, "live")
		// The wall plays cam1's sub stream; enlarged (double-click), its
		// main stream; Esc goes back to the sub stream.
		const cam1 = `document.querySelector('[data-tile="0"]')`
		browse(t, ctx, 20*time.Second, until(cam1+`.querySelector('video').videoWidth === 160 && `+cam1+`.querySelector('.tile-label').textContent.includes('子码流')`))
		browse(t, ctx, 10*time.Second, chromedp.DoubleClick(chromedp.CSS(`[data-tile="0"]`)))
		waitOrDump(t, ctx, 30*time.Second,
			cam1+`.classList.contains('big') && `+cam1+`.querySelector('.tile-label').textContent.includes('主码流') && `+cam1+`.querySelector('video').videoWidth === 320`,
			`(() => { const e = `+cam1+`, v = e.querySelector('video'), b = v.buffered;
				return JSON.stringify({big: e.classList.contains('big'), label: e.querySelector('.tile-label').textContent, w: v.videoWidth,
					ready: v.readyState, paused: v.paused, t: v.currentTime, err: v.error && v.error.message,
					buffered: [...Array(b.length).keys()].map(i => [b.start(i), b.end(i)])}); })()`)
		browse(t, ctx, 30*time.Second, chromedp.KeyEvent("\x1b"),
			until(`!`+cam1+`.classList.contains('big') && `+cam1+`.querySelector('video').videoWidth === 160`))

		// A laptop screen: the whole wall and the tree stay on screen.
		browse(t, ctx, 20*time.Second, chromedp.EmulateViewport(1366, 768), chromedp.Sleep(500*time.Millisecond))
		fits := browseValue(t, ctx, 5*time.Second, chromedp.Evaluate[bool](`(() => {
			const w = document.getElementById('wall').getBoundingClientRect(), tr = document.getElementById('camera-tree').getBoundingClientRect();
			const bar = document.querySelector('.wallbox .toolbar').getBoundingClientRect();
			return w.bottom <= innerHeight && w.right <= innerWidth && w.height > 400 && tr.width > 150 && bar.bottom <= w.top && document.documentElement.scrollWidth <= innerWidth;
		})()`))
		screenshot(t, ctx, "live-1366x768")
		browse(t, ctx, 20*time.Second, chromedp.EmulateViewport(1920, 1080))
		if !fits {
			t.Error("at 1366×768 the wall, its toolbar or the tree does not fit the screen")
		}

		// A saved layout comes back when the page is opened again.
		browse(t, ctx, 20*time.Second,
			chromedp.SendKeys(chromedp.ID("layout-name"), "值班"),
			chromedp.Click(chromedp.ID("save-layout")),
			until(`[...document.querySelectorAll('#layouts option')].some(o => o.value === '值班')`),
			chromedp.Click(chromedp.ID("live-clear")),
			until(`[...document.querySelectorAll('[data-tile]')].every(e => !e.dataset.camera)`),
			chromedp.Reload(),
			chromedp.WaitVisible(chromedp.ID("wall")),
			until(`document.getElementById('layouts').value === '值班' && document.querySelectorAll('[data-tile]').length === 4`))
		if got := tileCameras(t, ctx); !slices.Equal(got, []string{"cam1", "cam2", "cam3", "cam4"}) {
			t.Errorf("restored layout: tiles %v", got)
		}
		code, b := apiAs(t, srv, adminTok, "GET", "/api/v1/layouts/"+url.PathEscape("值班"), "")
		var l struct {
			Grid    int
			Cameras []string
		}
		if code != 200 || json.Unmarshal(b, &l) != nil || l.Grid != 4 || !slices.Equal(l.Cameras, []string{"cam1", "cam2", "cam3", "cam4"}) {
			t.Errorf("GET the saved layout: %d %s", code, b)
		}

		// The tour: one tile, a new camera every 3 s.
		browse(t, ctx, 20*time.Second, chromedp.Click(chromedp.CSS(`[data-grid="1"]`)),
			chromedp.SetValue(chromedp.ID("tour-seconds"), "3"), chromedp.Click(chromedp.ID("tour")),
			until(`document.querySelector('[data-tile="0"]').dataset.camera === 'cam1'`))
		browse(t, ctx, 20*time.Second, until(`document.querySelector('[data-tile="0"]').dataset.camera === 'cam2'`))
		browse(t, ctx, 20*time.Second, until(`document.querySelector('[data-tile="0"]').dataset.camera === 'cam3'`),
			chromedp.Click(chromedp.ID("tour")))

		// Shortcuts: ? opens the help, Esc closes it; Shift+2 is the 4-grid.
		browse(t, ctx, 10*time.Second, chromedp.KeyEvent("?"), chromedp.WaitVisible(chromedp.ID("help")))
		screenshot(t, ctx, "shortcuts")
		browse(t, ctx, 10*time.Second, chromedp.KeyEvent("\x1b"), until(`!document.getElementById('help')`),
			chromedp.KeyEvent("@", chromedp.KeyModifiers(chromedp.ModifierShift)), until(`document.querySelectorAll('[data-tile]').length === 4`))
	})

	t.Run("Health", func(t *testing.T) {
		// Alt+8: the eighth page of the navigation.
		browse(t, ctx, 30*time.Second, chromedp.KeyEvent("8", chromedp.KeyModifiers(chromedp.ModifierAlt)),
			until(`location.hash === '#/health'`), chromedp.WaitVisible(chromedp.ID("page-health")),
			until(`document.querySelectorAll('#health-table tbody tr').length === 5`))
		// The page shows what GET /api/v1/camera-status says.
		code, b := apiAs(t, srv, adminTok, "GET", "/api/v1/camera-status", "")
		var st struct {
			Cameras []struct {
				ID, Township, Village, State string
				Online                       bool
			}
		}
		if code != 200 || json.Unmarshal(b, &st) != nil || len(st.Cameras) != 5 {
			t.Fatalf("camera-status: %d %s", code, b)
		}
		rows := browseValue(t, ctx, 5*time.Second, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#health-table tbody tr')].map(r =>
			[r.dataset.camera, r.cells[1].textContent, r.cells[2].querySelector('[data-state]').dataset.state, r.cells[3].textContent !== '—'].join(' '))`))
		var want []string
		for _, c := range st.Cameras {
			place := c.Township
			if c.Village != "" {
				place += " / " + c.Village
			}
			want = append(want, fmt.Sprintf("%s %s %s %v", c.ID, place, c.State, c.Online))
		}
		slices.Sort(rows)
		slices.Sort(want)
		if !slices.Equal(rows, want) {
			t.Errorf("health rows %q, the API says %q", rows, want)
		}
		screenshot(t, ctx, "health")
	})

	t.Run("OperatorTownship", func(t *testing.T) {
		browse(t, ctx, 10*time.Second, chromedp.Click(chromedp.ID("logout")), chromedp.WaitVisible(chromedp.ID("login-user")))
		consoleLogin(t, ctx, srv, "li", consolePassword)
		browse(t, ctx, 30*time.Second, chromedp.Navigate(srv.base+"/#/live"))
		waitTree(t, ctx, 2)
		browse(t, ctx, 5*time.Second, chromedp.Sleep(time.Second))
		if got := treeCameras(t, ctx); !slices.Equal(got, []string{"cam1", "cam2"}) {
			t.Fatalf("operator of 会亭镇 sees %v", got)
		}
		nav := browseValue(t, ctx, 5*time.Second, chromedp.Evaluate[[]string](`[...document.querySelectorAll('.nav a')].map(a => a.dataset.route)`))
		if slices.Contains(nav, "audit") || slices.Contains(nav, "import") || !slices.Contains(nav, "live") {
			t.Errorf("operator navigation %v", nav)
		}
		// The page of another role is refused: back to the first allowed one.
		browse(t, ctx, 20*time.Second, chromedp.Navigate(srv.base+"/#/audit"), chromedp.WaitVisible(chromedp.ID("page-live")))
		// The API agrees: no other township's camera, no other user's layout.
		tok := loginToken(t, srv.base, "li", consolePassword)
		if code, b := apiAs(t, srv, tok, "GET", "/api/v1/cameras/cam3", ""); code != 403 {
			t.Errorf("operator of 会亭镇 GET cam3: %d %s", code, b)
		}
		code, b := apiAs(t, srv, tok, "GET", "/api/v1/camera-status", "")
		if code != 200 || !strings.Contains(string(b), `"cam1"`) || strings.Contains(string(b), `"cam3"`) || strings.Contains(string(b), `"cam4"`) {
			t.Errorf("operator of 会亭镇 camera-status: %d %s", code, b)
		}
		if code, b := apiAs(t, srv, tok, "GET", "/api/v1/layouts", ""); code != 200 || strings.Contains(string(b), "值班") {
			t.Errorf("li sees layouts %d %s", code, b)
		}
		if code, _ := apiAs(t, srv, tok, "DELETE", "/api/v1/layouts/"+url.PathEscape("值班"), ""); code != 404 {
			t.Errorf("li deletes zhang's layout: %d", code)
		}
	})

	t.Run("Installer", func(t *testing.T) {
		browse(t, ctx, 10*time.Second, chromedp.Click(chromedp.ID("logout")), chromedp.WaitVisible(chromedp.ID("login-user")))
		consoleLogin(t, ctx, srv, "wang", consolePassword)
		browse(t, ctx, 30*time.Second, chromedp.Navigate(srv.base+"/#/cameras"), chromedp.Click(chromedp.ID("camera-add")),
			chromedp.SendKeys(chromedp.CSS(`input[name=main_url]`), rtsp+"/cam2"),
			chromedp.Click(chromedp.ID("probe")),
			chromedp.WaitVisible(chromedp.ID("probe-snapshot")))
		if msg := browseValue(t, ctx, 5*time.Second, chromedp.Text(chromedp.ID("camera-msg"))); !strings.Contains(msg, "H264") && !strings.Contains(msg, "h264") {
			t.Errorf("probe message %q", msg)
		}
		screenshot(t, ctx, "camera-edit")
		// Saved with the next free device ID of its village: in the tree.
		browse(t, ctx, 30*time.Second,
			chromedp.SendKeys(chromedp.CSS(`input[name=name]`), "张庄村新点"),
			chromedp.SendKeys(chromedp.CSS(`input[name=township]`), "会亭镇"),
			chromedp.SendKeys(chromedp.CSS(`input[name=village]`), "张庄村"),
			chromedp.Click(chromedp.ID("next-id")),
			until(`/^[0-9]{20}$/.test(document.querySelector('input[name=id]').value)`),
			chromedp.Click(chromedp.ID("camera-save")),
			until(`document.getElementById('camera-msg').textContent === '已保存'`),
			until(`[...document.querySelectorAll('#camera-tree .cam')].some(e => e.textContent.includes('张庄村新点'))`))

		csv := "id,name,township,village,main_url,enabled\n" +
			"41142600001320001001,东门,会亭镇,东村,rtsp://127.0.0.1:9/a,false\n" +
			"41142600001320001002,西门,会亭镇,西村,rtsp://127.0.0.1:9/b,false\n" +
			"4114260000132000100,坏行,会亭镇,西村,rtsp://127.0.0.1:9/c,false\n"
		path := filepath.Join(t.TempDir(), "cameras.csv")
		if err := os.WriteFile(path, []byte(csv), 0o644); err != nil {
			t.Fatal(err)
		}
		browse(t, ctx, 30*time.Second, chromedp.Navigate(srv.base+"/#/import"),
			chromedp.SetUploadFiles(chromedp.ID("import-file"), []string{path}),
			chromedp.Click(chromedp.ID("import-run")),
			until(`document.querySelectorAll('#import-report tbody tr').length === 3`))
		outcomes := browseValue(t, ctx, 5*time.Second, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#import-report tbody tr')].map(r => r.cells[0].textContent + ':' + r.dataset.outcome)`))
		slices.Sort(outcomes)
		if want := []string{"2:created", "3:created", "4:failed"}; !slices.Equal(outcomes, want) {
			t.Errorf("import report %v, want %v", outcomes, want)
		}
		if p := browseValue(t, ctx, 5*time.Second, chromedp.Text(chromedp.ID("import-progress"))); p != "3 / 3 行" {
			t.Errorf("progress %q", p)
		}
		screenshot(t, ctx, "import")
		// The imported cameras are in the tree, found by their GB/T 28181 ID.
		browse(t, ctx, 30*time.Second, chromedp.Navigate(srv.base+"/#/cameras"))
		waitTree(t, ctx, 8)
		setSearch(t, ctx, "41142600001320001002")
		if got := treeCameras(t, ctx); !slices.Equal(got, []string{"41142600001320001002"}) {
			t.Errorf("search by device ID: %v", got)
		}
	})

	t.Run("Auditor", func(t *testing.T) {
		browse(t, ctx, 10*time.Second, chromedp.Click(chromedp.ID("logout")), chromedp.WaitVisible(chromedp.ID("login-user")))
		consoleLogin(t, ctx, srv, "zhao", consolePassword)
		browse(t, ctx, 30*time.Second, chromedp.Navigate(srv.base+"/#/audit"),
			until(`document.querySelectorAll('#audit-table tbody tr').length > 5`),
			chromedp.SendKeys(chromedp.ID("audit-user"), "wang"), chromedp.Click(chromedp.ID("audit-query")),
			chromedp.Sleep(500*time.Millisecond))
		users := browseValue(t, ctx, 5*time.Second, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#audit-table tbody tr')].map(r => r.cells[1].textContent)`))
		if len(users) == 0 || slices.ContainsFunc(users, func(u string) bool { return u != "wang" }) {
			t.Errorf("audit filtered by wang: %v", users)
		}
		// By camera.
		browse(t, ctx, 30*time.Second, chromedp.Evaluate[chromedp.Void](`(() => { document.getElementById('audit-user').value = '' })()`), chromedp.SendKeys(chromedp.ID("audit-camera"), "cam1"),
			chromedp.Click(chromedp.ID("audit-query")),
			until(`[...document.querySelectorAll('#audit-table tbody tr')].length > 0 && [...document.querySelectorAll('#audit-table tbody tr')].every(r => r.cells[5].textContent === 'cam1')`))
		browse(t, ctx, 30*time.Second, chromedp.Click(chromedp.ID("audit-verify-btn")),
			until(`document.getElementById('audit-verify').className === 'ok'`))
		entries := browseValue(t, ctx, 5*time.Second, chromedp.Evaluate[int](`Number(document.getElementById('audit-verify').dataset.entries)`))
		head := browseValue(t, ctx, 5*time.Second, chromedp.Evaluate[string](`document.getElementById('audit-verify').dataset.head`))
		if entries < 20 || len(head) != 64 {
			t.Errorf("verify shows %d entries, head %q", entries, head)
		}
		screenshot(t, ctx, "audit")
	})
}
