//go:build players

package main

// The per-player measurement behind replay/doc.go's "Players" table, by
// hand (it needs vlc-bin, vlc-plugin-base, vlc-plugin-video-output and
// firefox-esr besides ffmpeg and chromium, and takes about 8 minutes):
//
//	go test -tags players -run TestPlayers -v ./cmd/xueliang/
//
// For every camera kind (H.264 and H.265, each with and without
// B-frames) it records a mid-GOP window with camsim and the real server,
// fetches it in both formats and prints, per player, the first frame
// presented and the number presented, next to what the frame at start is
// (seq of the SEI stamp, and its offset in frames). It asserts nothing
// beyond the players running.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"xueliang/index"
)

func TestPlayers(t *testing.T) {
	rtsp, camStart := startCamsim(t, "-cameras", "4", "-gop", "50",
		"-camera", "cam2:bframes=on", "-camera", "cam3:codec=h265", "-camera", "cam4:codec=h265,bframes=on")
	var cams strings.Builder
	for i := 1; i <= 4; i++ {
		fmt.Fprintf(&cams, "  - id: cam%d\n    url: %s/cam%d\n", i, rtsp, i)
	}
	srv := startServer(t, "cameras:\n"+cams.String())
	time.Sleep(12 * time.Second)
	recEnd := time.Now().Add(-2 * time.Second)
	db, err := index.Open(context.Background(), filepath.Join(srv.dataDir, "index.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rng := rand.New(rand.NewPCG(24, uint64(time.Now().UnixNano())))
	var table []string
	for _, c := range []struct {
		cam, kind string
		h264      bool
	}{{"cam1", "H.264", true}, {"cam2", "H.264 B-frames", true}, {"cam3", "H.265", false}, {"cam4", "H.265 B-frames", false}} {
		w := midGOPWindows(t, db, c.cam, camStart, recEnd, 1, 2400*time.Millisecond, rng)[0]
		ref := fetchReplayFormat(t, srv, c.cam, w[0], w[1], false, "mp4")
		rj := judgeMP4(t, ref.path)
		want := rj.Shown[0].Stamp.Seq
		row := func(player, format string, shown []judgedFrame, note string) {
			first := "none"
			if len(shown) > 0 {
				d := int64(shown[0].Stamp.Seq) - int64(want)
				first = fmt.Sprintf("seq %d (%+d)", shown[0].Stamp.Seq, d)
			}
			table = append(table, fmt.Sprintf("| %s | %s | %s | %s | seq %d | %d (window %d) | %s |",
				player, c.kind, format, first, want, len(shown), len(rj.Shown), note))
		}
		for _, format := range []string{"mp4", "fmp4", "mp4+exact", "fmp4+exact"} {
			r := fetchReplayFormat(t, srv, c.cam, w[0], w[1], false, format)
			j := judgeMP4(t, r.path)
			row("ffmpeg "+toolVersion("ffmpeg", "-version"), format, j.Shown, "framemd5")
			row("ffplay "+toolVersion("ffplay", "-version"), format, ffplayFrames(t, j, r.path), "showinfo, video only")
			row("VLC "+toolVersion("cvlc", "--version"), format, vlcFrames(t, j, r.path), "--vout=yuv")
			if !c.h264 {
				continue
			}
			for _, b := range []browserKind{chromium, firefox} {
				modes := []string{"src"}
				if strings.HasPrefix(format, "fmp4") {
					modes = append(modes, "mse")
				}
				for _, mode := range modes {
					res, err := tryPlayInBrowser(t, b, r.path, mode, h264MSEType)
					if err != nil {
						row(b.name, format+" "+mode, nil, "error: "+err.Error())
						continue
					}
					row(b.name+" "+browserVersion(res.Agent), format+" "+mode, browserFrames(t, b.name, j, res), "")
				}
			}
		}
	}
	t.Logf("\n| player | camera | form | first frame shown | frame at start | frames shown | note |\n|---|---|---|---|---|---|---|\n%s", strings.Join(table, "\n"))
}

func toolVersion(name string, arg string) string {
	out, _ := exec.Command(name, arg).CombinedOutput()
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		for i, w := range f {
			if strings.EqualFold(w, "version") && i+1 < len(f) {
				return f[i+1]
			}
		}
	}
	if name == "cvlc" {
		out, _ = exec.Command("dpkg-query", "-W", "-f", "${Version}", "vlc-bin").CombinedOutput()
		return strings.TrimSpace(string(out))
	}
	return "?"
}

func browserVersion(ua string) string {
	for _, f := range strings.Fields(ua) {
		if strings.HasPrefix(f, "HeadlessChrome/") || strings.HasPrefix(f, "Firefox/") {
			return f
		}
	}
	return ua
}

// ffplayFrames plays path in ffplay (SDL dummy video driver, no audio)
// and identifies the frames its showinfo filter passes. -sync video makes
// video the master clock, so ffplay displays every frame that reaches its
// picture queue (without audio it would otherwise follow the external
// clock and drop late frames: 52 of 61 once on the loaded test machine).
func ffplayFrames(t *testing.T, j judgement, path string) []judgedFrame {
	t.Helper()
	cmd := exec.Command("ffplay", "-hide_banner", "-autoexit", "-an", "-sync", "video", "-vf", "showinfo", path)
	cmd.Env = append(os.Environ(), "SDL_VIDEODRIVER=dummy", "SDL_AUDIODRIVER=dummy")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ffplay: %v\n%s", err, tail(out, 2000))
	}
	refs := showinfoChecksums(string(runToolCombined(t, "ffmpeg", "-hide_banner", "-f", j.ESFormat, "-i", j.ES, "-vsync", "passthrough", "-vf", "showinfo", "-f", "null", "-")))
	return matchChecksums(t, j, refs, showinfoChecksums(string(out)))
}

func runToolCombined(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", name, err, tail(out, 2000))
	}
	return out
}

func showinfoChecksums(log string) []string {
	var cs []string
	for _, l := range strings.Split(log, "\n") {
		if !strings.Contains(l, "Parsed_showinfo") {
			continue
		}
		if _, rest, ok := strings.Cut(l, " checksum:"); ok {
			c, _, _ := strings.Cut(rest, " ")
			cs = append(cs, c)
		}
	}
	return cs
}

func matchChecksums(t *testing.T, j judgement, refs, got []string) []judgedFrame {
	t.Helper()
	if len(refs) != len(j.Frames) {
		t.Fatalf("%d reference checksums for %d frames", len(refs), len(j.Frames))
	}
	var out []judgedFrame
	next := 0
	for _, c := range got {
		k := next
		for k < len(refs) && refs[k] != c {
			k++
		}
		if k == len(refs) {
			t.Fatalf("ffplay frame with checksum %s matches no frame", c)
		}
		out = append(out, j.Frames[k])
		next = k + 1
	}
	return out
}

// vlcFrames plays path in VLC with the yuv video output, which writes
// every picture VLC displays to a YUV4MPEG2 file, and identifies them by
// thumbnail (VLC's decode is not bit-exact with ffmpeg's). VLC refuses to
// run as root: it runs as nobody on a copy in a world-readable directory.
func vlcFrames(t *testing.T, j judgement, path string) []judgedFrame {
	t.Helper()
	dir, err := os.MkdirTemp("", "vlc-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	in, out := filepath.Join(dir, "in.mp4"), filepath.Join(dir, "out.y4m")
	if err := os.WriteFile(in, b, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("runuser", "-u", "nobody", "--", "env", "HOME="+dir, "cvlc", "-q", "--no-audio",
		"--vout=yuv", "--yuv-file="+out, "--yuv-yuv4mpeg2", "--yuv-chroma=I420", "--play-and-exit", in)
	if log, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("vlc: %v\n%s", err, tail(log, 2000))
	}
	y4m, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	w, h := j.Width, j.Height
	var gray []byte
	_, rest, _ := strings.Cut(string(y4m), "\n")
	for len(rest) > 0 {
		_, rest, _ = strings.Cut(rest, "\n") // FRAME
		if len(rest) < w*h*3/2 {
			break
		}
		gray = append(gray, rest[:w*h]...)
		rest = rest[w*h*3/2:]
	}
	refRaw := runTool(t, "ffmpeg", "-v", "error", "-f", j.ESFormat, "-i", j.ES, "-vsync", "passthrough", "-pix_fmt", "gray", "-f", "rawvideo", "-")
	refs := blockThumbs(refRaw, w, h)
	var shown []judgedFrame
	last := -1
	for _, th := range blockThumbs(gray, w, h) {
		k, _, _ := nearest(refs, th)
		if k != last {
			shown = append(shown, j.Frames[k])
		}
		last = k
	}
	return shown
}
