package segmenter

import (
	"errors"
	"fmt"

	"xueliang/storage/recording"
)

// flushLocked completes the fragment fr of seg, whose video samples
// (pending) are already in the file: it writes the audio up to the boundary
// behind them and fills the header reservation (free box, moof, mdat
// header). next is the sample that follows (nil at the end of a session).
// final means the segment is closed after this fragment. A fragment whose
// writes failed, or that the quota refuses, is cut off the file.
func (w *Writer) flushLocked(seg *segment, pending []vsample, fr *openFrag, next *vsample, final bool) {
	if len(pending) == 0 {
		return
	}
	entries, startRel, endRel := w.videoEntriesLocked(seg, pending, next)
	var tracksArr [2]recording.TrackRun
	tracks := append(tracksArr[:0], recording.TrackRun{
		ID: recording.VideoTrackID, BaseTime: uint64(pending[0].dts - seg.startDTS), Entries: entries, DataLen: fr.videoLen,
	})
	w.audio = w.audio[:0]
	if a := w.sess.Audio; a != nil {
		// Audio entries that fit the reservation beside the video's (the
		// header-room check at each video sample keeps this ≥ the queue
		// but for late audio of a cut segment).
		room := max(recording.AudioEntriesFit(fr.head, tracks), 0)
		if at, ok := w.takeAudioLocked(seg, next, final, a, room); ok {
			tracks = append(tracks, at)
		}
	}
	w.growHeadroomLocked(tracks)
	if !w.admitFragmentLocked(seg, pending, fr, tracks) {
		return
	}
	n, ok := w.writeFragmentLocked(seg, fr, tracks)
	if !ok {
		return
	}
	seg.seq++
	frag := recording.Fragment{
		Seq:      seg.seq,
		Start:    w.wallLocked(startRel + w.sess.AnchorPTS),
		End:      w.wallLocked(endRel + w.sess.AnchorPTS),
		Offset:   fr.off,
		Size:     n,
		Keyframe: pending[0].key,
	}
	seg.size = fr.off + n
	seg.prevEnd = endRel
	w.stats.Fragments++
	w.stats.Bytes += n
	w.q.push(op{kind: opFragments, h: seg.h, frags: []recording.Fragment{frag}})
	if now := w.cfg.Now(); !final && now.Sub(seg.lastSync) >= w.cfg.FsyncInterval {
		seg.lastSync = now
		w.q.push(op{kind: opSync, h: seg.h})
	}
}

// videoEntriesLocked returns the trun entries of the fragment's video
// samples and the fragment's presentation bounds, relative to the session
// anchor, by recording.FragmentBounds' rule: a keyframe fragment starts at
// its first sample, a continuation at the previous fragment's end; it ends
// where a following keyframe starts, or at its latest sample's end.
func (w *Writer) videoEntriesLocked(seg *segment, pending []vsample, next *vsample) (entries []recording.SampleEntry, startRel, endRel int64) {
	entries = w.entries[:0]
	var maxEnd int64 = -1 << 62
	for i, s := range pending {
		var dur int64
		switch {
		case i+1 < len(pending):
			dur = pending[i+1].dts - s.dts
		case next != nil:
			dur = next.dts - s.dts
		case i > 0:
			dur = s.dts - pending[i-1].dts
		default:
			dur = recording.VideoTimescale / 25
		}
		dur = max(dur, 0)
		entries = append(entries, recording.SampleEntry{
			Duration: uint32(dur),
			Size:     uint32(s.size),
			NonSync:  !s.key,
			CTS:      int32((s.pts - s.dts) - (seg.startPTS - seg.startDTS)),
		})
		maxEnd = max(maxEnd, s.pts+dur)
	}
	w.entries = entries
	anchor := w.sess.AnchorPTS
	startRel = seg.prevEnd
	if pending[0].key {
		startRel = pending[0].pts - anchor
	}
	if next != nil && next.key {
		endRel = next.pts - anchor
	} else {
		endRel = maxEnd - anchor
	}
	return entries, startRel, max(endRel, startRel)
}

// growHeadroomLocked reserves more header room for the next fragments when
// this one (tracks) came close to its reservation.
func (w *Writer) growHeadroomLocked(tracks []recording.TrackRun) {
	taken := 0
	if len(tracks) > 1 {
		taken = len(tracks[1].Entries)
	}
	if need := recording.HeaderNeed(len(tracks[0].Entries), w.audioNeedLocked(taken)); need > w.headroom {
		w.headroom = min((need*3/2+255)/256*256, maxHeadroom)
	}
}

// admitFragmentLocked decides whether the fragment is written: a fragment
// whose headers do not fit, whose writes failed, or whose video the quota
// refused is cut off the file (and counted), and false is returned. The
// fragment's audio is admitted with its video.
func (w *Writer) admitFragmentLocked(seg *segment, pending []vsample, fr *openFrag, tracks []recording.TrackRun) bool {
	hdrLen := recording.HeaderSize(tracks)
	if fr.err == nil && hdrLen != fr.head && fr.head-hdrLen < recording.FreeBoxMin {
		// Cannot happen: the room check cuts fragments before this.
		fr.err = fmt.Errorf("fragment headers need %d bytes, %d reserved", hdrLen, fr.head)
	}
	audioBytes := len(w.audio)
	if fr.err == nil && audioBytes > 0 && w.cfg.Quota != nil {
		// A few KiB: a cut segment's last fragment is never refused while
		// it waits for its audio.
		w.cfg.Quota.Add(int64(audioBytes))
		fr.reserved += int64(audioBytes)
	}
	switch {
	case errors.Is(fr.err, errSpoolFull):
		// The quota refused a video sample: the fragment is refused, the
		// segment ends at the previous one and the caller pauses
		// (pauseReq is set).
		w.refuseVideoLocked(pending)
		if len(tracks) > 1 {
			k := int64(len(tracks[1].Entries))
			w.stats.AudioSamples -= k
			w.stats.RefusedAudio += k
			w.stats.RefusedBytes += int64(audioBytes)
		}
		w.discardLocked(seg, fr)
		return false
	case fr.err != nil:
		w.stats.WriteErrors++
		w.log.Error("cannot write fragment", "err", fr.err)
		w.discardLocked(seg, fr)
		return false
	}
	return true
}

// writeFragmentLocked writes the rest of the fragment's media (the staged
// video, then the audio) and then its headers into the reservation. It
// returns the fragment's size, or false when a write failed (the fragment
// is then cut off the file).
func (w *Writer) writeFragmentLocked(seg *segment, fr *openFrag, tracks []recording.TrackRun) (int64, bool) {
	audioBytes := len(w.audio)
	dataLen := fr.videoLen + audioBytes
	if cap(w.header) < fr.head {
		w.header = make([]byte, fr.head)
	}
	hdr := w.header[:fr.head]
	recording.PutHeader(hdr, uint32(seg.seq+1), tracks, dataLen)
	if fr == &w.frag {
		w.stageLocked(fr, audioBytes, func(b []byte) []byte { return append(b, w.audio...) })
		w.writeStageLocked(fr)
	} else if audioBytes > 0 {
		w.writeAtLocked(fr, w.audio)
	}
	err := fr.err
	if err == nil {
		_, err = seg.f.WriteAt(hdr, fr.off)
	}
	if cap(w.audio) > 256<<10 {
		w.audio = nil // a burst of audio: do not keep its buffer
	}
	if err != nil {
		w.stats.WriteErrors++
		w.log.Error("cannot write fragment", "err", err)
		w.discardLocked(seg, fr)
		return 0, false
	}
	fr.reserved = 0
	return int64(fr.head + dataLen), true
}
