package recording

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
)

// TestHeaderMatchesMediacommon checks that PutHeader's moof and mdat header
// are exactly the bytes of fmp4.Part.Marshal (the format the readers were
// written against) behind the free box that fills the rest of the room, and
// that ParseFragment reads every sample back, for random video+audio
// fragments.
func TestHeaderMatchesMediacommon(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 200 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			seq := rng.Uint32()
			part := fmp4.Part{SequenceNumber: seq}
			var media []byte
			var tracks []TrackRun
			nTracks := 1 + rng.IntN(2)
			for tr := range nTracks {
				pt := &fmp4.PartTrack{ID: tr + 1, BaseTime: rng.Uint64N(1 << 40)}
				run := TrackRun{ID: uint32(tr + 1), BaseTime: pt.BaseTime}
				start := len(media)
				for range 1 + rng.IntN(60) {
					payload := make([]byte, rng.IntN(300))
					for j := range payload {
						payload[j] = byte(rng.Uint32())
					}
					e := SampleEntry{Duration: rng.Uint32N(9000), Size: uint32(len(payload))}
					if tr == 0 {
						e.NonSync = rng.IntN(3) == 0
						if rng.IntN(2) == 0 {
							e.CTS = int32(rng.IntN(20000)) - 10000
						}
					}
					media = append(media, payload...)
					run.Entries = append(run.Entries, e)
					pt.Samples = append(pt.Samples, &fmp4.Sample{Duration: e.Duration, PTSOffset: e.CTS,
						IsNonSyncSample: e.NonSync, Payload: payload})
				}
				run.DataLen = len(media) - start
				tracks = append(tracks, run)
				part.Tracks = append(part.Tracks, pt)
			}
			var want seekablebuffer.Buffer
			if err := part.Marshal(&want); err != nil {
				t.Fatal(err)
			}
			// The header room: exactly the headers, or with a free box in
			// front of them.
			hdr := HeaderSize(tracks)
			pad := 0
			if rng.IntN(2) == 0 {
				pad = FreeBoxMin + 4*rng.IntN(100)
			}
			if need := HeaderNeed(len(tracks[0].Entries), audioCount(tracks)); need < hdr+FreeBoxMin {
				t.Fatalf("HeaderNeed %d below the %d header bytes and a free box", need, hdr)
			}
			res := make([]byte, pad+hdr)
			for j := range res {
				res[j] = 0xEE // PutHeader must overwrite every byte
			}
			PutHeader(res, seq, tracks, len(media))
			if pad > 0 {
				if want := append([]byte{byte(pad >> 24), byte(pad >> 16), byte(pad >> 8), byte(pad), 'f', 'r', 'e', 'e'}, make([]byte, pad-8)...); !bytes.Equal(res[:pad], want) {
					t.Fatalf("free box % x", res[:pad])
				}
			}
			got := append(res[pad:], media...)
			if !bytes.Equal(got, want.Bytes()) {
				t.Fatalf("fragment differs from fmp4.Part.Marshal (%d vs %d bytes)", len(got), len(want.Bytes()))
			}

			// Read back, free box included.
			whole := append(res, media...)
			f, err := ParseFragment(whole)
			if err != nil {
				t.Fatal(err)
			}
			if f.Seq != seq || f.Offset != 0 || f.Size != int64(len(whole)) {
				t.Fatalf("parsed seq %d at %d+%d, want %d at 0+%d", f.Seq, f.Offset, f.Size, seq, len(whole))
			}
			off := int64(pad + hdr)
			for ti, run := range tracks {
				samples := f.Video
				if run.ID == AudioTrackID {
					samples = f.Audio
				}
				if len(samples) != len(run.Entries) {
					t.Fatalf("track %d: %d samples parsed, %d written", ti, len(samples), len(run.Entries))
				}
				dts := int64(run.BaseTime)
				for j, e := range run.Entries {
					s := samples[j]
					if s.DTS != dts || s.Duration != e.Duration || s.Size != e.Size || s.CTS != e.CTS || s.Sync == e.NonSync || s.Offset != off {
						t.Fatalf("track %d sample %d: parsed %+v, wrote %+v at dts %d offset %d", ti, j, s, e, dts, off)
					}
					dts += int64(e.Duration)
					off += int64(e.Size)
				}
			}
		})
	}
}

func audioCount(tracks []TrackRun) int {
	if len(tracks) > 1 {
		return len(tracks[1].Entries)
	}
	return 0
}

// TestAudioEntriesFit checks that the audio entries it allows fit beside
// the video's headers in the room, and one more would not.
func TestAudioEntriesFit(t *testing.T) {
	video := TrackRun{ID: VideoTrackID, Entries: make([]SampleEntry, 50)}
	for i := range video.Entries {
		video.Entries[i] = SampleEntry{Duration: 3600, Size: 100, NonSync: i > 0, CTS: int32(i % 3)}
	}
	for _, room := range []int{0, 1000, 2048, 4096} {
		n := AudioEntriesFit(room, []TrackRun{video})
		if n < 0 {
			if HeaderSize([]TrackRun{video})+FreeBoxMin <= room {
				t.Errorf("room %d: %d audio entries, but the video's headers fit", room, n)
			}
			continue
		}
		with := func(k int) int {
			audio := TrackRun{ID: AudioTrackID, Entries: make([]SampleEntry, k)}
			return HeaderSize([]TrackRun{video, audio})
		}
		if n > 0 && with(n)+FreeBoxMin > room {
			t.Errorf("room %d: %d audio entries need %d bytes", room, n, with(n)+FreeBoxMin)
		}
		if with(n+1)+FreeBoxMin <= room {
			t.Errorf("room %d: %d audio entries allowed, %d fit", room, n, n+1)
		}
	}
}
