package onvif

import (
	"testing"

	"github.com/pion/rtp"
)

// FuzzParse checks that Parse never panics and that what it returns stays
// within its limits.
func FuzzParse(f *testing.F) {
	for _, d := range []string{docHikvision, docAxis, docDahua, docSloppy, docFrameOnly, docTamper,
		`<tt:MetadataStream><tt:VideoAnalytics><tt:Frame><tt:MotionInCells Columns="8" Rows="6" Cells="zwA="/></tt:Frame></tt:VideoAnalytics></tt:MetadataStream>`,
		`<MetadataStream><Event><NotificationMessage><Topic>a:b</Topic></NotificationMessage></Event></MetadataStream>`,
	} {
		f.Add([]byte(d))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		d, err := Parse(doc)
		if err != nil {
			return
		}
		if len(d.Events) > MaxEvents {
			t.Fatalf("%d events", len(d.Events))
		}
		for _, e := range d.Events {
			if len(e.Topic) > maxValue || len(e.Rule) > maxValue || len(e.Source) > maxValue ||
				len(e.SourceItems) > maxItems || len(e.DataItems) > maxItems {
				t.Fatalf("limits exceeded: %+v", e)
			}
			if c := e.Cells; c != nil {
				if c.Columns*c.Rows > maxCells || len(c.Bits) > maxCells/8 {
					t.Fatalf("cells too large: %dx%d %d bytes", c.Columns, c.Rows, len(c.Bits))
				}
				_ = c.Active(c.Columns-1, c.Rows-1)
			}
		}
	})
}

// FuzzReassembler feeds packets cut from the input (each record: 2 bytes
// sequence delta, 1 byte marker+length) and checks the buffer bound.
func FuzzReassembler(f *testing.F) {
	f.Add([]byte("\x00\x01\x85<?xml\x00\x01\x03abc"), uint16(100))
	f.Add([]byte("\x00\x05\x80\x00\x01\x10<tt:MetadataStream"), uint16(65535))
	f.Fuzz(func(t *testing.T, in []byte, seq uint16) {
		r := Reassembler{MaxSize: 64}
		for len(in) >= 3 {
			seq += uint16(in[0])<<8 | uint16(in[1])
			marker := in[2]&0x80 != 0
			n := min(int(in[2]&0x7f), len(in)-3)
			pkt := &rtp.Packet{Header: rtp.Header{SequenceNumber: seq, Marker: marker}, Payload: in[3 : 3+n]}
			in = in[3+n:]
			if doc, ok := r.Push(pkt); ok && len(doc) > 64 {
				t.Fatalf("document of %d bytes", len(doc))
			}
			if len(r.buf) > 64 {
				t.Fatalf("buffer of %d bytes", len(r.buf))
			}
		}
	})
}
