package main

// The motion search and exports pages in chromium against the real server
// and camsim playing a scripted scene (scripts/gen-motion-scene.sh): a
// region drawn with the mouse on the snapshot finds exactly the scripted
// object crossing it and nothing elsewhere; an export started on the page
// runs to done and its package, fetched from the URL the page shows, passes
// `xueliang export verify`.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"xueliang/ingest/motion"
)

// crossing returns the scene's objects whose box meets the rectangle
// [x0,x1]×[y0,y1] (normalised) at some time in [from, to], as absolute
// intervals (their whole time on screen).
func crossing(objects []sceneObject, t0, from, to time.Time, x0, y0, x1, y1 float64) [][2]time.Time {
	var out [][2]time.Time
	for _, o := range objects {
		for _, p := range o.Path {
			at := t0.Add(time.Duration(p[0] * float64(time.Second)))
			if at.Before(from) || at.After(to) || p[3] <= 0 || p[4] <= 0 {
				continue
			}
			if p[1] < x1 && p[1]+p[3] > x0 && p[2] < y1 && p[2]+p[4] > y0 {
				out = append(out, [2]time.Time{t0.Add(time.Duration(o.Start * float64(time.Second))), t0.Add(time.Duration(o.End * float64(time.Second)))})
				break
			}
		}
	}
	return out
}

// waitPage waits until expr is true in the page; when it is not in time
// the test fails with the value of diag (an expression describing the
// page's state).
func waitPage(t *testing.T, ctx context.Context, expr, diag string, timeout time.Duration) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := chromedp.Do(tctx, until(expr)); err != nil {
		state := browseValue(t, ctx, 10*time.Second, chromedp.Evaluate[any](diag))
		t.Fatalf("waiting for %s: %v; page: %v", expr, err, state)
	}
}

// runJS evaluates the expression in the page for its effect.
func runJS(expr string) chromedp.Action[chromedp.Void] {
	e := chromedp.Evaluate[any](expr)
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := e(ctx, t)
		return chromedp.Void{}, err
	}
}

// localValue is t for an <input type=datetime-local> (the browser runs in
// this process's time zone).
// localValue is t as an <input type=datetime-local step=1> holds it: local
// time to the second, in the browser's normalised form, which leaves out
// zero seconds ("…T20:17", not "…T20:17:00"). chromedp.SetValue reads the
// value back and fails on any other spelling.
func localValue(t time.Time) string {
	t = t.Local()
	if t.Second() == 0 {
		return t.Format("2006-01-02T15:04")
	}
	return t.Format("2006-01-02T15:04:05")
}

func TestWebUISearchExports(t *testing.T) {
	t.Parallel() // waits on real time mostly
	sceneTS, objects := ensureMotionScene(t, "objects-640")
	rtsp, t0 := startCamsim(t, "-cameras", "1", "-camera", "scene:clip="+sceneTS+",size=640x360")
	srv := startServer(t, fmt.Sprintf(`recording:
  segment_duration: 4s
cameras:
  - id: scene
    name: 会亭镇村口
    township: 会亭镇
    url: %[1]s/scene
    sub_url: %[1]s/scene
    motion: true
`, rtsp))
	ctx := consoleBrowser(t) // starts while the scene plays

	// The judged window: after warm-up, car1 crosses the middle lane
	// (11.0–14.7 s); nothing crosses the top lane (person1 left it by
	// 6.6 s: with whole seconds and the intervals' 2 s post-pad its motion
	// can reach 9.x s, so the window starts after 10 s; small1 enters the
	// bottom lane at 19 s). Motion is stored per minute: stop the server
	// after the window so it writes what is in progress.
	from, to := t0.Add(11*time.Second).Truncate(time.Second), t0.Add(17*time.Second).Truncate(time.Second)
	time.Sleep(time.Until(t0.Add(18500 * time.Millisecond)))
	srv.proc.stop()
	srv.start(t)

	// Regions with edges between the 4×4 sample points of the 32×18 grid
	// (x in 1/128, y in 1/72), so a pixel of mouse rounding changes no cell.
	middle := [][2]float64{{4. / 128, 29. / 72}, {124. / 128, 29. / 72}, {124. / 128, 44. / 72}, {4. / 128, 44. / 72}}
	top := [][2]float64{{4. / 128, 6. / 72}, {124. / 128, 6. / 72}, {124. / 128, 20. / 72}, {4. / 128, 20. / 72}}
	inMiddle := crossing(objects, t0, from, to, middle[0][0], middle[0][1], middle[2][0], middle[2][1])
	if n := len(crossing(objects, t0, from, to, top[0][0], top[0][1], top[2][0], top[2][1])); len(inMiddle) == 0 || n != 0 {
		t.Fatalf("scene script: %d objects cross the middle band, %d the top band in the window; want some and none", len(inMiddle), n)
	}

	// An evidence lock to list (and unlock) on the exports page, made
	// while the bootstrap token works (until an admin exists).
	var lock struct{ ID int64 }
	if code := doJSON(t, "POST", srv.base+"/api/v1/evidence", map[string]any{"cameras": []string{"scene"}, "from": from, "to": to,
		"case_number": "夏公刑(2026)118号", "reason": "村口纠纷"}, &lock); code/100 != 2 || lock.ID == 0 {
		t.Fatalf("create evidence lock: %d %+v", code, lock)
	}
	if code := doJSON(t, "POST", srv.base+"/api/v1/users", map[string]any{"name": "zhang", "role": "admin", "password": "a long console password"}, nil); code != http.StatusCreated {
		t.Fatalf("create user: %d", code)
	}
	consoleLogin(t, ctx, srv, "zhang", "a long console password")

	t.Run("Search", func(t *testing.T) {
		browse(t, ctx, 60*time.Second,
			chromedp.Navigate(srv.base+"/#/search"),
			chromedp.WaitVisible(chromedp.CSS(`#camera-tree .cam[data-camera="scene"]`)))
		// The scene keeps crossing the picture (a 68 s loop, a gap of at
		// most 5 s between objects): the tree marks the camera "motion now".
		waitPage(t, ctx, `document.querySelector('#camera-tree .cam[data-camera="scene"] [data-motion]') !== null`,
			`document.querySelector('#camera-tree .cam[data-camera="scene"]').outerHTML`, 40*time.Second)
		browse(t, ctx, 60*time.Second,
			chromedp.Click(chromedp.CSS(`#camera-tree .cam[data-camera="scene"]`)),
			until(`document.getElementById('search-snapshot').naturalWidth > 0`),
			chromedp.SetValue(chromedp.ID("search-from"), localValue(from)),
			chromedp.SetValue(chromedp.ID("search-to"), localValue(to)),
		)
		// draw clicks the polygon's corners on the picture; the last one
		// first lands off by a tenth of the picture and is dragged home.
		draw := func(poly [][2]float64) {
			t.Helper()
			r := browseValue(t, ctx, 10*time.Second, chromedp.Evaluate[[]float64](`(() => { const r = document.getElementById('search-stage').getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; })()`))
			at := func(p [2]float64) (float64, float64) { return r[0] + p[0]*r[2], r[1] + p[1]*r[3] }
			acts := []chromedp.Action[chromedp.Void]{chromedp.Click(chromedp.ID("search-clear"))}
			for _, p := range poly[:len(poly)-1] {
				x, y := at(p)
				acts = append(acts, chromedp.MouseClickXY(x, y))
			}
			last := poly[len(poly)-1]
			wx, wy := at([2]float64{last[0] + 0.1, last[1] - 0.1})
			x, y := at(last)
			acts = append(acts, chromedp.MouseClickXY(wx, wy),
				chromedp.MouseEvent(chromedp.MousePressed, wx, wy, chromedp.ButtonLeft, chromedp.ClickCount(1)),
				chromedp.MouseEvent(chromedp.MouseMoved, (wx+x)/2, (wy+y)/2, chromedp.ButtonLeft),
				chromedp.MouseEvent(chromedp.MouseMoved, x, y, chromedp.ButtonLeft),
				chromedp.MouseEvent(chromedp.MouseReleased, x, y, chromedp.ButtonLeft, chromedp.ClickCount(1)))
			browse(t, ctx, 20*time.Second, acts...)
			// The page's cells are the server's cells of that polygon.
			got := browseValue(t, ctx, 5*time.Second, chromedp.Evaluate[string](`document.getElementById('search-region').dataset.cells`))
			g := motion.MaskFromPolygon(poly, motion.SummaryCols, motion.SummaryRows)
			var want []string
			for row := range motion.SummaryRows {
				for col := range motion.SummaryCols {
					if g.Get(col, row) {
						want = append(want, strconv.Itoa(row*motion.SummaryCols+col))
					}
				}
			}
			if got != strings.Join(want, ",") {
				t.Fatalf("region cells on the page %q, want MaskFromPolygon's %q", got, strings.Join(want, ","))
			}
		}
		// search runs it and returns the hits the page lists.
		search := func() [][2]time.Time {
			t.Helper()
			browse(t, ctx, 10*time.Second,
				runJS(`delete document.getElementById('search-status').dataset.hits`),
				chromedp.Click(chromedp.ID("search-run")))
			waitPage(t, ctx, `document.getElementById('search-status').dataset.hits !== undefined`,
				`[document.getElementById('search-status').textContent, document.getElementById('search-run').disabled, document.getElementById('search-region-info').textContent]`, 50*time.Second)
			rows := browseValue(t, ctx, 5*time.Second, chromedp.Evaluate[[][]string](`[...document.querySelectorAll('#search-hits tr')].map(r => [r.dataset.start, r.dataset.end])`))
			strip := browseValue(t, ctx, 5*time.Second, chromedp.Evaluate[int](`document.querySelectorAll('#search-strip .hit').length`))
			if strip != len(rows) {
				t.Errorf("%d hits on the strip, %d in the list", strip, len(rows))
			}
			var out [][2]time.Time
			for _, r := range rows {
				s, err1 := time.Parse(time.RFC3339Nano, r[0])
				e, err2 := time.Parse(time.RFC3339Nano, r[1])
				if err1 != nil || err2 != nil {
					t.Fatalf("hit row %v", r)
				}
				out = append(out, [2]time.Time{s, e})
			}
			return out
		}

		draw(middle)
		hits := search()
		if p, r := matchOneToOne(hits, inMiddle); p < 1 || r < 1 || len(hits) == 0 {
			t.Fatalf("middle band: hits %v, want exactly the scripted crossings %v (precision %.2f recall %.2f)", hits, inMiddle, p, r)
		}
		// A click on the first hit plays its window in the page.
		browse(t, ctx, 10*time.Second, chromedp.Click(chromedp.CSS(`#search-hits tr[data-hit="0"]`)))
		waitPage(t, ctx, `(() => { const v = document.getElementById('search-video'); return v.dataset.hit === '0' && !v.paused && v.currentTime > 0.3 && v.videoWidth === 640; })()`,
			`(() => { const v = document.getElementById('search-video'); return [v.dataset.hit, v.paused, v.currentTime, v.videoWidth, v.error && v.error.code, document.getElementById('search-playing').textContent]; })()`,
			30*time.Second)
		dur := browseValue(t, ctx, 5*time.Second, chromedp.Evaluate[float64](`document.getElementById('search-video').duration`))
		if want := hits[0][1].Sub(hits[0][0]).Seconds(); dur < want-2.5 || dur > want+2.5 {
			t.Errorf("played %.1f s for a hit of %.1f s", dur, want)
		}
		screenshot(t, ctx, "search")

		draw(top)
		if hits := search(); len(hits) != 0 {
			t.Errorf("top band: hits %v, want none", hits)
		}
		if n := browseValue(t, ctx, 5*time.Second, chromedp.Evaluate[int](`document.querySelectorAll('#search-strip .hit').length`)); n != 0 {
			t.Errorf("%d hits on the strip for the top band", n)
		}
	})

	t.Run("Exports", func(t *testing.T) {
		exFrom, exTo := t0.Add(6*time.Second).Truncate(time.Second), t0.Add(16*time.Second).Truncate(time.Second)
		browse(t, ctx, 30*time.Second,
			chromedp.Navigate(srv.base+"/#/exports"),
			chromedp.WaitVisible(chromedp.CSS(`#export-cameras input[data-camera="scene"]`)))
		// A whole minute, which the browser spells without seconds, is set
		// every run (a CI run once failed on the 1-in-60 case).
		whole := exFrom.Truncate(time.Minute)
		browse(t, ctx, 5*time.Second, chromedp.SetValue(chromedp.ID("export-from"), localValue(whole)))
		if ms := browseValue(t, ctx, 5*time.Second, chromedp.Evaluate[float64](`new Date(document.getElementById('export-from').value).getTime()`)); int64(ms) != whole.UnixMilli() {
			t.Fatalf("export-from holds %v, want %v", time.UnixMilli(int64(ms)), whole)
		}
		browse(t, ctx, 30*time.Second,
			chromedp.Click(chromedp.CSS(`#export-cameras input[data-camera="scene"]`)),
			chromedp.SetValue(chromedp.ID("export-from"), localValue(exFrom)),
			chromedp.SetValue(chromedp.ID("export-to"), localValue(exTo)),
			chromedp.Click(chromedp.ID("export-create")))
		waitPage(t, ctx, `document.querySelector('#export-jobs tr[data-state="done"] [data-action=download]') !== null`,
			`[document.getElementById('export-msg').textContent, document.getElementById('export-jobs').innerText]`, 60*time.Second)
		waitPage(t, ctx, fmt.Sprintf(`document.querySelector('#evidence-locks tr[data-lock="%d"]') !== null`, lock.ID),
			`[document.getElementById('evidence-msg')?.textContent, document.getElementById('evidence-locks')?.innerText]`, 15*time.Second)
		if s := browseValue(t, ctx, 5*time.Second, chromedp.Evaluate[string](`[...document.querySelectorAll('#export-jobs tr')].map(r => r.dataset.state).join(',')`)); s != "done" {
			t.Errorf("job states on the page %q, want one done", s)
		}
		screenshot(t, ctx, "exports")

		// The package from the URL the page shows, with the page's session.
		u := browseValue(t, ctx, 5*time.Second, chromedp.Evaluate[string](`document.querySelector('#export-jobs [data-action=download]').dataset.url`))
		tok := browseValue(t, ctx, 5*time.Second, chromedp.Evaluate[string](`sessionStorage.getItem('xl.token')`))
		req, err := http.NewRequest("GET", srv.base+u, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		zb, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/zip" {
			t.Fatalf("GET %s: %d %q %v", u, resp.StatusCode, resp.Header.Get("Content-Type"), err)
		}
		zipPath := filepath.Join(t.TempDir(), "export.zip")
		if err := os.WriteFile(zipPath, zb, 0o644); err != nil {
			t.Fatal(err)
		}
		fp := browseValue(t, ctx, 5*time.Second, chromedp.Evaluate[string](`document.getElementById('export-key').dataset.fingerprint`))
		if code, out, errOut := runCLI(t, "export", "verify", zipPath); code != 0 || !strings.Contains(out, "export package OK") || fp == "" || !strings.Contains(out, fp) {
			t.Errorf("export verify: exit %d, fingerprint on the page %q\n%s%s", code, fp, out, errOut)
		}

		// Delete the package; unlock the evidence (admin, two clicks).
		browse(t, ctx, 30*time.Second,
			chromedp.Click(chromedp.CSS(`#export-jobs tr[data-state="done"] [data-action=cancel]`)),
			chromedp.WaitVisible(chromedp.CSS(`#export-jobs tr[data-state="cancelled"]`)),
			chromedp.Click(chromedp.CSS(fmt.Sprintf(`#evidence-locks tr[data-lock="%d"] [data-action=unlock]`, lock.ID))),
			chromedp.Click(chromedp.CSS(fmt.Sprintf(`#evidence-locks tr[data-lock="%d"] [data-action=unlock]`, lock.ID))),
			until(fmt.Sprintf(`document.querySelector('#evidence-locks tr[data-lock="%d"]') === null`, lock.ID)))
		// Listed again with the ended locks: ended by zhang.
		browse(t, ctx, 20*time.Second,
			chromedp.Click(chromedp.ID("evidence-all")),
			until(fmt.Sprintf(`document.querySelector('#evidence-locks tr[data-lock="%d"][data-active="false"]') !== null`, lock.ID)))
		if s := browseValue(t, ctx, 5*time.Second, chromedp.Text(chromedp.CSS(fmt.Sprintf(`#evidence-locks tr[data-lock="%d"]`, lock.ID)))); !strings.Contains(s, "zhang") {
			t.Errorf("ended lock row %q does not name zhang", s)
		}
	})
}
