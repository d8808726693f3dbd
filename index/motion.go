package index

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
	"xueliang/storage/recording"
)

// motionMigrations: motion grids and intervals (version 6).
//
// motion_chunks holds the per-second motion grids of a camera packed per
// chunk (one row per camera-minute with motion; a still minute has no row).
// The index treats data as opaque (the format is ingest/motion.Chunk); it
// only knows the chunk's time range, its number of active seconds (the
// per-minute activity of the heat bars) and the summary s0..s8: a 576-bit
// OR of every grid in the chunk that region searches AND with their mask in
// SQL, so chunks that cannot match are skipped without reading data (the
// last column, usually in overflow pages).
//
// motion_intervals holds closed motion intervals (padded), with their
// peak area, seconds with motion, the encoded OR of their cells and the
// bounding box in cells.
//
// Camera IDs are not foreign keys: motion rows of a removed camera stay
// until deleted with its footage.
var motionMigrations = []migration{
	{
		version: 6,
		name:    "motion chunks and intervals",
		stmts:   motionSchema,
		pgStmts: pgTypes(motionSchema...),
	},
}

// motionSchema is the migration's SQLite DDL; PostgreSQL's is derived by pgTypes.
var motionSchema = []string{
	`CREATE TABLE motion_chunks (
				id        INTEGER PRIMARY KEY,
				camera_id TEXT    NOT NULL,
				start_ns  INTEGER NOT NULL,
				end_ns    INTEGER NOT NULL,
				active    INTEGER NOT NULL,
				s0 INTEGER NOT NULL, s1 INTEGER NOT NULL, s2 INTEGER NOT NULL,
				s3 INTEGER NOT NULL, s4 INTEGER NOT NULL, s5 INTEGER NOT NULL,
				s6 INTEGER NOT NULL, s7 INTEGER NOT NULL, s8 INTEGER NOT NULL,
				data      BLOB    NOT NULL
			)`,
	`CREATE INDEX motion_chunks_camera_start ON motion_chunks (camera_id, start_ns)`,
	`CREATE TABLE motion_intervals (
				id        INTEGER PRIMARY KEY,
				camera_id TEXT    NOT NULL,
				start_ns  INTEGER NOT NULL,
				end_ns    INTEGER NOT NULL,
				peak      REAL    NOT NULL,
				seconds   INTEGER NOT NULL,
				cells     BLOB    NOT NULL,
				x0 INTEGER NOT NULL, y0 INTEGER NOT NULL, x1 INTEGER NOT NULL, y1 INTEGER NOT NULL
			)`,
	`CREATE INDEX motion_intervals_camera_end ON motion_intervals (camera_id, end_ns)`,
}

// MotionMinute is the activity of one minute: seconds with motion.
type MotionMinute struct {
	Start  time.Time
	Active int
}

// AddMotion stores chunks and intervals in one transaction.
func (db *DB) AddMotion(ctx context.Context, chunks []recording.MotionChunk, intervals []recording.MotionInterval) error {
	for _, c := range chunks {
		if !c.Start.Before(c.End) || c.End.Sub(c.Start) > recording.MaxMotionChunk {
			return fmt.Errorf("add motion of %s: chunk [%s, %s) longer than %s or empty", c.CameraID, c.Start, c.End, recording.MaxMotionChunk)
		}
	}
	if len(chunks) == 0 && len(intervals) == 0 {
		return nil
	}
	return db.withTx(ctx, func(tx *sql.Tx) error {
		if len(chunks) > 0 {
			st, err := tx.PrepareContext(ctx, `INSERT INTO motion_chunks (camera_id, start_ns, end_ns, active,
				s0, s1, s2, s3, s4, s5, s6, s7, s8, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
			if err != nil {
				return fmt.Errorf("add motion chunks: %w", err)
			}
			defer st.Close()
			for _, c := range chunks {
				args := []any{c.CameraID, toNS(c.Start), toNS(c.End), c.Active}
				for _, w := range c.Summary {
					args = append(args, int64(w))
				}
				args = append(args, c.Data)
				if _, err := st.ExecContext(ctx, args...); err != nil {
					return fmt.Errorf("add motion chunk of %s: %w", c.CameraID, err)
				}
			}
		}
		if len(intervals) > 0 {
			st, err := tx.PrepareContext(ctx, `INSERT INTO motion_intervals (camera_id, start_ns, end_ns, peak, seconds, cells,
				x0, y0, x1, y1) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
			if err != nil {
				return fmt.Errorf("add motion intervals: %w", err)
			}
			defer st.Close()
			for _, iv := range intervals {
				if _, err := st.ExecContext(ctx, iv.CameraID, toNS(iv.Start), toNS(iv.End), iv.Peak, iv.Seconds,
					nonNil(iv.Cells), iv.X0, iv.Y0, iv.X1, iv.Y1); err != nil {
					return fmt.Errorf("add motion interval of %s: %w", iv.CameraID, err)
				}
			}
		}
		return nil
	})
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// MotionIntervals returns the camera's stored intervals overlapping
// [from, to), oldest first, at most limit (0 = no limit; the newest are
// kept when there are more).
func (db *DB) MotionIntervals(ctx context.Context, camera string, from, to time.Time, limit int) ([]recording.MotionInterval, error) {
	q := `SELECT start_ns, end_ns, peak, seconds, cells, x0, y0, x1, y1 FROM motion_intervals
		WHERE camera_id = ? AND end_ns > ? AND start_ns < ? ORDER BY start_ns DESC`
	args := []any{camera, toNS(from), toNS(to)}
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit)
	}
	rows, err := db.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("motion intervals of %s: %w", camera, err)
	}
	defer rows.Close()
	var out []recording.MotionInterval
	for rows.Next() {
		iv := recording.MotionInterval{CameraID: camera}
		var s, e int64
		if err := rows.Scan(&s, &e, &iv.Peak, &iv.Seconds, &iv.Cells, &iv.X0, &iv.Y0, &iv.X1, &iv.Y1); err != nil {
			return nil, fmt.Errorf("motion intervals of %s: %w", camera, err)
		}
		iv.Start, iv.End = fromNS(s), fromNS(e)
		out = append(out, iv)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("motion intervals of %s: %w", camera, err)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}

// MotionActivity returns, per minute of [from, to) that has any motion,
// the number of seconds with motion (summed over the chunks that start in
// the minute), oldest first. Minutes without motion are absent.
func (db *DB) MotionActivity(ctx context.Context, camera string, from, to time.Time) ([]MotionMinute, error) {
	const minute = int64(time.Minute)
	rows, err := db.r.QueryContext(ctx, `SELECT start_ns, active FROM motion_chunks
		WHERE camera_id = ? AND start_ns >= ? AND start_ns < ? ORDER BY start_ns`,
		camera, toNS(from.Truncate(time.Minute)), toNS(to))
	if err != nil {
		return nil, fmt.Errorf("motion activity of %s: %w", camera, err)
	}
	defer rows.Close()
	var out []MotionMinute
	for rows.Next() {
		var s int64
		var n int
		if err := rows.Scan(&s, &n); err != nil {
			return nil, fmt.Errorf("motion activity of %s: %w", camera, err)
		}
		m := s - ((s%minute)+minute)%minute
		if k := len(out); k > 0 && toNS(out[k-1].Start) == m {
			out[k-1].Active = min(out[k-1].Active+n, 60)
			continue
		}
		out = append(out, MotionMinute{Start: fromNS(m), Active: min(n, 60)})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("motion activity of %s: %w", camera, err)
	}
	return out, nil
}

// ScanMotion calls fn for every chunk of the camera overlapping [from, to),
// in time order. When mask is not nil, only chunks whose summary has a bit
// in common with mask are read (the test runs in SQL). Summary is not
// read (zero), and Data is only valid until fn returns (it is the driver's
// buffer: a year of a busy camera is tens of MB, copying it costs); an
// error from fn stops the scan and is returned.
func (db *DB) ScanMotion(ctx context.Context, camera string, from, to time.Time, mask *[recording.MotionSummaryWords]uint64, fn func(recording.MotionChunk) error) error {
	q := `SELECT start_ns, end_ns, active, data FROM motion_chunks
		WHERE camera_id = ? AND start_ns > ? AND start_ns < ? AND end_ns > ?`
	args := []any{camera, toNS(from.Add(-recording.MaxMotionChunk)), toNS(to), toNS(from)}
	if mask != nil {
		var or []string
		for i, w := range mask {
			if w == 0 {
				continue
			}
			or = append(or, fmt.Sprintf("(s%d & ?) != 0", i))
			args = append(args, int64(w))
		}
		if len(or) == 0 {
			return nil // an empty mask matches nothing
		}
		q += ` AND (` + strings.Join(or, " OR ") + `)`
	}
	q += ` ORDER BY start_ns`
	rows, err := db.r.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("scan motion of %s: %w", camera, err)
	}
	defer rows.Close()
	for rows.Next() {
		c := recording.MotionChunk{CameraID: camera}
		var s, e int64
		var data sql.RawBytes
		if err := rows.Scan(&s, &e, &c.Active, &data); err != nil {
			return fmt.Errorf("scan motion of %s: %w", camera, err)
		}
		c.Start, c.End, c.Data = fromNS(s), fromNS(e), data
		if err := fn(c); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("scan motion of %s: %w", camera, err)
	}
	return nil
}
