package segmenter

// pauseLocked pauses recording because the quota refused a fragment: the
// segment waiting for its late audio and the current segment are closed
// at their last fragment written (a segment without one gets its pending
// fragment, admitted by Quota.Add), what is pending is refused, and the
// pause is logged once per episode.
func (w *Writer) pauseLocked() {
	w.finishClosingLocked()
	if w.cur != nil {
		if w.cur.seq == 0 {
			w.flushLocked(w.cur, w.pending, &w.frag, nil, true)
		} else if len(w.pending) > 0 {
			w.refuseVideoLocked(w.pending)
			w.discardLocked(w.cur, &w.frag)
		}
		w.closeSegmentLocked(w.cur)
		w.cur = nil
	}
	w.pending = nil
	for _, a := range w.audioQ {
		w.refuseAudioLocked(a)
	}
	w.audioQ = nil
	w.pauseReq = false
	if !w.paused {
		w.paused = true
		w.stats.PauseEpisodes++
		q := w.cfg.Quota
		w.log.Warn("spool full, recording paused", "spool_bytes", q.Bytes(), "spool_cap", q.Cap())
	}
}

// refuseVideoLocked counts samples that were accepted into a fragment
// that is now refused.
func (w *Writer) refuseVideoLocked(samples []vsample) {
	for _, s := range samples {
		w.stats.VideoFrames--
		w.stats.RefusedFrames++
		w.stats.RefusedBytes += int64(s.size)
	}
}

func (w *Writer) refuseAudioLocked(a asample) {
	w.stats.AudioSamples--
	w.stats.RefusedAudio++
	w.stats.RefusedBytes += int64(len(a.payload))
}

// admitLocked accounts n bytes of seg in the quota: always for its first
// fragment (no segment is left without one), else only if the spool has
// room.
func (w *Writer) admitLocked(seg *segment, n int64) bool {
	q := w.cfg.Quota
	if seg.seq == 0 {
		q.Add(n)
		return true
	}
	return q.Reserve(n)
}

// refuseFrame counts a frame refused because the spool is full.
func (w *Writer) refuseFrame(s vsample) {
	w.stats.RefusedFrames++
	w.stats.RefusedBytes += int64(s.size)
}
