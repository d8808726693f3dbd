// Package decodetest reads MPEG-TS test clips into access units for the
// decode and motion tests (clips from scripts/gen-clip.sh and
// scripts/gen-motion-scene.sh).
package decodetest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
	"xueliang/storage/recording"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
)

// AU is one video access unit in decode order.
type AU struct {
	PTS   time.Duration // presentation time from the start of the clip
	NALUs [][]byte
}

// Clip is the first video track of a TS file.
type Clip struct {
	Codec recording.VideoCodec
	AUs   []AU
}

// ReadTS reads the first H.264 or H.265 track of an MPEG-TS file.
func ReadTS(path string) (*Clip, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := &mpegts.Reader{R: bufio.NewReader(f)}
	if err := r.Initialize(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	c := &Clip{}
	var first int64
	var haveFirst, found bool
	add := func(pts int64, au [][]byte) {
		if !haveFirst {
			first, haveFirst = pts, true
		}
		d := time.Duration(pts-first) * time.Second / 90000
		c.AUs = append(c.AUs, AU{PTS: d, NALUs: au})
	}
	for _, tr := range r.Tracks() {
		if found {
			break
		}
		switch tr.Codec.(type) {
		case *mpegts.CodecH264:
			c.Codec, found = recording.H264, true
			r.OnDataH264(tr, func(pts, _ int64, au [][]byte) error { add(pts, au); return nil })
		case *mpegts.CodecH265:
			c.Codec, found = recording.H265, true
			r.OnDataH265(tr, func(pts, _ int64, au [][]byte) error { add(pts, au); return nil })
		}
	}
	if !found {
		return nil, fmt.Errorf("read %s: no H.264/H.265 track", path)
	}
	for {
		if err := r.Read(); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				break
			}
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
	}
	if len(c.AUs) == 0 {
		return nil, fmt.Errorf("read %s: no access units", path)
	}
	return c, nil
}
