package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
)

// clipParams are the parameters of one generated clip (gen-clip.sh options).
type clipParams struct {
	Codec         string
	Width, Height int
	FPS, GOP      int
	BFrames       int
	Audio         string
	Bitrate       string  // "" = gen-clip.sh default (CRF)
	Duration      float64 // seconds
}

func (p clipParams) fileName() string {
	br := ""
	if p.Bitrate != "" {
		br = "_" + p.Bitrate
	}
	return fmt.Sprintf("%s_%dx%d_%dfps_gop%d_b%d_%s%s_%gs.ts",
		p.Codec, p.Width, p.Height, p.FPS, p.GOP, p.BFrames, p.Audio, br, p.Duration)
}

func (p clipParams) args(out string) []string {
	var br []string
	if p.Bitrate != "" {
		br = []string{"--bitrate", p.Bitrate}
	}
	return append(br,
		"--codec", p.Codec,
		"--width", strconv.Itoa(p.Width), "--height", strconv.Itoa(p.Height),
		"--fps", strconv.Itoa(p.FPS), "--gop", strconv.Itoa(p.GOP),
		"--bframes", strconv.Itoa(p.BFrames),
		"--duration", strconv.FormatFloat(p.Duration, 'f', -1, 64),
		"--audio", p.Audio,
		out,
	)
}

// videoAU is one access unit of a clip, in decode order.
type videoAU struct {
	PTS, DTS int64 // 90 kHz, as in the file
	NALUs    [][]byte
	IDR      bool
	PresIdx  int // index in presentation order within the clip
}

// clip is a fully loaded test clip, shared read-only by cameras.
type clip struct {
	Params   clipParams
	Video    []videoAU
	FirstPTS int64 // lowest PTS
	MaxPTS   int64
	Reorder  int64 // max(PTS-DTS), 90 kHz
	VPS      []byte
	SPS      []byte
	PPS      []byte

	AACConfig *mpeg4audio.AudioSpecificConfig
	AAC       [][]byte // AAC access units, 1024 samples each
	ALaw      []byte   // 8 kHz mono A-law samples
}

// clipStore generates clips on demand and loads each once.
type clipStore struct {
	Dir    string
	Script string
	Log    func(msg string, args ...any)

	mu    sync.Mutex
	clips map[clipParams]*clip
}

func (cs *clipStore) get(ctx context.Context, p clipParams) (*clip, error) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if c, ok := cs.clips[p]; ok {
		return c, nil
	}
	path := filepath.Join(cs.Dir, p.fileName())
	if err := cs.ensure(ctx, p, path); err != nil {
		return nil, err
	}
	c, err := loadClip(path, p)
	if err != nil {
		return nil, fmt.Errorf("load clip %s: %w", path, err)
	}
	if cs.clips == nil {
		cs.clips = make(map[clipParams]*clip)
	}
	cs.clips[p] = c
	return c, nil
}

func (cs *clipStore) ensure(ctx context.Context, p clipParams, path string) error {
	if fileExists(path) && (p.Audio != "alaw" || fileExists(path+".alaw")) {
		return nil
	}
	if cs.Log != nil {
		cs.Log("generating clip", "path", path, "script", cs.Script)
	}
	if err := os.MkdirAll(cs.Dir, 0o755); err != nil {
		return fmt.Errorf("create clip dir: %w", err)
	}
	cmd := exec.CommandContext(ctx, cs.Script, p.args(path)...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("generate clip %s with %s: %w: %s", path, cs.Script, err, bytes.TrimSpace(out.Bytes()))
	}
	return nil
}

func fileExists(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Size() > 0
}

func loadClip(path string, p clipParams) (*clip, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()

	r := &mpegts.Reader{R: bufio.NewReader(f)}
	if err := r.Initialize(); err != nil {
		return nil, fmt.Errorf("read mpeg-ts: %w", err)
	}
	c := &clip{Params: p}
	var decodeErr error
	r.OnDecodeError(func(err error) {
		if decodeErr == nil {
			decodeErr = err
		}
	})

	onVideo := func(pts, dts int64, au [][]byte) error {
		v := videoAU{PTS: pts, DTS: dts}
		for _, n := range au {
			if len(n) == 0 {
				continue
			}
			v.NALUs = append(v.NALUs, n)
			switch p.Codec {
			case "h264":
				switch h264.NALUType(n[0] & 0x1F) {
				case h264.NALUTypeSPS:
					c.SPS = n
				case h264.NALUTypePPS:
					c.PPS = n
				case h264.NALUTypeIDR:
					v.IDR = true
				}
			case "h265":
				switch h265.NALUType((n[0] >> 1) & 0x3F) {
				case h265.NALUType_VPS_NUT:
					c.VPS = n
				case h265.NALUType_SPS_NUT:
					c.SPS = n
				case h265.NALUType_PPS_NUT:
					c.PPS = n
				case h265.NALUType_IDR_W_RADL, h265.NALUType_IDR_N_LP:
					v.IDR = true
				}
			}
		}
		if len(v.NALUs) > 0 {
			c.Video = append(c.Video, v)
		}
		return nil
	}

	for _, tr := range r.Tracks() {
		switch codec := tr.Codec.(type) {
		case *mpegts.CodecH264:
			if p.Codec == "h264" {
				r.OnDataH264(tr, onVideo)
			}
		case *mpegts.CodecH265:
			if p.Codec == "h265" {
				r.OnDataH265(tr, onVideo)
			}
		case *mpegts.CodecMPEG4Audio:
			if p.Audio == "aac" {
				conf := codec.Config
				c.AACConfig = &conf
				r.OnDataMPEG4Audio(tr, func(_ int64, aus [][]byte) error {
					c.AAC = append(c.AAC, aus...)
					return nil
				})
			}
		}
	}

	for {
		err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read mpeg-ts: %w", err)
		}
	}

	if len(c.Video) < 2 {
		return nil, fmt.Errorf("%d %s access units, want at least 2 (first error: %v)", len(c.Video), p.Codec, decodeErr)
	}
	if !c.Video[0].IDR {
		return nil, errors.New("clip does not start with an IDR access unit")
	}
	if c.SPS == nil || c.PPS == nil || (p.Codec == "h265" && c.VPS == nil) {
		return nil, errors.New("parameter sets not found")
	}
	if p.Audio == "aac" && (c.AACConfig == nil || len(c.AAC) == 0) {
		return nil, errors.New("AAC track not found")
	}
	if p.Audio == "alaw" {
		c.ALaw, err = os.ReadFile(path + ".alaw")
		if err != nil {
			return nil, fmt.Errorf("read a-law sidecar: %w", err)
		}
		if len(c.ALaw) < 160 {
			return nil, errors.New("a-law sidecar too short")
		}
	}

	// presentation order, reorder delay
	order := make([]int, len(c.Video))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		return int(c.Video[a].PTS - c.Video[b].PTS)
	})
	for pi, di := range order {
		c.Video[di].PresIdx = pi
	}
	c.FirstPTS = c.Video[order[0]].PTS
	c.MaxPTS = c.Video[order[len(order)-1]].PTS
	for _, v := range c.Video {
		c.Reorder = max(c.Reorder, v.PTS-v.DTS)
	}
	return c, nil
}
