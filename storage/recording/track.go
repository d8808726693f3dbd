package recording

import "github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

// Track IDs and the video timescale of every segment.
const (
	VideoTrackID   = 1
	AudioTrackID   = 2
	VideoTimescale = 90000
)

// VideoCodec is a video bitstream format.
type VideoCodec int

// Video codecs. The zero value is no codec.
const (
	H264 VideoCodec = iota + 1
	H265
)

// String returns the name the index keeps in Segment.Codecs.
func (c VideoCodec) String() string {
	switch c {
	case H264:
		return "H264"
	case H265:
		return "H265"
	}
	return "unknown"
}

// AudioCodec is an audio format as received from a camera.
type AudioCodec int

// Audio codecs. G.711 is recorded as 16-bit LPCM (MP4 players do not take
// A-law or µ-law); the zero value is no codec.
const (
	AAC AudioCodec = iota + 1
	G711ALaw
	G711MuLaw
)

// Video describes a segment's video track. The parameter sets may be empty
// where they are not yet known (an SDP without them); an init needs them.
type Video struct {
	Codec         VideoCodec
	VPS, SPS, PPS []byte
}

// Audio describes a segment's audio track.
type Audio struct {
	Codec AudioCodec
	// AAC is the AudioSpecificConfig (AAC only); its SampleRate is the
	// track's clock rate.
	AAC mpeg4audio.AudioSpecificConfig
	// SampleRate and ChannelCount describe G.711 (usually 8000 and 1).
	SampleRate, ChannelCount int
}

// Rate is the audio track's clock rate (samples per second).
func (a *Audio) Rate() int {
	if a.Codec == AAC {
		return a.AAC.SampleRate
	}
	return a.SampleRate
}

// Channels is the audio track's channel count.
func (a *Audio) Channels() int {
	if a.Codec == AAC {
		return a.AAC.ChannelCount
	}
	if a.ChannelCount <= 0 {
		return 1
	}
	return a.ChannelCount
}
