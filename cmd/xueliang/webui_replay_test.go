package main

// The replay page (#/replay) in chromium against the real server and
// camsim: a replay at a chosen instant shows the frame at that instant
// (identified by picture against ffmpeg's decode of the server's replay,
// whose frames carry camsim's SEI stamps), a click on the timeline seeks
// there, four cameras replayed together stay within a frame of each other
// after a seek, a timeline selection becomes an export job and an evidence
// lock; the timeline's render time is measured on synthetic data.

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"math/rand/v2"
	"net/url"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"xueliang/index"
)

// tileThumbJS returns the thumbnail (browserFrame) of what tile %d's video
// shows, computed as browser_test.go's page does (blockLumaJS over the
// canvas pixels, thumbBlock blocks).
const tileThumbJS = `(() => {
  const v = document.querySelector('.tile[data-tile="%d"] video');
  const W = v.videoWidth, H = v.videoHeight, B = %d;
  const c = document.createElement('canvas'); c.width = W; c.height = H;
  const g = c.getContext('2d', {willReadFrequently: true});
  g.drawImage(v, 0, 0, W, H);
  const l = blockLuma(g.getImageData(0, 0, W, H).data, W, H, B);
  return {t: v.currentTime, pf: 0, px: l.px, w: l.w};
  ` + blockLumaJS + `
})()`

// waitTiles waits until the first n tiles have loaded their window and
// show a frame (not seeking), steadily; on timeout it fails with every
// tile's state.
func waitTiles(t *testing.T, ctx context.Context, n int, timeout time.Duration) {
	t.Helper()
	js := fmt.Sprintf(`[...document.querySelectorAll('.tile')].slice(0, %d).map(t => { const v = t.querySelector('video');
  return {state: t.dataset.state || '', label: t.querySelector('.tile-label').textContent, rs: v.readyState, ns: v.networkState,
    seeking: v.seeking, err: v.error ? v.error.code + ' ' + v.error.message : ''}; })`, n)
	type st struct {
		State, Label, Err string
		RS, NS            int
		Seeking           bool
	}
	deadline := time.Now().Add(timeout)
	for stable := 0; ; {
		sts := browseValue(t, ctx, 10*time.Second, chromedp.Evaluate[[]st](js))
		ok := len(sts) == n
		for _, s := range sts {
			ok = ok && s.State == "ready" && s.RS >= 2 && !s.Seeking
		}
		// Ready in three polls in a row (300 ms, longer than the sync
		// group's 100 ms check that may still move a tile).
		if stable = map[bool]int{true: stable + 1, false: 0}[ok]; stable >= 3 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("tiles not ready after %v: %+v", timeout, sts)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func waitJS(t *testing.T, ctx context.Context, timeout time.Duration, expr string) {
	t.Helper()
	browseValue(t, ctx, timeout, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(50*time.Millisecond)))
}

// replayStarts returns the start of every replay the console asked the
// server for (its audit log: those with a ticket), oldest first.
func replayStarts(t *testing.T, srv *testServer, cam string) []time.Time {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(srv.dataDir, "index.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT path FROM audit WHERE path LIKE ? ORDER BY id`, "/api/v1/cameras/"+cam+"/replay.mp4?%")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []time.Time
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			t.Fatal(err)
		}
		u, err := url.Parse(p)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(u.RawQuery, "ticket=") {
			continue // the test's own reference replays (bearer token)
		}
		if u.Query().Get("ticket") != "redacted" {
			t.Errorf("audited replay path %q: the ticket is not redacted", p)
		}
		s, err := time.Parse(time.RFC3339Nano, u.Query().Get("start"))
		if err != nil {
			t.Fatalf("audited replay path %q: %v", p, err)
		}
		out = append(out, s)
	}
	return out
}

// tileFrame identifies the frame tile shows (by thumbnail against
// ffmpeg's decode of the server's replay of cam from at) and returns it with
// the frame at at: the frame ffmpeg shows first in that replay (the frame
// at start, TestReplayFirstFrame).
func tileFrame(t *testing.T, ctx context.Context, srv *testServer, what, cam string, tile int, at time.Time) (shown, want judgedFrame, mediaTime float64) {
	t.Helper()
	r := fetchReplay(t, srv, cam, at, at.Add(1500*time.Millisecond), false)
	j := judgeMP4(t, r.path)
	if len(j.Shown) == 0 {
		t.Fatalf("%s: ffmpeg shows no frame of the reference replay", what)
	}
	f := browseValue(t, ctx, 10*time.Second, chromedp.Evaluate[browserFrame](fmt.Sprintf(tileThumbJS, tile, thumbBlock)))
	return browserFrames(t, what, j, browserResult{Rest: &f})[0], j.Shown[0], f.MediaTime
}

// checkTileFrame asserts tile shows the frame at instant at of cam.
func checkTileFrame(t *testing.T, ctx context.Context, srv *testServer, what, cam string, tile int, at time.Time) {
	t.Helper()
	shown, want, mt := tileFrame(t, ctx, srv, what, cam, tile, at)
	if shown.Stamp.Seq != want.Stamp.Seq {
		t.Errorf("%s: the tile shows seq %d (captured %s; media time %.3f), want seq %d (captured %s), the frame at %s", what,
			shown.Stamp.Seq, shown.Stamp.Captured.Format("15:04:05.000"), mt, want.Stamp.Seq,
			want.Stamp.Captured.Format("15:04:05.000"), at.Format("15:04:05.000"))
	}
}

// timelinePoint returns the page coordinates of instant at on row of the
// timeline canvas.
func timelinePoint(t *testing.T, ctx context.Context, at time.Time, row int) (float64, float64) {
	t.Helper()
	var g struct{ Left, Top, Width, From, To, LabelW float64 }
	g = browseValue(t, ctx, 10*time.Second, chromedp.Evaluate[struct{ Left, Top, Width, From, To, LabelW float64 }](
		// After two frames: the canvas's data-from/to are those of the
		// last drawing (coalesced into an animation frame).
		`new Promise(ok => requestAnimationFrame(() => requestAnimationFrame(() => {
  const c = document.querySelector('.timeline-canvas'), r = c.getBoundingClientRect();
  ok({Left: r.left, Top: r.top, Width: r.width, From: +c.dataset.from, To: +c.dataset.to, LabelW: +c.dataset.labelw}); })))`, chromedp.EvalAwaitPromise))
	ms := float64(at.UnixNano()) / 1e6
	if ms < g.From || ms > g.To {
		t.Fatalf("%s is not in the timeline's view [%v, %v]", at, g.From, g.To)
	}
	return g.Left + g.LabelW + (ms-g.From)/(g.To-g.From)*(g.Width-g.LabelW), g.Top + 26 + 30*float64(row) + 12
}

// shiftDrag selects [a, b] on the timeline with Shift+drag.
func shiftDrag(t *testing.T, ctx context.Context, a, b time.Time) {
	t.Helper()
	x1, y := timelinePoint(t, ctx, a, 0)
	x2, _ := timelinePoint(t, ctx, b, 0)
	shift := chromedp.ButtonModifiers(kb.ModifierShift)
	browse(t, ctx, 10*time.Second,
		chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, x1, y, shift),
		chromedp.MouseEvent(input.DispatchMouseEventTypeMousePressed, x1, y, chromedp.ButtonLeft, shift),
		chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, (x1+x2)/2, y, chromedp.ButtonLeft, shift),
		chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, x2, y, chromedp.ButtonLeft, shift),
		chromedp.MouseEvent(input.DispatchMouseEventTypeMouseReleased, x2, y, chromedp.ButtonLeft, shift),
	)
}

// tileWalls samples the presented wall-clock time of the first n tiles
// (window start + currentTime, read in one task) every 100 ms, count
// times, and returns each sample's spread (max − min) in ms.
func tileWalls(t *testing.T, ctx context.Context, n, count int) []float64 {
	t.Helper()
	js := fmt.Sprintf(`new Promise(ok => { const out = []; const iv = setInterval(() => {
  const ws = [...document.querySelectorAll('.tile')].slice(0, %d).map(t => +t.dataset.wall);
  out.push(Math.max(...ws) - Math.min(...ws));
  if (out.length >= %d) { clearInterval(iv); ok(out); } }, 100); })`, n, count)
	return browseValue(t, ctx, 30*time.Second, chromedp.Evaluate[[]float64](js, chromedp.EvalAwaitPromise))
}

func TestWebUIReplay(t *testing.T) {
	t.Parallel() // mostly waits for footage to be recorded
	// cam5's sessions are dropped every 5 s: gaps in its recording (the
	// reconnection, then the wait for a keyframe).
	rtsp, camStart := startCamsim(t, "-cameras", "5", "-camera", "cam5:drop=5s")
	var cams strings.Builder
	for i := 1; i <= 5; i++ {
		fmt.Fprintf(&cams, "  - id: cam%d\n    name: 回放%d\n    township: 会亭镇\n    url: %s/cam%d\n", i, i, rtsp, i)
	}
	// Four synchronized replays plus the ones being replaced after a seek,
	// within http.replay_per_user's default.
	srv := startServer(t, "cameras:\n"+cams.String())
	propertyUser(t, srv.base, "operator") // not an admin: the bootstrap token (the helpers') keeps working
	time.Sleep(14 * time.Second)
	recEnd := time.Now().Add(-2 * time.Second)
	db, err := index.Open(context.Background(), filepath.Join(srv.dataDir, "index.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rng := rand.New(rand.NewPCG(20, uint64(time.Now().UnixNano())))
	wins := midGOPWindows(t, db, "cam1", camStart, recEnd, 2, 2400*time.Millisecond, rng)

	ctx := consoleBrowser(t)
	consoleLogin(t, ctx, srv, "prop-operator", "property test password operator")
	iso := func(at time.Time) string { return at.UTC().Format("2006-01-02T15:04:05.000Z") }

	t.Run("instant", func(t *testing.T) {
		at := wins[0][0].Truncate(time.Millisecond)
		browse(t, ctx, 30*time.Second, chromedp.Navigate(srv.base+"/#/replay?grid=1&cams=cam1&t="+iso(at)))
		waitTiles(t, ctx, 1, 30*time.Second)
		starts := replayStarts(t, srv, "cam1")
		if len(starts) == 0 || !starts[len(starts)-1].Equal(at) {
			t.Fatalf("replays asked of the server: %v, want the last from %s", starts, at)
		}
		checkTileFrame(t, ctx, srv, "replay at "+iso(at), "cam1", 0, at)
		screenshot(t, ctx, "replay")

		// → steps one frame (40 ms at 25 fps): the next frame is shown.
		browse(t, ctx, 10*time.Second, chromedp.KeyEvent(kb.ArrowRight))
		waitTiles(t, ctx, 1, 20*time.Second)
		wall := browseValue(t, ctx, 10*time.Second, chromedp.Evaluate[float64](`+document.getElementById('replay-clock').dataset.wall`))
		next := time.UnixMicro(int64(math.Round(wall * 1000)))
		if d := next.Sub(at); d < 39*time.Millisecond || d > 41*time.Millisecond {
			t.Fatalf("a frame step moved the clock by %v, want 40ms", d)
		}
		checkTileFrame(t, ctx, srv, "frame step to "+iso(next), "cam1", 0, next)
		// ← steps back to the frame at the instant.
		browse(t, ctx, 10*time.Second, chromedp.KeyEvent(kb.ArrowLeft))
		waitTiles(t, ctx, 1, 20*time.Second)
		checkTileFrame(t, ctx, srv, "frame step back to "+iso(at), "cam1", 0, at)
		wall = browseValue(t, ctx, 10*time.Second, chromedp.Evaluate[float64](`+document.getElementById('replay-clock').dataset.wall`))

		// ↑↑ → 4×: a second and a half of play covers about 6 s.
		browse(t, ctx, 10*time.Second, chromedp.KeyEvent(kb.ArrowUp), chromedp.KeyEvent(kb.ArrowUp))
		waitJS(t, ctx, 5*time.Second, `!!document.querySelector('button[data-speed="4"].active')`)
		browse(t, ctx, 10*time.Second, chromedp.KeyEvent(" "), chromedp.Sleep(1500*time.Millisecond))
		// The element's rate while playing (nudged by at most ±50 % by the
		// sync check, which holds it at 4 when on time).
		rate := browseValue(t, ctx, 10*time.Second, chromedp.Evaluate[float64](`document.querySelector('.tile video').playbackRate`))
		browse(t, ctx, 10*time.Second, chromedp.KeyEvent(" "))
		wall2 := browseValue(t, ctx, 10*time.Second, chromedp.Evaluate[float64](`+document.getElementById('replay-clock').dataset.wall`))
		// Loose: the clock holds while the tile loads, and the key events
		// themselves take time on a loaded machine.
		if d := time.Duration((wall2 - wall) * 1e6); d < 3*time.Second || d > 8*time.Second || rate < 2 || rate > 6 {
			t.Errorf("4× for 1.5 s moved the clock by %v (playbackRate %v), want about 6 s", d, rate)
		}
		browse(t, ctx, 10*time.Second, chromedp.KeyEvent(kb.ArrowDown), chromedp.KeyEvent(kb.ArrowDown))
	})

	t.Run("date picker", func(t *testing.T) {
		// The picker is in the browser's local time (the test process's
		// zone, which chromium inherits), to the second.
		at := wins[1][0].Add(-time.Second).Truncate(time.Second)
		browse(t, ctx, 10*time.Second,
			chromedp.SetValue(chromedp.ID("replay-date"), localValue(at)),
			chromedp.Click(chromedp.ID("replay-go")))
		waitTiles(t, ctx, 1, 30*time.Second)
		wall := browseValue(t, ctx, 10*time.Second, chromedp.Evaluate[float64](`+document.getElementById('replay-clock').dataset.wall`))
		if int64(wall) != at.UnixMilli() {
			t.Fatalf("jumped to %s, the clock shows %v", iso(at), wall)
		}
		checkTileFrame(t, ctx, srv, "date picker "+iso(at), "cam1", 0, at)
	})

	t.Run("click seeks", func(t *testing.T) {
		target := wins[1][0]
		x, y := timelinePoint(t, ctx, target, 0)
		browse(t, ctx, 10*time.Second, chromedp.MouseClickXY(x, y))
		waitTiles(t, ctx, 1, 30*time.Second)
		// The clock is where the click was (one pixel of the hour-wide
		// view is about 2 s); the tile shows the frame at the clock, from
		// what it had buffered or from a new window.
		wall := browseValue(t, ctx, 10*time.Second, chromedp.Evaluate[float64](`+document.getElementById('replay-clock').dataset.wall`))
		at := time.UnixMicro(int64(math.Round(wall * 1000)))
		if d := at.Sub(target); d < -3*time.Second || d > 3*time.Second {
			t.Fatalf("clicked at %s, the clock shows %s", target.Format("15:04:05.000"), at.Format("15:04:05.000"))
		}
		tw := browseValue(t, ctx, 10*time.Second, chromedp.Evaluate[float64](`+document.querySelector('.tile[data-tile="0"]').dataset.wall`))
		if math.Abs(tw-wall) > 2 { // the tile seeks 1 ms past the clock (player.ts)
			t.Errorf("the tile's playhead is at %.1f, the clock at %.1f", tw, wall)
		}
		checkTileFrame(t, ctx, srv, "click at "+iso(at), "cam1", 0, at)
	})

	t.Run("sync", func(t *testing.T) {
		at := wins[1][0].Add(-2 * time.Second).Truncate(time.Millisecond)
		browse(t, ctx, 30*time.Second, chromedp.Navigate(srv.base+"/#/replay?grid=4&cams=cam1,cam2,cam3,cam4&t="+iso(at)))
		waitTiles(t, ctx, 4, 40*time.Second)
		for i := 1; i <= 4; i++ {
			if s := replayStarts(t, srv, fmt.Sprintf("cam%d", i)); len(s) == 0 || !s[len(s)-1].Equal(at) {
				t.Errorf("cam%d: replays asked %v, want the last from %s", i, s, iso(at))
			}
		}
		browse(t, ctx, 10*time.Second, chromedp.KeyEvent(" "))
		waitJS(t, ctx, 10*time.Second, `document.getElementById('replay-play').dataset.playing === 'true'`)
		check := func(what string) {
			t.Helper()
			time.Sleep(2 * time.Second)
			spread := tileWalls(t, ctx, 4, 20)
			t.Logf("%s: spread of the 4 tiles' presented wall-clock times (ms) every 100 ms: %.1f", what, spread)
			// After the first second every sample is within one frame (40 ms).
			for i, s := range spread[10:] {
				if math.IsNaN(s) || s > 40 {
					t.Errorf("%s: sample %d: tiles %.1f ms apart (more than a frame)", what, 10+i, s)
				}
			}
		}
		check("playing")
		// Seek while playing: a click on the timeline 3 s back.
		now := browseValue(t, ctx, 10*time.Second, chromedp.Evaluate[float64](`+document.getElementById('replay-clock').dataset.wall`))
		back := time.UnixMilli(int64(now)).Add(-3 * time.Second)
		x, y := timelinePoint(t, ctx, back, 0)
		browse(t, ctx, 10*time.Second, chromedp.MouseClickXY(x, y))
		waitTiles(t, ctx, 4, 30*time.Second)
		check("after a seek")
		screenshot(t, ctx, "sync")
		// Paused: every tile shows the frame at its own playhead (identified
		// by picture against the server's replay from there, so not by the
		// page's arithmetic alone), and the playheads are within a frame.
		browse(t, ctx, 10*time.Second, chromedp.KeyEvent(" "))
		waitJS(t, ctx, 10*time.Second, `document.getElementById('replay-play').dataset.playing === 'false'`)
		waitTiles(t, ctx, 4, 20*time.Second)
		walls := browseValue(t, ctx, 10*time.Second, chromedp.Evaluate[[]float64](
			`[...document.querySelectorAll('.tile')].slice(0, 4).map(t => +t.dataset.wall)`))
		lo, hi := slices.Min(walls), slices.Max(walls)
		if hi-lo > 40 {
			t.Errorf("paused: playheads %v span %.1f ms (more than a frame)", walls, hi-lo)
		}
		// The frames shown, by their camsim capture time (the cameras share
		// camsim's clock): within a frame of each other. Each is the frame
		// at its tile's playhead, or (seen when the playhead is a few ms
		// past a frame boundary: Chromium shows the frame before at the
		// window start; docs/operations.md, "Known limits") the one before.
		var caps []time.Time
		for i, w := range walls {
			at := time.UnixMicro(int64(math.Round(w * 1000)))
			what := fmt.Sprintf("sync tile %d paused at %s", i, iso(at))
			shown, want, _ := tileFrame(t, ctx, srv, what, fmt.Sprintf("cam%d", i+1), i, at)
			caps = append(caps, shown.Stamp.Captured)
			switch d := int64(want.Stamp.Seq) - int64(shown.Stamp.Seq); {
			case d == 1:
				t.Logf("%s: shows seq %d, the frame before the one at the playhead (%d, captured %s)", what, shown.Stamp.Seq,
					want.Stamp.Seq, want.Stamp.Captured.Format("15:04:05.000"))
			case d != 0:
				t.Errorf("%s: shows seq %d, want %d (the frame at the playhead)", what, shown.Stamp.Seq, want.Stamp.Seq)
			}
		}
		first, last := slices.MinFunc(caps, time.Time.Compare), slices.MaxFunc(caps, time.Time.Compare)
		t.Logf("paused: capture times of the 4 frames shown span %v", last.Sub(first))
		if last.Sub(first) > 45*time.Millisecond {
			t.Errorf("paused: the 4 tiles show frames captured %v apart (more than a frame): %v", last.Sub(first), caps)
		}
	})

	t.Run("gaps", func(t *testing.T) {
		var tl timelineResp
		from, to := camStart.Add(-time.Minute), time.Now()
		if code := getJSON(t, srv.base+"/api/v1/cameras/cam5/timeline?from="+url.QueryEscape(from.Format(time.RFC3339Nano))+"&to="+url.QueryEscape(to.Format(time.RFC3339Nano)), &tl); code != 200 {
			t.Fatalf("timeline: %d", code)
		}
		var gap [2]time.Time
		for i := 1; i < len(tl.Spans); i++ {
			if d := tl.Spans[i].Start.Sub(tl.Spans[i-1].End); d > 300*time.Millisecond && tl.Spans[i-1].End.Sub(tl.Spans[i-1].Start) > 2*time.Second {
				gap = [2]time.Time{tl.Spans[i-1].End, tl.Spans[i].Start}
				break
			}
		}
		if gap[0].IsZero() {
			t.Fatalf("cam5's drops left no gap after 2 s of footage: %+v", tl.Spans)
		}
		// Samples the clock and the tile every 50 ms from play until the
		// clock is 1 s past the gap (or 20 s).
		sample := fmt.Sprintf(`new Promise(ok => { const out = []; const t0 = performance.now(); const iv = setInterval(() => {
  const w = +document.getElementById('replay-clock').dataset.wall, tile = document.querySelector('.tile');
  out.push({Wall: w, State: tile.dataset.state || '', Tile: +tile.dataset.wall || 0});
  if (w > %d || performance.now() - t0 > 20000) { clearInterval(iv); ok(out); } }, 50); })`, gap[1].Add(time.Second).UnixMilli())
		type smp struct {
			Wall, Tile float64
			State      string
		}
		for _, mode := range []string{"skip", "show"} {
			at := gap[0].Add(-1500 * time.Millisecond).Truncate(time.Millisecond)
			browse(t, ctx, 30*time.Second, chromedp.Navigate(srv.base+"/#/replay?grid=1&cams=cam5&gaps="+mode+"&t="+iso(at)))
			waitTiles(t, ctx, 1, 30*time.Second)
			if v := browseValue(t, ctx, 5*time.Second, chromedp.Evaluate[string](`document.getElementById('replay-gaps').value`)); v != mode {
				t.Fatalf("gaps selector %q, want %q", v, mode)
			}
			browse(t, ctx, 10*time.Second, chromedp.KeyEvent(" "))
			ss := browseValue(t, ctx, 40*time.Second, chromedp.Evaluate[[]smp](sample, chromedp.EvalAwaitPromise))
			browse(t, ctx, 10*time.Second, chromedp.KeyEvent(" "))
			jump, sawGap := 0.0, false
			for i := 1; i < len(ss); i++ {
				jump = max(jump, ss[i].Wall-ss[i-1].Wall)
				sawGap = sawGap || ss[i].State == "gap"
			}
			last := ss[len(ss)-1]
			gapMs := float64(gap[1].Sub(gap[0]).Milliseconds())
			t.Logf("gaps=%s: gap %s–%s, %d samples, largest clock step %.0f ms, tile in gap state: %v, last %+v", mode,
				gap[0].Format("15:04:05.000"), gap[1].Format("15:04:05.000"), len(ss), jump, sawGap, last)
			if last.Wall < float64(gap[1].UnixMilli()) || last.State != "ready" || last.Tile < float64(gap[1].UnixMilli()) {
				t.Errorf("gaps=%s: playback did not resume after the gap: last sample %+v", mode, last)
			}
			switch mode {
			case "skip": // the clock jumps over (most of) the gap
				if jump < gapMs/2 {
					t.Errorf("gaps=skip: the clock never jumped (largest step %.0f ms, gap %.0f ms)", jump, gapMs)
				}
			case "show": // the clock runs through it, the tile says so
				if jump > 1000 || !sawGap {
					t.Errorf("gaps=show: largest clock step %.0f ms, gap state seen %v", jump, sawGap)
				}
			}
		}
	})

	t.Run("export and evidence", func(t *testing.T) {
		t.Cleanup(func() {
			if t.Failed() {
				screenshot(t, ctx, "replay-failure")
			}
		})
		at := wins[0][0].Truncate(time.Millisecond)
		browse(t, ctx, 30*time.Second, chromedp.Navigate(srv.base+"/#/replay?grid=1&cams=cam1&t="+iso(at)))
		waitTiles(t, ctx, 1, 30*time.Second)
		// Zoom in (5 × "+": an hour → ~2 min across) for a precise selection.
		for range 5 {
			browse(t, ctx, 5*time.Second, chromedp.KeyEvent("+"))
		}
		from, to := at.Add(-4*time.Second), at.Add(2*time.Second)
		shiftDrag(t, ctx, from, to)
		var sel struct{ From, To string }
		sel = browseValue(t, ctx, 10*time.Second, chromedp.Evaluate[struct{ From, To string }](
			`(() => { const d = document.getElementById('replay-sel').dataset; return {From: d.from, To: d.to}; })()`))
		sf, err1 := time.Parse(time.RFC3339Nano, sel.From)
		st, err2 := time.Parse(time.RFC3339Nano, sel.To)
		if err1 != nil || err2 != nil || sf.Sub(from).Abs() > 500*time.Millisecond || st.Sub(to).Abs() > 500*time.Millisecond {
			t.Fatalf("selected %+v, dragged over %s–%s", sel, iso(from), iso(to))
		}

		browse(t, ctx, 10*time.Second, chromedp.Click(chromedp.ID("replay-export")))
		waitJS(t, ctx, 10*time.Second, `location.hash === '#/exports'`)
		ids := browseValue(t, ctx, 5*time.Second, chromedp.Evaluate[string](`sessionStorage.getItem('xl.replay.exports') || ''`))
		if ids == "" {
			t.Fatal("no export job recorded by the page")
		}
		var job struct {
			ID, Camera string
			From, To   time.Time
		}
		if code := getJSON(t, srv.base+"/api/v1/exports/"+strings.Split(ids, ",")[0], &job); code != 200 ||
			job.Camera != "cam1" || job.From.Sub(sf).Abs() > time.Millisecond || job.To.Sub(st).Abs() > time.Millisecond {
			t.Fatalf("export job: %d %+v, want cam1 %s–%s", code, job, sel.From, sel.To)
		}

		browse(t, ctx, 30*time.Second, chromedp.Navigate(srv.base+"/#/replay?grid=1&cams=cam1&t="+iso(at)))
		waitTiles(t, ctx, 1, 30*time.Second)
		for range 5 {
			browse(t, ctx, 5*time.Second, chromedp.KeyEvent("+"))
		}
		shiftDrag(t, ctx, from, to)
		browse(t, ctx, 20*time.Second,
			chromedp.Click(chromedp.ID("replay-evidence")),
			chromedp.WaitVisible(chromedp.ID("evidence-case")),
			chromedp.SendKeys(chromedp.ID("evidence-case"), "2026-刑-0420"),
			chromedp.SendKeys(chromedp.ID("evidence-reason"), "盗窃案现场录像"),
			chromedp.Click(chromedp.ID("evidence-submit")),
		)
		waitJS(t, ctx, 20*time.Second, `!!document.getElementById('replay-msg').dataset.lock`)
		lock := browseValue(t, ctx, 5*time.Second, chromedp.Evaluate[string](`document.getElementById('replay-msg').dataset.lock`))
		var l struct {
			Cameras        []string
			From, To       time.Time
			Reason         string
			CaseNumberJSON string `json:"case_number"`
			Active         bool
		}
		if code := getJSON(t, srv.base+"/api/v1/evidence/"+lock, &l); code != 200 || len(l.Cameras) != 1 || l.Cameras[0] != "cam1" ||
			l.CaseNumberJSON != "2026-刑-0420" || l.Reason != "盗窃案现场录像" || !l.Active ||
			l.From.After(sf) || l.To.Before(st) || sf.Sub(l.From) > time.Second || l.To.Sub(st) > time.Second {
			t.Fatalf("evidence lock %s: %d %+v, want cam1 %s–%s", lock, code, l, sel.From, sel.To)
		}
	})

	t.Run("timeline render time", func(t *testing.T) {
		for _, c := range []struct{ cams, days int }{{1, 30}, {100, 1}} {
			ms := browseValue(t, ctx, 120*time.Second, chromedp.Evaluate[[]float64](fmt.Sprintf(`xlTimelineBench(%d, %d, 20)`, c.cams, c.days)))
			if len(ms) != 20 {
				t.Fatalf("bench: %d frames", len(ms))
			}
			sort.Float64s(ms)
			t.Logf("timeline render, %d camera(s) × %d day(s), 1600 px: median %.2f ms, max %.2f ms over %d frames (headless chromium, software canvas)",
				c.cams, c.days, ms[len(ms)/2], ms[len(ms)-1], len(ms))
		}
	})
}
