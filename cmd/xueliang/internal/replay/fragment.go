package replay

import (
	"xueliang/storage/recording"
)

// Track IDs fixed by the recording format contract.
const (
	videoTrackID = recording.VideoTrackID
	audioTrackID = recording.AudioTrackID
)

// boxHeaderSize is the size of a box header without a 64-bit size.
const boxHeaderSize = 8

// rawSample is one sample of a parsed fragment, in the segment's media
// timeline (track timescale).
type rawSample struct {
	dts  int64 // decode time (tfdt + sum of earlier durations)
	cts  int32 // composition offset; presentation time is dts+cts
	dur  uint32
	sync bool
	data []byte // aliases the fragment buffer
	// reenc: a re-encoded sample (exact form), which carries its own
	// parameter sets.
	reenc bool
}

func (s rawSample) pts() int64 { return s.dts + int64(s.cts) }

// rawFragment is one parsed fragment. Only the contract's tracks 1 and 2
// are kept.
type rawFragment struct {
	seq   uint32
	video []rawSample
	audio []rawSample
}

// parseFragment parses one fragment's bytes (recording.ParseFragment, which
// bounds every size and offset and is fuzzed); sample payloads alias b.
func parseFragment(b []byte) (*rawFragment, error) {
	pf, err := recording.ParseFragment(b)
	if err != nil {
		return nil, err
	}
	conv := func(in []recording.Sample) []rawSample {
		out := make([]rawSample, len(in))
		for i, s := range in {
			out[i] = rawSample{dts: s.DTS, cts: s.CTS, dur: s.Duration, sync: s.Sync, data: b[s.Offset : s.Offset+int64(s.Size)]}
		}
		return out
	}
	return &rawFragment{seq: pf.Seq, video: conv(pf.Video), audio: conv(pf.Audio)}, nil
}

// box is a located ISO BMFF box inside a buffer.
type box struct {
	typ          string
	start, end   int // whole box, absolute in the buffer
	payloadStart int
}

// children calls fn for each child box of the payload range [from, to).
func children(b []byte, from, to int, fn func(box) error) error {
	return recording.Children(b, from, to, func(typ string, start, payload, end int) error {
		return fn(box{typ: typ, start: start, end: end, payloadStart: payload})
	})
}
