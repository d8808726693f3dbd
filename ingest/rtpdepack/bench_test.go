package rtpdepack

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/pion/rtp"

	"xueliang/ingest/segmenter"
	"xueliang/ingest/segmenter/segmentertest"
	"xueliang/storage/recording"
)

// benchStream is a 1080p clip packetised by gortsplib's encoder (default
// payload size, 1,450 bytes), as a camera sends it.
type benchStream struct {
	h265    bool
	clip    *segmentertest.Clip
	aus     []segmentertest.AU
	packets []*rtp.Packet
	auOf    []int // index in aus of the AU each packet completes, -1 otherwise
	bytes   int
	ticks   int64 // clip length, 90 kHz
}

func loadBenchStream(b *testing.B, h265 bool) *benchStream {
	b.Helper()
	c := clip1080(b, h265)
	s := &benchStream{h265: h265, clip: c, aus: c.Video()}
	enc := newEncoder(b, h265, 0)
	for i, au := range s.aus {
		pkts, err := enc.Encode(au.NALUs)
		if err != nil {
			b.Fatal(err)
		}
		for j, p := range pkts {
			p.Timestamp = uint32(au.PTS)
			s.packets = append(s.packets, p)
			s.bytes += len(p.Payload)
			if j == len(pkts)-1 {
				s.auOf = append(s.auOf, i)
			} else {
				s.auOf = append(s.auOf, -1)
			}
		}
	}
	s.ticks = s.aus[len(s.aus)-1].DTS - s.aus[0].DTS + 3600
	return s
}

var benchImpls = []string{"gortsplib", "rtpdepack"}

// newBenchDecoder returns gortsplib's decoder or ours, with the sentinel
// meaning "no access unit yet".
func newBenchDecoder(b *testing.B, impl string, h265 bool) (decoder, error) {
	p := newPair(b, h265)
	if impl == "gortsplib" {
		return p.ref, p.refMore
	}
	return p.own, ErrMorePacketsNeeded
}

func codecName(h265 bool) string {
	if h265 {
		return "h265"
	}
	return "h264"
}

// BenchmarkDepacketize compares gortsplib's depacketiser with ours on a
// real 1080p stream. One op = one RTP packet.
func BenchmarkDepacketize(b *testing.B) {
	for _, h265 := range []bool{false, true} {
		s := loadBenchStream(b, h265)
		for _, impl := range benchImpls {
			b.Run("impl="+impl+"/codec="+codecName(h265)+"/size=1080p", func(b *testing.B) {
				dec, more := newBenchDecoder(b, impl, h265)
				b.ReportAllocs()
				b.SetBytes(int64(s.bytes / len(s.packets)))
				defer reportMallocs(b)()
				for i := 0; b.Loop(); i++ {
					if _, err := dec.Decode(s.packets[i%len(s.packets)]); err != nil && !errors.Is(err, more) {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkPacketPath mirrors segmenter's BenchmarkPacketPath (stage
// depacketize+segmenter) with either depacketiser: RTP packet → access
// unit → segmenter WriteVideo (fMP4 fragment into a spool file, hashed).
// One op = one RTP packet.
func BenchmarkPacketPath(b *testing.B) {
	for _, h265 := range []bool{false, true} {
		s := loadBenchStream(b, h265)
		for _, impl := range benchImpls {
			b.Run("impl="+impl+"/stage=depacketize+segmenter/codec="+codecName(h265)+"/size=1080p", func(b *testing.B) {
				w := newBenchWriter(b, s)
				dec, more := newBenchDecoder(b, impl, h265)
				b.ReportAllocs()
				b.SetBytes(int64(s.bytes / len(s.packets)))
				defer reportMallocs(b)()
				for i := 0; b.Loop(); i++ {
					k := i % len(s.packets)
					nalus, err := dec.Decode(s.packets[k])
					if errors.Is(err, more) {
						continue
					}
					if err != nil {
						b.Fatal(err)
					}
					au := s.aus[s.auOf[k]]
					off := int64(i/len(s.packets)) * s.ticks
					if err := w.WriteVideo(au.PTS+off, au.DTS+off, nalus, au.Key); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func newBenchWriter(b *testing.B, s *benchStream) *segmenter.Writer {
	b.Helper()
	root := b.TempDir()
	w, err := segmenter.New(segmenter.Config{
		CameraID: "bench", SpoolRoot: root, Index: segmentertest.NewFakeIndex(),
		SegmentDuration: 10 * time.Second,
		// closed segments are deleted so a long run does not fill the disk
		OnClosed: func(seg recording.Segment) { os.Remove(filepath.Join(root, filepath.FromSlash(seg.ObjectKey))) },
	})
	if err != nil {
		b.Fatal(err)
	}
	worker := make(chan error, 1)
	go func() { worker <- w.Run(context.Background()) }()
	v := recording.Video{Codec: recording.H264, SPS: s.clip.SPS, PPS: s.clip.PPS}
	if s.h265 {
		v = recording.Video{Codec: recording.H265, VPS: s.clip.VPS, SPS: s.clip.SPS, PPS: s.clip.PPS}
	}
	if err := w.Start(segmenter.Session{Anchor: time.Now(), AnchorPTS: 0, Video: v}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		w.Close()
		if err := <-worker; err != nil {
			b.Error(err)
		}
	})
	return w
}

// reportMallocs reports the allocations per op with decimals (allocs/op
// rounds down: gortsplib allocates about once per NAL unit, not per
// packet). Call as defer reportMallocs(b)().
func reportMallocs(b *testing.B) func() {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	before := m.Mallocs
	return func() {
		runtime.ReadMemStats(&m)
		b.ReportMetric(float64(m.Mallocs-before)/float64(b.N), "mallocs/packet")
	}
}
