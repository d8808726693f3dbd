package rtpdepack

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph265"
	"github.com/pion/rtp"

	"xueliang/ingest/segmenter/segmentertest"
)

// loadClip reads a clip from testdata/clips when it is there (file), or
// generates it with ffmpeg (into $XL_BENCH_CLIPS when set, so benchmark
// runs can share it, else into a temporary directory).
func loadClip(t testing.TB, file string, o segmentertest.ClipOptions) *segmentertest.Clip {
	t.Helper()
	if file != "" {
		p := filepath.Join("..", "..", "testdata", "clips", file)
		if _, err := os.Stat(p); err == nil {
			return segmentertest.ReadTS(t, p)
		}
	}
	dir := os.Getenv("XL_BENCH_CLIPS")
	if dir == "" {
		dir = t.TempDir()
	}
	return segmentertest.ReadTS(t, segmentertest.GenerateTS(t, dir, o))
}

// clip1080 is, for H.264, the 1080p clip of segmenter's BenchmarkPacketPath
// (4 s, GOP 50, libx264 CRF 23), so that figures compare with
// bench/notes.md.
func clip1080(t testing.TB, h265 bool) *segmentertest.Clip {
	o := segmentertest.ClipOptions{H265: h265, Size: "1920x1080", Seconds: 4, GOP: 50}
	if h265 {
		// made by scripts/gen-clip.sh (10 s, 2 Mbit/s); libx265 at 1080p
		// takes a while, so it is generated only when missing
		return loadClip(t, "h265_1920x1080_25fps_gop50_b0_none_2M_10s.ts", o)
	}
	name := fmt.Sprintf("clip-h265=%v-s=%v-g=%d-b=%d-aac=%v-%s.ts", o.H265, o.Seconds, o.GOP, o.BFrames, o.AAC, o.Size)
	return loadClip(t, name, o)
}

// encoder is rtph264.Encoder or rtph265.Encoder.
type encoder interface {
	Encode(au [][]byte) ([]*rtp.Packet, error)
}

func newEncoder(t testing.TB, h265 bool, payloadMax int) encoder {
	t.Helper()
	if h265 {
		e := &rtph265.Encoder{PayloadType: 96, PayloadMaxSize: payloadMax}
		if err := e.Init(); err != nil {
			t.Fatal(err)
		}
		return e
	}
	e := &rtph264.Encoder{PayloadType: 96, PayloadMaxSize: payloadMax, PacketizationMode: 1}
	if err := e.Init(); err != nil {
		t.Fatal(err)
	}
	return e
}

// packetize encodes the AUs with gortsplib's encoder, timestamp = PTS.
func packetize(t testing.TB, h265 bool, payloadMax int, aus []segmentertest.AU) []*rtp.Packet {
	t.Helper()
	enc := newEncoder(t, h265, payloadMax)
	var out []*rtp.Packet
	for _, au := range aus {
		pkts, err := enc.Encode(au.NALUs)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pkts {
			p.Timestamp = uint32(au.PTS)
		}
		out = append(out, pkts...)
	}
	return out
}

// decoder is the common method set of all four decoders.
type decoder interface {
	Decode(pkt *rtp.Packet) ([][]byte, error)
}

// pair is a reference decoder and ours, for one codec.
type pair struct {
	ref, own                decoder
	refMore, refNonStarting error
}

func newPair(t testing.TB, h265 bool) *pair {
	t.Helper()
	if h265 {
		ref := &rtph265.Decoder{}
		if err := ref.Init(); err != nil {
			t.Fatal(err)
		}
		own, err := NewH265(0)
		if err != nil {
			t.Fatal(err)
		}
		return &pair{ref: ref, own: own, refMore: rtph265.ErrMorePacketsNeeded,
			refNonStarting: rtph265.ErrNonStartingPacketAndNoPrevious}
	}
	ref := &rtph264.Decoder{PacketizationMode: 1}
	if err := ref.Init(); err != nil {
		t.Fatal(err)
	}
	own, err := NewH264(1)
	if err != nil {
		t.Fatal(err)
	}
	return &pair{ref: ref, own: own, refMore: rtph264.ErrMorePacketsNeeded,
		refNonStarting: rtph264.ErrNonStartingPacketAndNoPrevious}
}

// outcome classes of a Decode call.
const (
	outAU          = "au"
	outMore        = "more-packets-needed"
	outNonStarting = "non-starting-no-previous"
	outError       = "error"
)

func classify(err, more, nonStarting error) string {
	switch {
	case err == nil:
		return outAU
	case errors.Is(err, more):
		return outMore
	case errors.Is(err, nonStarting):
		return outNonStarting
	}
	return outError
}

// step feeds pkt to both decoders and describes any difference ("" when
// the outputs are identical: outcome class, error message, NAL units).
// It returns the outcome class.
func (p *pair) step(pkt *rtp.Packet) (class, diff string) {
	ra, re := p.ref.Decode(pkt)
	oa, oe := p.own.Decode(pkt)
	rc := classify(re, p.refMore, p.refNonStarting)
	oc := classify(oe, ErrMorePacketsNeeded, ErrNonStartingPacketAndNoPrevious)
	if rc != oc {
		return rc, fmt.Sprintf("outcome: gortsplib %s (%v), ours %s (%v)", rc, re, oc, oe)
	}
	if (re == nil) != (oe == nil) || re != nil && re.Error() != oe.Error() {
		return rc, fmt.Sprintf("error: gortsplib %v, ours %v", re, oe)
	}
	if (ra == nil) != (oa == nil) || len(ra) != len(oa) {
		return rc, fmt.Sprintf("AU: gortsplib %d NALUs (nil %v), ours %d (nil %v)", len(ra), ra == nil, len(oa), oa == nil)
	}
	for i := range ra {
		if !bytes.Equal(ra[i], oa[i]) {
			return rc, fmt.Sprintf("AU NALU %d of %d: gortsplib %d bytes, ours %d bytes, equal prefix %v",
				i, len(ra), len(ra[i]), len(oa[i]), bytes.HasPrefix(ra[i], oa[i][:min(len(oa[i]), 16)]))
		}
	}
	return rc, ""
}
