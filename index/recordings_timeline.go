package index

import (
	"context"
	"fmt"
	"time"
	"xueliang/storage/recording"
)

// Timeline describes the camera's recording over [from, to).
//
// Spans: the camera's segments overlapping [from, to), merged when the next
// one starts no later than gapTolerance after the end of the previous ones
// (overlaps merge too), clipped to [from, to).
//
// Gaps: every hole inside [from, end) not covered by a span, where end is
// min(to, now), or the end of the last span if that is later (clock skew).
// Leading and trailing holes are gaps of any length; holes between spans
// are longer than gapTolerance by construction. So spans and gaps, sorted,
// tile [from, end) exactly; a window entirely in the future has neither.
// The trailing gap of a live camera is typically the fragment in progress.
func (db *DB) Timeline(ctx context.Context, camera string, from, to time.Time, gapTolerance time.Duration) ([]recording.Span, []recording.Gap, error) {
	if !from.Before(to) {
		return nil, nil, nil
	}
	f, t := toNS(from), toNS(to)
	tol := int64(max(gapTolerance, 0))
	rows, err := db.r.QueryContext(ctx, timelineQuery, camera, f, camera, t, t, f)
	if err != nil {
		return nil, nil, fmt.Errorf("timeline of %s: %w", camera, err)
	}
	defer rows.Close()
	var ivs [][2]int64
	for rows.Next() {
		var s, e int64
		if err := rows.Scan(&s, &e); err != nil {
			return nil, nil, fmt.Errorf("timeline of %s: %w", camera, err)
		}
		ivs = append(ivs, [2]int64{s, e})
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("timeline of %s: %w", camera, err)
	}
	spans, gaps := buildTimeline(ivs, f, t, toNS(db.now()), tol)
	return spans, gaps, nil
}

// timelineQuery reads the camera's coverage intervals overlapping
// [from, to) instead of its segments: a 30-day window of one-minute
// segments is 43,200 segment rows, which SQLite alone takes ≈15–45 ms to
// step through, but ≈720 coverage rows. A coverage row is the union of
// segments that overlap or touch (all non-empty, all starting in its
// bucket), so merging coverage rows with the tolerance gives exactly the
// spans that merging the segments gives: a segment joins a span when
// [start, end+tolerance] meets the ones before it, and replacing touching
// segments by their union changes no such union. Members of a coverage
// row that do not overlap the window touch one that does, so clipping to
// [from, to) hides them. Segments overlapping [from, to) start in
// [from - max_segment_ns, to), hence the bucket range; bucket order is
// start order. Arguments: camera, from, camera, to, to, from.
const timelineQuery = `SELECT start_ns, end_ns FROM coverage
	WHERE camera_id = ?
	  AND bucket >= ((CAST(? AS BIGINT) - COALESCE((SELECT max_segment_ns FROM cameras WHERE id = ?), 0)) >> ` + coverageShift + `)
	  AND bucket <= (CAST(? AS BIGINT) >> ` + coverageShift + `)
	  AND start_ns < ? AND end_ns > ?
	ORDER BY bucket, start_ns`

// buildTimeline does the Timeline arithmetic on [start, end) nanosecond
// intervals sorted by start.
func buildTimeline(ivs [][2]int64, from, to, now, tol int64) ([]recording.Span, []recording.Gap) {
	var merged [][2]int64
	for _, iv := range ivs {
		if iv[1] <= iv[0] {
			continue // empty segment: recording, no fragment yet
		}
		if n := len(merged); n > 0 && iv[0]-merged[n-1][1] <= tol {
			merged[n-1][1] = max(merged[n-1][1], iv[1])
			continue
		}
		merged = append(merged, iv)
	}
	var spans []recording.Span
	var gaps []recording.Gap
	cursor := from
	for _, m := range merged {
		s, e := max(m[0], from), min(m[1], to)
		if e <= s {
			continue
		}
		if s > cursor {
			gaps = append(gaps, recording.Gap{Start: fromNS(cursor), End: fromNS(s)})
		}
		spans = append(spans, recording.Span{Start: fromNS(s), End: fromNS(e)})
		cursor = e
	}
	end := max(min(to, now), cursor)
	if end > cursor {
		gaps = append(gaps, recording.Gap{Start: fromNS(cursor), End: fromNS(end)})
	}
	return spans, gaps
}
