package index

import (
	"fmt"
	"net/url"
	"sort"
	"strings"
)

// This file holds what is specific to SQLite (the driver and its DSN) and
// the migration list. Each concern's DDL lives with it
// (recordings_schema.go, registry.go, auth_users.go, motion.go, events.go);
// the DDL and the trigger bodies are SQLite's, with PostgreSQL equivalents
// noted beside them. The queries are plain SQL that PostgreSQL also accepts
// once '?' placeholders are rebound to $n (INSERT ... ON CONFLICT ... DO
// UPDATE, RETURNING, CASE, quoted "offset").

const driverName = "sqlite" // modernc.org/sqlite, pure Go

// busyTimeoutMS is how long a connection waits for a lock before
// SQLITE_BUSY. With one writer connection only checkpoints and other
// processes (the sqlite3 shell) contend.
const busyTimeoutMS = 10000

// dsn returns the connection string for path. Every connection gets the
// pragmas; the writer begins transactions with BEGIN IMMEDIATE so that it
// takes the write lock up front instead of upgrading (which can fail with
// SQLITE_BUSY regardless of busy_timeout); readers are query_only.
func dsn(path string, readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout("+itoa(busyTimeoutMS)+")")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Set("_txlock", "immediate")
	}
	return "file:" + escapePath(path) + "?" + q.Encode()
}

// escapePath escapes the characters that would end the path part of a
// file: URI.
func escapePath(p string) string {
	return strings.NewReplacer("%", "%25", "?", "%3F", "#", "%23").Replace(p)
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

// migration is one schema version: statements applied in one transaction.
type migration struct {
	version int
	name    string
	stmts   []string // SQLite
	pgStmts []string // PostgreSQL, the same schema
}

// migrations are applied in order of version; never edit a released one,
// append. Each concern owns a slice in its own file (recordings_schema.go:
// cameras, segments, fragments, coverage; registry.go: the camera registry;
// auth_users.go: users, tokens and the audit log; motion.go: motion grids
// and intervals; events.go: camera-side events; leases.go: camera leases and
// segment epochs, version 8; recordings_lost.go: lost segments, version 9;
// retention.go: retention policies and evidence locks, version 10; nodes.go:
// cluster nodes, version 11; layouts.go: console layouts, version 13; segment_node.go: the node holding a segment, version 14).
var migrations = joinMigrations(recordingMigrations, registryMigrations, authMigrations, motionMigrations, eventMigrations, leaseMigrations, lostMigrations, retentionMigrations, nodeMigrations, purgeMigrations, layoutMigrations, segmentNodeMigrations)

// joinMigrations concatenates the feature slices in version order and panics
// on a duplicate or missing version (a programming error caught by any test).
func joinMigrations(parts ...[]migration) []migration {
	var all []migration
	for _, p := range parts {
		all = append(all, p...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].version < all[j].version })
	for i, m := range all {
		if m.version != i+1 {
			panic(fmt.Sprintf("index: migration %d (%s) is out of sequence: want version %d", m.version, m.name, i+1))
		}
		if len(m.pgStmts) == 0 {
			panic(fmt.Sprintf("index: migration %d (%s) has no PostgreSQL statements", m.version, m.name))
		}
	}
	return all
}
