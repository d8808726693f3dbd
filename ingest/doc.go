// Package ingest pulls RTSP streams from cameras and records them through
// ingest/segmenter.
//
// Data flow, one Puller per camera:
//
//	Manager.Update(cfgs) ──starts/stops──▶ Puller.Run (supervised loop)
//	                                          │ session: gortsplib Client
//	                                          │ DESCRIBE/SETUP/PLAY (tcp|udp)
//	RTP ──▶ depacketiser (video: ingest/rtpdepack, see depack.go; audio: rtpmpeg4audio/rtplpcm)
//	    ──▶ PacketPTS2 (unwrapped RTP clock, tracks synchronised)
//	    ──▶ h264/h265 DTSExtractor (video; waits for the first IDR/IRAP)
//	    ──▶ segmenter.Writer (fMP4 spool files + index rows)
//
// Clock: a session's wall clock is anchored once, at its first recorded
// video access unit: the RTCP sender report's NTP time of that packet when
// one is known (PacketNTP) and within Options.MaxClockSkew of the receive
// time, else the receive time (Options.Now; a refused camera clock sets
// Status.ClockUntrusted and counts ClockRejections). Later sender reports
// only log the camera-server clock offset. Each session starts a new
// segment.
//
// Supervision: a session ends on error, EOF or read timeout; the segment in
// progress is closed properly and the puller reconnects after a capped
// exponential backoff with full jitter (BackoffMin → BackoffMax, reset after
// a session that lasted BackoffResetAfter). A panic in one camera's session
// is recovered, logged and treated like an error: other cameras are not
// affected. Camera URLs may carry credentials; only redacted URLs are
// logged.
//
// Camera-side events (events.go): an ONVIF metadata track in the SDP
// (application, vnd.onvif.metadata) is set up too; its documents are
// reassembled and parsed (ingest/onvif) in the RTP callback, motion
// notifications become open/closed events queued (bounded, drops counted)
// to a writer goroutine that batches them into Options.Events. Bad metadata
// is counted and never affects recording.
//
// Motion (motion.go, substream.go; docs/motion.md): for a camera with
// CameraConfig.Motion and Options.Motion.Sink set, Run starts a motion
// worker: its own goroutine, decoder and detector, fed through a bounded
// queue by a non-blocking send (full → dropped, counted) — with the sub
// stream's every access unit (a separate video-only RTSP session,
// reconnecting on its own) when SubURL is set, else with the main
// session's keyframes. Completed minutes of per-second grids and closed
// intervals go to Options.Motion.Sink. A panic there restarts only the
// analyser.
//
// Concurrency: gortsplib calls the packet callbacks from its reader
// goroutine(s); the segmenter is safe for concurrent use and never blocks
// on the index. Status() may be called from any goroutine.
package ingest
