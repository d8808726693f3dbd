// Package export builds signed export packages: the footage of one camera
// in a time range as a zip that anyone can check without the server.
//
// Data flow (one job, Manager.Start → a goroutine, at most MaxConcurrent):
//
//	for each continuous span of [From, To):  (replay.Plan without SkipGaps stops at each gap)
//	    Replayer.PrepareMP4 + MP4.Write ──▶ <dir>/<id>.tmp/NN_<start>_<end>.mp4  (SHA-256 while writing)
//	    the holes before, between and after the spans ──▶ Manifest.Gaps
//	manifest.json (camera, GB/T 28181 ID, range, files, gaps, who/when, audit head, public key)
//	manifest.sig = base64(Ed25519(key, manifest.json bytes)), signing-key.pub
//	    ──▶ <dir>/<id>.zip (stored, fsynced, renamed into place) + <id>.json (the finished job)
//
// Verify checks a package (directory or zip): the signature over the exact
// manifest bytes, the manifest's key against the signing key, then size
// and SHA-256 of every listed file, and that nothing unlisted is present.
//
// Lifecycle: NewManager loads finished jobs (<id>.json) and removes the
// work directories of interrupted ones; Run sweeps packages older than
// Expiry and, when its ctx ends, cancels the running jobs and waits for
// them (so does Close). A cancelled or failed job leaves no files.
//
// The key (LoadOrCreateKey) is the base64 of an Ed25519 seed in a 0600
// file, created at first start. Auditing is the API's business: every
// export request and download goes through its audited guard.
package export
