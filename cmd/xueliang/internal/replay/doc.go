// Package replay builds a frame-accurate fragmented MP4 for a time window
// of one camera's recording, from the index (which segments and fragments)
// and ranged reads of the segment objects (spool or store).
//
// # Data flow
//
//	Request{Camera, Start, End, SkipGaps}
//	   │ Plan: index only — SegmentsInRange, Fragments (walking back to the
//	   │ keyframe fragment at or before Start); gaps, layout changes
//	   ▼
//	*Plan{Start, End, Gaps, Stop}     ← the HTTP layer sets headers / 404s here
//	   │ Write: one ReadRange per contiguous run of fragments per segment,
//	   │ one parsed moof+mdat at a time, one output moof+mdat per input one
//	   ▼
//	ftyp+moov (first segment's tracks, video edts/elst) │ moof+mdat │ moof+mdat …
//
// Nothing is written until the first GOP (the keyframe fragment through the
// fragment containing Start) has been read and parsed; after that the
// response is streamed fragment by fragment and memory stays at about one
// fragment.
//
// # Output timeline
//
// Output presentation time 0 is the start frame: the video sample whose
// presentation interval contains Plan.Start (the latest presentation time
// <= Start). Its recorded wall-clock time is at most one frame before
// Plan.Start. The samples from the preceding keyframe up to it are written
// (the decoder needs them) and hidden by an edit list on the video track:
// one entry, media_time = the pre-roll length (plus the composition shift
// below), segment_duration = Plan.Duration in the movie timescale.
// Audio has no edit list: its samples before time 0 are dropped and the
// rest are placed at their wall-clock offset from the start frame, so A/V
// stay aligned. Each segment is placed on the output timeline by its
// wall-clock start (minus the gaps skipped so far), so presentation follows
// the wall clock across segment boundaries; holes up to GapTolerance stay as
// they are. Video decode times are kept continuous separately (a segment's
// first sample is decoded right after the last one written) and the
// difference goes into the composition offsets. Joining by decode time
// alone would be wrong: at the start of a session mediacommon's DTS
// extractor ramps up (decode times 0, 90, 180, … ticks), so that segment's
// decode times end up to two frames before its presentation end, and the
// next keyframe would be shown two frames early, on top of the previous
// frames. If the wall-clock placement would present a sample before it is
// decoded (overlapping segments after a clock step), the segment is moved
// later by the difference.
//
// The output ends at the last video sample (in decode order) presented
// before Plan.End; without B-frames that sample's duration is shortened to
// end exactly at Plan.End. With B-frames, the B-frames before the end can
// need a reference frame presented after it, and a player shows every frame
// it decodes (ffmpeg ignores the edit list's duration in fragmented MP4), so
// the output ends at the nearer of the two decode-order cuts that leave no
// hole in presentation: the longer one runs past the end, the shorter one
// stops before the last mini-GOP. With two B-frames the last frame shown is
// then within one frame of the frame at the end.
//
// Composition offsets: the recorder writes them relative to the segment's
// first sample, so B-frames have negative offsets (trun version 1). ffmpeg
// 5.1's mov demuxer then adds the most negative offset it has seen to every
// pts of a fragmented track (its dts_shift), which moved the first pts >= 0
// one frame early in our tests. The output therefore adds ctsShift = -(most
// negative offset of the first GOP) to every offset and to the edit list
// media_time, which keeps offsets non-negative and presentation unchanged.
// A later GOP with a more negative offset is logged.
//
// # Why an edit list (evidence, ffmpeg/ffprobe 5.1)
//
// A replay of 1.5 s–4.5 s over a 25 fps GOP-25 recording (keyframe at
// 1.0 s, start frame = frame 37 at 1.48 s), judged with ffprobe
// -show_frames and decoded-frame checksums (showinfo) against the source:
//
//   - edts/elst, media_time = pre-roll: ffmpeg applies the edit list to a
//     fragmented track as a timestamp shift (tfdt − media_time); it neither
//     drops nor flags the pre-roll. The 12 pre-roll frames decode cleanly
//     with pts −0.48 … −0.04 s and frame 37 is the first frame with
//     pts >= 0, at exactly 0. `ffmpeg -v error -i out.mp4 -f null -` is
//     silent; stream start_time is −0.48 s, audio starts at +0.013 s.
//   - zero-duration pre-roll samples, no edit list (what mediamtx's
//     playback muxer does): all 12 pre-roll frames and the start frame come
//     out with pts 0, so "the first frame with pts >= 0" is the keyframe,
//     12 frames early, and players that show every frame flash the pre-roll
//     at time 0. Rejected.
//
// (For non-fragmented files ffmpeg's mov demuxer instead flags the pre-roll
// packets as discardable so the decoder drops them — from its source, not
// tested here; for fMP4 the pre-roll frames are decoded and returned with
// negative timestamps, as measured above.)
//
// Players (not verified here, no Chromium/VLC in the test environment):
// Chrome's <video> demuxes progressive MP4 with FFmpeg, so it sees the same
// negative timestamps; its renderer starts at time 0 and drops video frames
// that end before it, so the start frame is the first shown (A/V start at
// 0). ffplay plays from the stream start_time: with audio as master clock
// the pre-roll frames are late and dropped; a video-only file may show them
// for the pre-roll duration. VLC's MP4 demuxer honours elst in regular
// files; whether it applies it in fragmented mode is not known to us — if
// it does not, playback starts up to one GOP early with the timeline
// shifted by the pre-roll.
//
// # Segment boundaries and parameter sets
//
// The first segment's init defines the output tracks. A later segment with
// other SPS/PPS (or VPS) but the same track layout continues in the same
// response: its parameter sets are written in-band before every keyframe,
// and once that has happened every later keyframe carries its segment's
// sets (the decoder keeps the last ones it saw). The sample entry stays
// avc1/hvc1; ffmpeg decodes the change (tested: 320x240 → 160x120). A
// different layout (codec, timescale, audio config, audio appearing or
// disappearing) ends the plan there with Stop = StopLayoutChange.
//
// # Gaps
//
// A gap is next.Start − prev.End > GapTolerance. SkipGaps=false ends the
// output at the first gap (Stop = StopGap); SkipGaps=true cuts it out of the
// output timeline. Plan.Gaps lists them either way; the HTTP layer reports
// them to the client.
//
// # Caveats
//
//   - Overlapping segments (clock step between sessions): the later segment
//     is played from its keyframe fragment at or before the earlier one's
//     end, so up to a GOP may be shown twice.
//   - A later segment whose first fragment does not start with a keyframe
//     (contract violation) is passed through and will show decode errors.
//   - Recorded fragment bytes are untrusted: parseFragment bounds every
//     size and offset and is fuzzed (FuzzParseFragment).
package replay
