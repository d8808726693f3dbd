// Package segmenter writes one camera's access units into fragmented-MP4
// segment files in the spool directory and indexes them, in the recording
// format that storage/recording defines (and whose init builder, fragment
// header writer and parser it uses).
//
// Files: segmenter.go (Writer, Config, sessions, Close), video.go (access
// units, fragment and segment cuts), audio.go, segment.go (opening, cutting
// and closing segments), flush.go (completing a fragment), stage.go (the
// write stage and preallocation), pause.go (the spool cap), fragment.go
// (the header reservation), queue.go (the index worker, Run), recover.go, orphans.go.
//
// Lifecycle: New starts nothing. Run is the index worker; the caller runs
// it (ingest.Puller does, in a goroutine of its own Run) and it returns once
// Close has been called and everything queued is written.
//
// Data flow:
//
//	ingest.Puller ──WriteVideo/WriteAudio──▶ Writer ──256 KiB writes, headers last──▶ spool file
//	                                           │                                 <spool>/<recording.SegmentKey>
//	                                           │ ops (bounded queue, never blocks media)
//	                                           ▼
//	                                   index worker (Run) ──▶ Index (CreateSegment, AddFragments, FinishSegment)
//	                                           │                   fsync + close of the spool file
//	                                           └──▶ OnClosed(seg) (the uploader's Enqueue)
//
// File layout (storage/recording): ftyp+moov (recording.BuildInit)
// followed by fragments, each a free box (the unused part of the header
// reservation, see below), a moof and an mdat (recording.PutHeader), mfhd
// sequence numbers from 1. Video is track 1 (timescale 90000), audio track 2
// (AAC at its sample rate, or G.711 expanded to 16-bit big-endian LPCM).
//
// Time: a session (one RTSP connection) is anchored once: Session.Anchor is
// the wall-clock time of video PTS Session.AnchorPTS. Every wall time is
// Anchor + (pts-AnchorPTS)/90000, so consecutive segments of a session are
// exactly contiguous. In a segment the first video sample has decode time 0
// and composition offset 0; later offsets are relative (trun v1).
//
// Fragments: one per GOP, flushed at the next keyframe or when adding a
// sample would make it span MaxFragmentDuration (continuation fragments have
// Keyframe=false). Fragment.Start is the keyframe's presentation time (for a
// continuation fragment: the previous fragment's End); End is the next
// keyframe's presentation time when the next fragment starts with one, else
// the latest presentation time + duration in the fragment. Recovery derives
// the same values from the file (recording.FragmentRows).
//
// Durability and fsync: the init is written first; access units are
// written (in AVCC form, staged in chunks) as they arrive, behind header
// room reserved at the fragment's offset, and when the fragment ends its
// audio is written behind the video and the reservation is filled with the
// free box, the moof and the mdat header (flush.go). The index worker
// fsyncs the spool file at most every FsyncInterval (default 10 s) and always before FinishSegment,
// so a closed segment row always points at durable bytes. A crash loses at
// most what the kernel had not written back and the fragment in progress,
// whose header room is still zeros; Recover truncates every "recording"
// segment to its last complete fragment (the file is the source of truth),
// re-indexes it and closes it. A spool file whose segment row was never
// created (CreateSegment failed for good: "segment not indexed, spool file
// left for recovery") is indexed from the file at the next start by
// RecoverOrphans (orphans.go), which runs after Recover and before recording.
//
// Memory: nothing of a fragment is held in memory but its sample table and
// its audio (a few KiB), so a camera does not hold a GOP of media (≈1 MB
// at 4 Mbit/s) as a buffer; the page cache holds what was written. Access
// units are put in AVCC form into a 256 KiB staging buffer per recording
// camera (outside the Go heap, freed when the session ends) and written in
// chunks of up to that size (stageSize: small writes cost the kernel more
// per byte). On Linux the file's blocks are allocated 1 MiB ahead of the
// writes (fallocate, FALLOC_FL_KEEP_SIZE: the size, and so what a crash
// leaves, is unchanged), which spares ext4 its per-page delayed-allocation
// bookkeeping; the index worker gives the rest back at close by truncating
// the file to its own size, and so does recovery.
//
// SHA-256: because the headers are written after the media they describe,
// the file is hashed once when the segment closes, by the index worker (off
// the media path), reading it back from the page cache; FinishSegment
// records the hash, and the uploader sends it to the store, which verifies
// the object against it (storage/spool).
//
// Index back-pressure: index calls run on the worker goroutine. When the
// queue holds IndexQueueSize fragment batches, further batches are dropped
// and counted (Stats.IndexDropped); the rows are not lost, because the worker
// re-sends every fragment row of a segment before FinishSegment when any
// batch was dropped or failed (AddFragments is an idempotent upsert).
// Segment create/finish operations are never dropped. Each index call is
// retried a few times with backoff while Run's ctx lasts, create and finish
// for IndexOutage (2 min) at least, so that an index outage such as a
// PostgreSQL restart loses no row (fragment batches meanwhile queue, and
// are dropped, counted and re-sent at finish when the queue is full); an
// operation that still fails is logged and counted, and the spool file
// stays on disk for start-up recovery.
//
// Spool cap (Config.Quota, nil = unlimited; *spool.Quota shared by every
// camera): footage already received is never deleted to make room; when
// the spool is full, new footage is refused. The init and every access
// unit are reserved before they are written (a fragment's header room with
// its first sample; its audio is admitted with its video, so a fragment
// whose video was admitted is never refused). When a reservation is refused
// the fragment in progress is refused and cut off the file, the segment in
// progress ends at its
// last written fragment and is closed as usual (FinishSegment, OnClosed:
// it is uploaded), and the writer pauses: every access unit is refused and
// counted (Stats.RefusedFrames/RefusedAudio/RefusedBytes) until the quota
// is no longer full (below its low watermark), then recording resumes with
// a new segment at the next keyframe. The session anchor is untouched, so
// the new segment's Start is the keyframe's true wall-clock time and the
// pause is a gap in the timeline. Exception: the first fragment of a
// segment is admitted whatever the cap (Quota.Add), so no segment is ever
// closed without a fragment; the cap can be exceeded by one fragment per
// camera. Each pause logs Warn "spool full, recording paused" once and
// each resumption Info "spool has room, recording resumed" (camera,
// spool_bytes, spool_cap); Stats.PauseEpisodes and Stats.Paused expose it.
// The pause outlives sessions. Recover reports the bytes it truncated or
// deleted (Report.FreedBytes) for a quota measured before it.
//
// Concurrency: Writer methods are safe for concurrent use (gortsplib calls
// the audio and video callbacks from different goroutines with UDP).
package segmenter
