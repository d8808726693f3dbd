package index

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
	"xueliang/storage/recording"
)

// Camera leases (PostgreSQL only): several nodes share one index, and each
// camera is recorded by the node holding its lease.
//
//   - ClaimCameras takes free or expired leases with SELECT … FOR UPDATE
//     SKIP LOCKED, so nodes claiming at once never take the same camera and
//     never wait on each other; every claim increments the camera's epoch.
//   - RenewLeases extends the node's leases. Expiry is the database's
//     now(), never a node's clock. A lease that expired but that no other
//     node claimed since (node_id is still the node's) is renewed too,
//     with its epoch: nobody else can have recorded the camera meanwhile,
//     so a node that could not renew for a while (a PostgreSQL outage
//     longer than the ttl) keeps its cameras and its segments in progress
//     instead of every node re-claiming, and fencing off, everything.
//   - The epoch is a fencing token: the *Fenced writes store it in the
//     segment row and, in the same transaction, check it against the lease
//     row (locked FOR SHARE, so a claim waits for the write and a write
//     after the claim sees the new epoch). A stalled former owner that
//     wakes up after a takeover has its writes refused with ErrFenced.
//
// A camera whose node stops renewing is free once its lease expires (ttl
// after the last renewal) and is claimed by the next ClaimCameras of
// another node: with a 5 s ttl and claims every second, within ≈ 6 s.
//
// A camera removed from the registry (or disabled) keeps its lease row,
// retired (SetLeaseCameras): node_id '' and expires_at 'infinity', so that
// no node claims or renews it and it counts in no share, while its epoch
// is kept. Deleting the row would restart the epoch at 0 when the camera
// comes back, and a writer stalled since before the removal could then
// pass the fence. A retired camera that is registered again is revived
// (free, same epoch: its next claim increments it).

// ErrFenced is returned by the fenced writes when the camera's lease has
// moved to a newer epoch (another node took the camera over).
var ErrFenced = errors.New("camera lease taken over (stale epoch)")

// ErrLeasesUnsupported is returned by the lease methods on SQLite, which
// serves one node only.
var ErrLeasesUnsupported = errors.New("camera leases need the PostgreSQL index")

// leaseMigrations: version 8.
var leaseMigrations = []migration{
	{
		version: 8,
		name:    "camera leases and segment epochs",
		stmts: []string{
			// Unused on SQLite (one node); kept so both schemas match.
			`CREATE TABLE camera_leases (
				camera_id  TEXT    PRIMARY KEY,
				node_id    TEXT    NOT NULL DEFAULT '',
				epoch      INTEGER NOT NULL DEFAULT 0,
				expires_at INTEGER NOT NULL DEFAULT 0
			)`,
			`ALTER TABLE segments ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0`,
		},
		pgStmts: []string{
			`CREATE TABLE camera_leases (
				camera_id  TEXT        PRIMARY KEY,
				node_id    TEXT        NOT NULL DEFAULT '',
				epoch      BIGINT      NOT NULL DEFAULT 0,
				expires_at TIMESTAMPTZ NOT NULL DEFAULT '-infinity'
			)`,
			`CREATE INDEX camera_leases_node ON camera_leases (node_id)`,
			`ALTER TABLE segments ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0`,
		},
	},
}

// Lease is a node's claim on a camera.
type Lease struct {
	CameraID string
	Node     string
	// Epoch is the fencing token to pass to the fenced writes.
	Epoch int64
	// Expires is the database time the lease ends unless renewed.
	Expires time.Time
	// Previous is the node that held the camera before this claim ("" for
	// a first claim); set by ClaimCameras only. A claim with Previous
	// neither "" nor Node is a takeover.
	Previous string
}

// retired is the expires_at of a removed camera's lease row: never free,
// never renewed (node_id is ”).
const retired = `'infinity'::timestamptz`

func (db *DB) leasesSupported() error {
	if db.dialect != dialectPostgres {
		return ErrLeasesUnsupported
	}
	return nil
}

// AddLeaseCameras makes cameras claimable (a camera already known keeps its
// lease).
func (db *DB) AddLeaseCameras(ctx context.Context, ids []string) error {
	if err := db.leasesSupported(); err != nil {
		return err
	}
	return db.withTx(ctx, func(tx *sql.Tx) error {
		for _, id := range ids {
			if _, err := tx.ExecContext(ctx, `INSERT INTO camera_leases (camera_id) VALUES (?) ON CONFLICT (camera_id) DO NOTHING`, id); err != nil {
				return fmt.Errorf("add lease camera %s: %w", id, err)
			}
		}
		return nil
	})
}

// SetLeaseCameras makes the lease table's cameras exactly ids (the
// registry's enabled cameras): new ones are added, retired ones revived
// (free, epoch kept), and every other one retired (epoch kept). A node
// recording a retired camera loses it at its next RenewLeases and closes
// its segment under the same epoch (the fenced writes still pass). It
// returns how many rows it added or revived and how many it retired.
//
// Nodes apply their own view of the registry: one whose view is a moment
// old may undo another's change, which its next call (with the newer
// view) puts right.
func (db *DB) SetLeaseCameras(ctx context.Context, ids []string) (added, removed int, err error) {
	if err := db.leasesSupported(); err != nil {
		return 0, 0, err
	}
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	err = db.withTx(ctx, func(tx *sql.Tx) error {
		added, removed = 0, 0
		rows, err := tx.QueryContext(ctx, `SELECT camera_id, expires_at = `+retired+` FROM camera_leases`)
		if err != nil {
			return err
		}
		have := map[string]bool{} // camera → retired
		for rows.Next() {
			var id string
			var ret bool
			if err := rows.Scan(&id, &ret); err != nil {
				rows.Close()
				return err
			}
			have[id] = ret
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return err
		}
		for _, id := range ids {
			if ret, ok := have[id]; ok && !ret {
				continue
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO camera_leases (camera_id) VALUES (?)
				ON CONFLICT (camera_id) DO UPDATE SET expires_at = '-infinity'
				WHERE camera_leases.expires_at = `+retired, id); err != nil {
				return fmt.Errorf("add lease camera %s: %w", id, err)
			}
			added++
		}
		for id, ret := range have {
			if ret || want[id] {
				continue
			}
			if _, err := tx.ExecContext(ctx, `UPDATE camera_leases SET node_id = '', expires_at = `+retired+`
				WHERE camera_id = ?`, id); err != nil {
				return fmt.Errorf("retire lease camera %s: %w", id, err)
			}
			removed++
		}
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("set lease cameras: %w", err)
	}
	return added, removed, nil
}

// leaseExpiry is the SQL for now() + ttl with ttl a µs parameter.
const leaseExpiry = `now() + CAST(? AS BIGINT) * interval '1 microsecond'`

// ClaimCameras claims for node up to max cameras whose lease is free or
// expired (including node's own expired ones), each with a new epoch, and
// returns the leases claimed. Cameras locked by another node's claim in
// progress are skipped, not waited for.
func (db *DB) ClaimCameras(ctx context.Context, node string, max int, ttl time.Duration) ([]Lease, error) {
	if err := db.leasesSupported(); err != nil {
		return nil, err
	}
	if node == "" || max <= 0 || ttl <= 0 {
		return nil, errors.New("claim cameras: empty node, max or ttl")
	}
	var out []Lease
	err := db.withTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT camera_id, node_id FROM camera_leases WHERE expires_at <= now()
			ORDER BY camera_id LIMIT ? FOR UPDATE SKIP LOCKED`, max)
		if err != nil {
			return err
		}
		var free []Lease
		for rows.Next() {
			l := Lease{Node: node}
			if err := rows.Scan(&l.CameraID, &l.Previous); err != nil {
				rows.Close()
				return err
			}
			free = append(free, l)
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return err
		}
		for _, l := range free {
			if err := tx.QueryRowContext(ctx, `UPDATE camera_leases SET node_id = ?, epoch = epoch + 1, expires_at = `+leaseExpiry+`
				WHERE camera_id = ? RETURNING epoch, expires_at`, node, ttl.Microseconds(), l.CameraID).Scan(&l.Epoch, &l.Expires); err != nil {
				return err
			}
			out = append(out, l)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim cameras for %s: %w", node, err)
	}
	return out, nil
}

// RenewLeases extends node's leases by ttl from the database's now() and
// returns them: a lease missing from the answer was taken over by another
// node (or released while draining, or retired) and its camera must no
// longer be recorded by node. An expired lease nobody claimed is still the
// node's (same epoch) and is renewed.
func (db *DB) RenewLeases(ctx context.Context, node string, ttl time.Duration) ([]Lease, error) {
	if err := db.leasesSupported(); err != nil {
		return nil, err
	}
	out, err := queryAll(ctx, db.w, func(s scanner) (Lease, error) {
		l := Lease{Node: node}
		err := s.Scan(&l.CameraID, &l.Epoch, &l.Expires)
		return l, err
	}, `UPDATE camera_leases SET expires_at = `+leaseExpiry+`
		WHERE node_id = ? RETURNING camera_id, epoch, expires_at`, ttl.Microseconds(), node)
	if err != nil {
		return nil, fmt.Errorf("renew leases of %s: %w", node, err)
	}
	return out, nil
}

// ReleaseLeases ends node's leases at once (drain, shutdown): other nodes
// may claim the cameras immediately.
func (db *DB) ReleaseLeases(ctx context.Context, node string) error {
	if err := db.leasesSupported(); err != nil {
		return err
	}
	if _, err := db.w.ExecContext(ctx, `UPDATE camera_leases SET expires_at = '-infinity' WHERE node_id = ?`, node); err != nil {
		return fmt.Errorf("release leases of %s: %w", node, err)
	}
	return nil
}

// SegmentFence tells start-up recovery what it may write for segment id
// (state recording, its spool file on this node): stale is true when the
// camera's lease has moved past the segment's epoch (another node took
// the camera over) or the camera has no lease row; committed is the
// highest fragment seq indexed for the segment (0 when none), i.e. the
// footage committed under the lease; epoch is the segment's.
func (db *DB) SegmentFence(ctx context.Context, id int64) (epoch int64, stale bool, committed int, err error) {
	if err := db.leasesSupported(); err != nil {
		return 0, false, 0, err
	}
	var lease sql.NullInt64
	err = db.r.QueryRowContext(ctx, `SELECT s.epoch, l.epoch,
			COALESCE((SELECT max(seq) FROM fragments WHERE segment_id = s.id), 0)
		FROM segments s LEFT JOIN camera_leases l ON l.camera_id = s.camera_id WHERE s.id = ?`, id).Scan(&epoch, &lease, &committed)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, 0, fmt.Errorf("segment %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return 0, false, 0, fmt.Errorf("segment %d fence: %w", id, err)
	}
	return epoch, !lease.Valid || lease.Int64 != epoch, committed, nil
}

// checkEpoch locks camera's lease row FOR SHARE and fails with ErrFenced
// unless its epoch is epoch.
func checkEpoch(ctx context.Context, tx *sql.Tx, camera string, epoch int64) error {
	var cur int64
	err := tx.QueryRowContext(ctx, `SELECT epoch FROM camera_leases WHERE camera_id = ? FOR SHARE`, camera).Scan(&cur)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("camera %s has no lease: %w", camera, ErrFenced)
	}
	if err != nil {
		return err
	}
	if cur != epoch {
		return fmt.Errorf("camera %s: epoch %d, lease at %d: %w", camera, epoch, cur, ErrFenced)
	}
	return nil
}

// segmentEpoch checks the lease of segment id's camera against epoch (and
// that the segment was created under epoch).
func segmentEpoch(ctx context.Context, tx *sql.Tx, id, epoch int64) error {
	var cam string
	var segEpoch int64
	err := tx.QueryRowContext(ctx, `SELECT camera_id, epoch FROM segments WHERE id = ?`, id).Scan(&cam, &segEpoch)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("segment %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return err
	}
	if segEpoch != epoch {
		return fmt.Errorf("segment %d was created under epoch %d, not %d: %w", id, segEpoch, epoch, ErrFenced)
	}
	return checkEpoch(ctx, tx, cam, epoch)
}

// CreateSegmentFenced is CreateSegment for the holder of the camera's lease
// at epoch: the epoch and the holder's node id are stored in the row, and
// the insert is refused with ErrFenced when the lease has moved on.
func (db *DB) CreateSegmentFenced(ctx context.Context, seg *recording.Segment, epoch int64) error {
	if err := db.leasesSupported(); err != nil {
		return err
	}
	if seg.CameraID == "" || seg.ObjectKey == "" {
		return errors.New("create segment: empty camera id or object key")
	}
	start, end := toNS(seg.Start), toNS(seg.End)
	if seg.End.IsZero() {
		end = start
	}
	var id int64
	err := db.withTx(ctx, func(tx *sql.Tx) error {
		if err := checkEpoch(ctx, tx, seg.CameraID, epoch); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO cameras (id, name) VALUES (?, '') ON CONFLICT (id) DO NOTHING`, seg.CameraID); err != nil {
			return err
		}
		// The lease holder (checked above, its row locked) is the node
		// whose spool the segment is recorded into (SegmentNode).
		if err := tx.QueryRowContext(ctx, `INSERT INTO segments (camera_id, start_ns, end_ns, object_key, size, sha256, init, codecs, width, height, state, epoch, node_id)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, (SELECT node_id FROM camera_leases WHERE camera_id = ?)) RETURNING id`,
			seg.CameraID, start, end, seg.ObjectKey, seg.Size, seg.SHA256, seg.Init, seg.Codecs,
			seg.Width, seg.Height, int(seg.State), epoch, seg.CameraID).Scan(&id); err != nil {
			return err
		}
		_, err := db.txStmt(ctx, tx, raiseMaxSegment).ExecContext(ctx, id, id, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("create segment %s: %w", seg.ObjectKey, err)
	}
	seg.ID = id
	if seg.End.IsZero() {
		seg.End = fromNS(end)
	}
	return nil
}

// AddFragmentsFenced is AddFragments (in a transaction of its own) for the
// holder of the lease at epoch; every segment touched must have been
// created under epoch.
func (db *DB) AddFragmentsFenced(ctx context.Context, frags []recording.Fragment, epoch int64) error {
	if err := db.leasesSupported(); err != nil {
		return err
	}
	seen := map[int64]bool{}
	err := db.withTx(ctx, func(tx *sql.Tx) error {
		for _, f := range frags {
			if f.Seq < 1 || f.Offset < 0 || f.Size < 0 {
				return fmt.Errorf("segment %d seq %d: invalid fragment", f.SegmentID, f.Seq)
			}
			if !seen[f.SegmentID] {
				seen[f.SegmentID] = true
				if err := segmentEpoch(ctx, tx, f.SegmentID, epoch); err != nil {
					return err
				}
			}
		}
		return db.writeFragments(ctx, tx, []*fragReq{{frags: frags}})
	})
	if err != nil {
		return fmt.Errorf("add fragments: %w", err)
	}
	return nil
}

// FinishSegmentFenced is FinishSegment for the holder of the lease at
// epoch.
func (db *DB) FinishSegmentFenced(ctx context.Context, id int64, end time.Time, size int64, sha256 string, epoch int64) error {
	if err := db.leasesSupported(); err != nil {
		return err
	}
	err := db.withTx(ctx, func(tx *sql.Tx) error {
		if err := segmentEpoch(ctx, tx, id, epoch); err != nil {
			return err
		}
		res, err := db.txStmt(ctx, tx, finishSegment).ExecContext(ctx, toNS(end), size, sha256, int(recording.StateClosed), id)
		if err != nil {
			return err
		}
		if err := oneRow(res, id); err != nil {
			return err
		}
		_, err = db.txStmt(ctx, tx, raiseMaxSegment).ExecContext(ctx, id, id, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("finish segment %d: %w", id, err)
	}
	return nil
}
