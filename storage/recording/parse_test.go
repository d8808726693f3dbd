package recording

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
)

// samplePart is a small moof+mdat the way a recorder writes one: video
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

func data(b []byte, s Sample) []byte { return b[s.Offset : s.Offset+int64(s.Size)] }

func TestParseFragment(t *testing.T) {
	t.Parallel()
	good := samplePart(t)
	f, err := ParseFragment(good)
	if err != nil {
		t.Fatal(err)
	}
	if f.Seq != 7 || len(f.Video) != 2 || len(f.Audio) != 1 || !f.Keyframe() {
		t.Fatalf("parsed %+v", f)
	}
	v0, v1, a0 := f.Video[0], f.Video[1], f.Audio[0]
	if v0.DTS != 90000 || v0.CTS != 0 || !v0.Sync || !bytes.Equal(data(good, v0), []byte{0, 0, 0, 2, 0x65, 0x88}) {
		t.Errorf("video sample 0 %+v", v0)
	}
	if v1.DTS != 93600 || v1.CTS != -3600 || v1.Sync || v1.PTS() != 90000 || !bytes.Equal(data(good, v1), []byte{0, 0, 0, 1, 0x41}) {
		t.Errorf("video sample 1 %+v", v1)
	}
	if a0.DTS != 48000 || a0.Duration != 1024 || !bytes.Equal(data(good, a0), []byte{1, 2, 3}) {
		t.Errorf("audio sample %+v", a0)
	}

	bad := map[string][]byte{
		"empty":          nil,
		"truncated mdat": good[:len(good)-1],
		"no mdat":        good[:len(good)-8-12],
		"header only":    good[:8],
		"not a moof":     append([]byte{0, 0, 0, 8, 'f', 'r', 'e', 'e'}, 0),
		"trailing bytes": append(append([]byte(nil), good...), 0, 0, 0, 8, 'f', 'r', 'e', 'e'),
	}
	for n := 1; n < len(good); n += 7 {
		bad["truncated at "+string(rune('a'+n%26))+string(rune('0'+n%10))] = good[:n]
	}
	for name, b := range bad {
		if _, err := ParseFragment(b); !errors.Is(err, ErrBadFragment) {
			t.Errorf("%s: error %v, want ErrBadFragment", name, err)
		}
	}
}

// TestParseFileStopsAtDamage checks the walk of a file: complete fragments
// are listed, and it stops (without an error) at a cut or corrupt one.
func TestParseFileStopsAtDamage(t *testing.T) {
	init, _, err := BuildInit(Video{Codec: H264, SPS: testSPS, PPS: testPPS}, nil)
	if err != nil {
		t.Fatal(err)
	}
	part := samplePart(t)
	file := append(append(append([]byte(nil), init...), part...), part...)
	pf, err := ParseFile(bytes.NewReader(file), int64(len(file)))
	if err != nil {
		t.Fatal(err)
	}
	if pf.InitSize != int64(len(init)) || len(pf.Fragments) != 2 || pf.ValidSize != int64(len(file)) || pf.StopReason != "" {
		t.Fatalf("whole file: %+v", pf)
	}
	if f := pf.Fragments[1]; f.Offset != int64(len(init)+len(part)) || f.Video[0].Offset != f.Offset+int64(len(part)-3-5-6) {
		t.Fatalf("second fragment at %d, first sample at %d", f.Offset, f.Video[0].Offset)
	}
	cut := file[:len(file)-2]
	pf, err = ParseFile(bytes.NewReader(cut), int64(len(cut)))
	if err != nil {
		t.Fatal(err)
	}
	if len(pf.Fragments) != 1 || pf.ValidSize != int64(len(init)+len(part)) || pf.StopReason == "" {
		t.Fatalf("cut file: %+v", pf)
	}
	rows := FragmentRows(9, time.Unix(100, 0), pf)
	if len(rows) != 1 || rows[0].SegmentID != 9 || rows[0].Offset != int64(len(init)) || !rows[0].Keyframe {
		t.Fatalf("rows %+v", rows)
	}
	if _, err := ParseFile(bytes.NewReader(part), int64(len(part))); err == nil {
		t.Fatal("a file without init parsed")
	}
}

// FuzzParseFragment: the fragment parser reads bytes from spool files and
// the object store; it must never panic and every sample it returns must be
// inside the input's mdat.
func FuzzParseFragment(f *testing.F) {
	f.Add(samplePart(f))
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := ParseFragment(b)
		if err != nil {
			if !errors.Is(err, ErrBadFragment) {
				t.Fatalf("error %v does not wrap ErrBadFragment", err)
			}
			return
		}
		for _, s := range append(fr.Video, fr.Audio...) {
			if s.Offset < 0 || s.Offset+int64(s.Size) > int64(len(b)) {
				t.Fatalf("sample [%d,+%d) of %d input bytes", s.Offset, s.Size, len(b))
			}
		}
	})
}

func FuzzParseFile(f *testing.F) {
	// Seeds live in testdata/fuzz/FuzzParseFile (a real segment, cut and
	// corrupted); a few more are added here.
	f.Add([]byte{})
	f.Add([]byte("\x00\x00\x00\x08ftyp\x00\x00\x00\x08moov\x00\x00\x00\x08moof\x00\x00\x00\x08mdat"))
	f.Fuzz(func(t *testing.T, data []byte) {
		pf, err := ParseFile(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		if pf.ValidSize > int64(len(data)) || pf.ValidSize < pf.InitSize {
			t.Fatalf("valid size %d of %d (init %d)", pf.ValidSize, len(data), pf.InitSize)
		}
		off := pf.InitSize
		for _, fr := range pf.Fragments {
			if fr.Offset != off || fr.Size <= 0 {
				t.Fatalf("fragment at %d size %d, expected offset %d", fr.Offset, fr.Size, off)
			}
			for _, s := range append(fr.Video, fr.Audio...) {
				if s.Offset < fr.Offset || s.Offset+int64(s.Size) > fr.Offset+fr.Size {
					t.Fatalf("sample [%d,+%d) outside its fragment [%d,+%d)", s.Offset, s.Size, fr.Offset, fr.Size)
				}
			}
			off += fr.Size
		}
		if off != pf.ValidSize {
			t.Fatalf("fragments end at %d, valid size %d", off, pf.ValidSize)
		}
		_ = FragmentRows(1, time.Unix(0, 0), pf)
	})
}
