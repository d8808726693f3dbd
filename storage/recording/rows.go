package recording

import "time"

// FragmentBounds returns the presentation bounds (units of the video
// timescale, from the segment's media time 0) of each fragment, by the
// rule every writer follows: a keyframe fragment starts at its first
// sample's presentation time, a continuation fragment at the previous
// fragment's end; a fragment ends where the next one starts when that is a
// keyframe fragment, otherwise at its latest presentation time plus
// duration.
func FragmentBounds(frags []ParsedFragment) (starts, ends []int64) {
	starts = make([]int64, len(frags))
	ends = make([]int64, len(frags))
	var prevEnd int64
	for i := range frags {
		f := &frags[i]
		start := prevEnd
		if f.Keyframe() {
			start = f.Video[0].PTS()
		}
		end := start
		for _, s := range f.Video {
			end = max(end, s.PTS()+int64(s.Duration))
		}
		if i+1 < len(frags) && frags[i+1].Keyframe() {
			end = max(frags[i+1].Video[0].PTS(), start)
		}
		starts[i], ends[i] = start, end
		prevEnd = end
	}
	return starts, ends
}

// FragmentRows derives the index rows of a parsed segment file whose
// segment starts (media time 0) at segStart.
func FragmentRows(segmentID int64, segStart time.Time, pf *ParsedFile) []Fragment {
	starts, ends := FragmentBounds(pf.Fragments)
	rows := make([]Fragment, len(pf.Fragments))
	for i, fr := range pf.Fragments {
		rows[i] = Fragment{
			SegmentID: segmentID,
			Seq:       int(fr.Seq),
			Start:     segStart.Add(TicksToDuration(starts[i], VideoTimescale)),
			End:       segStart.Add(TicksToDuration(ends[i], VideoTimescale)),
			Offset:    fr.Offset,
			Size:      fr.Size,
			Keyframe:  fr.Keyframe(),
		}
	}
	return rows
}

// TicksToDuration converts v units of 1/timescale s to a duration,
// truncating, without overflowing where v*1e9 would.
func TicksToDuration(v, timescale int64) time.Duration {
	return time.Duration(MulDiv(v, int64(time.Second), timescale))
}

// MulDiv returns v*m/d truncated toward zero, without overflowing when v*m
// would (v up to ~2^62/m per whole d).
func MulDiv(v, m, d int64) int64 {
	return (v/d)*m + (v%d)*m/d
}
