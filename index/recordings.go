package index

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"
	"xueliang/storage/recording"
)

// UpsertCamera inserts the camera or updates its name.
func (db *DB) UpsertCamera(ctx context.Context, c Camera) error {
	if c.ID == "" {
		return errors.New("upsert camera: empty id")
	}
	_, err := db.w.ExecContext(ctx,
		`INSERT INTO cameras (id, name) VALUES (?, ?)
		 ON CONFLICT (id) DO UPDATE SET name = excluded.name`, c.ID, c.Name)
	if err != nil {
		return fmt.Errorf("upsert camera %s: %w", c.ID, err)
	}
	return nil
}

// hotWrites are the statements prepared once at Open (see DB.stmts).
var hotWrites = []string{insertSegment, raiseMaxSegment, raiseSegment, upsertFragment, finishSegment}

const insertSegment = `INSERT INTO segments (camera_id, start_ns, end_ns, object_key, size, sha256, init, codecs, width, height, state)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`

const raiseSegment = `UPDATE segments SET
	end_ns = CASE WHEN end_ns < ? THEN ? ELSE end_ns END,
	size   = CASE WHEN size < ? THEN ? ELSE size END
	WHERE id = ?`

const upsertFragment = `INSERT INTO fragments (segment_id, seq, start_ns, end_ns, "offset", size, keyframe)
	VALUES (?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (segment_id, seq) DO UPDATE SET
		start_ns = excluded.start_ns, end_ns = excluded.end_ns,
		"offset" = excluded."offset", size = excluded.size, keyframe = excluded.keyframe`

const finishSegment = `UPDATE segments SET end_ns = ?, size = ?, sha256 = ?, state = ? WHERE id = ?`

// raiseMaxSegment keeps cameras.max_segment_ns >= the duration of segment id.
const raiseMaxSegment = `UPDATE cameras
	SET max_segment_ns = (SELECT end_ns - start_ns FROM segments WHERE id = ?)
	WHERE id = (SELECT camera_id FROM segments WHERE id = ?)
	  AND max_segment_ns < (SELECT end_ns - start_ns FROM segments WHERE id = ?)`

// CreateSegment inserts seg and sets seg.ID. The camera row is created
// (with an empty name) if missing. A zero seg.End is stored as seg.Start.
func (db *DB) CreateSegment(ctx context.Context, seg *recording.Segment) error {
	if seg.CameraID == "" || seg.ObjectKey == "" {
		return errors.New("create segment: empty camera id or object key")
	}
	start := toNS(seg.Start)
	end := toNS(seg.End)
	if seg.End.IsZero() {
		end = start
	}
	var id int64
	err := db.withTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO cameras (id, name) VALUES (?, '') ON CONFLICT (id) DO NOTHING`, seg.CameraID); err != nil {
			return err
		}
		err := db.txStmt(ctx, tx, insertSegment).QueryRowContext(ctx,
			seg.CameraID, start, end, seg.ObjectKey, seg.Size, seg.SHA256, seg.Init, seg.Codecs,
			seg.Width, seg.Height, int(seg.State)).Scan(&id)
		if err != nil {
			return err
		}
		_, err = db.txStmt(ctx, tx, raiseMaxSegment).ExecContext(ctx, id, id, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("create segment %s: %w", seg.ObjectKey, err)
	}
	seg.ID = id
	if seg.End.IsZero() {
		seg.End = fromNS(end)
	}
	return nil
}

// AddFragments upserts frags by (SegmentID, Seq) and raises each touched
// segment's End to the largest fragment End and its Size to the largest
// Offset+Size. A missing segment is ErrNotFound and nothing of frags is
// written. When it returns nil, the rows are committed.
//
// Concurrent calls share write transactions (group commit, see the package
// doc): the call waits until its rows are committed or ctx ends. If ctx
// ends first, it returns ctx's error and its rows may or may not be
// committed; as the write is an idempotent upsert, retrying is safe.
func (db *DB) AddFragments(ctx context.Context, frags []recording.Fragment) error {
	if len(frags) == 0 {
		return nil
	}
	for _, f := range frags {
		if f.Seq < 1 || f.Offset < 0 || f.Size < 0 {
			return fmt.Errorf("add fragments: segment %d seq %d: invalid fragment", f.SegmentID, f.Seq)
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("add fragments: %w", err)
	}
	// A copy: a caller whose ctx ends may reuse frags while its request is
	// still being written.
	return db.submit(&fragReq{ctx: ctx, frags: slices.Clone(frags), done: make(chan error, 1), lead: make(chan struct{}, 1)})
}

// FinishSegment sets the segment's final End, Size and SHA-256 and moves it
// to StateClosed.
func (db *DB) FinishSegment(ctx context.Context, id int64, end time.Time, size int64, sha256 string) error {
	err := db.withTx(ctx, func(tx *sql.Tx) error {
		res, err := db.txStmt(ctx, tx, finishSegment).ExecContext(ctx,
			toNS(end), size, sha256, int(recording.StateClosed), id)
		if err != nil {
			return err
		}
		if err := oneRow(res, id); err != nil {
			return err
		}
		_, err = db.txStmt(ctx, tx, raiseMaxSegment).ExecContext(ctx, id, id, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("finish segment %d: %w", id, err)
	}
	return nil
}

// MarkStored moves the segment to StateStored.
func (db *DB) MarkStored(ctx context.Context, id int64) error {
	res, err := db.w.ExecContext(ctx, `UPDATE segments SET state = ? WHERE id = ?`, int(recording.StateStored), id)
	if err == nil {
		err = oneRow(res, id)
	}
	if err != nil {
		return fmt.Errorf("mark segment %d stored: %w", id, err)
	}
	return nil
}

// DeleteSegment deletes the segment and its fragments, or returns
// ErrNotFound.
func (db *DB) DeleteSegment(ctx context.Context, id int64) error {
	res, err := db.w.ExecContext(ctx, `DELETE FROM segments WHERE id = ?`, id)
	if err == nil {
		err = oneRow(res, id)
	}
	if err != nil {
		return fmt.Errorf("delete segment %d: %w", id, err)
	}
	return nil
}

func oneRow(res sql.Result, id int64) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("segment %d: %w", id, ErrNotFound)
	}
	return nil
}

const segmentColumns = `id, camera_id, start_ns, end_ns, object_key, size, sha256, init, codecs, width, height, state`

func scanSegment(s scanner) (recording.Segment, error) {
	var (
		seg        recording.Segment
		start, end int64
		state      int
	)
	if err := s.Scan(&seg.ID, &seg.CameraID, &start, &end, &seg.ObjectKey, &seg.Size, &seg.SHA256,
		&seg.Init, &seg.Codecs, &seg.Width, &seg.Height, &state); err != nil {
		return recording.Segment{}, err
	}
	seg.Start, seg.End, seg.State = fromNS(start), fromNS(end), recording.SegmentState(state)
	return seg, nil
}

// Segment returns one segment or ErrNotFound.
func (db *DB) Segment(ctx context.Context, id int64) (recording.Segment, error) {
	seg, err := scanSegment(db.r.QueryRowContext(ctx, `SELECT `+segmentColumns+` FROM segments WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return recording.Segment{}, fmt.Errorf("segment %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return recording.Segment{}, fmt.Errorf("segment %d: %w", id, err)
	}
	return seg, nil
}

// SegmentByKey returns the segment whose object key is key, or ErrNotFound.
func (db *DB) SegmentByKey(ctx context.Context, key string) (recording.Segment, error) {
	seg, err := scanSegment(db.r.QueryRowContext(ctx, `SELECT `+segmentColumns+` FROM segments WHERE object_key = ?`, key))
	if errors.Is(err, sql.ErrNoRows) {
		return recording.Segment{}, fmt.Errorf("segment %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return recording.Segment{}, fmt.Errorf("segment %s: %w", key, err)
	}
	return seg, nil
}

func (db *DB) querySegments(ctx context.Context, query string, args ...any) ([]recording.Segment, error) {
	return queryAll(ctx, db.r, scanSegment, query, args...)
}

// overlapWhere selects a camera's segments overlapping [from, to). The
// lower start_ns bound (from minus the camera's longest segment) lets the
// (camera_id, start_ns) index scan only the window instead of all history.
// Arguments: camera, from, camera, to, from.
const overlapWhere = `camera_id = ?
	AND start_ns >= ? - COALESCE((SELECT max_segment_ns FROM cameras WHERE id = ?), 0)
	AND start_ns < ? AND end_ns > ?`

// SegmentsInRange returns the camera's segments with End > from and
// Start < to, ordered by Start.
func (db *DB) SegmentsInRange(ctx context.Context, camera string, from, to time.Time) ([]recording.Segment, error) {
	f, t := toNS(from), toNS(to)
	segs, err := db.querySegments(ctx,
		`SELECT `+segmentColumns+` FROM segments WHERE `+overlapWhere+` ORDER BY start_ns, id`,
		camera, f, camera, t, f)
	if err != nil {
		return nil, fmt.Errorf("segments of %s in range: %w", camera, err)
	}
	return segs, nil
}

// SegmentsByState returns every segment in state st, ordered by id (oldest
// first).
func (db *DB) SegmentsByState(ctx context.Context, st recording.SegmentState) ([]recording.Segment, error) {
	segs, err := db.querySegments(ctx,
		`SELECT `+segmentColumns+` FROM segments WHERE state = ? ORDER BY id`, int(st))
	if err != nil {
		return nil, fmt.Errorf("segments in state %s: %w", st, err)
	}
	return segs, nil
}

// Fragments returns the segment's fragments with End > from and
// Start < to, ordered by Seq. An unknown segment yields no fragments.
func (db *DB) Fragments(ctx context.Context, segmentID int64, from, to time.Time) ([]recording.Fragment, error) {
	rows, err := db.r.QueryContext(ctx,
		`SELECT seq, start_ns, end_ns, "offset", size, keyframe FROM fragments
		 WHERE segment_id = ? AND start_ns < ? AND end_ns > ? ORDER BY seq`,
		segmentID, toNS(to), toNS(from))
	if err != nil {
		return nil, fmt.Errorf("fragments of segment %d: %w", segmentID, err)
	}
	defer rows.Close()
	var out []recording.Fragment
	for rows.Next() {
		f := recording.Fragment{SegmentID: segmentID}
		var start, end int64
		if err := rows.Scan(&f.Seq, &start, &end, &f.Offset, &f.Size, &f.Keyframe); err != nil {
			return nil, fmt.Errorf("fragments of segment %d: %w", segmentID, err)
		}
		f.Start, f.End = fromNS(start), fromNS(end)
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("fragments of segment %d: %w", segmentID, err)
	}
	return out, nil
}
