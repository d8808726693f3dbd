package decode_test

import (
	"bytes"
	"testing"

	"xueliang/ingest/decode"
	"xueliang/storage/recording"
)

// splitAnnexB splits b on 00 00 01 start codes (a leading zero of a
// 4-byte start code stays at the end of the previous unit, harmlessly).
func splitAnnexB(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		i := bytes.Index(b, []byte{0, 0, 1})
		if i < 0 {
			out = append(out, b)
			break
		}
		if i > 0 {
			out = append(out, b[:i])
		}
		b = b[i+3:]
	}
	return out
}

// FuzzDecode feeds arbitrary access units to both decoders: any input must
// give a frame or an error, never a crash, and frames must be consistent.
// Seeds (testdata/fuzz/FuzzDecode): first byte selects the codec (even
// H.264, odd H.265), the rest is Annex-B — real 64×64 streams, truncated
// ones and odd units.
func FuzzDecode(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 0x67, 0x42, 0, 0x1e})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < 2 {
			return
		}
		codec := recording.H264
		if b[0]&1 == 1 {
			codec = recording.H265
		}
		au := splitAnnexB(b[1:])
		d, err := decode.New(codec)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		for i := range 3 {
			decodeFn := d.Decode
			if i == 2 {
				decodeFn = d.DecodeIntra // drain + reset path (keyframes-only motion)
			}
			fr, err := decodeFn(au)
			if err != nil {
				continue
			}
			if fr == nil {
				continue
			}
			ch := (fr.Height + 1) / 2
			if fr.Width <= 0 || fr.Height <= 0 || len(fr.Y) < fr.YStride*fr.Height ||
				len(fr.Cb) < fr.CStride*ch || len(fr.Cr) < fr.CStride*ch {
				t.Fatalf("inconsistent frame %dx%d", fr.Width, fr.Height)
			}
			if g := fr.Gray(16, 9); len(g) != 16*9 {
				t.Fatalf("Gray: %d bytes", len(g))
			}
		}
	})
}
