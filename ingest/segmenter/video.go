package segmenter

import (
	"bytes"
	"errors"
	"time"
	"xueliang/storage/recording"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
)

type videoParams struct {
	vps, sps, pps []byte
}

func (p videoParams) equal(o videoParams) bool {
	return bytes.Equal(p.vps, o.vps) && bytes.Equal(p.sps, o.sps) && bytes.Equal(p.pps, o.pps)
}

type vsample struct {
	pts, dts int64 // session 90 kHz units
	size     int   // AVCC payload bytes (in the fragment buffer, in order)
	key      bool
}

// WriteVideo writes one access unit. pts and dts are 90 kHz on the
// session's unwrapped RTP clock; key marks a random-access AU (IDR/IRAP).
func (w *Writer) WriteVideo(pts, dts int64, au [][]byte, key bool) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	err := w.writeVideoLocked(pts, dts, au, key)
	if w.pauseReq {
		w.pauseLocked()
	}
	return err
}

func (w *Writer) writeVideoLocked(pts, dts int64, au [][]byte, key bool) error {
	if !w.active {
		return errors.New("segmenter: no session")
	}
	if p, ok := w.extractParams(au); ok {
		w.params = p
	}
	// The AU is written (in AVCC form) into the segment file only when it
	// joins a fragment (startPending/addPending).
	s := vsample{pts: pts, dts: dts, size: avccSize(au), key: key}

	if w.cur == nil {
		w.checkClosingLocked(s.dts)
		if w.paused && (!key || w.cfg.Quota.Full()) {
			w.refuseFrame(s)
			return nil
		}
		if !key {
			w.stats.DroppedVideo++
			return nil
		}
		if err := w.openSegmentLocked(s); errors.Is(err, errSpoolFull) {
			w.refuseFrame(s)
			w.pauseReq = true
			return nil
		} else if err != nil {
			w.stats.DroppedVideo++
			w.stats.WriteErrors++
			return err
		}
		if w.paused {
			w.paused = false
			q := w.cfg.Quota
			w.log.Info("spool has room, recording resumed", "spool_bytes", q.Bytes(), "spool_cap", q.Cap())
		}
		w.startPending(s, au)
		w.countVideo(s)
		return nil
	}

	if key {
		changed := !w.params.equal(w.cur.params)
		segLen := s.pts - w.cur.startPTS
		if changed || segLen >= w.cur.limit {
			if changed {
				w.log.Info("parameter sets changed, starting a new segment")
			}
			w.finishClosingLocked()
			w.writeStageLocked(&w.frag) // the stage is the current fragment's
			w.closing = &closingSeg{seg: w.cur, pending: w.pending, frag: w.frag, next: s,
				boundaryDTS: s.dts}
			if a := w.sess.Audio; a != nil {
				w.closing.boundaryA = recording.MulDiv(s.pts-w.sess.AnchorPTS, int64(a.Rate()), recording.VideoTimescale)
			}
			w.cur, w.pending, w.frag = nil, nil, openFrag{}
			if w.sess.Audio == nil {
				w.finishClosingLocked()
			}
			if err := w.openSegmentLocked(s); errors.Is(err, errSpoolFull) {
				w.refuseFrame(s)
				w.pauseReq = true
				return nil
			} else if err != nil {
				w.pending = nil
				w.stats.DroppedVideo++
				w.stats.WriteErrors++
				return err
			}
			w.startPending(s, au)
			w.countVideo(s)
			return nil
		}
		w.flushLocked(w.cur, w.pending, &w.frag, &s, false)
		w.startPending(s, au)
		w.countVideo(s)
		return nil
	}

	w.checkClosingLocked(s.dts)
	if len(w.pending) > 0 && (s.dts-w.pending[0].dts >= durTo90k(w.cfg.MaxFragmentDuration) ||
		recording.HeaderNeed(len(w.pending)+1, w.audioNeedLocked(0)) > w.frag.head) {
		// Too long, or its headers would not fit the reservation: the
		// sample starts a continuation fragment.
		w.flushLocked(w.cur, w.pending, &w.frag, &s, false)
		w.startPending(s, au)
	} else {
		w.addPending(s, au)
	}
	w.countVideo(s)
	return nil
}

// startPending starts the next fragment of the current segment with s,
// whose NAL units are au: the pending samples (flushed, refused or handed
// to a closing segment) are forgotten.
func (w *Writer) startPending(s vsample, au [][]byte) {
	w.pending = w.pending[:0]
	w.frag = openFrag{seg: w.cur, off: w.cur.size, head: w.headroom}
	w.addPending(s, au)
}

// addPending adds s to the fragment being built and writes au behind its
// header reservation. A failed write is remembered: the fragment is dropped
// at flush. The quota accounts the bytes (with the reservation, at the
// first sample) before they are written; when it refuses them, the
// fragment is refused and the caller pauses (pauseReq).
func (w *Writer) addPending(s vsample, au [][]byte) {
	fr := &w.frag
	s.size = avccSize(au)
	w.pending = append(w.pending, s)
	if fr.err == nil && w.cfg.Quota != nil {
		n := int64(s.size)
		if len(w.pending) == 1 {
			n += int64(fr.head)
		}
		if !w.admitLocked(w.cur, n) {
			fr.err = errSpoolFull
			w.pauseReq = true
		} else {
			fr.reserved += n
		}
	}
	if fr.err == nil {
		w.stageLocked(fr, s.size, func(b []byte) []byte { return appendAVCC(b, au) })
	}
	fr.videoLen += s.size
}

func (w *Writer) countVideo(s vsample) {
	w.stats.VideoFrames++
	if s.key {
		w.stats.LastKeyframe = w.wallLocked(s.pts)
	}
}

func (w *Writer) extractParams(au [][]byte) (videoParams, bool) {
	p := w.params
	found := false
	for _, n := range au {
		if len(n) == 0 {
			continue
		}
		switch w.sess.Video.Codec {
		case recording.H264:
			switch h264.NALUType(n[0] & 0x1f) {
			case h264.NALUTypeSPS:
				p.sps, found = n, true
			case h264.NALUTypePPS:
				p.pps, found = n, true
			}
		case recording.H265:
			switch h265.NALUType((n[0] >> 1) & 0x3f) {
			case h265.NALUType_VPS_NUT:
				p.vps, found = n, true
			case h265.NALUType_SPS_NUT:
				p.sps, found = n, true
			case h265.NALUType_PPS_NUT:
				p.pps, found = n, true
			}
		}
	}
	if found {
		// Copy: the NALUs may alias a reused buffer.
		p = videoParams{vps: bytes.Clone(p.vps), sps: bytes.Clone(p.sps), pps: bytes.Clone(p.pps)}
	}
	return p, found
}

// wallLocked converts a session 90 kHz timestamp into wall-clock time.
func (w *Writer) wallLocked(pts int64) time.Time {
	return w.sess.Anchor.Add(recording.TicksToDuration(pts-w.sess.AnchorPTS, recording.VideoTimescale))
}

// durTo90k converts a duration to 90 kHz ticks.
func durTo90k(d time.Duration) int64 {
	return recording.MulDiv(int64(d), recording.VideoTimescale, int64(time.Second))
}
