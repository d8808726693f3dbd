// Package decode turns H.264 and H.265 access units into YUV 4:2:0 pictures
// with FFmpeg's libavcodec (and libswscale for pixel-format conversion),
// through cgo.
//
// A Decoder holds one libavcodec context; it is not safe for concurrent use
// (one Decoder per camera stream). Pictures are copied out of libav memory,
// so a Frame stays valid after the next Decode and after Close.
//
// Robustness: access units are checked before they reach libavcodec (empty
// units, forbidden bits, reserved NAL types are rejected) and the decoder
// runs with error explosion enabled, so corrupt input is reported as an
// error for that access unit; the decoder keeps going with the next one.
// libav's own log output is silenced once per process (av_log_set_level is
// libav's global state; nothing else is global here).
package decode

// #cgo pkg-config: libavcodec libavutil libswscale
// #include <libavcodec/avcodec.h>
// #include <libavutil/imgutils.h>
// #include <libavutil/error.h>
// #include <libswscale/swscale.h>
//
// static int xl_averror_eagain(void) { return AVERROR(EAGAIN); }
// static int xl_averror_eof(void) { return AVERROR_EOF; }
// static uint8_t *xl_plane(AVFrame *f, int i) { return f->data[i]; }
// static int xl_linesize(AVFrame *f, int i) { return f->linesize[i]; }
// static void xl_err(int code, char *buf, size_t n) { av_strerror(code, buf, n); }
import "C"

import (
	"errors"
	"fmt"
	"image"
	"sync"
	"unsafe"
	"xueliang/storage/recording"
)

// Errors returned by Decode (wrapped; test with errors.Is).
var (
	// ErrClosed is returned by Decode after Close.
	ErrClosed = errors.New("decoder closed")
	// ErrInvalidAU is returned for access units rejected before decoding
	// (empty, zero-length NAL unit, forbidden bit set, reserved NAL type).
	ErrInvalidAU = errors.New("invalid access unit")
	// ErrDecode wraps a libavcodec error for one access unit.
	ErrDecode = errors.New("decode failed")
)

// maxAUSize bounds the Annex-B buffer of one access unit (64 MiB); larger
// units are rejected instead of being handed to libavcodec.
const maxAUSize = 64 << 20

var quietOnce sync.Once

// Decoder decodes one H.264 or H.265 elementary stream.
type Decoder struct {
	codec    recording.VideoCodec
	ctx      *C.AVCodecContext
	frame    *C.AVFrame // decoder output
	conv     *C.AVFrame // converted to YUV420P when the decoder outputs another format
	pkt      *C.AVPacket
	sws      *C.struct_SwsContext
	swsW     int
	swsH     int
	swsFmt   int32
	buf      *C.uint8_t // padded Annex-B buffer owned by libav (av_fast_padded_malloc)
	bufSize  C.uint
	closed   bool
	received int // pictures received since New, for tests and stats
}

// New returns a decoder for codec. It decodes on the calling goroutine with a
// single thread: per-camera isolation and predictable CPU accounting matter
// more here than the latency of one stream.
func New(codec recording.VideoCodec) (*Decoder, error) {
	var id uint32
	switch codec {
	case recording.H264:
		id = C.AV_CODEC_ID_H264
	case recording.H265:
		id = C.AV_CODEC_ID_HEVC
	default:
		return nil, fmt.Errorf("new decoder: unsupported codec %v", codec)
	}
	quietOnce.Do(func() { C.av_log_set_level(C.AV_LOG_QUIET) })

	avc := C.avcodec_find_decoder(id)
	if avc == nil {
		return nil, fmt.Errorf("new decoder: libavcodec has no %v decoder", codec)
	}
	d := &Decoder{codec: codec}
	d.ctx = C.avcodec_alloc_context3(avc)
	if d.ctx == nil {
		return nil, fmt.Errorf("new decoder: avcodec_alloc_context3 failed")
	}
	d.ctx.thread_count = 1
	// Report bitstream errors instead of concealing them silently.
	d.ctx.err_recognition |= C.AV_EF_EXPLODE | C.AV_EF_CRCCHECK | C.AV_EF_BITSTREAM | C.AV_EF_BUFFER
	if res := C.avcodec_open2(d.ctx, avc, nil); res < 0 {
		d.Close()
		return nil, fmt.Errorf("new decoder: avcodec_open2: %w", averr(res))
	}
	d.frame = C.av_frame_alloc()
	d.pkt = C.av_packet_alloc()
	if d.frame == nil || d.pkt == nil {
		d.Close()
		return nil, fmt.Errorf("new decoder: out of memory")
	}
	return d, nil
}

// Codec returns the codec the decoder was created for.
func (d *Decoder) Codec() recording.VideoCodec { return d.codec }

// Decode feeds one access unit (NAL units without start codes, including
// parameter sets when present) and returns the newest picture the decoder
// produced, or nil, nil when there is none yet (start of stream before the
// first IDR, decoder delay with B-frames). When one call yields several
// pictures only the last is returned. A corrupt access unit returns an
// error wrapping ErrInvalidAU or ErrDecode; the decoder stays usable.
// Parameter-set and resolution changes are handled by libavcodec; the Frame
// reports the size of each picture.
func (d *Decoder) Decode(au [][]byte) (*Frame, error) {
	return d.decode(au, true)
}

// Feed decodes an access unit like Decode but discards the pictures
// instead of copying them out of libav: for frames that must be decoded
// (references) but will not be looked at, e.g. between motion-analysis
// samples. It reports whether a picture was produced.
func (d *Decoder) Feed(au [][]byte) (bool, error) {
	f, err := d.decode(au, false)
	return f != nil, err
}

// DecodeIntra decodes an access unit that is decodable on its own (an IDR
// or other IRAP keyframe with its parameter sets) and returns its picture
// at once: after the unit the decoder is drained and reset, so the reorder
// delay of a stream with B-frames (Decode would return this picture one or
// two units later) does not apply. It is for keyframes-only decoding; the
// decoder keeps no reference pictures afterwards, so follow it with
// another keyframe, not with the frames that depend on this one.
func (d *Decoder) DecodeIntra(au [][]byte) (*Frame, error) {
	out, err := d.decode(au, true)
	if err != nil {
		if !d.closed {
			C.avcodec_flush_buffers(d.ctx)
		}
		return nil, err
	}
	// A NULL packet starts draining: every delayed picture comes out, then
	// EOF; flushing ends the draining state so new units are accepted.
	if res := C.avcodec_send_packet(d.ctx, nil); res >= 0 || res == C.xl_averror_eof() {
		for {
			f, rerr := d.receive(true)
			if rerr != nil || f == nil {
				break
			}
			out = f
		}
	}
	C.avcodec_flush_buffers(d.ctx)
	return out, nil
}

// discarded stands for a picture that Feed did not copy.
var discarded = &Frame{}

func (d *Decoder) decode(au [][]byte, keep bool) (*Frame, error) {
	if d.closed {
		return nil, ErrClosed
	}
	size, err := d.checkAU(au)
	if err != nil {
		return nil, err
	}
	C.av_fast_padded_malloc(unsafe.Pointer(&d.buf), &d.bufSize, C.size_t(size))
	if d.buf == nil {
		return nil, fmt.Errorf("%w: out of memory for %d bytes", ErrDecode, size)
	}
	dst := unsafe.Slice((*byte)(unsafe.Pointer(d.buf)), size)
	n := 0
	for _, nalu := range au {
		n += copy(dst[n:], []byte{0, 0, 0, 1})
		n += copy(dst[n:], nalu)
	}

	d.pkt.data = d.buf
	d.pkt.size = C.int(size)
	var out *Frame
	for {
		res := C.avcodec_send_packet(d.ctx, d.pkt)
		if res == C.xl_averror_eagain() {
			// Output queue full: drain, then resend the same packet.
			f, err := d.receive(keep)
			if err != nil {
				d.resetPacket()
				return nil, err
			}
			if f != nil {
				out = f
			}
			continue
		}
		if res < 0 {
			d.resetPacket()
			// Drain whatever is decodable so the next call starts clean.
			for {
				f, rerr := d.receive(false)
				if rerr != nil || f == nil {
					break
				}
			}
			return nil, fmt.Errorf("%w: %v access unit of %d bytes: %w", ErrDecode, d.codec, size, averr(res))
		}
		break
	}
	d.resetPacket()
	for {
		f, err := d.receive(keep)
		if err != nil {
			return out, err
		}
		if f == nil {
			return out, nil
		}
		out = f
	}
}

func (d *Decoder) resetPacket() {
	d.pkt.data = nil
	d.pkt.size = 0
}

// checkAU validates the NAL headers and returns the Annex-B size.
func (d *Decoder) checkAU(au [][]byte) (int, error) {
	if len(au) == 0 {
		return 0, fmt.Errorf("%w: no NAL units", ErrInvalidAU)
	}
	size := 0
	for i, n := range au {
		hdr := 1
		if d.codec == recording.H265 {
			hdr = 2
		}
		if len(n) < hdr {
			return 0, fmt.Errorf("%w: NAL unit %d is %d bytes", ErrInvalidAU, i, len(n))
		}
		if n[0]&0x80 != 0 {
			return 0, fmt.Errorf("%w: NAL unit %d has forbidden_zero_bit set", ErrInvalidAU, i)
		}
		if d.codec == recording.H264 {
			if t := n[0] & 0x1f; t == 0 || t >= 24 {
				return 0, fmt.Errorf("%w: NAL unit %d has reserved/unspecified type %d", ErrInvalidAU, i, t)
			}
		} else {
			if t := (n[0] >> 1) & 0x3f; t >= 48 {
				return 0, fmt.Errorf("%w: NAL unit %d has reserved/unspecified type %d", ErrInvalidAU, i, t)
			}
			if tid := n[1] & 0x07; tid == 0 {
				return 0, fmt.Errorf("%w: NAL unit %d has nuh_temporal_id_plus1 = 0", ErrInvalidAU, i)
			}
		}
		size += 4 + len(n)
		if size > maxAUSize {
			return 0, fmt.Errorf("%w: larger than %d bytes", ErrInvalidAU, maxAUSize)
		}
	}
	return size, nil
}

// receive returns the next decoded picture, nil when none is ready.
// receive returns discarded instead of a copy when keep is false.
func (d *Decoder) receive(keep bool) (*Frame, error) {
	res := C.avcodec_receive_frame(d.ctx, d.frame)
	if res == C.xl_averror_eagain() || res == C.xl_averror_eof() {
		return nil, nil
	}
	if res < 0 {
		return nil, fmt.Errorf("%w: receive frame: %w", ErrDecode, averr(res))
	}
	defer C.av_frame_unref(d.frame)
	d.received++
	if !keep {
		return discarded, nil
	}
	return d.copyOut(d.frame)
}

func (d *Decoder) copyOut(src *C.AVFrame) (*Frame, error) {
	w, h := int(src.width), int(src.height)
	if w <= 0 || h <= 0 || w > 16384 || h > 16384 {
		return nil, fmt.Errorf("%w: picture size %dx%d", ErrDecode, w, h)
	}
	switch src.format {
	case C.AV_PIX_FMT_YUV420P, C.AV_PIX_FMT_YUVJ420P:
	default:
		conv, err := d.convert(src)
		if err != nil {
			return nil, err
		}
		src = conv
	}
	cw, ch := (w+1)/2, (h+1)/2
	f := &Frame{Width: w, Height: h, YStride: w, CStride: cw}
	f.Y = copyPlane(src, 0, w, h)
	f.Cb = copyPlane(src, 1, cw, ch)
	f.Cr = copyPlane(src, 2, cw, ch)
	return f, nil
}

func copyPlane(src *C.AVFrame, i, w, h int) []byte {
	out := make([]byte, w*h)
	ls := int(C.xl_linesize(src, C.int(i)))
	base := unsafe.Pointer(C.xl_plane(src, C.int(i)))
	if ls < w || base == nil {
		return out
	}
	plane := unsafe.Slice((*byte)(base), ls*(h-1)+w)
	for y := 0; y < h; y++ {
		copy(out[y*w:(y+1)*w], plane[y*ls:y*ls+w])
	}
	return out
}

// convert scales src into d.conv as YUV420P (same size), for decoders that
// output 4:2:2, 4:4:4, 10-bit or other formats.
func (d *Decoder) convert(src *C.AVFrame) (*C.AVFrame, error) {
	w, h, pf := int(src.width), int(src.height), int32(src.format)
	if d.sws == nil || d.swsW != w || d.swsH != h || d.swsFmt != pf {
		d.freeConv()
		d.sws = C.sws_getContext(src.width, src.height, int32(src.format),
			src.width, src.height, C.AV_PIX_FMT_YUV420P, C.SWS_BILINEAR, nil, nil, nil)
		if d.sws == nil {
			return nil, fmt.Errorf("%w: no conversion from pixel format %d", ErrDecode, pf)
		}
		d.conv = C.av_frame_alloc()
		if d.conv == nil {
			d.freeConv()
			return nil, fmt.Errorf("%w: out of memory", ErrDecode)
		}
		d.conv.format = C.AV_PIX_FMT_YUV420P
		d.conv.width = src.width
		d.conv.height = src.height
		if res := C.av_frame_get_buffer(d.conv, 0); res < 0 {
			d.freeConv()
			return nil, fmt.Errorf("%w: av_frame_get_buffer: %w", ErrDecode, averr(res))
		}
		d.swsW, d.swsH, d.swsFmt = w, h, pf
	}
	res := C.sws_scale(d.sws,
		(**C.uint8_t)(unsafe.Pointer(&src.data[0])), (*C.int)(unsafe.Pointer(&src.linesize[0])),
		0, src.height,
		(**C.uint8_t)(unsafe.Pointer(&d.conv.data[0])), (*C.int)(unsafe.Pointer(&d.conv.linesize[0])))
	if res < 0 {
		return nil, fmt.Errorf("%w: sws_scale: %w", ErrDecode, averr(res))
	}
	return d.conv, nil
}

func (d *Decoder) freeConv() {
	if d.sws != nil {
		C.sws_freeContext(d.sws)
		d.sws = nil
	}
	if d.conv != nil {
		C.av_frame_free(&d.conv)
	}
	d.swsW, d.swsH, d.swsFmt = 0, 0, 0
}

// Close frees all libav resources. It is safe to call more than once.
func (d *Decoder) Close() {
	if d == nil || d.closed {
		return
	}
	d.closed = true
	d.freeConv()
	if d.frame != nil {
		C.av_frame_free(&d.frame)
	}
	if d.pkt != nil {
		C.av_packet_free(&d.pkt)
	}
	if d.ctx != nil {
		C.avcodec_free_context(&d.ctx)
	}
	if d.buf != nil {
		C.av_freep(unsafe.Pointer(&d.buf))
		d.bufSize = 0
	}
}

// averr converts a negative libav return code to an error.
type avError int

func (e avError) Error() string {
	var buf [128]C.char
	C.xl_err(C.int(e), &buf[0], C.size_t(len(buf)))
	return fmt.Sprintf("%s (%d)", C.GoString(&buf[0]), int(e))
}

func averr(code C.int) error { return avError(code) }

// Frame is one decoded picture in 8-bit YUV 4:2:0, copied out of libav.
// Y is YStride*Height bytes, Cb and Cr are CStride*((Height+1)/2) bytes.
type Frame struct {
	Width, Height    int
	Y, Cb, Cr        []byte
	YStride, CStride int
}

// Image returns the picture as an image.YCbCr sharing the Frame's planes
// (suitable for image/jpeg).
func (f *Frame) Image() *image.YCbCr {
	return &image.YCbCr{
		Y: f.Y, Cb: f.Cb, Cr: f.Cr,
		YStride: f.YStride, CStride: f.CStride,
		SubsampleRatio: image.YCbCrSubsampleRatio420,
		Rect:           image.Rect(0, 0, f.Width, f.Height),
	}
}

// Gray returns the luma plane downscaled to w×h by area averaging (each
// output pixel is the mean of the source pixels its box covers), w*h bytes
// row by row. Area averaging is also a low-pass filter: it removes most
// sensor noise and blocking before motion analysis. Upscaling (w > Width
// or h > Height) falls back to nearest neighbour. It returns nil when w or
// h is not positive.
func (f *Frame) Gray(w, h int) []byte {
	if w <= 0 || h <= 0 || f.Width <= 0 || f.Height <= 0 {
		return nil
	}
	out := make([]byte, w*h)
	W, H := f.Width, f.Height
	if w > W || h > H {
		for y := 0; y < h; y++ {
			sy := y * H / h
			for x := 0; x < w; x++ {
				out[y*w+x] = f.Y[sy*f.YStride+x*W/w]
			}
		}
		return out
	}
	// Column sums per output row, then box sums along x.
	x0s := make([]int, w+1)
	for x := 0; x <= w; x++ {
		x0s[x] = x * W / w
	}
	colSum := make([]uint32, W)
	for y := 0; y < h; y++ {
		y0, y1 := y*H/h, (y+1)*H/h
		clear(colSum)
		for sy := y0; sy < y1; sy++ {
			row := f.Y[sy*f.YStride : sy*f.YStride+W]
			for i, v := range row {
				colSum[i] += uint32(v)
			}
		}
		rows := uint32(y1 - y0)
		for x := 0; x < w; x++ {
			var s uint32
			for _, v := range colSum[x0s[x]:x0s[x+1]] {
				s += v
			}
			n := rows * uint32(x0s[x+1]-x0s[x])
			out[y*w+x] = byte((s + n/2) / n)
		}
	}
	return out
}
