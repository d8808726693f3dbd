package main

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// cameraSpec is the full configuration of one simulated camera.
type cameraSpec struct {
	ID       string
	Codec    string // h264 | h265
	Width    int
	Height   int
	FPS      int
	GOP      int    // frames
	BFrames  int    // 0 = none
	Audio    string // none | aac | alaw
	Bitrate  string // video bitrate for gen-clip.sh, e.g. 4M; "" = CRF 23
	RTPStart int64  // initial RTP timestamp of the video track; -1 = random
	Drop     time.Duration
	Stalls   []stallFault
	Jumps    []jumpFault
	Switches []switchFault
	// Clip is a ready-made MPEG-TS clip (video only, codec as Codec, at
	// FPS, starting with an IDR) served instead of a generated one, e.g. a
	// motion scene of scripts/gen-motion-scene.sh; "" = generate.
	Clip string
	// Metadata is "" (no metadata track), "on" or "garbage"; Schedule is
	// the motion the metadata track reports (metadata.go).
	Metadata string
	Schedule metaSchedule
}

// stallFault: nothing is sent for frames captured in [At, At+For).
type stallFault struct{ At, For time.Duration }

// jumpFault: from At on, RTP timestamps are shifted by By (cumulative).
type jumpFault struct{ At, By time.Duration }

// switchFault: from At on, the camera sends a clip of another resolution.
type switchFault struct {
	At            time.Duration
	Width, Height int
}

func defaultSpec() cameraSpec {
	return cameraSpec{
		Codec:    "h264",
		Width:    320,
		Height:   240,
		FPS:      25,
		GOP:      50,
		Audio:    "none",
		RTPStart: -1,
	}
}

// applyList applies a comma-separated list of key=value settings.
func (s *cameraSpec) applyList(list string) error {
	var errs []error
	for kv := range strings.SplitSeq(list, ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			errs = append(errs, fmt.Errorf("%q: want key=value", kv))
			continue
		}
		if err := s.apply(strings.TrimSpace(k), strings.TrimSpace(v)); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", k, err))
		}
	}
	return errors.Join(errs...)
}

// apply sets one key. Fault keys (stall, jump, switch) accumulate; an empty
// value clears them (so a camera can opt out of global faults).
func (s *cameraSpec) apply(k, v string) error {
	var err error
	switch k {
	case "codec":
		if v != "h264" && v != "h265" {
			return fmt.Errorf("want h264 or h265, got %q", v)
		}
		s.Codec = v
	case "size":
		s.Width, s.Height, err = parseSize(v)
	case "width":
		s.Width, err = parsePositive(v)
	case "height":
		s.Height, err = parsePositive(v)
	case "fps":
		s.FPS, err = parsePositive(v)
	case "gop":
		s.GOP, err = parsePositive(v)
	case "bframes":
		switch v {
		case "on", "true", "yes":
			s.BFrames = 2
		case "off", "false", "no", "0":
			s.BFrames = 0
		default:
			s.BFrames, err = parsePositive(v)
		}
	case "audio":
		if v != "none" && v != "aac" && v != "alaw" {
			return fmt.Errorf("want none, aac or alaw, got %q", v)
		}
		s.Audio = v
	case "bitrate":
		if v == "" || v == "crf" {
			s.Bitrate = ""
			return nil
		}
		if err := checkBitrate(v); err != nil {
			return err
		}
		s.Bitrate = v
	case "rtpstart":
		if v == "random" || v == "" {
			s.RTPStart = -1
			return nil
		}
		n, perr := strconv.ParseUint(v, 10, 32)
		if perr != nil {
			return fmt.Errorf("want 0..4294967295 or random: %w", perr)
		}
		s.RTPStart = int64(n)
	case "drop":
		if v == "" || v == "0" || v == "off" {
			s.Drop = 0
			return nil
		}
		s.Drop, err = parsePositiveDuration(v)
	case "stall":
		if v == "" {
			s.Stalls = nil
			return nil
		}
		d, at, ok := strings.Cut(v, "@")
		if !ok {
			return fmt.Errorf("want DURATION@AT, got %q", v)
		}
		var f stallFault
		if f.For, err = parsePositiveDuration(d); err != nil {
			return err
		}
		if f.At, err = parseAt(at); err != nil {
			return err
		}
		s.Stalls = append(s.Stalls, f)
	case "jump":
		if v == "" {
			s.Jumps = nil
			return nil
		}
		d, at, ok := strings.Cut(v, "@")
		if !ok {
			return fmt.Errorf("want [+|-]DURATION@AT, got %q", v)
		}
		var f jumpFault
		if f.By, err = time.ParseDuration(d); err != nil || f.By == 0 {
			return fmt.Errorf("bad jump %q: want a non-zero duration like +2s or -500ms", d)
		}
		if f.At, err = parseAt(at); err != nil {
			return err
		}
		s.Jumps = append(s.Jumps, f)
	case "switch":
		if v == "" {
			s.Switches = nil
			return nil
		}
		at, size, ok := strings.Cut(v, ":")
		if !ok {
			return fmt.Errorf("want AT:WIDTHxHEIGHT, got %q", v)
		}
		var f switchFault
		if f.At, err = parseAt(at); err != nil {
			return err
		}
		if f.Width, f.Height, err = parseSize(size); err != nil {
			return err
		}
		s.Switches = append(s.Switches, f)
	case "metadata", "events", "event":
		return s.applyMetadata(k, v)
	case "clip":
		s.Clip = v
	default:
		return errors.New("unknown key")
	}
	return err
}

func (s *cameraSpec) validate() error {
	var errs []error
	if s.Width%2 != 0 || s.Height%2 != 0 {
		errs = append(errs, fmt.Errorf("size %dx%d: width and height must be even", s.Width, s.Height))
	}
	for _, sw := range s.Switches {
		if sw.Width%2 != 0 || sw.Height%2 != 0 {
			errs = append(errs, fmt.Errorf("switch size %dx%d: width and height must be even", sw.Width, sw.Height))
		}
	}
	if s.FPS > 120 {
		errs = append(errs, fmt.Errorf("fps %d: at most 120", s.FPS))
	}
	slices.SortFunc(s.Stalls, func(a, b stallFault) int { return int(a.At - b.At) })
	slices.SortFunc(s.Jumps, func(a, b jumpFault) int { return int(a.At - b.At) })
	slices.SortFunc(s.Switches, func(a, b switchFault) int { return int(a.At - b.At) })
	if len(errs) > 0 {
		return fmt.Errorf("camera %s: %w", s.ID, errors.Join(errs...))
	}
	return nil
}

// String renders the spec in the -camera syntax (used in logs).
func (s *cameraSpec) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "codec=%s,size=%dx%d,fps=%d,gop=%d,bframes=%d,audio=%s", s.Codec, s.Width, s.Height, s.FPS, s.GOP, s.BFrames, s.Audio)
	if s.Bitrate != "" {
		fmt.Fprintf(&b, ",bitrate=%s", s.Bitrate)
	}
	if s.Clip != "" {
		fmt.Fprintf(&b, ",clip=%s", s.Clip)
	}
	if s.RTPStart >= 0 {
		fmt.Fprintf(&b, ",rtpstart=%d", s.RTPStart)
	}
	if s.Drop > 0 {
		fmt.Fprintf(&b, ",drop=%s", s.Drop)
	}
	for _, f := range s.Stalls {
		fmt.Fprintf(&b, ",stall=%s@%s", f.For, f.At)
	}
	for _, f := range s.Jumps {
		fmt.Fprintf(&b, ",jump=%s@%s", f.By, f.At)
	}
	for _, f := range s.Switches {
		fmt.Fprintf(&b, ",switch=%s:%dx%d", f.At, f.Width, f.Height)
	}
	b.WriteString(s.metadataString())
	return b.String()
}

// parseCameraFlag splits "cam3:key=v,key=v" into the ID and the list.
func parseCameraFlag(v string) (id, list string, err error) {
	id, list, _ = strings.Cut(v, ":")
	id = strings.TrimSpace(id)
	if id == "" || strings.ContainsAny(id, "/?#= ,") {
		return "", "", fmt.Errorf("camera %q: want ID:key=value,... with an ID without / ? # = , or spaces", v)
	}
	return id, list, nil
}

func parseSize(v string) (int, int, error) {
	ws, hs, ok := strings.Cut(v, "x")
	if !ok {
		return 0, 0, fmt.Errorf("want WIDTHxHEIGHT, got %q", v)
	}
	w, err := parsePositive(ws)
	if err != nil {
		return 0, 0, err
	}
	h, err := parsePositive(hs)
	if err != nil {
		return 0, 0, err
	}
	return w, h, nil
}

func parsePositive(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 || n > math.MaxInt32 {
		return 0, fmt.Errorf("want a positive integer, got %q", v)
	}
	return n, nil
}

func parsePositiveDuration(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("want a positive duration like 15s, got %q", v)
	}
	return d, nil
}

func parseAt(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("want a time since start like 20s, got %q", v)
	}
	return d, nil
}

// checkBitrate accepts an ffmpeg bitrate such as 4M, 500k or 2000000.
func checkBitrate(v string) error {
	num := strings.TrimRight(v, "kKmM")
	if len(v)-len(num) > 1 {
		return fmt.Errorf("want a bitrate like 4M or 500k, got %q", v)
	}
	n, err := strconv.ParseFloat(num, 64)
	if err != nil || n <= 0 || math.IsInf(n, 0) {
		return fmt.Errorf("want a bitrate like 4M or 500k, got %q", v)
	}
	return nil
}
