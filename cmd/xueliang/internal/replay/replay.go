package replay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"
	"xueliang/cmd/xueliang/internal/reencode"
	"xueliang/storage/recording"
)

// Index is the part of the recording index the replayer reads.
type Index interface {
	// SegmentsInRange returns the camera's segments with End > from and
	// Start < to, ordered by Start.
	SegmentsInRange(ctx context.Context, camera string, from, to time.Time) ([]recording.Segment, error)
	// Fragments returns the segment's fragments with End > from and
	// Start < to, ordered by Seq.
	Fragments(ctx context.Context, segmentID int64, from, to time.Time) ([]recording.Fragment, error)
}

// SegmentReader reads byte ranges of a segment object, from the spool or
// the store, wherever the segment currently is.
type SegmentReader interface {
	// ReadRange returns length bytes of seg's object starting at off. The
	// caller closes the reader.
	ReadRange(ctx context.Context, seg recording.Segment, off, length int64) (io.ReadCloser, error)
}

// Errors returned (wrapped) by Plan and Write.
var (
	// ErrNoFootage: the camera recorded nothing in the requested window.
	ErrNoFootage = errors.New("no footage in the requested window")
	// ErrBadRequest: the request is malformed (empty camera, End <= Start,
	// window longer than MaxWindow).
	ErrBadRequest = errors.New("invalid replay request")
)

// Defaults of the Replayer fields.
const (
	DefaultGapTolerance = 250 * time.Millisecond
	DefaultMaxWindow    = 24 * time.Hour
)

// Replayer builds frame-accurate fragmented MP4 responses for time windows
// of recorded footage. Configure it by filling the fields; it is safe for
// concurrent use once configured.
type Replayer struct {
	Index  Index
	Reader SegmentReader
	// GapTolerance is the largest hole between consecutive segments that is
	// still treated as continuous footage. It defaults to 250 ms.
	GapTolerance time.Duration
	// MaxWindow bounds End-Start of a request. It defaults to 24 h.
	MaxWindow time.Duration
	// Logger receives diagnostics; nil discards them.
	Logger *slog.Logger
	// Reencoder serves Request.Exact; nil refuses such requests.
	Reencoder Reencoder
}

// Reencoder re-encodes the partial first GOP of an exact replay
// (reencode.Reencoder): gop in decode order from a keyframe, pictures
// presented at or after startPTS come back in presentation order, the
// first an IDR with in-band parameter sets.
type Reencoder interface {
	Reencode(codec recording.VideoCodec, timescale int, gop []reencode.Sample, startPTS int64) ([]reencode.Encoded, error)
}

// Request asks for the footage of Camera in [Start, End).
type Request struct {
	Camera     string
	Start, End time.Time
	// SkipGaps continues after a gap (cutting it out of the output
	// timeline); otherwise the output ends at the first gap.
	SkipGaps bool
	// Exact re-encodes the frames from the start frame up to the next
	// keyframe into a closed GOP starting with an IDR at the start frame,
	// so that every player's first frame is the frame at Start (see the
	// package doc, "Exact form"). The rest of the footage is copied.
	Exact bool
}

// StopReason tells why a plan ends before the requested End.
type StopReason int

const (
	// StopNone: the output reaches the requested End, or the end of the
	// recorded footage.
	StopNone StopReason = iota
	// StopGap: the output ends at a gap (Request.SkipGaps is false). The gap
	// is the last element of Plan.Gaps.
	StopGap
	// StopLayoutChange: the next segment has another track layout (codec
	// change, audio appearing or disappearing) that cannot continue in the
	// same MP4. The boundary is reported as the last element of Plan.Gaps
	// (possibly zero-length); a new request from there plays it.
	StopLayoutChange
)

func (s StopReason) String() string {
	switch s {
	case StopNone:
		return "none"
	case StopGap:
		return "gap"
	case StopLayoutChange:
		return "layout-change"
	}
	return "unknown"
}

// Plan is what a request will produce, computed from the index alone.
type Plan struct {
	// Camera is the requested camera.
	Camera string
	// Start and End are the wall-clock window the output covers. Start is
	// the requested start moved forward to the first footage; the first
	// frame shown is the one displayed at Start (its presentation interval
	// contains Start), at output time 0. End is the requested end, moved
	// back to the end of footage or to the gap/layout change the output
	// stops at.
	Start, End time.Time
	// Gaps are the holes in the footage between Start and End that were
	// cut out of the output (SkipGaps), followed, when Stop is not
	// StopNone, by the gap or boundary at which the output stops.
	Gaps []recording.Gap
	// Stop tells why the output ends before the requested End.
	Stop StopReason

	segs  []planSegment
	exact bool
	// reenc caches the re-encoded first GOP between the two passes of
	// the progressive form.
	reenc *reencoded
}

// Duration is the length of the output timeline: End-Start minus the
// skipped gaps (to within a frame, see the package doc).
func (p *Plan) Duration() time.Duration {
	d := p.End.Sub(p.Start)
	for _, g := range p.skippedGaps() {
		d -= g.End.Sub(g.Start)
	}
	return d
}

func (p *Plan) skippedGaps() []recording.Gap {
	if p.Stop != StopNone && len(p.Gaps) > 0 {
		return p.Gaps[:len(p.Gaps)-1]
	}
	return p.Gaps
}

type planSegment struct {
	seg   recording.Segment
	frags []recording.Fragment
	// from is the wall-clock time output starts at in this segment (the
	// plan start for the first segment, seg.Start otherwise); to is where
	// it ends (the plan end for the last segment, seg.End otherwise).
	from, to time.Time
}

func (r *Replayer) logger() *slog.Logger {
	if r.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Logger
}

func (r *Replayer) gapTolerance() time.Duration {
	if r.GapTolerance <= 0 {
		return DefaultGapTolerance
	}
	return r.GapTolerance
}

// Plan resolves req against the index (no media is read): which segments
// and fragments the output needs, the window actually covered, and the
// gaps. It returns ErrNoFootage when nothing was recorded in the window.
func (r *Replayer) Plan(ctx context.Context, req Request) (*Plan, error) {
	maxWindow := r.MaxWindow
	if maxWindow <= 0 {
		maxWindow = DefaultMaxWindow
	}
	tol := r.gapTolerance()
	switch {
	case req.Camera == "":
		return nil, fmt.Errorf("%w: empty camera", ErrBadRequest)
	case !req.End.After(req.Start):
		return nil, fmt.Errorf("%w: end %s not after start %s", ErrBadRequest, req.End.Format(time.RFC3339Nano), req.Start.Format(time.RFC3339Nano))
	case req.End.Sub(req.Start) > maxWindow:
		return nil, fmt.Errorf("%w: window %s longer than %s", ErrBadRequest, req.End.Sub(req.Start), maxWindow)
	}

	segs, err := r.Index.SegmentsInRange(ctx, req.Camera, req.Start, req.End)
	if err != nil {
		return nil, fmt.Errorf("plan replay of %s: list segments: %w", req.Camera, err)
	}
	if req.Exact && r.Reencoder == nil {
		return nil, fmt.Errorf("%w: exact replay is not available", ErrBadRequest)
	}
	p := &Plan{Camera: req.Camera, exact: req.Exact}
	var first, prev *planSegment
	for _, seg := range segs {
		if !seg.End.After(seg.Start) || !seg.End.After(req.Start) || !seg.Start.Before(req.End) {
			continue // empty segment, or outside the window
		}
		if prev != nil && !prev.seg.End.Before(seg.End) {
			continue // entirely overlapped by the previous one
		}
		ps := planSegment{seg: seg, from: seg.Start, to: seg.End}
		if prev == nil {
			ps.from = maxTime(req.Start, seg.Start)
		} else {
			if seg.Start.Before(prev.seg.End) {
				// Overlap (clock step between sessions): start at the
				// first fragment beginning at or after the previous end.
				ps.from = prev.seg.End
			}
			if gap := seg.Start.Sub(prev.seg.End); gap > tol {
				p.Gaps = append(p.Gaps, recording.Gap{Start: prev.seg.End, End: seg.Start})
				if !req.SkipGaps {
					p.Stop = StopGap
					break
				}
			}
			if prevInit, err := recording.ParseInit(prev.seg.Init); err == nil {
				in, err := recording.ParseInit(seg.Init)
				if err != nil || !sameLayout(prevInit, in) {
					p.Gaps = append(p.Gaps, recording.Gap{Start: prev.seg.End, End: maxTime(prev.seg.End, seg.Start)})
					p.Stop = StopLayoutChange
					break
				}
			}
		}
		ps.to = minTime(req.End, seg.End)
		frags, err := r.fragments(ctx, &ps, prev == nil)
		if err != nil {
			return nil, err
		}
		if len(frags) == 0 {
			continue
		}
		ps.frags = frags
		p.segs = append(p.segs, ps)
		prev = &p.segs[len(p.segs)-1]
		if first == nil {
			first = prev
		}
	}
	if first == nil {
		return nil, fmt.Errorf("camera %s, %s to %s: %w", req.Camera, req.Start.Format(time.RFC3339Nano), req.End.Format(time.RFC3339Nano), ErrNoFootage)
	}
	if _, err := recording.ParseInit(first.seg.Init); err != nil {
		return nil, fmt.Errorf("plan replay of %s: segment %d: %w", req.Camera, first.seg.ID, err)
	}
	p.Start = first.from
	p.End = prev.to
	return p, nil
}

// fragments lists the fragments of ps covering [ps.from, ps.to). For the
// first segment the list is extended back to the keyframe fragment at or
// before ps.from; for a later segment that starts inside (overlap), the
// fragments ending at or before ps.from are dropped from a keyframe on.
func (r *Replayer) fragments(ctx context.Context, ps *planSegment, first bool) ([]recording.Fragment, error) {
	from := ps.from
	if !first {
		from = ps.seg.Start
	}
	frags, err := r.Index.Fragments(ctx, ps.seg.ID, from, ps.to)
	if err != nil {
		return nil, fmt.Errorf("plan replay: fragments of segment %d: %w", ps.seg.ID, err)
	}
	if !first {
		// Skip what the previous segment already showed, keeping the
		// keyframe fragment at or before ps.from.
		k := 0
		for i, f := range frags {
			if f.Start.After(ps.from) {
				break
			}
			if f.Keyframe {
				k = i
			}
		}
		if ps.from.After(ps.seg.Start) {
			frags = frags[k:]
		}
		return frags, nil
	}
	if len(frags) == 0 || frags[0].Keyframe {
		return frags, nil
	}
	// Walk back to the previous keyframe fragment.
	before, err := r.Index.Fragments(ctx, ps.seg.ID, ps.seg.Start, frags[0].Start)
	if err != nil {
		return nil, fmt.Errorf("plan replay: fragments of segment %d: %w", ps.seg.ID, err)
	}
	k := -1
	for i, f := range before {
		if f.Seq < frags[0].Seq && f.Keyframe {
			k = i
		}
	}
	if k < 0 {
		return nil, fmt.Errorf("plan replay: segment %d: no keyframe fragment before seq %d", ps.seg.ID, frags[0].Seq)
	}
	var pre []recording.Fragment
	for _, f := range before[k:] {
		if f.Seq < frags[0].Seq {
			pre = append(pre, f)
		}
	}
	return append(pre, frags...), nil
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
