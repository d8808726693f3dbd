// Package reencode re-encodes the partial first GOP of a replay window
// (issue #24): the access units from a keyframe are decoded with
// libavcodec, and the pictures presented from the start frame on are
// encoded again into one closed GOP that begins with an IDR (libx264 for
// H.264, libx265 for H.265; same resolution, high quality, no B-frames).
// The encoder writes its parameter sets in-band before the IDR.
//
// A Reencoder is safe for concurrent use: every call has its own libav
// contexts. It counts the re-encodes and the CPU time they took (process
// CPU time is not attributable per goroutine, so the figure is the wall
// time of the single-threaded libav calls, an upper bound).
package reencode

// #cgo pkg-config: libavcodec libavutil
// #include <libavcodec/avcodec.h>
// #include <libavutil/opt.h>
// #include <libavutil/error.h>
// #include <stdlib.h>
// #include <string.h>
//
// static int xl_eagain(void) { return AVERROR(EAGAIN); }
// static int xl_eof(void) { return AVERROR_EOF; }
//
// // xl_send_packet hands one Annex-B access unit to the decoder.
// static int xl_send_packet(AVCodecContext *c, AVPacket *p, const uint8_t *data, int n, int64_t pts) {
//   if (data == NULL) return avcodec_send_packet(c, NULL);
//   int r = av_new_packet(p, n);
//   if (r < 0) return r;
//   memcpy(p->data, data, n);
//   p->pts = pts;
//   p->dts = AV_NOPTS_VALUE;
//   r = avcodec_send_packet(c, p);
//   av_packet_unref(p);
//   return r;
// }
//
// static AVCodecContext *xl_encoder(int hevc, AVFrame *f, int tb_den, int crf, int *err) {
//   const AVCodec *codec = avcodec_find_encoder_by_name(hevc ? "libx265" : "libx264");
//   if (!codec) { *err = AVERROR_ENCODER_NOT_FOUND; return NULL; }
//   AVCodecContext *c = avcodec_alloc_context3(codec);
//   if (!c) { *err = AVERROR(ENOMEM); return NULL; }
//   c->width = f->width;
//   c->height = f->height;
//   c->pix_fmt = f->format;
//   c->time_base = (AVRational){1, tb_den};
//   c->gop_size = 1 << 20;
//   c->max_b_frames = 0;
//   c->thread_count = 1;
//   c->sample_aspect_ratio = f->sample_aspect_ratio;
//   c->color_range = f->color_range;
//   char crfs[16]; snprintf(crfs, sizeof crfs, "%d", crf);
//   av_opt_set(c->priv_data, "crf", crfs, 0);
//   av_opt_set(c->priv_data, "preset", "veryfast", 0);
//   if (hevc) {
//     av_opt_set(c->priv_data, "x265-params", "bframes=0:keyint=-1:open-gop=0:repeat-headers=1:log-level=none:pools=none:frame-threads=1", 0);
//   } else {
//     av_opt_set(c->priv_data, "x264-params", "bframes=0:keyint=infinite:open-gop=0", 0);
//   }
//   int r = avcodec_open2(c, codec, NULL);
//   if (r < 0) { avcodec_free_context(&c); *err = r; return NULL; }
//   return c;
// }
//
// static void xl_free_ctx(AVCodecContext *c) { avcodec_free_context(&c); }
// static void xl_free_frame(AVFrame *f) { av_frame_free(&f); }
// static void xl_free_packet(AVPacket *p) { av_packet_free(&p); }
// static void xl_err(int code, char *buf, size_t n) { av_strerror(code, buf, n); }
import "C"

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"xueliang/storage/recording"
)

// Sample is one recorded video access unit: AVCC payload (4-byte
// lengths), presentation time in the track timescale.
type Sample struct {
	PTS     int64
	Payload []byte
}

// Encoded is one re-encoded access unit (AVCC, 4-byte lengths), in
// presentation order (there are no B-frames); the first is an IDR with
// its parameter sets in-band.
type Encoded struct {
	PTS     int64
	Payload []byte
}

// ErrNoPicture is returned when no picture at or after the start frame
// could be decoded.
var ErrNoPicture = errors.New("reencode: no picture decoded")

var quietOnce sync.Once

// Reencoder re-encodes partial GOPs and counts them.
type Reencoder struct {
	// CRF is the encoder's constant rate factor (0: 18, visually
	// lossless for x264).
	CRF int

	count   atomic.Int64
	frames  atomic.Int64
	cpuNano atomic.Int64
}

// Stats returns the number of re-encodes, of re-encoded frames and the
// seconds spent in libav for them.
func (r *Reencoder) Stats() (count, frames int64, seconds float64) {
	return r.count.Load(), r.frames.Load(), float64(r.cpuNano.Load()) / 1e9
}

// Available reports whether libavcodec has the encoder for codec.
func Available(codec recording.VideoCodec) bool {
	name := "libx264"
	if codec == recording.H265 {
		name = "libx265"
	}
	cs := C.CString(name)
	defer C.free(unsafe.Pointer(cs))
	return C.avcodec_find_encoder_by_name(cs) != nil
}

// Reencode decodes gop (decode order, gop[0] a keyframe, closed GOP) and
// re-encodes every picture presented at or after startPTS, in
// presentation order. timescale is the track timescale (pts units).
func (r *Reencoder) Reencode(codec recording.VideoCodec, timescale int, gop []Sample, startPTS int64) ([]Encoded, error) {
	quietOnce.Do(func() { C.av_log_set_level(C.AV_LOG_QUIET) })
	t0 := time.Now()
	defer func() { r.cpuNano.Add(int64(time.Since(t0))) }()
	var id uint32
	hevc := C.int(0)
	switch codec {
	case recording.H264:
		id = C.AV_CODEC_ID_H264
	case recording.H265:
		id = C.AV_CODEC_ID_HEVC
		hevc = 1
	default:
		return nil, fmt.Errorf("reencode: unsupported codec %v", codec)
	}
	avc := C.avcodec_find_decoder(id)
	if avc == nil {
		return nil, fmt.Errorf("reencode: no %v decoder", codec)
	}
	dec := C.avcodec_alloc_context3(avc)
	if dec == nil {
		return nil, errors.New("reencode: out of memory")
	}
	defer C.xl_free_ctx(dec)
	dec.thread_count = 1
	if res := C.avcodec_open2(dec, avc, nil); res < 0 {
		return nil, fmt.Errorf("reencode: open decoder: %w", averr(res))
	}
	pkt := C.av_packet_alloc()
	defer C.xl_free_packet(pkt)

	// The recorded SEI units (camera stamps) travel with their picture.
	sei := map[int64][][]byte{}
	for _, s := range gop {
		for _, n := range nalus(s.Payload) {
			if isSEI(n, hevc != 0) {
				sei[s.PTS] = append(sei[s.PTS], n)
			}
		}
	}
	// Decode all, keep the pictures presented at or after startPTS.
	var pics []*C.AVFrame
	defer func() {
		for _, f := range pics {
			C.xl_free_frame(f)
		}
	}()
	receive := func() error {
		for {
			f := C.av_frame_alloc()
			res := C.avcodec_receive_frame(dec, f)
			if res == C.xl_eagain() || res == C.xl_eof() {
				C.xl_free_frame(f)
				return nil
			}
			if res < 0 {
				C.xl_free_frame(f)
				return fmt.Errorf("reencode: decode: %w", averr(res))
			}
			if int64(f.pts) >= startPTS {
				pics = append(pics, f)
			} else {
				C.xl_free_frame(f)
			}
		}
	}
	for _, s := range gop {
		ab := annexB(s.Payload)
		if len(ab) == 0 {
			continue
		}
		res := C.xl_send_packet(dec, pkt, (*C.uint8_t)(unsafe.Pointer(&ab[0])), C.int(len(ab)), C.int64_t(s.PTS))
		if res < 0 {
			return nil, fmt.Errorf("reencode: decode: %w", averr(res))
		}
		if err := receive(); err != nil {
			return nil, err
		}
	}
	C.xl_send_packet(dec, pkt, nil, 0, 0)
	if err := receive(); err != nil {
		return nil, err
	}
	if len(pics) == 0 {
		return nil, ErrNoPicture
	}
	sort.SliceStable(pics, func(i, j int) bool { return pics[i].pts < pics[j].pts })

	crf := r.CRF
	if crf == 0 {
		crf = 18
	}
	var cerr C.int
	enc := C.xl_encoder(hevc, pics[0], C.int(timescale), C.int(crf), &cerr)
	if enc == nil {
		return nil, fmt.Errorf("reencode: open encoder: %w", averr(cerr))
	}
	defer C.xl_free_ctx(enc)
	var out []Encoded
	drain := func() error {
		for {
			res := C.avcodec_receive_packet(enc, pkt)
			if res == C.xl_eagain() || res == C.xl_eof() {
				return nil
			}
			if res < 0 {
				return fmt.Errorf("reencode: encode: %w", averr(res))
			}
			b := C.GoBytes(unsafe.Pointer(pkt.data), pkt.size)
			pts := int64(pkt.pts)
			out = append(out, Encoded{PTS: pts, Payload: withSEI(avcc(b), sei[pts], hevc != 0)})
			C.av_packet_unref(pkt)
		}
	}
	for i, f := range pics {
		f.pict_type = C.AV_PICTURE_TYPE_NONE
		if i == 0 {
			f.pict_type = C.AV_PICTURE_TYPE_I
		}
		if res := C.avcodec_send_frame(enc, f); res < 0 {
			return nil, fmt.Errorf("reencode: encode: %w", averr(res))
		}
		if err := drain(); err != nil {
			return nil, err
		}
	}
	C.avcodec_send_frame(enc, nil)
	if err := drain(); err != nil {
		return nil, err
	}
	if len(out) != len(pics) {
		return nil, fmt.Errorf("reencode: %d pictures in, %d out", len(pics), len(out))
	}
	r.count.Add(1)
	r.frames.Add(int64(len(out)))
	return out, nil
}

// annexB converts an AVCC payload (4-byte lengths) to Annex-B.
func annexB(p []byte) []byte {
	var out []byte
	for len(p) >= 4 {
		n := int(binary.BigEndian.Uint32(p))
		p = p[4:]
		if n > len(p) {
			break
		}
		out = append(out, 0, 0, 0, 1)
		out = append(out, p[:n]...)
		p = p[n:]
	}
	return out
}

// nalus splits an AVCC payload.
func nalus(p []byte) [][]byte {
	var out [][]byte
	for len(p) >= 4 {
		n := int(binary.BigEndian.Uint32(p))
		p = p[4:]
		if n > len(p) || n == 0 {
			break
		}
		out = append(out, p[:n])
		p = p[n:]
	}
	return out
}

func isSEI(n []byte, hevc bool) bool {
	if hevc {
		t := (n[0] >> 1) & 0x3f
		return len(n) >= 2 && (t == 39 || t == 40)
	}
	return n[0]&0x1f == 6
}

func isVCL(n []byte, hevc bool) bool {
	if hevc {
		return (n[0]>>1)&0x3f < 32
	}
	t := n[0] & 0x1f
	return t >= 1 && t <= 5
}

// withSEI inserts the recorded SEI units before the first slice of an
// encoded AVCC access unit.
func withSEI(p []byte, sei [][]byte, hevc bool) []byte {
	if len(sei) == 0 {
		return p
	}
	var out []byte
	done := false
	for _, n := range nalus(p) {
		if !done && isVCL(n, hevc) {
			for _, s := range sei {
				out = binary.BigEndian.AppendUint32(out, uint32(len(s)))
				out = append(out, s...)
			}
			done = true
		}
		out = binary.BigEndian.AppendUint32(out, uint32(len(n)))
		out = append(out, n...)
	}
	return out
}

// avcc converts an Annex-B access unit to 4-byte length prefixes.
func avcc(b []byte) []byte {
	var out []byte
	for _, n := range splitAnnexB(b) {
		out = binary.BigEndian.AppendUint32(out, uint32(len(n)))
		out = append(out, n...)
	}
	return out
}

func splitAnnexB(b []byte) [][]byte {
	var nalus [][]byte
	start := -1
	i := 0
	for i+2 < len(b) {
		if b[i] == 0 && b[i+1] == 0 && b[i+2] == 1 {
			if start >= 0 {
				end := i
				for end > start && b[end-1] == 0 {
					end--
				}
				nalus = append(nalus, b[start:end])
			}
			i += 3
			start = i
			continue
		}
		i++
	}
	if start >= 0 && start < len(b) {
		nalus = append(nalus, b[start:])
	}
	return nalus
}

type avError int

func (e avError) Error() string {
	buf := make([]byte, 128)
	C.xl_err(C.int(e), (*C.char)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)))
	for i, c := range buf {
		if c == 0 {
			return string(buf[:i])
		}
	}
	return string(buf)
}

func averr(c C.int) error { return avError(c) }
