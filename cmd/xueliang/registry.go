package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"xueliang/cmd/xueliang/internal/cameras"
	"xueliang/cmd/xueliang/internal/config"
	"xueliang/cmd/xueliang/internal/registry"
	"xueliang/index"
)

// openRegistry loads the credential key and returns the camera registry
// with the configuration file's cameras registered (source "config").
func openRegistry(ctx context.Context, cfg config.Config, db *index.DB, logger *slog.Logger) (*cameras.Service, error) {
	sealer, src, err := registry.LoadSealer(cfg.Secrets.KeyFile, os.LookupEnv, cfg.DefaultKeyFile())
	if err != nil {
		return nil, fmt.Errorf("camera credential key: %w", err)
	}
	switch src {
	case registry.KeyGenerated:
		logger.Warn("generated a new camera credential key; back it up with the index (without it stored camera passwords cannot be read)",
			"path", cfg.DefaultKeyFile(), "key_id", sealer.KeyID())
	default:
		logger.Info("camera credential key loaded", "source", string(src), "key_id", sealer.KeyID())
	}
	svc := &cameras.Service{
		Store:  db,
		Sealer: sealer,
		Policy: registry.XiayiCameras,
		Defaults: cameras.Defaults{
			SegmentDuration:     cfg.Recording.SegmentDuration,
			MaxFragmentDuration: cfg.Recording.MaxFragmentDuration,
			Transport:           cfg.Recording.Transport,
		},
		Logger: logger.With("component", "registry"),
	}
	conf := make([]cameras.ConfigCamera, 0, len(cfg.Cameras))
	for _, c := range cfg.Cameras {
		conf = append(conf, cameras.ConfigCamera{ID: c.ID, Name: c.Name, Township: c.Township, URL: c.URL,
			Transport: c.Transport, Disabled: c.Disabled, SubURL: c.SubURL, Motion: c.Motion})
	}
	if err := svc.SyncConfig(ctx, conf); err != nil {
		return nil, fmt.Errorf("register configured cameras: %w", err)
	}
	return svc, nil
}
