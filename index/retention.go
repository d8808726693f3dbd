package index

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"xueliang/storage/recording"
)

// retentionMigrations: retention overrides and evidence locks (version 10).
//
// cameras.retention_max_age_ns / retention_max_bytes override the server's
// retention.max_age / max_bytes for one camera (0: inherit);
// township_retention does the same for every camera of a township (a
// camera's own override wins). evidence_locks are case locks over a time
// range; evidence_lock_cameras lists the cameras of each. A lock is active
// while unlocked_ns = 0; a segment overlapping an active lock of its camera
// is never chosen by MarkDeleting (retention and the emergency purge).
var retentionMigrations = []migration{
	{
		version: 10,
		name:    "retention policies and evidence locks",
		stmts:   retentionSchema,
		pgStmts: pgTypes(retentionSchema...),
	},
}

// purgeMigrations: version 12 lets MarkDeleting without a camera (the
// emergency purge: the oldest stored segments of every camera) walk an
// index in start order instead of reading and sorting every stored row for
// each chunk — a chunk cost that grew with the archive. (state, start_ns)
// also serves every lookup the old single-column state index did.
var purgeMigrations = []migration{
	{
		version: 12,
		name:    "segments by state in start order",
		stmts:   purgeSchema,
		pgStmts: purgeSchema,
	},
}

var purgeSchema = []string{
	`CREATE INDEX segments_state_start ON segments (state, start_ns)`,
	`DROP INDEX segments_state`,
}

// retentionSchema is the SQLite DDL of version 10 (pgTypes translates it).
var retentionSchema = []string{
	`ALTER TABLE cameras ADD COLUMN retention_max_age_ns INTEGER NOT NULL DEFAULT 0`,
	`ALTER TABLE cameras ADD COLUMN retention_max_bytes INTEGER NOT NULL DEFAULT 0`,
	`CREATE TABLE township_retention (
				township    TEXT PRIMARY KEY,
				max_age_ns  INTEGER NOT NULL DEFAULT 0,
				max_bytes   INTEGER NOT NULL DEFAULT 0,
				updated_ns  INTEGER NOT NULL DEFAULT 0
			)`,
	`CREATE TABLE evidence_locks (
				id          INTEGER PRIMARY KEY,
				from_ns     INTEGER NOT NULL,
				to_ns       INTEGER NOT NULL,
				case_number TEXT    NOT NULL,
				reason      TEXT    NOT NULL DEFAULT '',
				created_by  TEXT    NOT NULL DEFAULT '',
				created_ns  INTEGER NOT NULL,
				unlocked_by TEXT    NOT NULL DEFAULT '',
				unlocked_ns INTEGER NOT NULL DEFAULT 0
			)`,
	`CREATE TABLE evidence_lock_cameras (
				camera_id TEXT    NOT NULL,
				lock_id   INTEGER NOT NULL REFERENCES evidence_locks (id) ON DELETE CASCADE,
				PRIMARY KEY (camera_id, lock_id)
			) WITHOUT ROWID`,
}

// RetentionOverride is a per-camera or per-township retention setting;
// zero fields inherit.
type RetentionOverride struct {
	MaxAge   time.Duration
	MaxBytes int64
}

// CameraRetention is a camera's own override and its township.
type CameraRetention struct {
	Camera   string
	Township string
	Override RetentionOverride
}

// CameraRetentions returns every camera row (registered or not, so that the
// footage of a removed camera also ages out) with its override.
func (db *DB) CameraRetentions(ctx context.Context) ([]CameraRetention, error) {
	out, err := queryAll(ctx, db.r, func(s scanner) (CameraRetention, error) {
		var c CameraRetention
		var age int64
		err := s.Scan(&c.Camera, &c.Township, &age, &c.Override.MaxBytes)
		c.Override.MaxAge = time.Duration(age)
		return c, err
	}, `SELECT id, township, retention_max_age_ns, retention_max_bytes FROM cameras ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("camera retentions: %w", err)
	}
	return out, nil
}

// SetCameraRetention sets the camera's override (zero fields inherit), or
// returns ErrNotFound.
func (db *DB) SetCameraRetention(ctx context.Context, camera string, o RetentionOverride) error {
	res, err := db.w.ExecContext(ctx, `UPDATE cameras SET retention_max_age_ns = ?, retention_max_bytes = ? WHERE id = ?`,
		int64(o.MaxAge), o.MaxBytes, camera)
	if err == nil {
		var n int64
		if n, err = res.RowsAffected(); err == nil && n == 0 {
			err = ErrNotFound
		}
	}
	if err != nil {
		return fmt.Errorf("set retention of camera %s: %w", camera, err)
	}
	return nil
}

// TownshipRetentions returns every township override.
func (db *DB) TownshipRetentions(ctx context.Context) (map[string]RetentionOverride, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT township, max_age_ns, max_bytes FROM township_retention`)
	if err != nil {
		return nil, fmt.Errorf("township retentions: %w", err)
	}
	defer rows.Close()
	out := map[string]RetentionOverride{}
	for rows.Next() {
		var t string
		var age, b int64
		if err := rows.Scan(&t, &age, &b); err != nil {
			return nil, fmt.Errorf("township retentions: %w", err)
		}
		out[t] = RetentionOverride{MaxAge: time.Duration(age), MaxBytes: b}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("township retentions: %w", err)
	}
	return out, nil
}

// SetTownshipRetention sets (or, when o is zero, removes) a township's
// override.
func (db *DB) SetTownshipRetention(ctx context.Context, township string, o RetentionOverride, now time.Time) error {
	var err error
	if o == (RetentionOverride{}) {
		_, err = db.w.ExecContext(ctx, `DELETE FROM township_retention WHERE township = ?`, township)
	} else {
		_, err = db.w.ExecContext(ctx, `INSERT INTO township_retention (township, max_age_ns, max_bytes, updated_ns)
			VALUES (?, ?, ?, ?) ON CONFLICT (township) DO UPDATE SET
			max_age_ns = excluded.max_age_ns, max_bytes = excluded.max_bytes, updated_ns = excluded.updated_ns`,
			township, int64(o.MaxAge), o.MaxBytes, toNS(now))
	}
	if err != nil {
		return fmt.Errorf("set retention of township %s: %w", township, err)
	}
	return nil
}

// DeleteSelect chooses segments for MarkDeleting.
type DeleteSelect struct {
	// Camera limits the choice to one camera; "" chooses across cameras
	// (the emergency purge), oldest first by start.
	Camera string
	// Before: only segments with End <= Before are chosen.
	Before time.Time
	// Bytes, when > 0, stops the choice once the chosen segments' sizes add
	// up to at least Bytes; 0 chooses every segment the other fields allow.
	Bytes int64
	// Limit caps the number chosen (a chunk). It defaults to 500.
	Limit int
}

// lockedWhere is true for a segment s overlapping an active evidence lock
// of its camera.
const lockedWhere = `EXISTS (SELECT 1 FROM evidence_lock_cameras c JOIN evidence_locks l ON l.id = c.lock_id
	WHERE c.camera_id = s.camera_id AND l.unlocked_ns = 0 AND l.from_ns < s.end_ns AND l.to_ns > s.start_ns)`

// MarkDeleting chooses the oldest stored segments that no active evidence
// lock covers (see DeleteSelect), moves them to StateDeleting in one
// transaction and returns them, ordered by Start. Only StateStored
// segments are chosen: footage still recording or waiting in the spool is
// never deleted here.
func (db *DB) MarkDeleting(ctx context.Context, sel DeleteSelect) ([]recording.Segment, error) {
	if sel.Limit <= 0 {
		sel.Limit = 500
	}
	where := `s.state = ? AND s.end_ns <= ? AND NOT ` + lockedWhere
	args := []any{int(recording.StateStored), toNS(sel.Before)}
	if sel.Camera != "" {
		// The (camera_id, start_ns) index walks the camera's oldest rows:
		// a segment ending before Before starts before it. The unary plus
		// keeps SQLite off (state, start_ns), which it otherwise prefers
		// for the ORDER BY: that walks every camera's stored rows in start
		// order and filters this camera out of them (with 1,000 cameras
		// ≈1,000 rows read per row chosen).
		where = `s.camera_id = ? AND s.start_ns < ? AND +` + where
		args = append([]any{sel.Camera, toNS(sel.Before)}, args...)
	}
	var out []recording.Segment
	err := db.withTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT `+prefixed("s.", segmentColumns)+` FROM segments s WHERE `+where+
			` ORDER BY s.start_ns, s.id LIMIT ?`, append(args, sel.Limit)...)
		if err != nil {
			return err
		}
		var sum int64
		for rows.Next() {
			seg, err := scanSegment(rows)
			if err != nil {
				rows.Close()
				return err
			}
			out = append(out, seg)
			sum += seg.Size
			if sel.Bytes > 0 && sum >= sel.Bytes {
				break
			}
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return err
		}
		for i := range out {
			if _, err := tx.ExecContext(ctx, `UPDATE segments SET state = ? WHERE id = ?`,
				int(recording.StateDeleting), out[i].ID); err != nil {
				return err
			}
			out[i].State = recording.StateDeleting
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("mark segments deleting: %w", err)
	}
	return out, nil
}

// prefixed qualifies each column of a comma-separated list.
func prefixed(p, cols string) string {
	parts := strings.Split(cols, ",")
	for i, c := range parts {
		parts[i] = p + strings.TrimSpace(c)
	}
	return strings.Join(parts, ", ")
}

// DeleteSegmentRows deletes the segments (and their fragments) in one
// transaction. Missing ids are ignored, so a retry after a crash is safe.
//
// The coverage delete trigger would rebuild a segment's bucket once per
// deleted row (≈6 ms each on SQLite: a retention chunk of 500 took 3 s);
// here it is suspended inside the transaction, the rows deleted, each
// touched (camera, bucket) rebuilt once, and the trigger turned back on —
// all or nothing. SQLite: the delete trigger is dropped and recreated from
// its DDL, so other connections never see the schema without it;
// PostgreSQL: the one coverage trigger is disabled (ALTER TABLE ...
// DISABLE TRIGGER, as LoadSegments does), whose lock keeps other
// connections out of segments until commit.
func (db *DB) DeleteSegmentRows(ctx context.Context, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	type bucket struct {
		cam string
		b   int64
	}
	err := db.withTx(ctx, func(tx *sql.Tx) error {
		resume, err := db.suspendCoverageDelete(ctx, tx)
		if err != nil {
			return err
		}
		touched := map[bucket]bool{}
		for _, id := range ids {
			var cam string
			var start int64
			err := tx.QueryRowContext(ctx, `DELETE FROM segments WHERE id = ? RETURNING camera_id, start_ns`, id).Scan(&cam, &start)
			if errors.Is(err, sql.ErrNoRows) {
				continue
			}
			if err != nil {
				return err
			}
			touched[bucket{cam, start >> coverageShiftBits}] = true
		}
		for k := range touched {
			if _, err := tx.ExecContext(ctx, `DELETE FROM coverage WHERE camera_id = ? AND bucket = ?`, k.cam, k.b); err != nil {
				return err
			}
			// The bucket's bounds are computed here: numbered
			// placeholders (?1) do not survive the PostgreSQL rebind,
			// and a bare parameter shifted by 42 would be typed int4.
			if _, err := tx.ExecContext(ctx, `INSERT INTO coverage (camera_id, bucket, start_ns, end_ns) `+coverageMerge(
				`camera_id, start_ns >> `+coverageShift,
				`camera_id = ? AND start_ns >= ? AND start_ns < ? AND end_ns > start_ns`),
				k.cam, k.b<<coverageShiftBits, (k.b+1)<<coverageShiftBits); err != nil {
				return err
			}
		}
		return resume()
	})
	if err != nil {
		return fmt.Errorf("delete %d segment rows: %w", len(ids), err)
	}
	return nil
}

// suspendCoverageDelete stops the coverage trigger on deletes of segments
// for the rest of tx and returns the func that turns it back on (call it
// before commit). SQLite: segments_coverage_delete is dropped and later
// recreated from its DDL in sqlite_master (the insert and update triggers
// stay); PostgreSQL: the single segments_coverage trigger (insert, update
// and delete) is disabled, then enabled.
func (db *DB) suspendCoverageDelete(ctx context.Context, tx *sql.Tx) (resume func() error, err error) {
	if db.dialect == dialectPostgres {
		if _, err := tx.ExecContext(ctx, `ALTER TABLE segments DISABLE TRIGGER segments_coverage`); err != nil {
			return nil, err
		}
		return func() error {
			_, err := tx.ExecContext(ctx, `ALTER TABLE segments ENABLE TRIGGER segments_coverage`)
			return err
		}, nil
	}
	triggers, err := segmentTriggers(ctx, tx)
	if err != nil {
		return nil, err
	}
	const trig = "segments_coverage_delete"
	ddl, ok := triggers[trig]
	if !ok {
		return func() error { return nil }, nil
	}
	if _, err := tx.ExecContext(ctx, `DROP TRIGGER `+trig); err != nil {
		return nil, err
	}
	return func() error {
		_, err := tx.ExecContext(ctx, ddl)
		return err
	}, nil
}

// CameraBytes returns the summed size of the camera's stored segments
// that no active lock covers (what max_bytes counts and may delete), and
// of those a lock covers. It reads every stored row of the camera: where
// only the locked figure is needed, LockedBytes reads just the locks'
// ranges. (+s.state, here and in LockedBytes: SQLite would otherwise read
// the stored rows of every camera through (state, start_ns).)
func (db *DB) CameraBytes(ctx context.Context, camera string) (unlocked, locked int64, err error) {
	err = db.r.QueryRowContext(ctx, `SELECT
		COALESCE(SUM(CASE WHEN `+lockedWhere+` THEN 0 ELSE s.size END), 0),
		COALESCE(SUM(CASE WHEN `+lockedWhere+` THEN s.size ELSE 0 END), 0)
		FROM segments s WHERE s.camera_id = ? AND +s.state = ?`, camera, int(recording.StateStored)).Scan(&unlocked, &locked)
	if err != nil {
		return 0, 0, fmt.Errorf("bytes of camera %s: %w", camera, err)
	}
	return unlocked, locked, nil
}

// LockedBytes returns the summed size of the camera's stored segments
// that an active evidence lock covers — CameraBytes' second figure, read
// from the locks' ranges on the (camera_id, start_ns) index (see
// overlapWhere) instead of from every row of the camera, so that it costs
// what is locked, not what is stored.
func (db *DB) LockedBytes(ctx context.Context, camera string) (int64, error) {
	var n int64
	err := db.r.QueryRowContext(ctx, `SELECT COALESCE(SUM(size), 0) FROM segments WHERE id IN (
		SELECT s.id FROM evidence_lock_cameras c JOIN evidence_locks l ON l.id = c.lock_id
		JOIN segments s ON s.camera_id = c.camera_id
			AND s.start_ns >= l.from_ns - COALESCE((SELECT max_segment_ns FROM cameras WHERE id = c.camera_id), 0)
			AND s.start_ns < l.to_ns AND s.end_ns > l.from_ns
		WHERE c.camera_id = ? AND l.unlocked_ns = 0 AND +s.state = ?)`, camera, int(recording.StateStored)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("locked bytes of camera %s: %w", camera, err)
	}
	return n, nil
}

// OldestUnlockedStart returns the start of the camera's oldest segment
// that no active lock covers, or the zero time when it has none. It walks
// the (camera_id, start_ns) index from the oldest row and stops at the
// first unlocked one.
func (db *DB) OldestUnlockedStart(ctx context.Context, camera string) (time.Time, error) {
	var ns int64
	err := db.r.QueryRowContext(ctx, `SELECT s.start_ns FROM segments s WHERE s.camera_id = ? AND NOT `+lockedWhere+
		` ORDER BY s.start_ns LIMIT 1`, camera).Scan(&ns)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("oldest segment of %s: %w", camera, err)
	}
	return fromNS(ns), nil
}

// DeleteMetadataBefore deletes the camera's motion chunks, motion
// intervals and closed camera events that end at or before t, except
// those overlapping an active evidence lock of the camera, in chunks of
// limit rows per table. It returns the number of rows deleted.
func (db *DB) DeleteMetadataBefore(ctx context.Context, camera string, t time.Time) (int64, error) {
	const limit = 5000
	ns := toNS(t)
	locked := func(tbl string) string {
		return `EXISTS (SELECT 1 FROM evidence_lock_cameras c JOIN evidence_locks l ON l.id = c.lock_id
			WHERE c.camera_id = ` + tbl + `.camera_id AND l.unlocked_ns = 0 AND l.from_ns < ` + tbl + `.end_ns AND l.to_ns > ` + tbl + `.start_ns)`
	}
	stmts := []string{
		`DELETE FROM motion_chunks WHERE id IN (SELECT id FROM motion_chunks WHERE camera_id = ? AND start_ns < ?
			AND end_ns <= ? AND NOT ` + locked("motion_chunks") + ` LIMIT ` + itoa(limit) + `)`,
		`DELETE FROM motion_intervals WHERE id IN (SELECT id FROM motion_intervals WHERE camera_id = ? AND end_ns <= ?
			AND end_ns <= ? AND NOT ` + locked("motion_intervals") + ` LIMIT ` + itoa(limit) + `)`,
		`DELETE FROM camera_events WHERE id IN (SELECT id FROM camera_events WHERE camera_id = ? AND start_ns < ?
			AND end_ns IS NOT NULL AND end_ns <= ? AND NOT ` + locked("camera_events") + ` LIMIT ` + itoa(limit) + `)`,
	}
	var total int64
	for _, q := range stmts {
		for {
			res, err := db.w.ExecContext(ctx, q, camera, ns, ns)
			if err != nil {
				return total, fmt.Errorf("delete metadata of %s: %w", camera, err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return total, fmt.Errorf("delete metadata of %s: %w", camera, err)
			}
			total += n
			if n < limit {
				break
			}
		}
	}
	return total, nil
}

// EvidenceLock is a case lock over a time range of one or more cameras.
type EvidenceLock struct {
	ID         int64
	Cameras    []string
	From, To   time.Time
	CaseNumber string
	Reason     string
	CreatedBy  string
	Created    time.Time
	// UnlockedBy and Unlocked are set once an admin unlocked it; a lock
	// with a zero Unlocked is active.
	UnlockedBy string
	Unlocked   time.Time
}

// Active reports whether the lock still protects its range.
func (l EvidenceLock) Active() bool { return l.Unlocked.IsZero() }

// CreateEvidenceLock inserts l (ID and Created are set) and returns it.
func (db *DB) CreateEvidenceLock(ctx context.Context, l EvidenceLock) (EvidenceLock, error) {
	if len(l.Cameras) == 0 || !l.From.Before(l.To) || l.CaseNumber == "" {
		return EvidenceLock{}, errors.New("create evidence lock: want cameras, from < to and a case number")
	}
	err := db.withTx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `INSERT INTO evidence_locks (from_ns, to_ns, case_number, reason, created_by, created_ns)
			VALUES (?, ?, ?, ?, ?, ?) RETURNING id`, toNS(l.From), toNS(l.To), l.CaseNumber, l.Reason, l.CreatedBy,
			toNS(l.Created)).Scan(&l.ID)
		if err != nil {
			return err
		}
		for _, c := range l.Cameras {
			if _, err := tx.ExecContext(ctx, `INSERT INTO evidence_lock_cameras (camera_id, lock_id) VALUES (?, ?)
				ON CONFLICT DO NOTHING`, c, l.ID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return EvidenceLock{}, fmt.Errorf("create evidence lock: %w", err)
	}
	return l, nil
}

// UnlockEvidence ends the lock, or returns ErrNotFound when there is no
// active lock id.
func (db *DB) UnlockEvidence(ctx context.Context, id int64, by string, now time.Time) error {
	res, err := db.w.ExecContext(ctx, `UPDATE evidence_locks SET unlocked_by = ?, unlocked_ns = ? WHERE id = ? AND unlocked_ns = 0`,
		by, toNS(now), id)
	if err == nil {
		var n int64
		if n, err = res.RowsAffected(); err == nil && n == 0 {
			err = ErrNotFound
		}
	}
	if err != nil {
		return fmt.Errorf("unlock evidence %d: %w", id, err)
	}
	return nil
}

// EvidenceLocks returns the locks, newest first; only the active ones
// unless all.
func (db *DB) EvidenceLocks(ctx context.Context, all bool) ([]EvidenceLock, error) {
	// string_agg with ORDER BY: both engines (SQLite since 3.44).
	q := `SELECT l.id, l.from_ns, l.to_ns, l.case_number, l.reason, l.created_by, l.created_ns, l.unlocked_by, l.unlocked_ns,
		(SELECT string_agg(camera_id, ',' ORDER BY camera_id) FROM evidence_lock_cameras WHERE lock_id = l.id)
		FROM evidence_locks l`
	if !all {
		q += ` WHERE l.unlocked_ns = 0`
	}
	out, err := queryAll(ctx, db.r, func(s scanner) (EvidenceLock, error) {
		var l EvidenceLock
		var from, to, created, unlocked int64
		var cams sql.NullString
		err := s.Scan(&l.ID, &from, &to, &l.CaseNumber, &l.Reason, &l.CreatedBy, &created, &l.UnlockedBy, &unlocked, &cams)
		l.From, l.To, l.Created, l.Unlocked = fromNS(from), fromNS(to), fromNS(created), registryTime(unlocked)
		if cams.Valid && cams.String != "" {
			l.Cameras = strings.Split(cams.String, ",")
		}
		return l, err
	}, q+` ORDER BY l.id DESC`)
	if err != nil {
		return nil, fmt.Errorf("evidence locks: %w", err)
	}
	return out, nil
}

// EvidenceLock returns one lock or ErrNotFound.
func (db *DB) EvidenceLock(ctx context.Context, id int64) (EvidenceLock, error) {
	all, err := db.EvidenceLocks(ctx, true)
	if err != nil {
		return EvidenceLock{}, err
	}
	for _, l := range all {
		if l.ID == id {
			return l, nil
		}
	}
	return EvidenceLock{}, fmt.Errorf("evidence lock %d: %w", id, ErrNotFound)
}

// LockedSegments returns the segments of camera overlapping [from, to)
// that are stored (the ones an evidence lock protects and copies).
func (db *DB) LockedSegments(ctx context.Context, camera string, from, to time.Time) ([]recording.Segment, error) {
	f, t := toNS(from), toNS(to)
	segs, err := db.querySegments(ctx,
		`SELECT `+segmentColumns+` FROM segments WHERE `+overlapWhere+` AND state = ? ORDER BY start_ns, id`,
		camera, f, camera, t, f, int(recording.StateStored))
	if err != nil {
		return nil, fmt.Errorf("locked segments of %s: %w", camera, err)
	}
	return segs, nil
}

// ReleaseLocked moves those of ids that are still deleting and that an
// active evidence lock now overlaps (a lock made after MarkDeleting chose
// them) back to StateStored, and returns their ids. Call it only before
// any of their objects was removed.
func (db *DB) ReleaseLocked(ctx context.Context, ids []int64) ([]int64, error) {
	var out []int64
	err := db.withTx(ctx, func(tx *sql.Tx) error {
		for _, id := range ids {
			var got int64
			err := tx.QueryRowContext(ctx, `UPDATE segments SET state = ? WHERE id = ? AND state = ? AND `+
				strings.ReplaceAll(lockedWhere, " s.", " segments.")+` RETURNING id`,
				int(recording.StateStored), id, int(recording.StateDeleting)).Scan(&got)
			if errors.Is(err, sql.ErrNoRows) {
				continue
			}
			if err != nil {
				return err
			}
			out = append(out, got)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("release locked segments: %w", err)
	}
	return out, nil
}
