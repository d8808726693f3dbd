// Package onvif reads the ONVIF live metadata track of a camera
// (RTP payload "vnd.onvif.metadata/90000", ONVIF Streaming Specification
// §5.1.2): a Reassembler joins the RTP packets of one tt:MetadataStream XML
// document (the marker bit closes a document), and Parse extracts the
// notifications it carries — motion events in particular:
//
//	tns1:RuleEngine/CellMotionDetector/Motion   Data IsMotion=true|false
//	tns1:VideoSource/MotionAlarm                Data State=true|false
//
// plus, when present, the motion cell bitmap (tt:MotionInCells Columns,
// Rows and a base64 PackBits Cells attribute, or a SimpleItem named
// MotionInCells/Cells).
//
// The input comes from the network: Parse caps the document size
// (MaxDocumentSize), the number of elements (MaxElements), the nesting depth
// and the number of events, never expands entities beyond XML's five, and
// never panics (fuzzed). Namespace prefixes are not trusted: elements are
// matched by local name (cameras use tt:, ns0:, default namespaces or
// undeclared prefixes), and topic expressions have their prefixes
// stripped.
package onvif

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Namespace URIs of the elements Parse reads (informational: matching is by
// local name).
const (
	NamespaceSchema = "http://www.onvif.org/ver10/schema"
	NamespaceWSNT   = "http://docs.oasis-open.org/wsn/b-2"
	NamespaceTopics = "http://www.onvif.org/ver10/topics"
)

// Limits on one document.
const (
	// MaxDocumentSize is the largest document Parse accepts.
	MaxDocumentSize = 64 << 10
	// MaxElements is the largest number of XML elements in a document.
	MaxElements = 4096
	// MaxDepth is the deepest element nesting.
	MaxDepth = 32
	// MaxEvents is the largest number of events returned per document;
	// later ones are ignored.
	MaxEvents = 64
	// maxItems bounds the SimpleItems kept per event.
	maxItems = 16
	// maxValue bounds a kept item value or topic (bytes).
	maxValue = 256
	// maxCells bounds Columns × Rows of a cell layout.
	maxCells = 64 * 64 * 8
)

// Errors returned by Parse (wrapped).
var (
	ErrTooLarge = errors.New("onvif metadata: document too large")
	ErrInvalid  = errors.New("onvif metadata: invalid document")
)

// Operation is a notification's PropertyOperation.
type Operation string

// PropertyOperation values (ONVIF Core §9.2.2).
const (
	OpInitialized Operation = "Initialized"
	OpChanged     Operation = "Changed"
	OpDeleted     Operation = "Deleted"
)

// Item is one tt:SimpleItem.
type Item struct{ Name, Value string }

// Cells is a motion cell bitmap (tt:MotionInCells): Columns × Rows cells,
// row-major, most significant bit first, 1 = motion.
type Cells struct {
	Columns, Rows int
	// Raw is the Cells attribute as sent (base64 of a PackBits-compressed
	// bitmap), kept even when it cannot be decoded.
	Raw string
	// Bits is the decoded bitmap, ceil(Columns×Rows/8) bytes; nil when
	// Raw could not be decoded.
	Bits []byte
}

// Active reports whether cell (col, row) has motion.
func (c *Cells) Active(col, row int) bool {
	if c == nil || col < 0 || row < 0 || col >= c.Columns || row >= c.Rows {
		return false
	}
	i := row*c.Columns + col
	return i/8 < len(c.Bits) && c.Bits[i/8]&(0x80>>(i%8)) != 0
}

// Event is one notification of a metadata document.
type Event struct {
	// Time is the message's UtcTime; zero when missing or unreadable.
	Time time.Time
	// Topic without namespace prefixes, e.g.
	// "RuleEngine/CellMotionDetector/Motion".
	Topic string
	// Rule is the Source item "Rule" (analytics rule name), if any.
	Rule string
	// Source is the video source the event is about: the Source item
	// VideoSourceConfigurationToken, VideoSourceToken or Source.
	Source string
	// Analytics is the Source item VideoAnalyticsConfigurationToken.
	Analytics string
	// Operation is the PropertyOperation (empty when absent).
	Operation Operation
	// Active is the boolean state (IsMotion, State or LogicalState);
	// HasState is false when the event carries none of them.
	Active, HasState bool
	// Cells is the cell bitmap carried by the event (a MotionInCells or
	// Cells data item) or, failing that, by the document's frame.
	Cells *Cells
	// SourceItems and DataItems are the message's SimpleItems (at most 16
	// each, values truncated to 256 bytes).
	SourceItems, DataItems []Item
}

// IsMotion reports whether the event is a motion event: the cell motion
// detector's rule, a video source's MotionAlarm, or any topic whose last
// segment contains "Motion" (vendor topics), with a boolean state.
func (e Event) IsMotion() bool {
	if !e.HasState {
		return false
	}
	last := e.Topic
	if i := strings.LastIndexByte(last, '/'); i >= 0 {
		last = last[i+1:]
	}
	return strings.Contains(strings.ToLower(last), "motion")
}

// Document is what Parse found in one tt:MetadataStream.
type Document struct {
	Events []Event
	// Cells is the last tt:MotionInCells of the document's frames, if any.
	Cells *Cells
	// FrameTime is the UtcTime of the last tt:Frame, if any.
	FrameTime time.Time
}

// Parse reads one tt:MetadataStream document. It returns ErrTooLarge or
// ErrInvalid (wrapped) for a document it cannot read; a well-formed
// document without events gives an empty Document.
func Parse(doc []byte) (Document, error) {
	var out Document
	if len(doc) > MaxDocumentSize {
		return out, fmt.Errorf("%w: %d bytes", ErrTooLarge, len(doc))
	}
	d := xml.NewDecoder(bytes.NewReader(doc))
	// Cameras declare encodings such as GB2312; every name and value we
	// read is ASCII, so read the bytes as they are.
	d.CharsetReader = func(_ string, r io.Reader) (io.Reader, error) { return r, nil }

	var (
		p        parser
		elements int
		sawRoot  bool
	)
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return out, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			elements++
			if elements > MaxElements {
				return out, fmt.Errorf("%w: more than %d elements", ErrTooLarge, MaxElements)
			}
			if len(p.stack) >= MaxDepth {
				return out, fmt.Errorf("%w: nested deeper than %d", ErrInvalid, MaxDepth)
			}
			if len(p.stack) == 0 {
				if t.Name.Local != "MetadataStream" {
					return out, fmt.Errorf("%w: root element %q is not MetadataStream", ErrInvalid, t.Name.Local)
				}
				sawRoot = true
			}
			p.start(t, &out)
		case xml.EndElement:
			p.end(&out)
		case xml.CharData:
			if p.inTopic && p.cur != nil && len(p.text)+len(t) <= maxValue*4 {
				p.text = append(p.text, t...)
			}
		}
	}
	if !sawRoot {
		return out, fmt.Errorf("%w: no MetadataStream element", ErrInvalid)
	}
	if out.Cells != nil {
		for i := range out.Events {
			if out.Events[i].Cells == nil && out.Events[i].IsMotion() {
				out.Events[i].Cells = out.Cells
			}
		}
	}
	return out, nil
}

// parser is the state of one Parse.
type parser struct {
	stack []string // local names of the open elements
	// cur is the notification being read (inside NotificationMessage).
	cur     *Event
	curDrop bool // more than MaxEvents: read but not kept
	inTopic bool
	text    []byte
	// section is "Source", "Data" or "" inside a tt:Message.
	section string
}

func (p *parser) start(t xml.StartElement, out *Document) {
	p.stack = append(p.stack, t.Name.Local)
	switch t.Name.Local {
	case "NotificationMessage":
		p.cur = &Event{}
		p.curDrop = len(out.Events) >= MaxEvents
	case "Topic":
		if p.cur != nil && p.parent() == "NotificationMessage" {
			p.inTopic, p.text = true, p.text[:0]
		}
	case "Message":
		if p.cur != nil && p.parent() == "Message" { // tt:Message inside wsnt:Message
			for _, a := range t.Attr {
				switch a.Name.Local {
				case "UtcTime":
					p.cur.Time = parseTime(a.Value)
				case "PropertyOperation":
					p.cur.Operation = parseOp(a.Value)
				}
			}
		}
	case "Source", "Data":
		if p.cur != nil && p.parent() == "Message" {
			p.section = t.Name.Local
		}
	case "SimpleItem":
		if p.cur != nil && p.section != "" {
			p.item(t)
		}
	case "Frame":
		for _, a := range t.Attr {
			if a.Name.Local == "UtcTime" {
				out.FrameTime = parseTime(a.Value)
			}
		}
	case "MotionInCells":
		var cols, rows int
		var raw string
		for _, a := range t.Attr {
			switch a.Name.Local {
			case "Columns":
				cols = atoi(a.Value)
			case "Rows":
				rows = atoi(a.Value)
			case "Cells":
				raw = a.Value
			}
		}
		c := decodeCells(cols, rows, raw)
		if p.cur != nil {
			p.cur.Cells = c
		} else {
			out.Cells = c
		}
	}
}

// parent returns the local name of the element enclosing the one just
// started.
func (p *parser) parent() string {
	if len(p.stack) < 2 {
		return ""
	}
	return p.stack[len(p.stack)-2]
}

func (p *parser) end(out *Document) {
	if len(p.stack) == 0 {
		return
	}
	name := p.stack[len(p.stack)-1]
	p.stack = p.stack[:len(p.stack)-1]
	switch name {
	case "Topic":
		if p.inTopic {
			p.inTopic = false
			p.cur.Topic = clip(stripTopic(string(p.text)))
		}
	case "Source", "Data":
		if p.section == name && len(p.stack) > 0 && p.stack[len(p.stack)-1] == "Message" {
			p.section = ""
		}
	case "NotificationMessage":
		if p.cur != nil && !p.curDrop {
			out.Events = append(out.Events, *p.cur)
		}
		p.cur, p.section, p.inTopic = nil, "", false
	}
}

func (p *parser) item(t xml.StartElement) {
	var it Item
	for _, a := range t.Attr {
		switch a.Name.Local {
		case "Name":
			it.Name = clip(strings.TrimSpace(a.Value))
		case "Value":
			it.Value = a.Value
		}
	}
	e := p.cur
	if p.section == "Source" {
		switch it.Name {
		case "Rule":
			e.Rule = clip(it.Value)
		case "VideoSourceConfigurationToken", "VideoSourceToken":
			e.Source = clip(it.Value)
		case "Source", "InputToken":
			if e.Source == "" {
				e.Source = clip(it.Value)
			}
		case "VideoAnalyticsConfigurationToken":
			e.Analytics = clip(it.Value)
		}
		if len(e.SourceItems) < maxItems {
			e.SourceItems = append(e.SourceItems, Item{it.Name, clip(it.Value)})
		}
		return
	}
	switch it.Name {
	case "IsMotion", "State", "LogicalState", "IsInside", "Active":
		if b, ok := parseBool(it.Value); ok && (!e.HasState || it.Name == "IsMotion") {
			e.Active, e.HasState = b, true
		}
	case "MotionInCells", "Cells":
		e.Cells = decodeCells(0, 0, strings.TrimSpace(it.Value))
	}
	if len(e.DataItems) < maxItems {
		e.DataItems = append(e.DataItems, Item{it.Name, clip(it.Value)})
	}
}

// stripTopic removes namespace prefixes from every segment of a topic
// expression: "tns1:RuleEngine/tns1:CellMotionDetector/Motion" →
// "RuleEngine/CellMotionDetector/Motion".
func stripTopic(s string) string {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, ":") {
		return s
	}
	parts := strings.Split(s, "/")
	for i, seg := range parts {
		if j := strings.LastIndexByte(seg, ':'); j >= 0 {
			parts[i] = seg[j+1:]
		}
	}
	return strings.Join(parts, "/")
}

func clip(s string) string {
	if len(s) > maxValue {
		return s[:maxValue]
	}
	return s
}

func parseOp(s string) Operation {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "initialized":
		return OpInitialized
	case "changed":
		return OpChanged
	case "deleted":
		return OpDeleted
	}
	return Operation(clip(s))
}

func parseBool(s string) (bool, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "1", "on", "yes":
		return true, true
	case "false", "0", "off", "no":
		return false, true
	}
	return false, false
}

func atoi(s string) int {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 0 || n > maxCells {
		return 0
	}
	return n
}

// timeLayouts are the UtcTime forms seen from cameras: xs:dateTime with a
// zone (RFC 3339), or without one (taken as UTC).
var timeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999Z07:00"}

func parseTime(s string) time.Time {
	s = strings.TrimSpace(s)
	if len(s) > 64 {
		return time.Time{}
	}
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}

// decodeCells decodes a Cells attribute: base64, then PackBits. When the
// layout is unknown (cols or rows 0) the decoded bytes are kept as they are.
// Undecodable input keeps only Raw.
func decodeCells(cols, rows int, raw string) *Cells {
	if cols*rows > maxCells {
		cols, rows = 0, 0
	}
	c := &Cells{Columns: cols, Rows: rows, Raw: clipN(raw, 4*maxCells/8+8)}
	packed, err := base64.StdEncoding.DecodeString(c.Raw)
	if err != nil {
		return c
	}
	want := (cols*rows + 7) / 8
	limit := want
	if limit == 0 {
		limit = maxCells / 8
	}
	if bits, ok := unpackBits(packed, limit); ok && (want == 0 || len(bits) == want) {
		c.Bits = bits
	} else if want > 0 && len(packed) == want {
		c.Bits = packed // sent uncompressed
	}
	return c
}

func clipN(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// unpackBits decodes Apple PackBits (as in TIFF) into at most limit bytes.
func unpackBits(in []byte, limit int) ([]byte, bool) {
	out := make([]byte, 0, min(limit, 4*len(in)))
	for i := 0; i < len(in); {
		n := int(int8(in[i]))
		i++
		switch {
		case n >= 0: // n+1 literal bytes
			if i+n+1 > len(in) || len(out)+n+1 > limit {
				return nil, false
			}
			out = append(out, in[i:i+n+1]...)
			i += n + 1
		case n != -128: // repeat the next byte 1-n times
			if i >= len(in) || len(out)+1-n > limit {
				return nil, false
			}
			for range 1 - n {
				out = append(out, in[i])
			}
			i++
		}
	}
	return out, true
}

// PackBits encodes b with PackBits (runs of 3+ equal bytes become repeat
// records), the inverse of the decoder Parse uses; for encoders (camsim)
// and tests.
func PackBits(b []byte) []byte {
	var out []byte
	for i := 0; i < len(b); {
		run := 1
		for i+run < len(b) && run < 128 && b[i+run] == b[i] {
			run++
		}
		if run >= 3 {
			out = append(out, byte(int8(1-run)), b[i])
			i += run
			continue
		}
		j := i
		for j < len(b) && j-i < 128 {
			if j+2 < len(b) && b[j] == b[j+1] && b[j] == b[j+2] {
				break
			}
			j++
		}
		out = append(out, byte(j-i-1))
		out = append(out, b[i:j]...)
		i = j
	}
	return out
}
