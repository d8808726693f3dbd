// Package sei builds and parses xueliang capture stamps carried in SEI
// "user data unregistered" messages (payloadType 5) of H.264 (NAL type 6)
// and H.265 (prefix SEI, NAL type 39) streams.
//
// A stamp tells a receiver which camera captured a frame, the frame's
// sequence number since the camera (simulator) started, and the wall-clock
// capture time. camsim puts one stamp NAL unit in every video access unit;
// tests read them back from recordings to check that no frame was lost,
// duplicated or mistimed.
//
// Wire format of the SEI payload (all integers big-endian):
//
//	uuid_iso_iec_11578  16 bytes  "xueliang/stamp/1" (ASCII, see UUID)
//	version              1 byte   1
//	seq                  8 bytes  uint64 frame sequence number
//	captured             8 bytes  int64 Unix time in nanoseconds
//	camera_len           1 byte   length of the camera ID (0..255)
//	camera               camera_len bytes, UTF-8
//
// Later versions may append fields; a parser of version 1 ignores trailing
// bytes. The NAL unit is emulation-prevented and ends with rbsp trailing bits.
package sei

import (
	"bytes"
	"encoding/binary"
	"time"
	"xueliang/storage/recording"
)

// UUID identifies xueliang stamps among user-data-unregistered SEI messages.
var UUID = [16]byte{'x', 'u', 'e', 'l', 'i', 'a', 'n', 'g', '/', 's', 't', 'a', 'm', 'p', '/', '1'}

// Version is the body version written by NAL.
const Version = 1

// MaxCameraLen is the longest camera ID a stamp can carry; NAL truncates
// longer IDs.
const MaxCameraLen = 255

const (
	payloadTypeUserDataUnregistered = 5
	bodyFixedLen                    = 1 + 8 + 8 + 1 // version, seq, nanos, camera_len

	h264NALTypeSEI       = 6
	h265NALTypePrefixSEI = 39
)

// Stamp is the information carried by one SEI stamp.
type Stamp struct {
	Camera   string    // camera ID, at most MaxCameraLen bytes
	Seq      uint64    // frame number since the camera started capturing
	Captured time.Time // wall-clock capture time (nanosecond precision, no monotonic part)
}

// NAL returns a complete SEI NAL unit (without start code or length prefix)
// carrying s. Captured is stored as Captured.UnixNano(), so times outside
// the years 1678..2262 are not representable.
func NAL(codec recording.VideoCodec, s Stamp) []byte {
	cam := s.Camera
	if len(cam) > MaxCameraLen {
		cam = cam[:MaxCameraLen]
	}

	body := make([]byte, 0, len(UUID)+bodyFixedLen+len(cam))
	body = append(body, UUID[:]...)
	body = append(body, Version)
	body = binary.BigEndian.AppendUint64(body, s.Seq)
	body = binary.BigEndian.AppendUint64(body, uint64(s.Captured.UnixNano()))
	body = append(body, byte(len(cam)))
	body = append(body, cam...)

	rbsp := make([]byte, 0, len(body)+8)
	rbsp = appendFFCoded(rbsp, payloadTypeUserDataUnregistered)
	rbsp = appendFFCoded(rbsp, len(body))
	rbsp = append(rbsp, body...)
	rbsp = append(rbsp, 0x80) // rbsp_stop_one_bit + alignment

	var out []byte
	switch codec {
	case recording.H265:
		// forbidden_zero_bit=0, nal_unit_type=39, nuh_layer_id=0, nuh_temporal_id_plus1=1
		out = []byte{h265NALTypePrefixSEI << 1, 0x01}
	default:
		// forbidden_zero_bit=0, nal_ref_idc=0, nal_unit_type=6
		out = []byte{h264NALTypeSEI}
	}
	return appendEmulationPrevented(out, rbsp)
}

// IsSEI reports whether nalu is an SEI NAL unit of codec (H.264 type 6,
// H.265 prefix SEI type 39), whatever its content.
func IsSEI(codec recording.VideoCodec, nalu []byte) bool {
	if len(nalu) < 1 {
		return false
	}
	switch codec {
	case recording.H264:
		return nalu[0]&0x1F == h264NALTypeSEI
	case recording.H265:
		return len(nalu) >= 2 && (nalu[0]>>1)&0x3F == h265NALTypePrefixSEI
	}
	return false
}

// Parse extracts a stamp from an SEI NAL unit (without start code). It
// returns false for any other NAL unit, for SEI without a xueliang stamp and
// for malformed input; it never panics. An SEI NAL unit holding several
// messages is searched for the first stamp.
func Parse(codec recording.VideoCodec, nalu []byte) (Stamp, bool) {
	if !IsSEI(codec, nalu) {
		return Stamp{}, false
	}
	hdr := 1
	if codec == recording.H265 {
		hdr = 2
	}
	rbsp := removeEmulationPrevention(nalu[hdr:])

	for len(rbsp) > 0 {
		// the rest is rbsp_trailing_bits (0x80, possibly followed by
		// cabac_zero_words in theory): no more messages.
		if rbsp[0] == 0x80 {
			return Stamp{}, false
		}
		typ, n, ok := readFFCoded(rbsp)
		if !ok {
			return Stamp{}, false
		}
		rbsp = rbsp[n:]
		size, n, ok := readFFCoded(rbsp)
		if !ok {
			return Stamp{}, false
		}
		rbsp = rbsp[n:]
		if size > len(rbsp) {
			return Stamp{}, false
		}
		payload := rbsp[:size]
		rbsp = rbsp[size:]

		if typ == payloadTypeUserDataUnregistered {
			if s, ok := parseBody(payload); ok {
				return s, true
			}
		}
	}
	return Stamp{}, false
}

// FromAU returns the first stamp found in the NAL units of an access unit.
func FromAU(codec recording.VideoCodec, au [][]byte) (Stamp, bool) {
	for _, nalu := range au {
		if s, ok := Parse(codec, nalu); ok {
			return s, true
		}
	}
	return Stamp{}, false
}

func parseBody(p []byte) (Stamp, bool) {
	if len(p) < len(UUID)+bodyFixedLen || !bytes.Equal(p[:len(UUID)], UUID[:]) {
		return Stamp{}, false
	}
	p = p[len(UUID):]
	if p[0] < 1 { // version 0 does not exist; newer versions extend v1
		return Stamp{}, false
	}
	seq := binary.BigEndian.Uint64(p[1:9])
	nanos := int64(binary.BigEndian.Uint64(p[9:17]))
	camLen := int(p[17])
	p = p[18:]
	if camLen > len(p) {
		return Stamp{}, false
	}
	return Stamp{
		Camera:   string(p[:camLen]),
		Seq:      seq,
		Captured: time.Unix(0, nanos),
	}, true
}

// appendFFCoded appends v in the SEI payloadType/payloadSize coding: a run
// of 0xFF bytes, each worth 255, then the remainder.
func appendFFCoded(b []byte, v int) []byte {
	for v >= 255 {
		b = append(b, 0xFF)
		v -= 255
	}
	return append(b, byte(v))
}

// readFFCoded reads a value written by appendFFCoded and returns it with the
// number of bytes consumed.
func readFFCoded(b []byte) (v, n int, ok bool) {
	for n < len(b) {
		c := b[n]
		n++
		v += int(c)
		if c != 0xFF {
			return v, n, true
		}
		if v > 1<<24 { // no sane SEI is this large; stop overflow games
			return 0, 0, false
		}
	}
	return 0, 0, false
}

// appendEmulationPrevented appends rbsp to b, inserting an
// emulation_prevention_three_byte (0x03) after every two zero bytes that are
// followed by a byte <= 0x03 (H.264 7.4.1, H.265 7.4.2). The rbsp of an SEI
// ends with 0x80, so no trailing 0x03 is needed.
func appendEmulationPrevented(b, rbsp []byte) []byte {
	zeros := 0
	for _, c := range rbsp {
		if zeros >= 2 && c <= 3 {
			b = append(b, 3)
			zeros = 0
		}
		b = append(b, c)
		if c == 0 {
			zeros++
		} else {
			zeros = 0
		}
	}
	return b
}

// removeEmulationPrevention drops every 0x03 that follows two zero bytes.
// It always copies, so the caller's buffer is never aliased.
func removeEmulationPrevention(b []byte) []byte {
	out := make([]byte, 0, len(b))
	zeros := 0
	for _, c := range b {
		if zeros >= 2 && c == 3 {
			zeros = 0
			continue
		}
		out = append(out, c)
		if c == 0 {
			zeros++
		} else {
			zeros = 0
		}
	}
	return out
}
