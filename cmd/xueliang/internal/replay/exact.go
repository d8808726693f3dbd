package replay

import (
	"fmt"
	"sort"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4"

	"xueliang/cmd/xueliang/internal/reencode"
	"xueliang/storage/recording"
)

// reencoded is the exact form's replacement for the first GOP's samples
// up to the next keyframe (decode order), kept for the second pass of the
// progressive form.
type reencoded struct {
	n       int // recorded samples replaced
	samples []rawSample
}

// nextKeyBuffered reports whether the buffered fragments hold a keyframe
// after the first sample.
func (m *muxer) nextKeyBuffered() bool {
	first := true
	for _, f := range m.pending {
		for _, s := range f.video {
			if !first && s.sync {
				return true
			}
			first = false
		}
	}
	return false
}

func videoCodec(in *fmp4.Init) (recording.VideoCodec, error) {
	switch recording.VideoTrack(in).Codec.(type) {
	case *mp4.CodecH264:
		return recording.H264, nil
	case *mp4.CodecH265:
		return recording.H265, nil
	}
	return 0, fmt.Errorf("exact replay: unsupported video codec")
}

// reencodeFirstGOP replaces the samples from the first keyframe up to the
// next one (decode order) by re-encoded pictures from startFrame on, in
// m.pending, and returns the new list of the buffered video samples.
// Decode times end where the replaced ones ended, so the recorded samples
// after them are untouched; every keyframe after the re-encoded part
// carries the recorded parameter sets in-band (the decoder holds the
// re-encoder's until then).
func (m *muxer) reencodeFirstGOP(all []rawSample, startFrame int64) ([]rawSample, error) {
	rc := m.plan.reenc
	if rc == nil {
		k := 1
		for k < len(all) && !all[k].sync {
			k++
		}
		codec, err := videoCodec(m.init)
		if err != nil {
			return nil, err
		}
		gop := make([]reencode.Sample, k)
		for i, s := range all[:k] {
			gop[i] = reencode.Sample{PTS: s.pts(), Payload: s.data}
		}
		// The recorded samples rely on the init's parameter sets.
		gop[0].Payload = append(avccPrefix(parameterSets(m.init)), gop[0].Payload...)
		enc, err := m.re.Reencode(codec, int(m.videoTS), gop, startFrame)
		if err != nil {
			return nil, fmt.Errorf("exact replay of segment %d: %w", m.ps.seg.ID, err)
		}
		// Presentation times of the replaced part, and where it ends.
		pts := make([]int64, 0, k)
		durOf := map[int64]uint32{}
		for _, s := range all[:k] {
			pts = append(pts, s.pts())
			durOf[s.pts()] = s.dur
		}
		sort.Slice(pts, func(i, j int) bool { return pts[i] < pts[j] })
		dEnd := all[k-1].dts + int64(all[k-1].dur)
		endPts := pts[len(pts)-1] + int64(durOf[pts[len(pts)-1]])
		if k < len(all) {
			endPts = all[k].pts()
		}
		rc = &reencoded{n: k, samples: make([]rawSample, len(enc))}
		next := dEnd
		for i := len(enc) - 1; i >= 0; i-- {
			e := enc[i]
			end := endPts
			if i+1 < len(enc) {
				end = enc[i+1].PTS
			}
			d := end - e.PTS
			if d <= 0 {
				return nil, fmt.Errorf("exact replay: re-encoded pictures out of order")
			}
			dts := next - d
			rc.samples[i] = rawSample{dts: dts, cts: int32(e.PTS - dts), dur: uint32(d), sync: i == 0, data: e.Payload, reenc: true}
			next = dts
		}
		m.plan.reenc = rc
	}
	// Drop the replaced samples from the buffered fragments; the first
	// one gets the re-encoded ones.
	drop := rc.n
	for i, f := range m.pending {
		cut := min(drop, len(f.video))
		drop -= cut
		rest := f.video[cut:]
		if i == 0 {
			rest = append(append([]rawSample(nil), rc.samples...), rest...)
		}
		nf := *f
		nf.video = rest
		m.pending[i] = &nf
	}
	m.inBand = avccPrefix(parameterSets(m.init))
	m.paramsMoved = true
	out := append(append([]rawSample(nil), rc.samples...), all[rc.n:]...)
	return out, nil
}
