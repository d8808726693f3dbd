package index

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// AuditRecord is one entry of the audit log. Hash and PrevHash chain the
// entries (see cmd/xueliang/internal/audit).
type AuditRecord struct {
	ID     int64
	At     time.Time
	User   string
	Role   string
	Remote string
	Method string
	Path   string
	Action string
	Camera string
	// From and To are the time range of a replay or export (zero: none).
	From, To time.Time
	// Status is the HTTP status of the answer.
	Status   int
	Detail   string
	PrevHash string
	Hash     string
}

// AuditQuery selects audit entries; zero fields match everything.
type AuditQuery struct {
	User, Camera string
	// From and To bound At: From <= At < To.
	From, To time.Time
	// Limit caps the answer (newest first). It defaults to 100.
	Limit int
}

// AppendAudit appends rec to the audit log. Inside the write transaction
// it sets rec.ID to the next id and rec.PrevHash to the hash of the last
// entry ("" for the first), then calls seal, which must set rec.Hash. The
// single writer connection serialises appends, so the chain is linear.
func (db *DB) AppendAudit(ctx context.Context, rec AuditRecord, seal func(*AuditRecord)) (AuditRecord, error) {
	err := db.withTx(ctx, func(tx *sql.Tx) error {
		if db.dialect == dialectPostgres {
			// Other nodes append too: the chain needs one writer at a time.
			if _, err := tx.ExecContext(ctx, `LOCK TABLE audit IN SHARE ROW EXCLUSIVE MODE`); err != nil {
				return err
			}
		}
		var lastID int64
		var lastHash string
		err := tx.QueryRowContext(ctx, `SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1`).Scan(&lastID, &lastHash)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		rec.ID, rec.PrevHash = lastID+1, lastHash
		seal(&rec)
		_, err = tx.ExecContext(ctx, `INSERT INTO audit (id, at_ns, "user", role, remote, method, path, action, camera,
			range_from_ns, range_to_ns, status, detail, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			rec.ID, toNS(rec.At), rec.User, rec.Role, rec.Remote, rec.Method, rec.Path, rec.Action, rec.Camera,
			toNS(rec.From), toNS(rec.To), rec.Status, rec.Detail, rec.PrevHash, rec.Hash)
		return err
	})
	if err != nil {
		return AuditRecord{}, fmt.Errorf("append audit: %w", err)
	}
	return rec, nil
}

const auditCols = `id, at_ns, "user", role, remote, method, path, action, camera, range_from_ns, range_to_ns, status, detail, prev_hash, hash`

func scanAudit(sc scanner) (AuditRecord, error) {
	var a AuditRecord
	var at, from, to int64
	if err := sc.Scan(&a.ID, &at, &a.User, &a.Role, &a.Remote, &a.Method, &a.Path, &a.Action, &a.Camera,
		&from, &to, &a.Status, &a.Detail, &a.PrevHash, &a.Hash); err != nil {
		return AuditRecord{}, err
	}
	a.At = fromNS(at)
	if from != 0 {
		a.From = fromNS(from)
	}
	if to != 0 {
		a.To = fromNS(to)
	}
	return a, nil
}

// QueryAudit returns the entries matching q, newest first.
func (db *DB) QueryAudit(ctx context.Context, q AuditQuery) ([]AuditRecord, error) {
	if q.Limit <= 0 {
		q.Limit = 100
	}
	var where []string
	var args []any
	if q.User != "" {
		where, args = append(where, `"user" = ?`), append(args, q.User)
	}
	if q.Camera != "" {
		where, args = append(where, "camera = ?"), append(args, q.Camera)
	}
	if !q.From.IsZero() {
		where, args = append(where, "at_ns >= ?"), append(args, q.From.UnixNano())
	}
	if !q.To.IsZero() {
		where, args = append(where, "at_ns < ?"), append(args, q.To.UnixNano())
	}
	query := `SELECT ` + auditCols + ` FROM audit`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	query += ` ORDER BY id DESC LIMIT ?`
	args = append(args, q.Limit)
	out, err := queryAll(ctx, db.r, scanAudit, query, args...)
	if err != nil {
		return nil, fmt.Errorf("query audit: %w", err)
	}
	return out, nil
}

// ScanAudit calls fn with every audit entry in id order, stopping at the
// first error fn returns.
func (db *DB) ScanAudit(ctx context.Context, fn func(AuditRecord) error) error {
	rows, err := db.r.QueryContext(ctx, `SELECT `+auditCols+` FROM audit ORDER BY id`)
	if err != nil {
		return fmt.Errorf("scan audit: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		a, err := scanAudit(rows)
		if err != nil {
			return fmt.Errorf("scan audit: %w", err)
		}
		if err := fn(a); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("scan audit: %w", err)
	}
	return nil
}
