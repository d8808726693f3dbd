// Package segmenter writes one camera's access units into fragmented-MP4
// segment files in the spool directory and indexes them, following the
// recording format contract in docs/ARCHITECTURE.md.
//
// Data flow:
//
//	ingest.Puller ──WriteVideo/WriteAudio──▶ Writer ──one write per fragment──▶ spool file
//	                                           │                                 <spool>/<storage.SegmentKey>
//	                                           │ ops (bounded queue, never blocks media)
//	                                           ▼
//	                                   index worker goroutine ──▶ Index (CreateSegment, AddFragments, FinishSegment)
//	                                           │                   fsync + close of the spool file
//	                                           └──▶ OnClosed(seg) (the uploader's Enqueue)
//
// File layout: ftyp+moov (mediacommon fmp4.Init) followed by moof+mdat pairs
// (fmp4.Part), mfhd sequence numbers from 1. Video is track 1 (timescale
// 90000), audio track 2 (AAC at its sample rate, or G.711 expanded to 16-bit
// big-endian LPCM).
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
// the same values from the file.
//
// Durability and fsync: the init and each fragment are appended with one
// write each. The index worker fsyncs the spool file at most every
// FsyncInterval (default 10 s) and always before FinishSegment, so a closed
// segment row always points at durable bytes. A crash loses at most what the
// kernel had not written back; Recover truncates every "recording" segment to
// its last complete fragment (the file is the source of truth), re-indexes
// it and closes it.
//
// Fragment buffer and memory (fragment.go, fragbuf_unix.go): each access
// unit is copied once, in AVCC form, into the camera's fragment buffer as it
// arrives (the NAL units may alias the depacketiser's buffers); a flush
// appends the audio samples, writes the moof and mdat headers into headroom
// kept in front of the media, hashes and writes that one contiguous slice,
// and reuses the buffer for the next fragment. The bytes are exactly those
// of mediacommon's fmp4.Part.Marshal. A fragment (about one GOP) must be
// held whole until its moof can be written in front of it, so a camera's
// floor is one fragment (≈1 MB for 2 s at 4 Mbit/s), plus a second one for
// up to a second after a segment cut while the closed segment waits for its
// late audio. The buffers live outside the Go heap (anonymous mmap on
// Unix), so they are not doubled by the GC's heap goal; they are freed
// when the session ends.
//
// Index back-pressure: index calls run on the worker goroutine. When the
// queue holds IndexQueueSize fragment batches, further batches are dropped
// and counted (Stats.IndexDropped); the rows are not lost, because the worker
// re-sends every fragment row of a segment before FinishSegment when any
// batch was dropped or failed (AddFragments is an idempotent upsert).
// Segment create/finish operations are never dropped. Each index call is
// retried a few times with backoff; an operation that still fails is logged
// and counted, and the spool file stays on disk.
//
// Spool cap (Config.Quota, nil = unlimited; *spool.Quota shared by every
// camera): footage already received is never deleted to make room; when
// the spool is full, new footage is refused. The init and every fragment
// are reserved before they are appended. When a reservation is refused the
// fragment being flushed is refused, the segment in progress ends at its
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
