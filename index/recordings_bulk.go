package index

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"strings"

	"github.com/jackc/pgx/v5"

	"xueliang/storage/recording"
)

// LoadSegments inserts many closed segments (no fragments) in one
// transaction: synthetic archives for benchmarks, or an archive imported
// from another recorder. Row by row, the coverage triggers cost a few index
// lookups each (≈12 k rows/s); here they are dropped inside the
// transaction, the rows inserted plainly, then every touched camera's
// coverage recomputed in one pass and the triggers recreated — all or
// nothing, and other connections never see the schema without them.
//
// Cameras are created when missing and their max_segment_ns raised. It
// returns the number of segments inserted. On PostgreSQL the triggers are
// disabled rather than dropped (see suspendCoverage), and the rows go in
// with COPY (pgx CopyFrom) on the transaction's connection, copyBatch rows
// per COPY; on SQLite as multi-row INSERTs of loadBatch rows.
func (db *DB) LoadSegments(ctx context.Context, segs iter.Seq[recording.Segment]) (n int64, err error) {
	// One connection for the transaction, so that a COPY (pgx, below
	// database/sql) runs inside it.
	conn, err := db.w.Conn(ctx)
	if err != nil {
		return 0, fmt.Errorf("load segments: %w", err)
	}
	defer conn.Close()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("load segments: %w", err)
	}
	if n, err = db.loadSegments(ctx, conn, tx, segs); err != nil {
		return 0, fmt.Errorf("load segments: %w", errors.Join(err, ignoreDone(tx.Rollback())))
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("load segments: %w", err)
	}
	return n, nil
}

// loadSegments is LoadSegments' work inside tx, open on conn.
func (db *DB) loadSegments(ctx context.Context, conn *sql.Conn, tx *sql.Tx, segs iter.Seq[recording.Segment]) (n int64, err error) {
	resume, cleanup, err := db.suspendCoverage(ctx, tx)
	if err != nil {
		return 0, err
	}
	defer cleanup()
	sink, batch, closeSink, err := db.segmentSink(ctx, conn, tx)
	if err != nil {
		return 0, err
	}
	defer closeSink()
	rows := make([][]any, 0, batch)
	addCam, err := tx.PrepareContext(ctx, `INSERT INTO cameras (id, name) VALUES (?, '') ON CONFLICT (id) DO NOTHING`)
	if err != nil {
		return 0, err
	}
	defer addCam.Close()
	maxDur := map[string]int64{}
	for s := range segs {
		if s.CameraID == "" || s.ObjectKey == "" {
			return 0, errors.New("empty camera id or object key")
		}
		start, end := toNS(s.Start), toNS(s.End)
		if end < start {
			return 0, fmt.Errorf("segment %s ends before it starts", s.ObjectKey)
		}
		d, seen := maxDur[s.CameraID]
		if !seen {
			// Before any row of the camera is sent: segments references cameras.
			if _, err := addCam.ExecContext(ctx, s.CameraID); err != nil {
				return 0, err
			}
		}
		maxDur[s.CameraID] = max(d, end-start)
		rows = append(rows, []any{s.CameraID, start, end, s.ObjectKey, s.Size, s.SHA256, s.Init,
			s.Codecs, s.Width, s.Height, int(s.State)})
		if n++; len(rows) == batch {
			if err := sink(rows); err != nil {
				return 0, fmt.Errorf("insert rows up to %s: %w", s.ObjectKey, err)
			}
			rows = rows[:0]
			if err := ctx.Err(); err != nil {
				return 0, err
			}
		}
	}
	if len(rows) > 0 {
		if err := sink(rows); err != nil {
			return 0, fmt.Errorf("insert last rows: %w", err)
		}
	}
	for cam, d := range maxDur {
		if _, err := tx.ExecContext(ctx, `UPDATE cameras SET max_segment_ns = CASE WHEN max_segment_ns < ? THEN ? ELSE max_segment_ns END WHERE id = ?`, d, d, cam); err != nil {
			return 0, err
		}
		if err := rebuildCoverage(ctx, tx, cam); err != nil {
			return 0, fmt.Errorf("rebuild coverage of %s: %w", cam, err)
		}
	}
	return n, resume()
}

// loadColumns are the columns of a bulk-loaded segment row, in the
// order of the rows LoadSegments builds.
var loadColumns = []string{"camera_id", "start_ns", "end_ns", "object_key", "size", "sha256", "init",
	"codecs", "width", "height", "state"}

// segmentSink returns the func that inserts a batch of segment rows in tx
// (at most batch rows per call) and the func that releases it.
// PostgreSQL: COPY through the pgx connection under conn (the one tx runs
// on); SQLite: one multi-row INSERT per call, prepared for full batches.
func (db *DB) segmentSink(ctx context.Context, conn *sql.Conn, tx *sql.Tx) (sink func([][]any) error, batch int, release func(), err error) {
	if db.dialect == dialectPostgres {
		return func(rows [][]any) error {
			return conn.Raw(func(dc any) error {
				rc, ok := dc.(rebindConn)
				if !ok {
					return fmt.Errorf("postgres connection is a %T", dc)
				}
				_, err := rc.Conn.Conn().CopyFrom(ctx, pgx.Identifier{"segments"}, loadColumns, pgx.CopyFromRows(rows))
				return err
			})
		}, copyBatch, func() {}, nil
	}
	full, err := tx.PrepareContext(ctx, insertRows(loadBatch))
	if err != nil {
		return nil, 0, nil, err
	}
	args := make([]any, 0, loadBatch*loadCols)
	return func(rows [][]any) error {
		args = args[:0]
		for _, r := range rows {
			args = append(args, r...)
		}
		if len(rows) == loadBatch {
			_, err := full.ExecContext(ctx, args...)
			return err
		}
		_, err := tx.ExecContext(ctx, insertRows(len(rows)), args...)
		return err
	}, loadBatch, func() { full.Close() }, nil
}

// rebuildCoverage recomputes camera's coverage rows from its segments: the
// same intervals as coverageMerge (migration 3), merged in Go over one
// index-ordered scan — SQLite's window functions took ≈9 µs per row, more
// than inserting it.
func rebuildCoverage(ctx context.Context, tx *sql.Tx, camera string) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM coverage WHERE camera_id = ?`, camera); err != nil {
		return err
	}
	rows, err := tx.QueryContext(ctx, `SELECT start_ns, end_ns FROM segments
		WHERE camera_id = ? AND end_ns > start_ns ORDER BY start_ns`, camera)
	if err != nil {
		return err
	}
	var ivs [][3]int64 // bucket, start, end
	for rows.Next() {
		var st, end int64
		if err := rows.Scan(&st, &end); err != nil {
			rows.Close()
			return err
		}
		b := st >> coverageShiftBits
		// A segment starts a new interval unless it starts in the same
		// bucket no later than the interval's end (touching merges).
		if n := len(ivs); n > 0 && ivs[n-1][0] == b && st <= ivs[n-1][2] {
			ivs[n-1][2] = max(ivs[n-1][2], end)
			continue
		}
		ivs = append(ivs, [3]int64{b, st, end})
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return err
	}
	ins, err := tx.PrepareContext(ctx, `INSERT INTO coverage (camera_id, bucket, start_ns, end_ns) VALUES (?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer ins.Close()
	for _, iv := range ivs {
		if _, err := ins.ExecContext(ctx, camera, iv[0], iv[1], iv[2]); err != nil {
			return err
		}
	}
	return nil
}

const (
	loadBatch = 256    // rows per INSERT statement (SQLite)
	loadCols  = 11     // columns per row in insertRows
	copyBatch = 50_000 // rows per COPY (PostgreSQL)
)

// insertRows returns an INSERT of n segment rows.
func insertRows(n int) string {
	var b strings.Builder
	b.WriteString(`INSERT INTO segments (camera_id, start_ns, end_ns, object_key, size, sha256, init, codecs, width, height, state) VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("(?,?,?,?,?,?,?,?,?,?,?)")
	}
	return b.String()
}

// suspendCoverage stops the coverage triggers for the rest of tx and
// returns the func that turns them back on (before commit) and one to
// call in any case once the transaction's work is done. SQLite: the
// triggers are dropped and recreated from their DDL in sqlite_master, with
// a big page cache meanwhile; PostgreSQL: ALTER TABLE ... DISABLE TRIGGER,
// whose lock keeps other connections out until commit.
func (db *DB) suspendCoverage(ctx context.Context, tx *sql.Tx) (resume func() error, cleanup func(), err error) {
	if db.dialect == dialectPostgres {
		if _, err := tx.ExecContext(ctx, `ALTER TABLE segments DISABLE TRIGGER segments_coverage`); err != nil {
			return nil, nil, err
		}
		return func() error {
			_, err := tx.ExecContext(ctx, `ALTER TABLE segments ENABLE TRIGGER segments_coverage`)
			return err
		}, func() {}, nil
	}
	restore, err := bigCache(ctx, tx)
	if err != nil {
		return nil, nil, err
	}
	triggers, err := segmentTriggers(ctx, tx)
	if err != nil {
		restore()
		return nil, nil, err
	}
	for name := range triggers {
		if _, err := tx.ExecContext(ctx, `DROP TRIGGER `+name); err != nil {
			restore()
			return nil, nil, err
		}
	}
	return func() error {
		for _, ddl := range triggers {
			if _, err := tx.ExecContext(ctx, ddl); err != nil {
				return err
			}
		}
		return nil
	}, restore, nil
}

// segmentTriggers returns the DDL of every trigger on segments, by name.
func segmentTriggers(ctx context.Context, tx *sql.Tx) (map[string]string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'segments'`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var name, ddl string
		if err := rows.Scan(&name, &ddl); err != nil {
			return nil, err
		}
		out[name] = ddl
	}
	return out, rows.Err()
}

// loadCacheKiB is the page cache a bulk load runs with. At the default
// (2 MiB) the four B-trees of segments (table and three indexes) keep
// evicting each other's right-most pages, and dirty pages spill to the WAL
// mid-transaction to be written again later.
const loadCacheKiB = 256 << 10

// bigCache raises the connection's page cache for the transaction and
// returns a func that puts the previous size back.
func bigCache(ctx context.Context, tx *sql.Tx) (restore func(), err error) {
	var prev int64
	if err := tx.QueryRowContext(ctx, `PRAGMA cache_size`).Scan(&prev); err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA cache_size = -%d`, loadCacheKiB)); err != nil {
		return nil, err
	}
	return func() { tx.ExecContext(context.WithoutCancel(ctx), fmt.Sprintf(`PRAGMA cache_size = %d`, prev)) }, nil
}
