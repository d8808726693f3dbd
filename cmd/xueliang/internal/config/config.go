// Package config loads and validates the xueliang server configuration.
//
// Loading is layered, in this order: built-in defaults (Default), the YAML
// file (strict: an unknown key is an error that names it), environment
// overrides (XUELIANG_<PATH>, e.g. XUELIANG_RECORDING_SEGMENT_DURATION=30s),
// then Validate, which reports every problem at once.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"xueliang/ingest/camnet"
)

// Config is the whole server configuration.
type Config struct {
	// Listen is the HTTP API address. It defaults to 127.0.0.1:8080.
	Listen string `yaml:"listen"`
	// DataDir holds the index, the spool and the local object store.
	// It defaults to ./data.
	DataDir string `yaml:"data_dir"`
	// LogLevel is debug, info, warn or error. It defaults to info.
	LogLevel string `yaml:"log_level"`
	// LogFormat is text or json. It defaults to text.
	LogFormat string    `yaml:"log_format"`
	Recording Recording `yaml:"recording"`
	Index     Index     `yaml:"index"`
	Storage   Storage   `yaml:"storage"`
	Upload    Upload    `yaml:"upload"`
	Replay    Replay    `yaml:"replay"`
	Export    Export    `yaml:"export"`
	Live      Live      `yaml:"live"`
	Motion    Motion    `yaml:"motion"`
	Retention Retention `yaml:"retention"`
	Secrets   Secrets   `yaml:"secrets"`
	Audit     Audit     `yaml:"audit"`
	Auth      Auth      `yaml:"auth"`
	Debug     Debug     `yaml:"debug"`
	HTTP      HTTP      `yaml:"http"`
	Cluster   Cluster   `yaml:"cluster"`
	// CameraNetworks bounds where the server connects as an RTSP client.
	CameraNetworks CameraNetworks `yaml:"camera_networks"`
	Cameras        []Camera       `yaml:"cameras"`
}

// HTTP bounds what slow or greedy clients can hold of the API server
// (docs/operations.md, "Security (network and cameras)").
type HTTP struct {
	// ReadTimeout bounds reading one request, body included. It defaults
	// to 1m. Replays and motion searches replace it with their deadline.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// IdleTimeout closes a keep-alive connection idle this long. It
	// defaults to 2m.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxConnections caps the open connections; more are closed at accept
	// (counted). It defaults to 1024.
	MaxConnections int `yaml:"max_connections"`
	// ReplayPerUser and MotionSearchPerUser cap the requests of each kind
	// one user runs at once (more are answered 429). They default to 16
	// (the console's 9 synchronised replay tiles, the windows replacing
	// theirs after a seek, a search result playing) and 2.
	ReplayPerUser       int `yaml:"replay_per_user"`
	MotionSearchPerUser int `yaml:"motion_search_per_user"`
	// ReplayDeadline and MotionSearchDeadline bound one request. They
	// default to 1h and 1m.
	ReplayDeadline       time.Duration `yaml:"replay_deadline"`
	MotionSearchDeadline time.Duration `yaml:"motion_search_deadline"`
	// WriteStall ends a replay whose client takes no data for this long.
	// It defaults to 30s.
	WriteStall time.Duration `yaml:"write_stall"`
}

// CameraNetworks is the allow-list of the networks cameras may be in, for
// recording, probing and camera URLs written through the API
// (docs/operations.md, "Security (network and cameras)").
type CameraNetworks struct {
	// Allowed lists CIDRs (or single addresses). It defaults to the private
	// ranges 10.0.0.0/8, 172.16.0.0/12 and 192.168.0.0/16. Loopback
	// (127.0.0.0/8, ::1) and link-local (169.254.0.0/16, fe80::/10) are
	// refused unless listed themselves (0.0.0.0/0 does not open them); the
	// server's own listening ports on its own addresses are always refused.
	Allowed []string `yaml:"allowed"`
}

// Cluster runs the server as one of N identical nodes sharing the
// PostgreSQL index and the object store (docs/operations.md, "Running
// several nodes"): each camera is recorded by the node holding its lease.
type Cluster struct {
	// Enabled turns cluster mode on; it requires index.postgres_url. It
	// defaults to false (one node records every camera).
	Enabled bool `yaml:"enabled"`
	// NodeID names this node in the lease table and the node registry;
	// unique per node. It defaults to the host name.
	NodeID string `yaml:"node_id"`
	// AdvertiseURL is this node's API base URL as the other nodes reach it
	// (http://10.0.0.7:8080). It defaults to "" (not advertised).
	AdvertiseURL string `yaml:"advertise_url"`
	// Capacity is the most cameras this node records. It defaults to 64.
	Capacity int `yaml:"capacity"`
	// Weight is this node's share of the cameras relative to the other
	// live nodes: a node claims at most ceil(cameras × weight / Σ weights)
	// while others have room. It defaults to 1.
	Weight float64 `yaml:"weight"`
	// LeaseTTL: a camera whose node stops renewing is taken over about
	// LeaseTTL + LeaseTTL/5 later (leases are renewed every LeaseTTL/5).
	// It defaults to 5s.
	LeaseTTL time.Duration `yaml:"lease_ttl"`
	// SecretFile holds the secret every node of the cluster shares (at
	// least 32 bytes, e.g. `head -c 32 /dev/urandom | base64`; mode 600):
	// it signs the node-to-node requests through which a node replays the
	// footage still in another node's spool (docs/operations.md, "Replay
	// from any node"). It needs advertise_url. It defaults to "" (off:
	// footage not yet uploaded replays only on the node that recorded it).
	SecretFile string `yaml:"secret_file"`
	// FetchTimeout bounds connecting to another node, its answer and each
	// wait for more of it, when reading footage from its spool; a replay
	// of footage held by a node that is down or stalled fails (503) after
	// it. It defaults to 5s.
	FetchTimeout time.Duration `yaml:"fetch_timeout"`
}

// Debug holds diagnostics that are off by default.
type Debug struct {
	// PprofListen, when set, serves net/http/pprof (CPU and heap profiles,
	// goroutine dumps) on this address, without authentication: it must be
	// a loopback address (127.0.0.1:6060, [::1]:6060, localhost:6060).
	PprofListen string `yaml:"pprof_listen"`
}

// Recording holds the defaults applied to every camera.
type Recording struct {
	// SegmentDuration is the target length of one stored object; segments
	// are cut at the first keyframe after it. It defaults to 60s.
	SegmentDuration time.Duration `yaml:"segment_duration"`
	// MaxFragmentDuration caps one fragment (normally one GOP). It defaults to 2s.
	MaxFragmentDuration time.Duration `yaml:"max_fragment_duration"`
	// StaggerSegments cuts the first segment of each camera's session
	// early, after between a tenth and all of SegmentDuration (a fixed
	// share per camera ID), so that cameras that connect together (a server
	// restart, a network coming back) do not close, hash, upload and index
	// their segments in the same second ever after. It defaults to true.
	StaggerSegments bool `yaml:"stagger_segments"`
	// Transport is the RTSP transport: tcp or udp. It defaults to tcp.
	Transport string `yaml:"transport"`
	// FsyncInterval bounds how long written fragments may stay unsynced
	// (a process crash loses nothing written; this bounds power loss).
	// It defaults to 10s.
	FsyncInterval time.Duration `yaml:"fsync_interval"`
	// MaxClockSkew: a camera whose RTCP wall clock is further than this
	// from the server's when a session starts is recorded on the receive
	// time instead (flagged in its status and metrics). It defaults to 5s.
	MaxClockSkew time.Duration `yaml:"max_clock_skew"`
	// IndexOutage: an index outage shorter than this (a PostgreSQL restart
	// or failover) loses no segment row; a segment still unindexed after it
	// is left in the spool for start-up recovery. It defaults to 2m.
	IndexOutage time.Duration `yaml:"index_outage"`
}

// Retention configures how long footage is kept (docs/operations.md,
// "Retention and evidence"). Per-camera and per-township overrides live in
// the registry (API and CLI) and win over these.
type Retention struct {
	// MaxAge: segments that ended longer ago are deleted. It defaults to
	// 720h (30 days).
	MaxAge time.Duration `yaml:"max_age"`
	// MaxBytes caps each camera's unlocked stored footage (oldest deleted
	// first); 0 means no cap. It defaults to 0.
	MaxBytes int64 `yaml:"max_bytes"`
	// Interval between retention passes. It defaults to 10m.
	Interval time.Duration `yaml:"interval"`
	// MinFreeBytes is the free-space floor of the spool and local-store
	// file systems: below it the oldest unlocked footage is purged at once.
	// 0 (the default) means one hour of the measured ingest rate, and at
	// least 1 GiB.
	MinFreeBytes int64 `yaml:"min_free_bytes"`
	// ReserveBytes is kept free for the index and the audit log: recording
	// stops (counted, alerted) when free space falls below it and nothing
	// unlocked is left to purge. It defaults to 256 MiB.
	ReserveBytes int64 `yaml:"reserve_bytes"`
	// CheckInterval is how often free space is measured. It defaults to 10s.
	CheckInterval time.Duration `yaml:"check_interval"`
}

// Index configures the metadata index.
type Index struct {
	// Path of the SQLite database. It defaults to <data_dir>/index.db.
	// Ignored when PostgresURL is set.
	Path string `yaml:"path"`
	// PostgresURL selects the PostgreSQL backend instead of SQLite: a
	// postgres:// or postgresql:// URL (libpq syntax; PGPASSWORD and
	// ~/.pgpass apply, so the password need not be in the file). Several
	// nodes may share the database. It defaults to "" (SQLite).
	PostgresURL string `yaml:"postgres_url"`
	// CommitWindow: fragment rows of different cameras arriving within it
	// share one write transaction (a fragment reaches the index up to this
	// much later; recording never waits). 0 commits each at once. It
	// defaults to 100ms.
	CommitWindow time.Duration `yaml:"commit_window"`
}

// Storage configures the object store: S3 when storage.s3.endpoint is set,
// the local disk otherwise.
type Storage struct {
	Local LocalStorage `yaml:"local"`
	S3    S3Storage    `yaml:"s3"`
	// SpoolMaxBytes caps the local spool (footage not yet in the store).
	// When it is full, new footage is refused (counted and logged) and
	// nothing already received is deleted. 0 (the default) means a quarter
	// of the spool file system's size, so that a long store outage cannot
	// fill the disk the index and the audit log live on; -1 means no cap.
	SpoolMaxBytes int64 `yaml:"spool_max_bytes"`
}

// S3Storage is an S3-compatible object store (MinIO in production).
type S3Storage struct {
	// Endpoint is host:port. Empty means: use the local store.
	Endpoint string `yaml:"endpoint"`
	// Bucket is created when missing. It defaults to xueliang.
	Bucket string `yaml:"bucket"`
	// EvidenceBucket receives copies of evidence-locked segments under
	// legal hold; it is created with Object Lock when missing. It defaults
	// to <bucket>-evidence.
	EvidenceBucket string `yaml:"evidence_bucket"`
	// AccessKey / SecretKey, or the files holding them (one of each).
	AccessKey     string `yaml:"access_key"`
	AccessKeyFile string `yaml:"access_key_file"`
	SecretKey     string `yaml:"secret_key"`
	SecretKeyFile string `yaml:"secret_key_file"`
	// Secure turns TLS on; CAFile adds a CA to the system roots.
	Secure bool   `yaml:"secure"`
	CAFile string `yaml:"ca_file"`
	// Region. It defaults to us-east-1.
	Region string `yaml:"region"`
}

// LocalStorage is the embedded local-disk object store.
type LocalStorage struct {
	// Root directory. It defaults to <data_dir>/objects.
	Root string `yaml:"root"`
}

// Upload configures the spool → store uploader.
type Upload struct {
	// Workers is the number of concurrent uploads. It defaults to 6.
	Workers int `yaml:"workers"`
	// MaxBackoff caps the wait between retries of a failed upload, so a
	// backlog starts draining soon after the store is back. It defaults to 30s.
	MaxBackoff time.Duration `yaml:"max_backoff"`
}

// Replay configures the replay endpoint.
type Replay struct {
	// GapTolerance: a hole between two segments longer than this is a gap.
	// It defaults to 250ms.
	GapTolerance time.Duration `yaml:"gap_tolerance"`
	// MaxWindow is the longest window one replay request may ask for.
	// It defaults to 24h.
	MaxWindow time.Duration `yaml:"max_window"`
}

// Export configures signed exports (POST /api/v1/exports).
type Export struct {
	// Dir holds the export packages until they expire. It defaults to
	// <data_dir>/exports.
	Dir string `yaml:"dir"`
	// KeyFile holds the Ed25519 signing key (base64 of its 32-byte seed,
	// mode 0600), generated on first start. It defaults to
	// <data_dir>/export-signing.key. Back it up: packages signed by a lost
	// key can still be verified with its published public key.
	KeyFile string `yaml:"key_file"`
	// MaxConcurrent bounds the export jobs running at once; requests
	// beyond it are refused (429, counted). It defaults to 2.
	MaxConcurrent int `yaml:"max_concurrent"`
	// Expiry is how long a finished package is kept for download. It
	// defaults to 24h.
	Expiry time.Duration `yaml:"expiry"`
}

// Live configures the live view (ingest/live, GET /api/v1/cameras/{id}/live).
type Live struct {
	// ViewerRing is the units (video frames and audio packets) a viewer may
	// fall behind before it is cut to the next keyframe. It defaults to
	// 512 (about 10 s of 25 fps video with audio).
	ViewerRing int `yaml:"viewer_ring"`
	// TicketTTL is how long a browser's live ticket is valid. It defaults
	// to 30s.
	TicketTTL time.Duration `yaml:"ticket_ttl"`
	// AllowedOrigins are the host patterns (path.Match) of other origins
	// whose pages may open the live WebSocket; the API's own origin always
	// may. Empty by default.
	AllowedOrigins []string `yaml:"allowed_origins"`
	// RTSPListen is the address (host:port) of the RTSP restream of the
	// live view (rtsp://host:port/{camera_id}[/sub], Basic auth with an API
	// token as the password). Empty, the default, means off.
	RTSPListen string `yaml:"rtsp_listen"`
}

// Secrets configures the key that seals camera credentials at rest.
type Secrets struct {
	// KeyFile holds the AES-256 key: 32 raw bytes, 64 hex digits or base64
	// of 32 bytes; mode 0600. When empty, the key comes from the
	// environment variable XUELIANG_CREDENTIAL_KEY, or else from
	// <data_dir>/secret.key, generated (0600) on first start.
	KeyFile string `yaml:"key_file"`
}

// DefaultKeyFile is where the generated credential key lives.
func (c *Config) DefaultKeyFile() string { return filepath.Join(c.DataDir, "secret.key") }

// Audit configures the anchoring of the audit log's hash chain
// (docs/operations.md, "Audit chain anchoring").
type Audit struct {
	// KeyFile holds the HMAC key that signs anchors (64 hex digits, mode
	// 0600), created on first start. Keep it off the disk that holds the
	// index where possible. It defaults to <data_dir>/audit.key.
	KeyFile string `yaml:"key_file"`
	// AnchorFile receives the signed head of the chain. It defaults to
	// <data_dir>/audit.anchor.
	AnchorFile string `yaml:"anchor_file"`
	// AnchorInterval is how often the head is anchored while it moves
	// (also at start and at shutdown). It defaults to 10s.
	AnchorInterval time.Duration `yaml:"anchor_interval"`
}

// AuditKeyFile is audit.key_file or its default.
func (c *Config) AuditKeyFile() string {
	if c.Audit.KeyFile != "" {
		return c.Audit.KeyFile
	}
	return filepath.Join(c.DataDir, "audit.key")
}

// AuditAnchorFile is audit.anchor_file or its default.
func (c *Config) AuditAnchorFile() string {
	if c.Audit.AnchorFile != "" {
		return c.Audit.AnchorFile
	}
	return filepath.Join(c.DataDir, "audit.anchor")
}

// Motion configures motion analysis (cameras with motion: true;
// docs/motion.md). Cameras with a sub_url are analysed on the sub stream at
// FPS frames per second, the others on the main stream's keyframes.
type Motion struct {
	// FPS is the sub-stream analysis rate. It defaults to 5.
	FPS int `yaml:"fps"`
	// Cols × Rows is the motion grid. They default to 32×18.
	Cols int `yaml:"cols"`
	Rows int `yaml:"rows"`
	// PrePad and PostPad extend every motion interval; they default to 1s
	// and 2s.
	PrePad  time.Duration `yaml:"pre_pad"`
	PostPad time.Duration `yaml:"post_pad"`
	// MinDuration is the shortest interval kept (unpadded). It defaults to 0.
	MinDuration time.Duration `yaml:"min_duration"`
	// QueueSize bounds the access units waiting for analysis per camera;
	// beyond it they are dropped and counted. It defaults to 50.
	QueueSize int `yaml:"queue_size"`
}

// Auth configures authentication (docs/operations.md, "Users, roles and
// the audit log").
type Auth struct {
	// BootstrapToken authenticates as an admin named "bootstrap", so that
	// a fresh install can create the first users. Set it inline, from
	// BootstrapTokenFile, or with the environment variable
	// XUELIANG_BOOTSTRAP_TOKEN (which wins). At least 16 characters.
	// Empty (the default) disables it.
	BootstrapToken     string `yaml:"bootstrap_token"`
	BootstrapTokenFile string `yaml:"bootstrap_token_file"`
	// SessionTTL is the lifetime of a login session. It defaults to 12h.
	SessionTTL time.Duration `yaml:"session_ttl"`
	// MaxAPITokenTTL is the longest lifetime of an API token of a user who
	// is not an admin (a token asked without one gets it). It defaults to
	// 2160h (90 days).
	MaxAPITokenTTL time.Duration `yaml:"max_api_token_ttl"`
	// MetricsToken (or MetricsTokenFile) lets Prometheus scrape /metrics
	// with "Authorization: Bearer <token>" without a user; admins can
	// always scrape. Empty (the default): admins only.
	MetricsToken     string `yaml:"metrics_token"`
	MetricsTokenFile string `yaml:"metrics_token_file"`
}

// BootstrapTokenEnv sets auth.bootstrap_token.
const BootstrapTokenEnv = "XUELIANG_BOOTSTRAP_TOKEN"

// MinTokenLen is the shortest bootstrap or metrics token accepted.
const MinTokenLen = 16

// AuthTokens returns the bootstrap and metrics tokens, reading the token
// files when those are configured.
func (c *Config) AuthTokens() (bootstrap, metrics string, err error) {
	read := func(field, val, file string) (string, error) {
		if file != "" {
			b, err := os.ReadFile(file)
			if err != nil {
				return "", fmt.Errorf("read %s: %w", field, err)
			}
			val = strings.TrimSpace(string(b))
		}
		if val != "" && len(val) < MinTokenLen {
			return "", fmt.Errorf("%s: want at least %d characters", field, MinTokenLen)
		}
		return val, nil
	}
	if bootstrap, err = read("auth.bootstrap_token", c.Auth.BootstrapToken, c.Auth.BootstrapTokenFile); err != nil {
		return "", "", err
	}
	metrics, err = read("auth.metrics_token", c.Auth.MetricsToken, c.Auth.MetricsTokenFile)
	return bootstrap, metrics, err
}

// Camera is one camera declared in the file.
type Camera struct {
	// ID identifies the camera in the API, object keys and metrics.
	ID string `yaml:"id"`
	// Name is a human name. It defaults to the ID.
	Name string `yaml:"name"`
	// Township groups cameras in metrics and alerts (e.g. 会亭镇 / Huiting).
	Township string `yaml:"township"`
	// URL is the rtsp:// or rtsps:// main stream URL.
	URL string `yaml:"url"`
	// Transport overrides recording.transport for this camera.
	Transport string `yaml:"transport"`
	// Disabled cameras are known but not recorded.
	Disabled bool `yaml:"disabled"`
	// SubURL is the optional sub stream (rtsp://…), used for motion analysis.
	SubURL string `yaml:"sub_url"`
	// Motion enables motion analysis for this camera (see Motion).
	Motion bool `yaml:"motion"`
}

// Default returns the configuration used for every field the file omits.
func Default() Config {
	return Config{
		Listen:    "127.0.0.1:8080",
		DataDir:   "./data",
		LogLevel:  "info",
		LogFormat: "text",
		Recording: Recording{
			SegmentDuration:     60 * time.Second,
			MaxFragmentDuration: 2 * time.Second,
			StaggerSegments:     true,
			Transport:           "tcp",
			FsyncInterval:       10 * time.Second,
			MaxClockSkew:        5 * time.Second,
			IndexOutage:         2 * time.Minute,
		},
		Index:   Index{CommitWindow: 100 * time.Millisecond},
		Cluster: Cluster{Capacity: 64, Weight: 1, LeaseTTL: 5 * time.Second, FetchTimeout: 5 * time.Second},
		Upload:  Upload{Workers: 6, MaxBackoff: 30 * time.Second},
		Replay:  Replay{GapTolerance: 250 * time.Millisecond, MaxWindow: 24 * time.Hour},
		Export:  Export{MaxConcurrent: 2, Expiry: 24 * time.Hour},
		Live:    Live{ViewerRing: 512, TicketTTL: 30 * time.Second},
		Auth:    Auth{SessionTTL: 12 * time.Hour, MaxAPITokenTTL: 90 * 24 * time.Hour},
		Audit:   Audit{AnchorInterval: 10 * time.Second},
		HTTP: HTTP{ReadTimeout: time.Minute, IdleTimeout: 2 * time.Minute, MaxConnections: 1024, ReplayPerUser: 16,
			MotionSearchPerUser: 2, ReplayDeadline: time.Hour, MotionSearchDeadline: time.Minute, WriteStall: 30 * time.Second},
		CameraNetworks: CameraNetworks{Allowed: []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"}},
		Retention: Retention{MaxAge: 30 * 24 * time.Hour, Interval: 10 * time.Minute, ReserveBytes: 256 << 20,
			CheckInterval: 10 * time.Second},
		Motion: Motion{FPS: 5, Cols: 32, Rows: 18, PrePad: time.Second, PostPad: 2 * time.Second, QueueSize: 50},
	}
}

// Load reads path (see the package doc for the layering) and validates it.
// env is the environment as os.Environ returns it (nil means none).
func Load(path string, env []string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	cfg, err := Parse(b, env)
	if err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// Parse is Load on bytes.
func Parse(b []byte, env []string) (Config, error) {
	cfg := Default()
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, fmt.Errorf("parse: %w", cleanYAMLError(err))
	}
	if err := applyEnv(&cfg, env); err != nil {
		return Config{}, err
	}
	cfg.fill()
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

var yamlFieldRe = regexp.MustCompile(`field (\S+) not found in type config\.(\w+)`)

// cleanYAMLError turns yaml.v3's "field x not found in type config.T" into
// "unknown key "x" (in recording)".
func cleanYAMLError(err error) error {
	msg := yamlFieldRe.ReplaceAllStringFunc(err.Error(), func(s string) string {
		m := yamlFieldRe.FindStringSubmatch(s)
		section := strings.ToLower(m[2])
		if section == "config" {
			return fmt.Sprintf("unknown key %q", m[1])
		}
		return fmt.Sprintf("unknown key %q (in %s)", m[1], section)
	})
	return errors.New(msg)
}

// fill derives the defaults that depend on other fields.
func (c *Config) fill() {
	if c.Index.Path == "" {
		c.Index.Path = filepath.Join(c.DataDir, "index.db")
	}
	if c.Cluster.Enabled && c.Cluster.NodeID == "" {
		c.Cluster.NodeID, _ = os.Hostname()
	}
	if c.Storage.S3.Bucket == "" {
		c.Storage.S3.Bucket = "xueliang"
	}
	if c.Storage.S3.EvidenceBucket == "" {
		c.Storage.S3.EvidenceBucket = c.Storage.S3.Bucket + "-evidence"
	}
	if c.Storage.Local.Root == "" {
		c.Storage.Local.Root = filepath.Join(c.DataDir, "objects")
	}
	if c.Export.Dir == "" {
		c.Export.Dir = filepath.Join(c.DataDir, "exports")
	}
	if c.Export.KeyFile == "" {
		c.Export.KeyFile = filepath.Join(c.DataDir, "export-signing.key")
	}
	for i := range c.Cameras {
		if c.Cameras[i].Name == "" {
			c.Cameras[i].Name = c.Cameras[i].ID
		}
		if c.Cameras[i].Transport == "" {
			c.Cameras[i].Transport = c.Recording.Transport
		}
	}
}

// S3Credentials returns the access and secret keys, reading the key files
// when those are configured.
func (c *Config) S3Credentials() (access, secret string, err error) {
	read := func(val, file string) (string, error) {
		if file == "" {
			return val, nil
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("read s3 key file: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	if access, err = read(c.Storage.S3.AccessKey, c.Storage.S3.AccessKeyFile); err != nil {
		return "", "", err
	}
	secret, err = read(c.Storage.S3.SecretKey, c.Storage.S3.SecretKeyFile)
	return access, secret, err
}

// SpoolDir is where segments live until they are stored.
func (c *Config) SpoolDir() string { return filepath.Join(c.DataDir, "spool") }

var cameraIDRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// Validate reports every problem in c, one per line.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if _, port, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen", "want host:port, got %q", c.Listen)
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		bad("listen", "bad port %q", port)
	}
	if c.Debug.PprofListen != "" {
		if host, port, err := net.SplitHostPort(c.Debug.PprofListen); err != nil {
			bad("debug.pprof_listen", "want host:port, got %q", c.Debug.PprofListen)
		} else if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			bad("debug.pprof_listen", "must be a loopback address (profiles are served without authentication), got %q", host)
		} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			bad("debug.pprof_listen", "bad port %q", port)
		}
	}
	if c.DataDir == "" {
		bad("data_dir", "must not be empty")
	}
	h := c.HTTP
	for _, d := range []struct {
		name      string
		v, lo, hi time.Duration
	}{
		{"http.read_timeout", h.ReadTimeout, time.Second, time.Hour},
		{"http.idle_timeout", h.IdleTimeout, time.Second, time.Hour},
		{"http.replay_deadline", h.ReplayDeadline, time.Minute, 48 * time.Hour},
		{"http.motion_search_deadline", h.MotionSearchDeadline, time.Second, time.Hour},
		{"http.write_stall", h.WriteStall, time.Second, time.Hour},
	} {
		if d.v < d.lo || d.v > d.hi {
			bad(d.name, "want %s..%s, got %s", d.lo, d.hi, d.v)
		}
	}
	for _, n := range []struct {
		name      string
		v, lo, hi int
	}{
		{"http.max_connections", h.MaxConnections, 16, 1 << 20},
		{"http.replay_per_user", h.ReplayPerUser, 1, 1000},
		{"http.motion_search_per_user", h.MotionSearchPerUser, 1, 1000},
	} {
		if n.v < n.lo || n.v > n.hi {
			bad(n.name, "want %d..%d, got %d", n.lo, n.hi, n.v)
		}
	}
	if _, err := camnet.ParsePrefixes(c.CameraNetworks.Allowed); err != nil {
		bad("camera_networks.allowed", "%v", strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("log_level", "want debug, info, warn or error, got %q", c.LogLevel)
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		bad("log_format", "want text or json, got %q", c.LogFormat)
	}
	r := c.Recording
	if r.SegmentDuration < 2*time.Second || r.SegmentDuration > time.Hour {
		bad("recording.segment_duration", "want 2s..1h, got %s", r.SegmentDuration)
	}
	if r.MaxFragmentDuration < 100*time.Millisecond || r.MaxFragmentDuration > 10*time.Second {
		bad("recording.max_fragment_duration", "want 100ms..10s, got %s", r.MaxFragmentDuration)
	}
	if r.MaxFragmentDuration > r.SegmentDuration {
		bad("recording.max_fragment_duration", "must not exceed segment_duration")
	}
	if r.FsyncInterval < 0 {
		bad("recording.fsync_interval", "must not be negative")
	}
	if r.MaxClockSkew < 100*time.Millisecond || r.MaxClockSkew > time.Hour {
		bad("recording.max_clock_skew", "want 100ms..1h, got %s", r.MaxClockSkew)
	}
	if r.IndexOutage < time.Second || r.IndexOutage > time.Hour {
		bad("recording.index_outage", "want 1s..1h, got %s", r.IndexOutage)
	}
	if !validTransport(r.Transport) {
		bad("recording.transport", "want tcp or udp, got %q", r.Transport)
	}
	if c.Upload.Workers < 1 || c.Upload.Workers > 64 {
		bad("upload.workers", "want 1..64, got %d", c.Upload.Workers)
	}
	if c.Upload.MaxBackoff < time.Second || c.Upload.MaxBackoff > time.Hour {
		bad("upload.max_backoff", "want 1s..1h, got %s", c.Upload.MaxBackoff)
	}
	if u := c.Index.PostgresURL; u != "" {
		// Never echo the URL: it may hold a password.
		if pu, err := url.Parse(u); err != nil || (pu.Scheme != "postgres" && pu.Scheme != "postgresql") || pu.Host == "" {
			bad("index.postgres_url", "want postgres://[user[:password]@]host[:port]/database[?options]")
		}
	}
	c.validateCluster(bad)
	if w := c.Index.CommitWindow; w < 0 || w > time.Second {
		bad("index.commit_window", "want [0, 1s], got %s", w)
	}
	if c.Replay.GapTolerance <= 0 || c.Replay.GapTolerance > 10*time.Second {
		bad("replay.gap_tolerance", "want (0, 10s], got %s", c.Replay.GapTolerance)
	}
	if c.Live.ViewerRing < 8 || c.Live.ViewerRing > 65536 {
		bad("live.viewer_ring", "want 8..65536, got %d", c.Live.ViewerRing)
	}
	if c.Live.RTSPListen != "" {
		if _, port, err := net.SplitHostPort(c.Live.RTSPListen); err != nil || port == "" {
			bad("live.rtsp_listen", "want host:port, got %q", c.Live.RTSPListen)
		} else if c.Live.RTSPListen == c.Listen {
			bad("live.rtsp_listen", "must differ from listen (%s)", c.Listen)
		}
	}
	if c.Live.TicketTTL < time.Second || c.Live.TicketTTL > 10*time.Minute {
		bad("live.ticket_ttl", "want 1s..10m, got %s", c.Live.TicketTTL)
	}
	if c.Replay.MaxWindow < time.Minute {
		bad("replay.max_window", "want at least 1m, got %s", c.Replay.MaxWindow)
	}
	if n := c.Export.MaxConcurrent; n < 1 || n > 64 {
		bad("export.max_concurrent", "want 1..64, got %d", n)
	}
	if e := c.Export.Expiry; e < time.Minute || e > 366*24*time.Hour {
		bad("export.expiry", "want 1m..8784h, got %s", e)
	}
	if rt := c.Retention; rt.MaxAge < time.Minute {
		bad("retention.max_age", "want at least 1m, got %s", rt.MaxAge)
	}
	if rt := c.Retention; rt.MaxBytes < 0 || rt.MinFreeBytes < 0 || rt.ReserveBytes < 0 {
		bad("retention.max_bytes", "max_bytes, min_free_bytes and reserve_bytes must not be negative")
	}
	if rt := c.Retention; rt.Interval < time.Second || rt.Interval > 24*time.Hour {
		bad("retention.interval", "want 1s..24h, got %s", rt.Interval)
	}
	if rt := c.Retention; rt.CheckInterval < 100*time.Millisecond || rt.CheckInterval > time.Hour {
		bad("retention.check_interval", "want 100ms..1h, got %s", rt.CheckInterval)
	}
	if c.Storage.SpoolMaxBytes < -1 {
		bad("storage.spool_max_bytes", "want -1 (no cap), 0 (a quarter of the file system) or a byte count")
	}
	if a := c.Auth; a.BootstrapToken != "" && a.BootstrapTokenFile != "" {
		bad("auth.bootstrap_token", "set at most one of bootstrap_token and bootstrap_token_file")
	} else if a.BootstrapToken != "" && len(a.BootstrapToken) < MinTokenLen {
		bad("auth.bootstrap_token", "want at least %d characters", MinTokenLen)
	}
	if a := c.Auth; a.MetricsToken != "" && a.MetricsTokenFile != "" {
		bad("auth.metrics_token", "set at most one of metrics_token and metrics_token_file")
	} else if a.MetricsToken != "" && len(a.MetricsToken) < MinTokenLen {
		bad("auth.metrics_token", "want at least %d characters", MinTokenLen)
	}
	if c.Auth.SessionTTL < time.Minute || c.Auth.SessionTTL > 31*24*time.Hour {
		bad("auth.session_ttl", "want 1m..744h, got %s", c.Auth.SessionTTL)
	}
	if c.Audit.AnchorInterval < time.Second || c.Audit.AnchorInterval > time.Hour {
		bad("audit.anchor_interval", "want 1s..1h, got %s", c.Audit.AnchorInterval)
	}
	if c.Audit.KeyFile != "" && c.Audit.KeyFile == c.Index.Path {
		bad("audit.key_file", "must not be the index")
	}
	if c.Auth.MaxAPITokenTTL < time.Hour || c.Auth.MaxAPITokenTTL > 366*24*time.Hour {
		bad("auth.max_api_token_ttl", "want 1h..8784h, got %s", c.Auth.MaxAPITokenTTL)
	}
	if s3 := c.Storage.S3; s3.Endpoint != "" {
		if _, _, err := net.SplitHostPort(s3.Endpoint); err != nil {
			bad("storage.s3.endpoint", "want host:port, got %q", s3.Endpoint)
		}
		if (s3.AccessKey == "") == (s3.AccessKeyFile == "") {
			bad("storage.s3.access_key", "set exactly one of access_key and access_key_file")
		}
		if (s3.SecretKey == "") == (s3.SecretKeyFile == "") {
			bad("storage.s3.secret_key", "set exactly one of secret_key and secret_key_file")
		}
	}
	if kf := c.Secrets.KeyFile; kf != "" {
		if fi, err := os.Stat(kf); err != nil {
			bad("secrets.key_file", "%v", err)
		} else if fi.Mode().Perm()&0o077 != 0 {
			bad("secrets.key_file", "mode %#o lets others read it; chmod 600 %s", fi.Mode().Perm(), kf)
		}
	}
	if m := c.Motion; m.FPS < 1 || m.FPS > 25 {
		bad("motion.fps", "want 1..25, got %d", m.FPS)
	}
	if m := c.Motion; m.Cols < 4 || m.Cols > 160 || m.Rows < 3 || m.Rows > 90 || 160%m.Cols != 0 || 90%m.Rows != 0 {
		bad("motion.cols", "want cols dividing 160 (4..160) and rows dividing 90 (3..90), got %dx%d", m.Cols, m.Rows)
	}
	if m := c.Motion; m.PrePad < 0 || m.PrePad > time.Minute || m.PostPad < 0 || m.PostPad > time.Minute {
		bad("motion.pre_pad", "want pre_pad and post_pad in 0..1m, got %s and %s", m.PrePad, m.PostPad)
	}
	if m := c.Motion; m.MinDuration < 0 || m.MinDuration > time.Hour {
		bad("motion.min_duration", "want 0..1h, got %s", m.MinDuration)
	}
	if m := c.Motion; m.QueueSize < 1 || m.QueueSize > 10000 {
		bad("motion.queue_size", "want 1..10000, got %d", m.QueueSize)
	}
	seen := map[string]bool{}
	for i, cam := range c.Cameras {
		field := fmt.Sprintf("cameras[%d]", i)
		if !cameraIDRe.MatchString(cam.ID) {
			bad(field+".id", "want 1-64 of [A-Za-z0-9_-] starting with a letter or digit, got %q", cam.ID)
		} else if seen[cam.ID] {
			bad(field+".id", "duplicate id %q", cam.ID)
		}
		seen[cam.ID] = true
		if u, err := url.Parse(cam.URL); err != nil || (u.Scheme != "rtsp" && u.Scheme != "rtsps") || u.Host == "" {
			bad(field+".url", "want rtsp://host[:port]/path or rtsps://…")
		}
		if cam.Transport != "" && !validTransport(cam.Transport) {
			bad(field+".transport", "want tcp or udp, got %q", cam.Transport)
		}
		if cam.SubURL != "" {
			if u, err := url.Parse(cam.SubURL); err != nil || (u.Scheme != "rtsp" && u.Scheme != "rtsps") || u.Host == "" {
				bad(field+".sub_url", "want rtsp://host[:port]/path or rtsps://…")
			}
		}
	}
	return errors.Join(errs...)
}

var nodeIDRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// validateCluster checks the cluster section (only when enabled: the
// other fields are then ignored).
func (c *Config) validateCluster(bad func(field, format string, args ...any)) {
	k := c.Cluster
	if !k.Enabled {
		if k.SecretFile != "" {
			bad("cluster.secret_file", "needs cluster.enabled")
		}
		return
	}
	if k.SecretFile != "" {
		if k.AdvertiseURL == "" {
			bad("cluster.secret_file", "needs cluster.advertise_url (the other nodes reach this node's spool through it)")
		}
		if fi, err := os.Stat(k.SecretFile); err != nil {
			bad("cluster.secret_file", "%v", err)
		} else if fi.Mode().Perm()&0o077 != 0 {
			bad("cluster.secret_file", "mode %#o lets others read it; chmod 600 %s", fi.Mode().Perm(), k.SecretFile)
		} else if b, err := os.ReadFile(k.SecretFile); err != nil {
			bad("cluster.secret_file", "%v", err)
		} else if n := len(bytes.TrimSpace(b)); n < 32 {
			bad("cluster.secret_file", "%d bytes, want at least 32 (head -c 32 /dev/urandom | base64 > %s)", n, k.SecretFile)
		}
	}
	if k.FetchTimeout < 100*time.Millisecond || k.FetchTimeout > time.Minute {
		bad("cluster.fetch_timeout", "want 100ms..1m, got %s", k.FetchTimeout)
	}
	if c.Index.PostgresURL == "" {
		bad("cluster.enabled", "needs index.postgres_url (the nodes share the PostgreSQL index)")
	}
	if !nodeIDRe.MatchString(k.NodeID) {
		bad("cluster.node_id", "want 1-64 of [A-Za-z0-9._-], got %q", k.NodeID)
	}
	if k.AdvertiseURL != "" {
		if u, err := url.Parse(k.AdvertiseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("cluster.advertise_url", "want http(s)://host:port, got %q", k.AdvertiseURL)
		}
	}
	if k.Capacity < 1 || k.Capacity > 100000 {
		bad("cluster.capacity", "want 1..100000, got %d", k.Capacity)
	}
	if !(k.Weight > 0 && k.Weight <= 1000) {
		bad("cluster.weight", "want (0, 1000], got %g", k.Weight)
	}
	if k.LeaseTTL < time.Second || k.LeaseTTL > time.Minute {
		bad("cluster.lease_ttl", "want 1s..1m, got %s", k.LeaseTTL)
	}
}

func validTransport(s string) bool { return s == "tcp" || s == "udp" }

// EnvPrefix prefixes every environment override.
const EnvPrefix = "XUELIANG_"

// applyEnv sets every scalar field named by an XUELIANG_<YAML_PATH> variable,
// e.g. XUELIANG_LISTEN or XUELIANG_RECORDING_SEGMENT_DURATION. Lists (cameras)
// are file-only. An unknown XUELIANG_ variable is ignored (other tools share
// the prefix, e.g. XUELIANG_CREDENTIAL_KEY). XUELIANG_BOOTSTRAP_TOKEN is
// the one alias: it sets auth.bootstrap_token (and overrides a
// bootstrap_token_file).
func applyEnv(cfg *Config, env []string) error {
	vars := map[string]string{}
	for _, kv := range env {
		k, v, ok := strings.Cut(kv, "=")
		if ok && strings.HasPrefix(k, EnvPrefix) {
			vars[k] = v
		}
	}
	if len(vars) == 0 {
		return nil
	}
	var errs []error
	walkScalars(reflect.ValueOf(cfg).Elem(), strings.TrimSuffix(EnvPrefix, "_"), func(name string, f reflect.Value) {
		v, ok := vars[name]
		if !ok {
			return
		}
		if err := setScalar(f, v); err != nil {
			errs = append(errs, fmt.Errorf("env %s: %w", name, err))
		}
	})
	if v, ok := vars[BootstrapTokenEnv]; ok && v != "" {
		cfg.Auth.BootstrapToken, cfg.Auth.BootstrapTokenFile = v, ""
	}
	return errors.Join(errs...)
}

func walkScalars(v reflect.Value, prefix string, fn func(string, reflect.Value)) {
	t := v.Type()
	for i := range t.NumField() {
		tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if tag == "" || tag == "-" {
			continue
		}
		name := prefix + "_" + strings.ToUpper(tag)
		f := v.Field(i)
		switch f.Kind() {
		case reflect.Struct:
			walkScalars(f, name, fn)
		case reflect.Slice, reflect.Map:
		default:
			fn(name, f)
		}
	}
}

var durationType = reflect.TypeFor[time.Duration]()

func setScalar(f reflect.Value, s string) error {
	switch {
	case f.Type() == durationType:
		d, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		f.SetInt(int64(d))
	case f.Kind() == reflect.String:
		f.SetString(s)
	case f.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return err
		}
		f.SetBool(b)
	case f.Kind() == reflect.Int:
		n, err := strconv.Atoi(s)
		if err != nil {
			return err
		}
		f.SetInt(int64(n))
	case f.Kind() == reflect.Float64:
		x, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return err
		}
		f.SetFloat(x)
	default:
		return fmt.Errorf("unsupported kind %s", f.Kind())
	}
	return nil
}

// CameraPolicy returns the camera network policy of c; ownPorts are the
// server's listening ports.
func (c *Config) CameraPolicy(ownPorts ...uint16) *camnet.Policy {
	allowed, _ := camnet.ParsePrefixes(c.CameraNetworks.Allowed) // validated
	return &camnet.Policy{Allowed: allowed, OwnPorts: ownPorts}
}
