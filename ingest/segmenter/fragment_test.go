package segmenter

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
)

// TestFragmentMatchesMediacommon checks that the fragment writer's headers
// and AVCC samples are exactly the bytes of fmp4.Part.Marshal (the format
// the reader and recovery were written against) behind the free box that
// fills the rest of the reservation, for random video+audio fragments.
func TestFragmentMatchesMediacommon(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 200 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			seq := rng.Uint32()
			part := fmp4.Part{SequenceNumber: seq}
			var media []byte
			var tracks []trackRun
			nTracks := 1 + rng.IntN(2)
			for tr := range nTracks {
				pt := &fmp4.PartTrack{ID: tr + 1, BaseTime: rng.Uint64N(1 << 40)}
				run := trackRun{id: uint32(tr + 1), baseTime: pt.BaseTime}
				start := len(media)
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
					media = appendAVCC(media, au)
					size := avccSize(au)
					e.size = uint32(size)
					if !bytes.Equal(media[len(media)-size:], payload) {
						t.Fatal("appendAVCC or avccSize differs from AVCC")
					}
					run.entries = append(run.entries, e)
					pt.Samples = append(pt.Samples, &fmp4.Sample{Duration: e.duration, PTSOffset: e.cts,
						IsNonSyncSample: e.nonSync, Payload: payload})
				}
				run.dataLen = len(media) - start
				tracks = append(tracks, run)
				part.Tracks = append(part.Tracks, pt)
			}
			var want seekablebuffer.Buffer
			if err := part.Marshal(&want); err != nil {
				t.Fatal(err)
			}
			// The header reservation: exactly the headers, or with a free
			// box in front of them.
			hdr := moofSize(tracks) + 8
			pad := 0
			if rng.IntN(2) == 0 {
				pad = freeBoxMin + 4*rng.IntN(100)
			}
			res := make([]byte, pad+hdr)
			for j := range res {
				res[j] = 0xEE // putHeader must overwrite every byte
			}
			putHeader(res, seq, tracks, len(media))
			if pad > 0 {
				if want := append([]byte{byte(pad >> 24), byte(pad >> 16), byte(pad >> 8), byte(pad), 'f', 'r', 'e', 'e'}, make([]byte, pad-8)...); !bytes.Equal(res[:pad], want) {
					t.Fatalf("free box % x", res[:pad])
				}
			}
			got := append(res[pad:], media...)
			if !bytes.Equal(got, want.Bytes()) {
				t.Fatalf("fragment differs from fmp4.Part.Marshal (%d vs %d bytes)", len(got), len(want.Bytes()))
			}
		})
	}
}
