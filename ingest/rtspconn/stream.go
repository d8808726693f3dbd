package rtspconn

import (
	"net/http"
	"strconv"
)

// The stream a client reads is a sequence of items: interleaved frames
// ('$', channel, 16-bit length, payload), RTSP messages (a start line,
// header lines, an empty line and a body of Content-Length bytes), and
// stray bytes that gortsplib skips one at a time. Conn follows it with the
// same rules as gortsplib v4.16.2's conn.Conn.Read and base.Request /
// base.Response.Unmarshal, so it knows where each interleaved frame starts.
// Where gortsplib would fail on a message (a malformed start line or
// header, a bad Content-Length), the session ends with that error anyway;
// Conn then stops following (lost) and passes every further byte through
// untouched, so a stream it cannot follow is read exactly as without it.

// Item states.
const (
	atBoundary  = iota // buf[r] starts an item
	inFrame            // passing the rest of an interleaved frame (left bytes)
	inStartLine        // start line token tok: up to ' ', ' ', then '\r'
	inStartLF          // '\n' ending the start line
	atLine             // start of a header line, or '\r' of the empty line
	inKey              // header key, up to ':'
	inSpace            // spaces before a value
	inValue            // header value, up to '\r'
	inValueLF          // '\n' ending a header line
	inEndLF            // '\n' ending the header block
	inBody             // passing the body (left bytes)
	lost               // not following: everything passes through
)

// Limits of what a message's header is accumulated for (gortsplib fails
// on longer keys and values).
const (
	maxKey   = 512
	maxValue = 2048
	// gortsplib refuses a larger Content-Length.
	maxContentLength = 128 << 10
)

// position is Conn's place in the stream.
type position struct {
	state int
	left  int // bytes left of the frame or body
	tok   int // start-line token

	key, value []byte
	isCL       bool   // the current header is Content-Length
	clCount    int    // Content-Length headers in this message
	clValue    string // the last one's value
}

func (s *position) passFrame(n int) { s.state, s.left = inFrame, n }

// produce copies into p what of buf[r:w] can be returned now: whole items,
// the part of an item already received, tapped RTP packets shortened. It
// returns 0 when it needs more bytes from the socket first.
func (c *Conn) produce(p []byte) int {
	s := &c.pos
	n := 0
	for n < len(p) && c.r < c.w {
		switch s.state {
		case lost:
			k := copy(p[n:], c.buf[c.r:c.w])
			n += k
			c.r += k
		case inFrame, inBody:
			k := copy(p[n:], c.buf[c.r:min(c.w, c.r+s.left)])
			n += k
			c.r += k
			if s.left -= k; s.left == 0 {
				s.state = atBoundary
			}
		case atBoundary:
			k, wait := c.boundary(p[n:], n == 0)
			if wait {
				return n
			}
			n += k
		default: // inside a message's start line or header: byte by byte
			b := c.buf[c.r]
			p[n] = b
			n++
			c.r++
			s.header(b)
		}
	}
	return n
}

// boundary starts the item at buf[r]. It returns the bytes it wrote to dst
// (a shortened tapped packet, or a stray byte), or wait when it needs more
// bytes from the socket (or, when fresh is false, an empty dst) first; it
// never waits once the socket has failed. Otherwise it sets the state for
// the item's bytes to be copied by produce.
func (c *Conn) boundary(dst []byte, fresh bool) (n int, wait bool) {
	s := &c.pos
	b := c.buf[c.r:c.w]
	more := c.err == nil // more bytes may come
	if b[0] == '$' {
		if len(b) < 4 {
			if more {
				return 0, true
			}
			s.state = lost
			return 0, false
		}
		size := 4 + (int(b[2])<<8 | int(b[3]))
		if t := c.tap(b[1]); t != nil && size <= len(c.buf) {
			if len(b) < size && more {
				return 0, true // a tapped frame is waited for whole
			}
			if len(b) >= size {
				k, ok, room := t.cut(b[1], b[4:size], dst)
				if ok {
					c.r += size
					return k, false
				}
				if !room && !fresh {
					return 0, true // in the next Read's empty dst
				}
			}
		}
		s.passFrame(size)
		return 0, false
	}
	if len(b) < 2 {
		if more {
			return 0, true
		}
		s.state = lost
		return 0, false
	}
	if isMessageStart(b[0], b[1]) {
		s.state, s.tok = inStartLine, 0
		s.clCount = 0
		return 0, false
	}
	// gortsplib discards a byte that starts nothing it knows.
	dst[0] = b[0]
	c.r++
	return 1, false
}

// isMessageStart is gortsplib's test of the two bytes that start a
// response ("RT") or a request (the first two letters of a method).
func isMessageStart(a, b byte) bool {
	switch string([]byte{a, b}) {
	case "RT", "AN", "DE", "GE", "OP", "PA", "PL", "RE", "SE", "TE":
		return true
	}
	return false
}

// header advances the message parser over one byte of a start line or
// header.
func (s *position) header(b byte) {
	switch s.state {
	case inStartLine:
		// method/protocol ' ' URL/status ' ' protocol/reason '\r'
		if s.tok < 2 && b == ' ' {
			s.tok++
		} else if s.tok == 2 && b == '\r' {
			s.state = inStartLF
		}
	case inStartLF:
		s.expectLF(b, atLine)
	case atLine:
		if b == '\r' {
			s.state = inEndLF
			return
		}
		s.key = append(s.key[:0], b) // the first byte is the key's, even ':'
		s.state = inKey
	case inKey:
		if b != ':' {
			s.key = append(s.key, b)
			if len(s.key) > maxKey {
				s.state = lost
			}
			return
		}
		// gortsplib's headerKeyNormalize gives "Content-Length" only
		// through http.CanonicalHeaderKey.
		s.isCL = http.CanonicalHeaderKey(string(s.key)) == "Content-Length"
		s.value = s.value[:0]
		s.state = inSpace
	case inSpace:
		if b == ' ' {
			return
		}
		s.state = inValue
		s.header(b)
	case inValue:
		if b == '\r' {
			s.state = inValueLF
			return
		}
		if s.isCL {
			s.value = append(s.value, b)
			if len(s.value) > maxValue {
				s.state = lost
			}
		}
	case inValueLF:
		if s.isCL {
			s.clCount++
			s.clValue = string(s.value)
		}
		s.expectLF(b, atLine)
	case inEndLF:
		s.expectLF(b, atBoundary)
		if s.state != atBoundary || s.clCount != 1 {
			return // gortsplib reads no body unless exactly one Content-Length
		}
		cl, err := strconv.ParseUint(s.clValue, 10, 64)
		switch {
		case err != nil || cl > maxContentLength:
			s.state = lost // gortsplib fails on it
		case cl > 0:
			s.state, s.left = inBody, int(cl)
		}
	}
}

func (s *position) expectLF(b byte, next int) {
	if b == '\n' {
		s.state = next
	} else {
		s.state = lost // gortsplib fails on it
	}
}
