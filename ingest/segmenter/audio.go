package segmenter

import (
	"xueliang/storage/recording"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/g711"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
)

type asample struct {
	t       int64 // audio units relative to the session anchor
	payload []byte
	nominal int64
}

// audioSlack is the audio samples that may arrive between the check of a
// fragment's header room (at a video sample) and its flush.
const audioSlack = 8

// audioNeedLocked is the number of audio entries to reserve header room
// for: taken (already in the fragment) plus the queue and some slack, or 0
// for a session without audio.
func (w *Writer) audioNeedLocked(taken int) int {
	if w.sess.Audio == nil {
		return 0
	}
	return taken + len(w.audioQ) + audioSlack
}

// WriteAudio writes audio. pts is in the audio clock rate on the session's
// unwrapped RTP clock, aligned with the video clock (gortsplib PacketPTS2).
// For AAC each element of aus is one access unit; for G.711 each element is
// a chunk of encoded samples. Audio before the session's first segment is
// dropped.
func (w *Writer) WriteAudio(pts int64, aus [][]byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.active || w.sess.Audio == nil {
		return nil
	}
	a := w.sess.Audio
	t := pts - w.anchorA
	for _, au := range aus {
		if len(au) == 0 {
			continue
		}
		var s asample
		switch a.Codec {
		case recording.AAC:
			n := int64(mpeg4audio.SamplesPerAccessUnit)
			if a.AAC.FrameLengthFlag {
				n = 960
			}
			s = asample{t: t, payload: au, nominal: n}
		case recording.G711ALaw:
			var pcm g711.Alaw
			pcm.Unmarshal(au)
			s = asample{t: t, payload: pcm, nominal: int64(len(au) / a.Channels())}
		case recording.G711MuLaw:
			var pcm g711.Mulaw
			pcm.Unmarshal(au)
			s = asample{t: t, payload: pcm, nominal: int64(len(au) / a.Channels())}
		}
		t += s.nominal
		if n := len(w.audioQ); n > 0 && s.t <= w.audioQ[n-1].t {
			// Non-monotonic audio (duplicate/reordered packet): drop.
			w.stats.DroppedAudio++
			continue
		}
		if w.cur != nil && w.closing == nil && s.t < w.cur.audioOff {
			w.stats.DroppedAudio++
			continue
		}
		w.audioQ = append(w.audioQ, s)
		w.stats.AudioSamples++
	}
	if w.closing != nil && len(w.audioQ) > 0 && w.audioQ[len(w.audioQ)-1].t >= w.closing.boundaryA {
		w.finishClosingLocked()
	}
	if w.cur == nil {
		// No segment yet: keep at most ~5 s (the audio of the segment
		// that opens at the next keyframe may arrive before its video).
		limit := int64(5 * a.Rate())
		for len(w.audioQ) > 0 && w.audioQ[len(w.audioQ)-1].t-w.audioQ[0].t > limit {
			if w.paused {
				w.refuseAudioLocked(w.audioQ[0])
			} else {
				w.stats.DroppedAudio++
			}
			w.audioQ = w.audioQ[1:]
		}
	}
	if w.pauseReq {
		w.pauseLocked()
	}
	return nil
}

// takeAudioLocked removes from the audio queue the samples that belong in
// the fragment being flushed, at most room of them, appends their payloads
// to w.audio and returns them as a track run (false when there are none).
// Samples beyond room stay queued for the next fragment (or, at a segment
// cut, are dropped with the rest of the closed segment's late audio).
func (w *Writer) takeAudioLocked(seg *segment, next *vsample, final bool, a *recording.Audio, room int) (recording.TrackRun, bool) {
	rate := int64(a.Rate())
	// Samples before this segment's start: while a cut segment waits for
	// its audio they belong to it and stay queued; otherwise they are
	// stale and dropped. Never write negative times.
	k := 0
	for k < len(w.audioQ) && w.audioQ[k].t < seg.audioOff {
		k++
	}
	if k > 0 && (w.closing == nil || w.closing.seg == seg) {
		w.stats.DroppedAudio += int64(k)
		w.audioQ = append(w.audioQ[:0:0], w.audioQ[k:]...)
		k = 0
	}
	q := w.audioQ[k:]
	n := 0
	switch {
	case final && next == nil:
		n = len(q) // end of session: everything
	case final:
		// Segment cut: everything before the next segment's start.
		bound := recording.MulDiv(next.pts-w.sess.AnchorPTS, rate, recording.VideoTimescale)
		for n < len(q) && q[n].t < bound {
			n++
		}
	default:
		// Everything but the last sample, whose duration needs its successor.
		n = len(q) - 1
	}
	n = min(n, room)
	if n <= 0 {
		return recording.TrackRun{}, false
	}
	take := q[:n]
	entries := w.aEntries[:0]
	for i, s := range take {
		dur := s.nominal
		if i+1 < len(q) {
			// From the next timestamp, so a gap (lost packets) stretches
			// one sample instead of shifting the rest of the fragment.
			if d := q[i+1].t - s.t; d > 0 {
				dur = d
			}
		}
		entries = append(entries, recording.SampleEntry{Duration: uint32(dur), Size: uint32(len(s.payload))})
		w.audio = append(w.audio, s.payload...)
	}
	w.aEntries = entries
	tr := recording.TrackRun{ID: recording.AudioTrackID, BaseTime: uint64(take[0].t - seg.audioOff), Entries: entries, DataLen: len(w.audio)}
	rest := append([]asample(nil), w.audioQ[:k]...)
	w.audioQ = append(rest, q[n:]...)
	return tr, true
}
