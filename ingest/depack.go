package ingest

import (
	"bytes"

	"github.com/bluenviron/gortsplib/v4/pkg/format"

	"xueliang/ingest/rtpdepack"
)

// The video depacketisers (videoTrack.dec264/dec265) are rtpdepack's: like
// gortsplib's rtph264/rtph265 decoders packet by packet, but they reassemble
// into one reusable buffer per track instead of allocating every NAL unit
// (bench/notes.md, "Own depacketiser"). The access unit they return aliases
// that buffer and is valid until the next packet of the track, so:
//
//   - the segmenter's WriteVideo copies it into the fragment buffer (and
//     clones the parameter sets it keeps);
//   - motionWorker.offer copies it before queueing it;
//   - videoTrack.prepare keeps copies of the parameter sets (keepParamSet)
//     and puts the copies into the AU, so the DTS extractor, which keeps a
//     reference to the last SPS it parsed, holds stable bytes.

// newH264Depacketizer returns the depacketiser for an H.264 track.
func newH264Depacketizer(f *format.H264) (*rtpdepack.H264, error) {
	return rtpdepack.NewH264(f.PacketizationMode)
}

// newH265Depacketizer returns the depacketiser for an H.265 track.
func newH265Depacketizer(f *format.H265) (*rtpdepack.H265, error) {
	return rtpdepack.NewH265(f.MaxDONDiff)
}

// keepParamSet returns a parameter set that outlives the access unit n came
// in: old when it has the same bytes (no allocation while the parameter
// sets do not change), else a copy of n.
func keepParamSet(old, n []byte) []byte {
	if bytes.Equal(old, n) {
		return old
	}
	return bytes.Clone(n)
}
