package replay

import (
	"bytes"
	"errors"
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
)

// samplePart is a small moof+mdat the way the recorder writes one: video
// with negative composition offsets and a non-sync sample, plus audio.
func samplePart(t testing.TB) []byte {
	t.Helper()
	p := fmp4.Part{SequenceNumber: 7, Tracks: []*fmp4.PartTrack{
		{ID: 1, BaseTime: 90000, Samples: []*fmp4.Sample{
			{Duration: 3600, PTSOffset: 0, Payload: []byte{0, 0, 0, 2, 0x65, 0x88}},
			{Duration: 3600, PTSOffset: -3600, IsNonSyncSample: true, Payload: []byte{0, 0, 0, 1, 0x41}},
		}},
		{ID: 2, BaseTime: 48000, Samples: []*fmp4.Sample{
			{Duration: 1024, Payload: []byte{1, 2, 3}},
		}},
	}}
	var b seekablebuffer.Buffer
	if err := p.Marshal(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestParseFragment(t *testing.T) {
	t.Parallel()
	good := samplePart(t)
	f, err := parseFragment(good)
	if err != nil {
		t.Fatal(err)
	}
	if f.seq != 7 || len(f.video) != 2 || len(f.audio) != 1 {
		t.Fatalf("parsed %+v", f)
	}
	v0, v1, a0 := f.video[0], f.video[1], f.audio[0]
	if v0.dts != 90000 || v0.cts != 0 || !v0.sync || !bytes.Equal(v0.data, []byte{0, 0, 0, 2, 0x65, 0x88}) {
		t.Errorf("video sample 0 %+v", v0)
	}
	if v1.dts != 93600 || v1.cts != -3600 || v1.sync || v1.pts() != 90000 || !bytes.Equal(v1.data, []byte{0, 0, 0, 1, 0x41}) {
		t.Errorf("video sample 1 %+v", v1)
	}
	if a0.dts != 48000 || a0.dur != 1024 || !bytes.Equal(a0.data, []byte{1, 2, 3}) {
		t.Errorf("audio sample %+v", a0)
	}

	bad := map[string][]byte{
		"empty":          nil,
		"truncated mdat": good[:len(good)-1],
		"no mdat":        good[:len(good)-8-12],
		"header only":    good[:8],
		"not a moof":     append([]byte{0, 0, 0, 8, 'f', 'r', 'e', 'e'}, 0),
	}
	for n := 1; n < len(good); n += 7 {
		bad["truncated at "+string(rune('a'+n%26))+string(rune('0'+n%10))] = good[:n]
	}
	for name, b := range bad {
		if _, err := parseFragment(b); !errors.Is(err, errBadFragment) {
			t.Errorf("%s: error %v, want errBadFragment", name, err)
		}
	}
}

// FuzzParseFragment: the fragment parser reads bytes from spool files and
// the object store; it must never panic and every sample it returns must be
// inside the input.
func FuzzParseFragment(f *testing.F) {
	f.Add(samplePart(f))
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := parseFragment(b)
		if err != nil {
			if !errors.Is(err, errBadFragment) {
				t.Fatalf("error %v does not wrap errBadFragment", err)
			}
			return
		}
		for _, s := range append(fr.video, fr.audio...) {
			if len(s.data) > len(b) {
				t.Fatalf("sample of %d bytes from %d input bytes", len(s.data), len(b))
			}
		}
	})
}
