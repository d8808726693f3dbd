package index

import (
	"database/sql"
	"io"
	"log/slog"
)

type sqlTx = sql.Tx

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func sqlOpenWriter(path string) (*sql.DB, error) {
	w, err := sql.Open(driverName, dsn(path, false))
	if err != nil {
		return nil, err
	}
	w.SetMaxOpenConns(1)
	return w, nil
}
