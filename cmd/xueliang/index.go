package main

import (
	"context"
	"log/slog"

	"xueliang/cmd/xueliang/internal/config"
	"xueliang/index"
)

// openConfiguredIndex opens the configured index: PostgreSQL when
// index.postgres_url is set, else the SQLite file index.path.
func openConfiguredIndex(ctx context.Context, cfg config.Index, logger *slog.Logger) (*index.DB, error) {
	if cfg.PostgresURL != "" {
		return index.OpenPostgres(ctx, cfg.PostgresURL, logger)
	}
	return index.Open(ctx, cfg.Path, logger)
}
