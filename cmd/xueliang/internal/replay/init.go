package replay

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"reflect"
	"xueliang/storage/recording"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4"
)

// sameLayout reports whether b can be continued in a response whose init is
// a: same track IDs, timescales and codecs; video parameter sets may differ
// (they are sent in-band), audio configuration may not.
func sameLayout(a, b *fmp4.Init) bool {
	if len(a.Tracks) != len(b.Tracks) {
		return false
	}
	for _, ta := range a.Tracks {
		tb := recording.FindTrack(b, ta.ID)
		if tb == nil || ta.TimeScale != tb.TimeScale || reflect.TypeOf(ta.Codec) != reflect.TypeOf(tb.Codec) {
			return false
		}
		if !ta.Codec.IsVideo() && !reflect.DeepEqual(ta.Codec, tb.Codec) {
			return false
		}
	}
	return true
}

// parameterSets returns the video track's parameter set NAL units.
func parameterSets(in *fmp4.Init) [][]byte {
	switch c := recording.VideoTrack(in).Codec.(type) {
	case *mp4.CodecH264:
		return [][]byte{c.SPS, c.PPS}
	case *mp4.CodecH265:
		return [][]byte{c.VPS, c.SPS, c.PPS}
	}
	return nil
}

func sameParameterSets(a, b *fmp4.Init) bool {
	pa, pb := parameterSets(a), parameterSets(b)
	if len(pa) != len(pb) {
		return false
	}
	for i := range pa {
		if !bytes.Equal(pa[i], pb[i]) {
			return false
		}
	}
	return true
}

// avccPrefix encodes NAL units with 4-byte length prefixes, the sample
// format of avc1/hvc1 (lengthSizeMinusOne = 3, as mediacommon writes).
func avccPrefix(nalus [][]byte) []byte {
	var out []byte
	for _, n := range nalus {
		out = binary.BigEndian.AppendUint32(out, uint32(len(n)))
		out = append(out, n...)
	}
	return out
}

// movieTimescale is the mvhd timescale mediacommon writes; elst
// segment_duration is in these units.
const movieTimescale = 1000

// buildOutputInit marshals in and inserts into the video trak an edit list
// with one entry: media_time = mediaTime (track timescale), duration =
// durationMovie (movie timescale, 0 = unknown).
func buildOutputInit(in *fmp4.Init, mediaTime int64, durationMovie uint64) ([]byte, error) {
	var buf seekablebuffer.Buffer
	if err := in.Marshal(&buf); err != nil {
		return nil, fmt.Errorf("marshal init: %w", err)
	}
	return insertEditList(buf.Bytes(), videoTrackID, mediaTime, durationMovie)
}

// insertEditList inserts edts/elst after the tkhd of the trak with trackID
// and fixes the sizes of the enclosing trak and moov.
func insertEditList(b []byte, trackID uint32, mediaTime int64, durationMovie uint64) ([]byte, error) {
	edts := editList(mediaTime, durationMovie)
	var moov, trak box
	var insertAt int
	err := children(b, 0, len(b), func(c box) error {
		if c.typ != "moov" || insertAt != 0 {
			return nil
		}
		moov = c
		return children(b, c.payloadStart, c.end, func(t box) error {
			if t.typ != "trak" || insertAt != 0 {
				return nil
			}
			return children(b, t.payloadStart, t.end, func(h box) error {
				if h.typ != "tkhd" || h.end-h.payloadStart < 4 {
					return nil
				}
				idOff := h.payloadStart + 4 + 8 // version/flags, creation+modification (v0)
				if b[h.payloadStart] == 1 {
					idOff = h.payloadStart + 4 + 16
				}
				if idOff+4 <= h.end && binary.BigEndian.Uint32(b[idOff:]) == trackID {
					trak, insertAt = t, h.end
				}
				return nil
			})
		})
	})
	if err != nil {
		return nil, fmt.Errorf("insert edit list: %w", err)
	}
	if insertAt == 0 {
		return nil, fmt.Errorf("insert edit list: no trak for track %d", trackID)
	}
	for _, c := range []box{moov, trak} {
		if c.payloadStart-c.start != boxHeaderSize {
			return nil, fmt.Errorf("insert edit list: 64-bit %s size unsupported", c.typ)
		}
	}
	out := make([]byte, 0, len(b)+len(edts))
	out = append(out, b[:insertAt]...)
	out = append(out, edts...)
	out = append(out, b[insertAt:]...)
	for _, c := range []box{moov, trak} {
		binary.BigEndian.PutUint32(out[c.start:], uint32(c.end-c.start+len(edts)))
	}
	return out, nil
}

// editList encodes edts{elst} with a single entry at normal rate.
func editList(mediaTime int64, durationMovie uint64) []byte {
	v1 := mediaTime > 1<<31-1 || durationMovie > 1<<32-1
	var elst []byte
	if v1 {
		elst = binary.BigEndian.AppendUint32(elst, 1<<24) // version 1, flags 0
		elst = binary.BigEndian.AppendUint32(elst, 1)     // entry_count
		elst = binary.BigEndian.AppendUint64(elst, durationMovie)
		elst = binary.BigEndian.AppendUint64(elst, uint64(mediaTime))
	} else {
		elst = binary.BigEndian.AppendUint32(elst, 0)
		elst = binary.BigEndian.AppendUint32(elst, 1)
		elst = binary.BigEndian.AppendUint32(elst, uint32(durationMovie))
		elst = binary.BigEndian.AppendUint32(elst, uint32(int32(mediaTime)))
	}
	elst = binary.BigEndian.AppendUint32(elst, 1<<16) // media_rate 1.0
	elstBox := binary.BigEndian.AppendUint32(nil, uint32(8+len(elst)))
	elstBox = append(elstBox, "elst"...)
	elstBox = append(elstBox, elst...)
	edts := binary.BigEndian.AppendUint32(nil, uint32(8+len(elstBox)))
	edts = append(edts, "edts"...)
	return append(edts, elstBox...)
}
