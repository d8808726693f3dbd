package index

import (
	"context"
	"database/sql"
	"fmt"
	"time"
	"xueliang/storage/recording"
)

// eventMigrations: camera-side events (version 7).
//
// camera_events holds events the cameras report themselves (ONVIF metadata
// track motion, source 'onvif'), next to the motion we detect. A row is
// open (end_ns NULL) while the event is active and closed when the camera
// says it ended, when the session ends, or after MaxCameraEventDuration
// (the writer then opens a new row). No foreign key to cameras: a camera
// leaving the registry keeps its history, as its segments do.
// PostgreSQL: id BIGINT GENERATED ALWAYS AS IDENTITY, data JSONB.
var eventMigrations = []migration{
	{
		version: 7,
		name:    "camera events",
		stmts:   eventSchema,
		pgStmts: pgTypes(eventSchema...),
	},
}

// eventSchema is the migration's SQLite DDL; PostgreSQL's is derived by pgTypes.
var eventSchema = []string{
	`CREATE TABLE camera_events (
				id        INTEGER PRIMARY KEY,
				camera_id TEXT    NOT NULL,
				source    TEXT    NOT NULL,
				topic     TEXT    NOT NULL,
				rule      TEXT    NOT NULL DEFAULT '',
				start_ns  INTEGER NOT NULL,
				end_ns    INTEGER,
				data      TEXT    NOT NULL DEFAULT ''
			)`,
	`CREATE INDEX camera_events_camera_start ON camera_events (camera_id, start_ns)`,
	`CREATE INDEX camera_events_open ON camera_events (camera_id, source, topic, rule, start_ns) WHERE end_ns IS NULL`,
}

// AddCameraEvents records a batch of camera events in one transaction. An
// event with a zero End opens a row, unless an open row with the same
// camera, source, topic, rule and start exists. An event with an End closes
// the row with that camera, source, topic, rule and start (setting End, and
// Data when not empty) or, when there is none, inserts a closed row. So a writer sends the start of an event and
// later the same event with its End, and replaying a batch is harmless.
// Events longer than MaxCameraEventDuration are cut to it.
func (db *DB) AddCameraEvents(ctx context.Context, evs []recording.CameraEvent) error {
	for _, e := range evs {
		if err := e.Valid(); err != nil {
			return fmt.Errorf("add camera events: %w", err)
		}
	}
	if len(evs) == 0 {
		return nil
	}
	err := db.withTx(ctx, func(tx *sql.Tx) error {
		for _, e := range evs {
			start := toNS(e.Start)
			if e.End.IsZero() {
				if _, err := tx.ExecContext(ctx,
					`INSERT INTO camera_events (camera_id, source, topic, rule, start_ns, end_ns, data)
					 SELECT ?, ?, ?, ?, CAST(? AS BIGINT), CAST(NULL AS BIGINT), ?
					 WHERE NOT EXISTS (SELECT 1 FROM camera_events WHERE camera_id = ? AND source = ? AND topic = ?
						AND rule = ? AND start_ns = ? AND end_ns IS NULL)`,
					e.CameraID, e.Source, e.Topic, e.Rule, start, e.Data,
					e.CameraID, e.Source, e.Topic, e.Rule, start); err != nil {
					return err
				}
				continue
			}
			end := min(toNS(e.End), start+int64(recording.MaxCameraEventDuration))
			res, err := tx.ExecContext(ctx,
				`UPDATE camera_events SET end_ns = ?, data = CASE WHEN ? = '' THEN data ELSE ? END
				 WHERE camera_id = ? AND start_ns = ? AND source = ? AND topic = ? AND rule = ?`,
				end, e.Data, e.Data, e.CameraID, start, e.Source, e.Topic, e.Rule)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil || n > 0 {
				if err != nil {
					return err
				}
				continue
			}
			if _, err := tx.ExecContext(ctx,
				`INSERT INTO camera_events (camera_id, source, topic, rule, start_ns, end_ns, data) VALUES (?, ?, ?, ?, ?, ?, ?)`,
				e.CameraID, e.Source, e.Topic, e.Rule, start, end, e.Data); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("add camera events: %w", err)
	}
	return nil
}

// CloseOpenCameraEvents closes the open events of camera (every camera
// when empty) that started before now — left open by a crash or a lost
// close — at min(now, start + MaxCameraEventDuration). It returns how many
// it closed.
func (db *DB) CloseOpenCameraEvents(ctx context.Context, camera string, now time.Time) (int64, error) {
	n := toNS(now)
	res, err := db.w.ExecContext(ctx,
		`UPDATE camera_events SET end_ns = CASE WHEN start_ns + ? < ? THEN start_ns + ? ELSE ? END
		 WHERE end_ns IS NULL AND start_ns <= ? AND (? = '' OR camera_id = ?)`,
		int64(recording.MaxCameraEventDuration), n, int64(recording.MaxCameraEventDuration), n, n, camera, camera)
	if err != nil {
		return 0, fmt.Errorf("close open camera events: %w", err)
	}
	c, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("close open camera events: %w", err)
	}
	return c, nil
}

// CameraEvents returns the events of camera overlapping [from, to), open
// ones included (End zero), by start then id.
func (db *DB) CameraEvents(ctx context.Context, camera string, from, to time.Time) ([]recording.CameraEvent, error) {
	f, t := toNS(from), toNS(to)
	rows, err := db.r.QueryContext(ctx,
		`SELECT id, source, topic, rule, start_ns, end_ns, data FROM camera_events
		 WHERE camera_id = ? AND start_ns >= ? AND start_ns < ? AND (end_ns IS NULL OR end_ns > ? OR (end_ns = start_ns AND start_ns >= ?))
		 ORDER BY start_ns, id`,
		camera, f-int64(recording.MaxCameraEventDuration), t, f, f)
	if err != nil {
		return nil, fmt.Errorf("camera events %s: %w", camera, err)
	}
	defer rows.Close()
	var out []recording.CameraEvent
	for rows.Next() {
		e := recording.CameraEvent{CameraID: camera}
		var start int64
		var end sql.NullInt64
		if err := rows.Scan(&e.ID, &e.Source, &e.Topic, &e.Rule, &start, &end, &e.Data); err != nil {
			return nil, fmt.Errorf("camera events %s: %w", camera, err)
		}
		e.Start = fromNS(start)
		if end.Valid {
			e.End = fromNS(end.Int64)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("camera events %s: %w", camera, err)
	}
	return out, nil
}
