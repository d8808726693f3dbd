package index

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
)

// AuditReader reads the audit log of an index opened read-only: no
// migration, no write, no file created (`xueliang audit verify` may be run
// on a copy, or beside a running server).
type AuditReader struct {
	db *sql.DB
}

// OpenAuditReader opens the index at path read-only.
func OpenAuditReader(ctx context.Context, path string) (*AuditReader, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("open index %s: %w", path, err)
	}
	q := url.Values{}
	q.Set("mode", "ro")
	q.Add("_pragma", "busy_timeout("+itoa(busyTimeoutMS)+")")
	q.Add("_pragma", "query_only(1)")
	db, err := sql.Open(driverName, "file:"+escapePath(path)+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open index %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	if err := db.PingContext(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("open index %s read-only: %w", path, err), db.Close())
	}
	return &AuditReader{db: db}, nil
}

// ScanAudit calls fn for every entry in ID order (see DB.ScanAudit).
func (a *AuditReader) ScanAudit(ctx context.Context, fn func(AuditRecord) error) error {
	rows, err := a.db.QueryContext(ctx, `SELECT `+auditCols+` FROM audit ORDER BY id`)
	if err != nil {
		return fmt.Errorf("scan audit: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanAudit(rows)
		if err != nil {
			return fmt.Errorf("scan audit: %w", err)
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("scan audit: %w", err)
	}
	return nil
}

// Close closes the reader.
func (a *AuditReader) Close() error { return a.db.Close() }

// AuditHead returns the ID and hash of the newest audit entry (0, "" for
// an empty log).
func (db *DB) AuditHead(ctx context.Context) (id int64, hash string, err error) {
	err = db.r.QueryRowContext(ctx, `SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1`).Scan(&id, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, "", nil
	}
	if err != nil {
		return 0, "", fmt.Errorf("audit head: %w", err)
	}
	return id, hash, nil
}
