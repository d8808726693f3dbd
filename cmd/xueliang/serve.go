package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"xueliang/cmd/xueliang/internal/api"
	"xueliang/cmd/xueliang/internal/config"
	"xueliang/cmd/xueliang/internal/evidence"
	"xueliang/cmd/xueliang/internal/metrics"
	"xueliang/cmd/xueliang/internal/replay"
	"xueliang/cmd/xueliang/internal/retention"
	"xueliang/index"
	"xueliang/ingest"
	"xueliang/ingest/probe"
	"xueliang/ingest/segmenter"
	"xueliang/storage"
	"xueliang/storage/local"
	"xueliang/storage/reconcile"
	"xueliang/storage/s3"
	"xueliang/storage/spool"
)

// serve wires the server: index → store → spool/uploader → recovery →
// pullers → replay → HTTP API, runs them until ctx ends, and shuts down in
// reverse order (HTTP, pullers — which close their segments —, uploader,
// then the index).
func serve(ctx context.Context, cfg config.Config, logger *slog.Logger) (err error) {
	db, err := index.Open(ctx, cfg.Index.Path, logger)
	if err != nil {
		return fmt.Errorf("open index: %w", err)
	}
	db.SetCommitWindow(cfg.Index.CommitWindow)
	defer func() { err = errors.Join(err, db.Close()) }()

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
	report, err := segmenter.Recover(ctx, db, spoolDir.Root, nil, logger)
	if err != nil {
		return fmt.Errorf("recover spool: %w", err)
	}
	logger.Info("spool recovered", "segments", report.Segments, "recovered", report.Recovered,
		"deleted", report.Deleted, "failed", report.Failed, "truncated_bytes", report.TruncatedBytes)

	quota, err := spool.NewQuota(spoolDir, spool.QuotaConfig{MaxBytes: spoolCap(cfg.Storage.SpoolMaxBytes, spoolDir.Root)})
	if err != nil {
		return fmt.Errorf("measure spool: %w", err)
	}
	spoolDir.Quota = quota // before NewUploader, which copies the Dir
	uploader := spool.NewUploader(spoolDir, store, idx, spool.UploaderConfig{Workers: cfg.Upload.Workers, MaxBackoff: cfg.Upload.MaxBackoff},
		logger)

	// The camera registry (config-file cameras plus those added through the
	// API) decides what is recorded; every change is applied live.
	cameraRegistry, err := openRegistry(ctx, cfg, db, logger)
	if err != nil {
		return err
	}
	cams, err := cameraRegistry.IngestConfigs(ctx)
	if err != nil {
		return fmt.Errorf("camera registry: %w", err)
	}
	manager := ingest.NewManager(ingest.Options{
		SpoolRoot:       spoolDir.Root,
		Index:           idx,
		OnClosed:        uploader.Enqueue,
		Quota:           quota,
		FsyncInterval:   cfg.Recording.FsyncInterval,
		StaggerSegments: cfg.Recording.StaggerSegments,
		Logger:          logger,
		Motion:          motionOptions(cfg, db),
		Events:          db, // camera-side (ONVIF metadata) events
	})
	manager.Update(cams)
	reg.MustRegister(metrics.NewMotionCollector(manager))
	reg.MustRegister(metrics.NewMetadataCollector(manager))
	cameraRegistry.OnChange = manager.Update
	reg.MustRegister(metrics.NewCameraCollector(manager, cameraRegistry.Township), metrics.NewUploaderCollector(uploader),
		metrics.NewSpoolCollector(metrics.DirUsage(spoolDir.Root, quota.Cap(), 0)), metrics.NewQuotaCollector(quota))

	// Retention: driven by the index, its policy (overrides included) read
	// at every pass; evidence locks exempt what they cover.
	retainer := retention.New(retention.Config{
		Index: db, Store: deleter, RemoveSpool: spoolDir.Remove,
		MaxAge: cfg.Retention.MaxAge, MaxBytes: cfg.Retention.MaxBytes, Interval: cfg.Retention.Interval,
		Registerer: reg, Logger: logger,
	})

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

	replayer := &replay.Replayer{
		Index:        db,
		Reader:       spool.Reader{Dir: spoolDir, Store: store},
		GapTolerance: cfg.Replay.GapTolerance,
		MaxWindow:    cfg.Replay.MaxWindow,
		Logger:       logger,
	}
	authSvc, metricsToken, err := newAuth(cfg, db, logger)
	if err != nil {
		return err
	}
	apiServer := &api.Server{
		Auth:             authSvc, // auth.go: every request but /healthz is authenticated
		MetricsToken:     metricsToken,
		Index:            db,
		Replayer:         replayer,
		GapTolerance:     cfg.Replay.GapTolerance,
		MaxReplayWindow:  cfg.Replay.MaxWindow,
		Logger:           logger.With("component", "api"),
		Metrics:          metrics.Handler(reg),
		Registerer:       reg,
		ReadyChecks:      []api.ReadyCheck{api.IndexCheck(db), api.StoreCheck(store)},
		Prober:           api.LimitProbes(api.ProberFunc(probe.Probe), 2),
		Cameras:          cameraRegistry,
		Pullers:          manager,
		Evidence:         evidenceSvc,
		Retention:        db,
		RetentionDefault: api.RetentionPolicy{MaxAge: cfg.Retention.MaxAge, MaxBytes: cfg.Retention.MaxBytes},
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	var pprofLn net.Listener
	if cfg.Debug.PprofListen != "" {
		if pprofLn, err = net.Listen("tcp", cfg.Debug.PprofListen); err != nil {
			ln.Close()
			return fmt.Errorf("debug.pprof_listen: %w", err)
		}
	}
	httpServer := &http.Server{
		Handler:           apiServer.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	logger.Info("server started", "listen", ln.Addr().String(), "cameras", len(cams), "data_dir", cfg.DataDir)

	// The uploader outlives the pullers so that segments they close while
	// stopping are still enqueued; whatever is left is picked up at the next
	// start (closed segments are rescanned from the index).
	upCtx, stopUploader := context.WithCancel(context.WithoutCancel(ctx))
	upDone := make(chan error, 1)
	go func() { upDone <- uploader.Run(upCtx) }()

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return manager.Run(gctx) })
	g.Go(func() error { return retainer.Run(gctx) })
	g.Go(func() error { return diskGuard.Run(gctx) })
	g.Go(func() error {
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
			Logger: logger}); err != nil && gctx.Err() == nil {
			logger.Error("reconcile failed", "err", err)
		}
		return nil
	})
	g.Go(func() error {
		if err := httpServer.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
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
	stopUploader()
	return errors.Join(err, <-upDone)
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
