package index

// recordingMigrations: cameras (the owner of footage rows), segments,
// fragments, coverage (versions 1-3).
// PostgreSQL equivalents: INTEGER PRIMARY KEY → BIGINT GENERATED ALWAYS AS
// IDENTITY, BLOB → BYTEA, keyframe INTEGER → BOOLEAN, WITHOUT ROWID dropped.
var recordingMigrations = []migration{
	{
		version: 1,
		name:    "initial schema",
		stmts: []string{
			`CREATE TABLE cameras (
				id   TEXT PRIMARY KEY,
				name TEXT NOT NULL DEFAULT ''
			)`,
			`CREATE TABLE segments (
				id         INTEGER PRIMARY KEY,
				camera_id  TEXT    NOT NULL REFERENCES cameras (id),
				start_ns   INTEGER NOT NULL,
				end_ns     INTEGER NOT NULL,
				object_key TEXT    NOT NULL UNIQUE,
				size       INTEGER NOT NULL DEFAULT 0,
				sha256     TEXT    NOT NULL DEFAULT '',
				init       BLOB,
				codecs     TEXT    NOT NULL DEFAULT '',
				width      INTEGER NOT NULL DEFAULT 0,
				height     INTEGER NOT NULL DEFAULT 0,
				state      INTEGER NOT NULL DEFAULT 0
			)`,
			`CREATE INDEX segments_camera_start ON segments (camera_id, start_ns, end_ns)`,
			`CREATE INDEX segments_camera_end ON segments (camera_id, end_ns)`,
			`CREATE INDEX segments_state ON segments (state)`,
			`CREATE TABLE fragments (
				segment_id INTEGER NOT NULL REFERENCES segments (id) ON DELETE CASCADE,
				seq        INTEGER NOT NULL,
				start_ns   INTEGER NOT NULL,
				end_ns     INTEGER NOT NULL,
				"offset"   INTEGER NOT NULL,
				size       INTEGER NOT NULL,
				keyframe   INTEGER NOT NULL DEFAULT 0,
				PRIMARY KEY (segment_id, seq)
			) WITHOUT ROWID`,
			`CREATE INDEX fragments_segment_start ON fragments (segment_id, start_ns)`,
		},
	},
	{
		// The longest segment of each camera bounds the start_ns range that
		// SegmentsInRange and Timeline scan: a segment overlapping [from, to)
		// starts in [from - max_segment_ns, to).
		version: 2,
		name:    "cameras.max_segment_ns",
		stmts: []string{
			`ALTER TABLE cameras ADD COLUMN max_segment_ns INTEGER NOT NULL DEFAULT 0`,
			`UPDATE cameras SET max_segment_ns = COALESCE(
				(SELECT MAX(end_ns - start_ns) FROM segments WHERE segments.camera_id = cameras.id), 0)`,
		},
	},
	{
		// coverage holds, per camera and bucket, the union of the camera's
		// non-empty segments whose start_ns falls in the bucket, merged
		// when they overlap or touch (see recordings_timeline.go). Triggers keep it
		// exact under every write to segments, including plain SQL.
		// PostgreSQL: the same table; the triggers become one plpgsql
		// trigger function doing the same statements.
		version: 3,
		name:    "coverage",
		stmts: []string{
			`CREATE TABLE coverage (
				camera_id TEXT    NOT NULL,
				bucket    INTEGER NOT NULL,
				start_ns  INTEGER NOT NULL,
				end_ns    INTEGER NOT NULL,
				PRIMARY KEY (camera_id, bucket, start_ns)
			) WITHOUT ROWID`,
			`INSERT INTO coverage (camera_id, bucket, start_ns, end_ns) ` + coverageMerge(
				`camera_id, start_ns >> `+coverageShift, `end_ns > start_ns`),
			// A segment that appears or grows (insert; AddFragments raising
			// the end of the live segment) and meets at most one interval
			// of its bucket is added to it, or inserted: a few index
			// lookups. Anything else (deletion, shrinking, a segment
			// bridging two intervals) recomputes the buckets it touches.
			// When both fire, the add after the recompute is a no-op.
			`CREATE TRIGGER segments_coverage_insert AFTER INSERT ON segments
			WHEN NEW.end_ns > NEW.start_ns AND ` + coverageTouching("NEW") + ` <= 1
			BEGIN
				` + coverageAdd("NEW") + `;
			END`,
			`CREATE TRIGGER segments_coverage_insert_merge AFTER INSERT ON segments
			WHEN NEW.end_ns > NEW.start_ns AND ` + coverageTouching("NEW") + ` > 1
			BEGIN
				` + coverageRecompute("NEW") + `;
			END`,
			`CREATE TRIGGER segments_coverage_grow AFTER UPDATE OF camera_id, start_ns, end_ns ON segments
			WHEN NEW.start_ns = OLD.start_ns AND NEW.camera_id = OLD.camera_id
				AND NEW.end_ns > OLD.end_ns AND NEW.end_ns > NEW.start_ns
				AND ` + coverageTouching("NEW") + ` <= 1
			BEGIN
				` + coverageAdd("NEW") + `;
			END`,
			`CREATE TRIGGER segments_coverage_update AFTER UPDATE OF camera_id, start_ns, end_ns ON segments
			WHEN (NEW.start_ns IS NOT OLD.start_ns OR NEW.end_ns IS NOT OLD.end_ns OR NEW.camera_id IS NOT OLD.camera_id)
				AND NOT (NEW.start_ns = OLD.start_ns AND NEW.camera_id = OLD.camera_id
					AND NEW.end_ns >= OLD.end_ns AND ` + coverageTouching("NEW") + ` <= 1)
			BEGIN
				` + coverageRecompute("OLD") + `;
				` + coverageRecompute("NEW") + `;
			END`,
			`CREATE TRIGGER segments_coverage_delete AFTER DELETE ON segments
			WHEN OLD.end_ns > OLD.start_ns
			BEGIN
				` + coverageRecompute("OLD") + `;
			END`,
		},
	},
}

// coverageShift sets the coverage bucket: start_ns >> 42, i.e. 2^42 ns ≈
// 73 min. A bucket of one-minute segments is ≈73 rows to recompute on a
// change; a 30-day timeline reads ≈720 buckets' intervals instead of
// 43,200 segment rows. The arithmetic shift floors, also before 1970.
const (
	coverageShift     = "42"
	coverageShiftBits = 42 // the same, for Go
)

// coverageMerge returns a SELECT of (group..., start_ns, end_ns): the
// segments matching where, merged per group when sorted by start_ns a
// segment starts no later than the largest end_ns before it in its group.
// group is a comma-separated list of expressions (the coverage key).
func coverageMerge(group, where string) string {
	return `SELECT ` + group + `, MIN(start_ns), MAX(end_ns) FROM (
		SELECT camera_id, start_ns, end_ns, SUM(brk) OVER (PARTITION BY ` + group + ` ORDER BY start_ns ROWS UNBOUNDED PRECEDING) AS grp
		FROM (
			SELECT camera_id, start_ns, end_ns,
				CASE WHEN start_ns > MAX(end_ns) OVER (PARTITION BY ` + group + ` ORDER BY start_ns
					ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) THEN 1 ELSE 0 END AS brk
			FROM segments WHERE ` + where + `
		)
	) GROUP BY ` + group + `, grp`
}

// coverageWhere selects the coverage intervals of row's bucket that
// overlap or touch row's [start_ns, end_ns].
func coverageWhere(row string) string {
	return `camera_id = ` + row + `.camera_id AND bucket = (` + row + `.start_ns >> ` + coverageShift + `)
		AND start_ns <= ` + row + `.end_ns AND end_ns >= ` + row + `.start_ns`
}

// coverageTouching counts the intervals coverageWhere selects.
func coverageTouching(row string) string {
	return `(SELECT COUNT(*) FROM coverage WHERE ` + coverageWhere(row) + `)`
}

// coverageAdd returns the trigger statements that add row's non-empty
// [start_ns, end_ns] to its bucket when it touches at most one interval.
func coverageAdd(row string) string {
	return `UPDATE coverage SET start_ns = MIN(start_ns, ` + row + `.start_ns), end_ns = MAX(end_ns, ` + row + `.end_ns)
		WHERE ` + coverageWhere(row) + `;
		INSERT INTO coverage (camera_id, bucket, start_ns, end_ns)
		SELECT ` + row + `.camera_id, ` + row + `.start_ns >> ` + coverageShift + `, ` + row + `.start_ns, ` + row + `.end_ns
		WHERE NOT EXISTS (SELECT 1 FROM coverage WHERE ` + coverageWhere(row) + `)`
}

// coverageRecompute returns the trigger statements that rebuild the
// coverage bucket of row (OLD or NEW).
func coverageRecompute(row string) string {
	cam := row + `.camera_id`
	b := `(` + row + `.start_ns >> ` + coverageShift + `)`
	return `DELETE FROM coverage WHERE camera_id = ` + cam + ` AND bucket = ` + b + `;
		INSERT INTO coverage (camera_id, bucket, start_ns, end_ns) ` + coverageMerge(
		`camera_id, start_ns >> `+coverageShift,
		`camera_id = `+cam+` AND start_ns >= `+b+` << `+coverageShift+
			` AND start_ns < (`+b+` + 1) << `+coverageShift+` AND end_ns > start_ns`)
}
