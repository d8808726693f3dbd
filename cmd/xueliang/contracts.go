package main

import (
	"xueliang/cmd/xueliang/internal/api"
	"xueliang/cmd/xueliang/internal/auth"
	"xueliang/cmd/xueliang/internal/cameras"
	"xueliang/cmd/xueliang/internal/compliance"
	"xueliang/cmd/xueliang/internal/evidence"
	"xueliang/cmd/xueliang/internal/metrics"
	"xueliang/cmd/xueliang/internal/peer"
	"xueliang/cmd/xueliang/internal/replay"
	"xueliang/cmd/xueliang/internal/retention"
	"xueliang/index"
	"xueliang/ingest"
	"xueliang/ingest/segmenter"
	"xueliang/storage/local"
	"xueliang/storage/reconcile"
	"xueliang/storage/s3"
	"xueliang/storage/spool"
)

// Compile-time checks that the components serve wires together satisfy the
// interfaces their consumers declare. They live here, in the wiring, so that
// no consumer imports a package only to name what implements its interface.
var (
	// The index, directly or through the metrics decorator.
	_ segmenter.Index         = (*index.DB)(nil)
	_ segmenter.Index         = (*metrics.Index)(nil)
	_ segmenter.RecoveryIndex = (*index.DB)(nil)
	_ spool.SegmentIndex      = (*index.DB)(nil)
	_ spool.SegmentIndex      = (*metrics.Index)(nil)
	_ reconcile.Index         = (*index.DB)(nil)
	_ replay.Index            = (*index.DB)(nil)
	_ ingest.EventSink        = (*index.DB)(nil)
	_ ingest.MotionSink       = (*index.DB)(nil)
	_ cameras.Store           = (*index.DB)(nil)
	_ auth.Store              = (*index.DB)(nil)
	_ api.Index               = (*index.DB)(nil)
	_ api.MotionIndex         = (*index.DB)(nil)
	_ metrics.IndexWriter     = (*index.DB)(nil)
	_ retention.Index         = (*index.DB)(nil)
	_ compliance.Index        = (*index.DB)(nil)
	_ api.ComplianceReporter  = (*compliance.Service)(nil)
	_ evidence.Index          = (*index.DB)(nil)
	_ api.RetentionIndex      = (*index.DB)(nil)
	_ evidence.Copier         = (*s3.Store)(nil)
	_ api.EvidenceLocker      = (*evidence.Service)(nil)
	_ peer.SegmentNodes       = (*index.DB)(nil)

	// The stores delete in batches.
	_ retention.KeyDeleter = (*local.Store)(nil)
	_ retention.KeyDeleter = (*s3.Store)(nil)

	// The spool.
	_ segmenter.Quota        = (*spool.Quota)(nil)
	_ metrics.QuotaSource    = (*spool.Quota)(nil)
	_ replay.SegmentReader   = spool.Reader{}
	_ replay.SegmentReader   = (*peer.Reader)(nil)
	_ metrics.UploaderSource = (*spool.Uploader)(nil)

	// The ingest manager.
	_ api.PullerStatus       = (*ingest.Manager)(nil)
	_ metrics.CameraSource   = (*ingest.Manager)(nil)
	_ metrics.MotionSource   = (*ingest.Manager)(nil)
	_ metrics.MetadataSource = (*ingest.Manager)(nil)

	// Services behind the API.
	_ api.CameraRegistry = (*cameras.Service)(nil)
	_ api.Auth           = (*auth.Service)(nil)
	_ api.Replayer       = (*replay.Replayer)(nil)
)
