package main

import (
	"context"
	"errors"
	"fmt"
	"image"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"path/filepath"
	"syscall"
	"time"
	"xueliang/cmd/xueliang/internal/reencode"

	"golang.org/x/sync/errgroup"

	"xueliang/cmd/xueliang/internal/api"
	"xueliang/cmd/xueliang/internal/auth"
	"xueliang/cmd/xueliang/internal/cluster"
	"xueliang/cmd/xueliang/internal/compliance"
	"xueliang/cmd/xueliang/internal/config"
	"xueliang/cmd/xueliang/internal/evidence"
	"xueliang/cmd/xueliang/internal/export"
	"xueliang/cmd/xueliang/internal/metrics"
	"xueliang/cmd/xueliang/internal/peer"
	"xueliang/cmd/xueliang/internal/replay"
	"xueliang/cmd/xueliang/internal/retention"
	"xueliang/cmd/xueliang/internal/webui"
	"xueliang/index"
	"xueliang/ingest"
	"xueliang/ingest/decode"
	"xueliang/ingest/live"
	"xueliang/ingest/probe"
	"xueliang/ingest/segmenter"
	"xueliang/storage"
	"xueliang/storage/local"
	"xueliang/storage/reconcile"
	"xueliang/storage/recording"
	"xueliang/storage/s3"
	"xueliang/storage/spool"
)

// serve wires the server: index → store → spool/uploader → recovery →
// pullers → replay → HTTP API, runs them until ctx ends, and shuts down in
// reverse order (HTTP, pullers — which close their segments —, uploader,
// then the index).
func serve(ctx context.Context, cfg config.Config, logger *slog.Logger) (err error) {
	db, err := openConfiguredIndex(ctx, cfg.Index, logger)
	if err != nil {
		return fmt.Errorf("open index: %w", err)
	}
	db.SetCommitWindow(cfg.Index.CommitWindow)
	defer func() { err = errors.Join(err, db.Close()) }()

	// The audit chain's head is signed and written outside the index at
	// start, while it moves and at shutdown (audit/anchor.go); it stops
	// after everything that appends entries has stopped.
	anchorer, err := newAnchorer(cfg, db, logger)
	if err != nil {
		return err
	}
	if err := anchorer.Anchor(ctx); err != nil {
		return fmt.Errorf("audit anchor: %w", err)
	}
	anchorCtx, stopAnchorer := context.WithCancel(context.WithoutCancel(ctx))
	anchorDone := make(chan error, 1)
	go func() { anchorDone <- anchorer.Run(anchorCtx) }()
	defer func() {
		stopAnchorer()
		// The anchorer ends with context.Canceled: joined, it would make
		// a start-up error (open store, …) look like a clean stop.
		if aerr := <-anchorDone; !errors.Is(aerr, context.Canceled) {
			err = errors.Join(err, aerr)
		}
	}()

	store, err := openStore(ctx, cfg, logger)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	defer func() { err = errors.Join(err, store.Close()) }()

	reg := metrics.NewRegistry(version())
	deleter, ok := store.(retention.KeyDeleter)
	if !ok {
		return fmt.Errorf("open store: %T cannot delete in batches", store)
	}
	evidenceSvc := &evidence.Service{Index: db, Logger: logger}
	if c, ok := store.(evidence.Copier); ok {
		evidenceSvc.Copier = c
	}
	store = metrics.WrapStore(reg, store)
	idx := metrics.WrapIndex(reg, db)

	spoolDir, err := spool.NewDir(cfg.SpoolDir())
	if err != nil {
		return fmt.Errorf("open spool: %w", err)
	}
	if m, err := spool.MountOf(spoolDir.Root); err == nil && m.Discard() {
		// Every uploaded segment's file is deleted: with online discard each
		// deletion queues a discard in the journal commits the recorders'
		// fsyncs wait for (docs/operations.md, "The spool's disk").
		logger.Warn("spool file system mounted with online discard", "mount", m.String(),
			"advice", "mount it without discard and trim periodically (fstrim.timer)")
	}
	// Recovery closes the segments a crash left open; the uploader finds
	// them (and every other closed segment) in its first index scan.
	// A cluster node shares the index: it recovers and uploads only the
	// segments in its own spool (cluster.go).
	clustered := cfg.Cluster.Enabled
	var recoveryIdx segmenter.RecoveryIndex = db
	if clustered {
		recoveryIdx = &localRecovery{RecoveryIndex: db, fence: db, dir: spoolDir}
	}
	report, err := segmenter.Recover(ctx, recoveryIdx, spoolDir.Root, nil, logger)
	if err != nil {
		return fmt.Errorf("recover spool: %w", err)
	}
	logger.Info("spool recovered", "segments", report.Segments, "recovered", report.Recovered,
		"deleted", report.Deleted, "failed", report.Failed, "truncated_bytes", report.TruncatedBytes)
	// Spool files whose segment row was never written (the index refused
	// or failed the insert, a crash before its commit) are indexed from the
	// file, before any camera records; the uploader's first scan finds them.
	// A cluster node leaves them alone: a file whose rows the index
	// refused for a stale lease epoch (another node recorded the camera
	// meanwhile) must not be committed.
	var orphans segmenter.OrphanReport
	if clustered {
		logger.Info("spool orphan indexing skipped on a cluster node")
	} else if orphans, err = segmenter.RecoverOrphans(ctx, db, spoolDir.Root, nil, logger); err != nil {
		return fmt.Errorf("recover orphan spool files: %w", err)
	}
	logger.Info("spool orphans checked", "files", orphans.Files, "orphans", orphans.Orphans, "indexed", orphans.Indexed,
		"skipped", orphans.Skipped, "failed", orphans.Failed, "truncated_bytes", orphans.TruncatedBytes)
	metrics.RegisterOrphans(reg, metrics.OrphanCounts{Indexed: orphans.Indexed, Skipped: orphans.Skipped, Failed: orphans.Failed})

	quota, err := spool.NewQuota(spoolDir, spool.QuotaConfig{MaxBytes: spoolCap(cfg.Storage.SpoolMaxBytes, spoolDir.Root)})
	if err != nil {
		return fmt.Errorf("measure spool: %w", err)
	}
	spoolDir.Quota = quota // before NewUploader, which copies the Dir
	var uploadIdx spool.SegmentIndex = idx
	if clustered {
		uploadIdx = localUploads{SegmentIndex: idx, dir: spoolDir}
	}
	uploader := spool.NewUploader(spoolDir, store, uploadIdx, spool.UploaderConfig{Workers: cfg.Upload.Workers, MaxBackoff: cfg.Upload.MaxBackoff},
		logger)

	// Listen first: the camera network policy refuses the server's own
	// ports (camnet).
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer ln.Close() // Serve closes it too; this covers the returns before
	var pprofLn net.Listener
	if cfg.Debug.PprofListen != "" {
		if pprofLn, err = net.Listen("tcp", cfg.Debug.PprofListen); err != nil {
			return fmt.Errorf("debug.pprof_listen: %w", err)
		}
		defer pprofLn.Close()
	}
	connLimit := api.LimitListener(ln, cfg.HTTP.MaxConnections)
	reg.MustRegister(connLimit)
	camNets := cfg.CameraPolicy(listenPorts(ln, pprofLn)...)
	reg.MustRegister(metrics.NewCameraNetworkCollector(camNets))

	// The camera registry (config-file cameras plus those added through the
	// API) decides what is recorded; every change is applied live.
	cameraRegistry, err := openRegistry(ctx, cfg, db, logger)
	if err != nil {
		return err
	}
	cameraRegistry.Networks = camNets
	cams, err := cameraRegistry.IngestConfigs(ctx)
	if err != nil {
		return fmt.Errorf("camera registry: %w", err)
	}
	// Live view: the pullers publish to the hub while someone watches.
	liveHub := live.NewHub(live.HubConfig{Ring: cfg.Live.ViewerRing})
	var clusterMetrics *cluster.Metrics
	var fenced func(string, int64) segmenter.Index
	if clustered {
		clusterMetrics = cluster.NewMetrics(reg)
		fenced = func(_ string, epoch int64) segmenter.Index {
			return fencedIndex{db: db, epoch: epoch, refused: clusterMetrics.FencedWrites.Inc}
		}
	}
	manager := ingest.NewManager(ingest.Options{
		FencedIndex:     fenced,
		SpoolRoot:       spoolDir.Root,
		Index:           idx,
		OnClosed:        uploader.Enqueue,
		Quota:           quota,
		FsyncInterval:   cfg.Recording.FsyncInterval,
		StaggerSegments: cfg.Recording.StaggerSegments,
		MaxClockSkew:    cfg.Recording.MaxClockSkew,
		IndexOutage:     cfg.Recording.IndexOutage,
		Logger:          logger,
		Motion:          motionOptions(cfg, db),
		Events:          db, // camera-side (ONVIF metadata) events
		Live:            liveHub,
		DialControl:     camNets.Control,
	})
	var member *cluster.Member
	var cc *clusterCameras
	if clustered {
		// Only the cameras this node holds a lease on are recorded.
		cc = &clusterCameras{leases: db, update: manager.Update, reload: cameraRegistry.Apply,
			log: logger.With("component", "cluster"), kick: make(chan struct{}, 1)}
		cc.SetCameras(cams)
		cameraRegistry.OnChange = cc.SetCameras
		member = newMember(cfg.Cluster, db, clusterMetrics, cc.SetHeld, logger)
	} else {
		manager.Update(cams)
		cameraRegistry.OnChange = manager.Update
	}
	reg.MustRegister(metrics.NewMotionCollector(manager))
	reg.MustRegister(metrics.NewMetadataCollector(manager))
	reg.MustRegister(metrics.NewCameraCollector(manager, cameraRegistry.Township), metrics.NewUploaderCollector(uploader),
		metrics.NewSpoolCollector(metrics.DirUsage(spoolDir.Root, quota.Cap(), 0)), metrics.NewQuotaCollector(quota))

	// Retention: driven by the index, its policy (overrides included) read
	// at every pass; evidence locks exempt what they cover.
	retainer := retention.New(retention.Config{
		Index: db, Store: deleter, RemoveSpool: spoolDir.Remove,
		MaxAge: cfg.Retention.MaxAge, MaxBytes: cfg.Retention.MaxBytes, Interval: cfg.Retention.Interval,
		Registerer: reg, Logger: logger,
	})

	// Compliance: days of continuous archive against each camera's
	// retention target, from the index coverage (metric cached a minute).
	complianceSvc := compliance.New(compliance.Config{Index: db, MaxAge: cfg.Retention.MaxAge,
		GapTolerance: cfg.Replay.GapTolerance})
	reg.MustRegister(metrics.NewComplianceCollector(complianceSvc, logger))

	// The disk guard watches the spool, the index and (local store) the
	// objects' file systems; it purges only where the footage is.
	guardPaths := []string{spoolDir.Root, filepath.Dir(cfg.Index.Path)}
	if cfg.Storage.S3.Endpoint == "" {
		guardPaths = append(guardPaths, cfg.Storage.Local.Root)
	}
	diskGuard := retainer.NewGuard(retention.GuardConfig{
		Paths: guardPaths, Purge: cfg.Storage.S3.Endpoint == "",
		MinFreeBytes: cfg.Retention.MinFreeBytes, ReserveBytes: cfg.Retention.ReserveBytes,
		CheckInterval: cfg.Retention.CheckInterval, Ingested: quota.Admitted, Stop: quota.SetStopped,
	}, reg)

	reencoder := &reencode.Reencoder{}
	reg.MustRegister(metrics.NewReencodeCollector(reencoder))
	// A cluster node reads the footage still in another node's spool from
	// that node (cluster.secret_file; cluster.go).
	var segReader replay.SegmentReader = spool.Reader{Dir: spoolDir, Store: store}
	var internalHandler http.Handler
	if clustered {
		if segReader, internalHandler, err = clusterSpool(cfg.Cluster, db, spool.Reader{Dir: spoolDir, Store: store}, reg, logger); err != nil {
			return err
		}
	}
	replayer := &replay.Replayer{
		Index:        db,
		Reader:       segReader,
		GapTolerance: cfg.Replay.GapTolerance,
		MaxWindow:    cfg.Replay.MaxWindow,
		Logger:       logger,
		Reencoder:    reencoder,
	}
	authSvc, metricsToken, err := newAuth(cfg, db, logger)
	if err != nil {
		return err
	}
	exportKey, err := export.LoadOrCreateKey(cfg.Export.KeyFile)
	if err != nil {
		return err
	}
	exports, err := export.NewManager(export.Config{
		Dir: cfg.Export.Dir, Key: exportKey, Replayer: replayer, Index: db,
		MaxConcurrent: cfg.Export.MaxConcurrent, Expiry: cfg.Export.Expiry, MaxWindow: cfg.Replay.MaxWindow,
		Server: "xueliang " + version(), Logger: logger, Registerer: reg,
	})
	if err != nil {
		return err
	}
	defer exports.Close()
	logger.Info("export signing key", "public_key", exports.PublicKey(), "key_file", cfg.Export.KeyFile)
	apiServer := &api.Server{
		Auth:            authSvc, // auth.go: every request but /healthz is authenticated
		MetricsToken:    metricsToken,
		Index:           db,
		Replayer:        replayer,
		GapTolerance:    cfg.Replay.GapTolerance,
		MaxReplayWindow: cfg.Replay.MaxWindow,
		Logger:          logger.With("component", "api"),
		Metrics:         metrics.Handler(reg),
		Registerer:      reg,
		ReadyChecks:     []api.ReadyCheck{api.IndexCheck(db), api.StoreCheck(store)},
		Prober:          api.LimitProbes(api.ProberFunc(probe.Probe), 2),
		Cameras:         cameraRegistry,
		Pullers:         manager,
		Exports:         exports,
		Live:            liveHub,
		LiveOrigins:     cfg.Live.AllowedOrigins,
		TicketTTL:       cfg.Live.TicketTTL,
		DecodeKeyframe:  decodeKeyframe,
		CameraNetworks:  camNets,
		Limits: api.Limits{ReplayPerUser: cfg.HTTP.ReplayPerUser, MotionPerUser: cfg.HTTP.MotionSearchPerUser,
			ReplayDeadline: cfg.HTTP.ReplayDeadline, MotionDeadline: cfg.HTTP.MotionSearchDeadline, WriteStall: cfg.HTTP.WriteStall},
		Evidence:         evidenceSvc,
		Retention:        db,
		RetentionDefault: api.RetentionPolicy{MaxAge: cfg.Retention.MaxAge, MaxBytes: cfg.Retention.MaxBytes},
		Compliance:       complianceSvc,
		Layouts:          db,
		AuditVerifier:    auditVerifier{cfg: cfg, db: db},
	}
	if clustered {
		apiServer.Nodes = db
	}
	// The web console (webui) is served at / and /assets/; the rest is the API.
	handler := webui.Mount(webui.Handler(webui.Files()), apiServer.Handler())
	if internalHandler != nil {
		// Node-to-node endpoints (/internal/), outside the operator API
		// and its authentication: signed with the cluster secret.
		handler = peer.Mount(internalHandler, handler)
	}
	httpServer := newHTTPServer(cfg.HTTP, handler, logger)
	// RTSP restream of the live view (live.rtsp_listen; off when empty).
	var rtspServer *api.RTSPServer
	if cfg.Live.RTSPListen != "" {
		rtspServer = apiServer.NewRTSP(cfg.Live.RTSPListen)
		if err := rtspServer.Start(); err != nil {
			return err
		}
		logger.Info("rtsp restream started", "listen", rtspServer.Addr())
	}
	logger.Info("server started", "listen", ln.Addr().String(), "cameras", len(cams), "data_dir", cfg.DataDir)

	// The uploader outlives the pullers so that segments they close while
	// stopping are still enqueued; whatever is left is picked up at the next
	// start (closed segments are rescanned from the index).
	upCtx, stopUploader := context.WithCancel(context.WithoutCancel(ctx))
	upDone := make(chan error, 1)
	go func() { upDone <- uploader.Run(upCtx) }()

	// The node's leases outlive the pullers, so that the segments they
	// close while stopping are written under the lease; then they are
	// released for the other nodes.
	memberDone := make(chan error, 1)
	stopMember := func() {}
	if member != nil {
		var mctx context.Context
		mctx, stopMember = context.WithCancel(context.WithoutCancel(ctx))
		go func() { memberDone <- member.Run(mctx) }()
	} else {
		memberDone <- nil
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return manager.Run(gctx) })
	if rtspServer != nil {
		g.Go(func() error { return rtspServer.Run(gctx) })
	}
	g.Go(func() error { return exports.Run(gctx) })
	if cc != nil {
		g.Go(func() error { return cc.Run(gctx) })
	}
	// On a cluster, retention and the reconciliation sweep run on one node
	// at a time (cluster.Singleton); the disk guard watches each node's
	// own disks.
	singleton := func(name string, work func(context.Context) error) func() error {
		if !clustered {
			return func() error { return work(gctx) }
		}
		s := &cluster.Singleton{Locker: db, Name: name, Work: work, Logger: logger, Leader: clusterMetrics.Leader(name)}
		return func() error { return s.Run(gctx) }
	}
	g.Go(singleton("retention", retainer.Run))
	g.Go(func() error { return diskGuard.Run(gctx) })
	g.Go(singleton("reconcile", func(gctx context.Context) error {
		// Index ↔ store reconciliation runs beside recording and uploads; a
		// failure is reported, never fatal.
		// Every camera with an index row, registered or not (footage of a
		// removed camera is kept).
		all, err := db.Cameras(gctx)
		if err != nil {
			logger.Error("reconcile failed", "err", err)
			return nil
		}
		ids := make([]string, 0, len(all))
		for _, c := range all {
			ids = append(ids, c.ID)
		}
		if _, err := reconcile.Run(gctx, reconcile.Config{Index: db, Store: store, Spool: spoolDir, Cameras: ids,
			Logger: logger, Audit: reconcileAudit(authSvc)}); err != nil && gctx.Err() == nil {
			logger.Error("reconcile failed", "err", err)
		}
		return nil
	}))
	g.Go(func() error {
		if err := httpServer.Serve(connLimit); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(gctx), 5*time.Second)
		defer cancel()
		return httpServer.Shutdown(shutdownCtx)
	})
	if pprofLn != nil {
		servePprof(gctx, g, pprofLn, logger)
	}
	err = g.Wait()
	stopMember()
	err = errors.Join(err, <-memberDone)
	stopUploader()
	return errors.Join(err, <-upDone)
}

// decodeKeyframe decodes one keyframe with libavcodec (live snapshots).
func decodeKeyframe(codec recording.VideoCodec, au [][]byte) (image.Image, error) {
	d, err := decode.New(codec)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	f, err := d.DecodeIntra(au)
	if err != nil {
		return nil, err
	}
	if f == nil {
		return nil, errors.New("keyframe decoded to no picture")
	}
	return f.Image(), nil
}

// maxHeaderBytes bounds a request's header block (net/http's default is
// 1 MiB): a legitimate client sends a bearer token and a few headers.
const maxHeaderBytes = 16 << 10

// reconcileAudit records reconciliation's changes to the index (a row
// marked lost, an orphan object imported) in the audit log, as the user
// "system".
func reconcileAudit(svc *auth.Service) func(context.Context, reconcile.Finding) error {
	return func(ctx context.Context, f reconcile.Finding) error {
		return svc.AppendAudit(ctx, reconcileRecord(time.Now(), f))
	}
}

// reconcileRecord is the audit entry of a reconciliation finding.
func reconcileRecord(now time.Time, f reconcile.Finding) index.AuditRecord {
	return index.AuditRecord{
		At: now.UTC(), User: "system", Method: "RECONCILE", Path: "reconcile", Action: "reconcile." + string(f.Kind),
		Camera: f.Camera, From: f.Start.UTC(), To: f.End.UTC(), Status: http.StatusOK, Detail: "object " + f.Key,
	}
}

// newHTTPServer is the API's http.Server. Larger header blocks than
// maxHeaderBytes are answered 431 before any handler, audit or
// authentication runs. It has no WriteTimeout: that would cut replays and
// live views, which have their own deadline and write-stall bound
// (api.Limits).
func newHTTPServer(c config.HTTP, h http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       c.ReadTimeout,
		IdleTimeout:       c.IdleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// listenPorts are the TCP ports of the server's listeners (nil ones
// skipped).
func listenPorts(lns ...net.Listener) []uint16 {
	var out []uint16
	for _, ln := range lns {
		if ln == nil {
			continue
		}
		if a, ok := ln.Addr().(*net.TCPAddr); ok {
			out = append(out, uint16(a.Port))
		}
	}
	return out
}

// spoolCap resolves storage.spool_max_bytes: -1 no cap, 0 a quarter of
// the spool's file system (no cap when it cannot be measured).
func spoolCap(v int64, root string) int64 {
	switch {
	case v < 0:
		return 0
	case v > 0:
		return v
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(root, &st); err != nil {
		return 0
	}
	return int64(st.Blocks) * int64(st.Bsize) / 4
}

// openStore opens the S3 backend when storage.s3.endpoint is set, the local
// disk otherwise.
func openStore(ctx context.Context, cfg config.Config, logger *slog.Logger) (storage.Store, error) {
	if cfg.Storage.S3.Endpoint == "" {
		return local.New(cfg.Storage.Local.Root)
	}
	access, secret, err := cfg.S3Credentials()
	if err != nil {
		return nil, err
	}
	c := cfg.Storage.S3
	st, err := s3.New(ctx, s3.Config{
		Endpoint: c.Endpoint, Bucket: c.Bucket, EvidenceBucket: c.EvidenceBucket, AccessKey: access, SecretKey: secret,
		Secure: c.Secure, CAFile: c.CAFile, Region: c.Region,
	}, logger)
	if err != nil {
		return nil, err
	}
	logger.Info("object store", "backend", "s3", "endpoint", c.Endpoint, "bucket", c.Bucket)
	return st, nil
}

// servePprof serves net/http/pprof on ln (debug.pprof_listen, a validated
// loopback address) until ctx ends.
func servePprof(ctx context.Context, g *errgroup.Group, ln net.Listener, logger *slog.Logger) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	logger.Warn("pprof debug endpoint enabled", "listen", ln.Addr().String())
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("pprof http: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-ctx.Done()
		return srv.Close()
	})
}
