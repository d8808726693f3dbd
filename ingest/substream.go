package ingest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
	"xueliang/ingest/live"
	"xueliang/ingest/rtsperr"
	"xueliang/storage/recording"

	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/rtp"
)

// runSubStream reads the camera's sub stream for motion analysis until ctx
// ends: video only, every access unit offered to w (which drops when its
// queue is full), reconnecting with the puller's backoff. It records
// nothing and never touches the main stream's session.
func (p *Puller) runSubStream(ctx context.Context, w *motionWorker) {
	log := p.log.With("stream", "sub")
	backoff := p.opts.BackoffMin
	for {
		started := time.Now()
		err := p.subSession(ctx, w)
		if ctx.Err() != nil {
			return
		}
		w.stats.subReconnects.Add(1)
		if errors.Is(err, errVideoStall) {
			w.stats.subVideoStalls.Add(1)
		}
		if time.Since(started) >= p.opts.BackoffResetAfter {
			backoff = p.opts.BackoffMin
		}
		wait := time.Duration(float64(backoff) * (0.5 + 0.5*p.opts.Jitter()))
		log.Warn("sub stream ended, reconnecting", "err", rtsperr.NewRedactor(p.cfg.SubURL).Err(err), "wait", wait)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		backoff = min(backoff*2, p.opts.BackoffMax)
	}
}

// subSession runs one sub-stream session. Wall-clock time is anchored like
// the main stream's: at the first access unit, from the RTCP sender report
// when known, otherwise the receive time, then following the RTP clock.
func (p *Puller) subSession(ctx context.Context, w *motionWorker) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	c, u, _, closeClient, err := p.dial(ctx, p.cfg.SubURL)
	if err != nil {
		return fmt.Errorf("sub stream: %w", err)
	}
	defer closeClient()

	desc, _, err := c.Describe(u)
	if err != nil {
		return fmt.Errorf("describe: %w", err)
	}
	var medi *description.Media
	var forma format.Format
	for _, m := range desc.Medias {
		for _, f := range m.Formats {
			switch f.(type) {
			case *format.H264, *format.H265:
				if medi == nil {
					medi, forma = m, f
				}
			}
		}
	}
	if medi == nil {
		return errors.New("no H264 or H265 video track")
	}
	vt := &videoTrack{}
	codec := recording.H264
	switch f := forma.(type) {
	case *format.H264:
		vt.dec264, err = newH264Depacketizer(f)
		vt.sps, vt.pps = f.SafeParams()
	case *format.H265:
		vt.isH265, codec = true, recording.H265
		vt.dec265, err = newH265Depacketizer(f)
		vt.vps, vt.sps, vt.pps = f.SafeParams()
	}
	if err != nil {
		return fmt.Errorf("create video decoder: %w", err)
	}
	if _, err := c.Setup(desc.BaseURL, medi, 0, 0); err != nil {
		return fmt.Errorf("setup video: %w", err)
	}

	var ls *live.Stream // live viewers of the sub stream (nil: off)
	if p.opts.Live != nil {
		ls = p.opts.Live.Stream(p.cfg.ID, live.Sub)
		defer ls.EndSession()
	}
	var (
		mu        sync.Mutex
		anchored  bool
		anchor    time.Time
		anchorPTS int64
		packets   atomic.Int64 // for the video watchdog
	)
	c.OnPacketRTP(medi, forma, func(pkt *rtp.Packet) {
		packets.Add(1)
		mu.Lock()
		defer mu.Unlock()
		pts, ok := c.PacketPTS2(medi, pkt)
		if !ok {
			return
		}
		au, err := vt.decode(pkt)
		if err != nil || au == nil {
			return
		}
		au, key := vt.prepare(au)
		if !anchored {
			if !key {
				return // the decoder needs a keyframe first anyway
			}
			now := p.opts.Now()
			ntp, ok := c.PacketNTP(medi, pkt)
			var rejected bool
			anchor, rejected = clockAnchor(now, ntp, ok, p.opts.MaxClockSkew)
			if rejected {
				p.log.Warn("sub stream clock off the server's, anchored to the receive time", "offset", ntp.Sub(now))
				p.update(func(st *Status) { st.ClockRejections++ })
			}
			anchorPTS, anchored = pts, true
			if ls != nil {
				ls.StartSession(live.Session{Video: recording.Video{Codec: codec, VPS: vt.vps, SPS: vt.sps, PPS: vt.pps},
					Anchor: anchor, AnchorPTS: pts})
			}
		}
		if ls != nil {
			// DTS only while watched: the extractor restarts at a keyframe.
			if ls.Active() {
				if dts, ok, err := vt.extractDTS(au, pts, key); err != nil {
					vt.resetDTS()
				} else if ok {
					ls.PublishVideo(pts, dts, au, key, p.opts.Now())
				}
			} else {
				vt.resetDTS()
			}
		}
		w.offer(anchor.Add(ticksToWall(pts-anchorPTS)), codec, au)
	})
	if _, err := c.Play(nil); err != nil {
		return fmt.Errorf("play: %w", err)
	}
	url := rtsperr.NewRedactor(p.cfg.SubURL).URL()
	p.log.Info("sub stream started", "url", url)
	stalled := watchVideo(c, &packets, p.opts.VideoTimeout, p.log.With("stream", "sub"), url)
	err = c.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err := stalled(); err != nil {
		return err
	}
	return fmt.Errorf("stream: %w", err)
}

// ticksToWall converts 90 kHz ticks to a duration without overflowing.
func ticksToWall(t int64) time.Duration {
	return time.Duration(t/90000)*time.Second + time.Duration(t%90000)*time.Second/90000
}
