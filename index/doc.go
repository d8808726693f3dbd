// Package index is the archive's index in SQLite (modernc.org/sqlite, pure
// Go; Open, the embedded default) or PostgreSQL (pgx v5 through
// database/sql; OpenPostgres): what was recorded, the camera registry,
// motion and camera events, users and the audit log. It maps its rows to
// the storage/recording value types that ingest, storage and replay use, so
// none of them imports this package; cmd/xueliang wires *DB to the
// interfaces they declare. Both engines run the same queries (portable SQL,
// '?' rebound to $n for PostgreSQL); the engine specifics live in sqlite.go
// (driver, DSN/pragmas) and postgres.go (rebinding, DDL translation, the
// dialect switch); every migration carries both DDLs under one version.
// One conformance suite (conformance_test.go) runs every behaviour test on
// both, PostgreSQL being a real server started by index/pgtest.
//
// Concerns, one group of files each (with its migrations):
//
//	recordings_*.go  cameras as owners of footage, segments, fragments,
//	                 coverage, timeline, bulk load, group commit, archive
//	                 (CameraArchive: the newest unbroken span, from coverage)
//	registry.go      the camera registry (Camera)
//	motion.go        motion chunks and intervals
//	events.go        camera-side (ONVIF) events
//	retention.go     retention overrides, evidence locks, deletion (MarkDeleting,
//	                 DeleteSegmentRows: the coverage trigger suspended, dropped
//	                 on SQLite, disabled on PostgreSQL; migration 10)
//	recordings_lost.go segments whose object was lost (MarkLost; migration 9)
//	auth_users.go    users and tokens (and the auth migration)
//	auth_audit.go    the append-only, hash-chained audit log
//	db.go, sqlite.go opening, migrating, transactions; SQLite's DSN
//	postgres.go      OpenPostgres, '?' rebinding, DDL translation
//	leases.go        camera leases and epoch-fenced segment writes
//	                 (PostgreSQL; migration 8)
//
// Data flow:
//
//	segmenter ─CreateSegment─▶ segments (state recording)
//	          ─AddFragments──▶ fragments (+ segments.end_ns, size raised)
//	          ─FinishSegment─▶ segments (state closed, size, sha256)
//	uploader  ─SegmentsByState(closed) / MarkStored─▶ segments (state stored)
//	replay    ─SegmentsInRange / Fragments──────────▶ byte ranges to read
//	API       ─Timeline─▶ spans + gaps
//	ingest    ─AddMotion, AddCameraEvents─▶ motion_*, camera_events
//	API/auth  ─users, tokens, AppendAudit─▶ users, tokens, audit
//	retention ─MarkDeleting─▶ segments (state deleting) ─DeleteSegmentRows─▶ gone
//	          (oldest stored first, never under an active evidence lock)
//
// Layout (times are int64 unix nanoseconds, UTC):
//
//	schema_migrations(version PK, name, applied_ns)
//	cameras(id PK, name, max_segment_ns,
//	  township, village, lat, lon, main_url, sub_url, username, password (sealed),
//	  transport, segment_duration_ns, motion, enabled, source, created_ns, updated_ns)
//	  -- registry.go; source '' = not in the registry (footage only)
//	  cameras_site (township, village)
//	segments(id PK, camera_id → cameras, start_ns, end_ns, object_key UNIQUE,
//	         size, sha256, init, codecs, width, height, state, epoch)
//	  -- epoch: the lease epoch of a fenced write (leases.go), 0 otherwise
//	  segments_camera_start (camera_id, start_ns, end_ns)  -- range scans, covering for Timeline
//	  segments_camera_end   (camera_id, end_ns)
//	  segments_state_start  (state, start_ns)   version 12: the purge walks it in start order
//	fragments(segment_id → segments ON DELETE CASCADE, seq, start_ns, end_ns,
//	          "offset", size, keyframe, PK (segment_id, seq)) WITHOUT ROWID
//	  fragments_segment_start (segment_id, start_ns)
//	coverage(camera_id, bucket, start_ns, end_ns, PK (camera_id, bucket, start_ns)) WITHOUT ROWID
//	  -- derived, kept by triggers on segments: per camera and bucket
//	  -- (start_ns >> 42, ≈73 min), the union of the non-empty segments that
//	  -- start in the bucket, merged where they overlap or touch
//	camera_leases(camera_id PK, node_id, epoch, expires_at)
//	  -- leases.go, PostgreSQL: expires_at is the database's timestamptz
//	camera_events(id, camera_id, source, topic, rule, start_ns, end_ns NULL while open, data)
//	  camera_events_camera_start (camera_id, start_ns)
//	  camera_events_open (camera_id, source, topic, rule, start_ns) WHERE end_ns IS NULL
//	  -- events.go: what cameras report (ONVIF metadata), rows ≤ 1 h long
//	motion_chunks(id, camera_id, start_ns, end_ns, active, s0..s8, data)
//	  motion_chunks_camera_start (camera_id, start_ns)
//	  -- motion.go: per camera-minute with motion, the packed per-second grids
//	  -- (opaque here), seconds with motion, a 576-bit OR summary for SQL pre-filtering
//	motion_intervals(id, camera_id, start_ns, end_ns, peak, seconds, cells, x0, y0, x1, y1)
//	  motion_intervals_camera_end (camera_id, end_ns)
//	cameras.retention_max_age_ns, retention_max_bytes; township_retention(township PK, max_age_ns, max_bytes, updated_ns)
//	evidence_locks(id, from_ns, to_ns, case_number, reason, created_by, created_ns, unlocked_by, unlocked_ns)
//	evidence_lock_cameras(camera_id, lock_id → evidence_locks, PK (camera_id, lock_id)) WITHOUT ROWID
//	  -- retention.go; a lock is active while unlocked_ns = 0
//	lost_segments(id PK (the segment's former id, not generated), camera_id, start_ns, end_ns,
//	              object_key, size, sha256, lost_ns)
//	  lost_segments_camera_start (camera_id, start_ns)
//	  -- recordings_lost.go: rows reconciliation moved out of segments
//
// Timeline reads coverage, not segments: a 30-day window of one-minute
// segments is ≈720 coverage rows instead of 43,200 segment rows (stepping
// through those alone took SQLite 15–45 ms). The triggers fire on every
// write to segments, through this API or plain SQL: a segment that appears
// or grows and meets at most one interval of its bucket extends it or adds
// one (a few index lookups: the AddFragments case); anything else (a
// deletion, a shrinking FinishSegment after recovery, a segment bridging
// two intervals) recomputes the bucket from its ≈73 segment rows. The hot
// write statements are prepared once at Open, so the triggers' programs are
// not recompiled per call.
//
// Range queries select segments with end > from AND start < to. To keep that
// a bounded index range scan, cameras.max_segment_ns records the longest
// segment of each camera (raised in the same transaction as any write that
// lengthens a segment), so the scan is start in [from - max_segment_ns, to).
//
// Migrations: an ordered list (sqlite.go) of every concern's slice, each applied with its
// schema_migrations row in one transaction; reopening is a no-op and a
// database newer than the program is refused (ErrSchemaTooNew).
//
// Concurrency: one *sql.DB with a single connection takes every write, so
// writers queue in Go (database/sql's connection wait, honouring ctx)
// instead of spinning on SQLITE_BUSY; its transactions are BEGIN IMMEDIATE.
// Reads use a separate pool of query_only connections which, in WAL mode,
// never block and are never blocked by the writer. All methods are safe for
// concurrent use.
//
// AddFragments, the most frequent write (every camera, once per GOP), is
// group-committed (recordings_groupcommit.go) without a goroutine of its
// own, the way LevelDB groups its writers: a call queues its rows; the call
// that finds no other committing becomes the leader, waits the commit window
// (SetCommitWindow; 0 writes at once), takes everything queued (in arrival
// order, up to 512 rows) and writes it in ONE transaction with the prepared
// statements, each touched segment raised once, answers every caller, and
// hands the leadership to the call now at the head of the queue (a call
// handed it commits the next batch at once). Calls arriving while a
// transaction runs share the next one, so the per-transaction cost (BEGIN,
// COMMIT, WAL append) is paid once per batch instead of once per camera. If
// a merged transaction fails, each of its calls is retried in a transaction
// of its own, so one bad call (a missing segment: ErrNotFound) fails alone,
// with the error it would have had alone. A call returns only once its rows
// are committed, so a caller's later FinishSegment (or any other write,
// which goes to the same connection) sees them. A waiting call whose ctx
// ends returns ctx's error; its rows may or may not be committed (the upsert
// is idempotent: retrying is safe), and rows of a call abandoned before its
// batch starts are skipped. The leader itself returns when its batch is
// committed: it is doing the others' work. Close cancels a transaction in
// progress, answers the waiting calls with an error and waits for the
// leader. The other writes are rare (once per segment or less) and keep
// their own transactions.
//
// Durability: WAL with synchronous=NORMAL: a commit is atomic and survives
// a process crash; a power loss can lose the last transactions (not
// corrupt the database). The spool files are the source of truth for
// recent fragments, and crash recovery re-indexes them, so this is safe.
// busy_timeout covers other processes (backup, sqlite3 shell) and
// checkpoints; foreign_keys is on.
package index
