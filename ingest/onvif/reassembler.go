package onvif

import (
	"bytes"

	"github.com/pion/rtp"
)

// ReassemblerStats counts what a Reassembler did.
type ReassemblerStats struct {
	// Documents is the number of complete documents returned.
	Documents int64
	// DroppedGap counts documents lost to a sequence number gap (the
	// document in progress, or the one whose start was missed).
	DroppedGap int64
	// DroppedOverflow counts documents longer than the size limit.
	DroppedOverflow int64
}

// Reassembler joins the RTP packets of the metadata track into documents:
// the payloads of consecutive packets are concatenated and the packet with
// the marker bit set closes a document (ONVIF Streaming §5.1.2.1.1). It is
// not safe for concurrent use (one per track and session).
//
// A sequence number gap discards the document in progress; the packets
// after the gap are discarded up to the next marker unless the packet
// right after the gap visibly starts a new document. A document longer than
// MaxSize is discarded up to its marker. The buffer never grows beyond
// MaxSize.
type Reassembler struct {
	// MaxSize caps a document; it defaults to MaxDocumentSize.
	MaxSize int

	buf     []byte
	lastSeq uint16
	started bool // lastSeq is valid
	// skipping: discard up to and including the next marker.
	skipping bool
	stats    ReassemblerStats
}

// Push adds one packet. When it completes a non-blank document, Push
// returns it; the caller owns the slice.
func (r *Reassembler) Push(pkt *rtp.Packet) ([]byte, bool) {
	if r.MaxSize <= 0 {
		r.MaxSize = MaxDocumentSize
	}
	if r.started && pkt.SequenceNumber != r.lastSeq+1 {
		// Old or duplicate packets (TCP never reorders; UDP might) are
		// ignored; anything else is a gap.
		if d := r.lastSeq - pkt.SequenceNumber; d < 0x8000 {
			return nil, false
		}
		// One document is lost when one was in progress or when this
		// packet continues a document whose start was lost (both may be
		// the same document: count it once).
		starts := startsDocument(pkt.Payload)
		if len(r.buf) > 0 || r.skipping || !starts {
			r.stats.DroppedGap++
		}
		r.buf = r.buf[:0]
		r.skipping = !starts
	}
	r.started, r.lastSeq = true, pkt.SequenceNumber

	if r.skipping {
		if pkt.Marker {
			r.skipping = false
		}
		return nil, false
	}
	if len(r.buf)+len(pkt.Payload) > r.MaxSize {
		r.stats.DroppedOverflow++
		r.buf = r.buf[:0]
		r.skipping = !pkt.Marker
		return nil, false
	}
	r.buf = append(r.buf, pkt.Payload...)
	if !pkt.Marker {
		return nil, false
	}
	doc := r.buf
	r.buf = nil // the caller owns doc
	if len(bytes.TrimSpace(doc)) == 0 {
		return nil, false
	}
	r.stats.Documents++
	return doc, true
}

// Reset forgets the document in progress and the sequence number (a new
// session).
func (r *Reassembler) Reset() {
	r.buf, r.started, r.skipping = r.buf[:0], false, false
}

// Stats returns the counters.
func (r *Reassembler) Stats() ReassemblerStats { return r.stats }

// startsDocument reports whether p looks like the first packet of a
// document: an XML declaration or a MetadataStream start tag.
func startsDocument(p []byte) bool {
	p = bytes.TrimLeft(p, " \t\r\n\xef\xbb\xbf")
	if bytes.HasPrefix(p, []byte("<?xml")) {
		return true
	}
	if len(p) == 0 || p[0] != '<' {
		return false
	}
	head := p[:min(len(p), 128)]
	end := bytes.IndexAny(head, " \t\r\n>/")
	if end < 0 {
		return false
	}
	return bytes.HasSuffix(head[:end], []byte("MetadataStream"))
}
