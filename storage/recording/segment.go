package recording

import (
	"errors"
	"time"
)

// ErrNotFound is returned (wrapped) by an index when a camera, segment or
// other row does not exist. Test with errors.Is.
var ErrNotFound = errors.New("not found")

// SegmentState is where a segment's bytes are.
type SegmentState int

const (
	// StateRecording: fragments are still being appended to the spool file.
	StateRecording SegmentState = 0
	// StateClosed: complete, in the spool, waiting to be put in the store.
	StateClosed SegmentState = 1
	// StateStored: the object is in the store; the spool copy may be gone.
	StateStored SegmentState = 2
	// StateDeleting: retention or the emergency purge chose the segment; its
	// object (and any spool copy) is being removed, then its row. Readers
	// skip it; a restart finishes the deletion.
	StateDeleting SegmentState = 3
)

func (s SegmentState) String() string {
	switch s {
	case StateRecording:
		return "recording"
	case StateClosed:
		return "closed"
	case StateStored:
		return "stored"
	case StateDeleting:
		return "deleting"
	}
	return "unknown"
}

// Segment is one recorded fMP4 object (see the package doc).
type Segment struct {
	ID       int64
	CameraID string
	// Start is the wall-clock time of the first video sample's presentation
	// time, which is media time 0 in the file. End is the end of the last
	// complete fragment. [Start, End) is the span the segment covers.
	Start, End time.Time
	// ObjectKey is the key in the object store (SegmentKey) and, under the
	// spool directory, the path of the spool file while the segment is not
	// yet stored.
	ObjectKey string
	// Size is the byte size of the object (init + complete fragments).
	Size int64
	// SHA256 is the lowercase hex SHA-256 of the object, set when closed.
	SHA256 string
	// Init is the ftyp+moov bytes at the start of the object.
	Init []byte
	// Codecs lists the track codecs (InitInfo.Codecs), e.g. "H264" or
	// "H265,MPEG-4 Audio".
	Codecs        string
	Width, Height int
	State         SegmentState
}

// Fragment is one fragment (free + moof + mdat) of a segment.
type Fragment struct {
	SegmentID int64
	// Seq is the mfhd sequence number, from 1 within a segment.
	Seq int
	// Start and End are wall-clock presentation times: Start is the earliest
	// video presentation time in the fragment, End the latest presentation
	// time plus its duration. Fragments of a segment are contiguous.
	Start, End time.Time
	// Offset and Size locate the fragment's bytes in the object.
	Offset, Size int64
	// Keyframe is true when the first video sample is a sync sample.
	Keyframe bool
}

// Span is a continuously recorded interval of a camera.
type Span struct {
	Start, End time.Time
}

// Gap is an interval without footage between two spans.
type Gap struct {
	Start, End time.Time
}
