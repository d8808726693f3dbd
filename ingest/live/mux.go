package live

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"

	"xueliang/storage/recording"
)

// Header describes the init that follows it: what a player passes to
// MediaSource.isTypeSupported / addSourceBuffer.
type Header struct {
	Type string `json:"type"` // "init"
	// Codecs are RFC 6381 codec strings, video first ("avc1.64001f",
	// "hvc1.1.6.L93.B0", "mp4a.40.2", "ipcm").
	Codecs []string `json:"codecs"`
	// MIME is `video/mp4; codecs="…"`.
	MIME   string `json:"mime"`
	Width  int    `json:"width"`
	Height int    `json:"height"`
	Audio  bool   `json:"audio"`
}

// Message is one thing to send to a viewer: a Header and its init, or a
// fragment (moof+mdat).
type Message struct {
	Header *Header // with Data = the init (ftyp+moov)
	Data   []byte
	// Video is the video unit a fragment carries (for latency and tests).
	Video *Unit
}

// Muxer turns one viewer's units into fMP4 with the recording's track
// layout (storage/recording.BuildInit; mediacommon's fmp4 parts): an init
// per session, then one fragment per video frame carrying the audio that
// arrived before the next frame. A frame is sent when the next one arrives
// (its duration is the DTS difference), so the muxer adds one frame of
// delay. The output timeline starts at 0 and stays continuous across
// sessions and drops: a frame before a gap lasts until the next one.
type Muxer struct {
	// NoAudio leaves audio out (players that cannot decode it).
	NoAudio bool

	sess      *Session
	seq       uint32
	pending   *Unit
	audioQ    []*Unit
	off90     int64 // out = dts - AnchorPTS + off90
	next90    int64 // end of the last video sample sent
	nextAudio int64 // end of the last audio sample sent (audio rate); -1 none
	started   bool
}

// Push adds u and returns what to send now.
func (m *Muxer) Push(u *Unit) ([]Message, error) {
	if u.Audio {
		if m.sess == u.Session && m.started && !m.NoAudio {
			m.audioQ = append(m.audioQ, u)
		}
		return nil, nil
	}
	var out []Message
	if u.Session != m.sess {
		if !u.Key {
			return nil, nil // wait for the new session's keyframe
		}
		if m.pending != nil {
			f, err := m.fragment(m.pending, 1) // its successor is in another session
			if err != nil {
				return nil, err
			}
			out = append(out, f)
			m.pending = nil
		}
		h, init, err := m.header(u.Session)
		if err != nil {
			return out, err
		}
		out = append(out, Message{Header: h, Data: init})
		m.sess, m.audioQ = u.Session, nil
		m.off90 = m.next90 - (u.DTS - u.Session.AnchorPTS)
		m.nextAudio = -1
		m.started = true
	}
	if m.pending != nil {
		d := u.DTS - m.pending.DTS
		if d <= 0 {
			d = 1
		}
		f, err := m.fragment(m.pending, d)
		if err != nil {
			return out, err
		}
		out = append(out, f)
	}
	m.pending = u
	return out, nil
}

func (m *Muxer) header(s *Session) (*Header, []byte, error) {
	a := s.Audio
	if m.NoAudio {
		a = nil
	}
	init, info, err := recording.BuildInit(s.Video, a)
	if err != nil {
		return nil, nil, fmt.Errorf("live init: %w", err)
	}
	h := &Header{Type: "init", Width: info.Width, Height: info.Height, Audio: a != nil}
	h.Codecs = append(h.Codecs, VideoCodec(s.Video))
	if a != nil {
		h.Codecs = append(h.Codecs, AudioCodec(a))
	}
	h.MIME = `video/mp4; codecs="` + strings.Join(h.Codecs, ",") + `"`
	return h, init, nil
}

// fragment returns v (duration d) with the queued audio as one fragment.
func (m *Muxer) fragment(v *Unit, d int64) (Message, error) {
	base := v.DTS - m.sess.AnchorPTS + m.off90
	s := &fmp4.Sample{Duration: uint32(d)}
	var err error
	if m.sess.Video.Codec == recording.H265 {
		err = s.FillH265(int32(v.PTS-v.DTS), v.Data)
	} else {
		err = s.FillH264(int32(v.PTS-v.DTS), v.Data)
	}
	if err != nil {
		return Message{}, fmt.Errorf("live sample: %w", err)
	}
	s.IsNonSyncSample = !v.Key
	part := fmp4.Part{SequenceNumber: m.seq + 1, Tracks: []*fmp4.PartTrack{{ID: recording.VideoTrackID, BaseTime: uint64(base), Samples: []*fmp4.Sample{s}}}}
	if at := m.audioTrack(); at != nil {
		part.Tracks = append(part.Tracks, at)
	}
	var buf seekablebuffer.Buffer
	if err := part.Marshal(&buf); err != nil {
		return Message{}, fmt.Errorf("live fragment: %w", err)
	}
	m.seq++
	m.next90 = base + d
	return Message{Data: buf.Bytes(), Video: v}, nil
}

// audioTrack takes the queued audio as a track run (nil when none).
func (m *Muxer) audioTrack() *fmp4.PartTrack {
	a := m.sess.Audio
	if len(m.audioQ) == 0 || a == nil {
		return nil
	}
	rate := int64(a.Rate())
	off := recording.MulDiv(m.off90-m.sess.AnchorPTS, rate, recording.VideoTimescale)
	var tr *fmp4.PartTrack
	for _, u := range m.audioQ {
		t := u.PTS + off
		for _, b := range u.Data {
			n := int64(len(b)) / int64(2*a.Channels())
			if a.Codec == recording.AAC {
				n = mpeg4audio.SamplesPerAccessUnit
				if a.AAC.FrameLengthFlag {
					n = 960
				}
			}
			if t < 0 || t < m.nextAudio || len(b) == 0 {
				t += n
				continue
			}
			if tr == nil {
				tr = &fmp4.PartTrack{ID: recording.AudioTrackID, BaseTime: uint64(t)}
			}
			tr.Samples = append(tr.Samples, &fmp4.Sample{Duration: uint32(n), Payload: b})
			t += n
			m.nextAudio = t
		}
	}
	m.audioQ = m.audioQ[:0]
	return tr
}

// VideoCodec returns the RFC 6381 codec string of v.
func VideoCodec(v recording.Video) string {
	if v.Codec == recording.H265 {
		var sps h265.SPS
		if err := sps.Unmarshal(v.SPS); err == nil {
			ptl := sps.ProfileTierLevel
			tier := "L"
			if ptl.GeneralTierFlag != 0 {
				tier = "H"
			}
			// Compatibility flags in reverse bit order, as hex.
			var compat uint32
			for j := 0; j < 32; j++ {
				if ptl.GeneralProfileCompatibilityFlag[j] {
					compat |= 1 << j
				}
			}
			return "hvc1." + strconv.Itoa(int(ptl.GeneralProfileIdc)) + "." + strconv.FormatUint(uint64(compat), 16) +
				"." + tier + strconv.Itoa(int(ptl.GeneralLevelIdc)) + ".B0"
		}
		return "hvc1.1.6.L93.B0"
	}
	if len(v.SPS) >= 4 {
		return fmt.Sprintf("avc1.%02x%02x%02x", v.SPS[1], v.SPS[2], v.SPS[3])
	}
	return "avc1.42e01e"
}

// AudioCodec returns the RFC 6381 codec string of a.
func AudioCodec(a *recording.Audio) string {
	if a.Codec == recording.AAC {
		return "mp4a.40." + strconv.Itoa(int(a.AAC.Type))
	}
	return "ipcm"
}

// Latency is the time from a unit's capture (its wall clock, from the
// camera's RTCP sender reports when it sends them) to now: the
// glass-to-glass estimate before the player's own buffering.
func Latency(u *Unit, now time.Time) time.Duration { return now.Sub(u.Wall()) }
