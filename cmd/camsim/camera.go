package main

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/rtp"

	"xueliang/ingest/sei"
	"xueliang/storage/recording"
)

const (
	videoClockRate = 90000
	alawChunk      = 160 // samples per RTP packet: 20 ms at 8 kHz
	aacFrameLen    = 1024
)

// camera simulates one camera: it "captures" frames in real time from the
// moment it starts, stamps them, and writes them to its ServerStream, which
// fans them out to every reader.
type camera struct {
	spec  cameraSpec
	log   *slog.Logger
	clips []*clip // [0] = main clip, then one per switch fault

	stream     *gortsplib.ServerStream
	videoMedia *description.Media
	audioMedia *description.Media
	metaMedia  *description.Media // ONVIF metadata (metadata.go), nil when off
	h264Fmt    *format.H264
	h265Fmt    *format.H265

	mu       sync.Mutex
	sessions map[*gortsplib.ServerSession]*gortsplib.ServerConn
}

func newCamera(spec cameraSpec, clips []*clip, log *slog.Logger) *camera {
	c := &camera{
		spec:     spec,
		log:      log,
		clips:    clips,
		sessions: make(map[*gortsplib.ServerSession]*gortsplib.ServerConn),
	}
	main := clips[0]
	var vf format.Format
	if spec.Codec == "h265" {
		c.h265Fmt = &format.H265{PayloadTyp: 96, VPS: main.VPS, SPS: main.SPS, PPS: main.PPS}
		vf = c.h265Fmt
	} else {
		c.h264Fmt = &format.H264{PayloadTyp: 96, PacketizationMode: 1, SPS: main.SPS, PPS: main.PPS}
		vf = c.h264Fmt
	}
	c.videoMedia = &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{vf}}
	switch spec.Audio {
	case "aac":
		c.audioMedia = &description.Media{Type: description.MediaTypeAudio, Formats: []format.Format{&format.MPEG4Audio{
			PayloadTyp:       97,
			Config:           main.AACConfig,
			SizeLength:       13,
			IndexLength:      3,
			IndexDeltaLength: 3,
		}}}
	case "alaw":
		c.audioMedia = &description.Media{Type: description.MediaTypeAudio, Formats: []format.Format{&format.G711{
			PayloadTyp:   8,
			MULaw:        false,
			SampleRate:   8000,
			ChannelCount: 1,
		}}}
	}
	c.metaMedia = newMetadataMedia(spec)
	return c
}

func (c *camera) description() *description.Session {
	d := &description.Session{Title: "camsim " + c.spec.ID, Medias: []*description.Media{c.videoMedia}}
	if c.audioMedia != nil {
		d.Medias = append(d.Medias, c.audioMedia)
	}
	if c.metaMedia != nil {
		d.Medias = append(d.Medias, c.metaMedia)
	}
	return d
}

func (c *camera) addSession(ss *gortsplib.ServerSession, sc *gortsplib.ServerConn) {
	c.mu.Lock()
	c.sessions[ss] = sc
	c.mu.Unlock()
}

func (c *camera) removeSession(ss *gortsplib.ServerSession) {
	c.mu.Lock()
	delete(c.sessions, ss)
	c.mu.Unlock()
}

// dropSessions closes every session (and its connection) of the camera.
func (c *camera) dropSessions() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for ss, sc := range c.sessions {
		ss.Close()
		if sc != nil {
			sc.Close()
		}
		delete(c.sessions, ss)
		n++
	}
	return n
}

// ticksToDur converts 90 kHz ticks to a duration without overflowing.
func ticksToDur(t int64, rate int64) time.Duration {
	return time.Duration(t/rate)*time.Second + time.Duration(t%rate)*time.Second/time.Duration(rate)
}

func durToTicks(d time.Duration, rate int64) int64 {
	return int64(d/time.Second)*rate + int64(d%time.Second)*rate/int64(time.Second)
}

// videoState walks the clip(s) in decode order with continuous timestamps.
type videoState struct {
	cam        *camera
	frameTicks int64
	reorder    int64 // max PTS-DTS over all clips: send delay after capture

	cur        *clip
	curIdx     int // index into cam.clips
	idx        int // next AU in cur.Video
	base       int64
	seqBase    int64
	maxPTS     int64 // highest media PTS produced
	maxSeq     int64
	nextSwitch int
}

type videoFrame struct {
	au       *videoAU
	clip     *clip
	pts, dts int64 // media time, 90 kHz, 0 = first captured frame
	// sendPTS is the latest capture time among the frames up to this one in
	// decode order: an encoder can emit the access unit only then (a
	// keyframe right away, a B-frame after the reference it follows).
	sendPTS  int64
	seq      uint64
	switched bool
}

func newVideoState(c *camera) *videoState {
	v := &videoState{cam: c, frameTicks: int64(videoClockRate / c.spec.FPS), cur: c.clips[0]}
	for _, cl := range c.clips {
		v.reorder = max(v.reorder, cl.Reorder)
	}
	v.maxPTS = -v.frameTicks
	v.maxSeq = -1
	return v
}

func (v *videoState) restart(cl *clip) {
	v.cur = cl
	v.idx = 0
	v.base = v.maxPTS + v.frameTicks
	v.seqBase = v.maxSeq + 1
}

func (v *videoState) sendAt(f videoFrame) time.Duration {
	return ticksToDur(f.sendPTS, videoClockRate)
}

func (v *videoState) next() videoFrame {
	switched := false
	if v.idx >= len(v.cur.Video) {
		v.restart(v.cur)
	} else if sw := v.cam.spec.Switches; v.nextSwitch < len(sw) {
		au := &v.cur.Video[v.idx]
		dts := v.base + au.DTS - v.cur.FirstPTS
		if ticksToDur(dts+v.reorder, videoClockRate) >= sw[v.nextSwitch].At {
			v.nextSwitch++
			v.curIdx = v.nextSwitch // clips[i] is the clip of switch i-1
			v.restart(v.cam.clips[v.curIdx])
			switched = true
		}
	}
	au := &v.cur.Video[v.idx]
	v.idx++
	f := videoFrame{
		au:       au,
		clip:     v.cur,
		pts:      v.base + au.PTS - v.cur.FirstPTS,
		dts:      v.base + au.DTS - v.cur.FirstPTS,
		seq:      uint64(v.seqBase + int64(au.PresIdx)),
		switched: switched,
	}
	v.maxPTS = max(v.maxPTS, f.pts)
	v.maxSeq = max(v.maxSeq, int64(f.seq))
	f.sendPTS = v.maxPTS
	return f
}

// audioState produces a continuous audio stream looping the clip's audio.
type audioState struct {
	rate int64
	n    int64 // next frame/chunk number
	aac  [][]byte
	alaw []byte
}

func (a *audioState) frameLen() int64 {
	if a.aac != nil {
		return aacFrameLen
	}
	return alawChunk
}

// sendAt returns the capture (= send) time of the next audio frame.
func (a *audioState) sendAt() time.Duration {
	return ticksToDur(a.n*a.frameLen(), a.rate)
}

func (a *audioState) payload() []byte {
	if a.aac != nil {
		return a.aac[a.n%int64(len(a.aac))]
	}
	out := make([]byte, alawChunk)
	off := (a.n * alawChunk) % int64(len(a.alaw))
	for i := range out {
		out[i] = a.alaw[(off+int64(i))%int64(len(a.alaw))]
	}
	return out
}

// run captures and sends until ctx ends.
func (c *camera) run(ctx context.Context) error {
	start := time.Now()
	c.log.Info("camera started", "spec", c.spec.String())

	if c.spec.Drop > 0 {
		go c.runDrops(ctx)
	}
	defer c.startMetadata(ctx, start)()

	videoRTPStart := uint32(rand.Uint32())
	if c.spec.RTPStart >= 0 {
		videoRTPStart = uint32(c.spec.RTPStart)
	}
	audioRTPStart := rand.Uint32()

	var encode func([][]byte) ([]*rtp.Packet, error)
	seiCodec := recording.H264
	if c.h265Fmt != nil {
		enc, err := c.h265Fmt.CreateEncoder()
		if err != nil {
			return fmt.Errorf("create h265 encoder: %w", err)
		}
		encode = enc.Encode
		seiCodec = recording.H265
	} else {
		enc, err := c.h264Fmt.CreateEncoder()
		if err != nil {
			return fmt.Errorf("create h264 encoder: %w", err)
		}
		encode = enc.Encode
	}

	var audio *audioState
	var encodeAudio func([]byte) ([]*rtp.Packet, error)
	switch c.spec.Audio {
	case "aac":
		main := c.clips[0]
		audio = &audioState{rate: int64(main.AACConfig.SampleRate), aac: main.AAC}
		enc, err := c.audioMedia.Formats[0].(*format.MPEG4Audio).CreateEncoder()
		if err != nil {
			return fmt.Errorf("create aac encoder: %w", err)
		}
		encodeAudio = func(b []byte) ([]*rtp.Packet, error) { return enc.Encode([][]byte{b}) }
	case "alaw":
		audio = &audioState{rate: 8000, alaw: c.clips[0].ALaw}
		enc, err := c.audioMedia.Formats[0].(*format.G711).CreateEncoder()
		if err != nil {
			return fmt.Errorf("create g711 encoder: %w", err)
		}
		encodeAudio = enc.Encode
	}

	video := newVideoState(c)
	pending := video.next()
	faults := &faultState{spec: &c.spec, log: c.log}
	var lastVideoTS uint32
	timer := time.NewTimer(0)
	defer timer.Stop()

	for {
		at := video.sendAt(pending)
		isAudio := audio != nil && audio.sendAt() < at
		if isAudio {
			at = audio.sendAt()
		}
		if wait := time.Until(start.Add(at)); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return nil
			case <-timer.C:
			}
		} else if ctx.Err() != nil {
			return nil
		}

		if isAudio {
			captured := audio.sendAt()
			if !faults.inStall(captured) {
				ts := audioRTPStart + uint32(audio.n*audio.frameLen()) + uint32(durToTicks(faults.jump(captured), audio.rate))
				pkts, err := encodeAudio(audio.payload())
				if err != nil {
					return fmt.Errorf("encode audio: %w", err)
				}
				for _, p := range pkts {
					p.Timestamp = ts
					c.write(c.audioMedia, p, start.Add(captured))
				}
			}
			audio.n++
			continue
		}

		f := pending
		pending = video.next()
		captured := ticksToDur(f.pts, videoClockRate)
		faults.checkJump(captured)
		if f.switched {
			c.log.Info("fault: resolution switch", "camera", c.spec.ID,
				"width", f.clip.Params.Width, "height", f.clip.Params.Height, "at", captured)
			if c.h265Fmt != nil {
				c.h265Fmt.SafeSetParams(f.clip.VPS, f.clip.SPS, f.clip.PPS)
			} else {
				c.h264Fmt.SafeSetParams(f.clip.SPS, f.clip.PPS)
			}
		}
		if faults.stalled(captured) {
			continue
		}
		stamp := sei.NAL(seiCodec, sei.Stamp{Camera: c.spec.ID, Seq: f.seq, Captured: start.Add(captured)})
		au := buildAU(seiCodec, f.au, f.clip, stamp)
		pkts, err := encode(au)
		if err != nil {
			return fmt.Errorf("encode video: %w", err)
		}
		ts := videoRTPStart + uint32(f.pts) + uint32(durToTicks(faults.jump(captured), videoClockRate))
		if ts < lastVideoTS && lastVideoTS-ts > 1<<31 {
			c.log.Info("video rtp timestamp wrapped", "camera", c.spec.ID, "from", lastVideoTS, "to", ts)
		}
		lastVideoTS = ts
		for _, p := range pkts {
			p.Timestamp = ts
			c.write(c.videoMedia, p, start.Add(captured))
		}
	}
}

func (c *camera) write(m *description.Media, p *rtp.Packet, ntp time.Time) {
	// errors only occur when the stream is closed during shutdown
	_ = c.stream.WritePacketRTPWithNTP(m, p, ntp)
}

func (c *camera) runDrops(ctx context.Context) {
	t := time.NewTicker(c.spec.Drop)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n := c.dropSessions(); n > 0 {
				c.log.Info("fault: drop sessions", "camera", c.spec.ID, "sessions", n)
			}
		}
	}
}

// buildAU returns the access unit to send: parameter sets in front of an IDR
// when the clip's AU lacks them, and the stamp before the first VCL NAL unit.
func buildAU(codec recording.VideoCodec, au *videoAU, cl *clip, stamp []byte) [][]byte {
	out := make([][]byte, 0, len(au.NALUs)+4)
	if au.IDR && !hasParams(codec, au.NALUs) {
		if codec == recording.H265 {
			out = append(out, cl.VPS)
		}
		out = append(out, cl.SPS, cl.PPS)
	}
	inserted := false
	for _, n := range au.NALUs {
		if !inserted && isVCL(codec, n) {
			out = append(out, stamp)
			inserted = true
		}
		out = append(out, n)
	}
	if !inserted {
		out = append(out, stamp)
	}
	return out
}

func isVCL(codec recording.VideoCodec, n []byte) bool {
	if codec == recording.H265 {
		return (n[0]>>1)&0x3F < 32
	}
	t := n[0] & 0x1F
	return t >= 1 && t <= 5
}

func hasParams(codec recording.VideoCodec, nalus [][]byte) bool {
	sps := false
	for _, n := range nalus {
		if codec == recording.H265 {
			sps = sps || (n[0]>>1)&0x3F == 33
		} else {
			sps = sps || n[0]&0x1F == 7
		}
	}
	return sps
}

// faultState tracks the time-based faults of one camera. Times are capture
// times since the camera started.
type faultState struct {
	spec      *cameraSpec
	log       *slog.Logger
	stallOn   bool
	jumpsDone int
}

// inStall reports whether capture time t is inside a stall.
func (f *faultState) inStall(t time.Duration) bool {
	_, in := f.stallAt(t)
	return in
}

func (f *faultState) stallAt(t time.Duration) (stallFault, bool) {
	for _, s := range f.spec.Stalls {
		if t >= s.At && t < s.At+s.For {
			return s, true
		}
	}
	return stallFault{}, false
}

// stalled is inStall for the video track, which logs stall transitions.
func (f *faultState) stalled(t time.Duration) bool {
	cur, in := f.stallAt(t)
	if in != f.stallOn {
		f.stallOn = in
		if in {
			f.log.Info("fault: stall started", "camera", f.spec.ID, "at", cur.At, "for", cur.For)
		} else {
			f.log.Info("fault: stall ended", "camera", f.spec.ID, "at", t)
		}
	}
	return in
}

// jump returns the total RTP offset applied at capture time t.
func (f *faultState) jump(t time.Duration) time.Duration {
	var d time.Duration
	for _, j := range f.spec.Jumps {
		if t >= j.At {
			d += j.By
		}
	}
	return d
}

func (f *faultState) checkJump(t time.Duration) {
	for f.jumpsDone < len(f.spec.Jumps) && t >= f.spec.Jumps[f.jumpsDone].At {
		j := f.spec.Jumps[f.jumpsDone]
		f.log.Info("fault: rtp timestamp jump", "camera", f.spec.ID, "at", j.At, "by", j.By)
		f.jumpsDone++
	}
}
