package onvif

import (
	"bytes"
	"testing"

	"github.com/pion/rtp"
)

// packets splits doc into RTP packets of at most size bytes from seq on,
// the last one with the marker bit.
func packets(doc []byte, size int, seq uint16) []*rtp.Packet {
	var out []*rtp.Packet
	for len(doc) > 0 {
		n := min(size, len(doc))
		out = append(out, &rtp.Packet{Header: rtp.Header{SequenceNumber: seq, Marker: n == len(doc)}, Payload: doc[:n]})
		doc = doc[n:]
		seq++
	}
	return out
}

func TestReassembler(t *testing.T) {
	doc1, doc2 := []byte(docHikvision), []byte(docAxis)
	push := func(r *Reassembler, pkts []*rtp.Packet) [][]byte {
		var docs [][]byte
		for _, p := range pkts {
			if d, ok := r.Push(p); ok {
				docs = append(docs, d)
			}
		}
		return docs
	}
	t.Run("split across packets and seq wrap", func(t *testing.T) {
		var r Reassembler
		p := append(packets(doc1, 100, 65530), packets(doc2, 300, 65530+uint16(len(doc1)/100+1))...)
		docs := push(&r, p)
		if len(docs) != 2 || !bytes.Equal(docs[0], doc1) || !bytes.Equal(docs[1], doc2) {
			t.Fatalf("got %d docs", len(docs))
		}
		if s := r.Stats(); s.Documents != 2 || s.DroppedGap != 0 || s.DroppedOverflow != 0 {
			t.Fatalf("stats %+v", s)
		}
	})
	t.Run("gap mid document", func(t *testing.T) {
		var r Reassembler
		p1 := packets(doc1, 100, 1)
		p2 := packets(doc2, 100, uint16(1+len(p1)))
		p := append(append(p1[:3:3], p1[4:]...), p2...) // lose packet 3 of doc1
		docs := push(&r, p)
		if len(docs) != 1 || !bytes.Equal(docs[0], doc2) {
			t.Fatalf("got %d docs", len(docs))
		}
		if s := r.Stats(); s.DroppedGap != 1 {
			t.Fatalf("stats %+v", s)
		}
	})
	t.Run("gap loses the start of the next document", func(t *testing.T) {
		var r Reassembler
		p1 := packets(doc1, 100, 1)
		p2 := packets(doc2, 100, uint16(1+len(p1)))
		p3 := packets(doc1, 100, uint16(1+len(p1)+len(p2)))
		p := append(append(p1, p2[1:]...), p3...)
		docs := push(&r, p)
		if len(docs) != 2 || !bytes.Equal(docs[0], doc1) || !bytes.Equal(docs[1], doc1) {
			t.Fatalf("got %d docs", len(docs))
		}
		if s := r.Stats(); s.DroppedGap != 1 {
			t.Fatalf("stats %+v", s)
		}
	})
	t.Run("gap right before a new document", func(t *testing.T) {
		var r Reassembler
		p1 := packets(doc1, 100, 1)
		p2 := packets(doc2, 100, uint16(10+len(p1)))
		docs := push(&r, append(p1, p2...))
		if len(docs) != 2 {
			t.Fatalf("got %d docs", len(docs))
		}
		if s := r.Stats(); s.DroppedGap != 0 {
			t.Fatalf("stats %+v", s)
		}
	})
	t.Run("duplicates ignored", func(t *testing.T) {
		var r Reassembler
		p := packets(doc1, 100, 1)
		dup := append([]*rtp.Packet{}, p[:3]...)
		dup = append(dup, p[2])
		dup = append(dup, p[3:]...)
		docs := push(&r, dup)
		if len(docs) != 1 || !bytes.Equal(docs[0], doc1) {
			t.Fatalf("got %d docs", len(docs))
		}
	})
	t.Run("overflow", func(t *testing.T) {
		r := Reassembler{MaxSize: 200}
		p1 := packets(doc1, 100, 1)
		p2 := packets([]byte(docFrameOnly), 100, uint16(1+len(p1)))
		docs := push(&r, append(p1, p2...))
		if len(docs) != 1 || !bytes.Equal(docs[0], []byte(docFrameOnly)) {
			t.Fatalf("got %d docs", len(docs))
		}
		if s := r.Stats(); s.DroppedOverflow != 1 || cap(r.buf) > 200 {
			t.Fatalf("stats %+v cap %d", s, cap(r.buf))
		}
	})
	t.Run("reset", func(t *testing.T) {
		var r Reassembler
		p := packets(doc1, 100, 1)
		push(&r, p[:2])
		r.Reset()
		docs := push(&r, packets(doc2, 100, 500))
		if len(docs) != 1 || !bytes.Equal(docs[0], doc2) {
			t.Fatalf("got %d docs", len(docs))
		}
	})
}
