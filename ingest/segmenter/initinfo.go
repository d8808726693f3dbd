package segmenter

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
)

// InitInfo is what the index keeps about a segment's init besides its
// bytes.
type InitInfo struct {
	// Codecs is the index's codecs string, as the writer sets it: "H264"
	// or "H265", followed by ",MPEG-4 Audio" or ",LPCM" with audio.
	Codecs        string
	Width, Height int
}

// DescribeInit reads an init (ftyp+moov) written by this package and
// returns its index description. It fails for inits this package does
// not write (other track IDs, timescales or codecs).
func DescribeInit(init []byte) (InitInfo, error) {
	var in fmp4.Init
	if err := in.Unmarshal(bytes.NewReader(init)); err != nil {
		return InitInfo{}, fmt.Errorf("parse init: %w", err)
	}
	var info InitInfo
	if len(in.Tracks) == 0 || len(in.Tracks) > 2 {
		return InitInfo{}, fmt.Errorf("init has %d tracks", len(in.Tracks))
	}
	vt := in.Tracks[0]
	if vt.ID != VideoTrackID || vt.TimeScale != VideoTimescale {
		return InitInfo{}, errors.New("init: first track is not a 90 kHz track 1")
	}
	switch c := vt.Codec.(type) {
	case *fmp4.CodecH264:
		var sps h264.SPS
		if err := sps.Unmarshal(c.SPS); err != nil {
			return InitInfo{}, fmt.Errorf("parse H264 SPS: %w", err)
		}
		info = InitInfo{Codecs: "H264", Width: sps.Width(), Height: sps.Height()}
	case *fmp4.CodecH265:
		var sps h265.SPS
		if err := sps.Unmarshal(c.SPS); err != nil {
			return InitInfo{}, fmt.Errorf("parse H265 SPS: %w", err)
		}
		info = InitInfo{Codecs: "H265", Width: sps.Width(), Height: sps.Height()}
	default:
		return InitInfo{}, fmt.Errorf("init: unsupported video codec %T", vt.Codec)
	}
	if len(in.Tracks) == 2 {
		at := in.Tracks[1]
		if at.ID != AudioTrackID {
			return InitInfo{}, errors.New("init: second track is not track 2")
		}
		switch at.Codec.(type) {
		case *fmp4.CodecMPEG4Audio:
			info.Codecs += ",MPEG-4 Audio"
		case *fmp4.CodecLPCM:
			info.Codecs += ",LPCM"
		default:
			return InitInfo{}, fmt.Errorf("init: unsupported audio codec %T", at.Codec)
		}
	}
	return info, nil
}
