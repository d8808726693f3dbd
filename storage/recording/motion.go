package recording

import "time"

// MotionSummaryWords is the size of MotionChunk.Summary (576 bits).
const MotionSummaryWords = 9

// MaxMotionChunk is the longest motion chunk an index accepts; it bounds
// the start range a search scans.
const MaxMotionChunk = time.Hour

// MotionChunk is the packed per-second motion grids of a camera over a
// chunk of time (one per camera-minute with motion). Data is opaque here
// (its format is ingest/motion.Chunk); Summary is the OR of every grid in
// the chunk, which region searches AND with their mask to skip chunks that
// cannot match.
type MotionChunk struct {
	CameraID   string
	Start, End time.Time
	Active     int // seconds with motion in the chunk
	Summary    [MotionSummaryWords]uint64
	Data       []byte
}

// MotionInterval is one closed motion interval (padded).
type MotionInterval struct {
	CameraID   string
	Start, End time.Time
	Peak       float64 // largest fraction of the picture in motion
	Seconds    int     // seconds with motion
	Cells      []byte  // encoded grid (ingest/motion.Grid) of every cell in motion
	// Bounds of Cells in cells: X0,Y0 inclusive, X1,Y1 exclusive.
	X0, Y0, X1, Y1 int
}
