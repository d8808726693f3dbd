package index

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Camera is a recorded camera. The registry fields are persisted by
// PutCamera; a camera row created by CreateSegment alone, or
// one removed from the registry, has Source "" and is not recorded.
type Camera struct {
	ID   string
	Name string
	// Township and Village locate the camera (county → township → village).
	Township, Village string
	// Lat and Lon are WGS-84 degrees; nil when unknown.
	Lat, Lon *float64
	// MainURL and SubURL are rtsp:// URLs without credentials.
	MainURL, SubURL string
	// Username is the RTSP user; SealedPassword the RTSP password sealed by
	// the registry (never the clear text), "" when there is none.
	Username, SealedPassword string
	// Transport is "tcp", "udp" or "" (the server default).
	Transport string
	// SegmentDuration is the per-camera segment length; 0 = server default.
	SegmentDuration time.Duration
	// Motion enables motion analysis.
	Motion bool
	// Enabled cameras are recorded.
	Enabled bool
	// Source is SourceConfig, SourceAPI, or "" (not in the registry).
	Source string
	// Created and Updated are the registry's timestamps (zero when unknown).
	Created, Updated time.Time
}

// Camera sources.
const (
	SourceConfig = "config" // declared in the configuration file
	SourceAPI    = "api"    // created through the API (or the CLI)
)

// Registered reports whether the camera is in the registry.
func (c Camera) Registered() bool { return c.Source != "" }

// registryMigrations: camera registry (version 4).
//
// The registry extends the cameras table rather than adding a second one:
// segments reference cameras (id), and a camera that is removed from the
// registry keeps its row (and its footage) with source = ”. Credentials are
// never stored in clear: password holds the registry Sealer's ciphertext.
var registryMigrations = []migration{
	{
		version: 4,
		name:    "camera registry",
		stmts:   registrySchema,
		pgStmts: pgTypes(registrySchema...),
	},
}

// registrySchema is the migration's SQLite DDL; PostgreSQL's is derived by pgTypes.
var registrySchema = []string{
	`ALTER TABLE cameras ADD COLUMN township TEXT NOT NULL DEFAULT ''`,
	`ALTER TABLE cameras ADD COLUMN village TEXT NOT NULL DEFAULT ''`,
	`ALTER TABLE cameras ADD COLUMN lat REAL`,
	`ALTER TABLE cameras ADD COLUMN lon REAL`,
	`ALTER TABLE cameras ADD COLUMN main_url TEXT NOT NULL DEFAULT ''`,
	`ALTER TABLE cameras ADD COLUMN sub_url TEXT NOT NULL DEFAULT ''`,
	`ALTER TABLE cameras ADD COLUMN username TEXT NOT NULL DEFAULT ''`,
	`ALTER TABLE cameras ADD COLUMN password TEXT NOT NULL DEFAULT ''`,
	`ALTER TABLE cameras ADD COLUMN transport TEXT NOT NULL DEFAULT ''`,
	`ALTER TABLE cameras ADD COLUMN segment_duration_ns INTEGER NOT NULL DEFAULT 0`,
	`ALTER TABLE cameras ADD COLUMN motion INTEGER NOT NULL DEFAULT 0`,
	`ALTER TABLE cameras ADD COLUMN enabled INTEGER NOT NULL DEFAULT 0`,
	`ALTER TABLE cameras ADD COLUMN source TEXT NOT NULL DEFAULT ''`,
	`ALTER TABLE cameras ADD COLUMN created_ns INTEGER NOT NULL DEFAULT 0`,
	`ALTER TABLE cameras ADD COLUMN updated_ns INTEGER NOT NULL DEFAULT 0`,
	`CREATE INDEX cameras_site ON cameras (township, village)`,
}

// cameraColumns are the columns scanCamera reads, in order.
const cameraColumns = `id, name, township, village, lat, lon, main_url, sub_url, username, password,
	transport, segment_duration_ns, motion, enabled, source, created_ns, updated_ns`

func scanCamera(r scanner) (Camera, error) {
	var c Camera
	var lat, lon sql.NullFloat64
	var segNS, created, updated int64
	var motion, enabled int
	if err := r.Scan(&c.ID, &c.Name, &c.Township, &c.Village, &lat, &lon, &c.MainURL, &c.SubURL, &c.Username,
		&c.SealedPassword, &c.Transport, &segNS, &motion, &enabled, &c.Source, &created, &updated); err != nil {
		return Camera{}, err
	}
	if lat.Valid {
		c.Lat = &lat.Float64
	}
	if lon.Valid {
		c.Lon = &lon.Float64
	}
	c.SegmentDuration = time.Duration(segNS)
	c.Motion, c.Enabled = motion != 0, enabled != 0
	c.Created, c.Updated = registryTime(created), registryTime(updated)
	return c, nil
}

// registryTime reads a registry timestamp: 0 is the zero time.
func registryTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

func nullFloat(p *float64) sql.NullFloat64 {
	if p == nil {
		return sql.NullFloat64{}
	}
	return sql.NullFloat64{Float64: *p, Valid: true}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Cameras returns every camera row, by id: registered cameras and the ones
// that only have footage (Source "").
func (db *DB) Cameras(ctx context.Context) ([]Camera, error) {
	out, err := queryAll(ctx, db.r, scanCamera, `SELECT `+cameraColumns+` FROM cameras ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("cameras: %w", err)
	}
	return out, nil
}

// Camera returns one camera row (registered or not) or ErrNotFound.
func (db *DB) Camera(ctx context.Context, id string) (Camera, error) {
	c, err := scanCamera(db.r.QueryRowContext(ctx, `SELECT `+cameraColumns+` FROM cameras WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Camera{}, fmt.Errorf("camera %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Camera{}, fmt.Errorf("camera %s: %w", id, err)
	}
	return c, nil
}

// PutCamera writes every field of c, inserting the row or replacing the
// registry fields of an existing one (its footage, and max_segment_ns, are
// kept). Created is kept from the existing row when it has one, otherwise
// c.Created is used; Updated is written as given.
func (db *DB) PutCamera(ctx context.Context, c Camera) error {
	if c.ID == "" {
		return errors.New("put camera: empty id")
	}
	_, err := db.w.ExecContext(ctx,
		`INSERT INTO cameras (`+cameraColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		 ON CONFLICT (id) DO UPDATE SET
			name = excluded.name, township = excluded.township, village = excluded.village,
			lat = excluded.lat, lon = excluded.lon, main_url = excluded.main_url, sub_url = excluded.sub_url,
			username = excluded.username, password = excluded.password, transport = excluded.transport,
			segment_duration_ns = excluded.segment_duration_ns, motion = excluded.motion,
			enabled = excluded.enabled, source = excluded.source,
			created_ns = CASE WHEN cameras.created_ns <> 0 AND cameras.source <> '' THEN cameras.created_ns ELSE excluded.created_ns END,
			updated_ns = excluded.updated_ns`,
		c.ID, c.Name, c.Township, c.Village, nullFloat(c.Lat), nullFloat(c.Lon), c.MainURL, c.SubURL, c.Username,
		c.SealedPassword, c.Transport, int64(c.SegmentDuration), boolInt(c.Motion), boolInt(c.Enabled), c.Source,
		toNS(c.Created), toNS(c.Updated))
	if err != nil {
		return fmt.Errorf("put camera %s: %w", c.ID, err)
	}
	return nil
}

// UnregisterCamera removes a camera from the registry: it is no longer
// recorded, its URLs and credentials are erased, and its row (name and
// site, so that its footage stays findable), segments and fragments are
// kept. It returns ErrNotFound when the camera is not registered.
func (db *DB) UnregisterCamera(ctx context.Context, id string, now time.Time) error {
	res, err := db.w.ExecContext(ctx,
		`UPDATE cameras SET source = '', enabled = 0, main_url = '', sub_url = '', username = '', password = '',
			updated_ns = ? WHERE id = ? AND source <> ''`, toNS(now), id)
	if err != nil {
		return fmt.Errorf("unregister camera %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("unregister camera %s: %w", id, err)
	} else if n == 0 {
		return fmt.Errorf("camera %s: %w", id, ErrNotFound)
	}
	return nil
}
