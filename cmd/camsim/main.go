// Command camsim simulates village cameras: an RTSP server (gortsplib) with
// one path per camera (/cam1 ... /camN) that loops a synthetic test clip in
// real time with continuous timestamps, stamps every video access unit with
// an ingest/sei stamp (camera, frame sequence number, capture time) and can
// inject faults (dropped sessions, stalls, RTP timestamp jumps, resolution
// switches). See docs/camsim.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/bluenviron/gortsplib/v4"
)

type config struct {
	Listen   string
	Cameras  []cameraSpec
	ClipsDir string
	Script   string
	ClipDur  time.Duration
	User     string
	Pass     string
	Verbose  bool
	// Loadgen selects the cheap load-generator mode (loadgen.go).
	Loadgen bool
}

// multiFlag is a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, " ") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

const usageHead = `camsim — simulated RTSP cameras for xueliang tests and benchmarks.

Usage:
  camsim [flags]

Serves rtsp://LISTEN/cam1 ... /camN (TCP/interleaved transport only). Each camera
loops a clip made by scripts/gen-clip.sh in real time, with continuous
timestamps and an SEI stamp (ingest/sei) in every video access unit. When
ready it prints one line on stdout:
  camsim: ready rtsp://HOST:PORT

Global flags set the defaults of every camera; -camera overrides them for one
camera (repeatable; an ID outside cam1..camN adds a camera):
  -camera 'cam2:codec=h265'  -camera 'cam3:audio=aac,drop=15s'
Keys: codec=h264|h265 size=WxH width=N height=N fps=N gop=N
      bframes=on|off|N audio=none|aac|alaw rtpstart=N|random
      drop=DUR stall=DUR@AT jump=[+-]DUR@AT switch=AT:WxH
      metadata=on|off|garbage events=EVERY/FOR event=FROM-TO
      clip=PATH (serve this MPEG-TS clip, video only, instead of a generated one)
      (stall, jump, switch and event may repeat; an empty value clears them)

Flags:
`

func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("camsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usageHead)
		fs.PrintDefaults()
	}
	var cfg config
	fs.StringVar(&cfg.Listen, "listen", "127.0.0.1:8554", "RTSP listen address (port 0 picks a free port)")
	n := fs.Int("cameras", 1, "number of cameras cam1..camN")
	var cams multiFlag
	fs.Var(&cams, "camera", "per-camera settings `ID:key=value,...` (repeatable)")
	fs.StringVar(&cfg.ClipsDir, "clips", "testdata/clips", "clip cache directory")
	fs.StringVar(&cfg.Script, "script", "scripts/gen-clip.sh", "clip generator, run when a clip is missing")
	fs.DurationVar(&cfg.ClipDur, "clipdur", 10*time.Second, "length of generated clips (the loop period)")
	fs.StringVar(&cfg.User, "user", "", "require this RTSP user (basic or digest auth); empty = no auth")
	fs.StringVar(&cfg.Pass, "pass", "", "RTSP password for -user")
	fs.BoolVar(&cfg.Verbose, "v", false, "debug logging (connections)")
	fs.BoolVar(&cfg.Loadgen, "loadgen", false, "load-generator mode: packetise each clip once and replay the packets to every camera (no faults, no audio, no B-frames)")

	// global camera defaults, applied as key=value in this order
	globals := []struct{ key, def, usage string }{
		{"codec", "h264", "video codec h264|h265"},
		{"size", "320x240", "video size WxH"},
		{"fps", "25", "frames per second"},
		{"gop", "50", "GOP length in frames (every GOP starts with an IDR)"},
		{"bframes", "off", "B-frames: on (=2), off, or a count"},
		{"audio", "none", "audio track: none, aac (AAC-LC 48 kHz) or alaw (G.711 A-law 8 kHz)"},
		{"bitrate", "", "video bitrate of generated clips, e.g. 4M; empty = CRF 23"},
		{"rtpstart", "random", "initial video RTP timestamp, e.g. 4294960000 to wrap after ~0.08 s"},
		{"drop", "", "fault: close every session of each camera every `DUR`"},
		{"stall", "", "fault: send nothing for DUR starting at AT: `DUR@AT`"},
		{"jump", "", "fault: shift RTP timestamps by DUR from AT on: `[+-]DUR@AT`"},
		{"switch", "", "fault: switch to another resolution at AT: `AT:WxH`"},
	}
	gvals := make([]*string, len(globals))
	for i, g := range globals {
		gvals[i] = fs.String(g.key, g.def, g.usage)
	}
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *n < 0 || *n > 1000 {
		return cfg, fmt.Errorf("-cameras %d: want 0..1000", *n)
	}
	if cfg.ClipDur < time.Second {
		return cfg, fmt.Errorf("-clipdur %s: want at least 1s", cfg.ClipDur)
	}
	if cfg.Pass != "" && cfg.User == "" {
		return cfg, errors.New("-pass needs -user")
	}

	base := defaultSpec()
	var errs []error
	for i, g := range globals {
		if *gvals[i] == "" {
			continue
		}
		if err := base.apply(g.key, *gvals[i]); err != nil {
			errs = append(errs, fmt.Errorf("-%s: %w", g.key, err))
		}
	}
	byID := map[string]int{}
	for i := 1; i <= *n; i++ {
		s := base
		s.ID = "cam" + strconv.Itoa(i)
		byID[s.ID] = len(cfg.Cameras)
		cfg.Cameras = append(cfg.Cameras, s)
	}
	for _, c := range cams {
		id, list, err := parseCameraFlag(c)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		i, ok := byID[id]
		if !ok {
			s := base
			s.ID = id
			i = len(cfg.Cameras)
			byID[id] = i
			cfg.Cameras = append(cfg.Cameras, s)
		}
		// copy fault slices so cameras never share backing arrays
		s := &cfg.Cameras[i]
		s.Stalls = append([]stallFault(nil), s.Stalls...)
		s.Jumps = append([]jumpFault(nil), s.Jumps...)
		s.Switches = append([]switchFault(nil), s.Switches...)
		if err := s.applyList(list); err != nil {
			errs = append(errs, fmt.Errorf("-camera %s: %w", id, err))
		}
	}
	for i := range cfg.Cameras {
		if err := cfg.Cameras[i].validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if len(cfg.Cameras) == 0 {
		errs = append(errs, errors.New("no cameras"))
	}
	if cfg.Loadgen {
		errs = append(errs, checkLoadgen(cfg.Cameras)...)
	}
	return cfg, errors.Join(errs...)
}

func main() {
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "camsim:", err)
		os.Exit(2)
	}
	level := slog.LevelInfo
	if cfg.Verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, log, func(url string) {
		fmt.Printf("camsim: ready %s\n", url)
	}); err != nil {
		log.Error("camsim failed", "err", err)
		os.Exit(1)
	}
}

// run loads the clips, starts the RTSP server and the cameras, calls ready
// with the server URL and serves until ctx ends.
func run(ctx context.Context, cfg config, log *slog.Logger, ready func(url string)) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	store := &clipStore{Dir: cfg.ClipsDir, Script: cfg.Script, Log: log.Info}
	h := &handler{cams: map[string]*camera{}, user: cfg.User, pass: cfg.Pass, log: log}
	var cams []*camera
	for _, spec := range cfg.Cameras {
		clips, err := loadCameraClips(ctx, store, spec, cfg.ClipDur)
		if err != nil {
			return fmt.Errorf("camera %s: %w", spec.ID, err)
		}
		c := newCamera(spec, clips, log)
		cams = append(cams, c)
		h.cams[spec.ID] = c
	}

	var ln net.Listener
	srv := &gortsplib.Server{
		Handler:     h,
		RTSPAddress: cfg.Listen,
		Listen: func(network, address string) (net.Listener, error) {
			l, err := net.Listen(network, address)
			ln = l
			if err == nil && cfg.Loadgen {
				return batchListener{l}, nil
			}
			return l, err
		},
	}
	if err := srv.Start(); err != nil {
		return fmt.Errorf("start rtsp server on %s: %w", cfg.Listen, err)
	}
	defer srv.Close()

	for _, c := range cams {
		c.stream = &gortsplib.ServerStream{Server: srv, Desc: c.description()}
		if err := c.stream.Initialize(); err != nil {
			return fmt.Errorf("camera %s: init stream: %w", c.spec.ID, err)
		}
		defer c.stream.Close()
	}

	url := "rtsp://" + ln.Addr().String()
	log.Info("listening", "url", url, "cameras", len(cams), "auth", cfg.User != "")

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, len(cams)+1)
	if cfg.Loadgen {
		lg, err := newLoadgen(cams, log)
		if err != nil {
			return err
		}
		wg.Go(func() { lg.run(ctx) })
		cams = nil
	}
	for _, c := range cams {
		wg.Go(func() {
			if err := c.run(ctx); err != nil {
				errc <- fmt.Errorf("camera %s: %w", c.spec.ID, err)
				cancel()
			}
		})
	}
	go func() {
		// Wait returns when the server fails or is closed.
		if err := srv.Wait(); err != nil && ctx.Err() == nil {
			errc <- fmt.Errorf("rtsp server: %w", err)
			cancel()
		}
	}()
	if ready != nil {
		ready(url)
	}
	<-ctx.Done()
	wg.Wait()
	var err error
	select {
	case err = <-errc:
	default:
	}
	log.Info("shutting down")
	return err
}

func loadCameraClips(ctx context.Context, store *clipStore, s cameraSpec, dur time.Duration) ([]*clip, error) {
	if s.Clip != "" {
		if s.Audio != "none" || len(s.Switches) > 0 {
			return nil, fmt.Errorf("clip=%s: audio and switch faults need generated clips", s.Clip)
		}
		c, err := loadClip(s.Clip, clipParams{Codec: s.Codec, Width: s.Width, Height: s.Height, FPS: s.FPS, GOP: s.GOP, Audio: "none"})
		if err != nil {
			return nil, fmt.Errorf("load clip %s: %w", s.Clip, err)
		}
		return []*clip{c}, nil
	}
	p := clipParams{
		Codec: s.Codec, Width: s.Width, Height: s.Height, FPS: s.FPS, GOP: s.GOP,
		BFrames: s.BFrames, Audio: s.Audio, Bitrate: s.Bitrate, Duration: dur.Seconds(),
	}
	main, err := store.get(ctx, p)
	if err != nil {
		return nil, err
	}
	clips := []*clip{main}
	for _, sw := range s.Switches {
		q := p
		q.Width, q.Height, q.Audio = sw.Width, sw.Height, "none"
		c, err := store.get(ctx, q)
		if err != nil {
			return nil, err
		}
		clips = append(clips, c)
	}
	return clips, nil
}
