package index

import "time"

// SegmentState is where a segment's bytes are.
type SegmentState int

const (
	// StateRecording: fragments are still being appended to the spool file.
	StateRecording SegmentState = 0
	// StateClosed: complete, in the spool, waiting to be put in the store.
	StateClosed SegmentState = 1
	// StateStored: the object is in the store; the spool copy may be gone.
	StateStored SegmentState = 2
)

func (s SegmentState) String() string {
	switch s {
	case StateRecording:
		return "recording"
	case StateClosed:
		return "closed"
	case StateStored:
		return "stored"
	}
	return "unknown"
}

// Camera is a recorded camera. The registry fields are persisted by
// registry.go (PutCamera); a camera row created by CreateSegment alone, or
// one removed from the registry, has Source "" and is not recorded.
type Camera struct {
	ID   string
	Name string
	// Township and Village locate the camera (county → township → village).
	Township, Village string
	// Lat and Lon are WGS-84 degrees; nil when unknown.
	Lat, Lon *float64
	// MainURL and SubURL are rtsp:// URLs without credentials.
	MainURL, SubURL string
	// Username is the RTSP user; SealedPassword the RTSP password sealed by
	// the registry (never the clear text), "" when there is none.
	Username, SealedPassword string
	// Transport is "tcp", "udp" or "" (the server default).
	Transport string
	// SegmentDuration is the per-camera segment length; 0 = server default.
	SegmentDuration time.Duration
	// Motion enables motion analysis.
	Motion bool
	// Enabled cameras are recorded.
	Enabled bool
	// Source is SourceConfig, SourceAPI, or "" (not in the registry).
	Source string
	// Created and Updated are the registry's timestamps (zero when unknown).
	Created, Updated time.Time
}

// Camera sources.
const (
	SourceConfig = "config" // declared in the configuration file
	SourceAPI    = "api"    // created through the API (or the CLI)
)

// Registered reports whether the camera is in the registry.
func (c Camera) Registered() bool { return c.Source != "" }

// Segment is one recorded fMP4 object (see docs/ARCHITECTURE.md, "Recording
// format contract").
type Segment struct {
	ID       int64
	CameraID string
	// Start is the wall-clock time of the first video sample's presentation
	// time, which is media time 0 in the file. End is the end of the last
	// complete fragment. [Start, End) is the span the segment covers.
	Start, End time.Time
	// ObjectKey is the key in the object store and, under data_dir/spool,
	// the path of the spool file while the segment is not yet stored.
	ObjectKey string
	// Size is the byte size of the object (init + complete fragments).
	Size int64
	// SHA256 is the lowercase hex SHA-256 of the object, set when closed.
	SHA256 string
	// Init is the ftyp+moov bytes at the start of the object.
	Init []byte
	// Codecs lists the track codecs, e.g. "H264" or "H265,MPEG-4 Audio".
	Codecs        string
	Width, Height int
	State         SegmentState
}

// Fragment is one moof+mdat of a segment.
type Fragment struct {
	SegmentID int64
	// Seq is the mfhd sequence number, from 1 within a segment.
	Seq int
	// Start and End are wall-clock presentation times: Start is the earliest
	// video presentation time in the fragment, End the latest presentation
	// time plus its duration. Fragments of a segment are contiguous.
	Start, End time.Time
	// Offset and Size locate the moof+mdat bytes in the object.
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
