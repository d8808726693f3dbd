package recording

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
)

// InitInfo is what an index keeps about a segment's init besides its
// bytes.
type InitInfo struct {
	// Codecs is "H264" or "H265", followed by ",MPEG-4 Audio" or ",LPCM"
	// with audio.
	Codecs        string
	Width, Height int
}

// BuildInit returns the init (ftyp+moov) of a segment with video v, whose
// parameter sets must be known, and audio a (nil: none), with its
// description. G.711 audio is described as 16-bit LPCM, which is what the
// writer records.
func BuildInit(v Video, a *Audio) ([]byte, InitInfo, error) {
	vi := &fmp4.InitTrack{ID: VideoTrackID, TimeScale: VideoTimescale}
	switch v.Codec {
	case H264:
		if len(v.SPS) == 0 || len(v.PPS) == 0 {
			return nil, InitInfo{}, errors.New("missing H264 SPS/PPS")
		}
		vi.Codec = &fmp4.CodecH264{SPS: v.SPS, PPS: v.PPS}
	case H265:
		if len(v.VPS) == 0 || len(v.SPS) == 0 || len(v.PPS) == 0 {
			return nil, InitInfo{}, errors.New("missing H265 VPS/SPS/PPS")
		}
		vi.Codec = &fmp4.CodecH265{VPS: v.VPS, SPS: v.SPS, PPS: v.PPS}
	default:
		return nil, InitInfo{}, fmt.Errorf("unsupported video codec %d", v.Codec)
	}
	in := fmp4.Init{Tracks: []*fmp4.InitTrack{vi}}
	if a != nil {
		at := &fmp4.InitTrack{ID: AudioTrackID, TimeScale: uint32(a.Rate())}
		switch a.Codec {
		case AAC:
			at.Codec = &fmp4.CodecMPEG4Audio{Config: a.AAC}
		case G711ALaw, G711MuLaw:
			at.Codec = &fmp4.CodecLPCM{BitDepth: 16, SampleRate: a.Rate(), ChannelCount: a.Channels()}
		default:
			return nil, InitInfo{}, fmt.Errorf("unsupported audio codec %d", a.Codec)
		}
		in.Tracks = append(in.Tracks, at)
	}
	info, err := describe(&in)
	if err != nil {
		return nil, InitInfo{}, err
	}
	var buf seekablebuffer.Buffer
	if err := in.Marshal(&buf); err != nil {
		return nil, InitInfo{}, fmt.Errorf("marshal init: %w", err)
	}
	return buf.Bytes(), info, nil
}

// ParseInit decodes an init (ftyp+moov) and checks that it has the
// recording's track layout: video track VideoTrackID at VideoTimescale
// (H.264 or H.265) and optionally audio track AudioTrackID (AAC or LPCM).
func ParseInit(b []byte) (*fmp4.Init, error) {
	var in fmp4.Init
	if err := in.Unmarshal(bytes.NewReader(b)); err != nil {
		return nil, fmt.Errorf("parse init: %w", err)
	}
	if _, err := describe(&in); err != nil {
		return nil, fmt.Errorf("parse init: %w", err)
	}
	return &in, nil
}

// DescribeInit reads an init written by BuildInit and returns its
// description. It fails for other inits (other track IDs, timescales or
// codecs).
func DescribeInit(b []byte) (InitInfo, error) {
	in, err := ParseInit(b)
	if err != nil {
		return InitInfo{}, err
	}
	return describe(in)
}

// VideoTrack returns in's video track (checked by ParseInit).
func VideoTrack(in *fmp4.Init) *fmp4.InitTrack { return FindTrack(in, VideoTrackID) }

// FindTrack returns the track of in with the ID, or nil.
func FindTrack(in *fmp4.Init, id int) *fmp4.InitTrack {
	for _, t := range in.Tracks {
		if t.ID == id {
			return t
		}
	}
	return nil
}

func describe(in *fmp4.Init) (InitInfo, error) {
	if len(in.Tracks) == 0 || len(in.Tracks) > 2 {
		return InitInfo{}, fmt.Errorf("init has %d tracks", len(in.Tracks))
	}
	vt := in.Tracks[0]
	if vt.ID != VideoTrackID || vt.TimeScale != VideoTimescale {
		return InitInfo{}, errors.New("first track is not a 90 kHz track 1")
	}
	var info InitInfo
	switch c := vt.Codec.(type) {
	case *fmp4.CodecH264:
		var sps h264.SPS
		if err := sps.Unmarshal(c.SPS); err != nil {
			return InitInfo{}, fmt.Errorf("parse H264 SPS: %w", err)
		}
		info = InitInfo{Codecs: H264.String(), Width: sps.Width(), Height: sps.Height()}
	case *fmp4.CodecH265:
		var sps h265.SPS
		if err := sps.Unmarshal(c.SPS); err != nil {
			return InitInfo{}, fmt.Errorf("parse H265 SPS: %w", err)
		}
		info = InitInfo{Codecs: H265.String(), Width: sps.Width(), Height: sps.Height()}
	default:
		return InitInfo{}, fmt.Errorf("unsupported video codec %T", vt.Codec)
	}
	if len(in.Tracks) == 2 {
		at := in.Tracks[1]
		if at.ID != AudioTrackID {
			return InitInfo{}, errors.New("second track is not track 2")
		}
		switch at.Codec.(type) {
		case *fmp4.CodecMPEG4Audio:
			info.Codecs += ",MPEG-4 Audio"
		case *fmp4.CodecLPCM:
			info.Codecs += ",LPCM"
		default:
			return InitInfo{}, fmt.Errorf("unsupported audio codec %T", at.Codec)
		}
		if at.TimeScale == 0 {
			return InitInfo{}, errors.New("audio track has timescale 0")
		}
	}
	return info, nil
}
