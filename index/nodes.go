package index

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Cluster nodes (PostgreSQL only, like the camera leases): each node of a
// cluster upserts its row at every lease round (heartbeat with the
// database's now()), so that every node sees the others' load and the
// API lists them; an operator marks one draining (it then releases its
// cameras and claims none). Singletons (the retention worker, the
// reconciliation sweep) run on the node holding a PostgreSQL advisory
// lock (LockSingleton).

// nodeMigrations: version 11.
var nodeMigrations = []migration{
	{
		version: 11,
		name:    "cluster nodes",
		stmts: []string{
			// Unused on SQLite (one node); kept so both schemas match.
			`CREATE TABLE cluster_nodes (
				node_id       TEXT    PRIMARY KEY,
				advertise_url TEXT    NOT NULL DEFAULT '',
				version       TEXT    NOT NULL DEFAULT '',
				cameras       INTEGER NOT NULL DEFAULT 0,
				capacity      INTEGER NOT NULL DEFAULT 0,
				weight        REAL    NOT NULL DEFAULT 1,
				draining      INTEGER NOT NULL DEFAULT 0,
				started_at    INTEGER NOT NULL DEFAULT 0,
				heartbeat_at  INTEGER NOT NULL DEFAULT 0
			)`,
		},
		pgStmts: []string{
			`CREATE TABLE cluster_nodes (
				node_id       TEXT             PRIMARY KEY,
				advertise_url TEXT             NOT NULL DEFAULT '',
				version       TEXT             NOT NULL DEFAULT '',
				cameras       BIGINT           NOT NULL DEFAULT 0,
				capacity      BIGINT           NOT NULL DEFAULT 0,
				weight        DOUBLE PRECISION NOT NULL DEFAULT 1,
				draining      BOOLEAN          NOT NULL DEFAULT false,
				started_at    TIMESTAMPTZ      NOT NULL DEFAULT now(),
				heartbeat_at  TIMESTAMPTZ      NOT NULL DEFAULT now()
			)`,
		},
	},
}

// Node is a cluster node's registry row.
type Node struct {
	ID           string
	AdvertiseURL string
	Version      string
	// Cameras is the number of camera leases it held at its last heartbeat.
	Cameras  int
	Capacity int
	Weight   float64
	Draining bool
	// Started is its first heartbeat since it (re)started; Heartbeat the
	// last one (database time).
	Started, Heartbeat time.Time
	// Live: the last heartbeat is more recent than the liveness window
	// Nodes was asked for (database clock).
	Live bool
}

// Heartbeat upserts n's row with the database's now() as heartbeat (the
// Draining flag is the operator's: it is kept, never written here). A
// node starting (restart true) also resets its start time.
func (db *DB) Heartbeat(ctx context.Context, n Node, restart bool) error {
	if err := db.leasesSupported(); err != nil {
		return err
	}
	if n.ID == "" {
		return errors.New("node heartbeat: empty node id")
	}
	started := `cluster_nodes.started_at`
	if restart {
		started = `now()`
	}
	_, err := db.w.ExecContext(ctx, `INSERT INTO cluster_nodes (node_id, advertise_url, version, cameras, capacity, weight)
		VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (node_id) DO UPDATE SET advertise_url = excluded.advertise_url, version = excluded.version,
			cameras = excluded.cameras, capacity = excluded.capacity, weight = excluded.weight,
			started_at = `+started+`, heartbeat_at = now()`,
		n.ID, n.AdvertiseURL, n.Version, n.Cameras, n.Capacity, n.Weight)
	if err != nil {
		return fmt.Errorf("node %s heartbeat: %w", n.ID, err)
	}
	return nil
}

// Nodes lists the registered nodes by id; Live is set on those whose last
// heartbeat is less than live old.
func (db *DB) Nodes(ctx context.Context, live time.Duration) ([]Node, error) {
	if err := db.leasesSupported(); err != nil {
		return nil, err
	}
	out, err := queryAll(ctx, db.r, func(s scanner) (Node, error) {
		var n Node
		err := s.Scan(&n.ID, &n.AdvertiseURL, &n.Version, &n.Cameras, &n.Capacity, &n.Weight, &n.Draining,
			&n.Started, &n.Heartbeat, &n.Live)
		return n, err
	}, `SELECT node_id, advertise_url, version, cameras, capacity, weight, draining, started_at, heartbeat_at,
		heartbeat_at > now() - CAST(? AS BIGINT) * interval '1 microsecond'
		FROM cluster_nodes ORDER BY node_id`, live.Microseconds())
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	return out, nil
}

// SetNodeDraining sets or clears node id's draining flag; ErrNotFound when
// no such node ever registered.
func (db *DB) SetNodeDraining(ctx context.Context, id string, draining bool) error {
	if err := db.leasesSupported(); err != nil {
		return err
	}
	res, err := db.w.ExecContext(ctx, `UPDATE cluster_nodes SET draining = ? WHERE node_id = ?`, draining, id)
	if err != nil {
		return fmt.Errorf("drain node %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return fmt.Errorf("node %s: %w", id, ErrNotFound)
	}
	return nil
}

// LeaseCameraCount is the number of cameras in the lease table (retired
// ones, removed from the registry, are not counted).
func (db *DB) LeaseCameraCount(ctx context.Context) (int, error) {
	if err := db.leasesSupported(); err != nil {
		return 0, err
	}
	var n int
	if err := db.r.QueryRowContext(ctx, `SELECT count(*) FROM camera_leases WHERE expires_at <> `+retired).Scan(&n); err != nil {
		return 0, fmt.Errorf("count lease cameras: %w", err)
	}
	return n, nil
}

// SingletonLock is a held PostgreSQL advisory lock: the session holding it
// is a dedicated connection, so the lock ends with the node (a crash
// closes the connection) or with the connection (Check then fails).
type SingletonLock struct {
	conn *sql.Conn
	name string
}

// TryLockSingleton takes the advisory lock named name without waiting; it
// returns nil, nil when another session holds it.
func (db *DB) TryLockSingleton(ctx context.Context, name string) (*SingletonLock, error) {
	if err := db.leasesSupported(); err != nil {
		return nil, err
	}
	conn, err := db.locks.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("singleton %s: %w", name, err)
	}
	var ok bool
	if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock(hashtext(?))`, "xueliang:singleton:"+name).Scan(&ok); err != nil {
		conn.Close()
		return nil, fmt.Errorf("singleton %s: %w", name, err)
	}
	if !ok {
		return nil, conn.Close()
	}
	return &SingletonLock{conn: conn, name: name}, nil
}

// Check reports an error when the lock's connection is gone (the lock may
// then be held by another node already).
func (l *SingletonLock) Check(ctx context.Context) error {
	var one int
	if err := l.conn.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil {
		return fmt.Errorf("singleton %s lost: %w", l.name, err)
	}
	return nil
}

// Close unlocks and returns the connection; safe to call twice.
func (l *SingletonLock) Close() error {
	if l == nil || l.conn == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := l.conn.ExecContext(ctx, `SELECT pg_advisory_unlock(hashtext(?))`, "xueliang:singleton:"+l.name)
	err = errors.Join(err, l.conn.Close())
	l.conn = nil
	return err
}

// Leases lists every camera lease but the retired ones, by camera (expired ones included: a
// lease is held while Expires is after the database's now(); a released
// or never claimed one has the Unix epoch).
func (db *DB) Leases(ctx context.Context) ([]Lease, error) {
	if err := db.leasesSupported(); err != nil {
		return nil, err
	}
	out, err := queryAll(ctx, db.r, func(s scanner) (Lease, error) {
		var l Lease
		err := s.Scan(&l.CameraID, &l.Node, &l.Epoch, &l.Expires)
		return l, err
	}, `SELECT camera_id, node_id, epoch, GREATEST(expires_at, 'epoch'::timestamptz) FROM camera_leases
		WHERE expires_at <> `+retired+` ORDER BY camera_id`)
	if err != nil {
		return nil, fmt.Errorf("list leases: %w", err)
	}
	return out, nil
}
