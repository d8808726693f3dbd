package index

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"xueliang/storage/recording"

	_ "modernc.org/sqlite" // registers driverName
)

// Sentinel errors; test with errors.Is.
var (
	// ErrNotFound is returned (wrapped) when a camera, segment or other row
	// does not exist. It is recording.ErrNotFound, so that consumers that
	// know only the recording types can test for it.
	ErrNotFound = recording.ErrNotFound
	// ErrSchemaTooNew is returned by Open for a database migrated by a newer
	// version of the program.
	ErrSchemaTooNew = errors.New("index schema is newer than this program")
)

// readerConns is the size of the read connection pool.
const readerConns = 4

// DB is the index. It is safe for concurrent use: writes are serialised on
// a single connection, reads use a small pool (see the package doc).
type DB struct {
	w *sql.DB // exactly one connection: every write goes through it
	r *sql.DB // query_only connections
	// locks holds the sessions of the singleton advisory locks
	// (PostgreSQL; nil on SQLite).
	locks *sql.DB
	log   *slog.Logger
	// dialect is the engine (see postgres.go for what differs).
	dialect dialect
	// now is the clock used by Timeline to end a window at the present.
	now func() time.Time
	// stmts are the hot write statements, prepared once on the writer's
	// single connection: the triggers that keep the coverage table make a
	// segments statement costly to prepare (≈0.3 ms), so it is done once.
	stmts map[string]*sql.Stmt
	// fc merges concurrent AddFragments calls into shared transactions.
	fc *committer

	closeOnce sync.Once
	closeErr  error
}

// Open opens (creating if needed) the SQLite index at path and migrates it
// to the current schema. A nil logger discards.
func Open(ctx context.Context, path string, logger *slog.Logger) (*DB, error) {
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	logger = logger.With("component", "index")
	if path == "" {
		return nil, errors.New("open index: empty path")
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("open index: %w", err)
		}
	}
	// SQLite creates a new database with the umask's mode (0644) and its
	// -wal and -shm files with the database's: create it 0600 first. An
	// existing file keeps its mode (an operator may have chosen it).
	if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
		if err := f.Close(); err != nil {
			return nil, fmt.Errorf("open index: %w", err)
		}
	} else if !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("open index: %w", err)
	}
	w, err := sql.Open(driverName, dsn(path, false))
	if err != nil {
		return nil, fmt.Errorf("open index %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	r, err := sql.Open(driverName, dsn(path, true))
	if err != nil {
		return nil, errors.Join(fmt.Errorf("open index %s: %w", path, err), w.Close())
	}
	r.SetMaxOpenConns(readerConns)
	r.SetMaxIdleConns(readerConns)
	return open(ctx, dialectSQLite, w, r, path, logger)
}

// open migrates through w (one connection), prepares the hot writes and
// returns the DB; it closes w and r on failure. where names the database
// in errors.
func open(ctx context.Context, d dialect, w, r *sql.DB, where string, logger *slog.Logger) (*DB, error) {
	if err := migrate(ctx, w, d, migrations, logger); err != nil {
		return nil, errors.Join(fmt.Errorf("open index %s: %w", where, err), w.Close(), r.Close())
	}
	stmts := make(map[string]*sql.Stmt, len(hotWrites))
	for _, q := range hotWrites {
		st, err := w.PrepareContext(ctx, q)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("open index %s: prepare: %w", where, err), w.Close(), r.Close())
		}
		stmts[q] = st
	}
	db := &DB{w: w, r: r, log: logger, dialect: d, now: time.Now, stmts: stmts, fc: newCommitter()}
	if err := db.Ping(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("open index %s: %w", where, err), db.Close())
	}
	return db, nil
}

// Close closes the database; safe to call twice. AddFragments calls still
// waiting are answered with an error (their rows may or may not be
// committed); a transaction of the group committer in progress is
// cancelled rather than waited for.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		db.fc.close()
		var errs []error
		for _, st := range db.stmts {
			errs = append(errs, st.Close())
		}
		if db.locks != nil {
			errs = append(errs, db.locks.Close())
		}
		db.closeErr = errors.Join(append(errs, db.r.Close(), db.w.Close())...)
	})
	return db.closeErr
}

// Ping checks that both the writer and the readers can reach the database.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.w.PingContext(ctx); err != nil {
		return fmt.Errorf("ping index: %w", err)
	}
	if err := db.r.PingContext(ctx); err != nil {
		return fmt.Errorf("ping index: %w", err)
	}
	return nil
}

// migrate brings the database to the last version in migs. Each migration
// runs in its own transaction together with its schema_migrations row; on
// PostgreSQL every such transaction first takes an advisory lock, so that
// nodes starting together migrate one after the other.
func migrate(ctx context.Context, w *sql.DB, d dialect, migs []migration, logger *slog.Logger) error {
	ddl := `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT    NOT NULL,
		applied_ns INTEGER NOT NULL
	)`
	if d == dialectPostgres {
		ddl = pgTypes(ddl)[0]
		ddl = strings.Replace(ddl, "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", "BIGINT PRIMARY KEY", 1)
	}
	if err := inTx(ctx, w, d, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, ddl)
		return err
	}); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	cur, err := schemaVersion(ctx, w)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if last := migs[len(migs)-1].version; cur > last {
		return fmt.Errorf("migrate: database at version %d, program knows %d: %w", cur, last, ErrSchemaTooNew)
	}
	for _, m := range migs {
		if m.version <= cur {
			continue
		}
		if err := applyMigration(ctx, w, d, m); err != nil {
			return fmt.Errorf("migrate to version %d (%s): %w", m.version, m.name, err)
		}
		logger.Info("index schema migrated", "version", m.version, "name", m.name, "dialect", d.String())
	}
	return nil
}

// inTx runs fn in a migration transaction on w: on PostgreSQL holding the
// migration advisory lock.
func inTx(ctx context.Context, w *sql.DB, d dialect, fn func(tx *sql.Tx) error) error {
	tx, err := w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if d == dialectPostgres {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(?)`, int64(migrationLockKey)); err != nil {
			return errors.Join(err, ignoreDone(tx.Rollback()))
		}
	}
	if err := fn(tx); err != nil {
		return errors.Join(err, ignoreDone(tx.Rollback()))
	}
	return tx.Commit()
}

func schemaVersion(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) (int, error) {
	var v int
	err := q.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v)
	return v, err
}

func applyMigration(ctx context.Context, w *sql.DB, d dialect, m migration) error {
	stmts := m.stmts
	if d == dialectPostgres {
		stmts = m.pgStmts
	}
	return inTx(ctx, w, d, func(tx *sql.Tx) error {
		// Another process may have migrated between our read and the lock.
		cur, err := schemaVersion(ctx, tx)
		if err != nil {
			return err
		}
		if cur >= m.version {
			return nil
		}
		for _, s := range stmts {
			if _, err := tx.ExecContext(ctx, s); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx,
			`INSERT INTO schema_migrations (version, name, applied_ns) VALUES (?, ?, ?)`,
			m.version, m.name, time.Now().UnixNano())
		return err
	})
}

func ignoreDone(err error) error {
	if errors.Is(err, sql.ErrTxDone) {
		return nil
	}
	return err
}

// txStmt returns the prepared statement q (one of hotWrites) for tx.
func (db *DB) txStmt(ctx context.Context, tx *sql.Tx, q string) *sql.Stmt {
	return tx.StmtContext(ctx, db.stmts[q])
}

// withTx runs fn in a write transaction, committing when fn returns nil.
func (db *DB) withTx(ctx context.Context, fn func(tx *sql.Tx) error) (err error) {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		return errors.Join(err, ignoreDone(tx.Rollback()))
	}
	return tx.Commit()
}

func toNS(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNS(ns int64) time.Time { return time.Unix(0, ns).UTC() }

// scanner is a row to scan: *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

// queryAll runs query on q and returns every row, scanned by scan.
func queryAll[T any](ctx context.Context, q *sql.DB, scan func(scanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
