package index

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"
)

// lostMigrations: segments whose object was lost from the store (version
// 9). Reconciliation moves such a row here instead of deleting it
// silently: the segments table keeps only footage that can be replayed
// (the timeline shows a gap there), this table keeps the record of what
// was lost, shown on the timeline as lost.
var lostMigrations = []migration{
	{
		version: 9,
		name:    "lost segments",
		stmts:   lostSchema,
		pgStmts: lostSchemaPG(),
	},
}

// lostSchemaPG is lostSchema for PostgreSQL: pgTypes, except that the id is
// a plain BIGINT key, not an identity. It is never generated here: MarkLost
// copies the segment's id, and an identity's sequence would never move.
func lostSchemaPG() []string {
	s := slices.Clone(lostSchema)
	s[0] = strings.Replace(s[0], "id         INTEGER PRIMARY KEY", "id         BIGINT PRIMARY KEY", 1)
	return pgTypes(s...)
}

// lostSchema is the lost-segments table (SQLite types; pgTypes translates).
var lostSchema = []string{
	`CREATE TABLE lost_segments (
				id         INTEGER PRIMARY KEY,
				camera_id  TEXT    NOT NULL,
				start_ns   INTEGER NOT NULL,
				end_ns     INTEGER NOT NULL,
				object_key TEXT    NOT NULL,
				size       INTEGER NOT NULL DEFAULT 0,
				sha256     TEXT    NOT NULL DEFAULT '',
				lost_ns    INTEGER NOT NULL
			)`,
	`CREATE INDEX lost_segments_camera_start ON lost_segments (camera_id, start_ns)`,
}

// LostSegment is a segment whose object was lost: no object and no spool
// copy were found by reconciliation.
type LostSegment struct {
	// ID is the segment's former ID.
	ID                int64
	CameraID          string
	Start, End        time.Time
	ObjectKey, SHA256 string
	Size              int64
	Lost              time.Time // when reconciliation marked it
}

// MarkLost moves segment id (with its fragments) to lost_segments, stamped
// at: in one transaction, so the row is never just gone.
func (db *DB) MarkLost(ctx context.Context, id int64, at time.Time) error {
	err := db.withTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO lost_segments (id, camera_id, start_ns, end_ns, object_key, size, sha256, lost_ns)
			SELECT id, camera_id, start_ns, end_ns, object_key, size, sha256, ? FROM segments WHERE id = ?
			ON CONFLICT (id) DO UPDATE SET camera_id = excluded.camera_id, start_ns = excluded.start_ns, end_ns = excluded.end_ns,
				object_key = excluded.object_key, size = excluded.size, sha256 = excluded.sha256, lost_ns = excluded.lost_ns`, toNS(at), id)
		if err == nil {
			err = oneRow(res, id)
		}
		if err != nil {
			return err
		}
		res, err = tx.ExecContext(ctx, `DELETE FROM segments WHERE id = ?`, id)
		if err == nil {
			err = oneRow(res, id)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("mark segment %d lost: %w", id, err)
	}
	return nil
}

// LostSegments returns the lost segments of camera overlapping [from, to),
// oldest first.
func (db *DB) LostSegments(ctx context.Context, camera string, from, to time.Time) ([]LostSegment, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT id, camera_id, start_ns, end_ns, object_key, size, sha256, lost_ns
		FROM lost_segments WHERE camera_id = ? AND start_ns < ? AND end_ns > ? ORDER BY start_ns, id`,
		camera, toNS(to), toNS(from))
	if err != nil {
		return nil, fmt.Errorf("lost segments %s: %w", camera, err)
	}
	defer rows.Close()
	var out []LostSegment
	for rows.Next() {
		var l LostSegment
		var s, e, at int64
		if err := rows.Scan(&l.ID, &l.CameraID, &s, &e, &l.ObjectKey, &l.Size, &l.SHA256, &at); err != nil {
			return nil, fmt.Errorf("lost segments %s: %w", camera, err)
		}
		l.Start, l.End, l.Lost = fromNS(s), fromNS(e), fromNS(at)
		out = append(out, l)
	}
	return out, rows.Err()
}
