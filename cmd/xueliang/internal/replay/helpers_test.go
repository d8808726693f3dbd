package replay

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"xueliang/storage/recording"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
)

const frameTicks = 3600 // 25 fps at 90 kHz

var t0 = time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)

// clip is a test source: H.264 (and optionally AAC) access units read from
// an MPEG-TS that ffmpeg encoded, plus the md5 of every decoded frame in
// presentation order.
type clip struct {
	path     string
	sps, pps []byte
	video    []videoAU // decode order, pts/dts relative to the first pts
	audio    []audioAU
	aconf    *mpeg4audio.AudioSpecificConfig
	hashes   []string // decoded frames, presentation order
}

type videoAU struct {
	pts, dts int64
	au       [][]byte
	key      bool
}

type audioAU struct {
	pts  int64 // 90 kHz, relative to the first video pts
	data []byte
}

var clipCache, clipMu sync.Map // key -> *clip, *sync.Mutex

var clipDir = func() string {
	d, err := os.MkdirTemp("", "replay-clips-")
	if err != nil {
		panic(err)
	}
	return d
}()

func TestMain(m *testing.M) {
	code := m.Run()
	os.RemoveAll(clipDir)
	os.Exit(code)
}

// getClip encodes (once per process) a 6 s 25 fps clip at size with
// GOP 25 and bframes B-frames, with 48 kHz AAC when audio is set.
func getClip(t *testing.T, size string, bframes int, audio bool) *clip {
	t.Helper()
	key := fmt.Sprintf("%s-bf%d-a%v", size, bframes, audio)
	if c, ok := clipCache.Load(key); ok {
		return c.(*clip)
	}
	// Parallel tests asking for the same clip encode it once: without
	// this, a second ffmpeg rewrote the file while the first test read it.
	mu, _ := clipMu.LoadOrStore(key, new(sync.Mutex))
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()
	if c, ok := clipCache.Load(key); ok {
		return c.(*clip)
	}
	path := filepath.Join(clipDir, key+".ts")
	args := []string{"-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=" + size + ":rate=25"}
	if audio {
		args = append(args, "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000")
	}
	args = append(args, "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-keyint_min", "25", "-sc_threshold", "0",
		"-bf", strconv.Itoa(bframes), "-pix_fmt", "yuv420p")
	if audio {
		args = append(args, "-c:a", "aac", "-b:a", "64k")
	}
	args = append(args, "-t", "6", "-f", "mpegts", path)
	runCmd(t, "ffmpeg", args...)

	c := &clip{path: path}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := &mpegts.Reader{R: f}
	if err := r.Initialize(); err != nil {
		t.Fatal(err)
	}
	for _, tr := range r.Tracks() {
		switch codec := tr.Codec.(type) {
		case *mpegts.CodecH264:
			r.OnDataH264(tr, func(pts, dts int64, au [][]byte) error {
				v := videoAU{pts: pts, dts: dts, key: h264.IsRandomAccess(au)}
				for _, n := range au {
					switch h264.NALUType(n[0] & 0x1f) {
					case h264.NALUTypeSPS:
						c.sps = append([]byte(nil), n...)
						continue
					case h264.NALUTypePPS:
						c.pps = append([]byte(nil), n...)
						continue
					case h264.NALUTypeAccessUnitDelimiter:
						continue
					}
					v.au = append(v.au, append([]byte(nil), n...))
				}
				c.video = append(c.video, v)
				return nil
			})
		case *mpegts.CodecMPEG4Audio:
			c.aconf = &codec.Config
			r.OnDataMPEG4Audio(tr, func(pts int64, aus [][]byte) error {
				for i, a := range aus {
					c.audio = append(c.audio, audioAU{pts: pts + int64(i)*1024*90000/48000, data: append([]byte(nil), a...)})
				}
				return nil
			})
		}
	}
	for {
		if err := r.Read(); err != nil {
			if err == io.EOF {
				break
			}
			t.Fatal(err)
		}
	}
	if len(c.video) == 0 || c.sps == nil || !c.video[0].key {
		t.Fatalf("clip %s: no usable video", key)
	}
	p0 := c.video[0].pts
	for _, v := range c.video {
		p0 = min(p0, v.pts)
	}
	for i := range c.video {
		c.video[i].pts -= p0
		c.video[i].dts -= p0
	}
	for i := range c.audio {
		c.audio[i].pts -= p0
	}
	c.hashes = frameHashes(t, path)
	if len(c.hashes) != len(c.video) {
		t.Fatalf("clip %s: %d decoded frames, %d access units", key, len(c.hashes), len(c.video))
	}
	clipCache.Store(key, c)
	return c
}

func runCmd(t *testing.T, name string, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String() + stderr.String()
}

// frameHashes decodes every video frame of path (none dropped, none
// duplicated, none rescaled) and returns their checksums as the showinfo
// filter reports them, in output order.
func frameHashes(t *testing.T, path string) []string {
	t.Helper()
	out := runCmd(t, "ffmpeg", "-hide_banner", "-nostats", "-v", "info", "-i", path, "-map", "0:v",
		"-vf", "showinfo", "-vsync", "passthrough", "-f", "null", "-")
	var hs []string
	for _, l := range strings.Split(out, "\n") {
		_, rest, ok := strings.Cut(l, " checksum:")
		if !ok || !strings.Contains(l, "Parsed_showinfo") {
			continue
		}
		h, _, _ := strings.Cut(rest, " ")
		hs = append(hs, h)
	}
	return hs
}

// segSpec describes a recorded segment cut from a clip.
type segSpec struct {
	clip     *clip
	from, to int       // GOP-aligned decode-order AU range [from, to)
	start    time.Time // wall-clock of the first frame
	split    bool      // split each GOP into two fragments (2nd Keyframe=false)
	noAudio  bool      // leave audio out even if the clip has it
	// dtsLag makes every decode time after the first sample lag by this
	// many ticks (presentation unchanged), as mediacommon's DTS extractor
	// does at the start of a session: the segment's decode times then end
	// dtsLag before its presentation end.
	dtsLag int64
}

// memArchive is an in-memory index + object store built the way the
// recorder writes segments (docs/ARCHITECTURE.md, recording format
// contract).
type memArchive struct {
	camera string
	segs   []recording.Segment
	frags  map[int64][]recording.Fragment
	data   map[int64][]byte

	mu    sync.Mutex
	reads [][3]int64 // segment ID, off, length
}

func newRecording(t *testing.T, specs ...segSpec) *memArchive {
	t.Helper()
	rec := &memArchive{camera: "cam1", frags: map[int64][]recording.Fragment{}, data: map[int64][]byte{}}
	for i, sp := range specs {
		rec.add(t, int64(i+1), sp)
	}
	return rec
}

func ptsToDur(p int64) time.Duration { return time.Duration(p) * time.Second / 90000 }

func (rec *memArchive) add(t *testing.T, id int64, sp segSpec) {
	t.Helper()
	c := sp.clip
	aus := c.video[sp.from:sp.to]
	withAudio := c.aconf != nil && !sp.noAudio
	init := fmp4.Init{Tracks: []*fmp4.InitTrack{{ID: 1, TimeScale: 90000, Codec: &mp4.CodecH264{SPS: c.sps, PPS: c.pps}}}}
	codecs := "H264"
	if withAudio {
		init.Tracks = append(init.Tracks, &fmp4.InitTrack{ID: 2, TimeScale: 48000, Codec: &mp4.CodecMPEG4Audio{Config: *c.aconf}})
		codecs += ",MPEG-4 Audio"
	}
	var ib seekablebuffer.Buffer
	if err := init.Marshal(&ib); err != nil {
		t.Fatal(err)
	}
	obj := append([]byte(nil), ib.Bytes()...)

	// Group into fragments: one per GOP, or two when split.
	var groups [][]videoAU
	for i, a := range aus {
		if a.key || (sp.split && i > 0 && len(groups[len(groups)-1]) == 12 && !aus[i-1].key) {
			groups = append(groups, nil)
		}
		groups[len(groups)-1] = append(groups[len(groups)-1], a)
	}
	dts0 := aus[0].dts
	segPts0 := aus[0].pts // also the minimum pts: closed GOPs
	seg := recording.Segment{ID: id, CameraID: rec.camera, Start: sp.start, ObjectKey: fmt.Sprintf("cam1/%d.mp4", id),
		Init: append([]byte(nil), ib.Bytes()...), Codecs: codecs, State: recording.StateStored}
	var frags []recording.Fragment
	all := c.video
	for gi, g := range groups {
		var vs []*fmp4.Sample
		minP, maxP := int64(1<<62), int64(-1)
		for _, a := range g {
			idx := indexOf(all, a)
			fileDTS := func(i int) int64 {
				if i == indexOf(all, aus[0]) {
					return 0
				}
				return all[i].dts - dts0 - sp.dtsLag
			}
			dur := int64(frameTicks)
			if idx+1 < len(all) {
				dur = fileDTS(idx+1) - fileDTS(idx)
			}
			s := &fmp4.Sample{Duration: uint32(dur)}
			if err := s.FillH264(int32((a.pts-segPts0)-fileDTS(idx)), a.au); err != nil {
				t.Fatal(err)
			}
			vs = append(vs, s)
			minP, maxP = min(minP, a.pts-segPts0), max(maxP, a.pts-segPts0)
		}
		part := fmp4.Part{SequenceNumber: uint32(gi + 1), Tracks: []*fmp4.PartTrack{{ID: 1, BaseTime: uint64(fileDTSOf(all, aus[0], g[0], dts0, sp.dtsLag)), Samples: vs}}}
		fragStart, fragEnd := minP, maxP+frameTicks
		if withAudio {
			at := &fmp4.PartTrack{ID: 2}
			for _, a := range c.audio {
				p := a.pts - segPts0
				if p < fragStart || p >= fragEnd {
					continue
				}
				if len(at.Samples) == 0 {
					at.BaseTime = uint64(p * 48000 / 90000)
				}
				at.Samples = append(at.Samples, &fmp4.Sample{Duration: 1024, Payload: a.data})
			}
			if len(at.Samples) > 0 {
				part.Tracks = append(part.Tracks, at)
			}
		}
		var pb seekablebuffer.Buffer
		if err := part.Marshal(&pb); err != nil {
			t.Fatal(err)
		}
		frags = append(frags, recording.Fragment{SegmentID: id, Seq: gi + 1,
			Start: sp.start.Add(ptsToDur(fragStart)), End: sp.start.Add(ptsToDur(fragEnd)),
			Offset: int64(len(obj)), Size: int64(len(pb.Bytes())), Keyframe: g[0].key})
		obj = append(obj, pb.Bytes()...)
	}
	seg.End = frags[len(frags)-1].End
	seg.Size = int64(len(obj))
	rec.segs = append(rec.segs, seg)
	sort.Slice(rec.segs, func(i, j int) bool { return rec.segs[i].Start.Before(rec.segs[j].Start) })
	rec.frags[id] = frags
	rec.data[id] = obj
}

// fileDTSOf is the decode time of a in a segment whose first AU is first.
func fileDTSOf(all []videoAU, first, a videoAU, dts0, lag int64) int64 {
	if indexOf(all, a) == indexOf(all, first) {
		return 0
	}
	return a.dts - dts0 - lag
}

func indexOf(all []videoAU, a videoAU) int {
	for i := range all {
		if all[i].dts == a.dts {
			return i
		}
	}
	panic("au not found")
}

func (rec *memArchive) SegmentsInRange(_ context.Context, camera string, from, to time.Time) ([]recording.Segment, error) {
	var out []recording.Segment
	for _, s := range rec.segs {
		if s.CameraID == camera && s.End.After(from) && s.Start.Before(to) {
			out = append(out, s)
		}
	}
	return out, nil
}

func (rec *memArchive) Fragments(_ context.Context, id int64, from, to time.Time) ([]recording.Fragment, error) {
	var out []recording.Fragment
	for _, f := range rec.frags[id] {
		if f.End.After(from) && f.Start.Before(to) {
			out = append(out, f)
		}
	}
	return out, nil
}

func (rec *memArchive) ReadRange(_ context.Context, seg recording.Segment, off, length int64) (io.ReadCloser, error) {
	rec.mu.Lock()
	rec.reads = append(rec.reads, [3]int64{seg.ID, off, length})
	rec.mu.Unlock()
	b := rec.data[seg.ID]
	if off < 0 || off+length > int64(len(b)) {
		return nil, fmt.Errorf("range [%d,+%d) outside object of %d bytes", off, length, len(b))
	}
	return io.NopCloser(bytes.NewReader(b[off : off+length])), nil
}

// probedFrame is one decoded video frame as ffprobe reports it.
type probedFrame struct {
	pts           float64 // seconds
	width, height int
}

func probeFrames(t *testing.T, path string) []probedFrame {
	t.Helper()
	out := runCmd(t, "ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "frame=pts_time,width,height", "-of", "csv=p=0", path)
	var fs []probedFrame
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue // side data (the re-encoder's SEI) prints an empty line
		}
		f := strings.Split(l, ",")
		if len(f) < 3 {
			t.Fatalf("ffprobe line %q", l)
		}
		var pf probedFrame
		var err error
		if pf.pts, err = strconv.ParseFloat(f[0], 64); err != nil {
			t.Fatalf("ffprobe line %q: %v", l, err)
		}
		pf.width, _ = strconv.Atoi(f[1])
		pf.height, _ = strconv.Atoi(f[2])
		fs = append(fs, pf)
	}
	return fs
}
