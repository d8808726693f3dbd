package segmenter

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
)

// TestFragmentMatchesMediacommon checks that the in-place fragment writer
// produces exactly the bytes of fmp4.Part.Marshal (the format the reader
// and recovery were written against) for random video+audio fragments.
func TestFragmentMatchesMediacommon(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 200 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			seq := rng.Uint32()
			part := fmp4.Part{SequenceNumber: seq}
			var buf fragBuf
			head := 8 + rng.IntN(3)*defaultHeadroom
			buf.reset(head)
			var tracks []trackRun
			nTracks := 1 + rng.IntN(2)
			for tr := range nTracks {
				pt := &fmp4.PartTrack{ID: tr + 1, BaseTime: rng.Uint64N(1 << 40)}
				run := trackRun{id: uint32(tr + 1), baseTime: pt.BaseTime}
				start := len(buf.b)
				for range 1 + rng.IntN(60) {
					var au [][]byte
					for range 1 + rng.IntN(3) {
						n := make([]byte, rng.IntN(300))
						for j := range n {
							n[j] = byte(rng.Uint32())
						}
						au = append(au, n)
					}
					var payload []byte
					for _, n := range au {
						payload = append(payload, byte(len(n)>>24), byte(len(n)>>16), byte(len(n)>>8), byte(len(n)))
						payload = append(payload, n...)
					}
					e := sampleEntry{duration: rng.Uint32N(9000)}
					if tr == 0 {
						e.nonSync = rng.IntN(3) == 0
						if rng.IntN(2) == 0 {
							e.cts = int32(rng.IntN(20000)) - 10000
						}
					}
					_, size := buf.appendAU(au)
					e.size = uint32(size)
					if size != avccSize(au) || !bytes.Equal(buf.b[len(buf.b)-size:], payload) {
						t.Fatal("appendAU differs from AVCC")
					}
					run.entries = append(run.entries, e)
					pt.Samples = append(pt.Samples, &fmp4.Sample{Duration: e.duration, PTSOffset: e.cts,
						IsNonSyncSample: e.nonSync, Payload: payload})
				}
				run.dataLen = len(buf.b) - start
				tracks = append(tracks, run)
				part.Tracks = append(part.Tracks, pt)
			}
			var want seekablebuffer.Buffer
			if err := part.Marshal(&want); err != nil {
				t.Fatal(err)
			}
			hdr := moofSize(tracks) + 8
			dataLen := len(buf.b) - buf.head
			var got []byte
			if hdr <= buf.head {
				got = buf.b[buf.head-hdr:]
			} else {
				got = append(make([]byte, hdr), buf.b[buf.head:]...)
			}
			putMoofMdat(got[:hdr], seq, tracks, dataLen)
			defer buf.release()
			if !bytes.Equal(got, want.Bytes()) {
				t.Fatalf("fragment differs from fmp4.Part.Marshal (%d vs %d bytes)", len(got), len(want.Bytes()))
			}
		})
	}
}
