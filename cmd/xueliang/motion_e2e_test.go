package main

// End-to-end motion: camsim serves scripted scenes (scripts/gen-motion-scene.sh)
// over RTSP; the server analyses one camera's main-stream keyframes, one
// camera's sub stream and a still scene with noise and a brightness ramp;
// the intervals it stores are judged against the script.

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"
)

type sceneObject struct {
	ID    string       `json:"id"`
	Start float64      `json:"start"`
	End   float64      `json:"end"`
	Path  [][5]float64 `json:"path"` // t, x, y, w, h normalised
}

// ensureMotionScene generates a scene (once) and returns its clip path and
// objects.
func ensureMotionScene(t *testing.T, name string) (string, []sceneObject) {
	t.Helper()
	dir := repoPath("testdata/clips/motion")
	ts, js := dir+"/"+name+".ts", dir+"/"+name+".json"
	if _, err := os.Stat(js); err != nil {
		if out, err := exec.Command(repoPath("scripts/gen-motion-scene.sh"), dir, name).CombinedOutput(); err != nil {
			t.Fatalf("gen-motion-scene.sh %s: %v\n%s", name, err, out)
		}
	}
	b, err := os.ReadFile(js)
	if err != nil {
		t.Fatal(err)
	}
	var sc struct {
		Objects []sceneObject `json:"objects"`
	}
	if err := json.Unmarshal(b, &sc); err != nil {
		t.Fatal(err)
	}
	return ts, sc.Objects
}

// postJSON posts body as JSON and decodes a 200 answer into out.
func postJSONE2E(t *testing.T, u string, body, out any) int {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest("POST", u, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK && out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("POST %s: decode: %v", u, err)
		}
	}
	return resp.StatusCode
}

type motionIv struct {
	Camera string    `json:"camera"`
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
}

// matchOneToOne matches detected intervals one-to-one with true events
// (objects overlapping in time merged) by temporal overlap and returns
// precision and recall.
func matchOneToOne(det, truth [][2]time.Time) (precision, recall float64) {
	truth = slices.Clone(truth)
	slices.SortFunc(truth, func(a, b [2]time.Time) int { return a[0].Compare(b[0]) })
	var events [][2]time.Time
	for _, g := range truth {
		if k := len(events); k > 0 && g[0].Before(events[k-1][1]) {
			if g[1].After(events[k-1][1]) {
				events[k-1][1] = g[1]
			}
			continue
		}
		events = append(events, g)
	}
	det = slices.Clone(det)
	slices.SortFunc(det, func(a, b [2]time.Time) int { return cmp.Compare(a[0].UnixNano(), b[0].UnixNano()) })
	used := make([]bool, len(events))
	matched := 0
	for _, d := range det {
		for i, g := range events {
			if !used[i] && d[0].Before(g[1]) && g[0].Before(d[1]) {
				used[i], matched = true, matched+1
				break
			}
		}
	}
	precision, recall = 1, 1
	if len(det) > 0 {
		precision = float64(matched) / float64(len(det))
	}
	if len(events) > 0 {
		recall = float64(matched) / float64(len(events))
	}
	return precision, recall
}

func TestMotionEndToEnd(t *testing.T) {
	t.Parallel() // waits on real time mostly: runs beside the others (Makefile TEST_PARALLEL)
	if testing.Short() {
		t.Skip("60 s of live scenes")
	}
	sceneTS, objects := ensureMotionScene(t, "objects-640")
	stillTS, _ := ensureMotionScene(t, "still-noise-ramp-640")

	rtsp, t0 := startCamsim(t, "-cameras", "1",
		"-camera", "scene:clip="+sceneTS+",size=640x360",
		"-camera", "still:clip="+stillTS+",size=640x360")
	srv := startServer(t, fmt.Sprintf(`recording:
  segment_duration: 10s
motion:
  pre_pad: 0s
  post_pad: 0s
cameras:
  - id: key
    url: %[1]s/scene
    motion: true
  - id: sub
    url: %[1]s/cam1
    sub_url: %[1]s/scene
    motion: true
  - id: quiet
    url: %[1]s/cam1
    sub_url: %[1]s/still
    motion: true
`, rtsp))

	// The scene's clip time 0 is camsim's start (t0, within a few ms).
	// Judge the objects between 9 s (the server is connected and warmed up)
	// and 60 s (car2 at 62 s is left out), then stop the server so that it
	// writes what is in progress, and start it again to query.
	evalFrom, evalTo := t0.Add(9*time.Second), t0.Add(60*time.Second)
	time.Sleep(time.Until(t0.Add(61 * time.Second)))
	srv.proc.stop()
	srv.start(t)

	var truth [][2]time.Time
	for _, o := range objects {
		s, e := t0.Add(time.Duration(o.Start*float64(time.Second))), t0.Add(time.Duration(o.End*float64(time.Second)))
		if !s.Before(evalFrom) && !e.After(evalTo) {
			truth = append(truth, [2]time.Time{s, e})
		}
	}
	if len(truth) < 5 {
		t.Fatalf("only %d objects in the judged window", len(truth))
	}
	inWindow := func(ivs []motionIv) [][2]time.Time {
		var out [][2]time.Time
		for _, iv := range ivs {
			if iv.End.After(evalFrom) && iv.Start.Before(evalTo) {
				out = append(out, [2]time.Time{iv.Start, iv.End})
			}
		}
		return out
	}
	rel := func(ivs [][2]time.Time) string {
		var b bytes.Buffer
		for _, iv := range ivs {
			fmt.Fprintf(&b, "[%.1f %.1f] ", iv[0].Sub(t0).Seconds(), iv[1].Sub(t0).Seconds())
		}
		return b.String()
	}
	q := url.Values{"from": {t0.Add(-time.Minute).UTC().Format(time.RFC3339)}, "to": {t0.Add(2 * time.Minute).UTC().Format(time.RFC3339)}}
	for _, cam := range []string{"key", "sub", "quiet"} {
		var tl struct {
			Motion   []motionIv `json:"motion"`
			Activity []struct {
				Start   time.Time `json:"start"`
				Seconds int       `json:"seconds"`
			} `json:"motion_activity"`
		}
		if code := getJSON(t, srv.base+"/api/v1/cameras/"+cam+"/timeline?"+q.Encode(), &tl); code != 200 {
			t.Fatalf("timeline %s: %d", cam, code)
		}
		if cam == "quiet" {
			if len(tl.Motion) != 0 || len(tl.Activity) != 0 {
				t.Errorf("still scene: %d intervals %s, %d active minutes", len(tl.Motion), rel(inWindow(tl.Motion)), len(tl.Activity))
			}
			continue
		}
		det := inWindow(tl.Motion)
		p, r := matchOneToOne(det, truth)
		t.Logf("%s: precision %.3f recall %.3f; detected %s; truth %s; activity %+v", cam, p, r, rel(det), rel(truth), tl.Activity)
		if p < 0.95 || r < 0.95 {
			t.Errorf("%s: precision %.3f recall %.3f, want >= 0.95", cam, p, r)
		}
		if len(tl.Activity) == 0 {
			t.Errorf("%s: no motion activity in the timeline", cam)
		}
	}

	// Region search: the top-left band is crossed by person1 (before the
	// judged window) and slow1 only.
	region := [][2]float64{{0, 0.05}, {0.3, 0.05}, {0.3, 0.2}, {0, 0.2}}
	var crossing [][2]time.Time
	var crossingIDs []string
	for _, o := range objects {
		for _, p := range o.Path {
			if p[1] < 0.3 && p[1]+p[3] > 0 && p[2] < 0.2 && p[2]+p[4] > 0.05 {
				s, e := t0.Add(time.Duration(o.Start*float64(time.Second))), t0.Add(time.Duration(o.End*float64(time.Second)))
				if !s.Before(evalFrom) && !e.After(evalTo) {
					crossing = append(crossing, [2]time.Time{s, e})
					crossingIDs = append(crossingIDs, o.ID)
				}
				break
			}
		}
	}
	if len(crossing) == 0 || len(crossing) == len(truth) {
		t.Fatalf("region crossed by %v: want some but not all judged objects", crossingIDs)
	}
	body := map[string]any{"from": t0.Add(-time.Minute), "to": t0.Add(2 * time.Minute), "region": map[string]any{"polygon": region}}
	for _, cam := range []string{"key", "sub"} {
		var res struct{ Intervals []motionIv }
		if code := postJSONE2E(t, srv.base+"/api/v1/cameras/"+cam+"/motion/search", body, &res); code != 200 {
			t.Fatalf("search %s: %d", cam, code)
		}
		for i := 1; i < len(res.Intervals); i++ {
			if res.Intervals[i].Start.After(res.Intervals[i-1].Start) {
				t.Errorf("search %s: not newest first", cam)
			}
		}
		det := inWindow(res.Intervals)
		p, r := matchOneToOne(det, crossing)
		t.Logf("region search %s: %s; crossing %v %s", cam, rel(det), crossingIDs, rel(crossing))
		if p < 1 || r < 1 {
			t.Errorf("region search %s: precision %.2f recall %.2f; want exactly the objects %v", cam, p, r, crossingIDs)
		}
	}
	// Multi-camera: the three cameras; the still one contributes nothing.
	body["cameras"] = []string{"key", "sub", "quiet"}
	var multi struct {
		Cameras   []string
		Intervals []motionIv
	}
	if code := postJSONE2E(t, srv.base+"/api/v1/motion/search", body, &multi); code != 200 {
		t.Fatalf("multi search: %d", code)
	}
	per := map[string]int{}
	for _, iv := range multi.Intervals {
		per[iv.Camera]++
	}
	if per["key"] == 0 || per["sub"] == 0 || per["quiet"] != 0 || len(multi.Cameras) != 3 {
		t.Errorf("multi search: %v over %v", per, multi.Cameras)
	}
}
