package segmenter

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
	"xueliang/storage/recording"
)

type segment struct {
	h        *segHandle
	limit    int64 // the segment is cut at the first keyframe this long (90 kHz) after its start
	f        *os.File
	size     int64 // end of the last complete fragment
	seq      int
	startPTS int64 // session 90 kHz (Ps)
	startDTS int64 // session 90 kHz (Ds)
	audioOff int64 // audio units relative to anchor at segStart
	params   videoParams
	prevEnd  int64 // rel pts (from AnchorPTS) of the last fragment's End
	lastSync time.Time
	// alloc is the end of the file's preallocated blocks (writeAtLocked,
	// preallocate).
	alloc int64
}

// buildInit returns the init of a segment with the session's tracks and
// parameter sets p.
func (w *Writer) buildInit(p videoParams) ([]byte, recording.InitInfo, error) {
	v := recording.Video{Codec: w.sess.Video.Codec, VPS: p.vps, SPS: p.sps, PPS: p.pps}
	return recording.BuildInit(v, w.sess.Audio)
}

func (w *Writer) openSegmentLocked(s vsample) (err error) {
	p := w.params
	init, info, err := w.buildInit(p)
	if err != nil {
		w.warnOnce("init:"+err.Error(), "cannot build init, dropping video until parameter sets are known", "err", err)
		return fmt.Errorf("open segment: %w", err)
	}
	initSize := int64(len(init))
	if q := w.cfg.Quota; q != nil {
		if !q.Reserve(initSize) {
			return errSpoolFull
		}
		defer func() {
			if err != nil {
				q.Release(initSize)
			}
		}()
	}
	start := w.wallLocked(s.pts)
	var f *os.File
	var key string
	for range 1000 {
		key = recording.SegmentKey(w.cfg.CameraID, start)
		path := filepath.Join(w.cfg.SpoolRoot, filepath.FromSlash(key))
		if err = os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return fmt.Errorf("open segment: %w", err)
		}
		// Read-write: the index worker hashes the closed file.
		f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, os.ErrExist) {
			// A file of the same instant exists (clock jump): never
			// overwrite recorded bytes, shift by 1 ns.
			start = start.Add(time.Nanosecond)
			continue
		}
		break
	}
	if err != nil {
		return fmt.Errorf("open segment: %w", err)
	}
	if _, err := f.Write(init); err != nil {
		f.Close()
		os.Remove(f.Name())
		return fmt.Errorf("write init: %w", err)
	}
	seg := &segment{
		limit:    w.segmentLimit(),
		f:        f,
		size:     int64(len(init)),
		startPTS: s.pts,
		startDTS: s.dts,
		params:   p,
		prevEnd:  s.pts - w.sess.AnchorPTS,
		lastSync: w.cfg.Now(),
	}
	if a := w.sess.Audio; a != nil {
		seg.audioOff = recording.MulDiv(s.pts-w.sess.AnchorPTS, int64(a.Rate()), recording.VideoTimescale)
	}
	seg.h = &segHandle{
		f: f,
		seg: recording.Segment{
			CameraID:  w.cfg.CameraID,
			Start:     start,
			End:       start,
			ObjectKey: key,
			Size:      seg.size,
			Init:      init,
			Codecs:    info.Codecs,
			Width:     info.Width,
			Height:    info.Height,
			State:     recording.StateRecording,
		},
	}
	w.cur = seg
	w.stats.Segments++
	w.stats.Bytes += seg.size
	// Drop audio before the segment start (unless a cut segment still
	// waits for it).
	for w.closing == nil && len(w.audioQ) > 0 && w.audioQ[0].t < seg.audioOff {
		w.audioQ = w.audioQ[1:]
		w.stats.DroppedAudio++
	}
	w.q.push(op{kind: opCreate, h: seg.h})
	w.log.Debug("segment opened", "key", key)
	return nil
}

// segmentLimit is the length (90 kHz) after which the next segment of the
// session is cut; it counts the segment as opened.
func (w *Writer) segmentLimit() int64 {
	d := durTo90k(w.cfg.SegmentDuration)
	w.sessSegs++
	if !w.cfg.Stagger || w.sessSegs > 1 {
		return d
	}
	sum := sha256.Sum256([]byte(w.cfg.CameraID))                  // well mixed: IDs differ in a digit or two
	u := float64(binary.BigEndian.Uint64(sum[:])>>11) / (1 << 53) // [0, 1)
	return d/10 + int64(u*float64(d-d/10))
}

// closingSeg is a segment cut at a keyframe whose last fragment waits for
// the audio up to the cut (audio usually arrives a little after video).
type closingSeg struct {
	seg         *segment
	pending     []vsample
	frag        openFrag
	next        vsample
	boundaryDTS int64 // video DTS of the cut
	boundaryA   int64 // audio time of the cut, session audio units
}

// lateAudioWait is how long (in video time) a cut segment waits for audio.
const lateAudioWait = recording.VideoTimescale // 1 s

// checkClosingLocked finishes the closing segment once video is
// lateAudioWait past the cut.
func (w *Writer) checkClosingLocked(dts int64) {
	if w.closing != nil && dts-w.closing.boundaryDTS >= lateAudioWait {
		w.finishClosingLocked()
	}
}

func (w *Writer) finishClosingLocked() {
	c := w.closing
	if c == nil {
		return
	}
	w.closing = nil
	w.flushLocked(c.seg, c.pending, &c.frag, &c.next, true)
	w.closeSegmentLocked(c.seg)
	// Audio of the closed segment that did not make it is dropped.
	if w.cur != nil {
		for len(w.audioQ) > 0 && w.audioQ[0].t < w.cur.audioOff {
			w.audioQ = w.audioQ[1:]
			w.stats.DroppedAudio++
		}
	}
}

func (w *Writer) closeSegmentLocked(seg *segment) {
	end := w.wallLocked(seg.prevEnd + w.sess.AnchorPTS)
	w.q.push(op{kind: opFinish, h: seg.h, end: end, size: seg.size})
}
