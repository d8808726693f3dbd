package segmenter_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph264"
	"github.com/pion/rtp"

	"xueliang/ingest/segmenter"
	"xueliang/ingest/segmenter/segmentertest"
	"xueliang/storage/recording"
)

// benchClip is a 1080p25 H.264 clip (GOP 50) packetised into RTP.
type benchClip struct {
	clip    *segmentertest.Clip
	aus     []segmentertest.AU
	packets []*rtp.Packet
	auOf    []int // index in aus of the AU each packet completes, -1 otherwise
	bytes   int
}

func loadBenchClip(b *testing.B) *benchClip {
	b.Helper()
	dir := os.Getenv("XL_BENCH_CLIPS") // reuse between runs when set
	if dir == "" {
		dir = b.TempDir()
	}
	path := segmentertest.GenerateTS(b, dir, segmentertest.ClipOptions{Size: "1920x1080", Seconds: 4, GOP: 50})
	c := segmentertest.ReadTS(b, path)
	bc := &benchClip{clip: c, aus: c.Video()}
	f := &format.H264{PayloadTyp: 96, PacketizationMode: 1, SPS: c.SPS, PPS: c.PPS}
	enc, err := f.CreateEncoder()
	if err != nil {
		b.Fatal(err)
	}
	for i, au := range bc.aus {
		pkts, err := enc.Encode(au.NALUs)
		if err != nil {
			b.Fatal(err)
		}
		for j, p := range pkts {
			p.Timestamp = uint32(au.PTS)
			bc.packets = append(bc.packets, p)
			bc.bytes += len(p.Payload)
			if j == len(pkts)-1 {
				bc.auOf = append(bc.auOf, i)
			} else {
				bc.auOf = append(bc.auOf, -1)
			}
		}
	}
	return bc
}

func newBenchWriter(b *testing.B, c *segmentertest.Clip) *segmenter.Writer {
	b.Helper()
	root := b.TempDir()
	w, err := segmenter.New(segmenter.Config{
		CameraID: "bench", SpoolRoot: root, Index: segmentertest.NewFakeIndex(),
		SegmentDuration: 10 * time.Second,
		// closed segments are deleted so a long run does not fill the disk
		OnClosed: func(s recording.Segment) { os.Remove(filepath.Join(root, filepath.FromSlash(s.ObjectKey))) },
	})
	if err != nil {
		b.Fatal(err)
	}
	worker := make(chan error, 1)
	go func() { worker <- w.Run(context.Background()) }()
	if err := w.Start(segmenter.Session{Anchor: time.Now(), AnchorPTS: 0,
		Video: recording.Video{Codec: recording.H264, SPS: c.SPS, PPS: c.PPS}}); err != nil {
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

// BenchmarkPacketPath measures the per-packet receive path of one camera
// with real 1080p packets: RTP depacketisation (rtph264), the segmenter's
// WriteVideo (fMP4 fragments into a spool file), and both. One op = one
// RTP packet, so ns/op is directly comparable with REFERENCE.md's ≈2 µs.
func BenchmarkPacketPath(b *testing.B) {
	bc := loadBenchClip(b)
	clipTicks := bc.aus[len(bc.aus)-1].DTS - bc.aus[0].DTS + 3600

	b.Run("stage=depacketize/codec=h264/size=1080p", func(b *testing.B) {
		dec := &rtph264.Decoder{PacketizationMode: 1}
		if err := dec.Init(); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.SetBytes(int64(bc.bytes / len(bc.packets)))
		for i := 0; b.Loop(); i++ {
			depacketize(b, dec, bc.packets[i%len(bc.packets)])
		}
	})

	b.Run("stage=segmenter/codec=h264/size=1080p", func(b *testing.B) {
		w := newBenchWriter(b, bc.clip)
		b.ReportAllocs()
		b.SetBytes(int64(bc.bytes / len(bc.packets)))
		for i := 0; b.Loop(); i++ {
			k := i % len(bc.packets)
			if a := bc.auOf[k]; a >= 0 {
				writeAU(b, w, bc.aus[a], bc.aus[a].NALUs, int64(i/len(bc.packets))*clipTicks)
			}
		}
	})

	b.Run("stage=depacketize+segmenter/codec=h264/size=1080p", func(b *testing.B) {
		w := newBenchWriter(b, bc.clip)
		dec := &rtph264.Decoder{PacketizationMode: 1}
		if err := dec.Init(); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.SetBytes(int64(bc.bytes / len(bc.packets)))
		for i := 0; b.Loop(); i++ {
			k := i % len(bc.packets)
			if nalus := depacketize(b, dec, bc.packets[k]); nalus != nil {
				writeAU(b, w, bc.aus[bc.auOf[k]], nalus, int64(i/len(bc.packets))*clipTicks)
			}
		}
	})
}

func depacketize(b *testing.B, dec *rtph264.Decoder, p *rtp.Packet) [][]byte {
	nalus, err := dec.Decode(p)
	if errors.Is(err, rtph264.ErrMorePacketsNeeded) {
		return nil
	}
	if err != nil {
		b.Fatal(err)
	}
	return nalus
}

func writeAU(b *testing.B, w *segmenter.Writer, au segmentertest.AU, nalus [][]byte, off int64) {
	if err := w.WriteVideo(au.PTS+off, au.DTS+off, nalus, au.Key); err != nil {
		b.Fatal(err)
	}
}
