package main

// The web console against the real server + camsim: one server per test
// function, pages as subtests; every page leaves its 1920×1080 screenshot
// in docs/screenshots/.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
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
	t.Parallel() // waits on real time mostly
	rtsp, _ := startCamsim(t, "-cameras", "4")
	names := []string{"会亭镇村口", "会亭镇十字路口", "济阳镇广场", "济阳镇学校门口"}
	var cams strings.Builder
	for i := 1; i <= 4; i++ {
		town := "会亭镇"
		if i > 2 {
			town = "济阳镇"
		}
		fmt.Fprintf(&cams, "  - id: cam%d\n    name: %s\n    url: %s/cam%d\n    township: %s\n", i, names[i-1], rtsp, i, town)
	}
	cams.WriteString("    motion: true\n") // cam4 analyses motion
	srv := startServer(t, "recording:\n  segment_duration: 4s\ncameras:\n"+cams.String())
	for i := 1; i <= 4; i++ {
		waitLive(t, srv, fmt.Sprintf("cam%d", i))
	}
	addConsoleUser(t, srv, "zhang", "admin")
	addConsoleUser(t, srv, "li", "operator", "会亭镇")
	addConsoleUser(t, srv, "wang", "installer")
	addConsoleUser(t, srv, "zhao", "auditor")
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
		waitTree(t, ctx, 4)
		if got := treeCameras(t, ctx); !slices.Equal(got, []string{"cam1", "cam2", "cam3", "cam4"}) {
			t.Fatalf("tree shows %v", got)
		}
		browse(t, ctx, 30*time.Second, until(`document.querySelectorAll('#camera-tree [data-state=recording]').length === 4`))
		towns := browseValue(t, ctx, 5*time.Second, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#camera-tree .township')].map(e => e.dataset.township)`))
		if !slices.Equal(towns, []string{"会亭镇", "济阳镇"}) {
			t.Errorf("townships %v", towns)
		}
		// Search by name, then by ID.
		browse(t, ctx, 10*time.Second, chromedp.SendKeys(chromedp.ID("tree-search"), "广场"))
		if got := treeCameras(t, ctx); !slices.Equal(got, []string{"cam3"}) {
			t.Errorf("search 广场: %v", got)
		}
		browse(t, ctx, 10*time.Second, chromedp.Clear(chromedp.ID("tree-search")), chromedp.SendKeys(chromedp.ID("tree-search"), "cam4"))
		if got := treeCameras(t, ctx); !slices.Equal(got, []string{"cam4"}) {
			t.Errorf("search cam4: %v", got)
		}
		browse(t, ctx, 10*time.Second, chromedp.Clear(chromedp.ID("tree-search")), chromedp.SendKeys(chromedp.ID("tree-search"), " "), chromedp.Clear(chromedp.ID("tree-search")))
		waitTree(t, ctx, 4)
		browse(t, ctx, 20*time.Second, chromedp.Click(chromedp.CSS(`#camera-tree .cam[data-camera="cam1"]`)), chromedp.WaitVisible(chromedp.ID("camera-snapshot")))
		screenshot(t, ctx, "cameras")
	})

	t.Run("Live", func(t *testing.T) {
		browse(t, ctx, 30*time.Second, chromedp.Navigate(srv.base+"/#/live"), chromedp.Click(chromedp.CSS(`[data-grid="4"]`)))
		waitTree(t, ctx, 4)
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
		// Double-click enlarges a tile on the main stream.
		browse(t, ctx, 20*time.Second, chromedp.DoubleClick(chromedp.CSS(`[data-tile="1"]`)),
			until(`document.querySelector('[data-tile="1"]').classList.contains('big') && document.querySelector('[data-tile="1"] .tile-label').textContent.includes('主码流')`))
		// A saved layout comes back from the server.
		browse(t, ctx, 20*time.Second, chromedp.Click(chromedp.CSS(`[data-grid="4"]`)),
			chromedp.SendKeys(chromedp.ID("layout-name"), "值班"),
			chromedp.Click(chromedp.ID("save-layout")),
			until(`[...document.querySelectorAll('#layouts option')].some(o => o.value === '值班')`))
	})

	t.Run("Health", func(t *testing.T) {
		browse(t, ctx, 30*time.Second, chromedp.Navigate(srv.base+"/#/health"),
			until(`document.querySelectorAll('#health-table tbody tr').length === 4`))
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
		browse(t, ctx, 30*time.Second, chromedp.Click(chromedp.ID("audit-verify-btn")),
			until(`document.getElementById('audit-verify').className === 'ok'`))
		screenshot(t, ctx, "audit")
	})
}
