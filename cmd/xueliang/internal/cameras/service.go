// Package cameras is the camera registry service: it validates cameras
// written by the API (and the installer CLI through it), seals their
// credentials, stores them in the index, and applies every change live by
// handing the complete list of cameras to record to a callback (the ingest
// manager's Update).
//
// Cameras declared in the configuration file are registered at start with
// source "config"; they are listed like the others but are read-only
// through the API (change the file). Removing a camera stops its recording
// and erases its URLs and credentials but keeps its index row, segments and
// footage (evidence); registering the same ID again continues it.
//
// Credentials: URLs are stored without user:password; the password is
// sealed (AES-256-GCM, registry.Sealer) and only opened to build the
// ingest configuration. Nothing here logs a URL with credentials, a
// username or a password.
package cameras

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"xueliang/cmd/xueliang/internal/registry"
	"xueliang/index"
	"xueliang/ingest"
)

// Errors of the service; the API maps them to status codes.
var (
	// ErrNotFound: no registered camera has this ID.
	ErrNotFound = errors.New("camera not found")
	// ErrExists: create of an ID that is already registered.
	ErrExists = errors.New("camera already exists")
	// ErrReadOnly: the camera is declared in the configuration file.
	ErrReadOnly = errors.New("camera is declared in the configuration file and is read-only through the API; edit the file")
)

// Store is the part of the index the registry uses (*index.DB).
type Store interface {
	Cameras(ctx context.Context) ([]index.Camera, error)
	Camera(ctx context.Context, id string) (index.Camera, error)
	PutCamera(ctx context.Context, c index.Camera) error
	UnregisterCamera(ctx context.Context, id string, now time.Time) error
}

// NetworkPolicy checks a stream URL's host and port (*camnet.Policy).
type NetworkPolicy interface {
	CheckURL(ctx context.Context, raw string) error
}

// checkNetworks adds a field error for each stream URL of v outside the
// allowed networks.
func (s *Service) checkNetworks(ctx context.Context, v validated, bad FieldErrors) FieldErrors {
	if s.Networks == nil {
		return bad
	}
	for field, raw := range map[string]string{"main_url": v.mainURL, "sub_url": v.subURL} {
		if raw == "" || bad[field] != "" {
			continue
		}
		if err := s.Networks.CheckURL(ctx, raw); err != nil {
			if bad == nil {
				bad = FieldErrors{}
			}
			bad[field] = err.Error() + " (camera_networks.allowed in the server configuration)"
		}
	}
	return bad
}

// Defaults are the server-wide recording settings a camera inherits.
type Defaults struct {
	SegmentDuration, MaxFragmentDuration time.Duration
	Transport                            string
}

// Service is the camera registry. Fill the fields, then call SyncConfig
// (once, at start) and Apply.
type Service struct {
	Store  Store
	Sealer *registry.Sealer
	// Policy checks the IDs of cameras created through the API. It
	// defaults to registry.XiayiCameras.
	Policy   registry.Policy
	Defaults Defaults
	// OnChange receives the complete list of cameras to record after every
	// change (ingest.Manager.Update). Nil ignores.
	OnChange func([]ingest.CameraConfig)
	// Networks, when set, refuses main_url and sub_url hosts outside the
	// allowed camera networks (camnet.Policy); the dialer checks again at
	// every connection.
	Networks NetworkPolicy
	// Logger; nil discards.
	Logger *slog.Logger
	// Now is the clock; it defaults to time.Now.
	Now func() time.Time

	mu        sync.Mutex // serialises writes
	townships atomic.Pointer[map[string]string]
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Service) log() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

func (s *Service) policy() registry.Policy {
	if s.Policy.Division == "" {
		return registry.XiayiCameras
	}
	return s.Policy
}

// Outcome of a write.
type Outcome string

// Outcomes.
const (
	Created   Outcome = "created"
	Updated   Outcome = "updated"
	Unchanged Outcome = "unchanged"
	Deleted   Outcome = "deleted"
	Failed    Outcome = "failed"
)

// List returns the registered cameras, by ID.
func (s *Service) List(ctx context.Context) ([]index.Camera, error) {
	all, err := s.Store.Cameras(ctx)
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, c := range all {
		if c.Registered() {
			out = append(out, c)
		}
	}
	return out, nil
}

// Get returns a registered camera or ErrNotFound.
func (s *Service) Get(ctx context.Context, id string) (index.Camera, error) {
	c, err := s.Store.Camera(ctx, id)
	if errors.Is(err, index.ErrNotFound) || (err == nil && !c.Registered()) {
		return index.Camera{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return c, err
}

// Create registers a new camera; ErrExists when the ID is registered.
func (s *Service) Create(ctx context.Context, in Input) (index.Camera, error) {
	v, bad := validate(in, s.policy())
	bad = s.checkNetworks(ctx, v, bad)
	if bad != nil {
		return index.Camera{}, &ValidationError{Fields: bad}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, err := s.lookup(ctx, v.id)
	if err != nil {
		return index.Camera{}, err
	}
	if old.Source == index.SourceConfig {
		return index.Camera{}, fmt.Errorf("%w: %s", ErrReadOnly, v.id)
	}
	if old.Registered() {
		return index.Camera{}, fmt.Errorf("%w: %s", ErrExists, v.id)
	}
	c, _, err := s.build(v, old)
	if err != nil {
		return index.Camera{}, err
	}
	if err := s.Store.PutCamera(ctx, c); err != nil {
		return index.Camera{}, err
	}
	s.log().Info("camera registered", "camera", c.ID, "township", c.Township, "enabled", c.Enabled)
	return c, s.applyLocked(ctx)
}

// Put registers or replaces the camera id with in (in.ID may be empty or
// must equal id). It is idempotent: writing the same input again is
// Unchanged and touches nothing.
func (s *Service) Put(ctx context.Context, id string, in Input) (index.Camera, Outcome, error) {
	if in.ID == "" {
		in.ID = id
	}
	v, bad := validate(in, s.policy())
	bad = s.checkNetworks(ctx, v, bad)
	if in.ID != id {
		if bad == nil {
			bad = FieldErrors{}
		}
		bad["id"] = fmt.Sprintf("does not match the path's camera ID %s", truncate(id))
	}
	if bad != nil {
		return index.Camera{}, Failed, &ValidationError{Fields: bad}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, out, err := s.putLocked(ctx, v, false, slog.LevelInfo)
	if err != nil || out == Unchanged {
		return c, out, err
	}
	return c, out, s.applyLocked(ctx)
}

// putLocked writes v unless dryRun or unchanged, logging a write at level.
func (s *Service) putLocked(ctx context.Context, v validated, dryRun bool, level slog.Level) (index.Camera, Outcome, error) {
	c, out, _, err := s.putDropLocked(ctx, v, dryRun, level)
	return c, out, err
}

// putDropLocked is putLocked that also reports whether the stored password
// was dropped (buildDrop).
func (s *Service) putDropLocked(ctx context.Context, v validated, dryRun bool, level slog.Level) (index.Camera, Outcome, bool, error) {
	old, err := s.lookup(ctx, v.id)
	if err != nil {
		return index.Camera{}, Failed, false, err
	}
	if old.Source == index.SourceConfig {
		return index.Camera{}, Failed, false, fmt.Errorf("%w: %s", ErrReadOnly, v.id)
	}
	c, same, dropped, err := s.buildDrop(v, old)
	if err != nil {
		return index.Camera{}, Failed, false, err
	}
	out := Updated
	switch {
	case !old.Registered():
		out = Created
	case same:
		return old, Unchanged, false, nil
	}
	if dryRun {
		return c, out, dropped, nil
	}
	if err := s.Store.PutCamera(ctx, c); err != nil {
		return index.Camera{}, Failed, false, err
	}
	if dropped {
		s.log().Log(ctx, level, "camera endpoint changed, stored password dropped", "camera", c.ID)
	}
	s.log().Log(ctx, level, "camera written", "camera", c.ID, "outcome", string(out), "township", c.Township, "enabled", c.Enabled)
	return c, out, dropped, nil
}

// Delete removes a camera from the registry: its puller stops; its footage
// and index rows are kept.
func (s *Service) Delete(ctx context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, err := s.lookup(ctx, id)
	if err != nil {
		return err
	}
	if old.Source == index.SourceConfig {
		return fmt.Errorf("%w: %s", ErrReadOnly, id)
	}
	if !old.Registered() {
		return fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err := s.Store.UnregisterCamera(ctx, id, s.now()); err != nil {
		return err
	}
	s.log().Info("camera removed", "camera", id)
	return s.applyLocked(ctx)
}

// lookup returns the camera row of id, or a zero Camera (Source "") when
// there is none.
func (s *Service) lookup(ctx context.Context, id string) (index.Camera, error) {
	c, err := s.Store.Camera(ctx, id)
	if errors.Is(err, index.ErrNotFound) {
		return index.Camera{}, nil
	}
	return c, err
}

// build makes the row for v over the existing row old and reports whether
// it is the same as old (ignoring timestamps and the sealing's random
// nonce).
func (s *Service) build(v validated, old index.Camera) (index.Camera, bool, error) {
	c, same, _, err := s.buildDrop(v, old)
	return c, same, err
}

// buildDrop is build that also reports whether old's stored password was
// dropped because an endpoint changed (SameEndpoints) and none was given.
func (s *Service) buildDrop(v validated, old index.Camera) (index.Camera, bool, bool, error) {
	now := s.now().UTC()
	c := index.Camera{
		ID: v.id, Name: v.name, Township: v.township, Village: v.village, Lat: v.lat, Lon: v.lon,
		MainURL: v.mainURL, SubURL: v.subURL, Username: v.username, Transport: v.transport,
		SegmentDuration: v.segmentDuration, Motion: v.motion, Enabled: v.enabled,
		Source: index.SourceAPI, Created: now, Updated: now,
	}
	if old.Registered() {
		c.Created = old.Created
	}
	oldPass, err := s.open(old)
	if err != nil {
		if v.password == nil && v.username != "" {
			return index.Camera{}, false, false, &ValidationError{Fields: FieldErrors{
				"password": "the stored password cannot be decrypted with this server's key; send it again"}}
		}
		oldPass = "\x00unreadable" // differs from every valid password: resealed
	}
	newPass, dropped := oldPass, false
	if v.password == nil && old.Registered() && !SameEndpoints(old, c) {
		// The stored password is only ever sent where it was sent before:
		// a new host, port or scheme needs the password given again
		// (an installer must not redirect it to a host of theirs).
		newPass, dropped = "", oldPass != ""
	}
	if v.password != nil {
		newPass = *v.password
	}
	if c.Username == "" {
		newPass = ""
	}
	samePass := newPass == oldPass
	switch {
	case newPass == "":
	case samePass && old.SealedPassword != "":
		c.SealedPassword = old.SealedPassword
	default:
		if c.SealedPassword, err = s.Sealer.Seal([]byte(newPass)); err != nil {
			return index.Camera{}, false, false, err
		}
	}
	same := old.Registered() && samePass && sameFields(c, old)
	return c, same, dropped && c.Username != "", nil
}

// open returns the clear password of c ("" when none).
func (s *Service) open(c index.Camera) (string, error) {
	if c.SealedPassword == "" {
		return "", nil
	}
	if s.Sealer == nil {
		return "", errors.New("camera credentials: no key")
	}
	b, err := s.Sealer.Open(c.SealedPassword)
	if err != nil {
		return "", fmt.Errorf("camera %s credentials: %w", c.ID, err)
	}
	return string(b), nil
}

// SameEndpoints reports whether every stream endpoint (scheme, host and
// port of main_url and sub_url) of c is one old already had: only then is
// old's stored password kept without being given again.
func SameEndpoints(old, c index.Camera) bool {
	have := map[string]bool{}
	for _, raw := range []string{old.MainURL, old.SubURL} {
		if e, ok := endpoint(raw); ok {
			have[e] = true
		}
	}
	for _, raw := range []string{c.MainURL, c.SubURL} {
		if raw == "" {
			continue
		}
		if e, ok := endpoint(raw); !ok || !have[e] {
			return false
		}
	}
	return true
}

// endpoint is "scheme://host:port" of an rtsp(s) URL, with the default
// port filled in and the host lower-cased.
func endpoint(raw string) (string, bool) {
	if raw == "" {
		return "", false
	}
	u, err := url.Parse(raw)
	if err != nil || u.Hostname() == "" {
		return "", false
	}
	port := u.Port()
	if port == "" {
		port = "554"
		if u.Scheme == "rtsps" {
			port = "322"
		}
	}
	return strings.ToLower(u.Scheme) + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), port), true
}

func sameFields(a, b index.Camera) bool {
	return a.ID == b.ID && a.Name == b.Name && a.Township == b.Township && a.Village == b.Village &&
		sameFloat(a.Lat, b.Lat) && sameFloat(a.Lon, b.Lon) && a.MainURL == b.MainURL && a.SubURL == b.SubURL &&
		a.Username == b.Username && a.Transport == b.Transport && a.SegmentDuration == b.SegmentDuration &&
		a.Motion == b.Motion && a.Enabled == b.Enabled && a.Source == b.Source
}

func sameFloat(a, b *float64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// ConfigCamera is a camera declared in the configuration file. Its URL may
// carry user:password; they are moved to the sealed credential fields.
type ConfigCamera struct {
	ID, Name, Township, URL, Transport string
	Disabled                           bool
	// SubURL (credentials, if any, are dropped: the main URL's apply) and
	// Motion: motion analysis (docs/motion.md).
	SubURL string
	Motion bool
}

// SyncConfig registers the configuration file's cameras (source "config")
// and unregisters the config cameras no longer in the file. It does not
// call OnChange (call Apply).
func (s *Service) SyncConfig(ctx context.Context, cams []ConfigCamera) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	want := map[string]bool{}
	for _, cc := range cams {
		want[cc.ID] = true
		old, err := s.lookup(ctx, cc.ID)
		if err != nil {
			return err
		}
		u, err := url.Parse(cc.URL)
		if err != nil {
			return fmt.Errorf("camera %s: invalid url", cc.ID)
		}
		var user, pass string
		if u.User != nil {
			user = u.User.Username()
			pass, _ = u.User.Password()
			u.User = nil
		}
		now := s.now().UTC()
		c := index.Camera{
			ID: cc.ID, Name: cc.Name, Township: cc.Township, Village: old.Village, Lat: old.Lat, Lon: old.Lon,
			MainURL: u.String(), Username: user, Transport: cc.Transport, Enabled: !cc.Disabled,
			Source: index.SourceConfig, Created: now, Updated: now,
			Motion: cc.Motion,
		}
		if su, err := url.Parse(cc.SubURL); err == nil && cc.SubURL != "" {
			su.User = nil
			c.SubURL = su.String()
		}
		oldPass, err := s.open(old)
		if err != nil {
			oldPass = "\x00" // unreadable: reseal
		}
		if pass != "" {
			if pass == oldPass {
				c.SealedPassword = old.SealedPassword
			} else if c.SealedPassword, err = s.Sealer.Seal([]byte(pass)); err != nil {
				return err
			}
		}
		if old.Source == index.SourceConfig && pass == oldPass && sameFields(c, old) {
			continue
		}
		if old.Registered() {
			c.Created = old.Created
		}
		if err := s.Store.PutCamera(ctx, c); err != nil {
			return err
		}
	}
	all, err := s.Store.Cameras(ctx)
	if err != nil {
		return err
	}
	for _, c := range all {
		if c.Source == index.SourceConfig && !want[c.ID] {
			if err := s.Store.UnregisterCamera(ctx, c.ID, s.now()); err != nil {
				return err
			}
			s.log().Info("camera no longer in the configuration file, removed", "camera", c.ID)
		}
	}
	return nil
}

// Apply hands the current list of cameras to record to OnChange.
func (s *Service) Apply(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.applyLocked(ctx)
}

func (s *Service) applyLocked(ctx context.Context) error {
	cfgs, err := s.ingestConfigs(ctx)
	if err != nil {
		return fmt.Errorf("apply camera changes: %w", err)
	}
	if s.OnChange != nil {
		s.OnChange(cfgs)
	}
	return nil
}

// IngestConfigs returns the ingest configuration of every enabled camera,
// with the credentials in the URLs.
func (s *Service) IngestConfigs(ctx context.Context) ([]ingest.CameraConfig, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ingestConfigs(ctx)
}

func (s *Service) ingestConfigs(ctx context.Context) ([]ingest.CameraConfig, error) {
	all, err := s.List(ctx)
	if err != nil {
		return nil, err
	}
	towns := make(map[string]string, len(all))
	var out []ingest.CameraConfig
	for _, c := range all {
		towns[c.ID] = c.Township
		if !c.Enabled {
			continue
		}
		pass, err := s.open(c)
		if err != nil {
			// Recorded without the password: the puller reports the
			// authentication failure in its status.
			s.log().Error("cannot open camera credentials", "camera", c.ID, "err", err)
		}
		cfg := ingest.CameraConfig{
			ID: c.ID, URL: withCredentials(c.MainURL, c.Username, pass), SubURL: withCredentials(c.SubURL, c.Username, pass),
			Transport: c.Transport, SegmentDuration: c.SegmentDuration, MaxFragmentDuration: s.Defaults.MaxFragmentDuration,
			Motion: c.Motion,
		}
		if cfg.Transport == "" {
			cfg.Transport = s.Defaults.Transport
		}
		if cfg.SegmentDuration == 0 {
			cfg.SegmentDuration = s.Defaults.SegmentDuration
		}
		out = append(out, cfg)
	}
	s.townships.Store(&towns)
	return out, nil
}

// withCredentials puts user and pass into raw (an rtsp:// URL); it returns
// raw unchanged when there is no user or raw is empty.
func withCredentials(raw, user, pass string) string {
	if raw == "" || user == "" {
		return raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	if pass == "" {
		u.User = url.User(user)
	} else {
		u.User = url.UserPassword(user, pass)
	}
	return u.String()
}

// Township returns the township of a registered camera (the metrics
// label), as of the last change; "" when unknown.
func (s *Service) Township(id string) string {
	m := s.townships.Load()
	if m == nil {
		return ""
	}
	return (*m)[id]
}
