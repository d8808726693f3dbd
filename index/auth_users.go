package index

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// authMigrations: users, tokens, audit log (version 5).
//
// The audit table is append-only: triggers abort every UPDATE and DELETE
// (PostgreSQL: the same with a plpgsql trigger function, or REVOKE UPDATE,
// DELETE from the server's role). Its rows form a hash chain computed by
// cmd/xueliang/internal/audit; AppendAudit serialises appends on the single
// writer connection so the chain is linear.
var authMigrations = []migration{
	{
		version: 5,
		name:    "users, tokens, audit log",
		stmts:   authSchema,
		pgStmts: authSchemaPG(),
	},
}

// authSchema is migration 5 for SQLite.
var authSchema = []string{
	`CREATE TABLE users (
				name          TEXT    PRIMARY KEY,
				role          TEXT    NOT NULL,
				townships     TEXT    NOT NULL DEFAULT '',
				password_hash TEXT    NOT NULL,
				disabled      INTEGER NOT NULL DEFAULT 0,
				created_ns    INTEGER NOT NULL
			)`,
	`CREATE TABLE tokens (
				hash         TEXT    PRIMARY KEY,
				user         TEXT    NOT NULL REFERENCES users (name) ON DELETE CASCADE,
				kind         TEXT    NOT NULL,
				name         TEXT    NOT NULL DEFAULT '',
				created_ns   INTEGER NOT NULL,
				expires_ns   INTEGER NOT NULL DEFAULT 0,
				last_used_ns INTEGER NOT NULL DEFAULT 0
			)`,
	`CREATE INDEX tokens_user ON tokens (user)`,
	`CREATE TABLE audit (
				id            INTEGER PRIMARY KEY,
				at_ns         INTEGER NOT NULL,
				user          TEXT    NOT NULL,
				role          TEXT    NOT NULL,
				remote        TEXT    NOT NULL,
				method        TEXT    NOT NULL,
				path          TEXT    NOT NULL,
				action        TEXT    NOT NULL,
				camera        TEXT    NOT NULL,
				range_from_ns INTEGER NOT NULL,
				range_to_ns   INTEGER NOT NULL,
				status        INTEGER NOT NULL,
				detail        TEXT    NOT NULL,
				prev_hash     TEXT    NOT NULL,
				hash          TEXT    NOT NULL
			)`,
	`CREATE INDEX audit_user_at ON audit (user, at_ns)`,
	`CREATE INDEX audit_camera_at ON audit (camera, at_ns)`,
	`CREATE INDEX audit_at ON audit (at_ns)`,
	`CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
			BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END`,
	`CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
			BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END`,
}

// authSchemaPG is migration 5 for PostgreSQL: the tables through pgTypes
// with the user column quoted (a reserved word there), the append-only
// triggers as one plpgsql function.
func authSchemaPG() []string {
	var out []string
	for _, s := range authSchema {
		if strings.HasPrefix(s, "CREATE TRIGGER") {
			continue
		}
		out = append(out, reUserColumn.ReplaceAllString(pgTypes(s)[0], `"user"`))
	}
	return append(out,
		`CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			RAISE EXCEPTION 'audit log is append-only';
		END
		$$`,
		`CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit FOR EACH ROW EXECUTE FUNCTION audit_append_only()`,
		`CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit FOR EACH ROW EXECUTE FUNCTION audit_append_only()`)
}

var reUserColumn = regexp.MustCompile(`\buser\b`)

// User is a person or tool that may call the API.
type User struct {
	Name string
	// Role is admin, installer, operator or auditor.
	Role string
	// Townships limits the user to cameras of these townships (empty: all).
	Townships []string
	// PasswordHash is an encoded argon2id hash (never the password).
	PasswordHash string
	Disabled     bool
	Created      time.Time
}

// Token is a session or API token, stored only as the SHA-256 of its secret.
type Token struct {
	// Hash is the lowercase hex SHA-256 of the token.
	Hash string
	User string
	// Kind is "session" or "api".
	Kind string
	// Name labels an API token ("backup script").
	Name     string
	Created  time.Time
	Expires  time.Time // zero: never
	LastUsed time.Time // zero: never
}

// ErrUserExists is returned (wrapped) when creating a user whose name is taken.
var ErrUserExists = errors.New("user already exists")

// CreateUser inserts u; ErrUserExists when the name is taken.
func (db *DB) CreateUser(ctx context.Context, u User) error {
	_, err := db.w.ExecContext(ctx,
		`INSERT INTO users (name, role, townships, password_hash, disabled, created_ns) VALUES (?, ?, ?, ?, ?, ?)`,
		u.Name, u.Role, strings.Join(u.Townships, ","), u.PasswordHash, authBool(u.Disabled), toNS(u.Created))
	if err != nil {
		if isUniqueViolation(err) {
			return fmt.Errorf("create user %s: %w", u.Name, ErrUserExists)
		}
		return fmt.Errorf("create user %s: %w", u.Name, err)
	}
	return nil
}

// UpdateUser replaces role, townships, password hash and disabled of an
// existing user; ErrNotFound when there is none.
func (db *DB) UpdateUser(ctx context.Context, u User) error {
	res, err := db.w.ExecContext(ctx,
		`UPDATE users SET role = ?, townships = ?, password_hash = ?, disabled = ? WHERE name = ?`,
		u.Role, strings.Join(u.Townships, ","), u.PasswordHash, authBool(u.Disabled), u.Name)
	if err != nil {
		return fmt.Errorf("update user %s: %w", u.Name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("update user %s: %w", u.Name, ErrNotFound)
	}
	return nil
}

// DeleteUser deletes a user and its tokens; ErrNotFound when there is none.
func (db *DB) DeleteUser(ctx context.Context, name string) error {
	return db.withTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM users WHERE name = ?`, name)
		if err != nil {
			return fmt.Errorf("delete user %s: %w", name, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("delete user %s: %w", name, ErrNotFound)
		}
		// Their saved console layouts go too (layouts.go): a user created
		// later with the same name starts without them.
		if _, err := tx.ExecContext(ctx, `DELETE FROM console_layouts WHERE user_name = ?`, name); err != nil {
			return fmt.Errorf("delete user %s: layouts: %w", name, err)
		}
		return nil
	})
}

const userCols = `name, role, townships, password_hash, disabled, created_ns`

func scanUser(sc scanner) (User, error) {
	var u User
	var towns string
	var disabled int
	var created int64
	if err := sc.Scan(&u.Name, &u.Role, &towns, &u.PasswordHash, &disabled, &created); err != nil {
		return User{}, err
	}
	if towns != "" {
		u.Townships = strings.Split(towns, ",")
	}
	u.Disabled = disabled != 0
	u.Created = fromNS(created)
	return u, nil
}

// User returns one user or ErrNotFound.
func (db *DB) User(ctx context.Context, name string) (User, error) {
	u, err := scanUser(db.r.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, fmt.Errorf("user %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return User{}, fmt.Errorf("user %s: %w", name, err)
	}
	return u, nil
}

// Users returns every user, by name.
func (db *DB) Users(ctx context.Context) ([]User, error) {
	out, err := queryAll(ctx, db.r, scanUser, `SELECT `+userCols+` FROM users ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("users: %w", err)
	}
	return out, nil
}

// CreateToken stores t (its hash, never the secret); ErrNotFound when
// t.User does not exist.
func (db *DB) CreateToken(ctx context.Context, t Token) error {
	_, err := db.w.ExecContext(ctx,
		`INSERT INTO tokens (hash, "user", kind, name, created_ns, expires_ns, last_used_ns) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		t.Hash, t.User, t.Kind, t.Name, toNS(t.Created), toNS(t.Expires), toNS(t.LastUsed))
	if err != nil {
		if isForeignKeyViolation(err) {
			// The user is gone (deleted since the caller looked it up).
			return fmt.Errorf("create token for %s: user: %w", t.User, ErrNotFound)
		}
		return fmt.Errorf("create token for %s: %w", t.User, err)
	}
	return nil
}

const tokenCols = `hash, "user", kind, name, created_ns, expires_ns, last_used_ns`

func scanToken(sc scanner) (Token, error) {
	var t Token
	var created, expires, used int64
	if err := sc.Scan(&t.Hash, &t.User, &t.Kind, &t.Name, &created, &expires, &used); err != nil {
		return Token{}, err
	}
	t.Created = fromNS(created)
	if expires != 0 {
		t.Expires = fromNS(expires)
	}
	if used != 0 {
		t.LastUsed = fromNS(used)
	}
	return t, nil
}

// TokenByHash returns the token with this hash or ErrNotFound.
func (db *DB) TokenByHash(ctx context.Context, hash string) (Token, error) {
	t, err := scanToken(db.r.QueryRowContext(ctx, `SELECT `+tokenCols+` FROM tokens WHERE hash = ?`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return Token{}, fmt.Errorf("token: %w", ErrNotFound)
	}
	if err != nil {
		return Token{}, fmt.Errorf("token: %w", err)
	}
	return t, nil
}

// Tokens returns the tokens of user ("" = every user), oldest first.
func (db *DB) Tokens(ctx context.Context, user string) ([]Token, error) {
	out, err := queryAll(ctx, db.r, scanToken,
		`SELECT `+tokenCols+` FROM tokens WHERE ? = '' OR "user" = ? ORDER BY created_ns, hash`, user, user)
	if err != nil {
		return nil, fmt.Errorf("tokens: %w", err)
	}
	return out, nil
}

// TouchToken sets the token's last use.
func (db *DB) TouchToken(ctx context.Context, hash string, at time.Time) error {
	if _, err := db.w.ExecContext(ctx, `UPDATE tokens SET last_used_ns = ? WHERE hash = ?`, toNS(at), hash); err != nil {
		return fmt.Errorf("touch token: %w", err)
	}
	return nil
}

// DeleteToken revokes the token with this hash; ErrNotFound when none.
func (db *DB) DeleteToken(ctx context.Context, hash string) error {
	res, err := db.w.ExecContext(ctx, `DELETE FROM tokens WHERE hash = ?`, hash)
	if err != nil {
		return fmt.Errorf("delete token: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("delete token: %w", ErrNotFound)
	}
	return nil
}

// DeleteExpiredTokens removes tokens that expired before now.
func (db *DB) DeleteExpiredTokens(ctx context.Context, now time.Time) (int64, error) {
	res, err := db.w.ExecContext(ctx, `DELETE FROM tokens WHERE expires_ns != 0 AND expires_ns < ?`, toNS(now))
	if err != nil {
		return 0, fmt.Errorf("delete expired tokens: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

func authBool(b bool) int {
	if b {
		return 1
	}
	return 0
}
