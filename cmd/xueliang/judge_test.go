package main

// The judge: ffmpeg/ffprobe decide what an MP4 we produced contains, and the
// SEI stamps that camsim puts in every access unit say which camera frame
// each sample is. Nothing here trusts our own MP4 code.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"xueliang/ingest/sei"
	"xueliang/storage/recording"
)

// judgedFrame is one decoded video frame as ffmpeg presents it.
type judgedFrame struct {
	PTS      int64 // in the stream time base
	Time     time.Duration
	Shown    bool // output by `ffmpeg -i file -f framemd5`
	Stamp    sei.Stamp
	Keyframe bool
	md5      string // of the decoded picture
}

type judgement struct {
	Codec         string // h264 | hevc
	Width, Height int
	TimeBase      [2]int64
	Frames        []judgedFrame // every packet's frame, in presentation order (pre-roll included)
	Shown         []judgedFrame // the frames ffmpeg's CLI outputs (framemd5), in output order
	DecodeOrder   []sei.Stamp   // stamps of every video packet, in decode order
	HasAudio      bool
	// ES is the video elementary stream (Annex B) of the file, whose
	// decode in presentation order is Frames.
	ES, ESFormat string
}

func runTool(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return stdout.Bytes()
}

func parseRational(s string) [2]int64 {
	a, b, _ := strings.Cut(s, "/")
	n, _ := strconv.ParseInt(a, 10, 64)
	d, _ := strconv.ParseInt(b, 10, 64)
	return [2]int64{n, d}
}

// judgeMP4 decodes path with ffmpeg and returns what a player shows: the
// frames `ffmpeg -i path -f framemd5` outputs (not those with pts >= 0: the
// CLI shifts the input to start at 0 and outputs every frame decoded, so a
// pre-roll hidden only by timestamps is shown).
// It fails the test on any decoder error.
func judgeMP4(t *testing.T, path string) judgement {
	t.Helper()
	// 1. Full decode of every stream: ffmpeg must report nothing.
	cmd := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-i", path, "-map", "0", "-f", "null", "-")
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("ffmpeg decode of %s: err=%v output:\n%s", path, err, out)
	}

	// 2. Streams.
	var probe struct {
		Streams []struct {
			CodecType string `json:"codec_type"`
			CodecName string `json:"codec_name"`
			Width     int    `json:"width"`
			Height    int    `json:"height"`
			TimeBase  string `json:"time_base"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(runTool(t, "ffprobe", "-v", "error", "-show_streams", "-of", "json", path), &probe); err != nil {
		t.Fatal(err)
	}
	var j judgement
	for _, s := range probe.Streams {
		switch s.CodecType {
		case "video":
			if j.Codec == "" {
				j.Codec, j.Width, j.Height, j.TimeBase = s.CodecName, s.Width, s.Height, parseRational(s.TimeBase)
			}
		case "audio":
			j.HasAudio = true
		}
	}
	if j.Codec != "h264" && j.Codec != "hevc" {
		t.Fatalf("%s: video codec %q", path, j.Codec)
	}

	// 3. Packets in decode order, and the SEI stamp of each.
	var pk struct {
		Packets []struct {
			PTS   *int64 `json:"pts"`
			DTS   *int64 `json:"dts"`
			Flags string `json:"flags"`
		} `json:"packets"`
	}
	if err := json.Unmarshal(runTool(t, "ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts,dts,flags", "-of", "json", path), &pk); err != nil {
		t.Fatal(err)
	}
	codec, bsf, format := recording.H264, "h264_mp4toannexb", "h264"
	if j.Codec == "hevc" {
		codec, bsf, format = recording.H265, "hevc_mp4toannexb", "hevc"
	}
	annexb := runTool(t, "ffmpeg", "-nostdin", "-v", "error", "-i", path, "-map", "0:v:0", "-c:v", "copy", "-bsf:v", bsf, "-f", format, "pipe:1")
	if codec == recording.H265 {
		annexb = dropSplicedParameterSets(annexb)
	}
	for _, n := range splitAnnexB(annexb) {
		if s, ok := sei.Parse(codec, n); ok {
			j.DecodeOrder = append(j.DecodeOrder, s)
		}
	}
	if len(j.DecodeOrder) != len(pk.Packets) {
		t.Fatalf("%s: %d video packets but %d SEI stamps", path, len(pk.Packets), len(j.DecodeOrder))
	}
	byPTS := map[int64]int{}
	var lastDTS int64
	for i, p := range pk.Packets {
		if p.PTS == nil || p.DTS == nil {
			t.Fatalf("%s: packet %d without pts/dts", path, i)
		}
		if i > 0 && *p.DTS <= lastDTS {
			t.Fatalf("%s: packet %d dts %d not after %d", path, i, *p.DTS, lastDTS)
		}
		lastDTS = *p.DTS
		if _, dup := byPTS[*p.PTS]; dup {
			t.Fatalf("%s: two packets with pts %d", path, *p.PTS)
		}
		byPTS[*p.PTS] = i
	}

	// 4. Every packet in presentation order, identified: the elementary
	// stream alone (no container, so no edit list can hide anything)
	// decodes to one frame per packet in presentation order.
	order := make([]int, len(pk.Packets))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return *pk.Packets[order[a]].PTS < *pk.Packets[order[b]].PTS })
	esPath := filepath.Join(t.TempDir(), "video."+format)
	if err := os.WriteFile(esPath, annexb, 0o644); err != nil {
		t.Fatal(err)
	}
	j.ES, j.ESFormat = esPath, format
	esHashes := frameMD5s(t, "-f", format, "-i", esPath, "-vsync", "passthrough")
	if len(esHashes) != len(pk.Packets) {
		t.Fatalf("%s: %d video packets but the elementary stream decodes to %d frames", path, len(pk.Packets), len(esHashes))
	}
	discarded := 0
	for k, pi := range order {
		p := pk.Packets[pi]
		j.Frames = append(j.Frames, judgedFrame{
			PTS:      *p.PTS,
			Time:     time.Duration(*p.PTS * j.TimeBase[0] * int64(time.Second) / j.TimeBase[1]),
			Stamp:    j.DecodeOrder[pi],
			Keyframe: strings.Contains(p.Flags, "K"),
			md5:      esHashes[k],
		})
		if strings.Contains(p.Flags, "D") {
			discarded++ // hidden by a (non-fragmented) edit list
		}
	}
	var fr struct {
		Frames []struct{} `json:"frames"`
	}
	if err := json.Unmarshal(runTool(t, "ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "frame=key_frame", "-of", "json", path), &fr); err != nil {
		t.Fatal(err)
	}
	if len(fr.Frames) != len(pk.Packets)-discarded {
		t.Fatalf("%s: %d packets (%d discardable) decoded to %d frames", path, len(pk.Packets), discarded, len(fr.Frames))
	}

	// 5. What a player shows: every frame `ffmpeg -i file -f framemd5`
	// outputs, in output order, matched to the packets by picture checksum
	// (in order, so a clip's repeated pictures match the right loop).
	next := 0
	for i, h := range frameMD5s(t, "-i", path) {
		k := next
		for k < len(j.Frames) && j.Frames[k].md5 != h {
			k++
		}
		if k == len(j.Frames) {
			t.Fatalf("%s: output frame %d (md5 %s) matches no packet at or after presentation index %d", path, i, h, next)
		}
		f := j.Frames[k]
		f.Shown = true
		j.Shown = append(j.Shown, f)
		next = k + 1
	}
	return j
}

// frameMD5s returns the md5 of every frame `ffmpeg <input args> -map 0:v:0
// -f framemd5` outputs, in output order: exactly the frames the ffmpeg CLI
// presents, with its default timestamp handling for the input.
func frameMD5s(t *testing.T, input ...string) []string {
	t.Helper()
	args := append([]string{"-nostdin", "-v", "error"}, input...)
	args = append(args, "-map", "0:v:0", "-f", "framemd5", "-")
	var hs []string
	for _, l := range strings.Split(string(runTool(t, "ffmpeg", args...)), "\n") {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		f := strings.Split(l, ",")
		hs = append(hs, strings.TrimSpace(f[len(f)-1]))
	}
	return hs
}

// describeSeqs prints a compact run-length form of stamp sequence numbers.
func describeSeqs(frames []judgedFrame) string {
	var b strings.Builder
	for i := 0; i < len(frames); {
		k := i
		for k+1 < len(frames) && frames[k+1].Stamp.Seq == frames[k].Stamp.Seq+1 {
			k++
		}
		fmt.Fprintf(&b, "%d-%d ", frames[i].Stamp.Seq, frames[k].Stamp.Seq)
		i = k + 1
	}
	return b.String()
}

// samePrefix reports whether a and b present the same frames in the same
// order, one of them with at most tail more frames at its end. The two
// replay forms cut the end differently when a camera sends B-frames: the
// progressive form's edit list ends exactly at end, the fragmented form's
// last fragment may show the frame that is next in presentation order.
func samePrefix(a, b []judgedFrame, tail int) bool {
	if len(a) > len(b) {
		a, b = b, a
	}
	if len(b)-len(a) > tail {
		return false
	}
	for i := range a {
		if a[i].Stamp.Seq != b[i].Stamp.Seq {
			return false
		}
	}
	return true
}

// dropSplicedParameterSets undoes what ffmpeg 5.1's hevc_mp4toannexb does
// to an access unit that carries its own parameter sets in-band (the exact
// form's re-encoded IDR, issue #24): it splices the sample entry's
// VPS/SPS/PPS in right before the IRAP slice, after the in-band ones, so
// the decoder would decode the re-encoded slice with the recorded sets.
// Of two parameter sets of one type between two slices it keeps the first,
// which is what the access unit itself carries; the frames are then one
// per packet again. (h264_mp4toannexb checks for in-band sets itself.)
func dropSplicedParameterSets(b []byte) []byte {
	var out []byte
	seen := map[byte]bool{}
	for _, n := range splitAnnexB(b) {
		if len(n) < 2 {
			continue
		}
		typ := (n[0] >> 1) & 0x3f
		switch {
		case typ < 32: // VCL
			clear(seen)
		case typ >= 32 && typ <= 34: // VPS, SPS, PPS
			if seen[typ] {
				continue
			}
			seen[typ] = true
		}
		out = append(out, 0, 0, 0, 1)
		out = append(out, n...)
	}
	return out
}

// splitAnnexB splits an Annex-B byte stream of any length at its start codes
// (00 00 01, or 00 00 00 01) into NAL units.
func splitAnnexB(b []byte) [][]byte {
	var out [][]byte
	start := -1
	for i := 0; i+2 < len(b); i++ {
		if b[i] != 0 || b[i+1] != 0 || b[i+2] != 1 {
			continue
		}
		if start >= 0 {
			end := i
			if end > start && b[end-1] == 0 {
				end-- // the leading zero of a 4-byte start code
			}
			out = append(out, b[start:end])
		}
		start = i + 3
		i += 2
	}
	if start >= 0 && start < len(b) {
		out = append(out, b[start:])
	}
	return out
}
