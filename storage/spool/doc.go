// Package spool holds the spool directory, where segments live until they
// are in the object store, the uploader that moves them there, and the
// reader that finds a segment's bytes wherever they are.
//
// Data flow:
//
//	segmenter ──Quota.Reserve, append──▶ data_dir/spool/<key>
//	   │ FinishSegment (state closed) then Uploader.Enqueue(seg)
//	   ▼
//	Uploader: queue (bounded) ─┬─▶ worker × Workers:
//	   overflow set ◀── full ──┘     re-read row from the index
//	   rescan of the index           PutFileSHA256 (store offers it, SHA-256 known),
//	   (at start + periodic)           else PutFile (store offers it), else Put (streamed)
//	                                 verify size and SHA-256
//	                                 MarkStored ─▶ Dir.Remove(key) ─▶ Quota.Release
//	                                 on error: retry after capped backoff
//
//	replay ──Reader.ReadRange(seg)──▶ spool file if it exists, else Store.GetRange
//	         (ReadSpool and ReadStore are the two halves: on a cluster node
//	         the replay reader asks the owning node between them,
//	         cmd/xueliang/internal/peer)
//
// On-disk layout: data_dir/spool/<object key>, the same relative path as in
// the store (recording.SegmentKey); parents are created by Create and removed
// when empty by Remove.
//
// Invariant: a spool file is removed only after its row is marked stored,
// so a segment always has at least one complete copy, and Reader can fall
// back to the store when the spool file disappears between the index lookup
// and the open. An open spool file stays readable after removal.
//
// Concurrency: Enqueue never blocks (it takes a mutex and does a
// non-blocking channel send; when the queue is full the segment joins an
// overflow set, drained by workers after each attempt and by the periodic
// rescan). A segment is pending from Enqueue until it is stored; duplicate
// Enqueues and rescans of a pending segment are ignored, so one segment is
// never uploaded twice concurrently. Failures are retried with a timer
// (MinBackoff doubling up to MaxBackoff, jittered to [d/2, d]); a segment
// is never dropped: one whose spool file is corrupt, or lost along with the
// store copy, is retried at MaxBackoff forever and logged each time.
//
// Known SHA-256: the segmenter hashes each segment as it writes it and the
// index row carries the result, so a store that implements HashedFilePutter
// gets it with the file and the uploader hashes nothing: storage/s3 sends
// one PUT read in place from the file, carrying that hash as the signed
// header x-amz-checksum-sha256, and the server refuses a body that does not
// match (multipart above s3.Config.SinglePutLimit: parts read in place, the
// hash checked on the way before completing); storage/local links the file
// and checks it before committing. A refused file is retried like any
// failure and never marked stored. Without a known SHA-256 (or such a
// store) the file is linked or streamed and hashed here.
//
// Crash recovery: at start Run rescans the index for closed segments. A
// closed segment without a spool file whose object is in the store, whole
// (size, and SHA-256 when known), is marked stored without uploading.
// A spool file with no row at all (its CreateSegment never succeeded) is
// indexed before the uploader starts by segmenter.RecoverOrphans, and
// then found by the same scan.
//
// Size cap (Quota): the spool is bounded by QuotaConfig.MaxBytes (0:
// unlimited). Policy: footage already received is never deleted to make
// room; when the spool is full, new footage is refused. The Quota counts
// the bytes of the spool files (file contents, not disk blocks): NewQuota
// walks the directory, the segmenter reserves each init and fragment
// before appending it (segmenter.Config.Quota), and Dir.Remove — the
// uploader, reconciliation — releases a removed file's size when
// Dir.Quota is set. When a reservation does not fit, the spool is full
// and every camera's writer closes its segment at its last complete
// fragment (that segment is indexed, closed and uploaded as usual), then
// refuses media (counted per camera) until the uploader has brought the
// spool down to the low watermark (ResumeBytes, default 90 % of the cap);
// recording resumes with a new segment at the next keyframe. The first
// fragment of a segment is never refused (a segment always has one), so
// the cap can be exceeded by one fragment per camera. Counters for
// metrics: Quota.Stats (bytes, cap, full, episodes, refusals) and
// segmenter.Writer.Stats (refused frames/audio/bytes, pause episodes,
// paused). Wiring: create the Quota after segmenter.Recover, or credit it
// with Report.FreedBytes; set it as Dir.Quota before NewUploader copies
// the Dir. The accounting is reset by a restart, not persisted.
//
// Durability: Create fsyncs the parent directory of the new file. The
// uploader relies on the store's durability (local fsyncs; PutFile and
// PutFileSHA256 fsync the spool file before linking it).
package spool
