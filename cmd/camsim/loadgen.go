package main

// Load-generator mode (-loadgen): serve hundreds of cameras cheaply.
//
// Every distinct clip is packetised into RTP once, at start-up. Each access
// unit is stored as two packet runs — the NAL units before the first slice
// (AUD, parameter sets) and the slices — and the SEI stamp travels between
// them in a packet of its own (a single-NAL-unit packet, valid for H.264
// packetization-mode 1 and H.265), built per camera and frame: so the stamp
// keeps the camera ID, the frame sequence number and the capture time, and
// a receiver can still count lost frames.
//
// A few shard goroutines (one per CPU) each own a set of cameras and a
// private copy of the packet headers; once per frame period a shard
// rewrites sequence number and timestamp of the shared packets in place and
// writes them to each of its cameras' ServerStream (which marshals them
// synchronously). Cameras start at different points of the clip so their
// keyframes do not all coincide. No faults, no audio, no B-frames.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"time"

	"github.com/pion/rtp"

	"xueliang/ingest/sei"
	"xueliang/storage/recording"
)

// checkLoadgen reports the camera settings the load generator does not
// support.
func checkLoadgen(cams []cameraSpec) []error {
	var errs []error
	for _, c := range cams {
		if c.BFrames != 0 || c.Audio != "none" || c.Drop != 0 || len(c.Stalls) > 0 || len(c.Jumps) > 0 || len(c.Switches) > 0 || c.Metadata != "" {
			errs = append(errs, fmt.Errorf("-loadgen: camera %s: B-frames, audio, metadata and faults are not supported", c.ID))
		}
	}
	return errs
}

// lgFrame is one pre-packetised access unit: pre, then the stamp, then post.
type lgFrame struct {
	pre, post []*rtp.Packet
}

type lgClip struct {
	codec  recording.VideoCodec
	frames []lgFrame
}

// copyFor returns a copy of the packet headers (payloads are shared
// read-only), so that one shard can rewrite them without racing another.
func (c *lgClip) copyFor() *lgClip {
	cp := func(in []*rtp.Packet) []*rtp.Packet {
		out := make([]*rtp.Packet, len(in))
		for i, p := range in {
			q := *p
			out[i] = &q
		}
		return out
	}
	n := &lgClip{codec: c.codec, frames: make([]lgFrame, len(c.frames))}
	for i, f := range c.frames {
		n.frames[i] = lgFrame{pre: cp(f.pre), post: cp(f.post)}
	}
	return n
}

type lgCamera struct {
	cam      *camera
	clip     *lgClip // the shard's copy
	offset   int     // first clip frame
	rtpStart uint32
	seq      uint16
}

type loadgen struct {
	log    *slog.Logger
	fps    int
	shards [][]*lgCamera
}

func newLoadgen(cams []*camera, log *slog.Logger) (*loadgen, error) {
	if len(cams) == 0 {
		return nil, errors.New("-loadgen: no cameras")
	}
	lg := &loadgen{log: log, fps: cams[0].spec.FPS}
	shared := map[*clip]*lgClip{}
	nShards := min(runtime.GOMAXPROCS(0), len(cams))
	lg.shards = make([][]*lgCamera, nShards)
	perShard := make([]map[*lgClip]*lgClip, nShards)
	for i := range perShard {
		perShard[i] = map[*lgClip]*lgClip{}
	}
	for i, c := range cams {
		if c.spec.FPS != lg.fps {
			return nil, fmt.Errorf("-loadgen: camera %s: all cameras need the same fps", c.spec.ID)
		}
		cl := c.clips[0]
		pc, ok := shared[cl]
		if !ok {
			var err error
			if pc, err = packetise(c, cl); err != nil {
				return nil, fmt.Errorf("-loadgen: camera %s: %w", c.spec.ID, err)
			}
			shared[cl] = pc
		}
		s := i % nShards
		sc, ok := perShard[s][pc]
		if !ok {
			sc = pc.copyFor()
			perShard[s][pc] = sc
		}
		start := rand.Uint32()
		if c.spec.RTPStart >= 0 {
			start = uint32(c.spec.RTPStart)
		}
		lg.shards[s] = append(lg.shards[s], &lgCamera{
			cam: c, clip: sc, offset: i * len(pc.frames) / len(cams),
			rtpStart: start, seq: uint16(rand.Uint32()),
		})
	}
	return lg, nil
}

// packetise turns every access unit of cl into RTP packets, with the
// parameter sets in front of IDRs that lack them.
func packetise(c *camera, cl *clip) (*lgClip, error) {
	codec := recording.H264
	var encode func([][]byte) ([]*rtp.Packet, error)
	if c.h265Fmt != nil {
		codec = recording.H265
		enc, err := c.h265Fmt.CreateEncoder()
		if err != nil {
			return nil, err
		}
		encode = enc.Encode
	} else {
		enc, err := c.h264Fmt.CreateEncoder()
		if err != nil {
			return nil, err
		}
		encode = enc.Encode
	}
	out := &lgClip{codec: codec}
	for i := range cl.Video {
		au := buildAU(codec, &cl.Video[i], cl, nil) // nil stamp: split point
		var pre, post [][]byte
		for j, n := range au {
			if n == nil {
				pre, post = au[:j], au[j+1:]
				break
			}
		}
		var f lgFrame
		var err error
		if len(pre) > 0 {
			if f.pre, err = encode(pre); err != nil {
				return nil, err
			}
		}
		if len(post) > 0 {
			if f.post, err = encode(post); err != nil {
				return nil, err
			}
		}
		for _, p := range f.pre {
			p.Marker = false
		}
		for j, p := range f.post {
			p.Marker = j == len(f.post)-1
		}
		out.frames = append(out.frames, f)
	}
	return out, nil
}

func (lg *loadgen) run(ctx context.Context) {
	start := time.Now()
	lg.log.Info("load generator started", "shards", len(lg.shards), "fps", lg.fps)
	done := make(chan struct{})
	for _, sh := range lg.shards {
		go func() {
			defer func() { done <- struct{}{} }()
			lg.runShard(ctx, start, sh)
		}()
	}
	for range lg.shards {
		<-done
	}
}

func (lg *loadgen) runShard(ctx context.Context, start time.Time, cams []*lgCamera) {
	frameDur := time.Second / time.Duration(lg.fps)
	ticks := uint32(videoClockRate / lg.fps)
	timer := time.NewTimer(0)
	defer timer.Stop()
	var late int
	for n := 0; ; n++ {
		captured := start.Add(time.Duration(n) * frameDur)
		if wait := time.Until(captured); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		} else if ctx.Err() != nil {
			return
		} else if wait < -time.Second {
			if late++; late == 1 || late%1000 == 0 {
				lg.log.Warn("load generator is late", "behind", -wait, "times", late)
			}
		}
		for _, c := range cams {
			f := &c.clip.frames[(c.offset+n)%len(c.clip.frames)]
			ts := c.rtpStart + uint32(n)*ticks
			write := func(p *rtp.Packet) {
				p.SequenceNumber = c.seq
				p.Timestamp = ts
				c.seq++
				c.cam.write(c.cam.videoMedia, p, captured)
			}
			for _, p := range f.pre {
				write(p)
			}
			stamp := sei.NAL(c.clip.codec, sei.Stamp{Camera: c.cam.spec.ID, Seq: uint64(n), Captured: captured})
			write(&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96}, Payload: stamp})
			for _, p := range f.post {
				write(p)
			}
		}
	}
}
