// Package recording owns the recording format: what every segment object
// is, what its index rows say about it, and the one parser that reads it
// back. The writer (ingest/segmenter), crash recovery, reconciliation
// (storage/reconcile), replay and the index all speak these types; the
// package imports nothing of the rest of xueliang.
//
// # Data flow
//
//	ingest/segmenter ──BuildInit, PutHeader──▶ spool file ──▶ object (storage.Store)
//	                 ──Segment, Fragment rows──▶ index (index maps its rows to these types)
//	recovery, reconcile ──ParseFile, FragmentRows, DescribeInit──▶ rows re-derived from bytes
//	replay ──ParseInit, ParseFragment──▶ samples of the fragments it serves
//
// # Segment objects
//
// One segment = one object = ftyp + moov (the init, also kept in the
// index row) followed by fragments. Key: SegmentKey,
//
//	<camera>/<YYYY>/<MM>/<DD>/<HH>/<YYYYMMDD>T<HHMMSS>.<nanoseconds>Z.mp4
//
// (UTC start, so that a camera-day or camera-hour is a prefix).
//
//   - Tracks: video is VideoTrackID (1), timescale VideoTimescale (90 kHz),
//     H.264 (avc1) or H.265 (hvc1). Audio, when present, is AudioTrackID
//     (2): AAC (mp4a, timescale = sample rate) or G.711 expanded to 16-bit
//     big-endian LPCM (ipcm, timescale 8000), because MP4 players do not
//     take A-law; it is lossless.
//   - A fragment is an optional free box (the unused part of the header
//     room a writer reserves before it knows the header's size) + moof +
//     mdat; its index row's Offset and Size cover all three, so the
//     fragments of a segment are contiguous and a run of them is one ranged
//     read. mfhd sequence numbers start at 1 in every segment. The moof has
//     one traf per track: tfhd with default-base-is-moof, tfdt version 1,
//     one trun version 1 (PutHeader writes exactly what mediacommon's
//     fmp4.Part.Marshal would).
//   - Each fragment holds about one GOP and starts with a video keyframe; a
//     longer GOP is split and the continuation fragments have Keyframe
//     false.
//   - A segment never spans a reconnect or a parameter-set change.
//   - Time: the first video sample of a segment has decode time 0 and
//     composition offset 0; later composition offsets are relative to it and
//     may be negative. A video sample is presented at Segment.Start +
//     (DTS+CTS)/90000; audio track time t is Segment.Start + t/rate.
//     Fragment Start/End are wall-clock presentation bounds by the rule of
//     FragmentBounds; Segment.End is the last complete fragment's End.
//
// # Parsing untrusted bytes
//
// ParseFile (a spool file or a downloaded object) and ParseFragment (one
// fragment read by its row's byte range) share ReadFragment, which bounds
// every size, count and offset, never panics and keeps every sample inside
// its mdat; both are fuzzed (FuzzParseFile, FuzzParseFragment). Errors
// about the bytes wrap ErrBadFragment. ParseInit accepts only the track
// layout above.
//
// # Other archive values
//
// CameraEvent (what a camera reports, e.g. ONVIF motion) and MotionChunk /
// MotionInterval (the motion detected at ingest) are the rows ingest writes
// next to the segments, defined here so that ingest and the index share
// them without depending on each other.
package recording
