package index

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Archive is what the coverage table says of one camera's whole archive:
// the compliance report and metric (cmd/xueliang/internal/compliance).
type Archive struct {
	// Oldest is the start of the camera's oldest footage; zero when it has
	// none.
	Oldest time.Time
	// Since and Until bound the newest unbroken span: the newest footage
	// merged backwards over every hole of at most the tolerance. Both are
	// zero when the camera has no footage.
	Since, Until time.Time
}

// CameraArchive reads the camera's Archive from the coverage table, never
// from the segment rows: the oldest coverage row (one index seek), and the
// coverage rows from the newest backwards until the hole that ends the
// newest span — a 30-day span is ≈600 rows. Holes of at most tolerance
// (the replay gap tolerance) do not break a span, as in Timeline.
func (db *DB) CameraArchive(ctx context.Context, camera string, tolerance time.Duration) (Archive, error) {
	var a Archive
	var oldest int64
	err := db.r.QueryRowContext(ctx, `SELECT start_ns FROM coverage WHERE camera_id = ? ORDER BY bucket, start_ns LIMIT 1`,
		camera).Scan(&oldest)
	if errors.Is(err, sql.ErrNoRows) {
		return a, nil
	}
	if err != nil {
		return a, fmt.Errorf("archive of %s: %w", camera, err)
	}
	a.Oldest = fromNS(oldest)
	var maxSeg int64
	if err := db.r.QueryRowContext(ctx, `SELECT COALESCE(MAX(max_segment_ns), 0) FROM cameras WHERE id = ?`, camera).Scan(&maxSeg); err != nil {
		return a, fmt.Errorf("archive of %s: %w", camera, err)
	}
	since, until, err := db.newestSpan(ctx, camera, int64(max(tolerance, 0)), maxSeg)
	if err != nil {
		return a, fmt.Errorf("archive of %s: %w", camera, err)
	}
	a.Since, a.Until = fromNS(since), fromNS(until)
	return a, nil
}

// newestSpan walks the camera's coverage rows by (bucket, start) descending
// and merges them backwards. A row of bucket b starts in b and ends before
// the end of b plus max_segment_ns (its members start in b, none longer
// than max_segment_ns), so once a row's bucket cannot reach the span's
// start within tol, no later row can either and the walk stops.
func (db *DB) newestSpan(ctx context.Context, camera string, tol, maxSeg int64) (since, until int64, err error) {
	rows, err := db.r.QueryContext(ctx, `SELECT bucket, start_ns, end_ns FROM coverage WHERE camera_id = ?
		ORDER BY bucket DESC, start_ns DESC`, camera)
	if err != nil {
		return 0, 0, err
	}
	defer rows.Close()
	first := true
	for rows.Next() {
		var b, s, e int64
		if err := rows.Scan(&b, &s, &e); err != nil {
			return 0, 0, err
		}
		if e <= s {
			continue
		}
		if first {
			since, until, first = s, e, false
			continue
		}
		if (b+1)<<coverageShiftBits+maxSeg+tol < since {
			break // no row of this bucket or older can reach the span
		}
		if e+tol >= since { // overlaps, touches or is within tol of the span
			since, until = min(since, s), max(until, e)
		}
	}
	if err := rows.Err(); err != nil {
		return 0, 0, err
	}
	return since, until, nil
}
