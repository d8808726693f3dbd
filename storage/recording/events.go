package recording

import (
	"errors"
	"fmt"
	"time"
)

// MaxCameraEventDuration is the longest a camera event row may span:
// writers close a longer event and open a new row for its continuation, and
// an index looks this far back for events overlapping a window.
const MaxCameraEventDuration = time.Hour

// CameraEventSourceONVIF is the source of events from a camera's ONVIF
// metadata track.
const CameraEventSourceONVIF = "onvif"

// CameraEvent is an event reported by a camera.
type CameraEvent struct {
	ID       int64
	CameraID string
	// Source is where the event comes from (CameraEventSourceONVIF).
	Source string
	// Topic is the event topic without namespace prefixes, e.g.
	// "RuleEngine/CellMotionDetector/Motion"; Rule the camera's rule name.
	Topic, Rule string
	// Start is when the event began. End is when it ended; zero while the
	// event is open (still active).
	Start, End time.Time
	// Data is extra JSON (cell bitmap, raw items); may be empty.
	Data string
}

// Valid reports why e cannot be recorded.
func (e CameraEvent) Valid() error {
	switch {
	case e.CameraID == "" || e.Source == "" || e.Topic == "":
		return errors.New("empty camera id, source or topic")
	case e.Start.IsZero():
		return errors.New("zero start")
	case !e.End.IsZero() && e.End.Before(e.Start):
		return fmt.Errorf("end %s before start %s", e.End.Format(time.RFC3339Nano), e.Start.Format(time.RFC3339Nano))
	}
	return nil
}
