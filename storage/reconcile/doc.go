// Package reconcile compares the index with the object store after a
// crash, an outage or a manual change, and repairs what can be repaired.
// The server runs it once at start, after segmenter.Recover (it may run
// concurrently with recording and uploading).
//
// Data flow, per configured camera:
//
//	Index.Timeline(camera, all time) ──▶ days that have rows ─┐
//	Store.List("<camera>/") (key order = time order) ──────────┼─▶ per UTC day:
//	                                                           │    objects of the day  (listing)
//	                                                           │    rows of the day     (SegmentsInRange, keys under the day prefix)
//	spool.Dir.Walk (once) ──▶ keys still in the spool ─────────┘    compare by object key
//
// Memory is one camera-day of rows and objects at a time (plus the spool
// keys and the lost rows awaiting marking, without their inits).
//
// What it does:
//
//   - Object without a row (orphan: a crash between Put and the index
//     commit, rows deleted, an index restored from an older backup): if
//     the key is exactly recording.SegmentKey(camera, start) — which encodes
//     the wall-clock start to the nanosecond — and the object parses as a
//     complete segment of ours (recording.ParseFile: init, whole fragments,
//     the first a keyframe at media time 0; recording.DescribeInit), it is
//     imported: CreateSegment (state recording), AddFragments
//     (recording.FragmentRows), FinishSegment, MarkStored, and audited
//     (Config.Audit). Interrupted
//     half-way, the recording row is deleted by the next segmenter.Recover
//     (no spool file) and the object is imported again by the next run.
//     Anything else under the camera's prefix is reported and left alone.
//   - Stored row without an object (lost: the bucket was wiped or
//     replaced, a lifecycle rule, a manual delete): the object is Stat'ed
//     again (the listing predates the rows). If the spool still holds a
//     copy of the right size and SHA-256, it is put again and the row stays
//     stored. Otherwise the row is marked lost (Index.MarkLost: it moves
//     from the footage rows to the record of lost segments, so the
//     timeline shows an honest gap, listed as lost, instead of footage
//     that cannot be played), audited (Config.Audit), logged (Error, with
//     key and time range) and counted. No row is ever deleted silently.
//     More than Config.MaxLostDeletes lost rows in one run looks like a
//     misconfigured bucket rather than a loss: then no row is marked.
//   - Stored row whose object has another size: reported only.
//   - Stored row whose spool file is still there (a crash between
//     MarkStored and the removal), object present with the right size:
//     the spool file is removed (crediting the spool quota), as nothing
//     else would remove it.
//
// Rows in state recording or closed are left to segmenter.Recover and the
// uploader. Objects outside the configured cameras' prefixes are not
// looked at.
//
// Result: a Report (counts and a bounded list of example findings) and
// one summary log line, "store reconciled" (Info when consistent, Warn
// with orphans, Error with losses or failures).
package reconcile
