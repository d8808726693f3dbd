package index

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// layoutMigrations: version 13, the web console's saved live-wall layouts
// (issue #20): one row per user and layout name, the layout itself an
// opaque JSON document the API validates (grid size, cameras per tile).
var layoutMigrations = []migration{
	{
		version: 13,
		name:    "saved console layouts",
		stmts:   layoutSchema,
		pgStmts: pgTypes(layoutSchema...),
	},
}

var layoutSchema = []string{
	`CREATE TABLE console_layouts (
				user_name  TEXT    NOT NULL,
				name       TEXT    NOT NULL,
				layout     TEXT    NOT NULL,
				updated_ns INTEGER NOT NULL,
				PRIMARY KEY (user_name, name)
			)`,
}

// Layout is one saved layout of a user.
type Layout struct {
	User, Name string
	// JSON is the layout document as the API stored it.
	JSON    string
	Updated time.Time
}

// Layouts lists user's saved layouts by name.
func (db *DB) Layouts(ctx context.Context, user string) ([]Layout, error) {
	out, err := queryAll(ctx, db.r, func(s scanner) (Layout, error) {
		var l Layout
		var ns int64
		err := s.Scan(&l.User, &l.Name, &l.JSON, &ns)
		l.Updated = time.Unix(0, ns).UTC()
		return l, err
	}, `SELECT user_name, name, layout, updated_ns FROM console_layouts WHERE user_name = ? ORDER BY name`, user)
	if err != nil {
		return nil, fmt.Errorf("list layouts of %s: %w", user, err)
	}
	return out, nil
}

// Layout returns one saved layout; ErrNotFound when user has none by that
// name.
func (db *DB) Layout(ctx context.Context, user, name string) (Layout, error) {
	l := Layout{User: user, Name: name}
	var ns int64
	err := db.r.QueryRowContext(ctx, `SELECT layout, updated_ns FROM console_layouts WHERE user_name = ? AND name = ?`, user, name).
		Scan(&l.JSON, &ns)
	if errors.Is(err, sql.ErrNoRows) {
		return Layout{}, fmt.Errorf("layout %q of %s: %w", name, user, ErrNotFound)
	}
	if err != nil {
		return Layout{}, fmt.Errorf("layout %q of %s: %w", name, user, err)
	}
	l.Updated = time.Unix(0, ns).UTC()
	return l, nil
}

// PutLayout creates or replaces l (its User and Name are the key);
// created reports whether no layout of that name existed.
func (db *DB) PutLayout(ctx context.Context, l Layout) (created bool, err error) {
	if l.User == "" || l.Name == "" {
		return false, fmt.Errorf("put layout: empty user or name")
	}
	err = db.withTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE console_layouts SET layout = ?, updated_ns = ? WHERE user_name = ? AND name = ?`,
			l.JSON, l.Updated.UnixNano(), l.User, l.Name)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n > 0 {
			return err
		}
		created = true
		_, err = tx.ExecContext(ctx, `INSERT INTO console_layouts (user_name, name, layout, updated_ns) VALUES (?, ?, ?, ?)`,
			l.User, l.Name, l.JSON, l.Updated.UnixNano())
		return err
	})
	if err != nil {
		return false, fmt.Errorf("put layout %q of %s: %w", l.Name, l.User, err)
	}
	return created, nil
}

// DeleteLayout removes one saved layout; ErrNotFound when there is none.
func (db *DB) DeleteLayout(ctx context.Context, user, name string) error {
	res, err := db.w.ExecContext(ctx, `DELETE FROM console_layouts WHERE user_name = ? AND name = ?`, user, name)
	if err != nil {
		return fmt.Errorf("delete layout %q of %s: %w", name, user, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return fmt.Errorf("layout %q of %s: %w", name, user, ErrNotFound)
	}
	return nil
}
