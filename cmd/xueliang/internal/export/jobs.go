package export

import (
	"archive/zip"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"xueliang/cmd/xueliang/internal/registry"
	"xueliang/cmd/xueliang/internal/replay"
	"xueliang/index"
)

// Replayer builds the MP4s (*replay.Replayer).
type Replayer interface {
	Plan(ctx context.Context, req replay.Request) (*replay.Plan, error)
	PrepareMP4(ctx context.Context, p *replay.Plan) (*replay.MP4, error)
}

// Index is what an export reads from the index besides footage (*index.DB).
type Index interface {
	Camera(ctx context.Context, id string) (index.Camera, error)
	// QueryAudit returns audit entries, newest first.
	QueryAudit(ctx context.Context, q index.AuditQuery) ([]index.AuditRecord, error)
}

// Sentinel errors of Manager.Start and friends; test with errors.Is.
var (
	// ErrBusy: MaxConcurrent exports are running; try again later.
	ErrBusy = errors.New("too many exports running")
	// ErrBadRequest: the request is malformed (unknown camera, empty or
	// too long range).
	ErrBadRequest = errors.New("invalid export request")
	// ErrNotFound: no such export job (or it expired).
	ErrNotFound = errors.New("no such export")
	// ErrNotReady: the job has no package (running, failed or cancelled).
	ErrNotReady = errors.New("export package not ready")
)

// Job states.
const (
	StateRunning   = "running"
	StateDone      = "done"
	StateFailed    = "failed"
	StateCancelled = "cancelled"
)

// Config configures a Manager. Zero fields take their defaults.
type Config struct {
	// Dir holds the packages (<id>.zip and <id>.json) and, while a job
	// runs, its work directory <id>.tmp. Required.
	Dir string
	// Key signs every manifest. Required.
	Key      ed25519.PrivateKey
	Replayer Replayer
	Index    Index
	// MaxConcurrent bounds the jobs running at once; a request beyond it
	// is refused (ErrBusy, counted). It defaults to 2.
	MaxConcurrent int
	// Expiry is how long a finished package is kept. It defaults to 24h.
	Expiry time.Duration
	// MaxWindow bounds To-From. It defaults to 24h.
	MaxWindow time.Duration
	// Server names the program in the manifest (its version).
	Server string
	// Now is the clock. It defaults to time.Now.
	Now    func() time.Time
	Logger *slog.Logger
	// Registerer receives the export metrics; nil leaves them unregistered.
	Registerer prometheus.Registerer
}

// Request asks for the footage of Camera in [From, To).
type Request struct {
	Camera   string
	From, To time.Time
	By       Creator
	// Exact re-encodes each file's partial first GOP (replay.Request.Exact).
	Exact bool
}

// Job is a snapshot of an export job.
type Job struct {
	ID     string    `json:"id"`
	Camera string    `json:"camera"`
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	// Exact: every file starts with a re-encoded closed GOP (exact=1).
	Exact bool   `json:"exact,omitempty"`
	State string `json:"state"`
	// Progress is the share of the range processed, 0..1.
	Progress   float64    `json:"progress"`
	Error      string     `json:"error,omitempty"`
	CreatedBy  Creator    `json:"created_by"`
	CreatedAt  time.Time  `json:"created_at"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
	// Files, Gaps and Size describe the package (state done).
	Files int        `json:"files"`
	Gaps  []Interval `json:"gaps,omitempty"`
	Size  int64      `json:"size"`
	// ManifestSHA256 is the SHA-256 of the package's manifest.json.
	ManifestSHA256 string `json:"manifest_sha256,omitempty"`
}

type job struct {
	Job
	cancel context.CancelFunc
	done   chan struct{}
}

// Manager runs export jobs and keeps their packages until they expire.
type Manager struct {
	cfg Config
	log *slog.Logger
	pub string
	m   *exportMetrics

	base     context.Context
	stopBase context.CancelFunc
	wg       sync.WaitGroup

	mu      sync.Mutex
	jobs    map[string]*job
	running int
}

// NewManager returns a manager over cfg.Dir, creating it (0700), removing
// the work directories of jobs a stop interrupted and loading the
// packages of finished jobs that have not expired. Start the expiry
// sweeper with Run.
func NewManager(cfg Config) (*Manager, error) {
	if cfg.Dir == "" || len(cfg.Key) != ed25519.PrivateKeySize || cfg.Replayer == nil || cfg.Index == nil {
		return nil, errors.New("export: Dir, Key, Replayer and Index are required")
	}
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = 2
	}
	if cfg.Expiry <= 0 {
		cfg.Expiry = 24 * time.Hour
	}
	if cfg.MaxWindow <= 0 {
		cfg.MaxWindow = 24 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("export dir: %w", err)
	}
	m := &Manager{
		cfg:  cfg,
		log:  cfg.Logger.With("component", "export"),
		pub:  FormatPublicKey(cfg.Key.Public().(ed25519.PublicKey)),
		m:    newMetrics(cfg.Registerer),
		jobs: map[string]*job{},
	}
	m.base, m.stopBase = context.WithCancel(context.Background())
	if err := m.load(); err != nil {
		return nil, err
	}
	return m, nil
}

// PublicKey is the signing key's public half ("ed25519:<base64>").
func (m *Manager) PublicKey() string { return m.pub }

// load restores finished jobs from <id>.json and removes what an
// interrupted job left.
func (m *Manager) load() error {
	ents, err := os.ReadDir(m.cfg.Dir)
	if err != nil {
		return fmt.Errorf("export dir: %w", err)
	}
	for _, e := range ents {
		name := e.Name()
		p := filepath.Join(m.cfg.Dir, name)
		switch {
		case strings.HasSuffix(name, ".tmp"):
			if err := os.RemoveAll(p); err != nil {
				m.log.Warn("cannot remove interrupted export", "path", p, "err", err)
			}
		case strings.HasSuffix(name, ".json"):
			b, err := os.ReadFile(p)
			var j Job
			if err == nil {
				err = json.Unmarshal(b, &j)
			}
			if err != nil || j.State != StateDone || !validID(j.ID) || j.ID+".json" != name {
				m.log.Warn("unreadable export job file left alone", "path", p, "err", err)
				continue
			}
			if _, err := os.Stat(m.zipPath(j.ID)); err != nil {
				m.log.Warn("export package missing", "id", j.ID, "err", err)
				os.Remove(p)
				continue
			}
			m.jobs[j.ID] = &job{Job: j}
		}
	}
	return nil
}

func validID(id string) bool {
	if len(id) != 24 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil
}

func (m *Manager) zipPath(id string) string  { return filepath.Join(m.cfg.Dir, id+".zip") }
func (m *Manager) jobPath(id string) string  { return filepath.Join(m.cfg.Dir, id+".json") }
func (m *Manager) workPath(id string) string { return filepath.Join(m.cfg.Dir, id+".tmp") }

// Run removes expired packages until ctx ends, then cancels the running
// jobs and waits for them.
func (m *Manager) Run(ctx context.Context) error {
	every := min(m.cfg.Expiry/10, time.Minute)
	t := time.NewTicker(max(every, time.Second))
	defer t.Stop()
	m.sweep()
	for {
		select {
		case <-ctx.Done():
			m.stopBase()
			m.wg.Wait()
			return nil
		case <-t.C:
			m.sweep()
		}
	}
}

// Close cancels the running jobs and waits for them. It is safe to call
// more than once.
func (m *Manager) Close() error {
	m.stopBase()
	m.wg.Wait()
	return nil
}

func (m *Manager) sweep() {
	now := m.cfg.Now()
	m.mu.Lock()
	var expired []string
	for id, j := range m.jobs {
		if j.State != StateRunning && j.ExpiresAt != nil && now.After(*j.ExpiresAt) {
			expired = append(expired, id)
			delete(m.jobs, id)
		}
	}
	m.mu.Unlock()
	for _, id := range expired {
		m.removeFiles(id)
		m.m.expired.Inc()
		m.log.Info("export expired", "id", id)
	}
}

func (m *Manager) removeFiles(id string) {
	for _, p := range []string{m.workPath(id), m.zipPath(id), m.jobPath(id)} {
		if err := os.RemoveAll(p); err != nil {
			m.log.Warn("cannot remove export file", "path", p, "err", err)
		}
	}
}

// Start validates req and starts its job. It returns ErrBadRequest or
// ErrBusy (wrapped) when it cannot.
func (m *Manager) Start(ctx context.Context, req Request) (Job, error) {
	if req.Camera == "" || !req.From.Before(req.To) {
		return Job{}, fmt.Errorf("%w: want a camera and from < to", ErrBadRequest)
	}
	if d := req.To.Sub(req.From); d > m.cfg.MaxWindow {
		return Job{}, fmt.Errorf("%w: range %s longer than %s", ErrBadRequest, d, m.cfg.MaxWindow)
	}
	cam, err := m.cfg.Index.Camera(ctx, req.Camera)
	if errors.Is(err, index.ErrNotFound) {
		return Job{}, fmt.Errorf("%w: unknown camera %q", ErrBadRequest, req.Camera)
	}
	if err != nil {
		return Job{}, err
	}
	var idb [12]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return Job{}, err
	}
	m.mu.Lock()
	if m.running >= m.cfg.MaxConcurrent {
		m.mu.Unlock()
		m.m.rejected.Inc()
		return Job{}, fmt.Errorf("%w (%d); try again later", ErrBusy, m.cfg.MaxConcurrent)
	}
	m.running++
	jctx, cancel := context.WithCancel(m.base)
	j := &job{Job: Job{
		ID: hex.EncodeToString(idb[:]), Camera: req.Camera, From: req.From.UTC(), To: req.To.UTC(), Exact: req.Exact,
		State: StateRunning, CreatedBy: req.By, CreatedAt: m.cfg.Now().UTC(),
	}, cancel: cancel, done: make(chan struct{})}
	m.jobs[j.ID] = j
	snap := j.Job
	m.mu.Unlock()
	m.m.running.Inc()
	m.log.Info("export started", "id", j.ID, "camera", req.Camera, "from", snap.From, "to", snap.To, "user", req.By.User)
	m.wg.Go(func() { m.run(jctx, j, cam) })
	return snap, nil
}

// Get returns the job id.
func (m *Manager) Get(id string) (Job, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	j, ok := m.jobs[id]
	if !ok {
		return Job{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return j.Job, nil
}

// List returns every job not yet expired (running, done, failed or
// cancelled), newest first.
func (m *Manager) List() []Job {
	m.mu.Lock()
	out := make([]Job, 0, len(m.jobs))
	for _, j := range m.jobs {
		out = append(out, j.Job)
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b Job) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// Cancel stops a running job, or deletes a finished job's package. The
// job is reported cancelled until it expires.
func (m *Manager) Cancel(id string) (Job, error) {
	m.mu.Lock()
	j, ok := m.jobs[id]
	if !ok {
		m.mu.Unlock()
		return Job{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if j.State == StateRunning {
		j.cancel()
		done := j.done
		m.mu.Unlock()
		<-done
		return m.Get(id)
	}
	if j.State == StateDone {
		j.State = StateCancelled
		j.Size, j.Files = 0, 0
		m.m.deleted.Inc()
	}
	snap := j.Job
	m.mu.Unlock()
	m.removeFiles(id)
	m.log.Info("export deleted", "id", id)
	return snap, nil
}

// Open returns the package of a finished job, to be closed by the caller.
func (m *Manager) Open(id string) (*os.File, Job, error) {
	j, err := m.Get(id)
	if err != nil {
		return nil, j, err
	}
	if j.State != StateDone {
		return nil, j, fmt.Errorf("%w: state %s", ErrNotReady, j.State)
	}
	f, err := os.Open(m.zipPath(id))
	if err != nil {
		return nil, j, err
	}
	m.m.downloads.Inc()
	return f, j, nil
}

func (m *Manager) setProgress(j *job, p float64) {
	m.mu.Lock()
	j.Progress = min(max(p, j.Progress), 1)
	m.mu.Unlock()
}

func (m *Manager) run(ctx context.Context, j *job, cam index.Camera) {
	defer close(j.done)
	res, err := m.build(ctx, j, cam)
	now := m.cfg.Now().UTC()
	exp := now.Add(m.cfg.Expiry)
	m.mu.Lock()
	m.running--
	j.FinishedAt, j.ExpiresAt = &now, &exp
	switch {
	case err == nil:
		j.State, j.Progress = StateDone, 1
		j.Files, j.Gaps, j.Size, j.ManifestSHA256 = res.files, res.gaps, res.size, res.manifestSum
	case ctx.Err() != nil:
		j.State, j.Error = StateCancelled, "cancelled"
	default:
		j.State, j.Error = StateFailed, err.Error()
	}
	snap := j.Job
	m.mu.Unlock()
	m.m.running.Dec()
	m.m.jobs.WithLabelValues(snap.State).Inc()
	if err != nil {
		m.removeFiles(j.ID)
		if snap.State == StateFailed {
			m.log.Error("export failed", "id", j.ID, "camera", j.Camera, "err", err)
		} else {
			m.log.Info("export cancelled", "id", j.ID, "camera", j.Camera)
		}
		return
	}
	m.m.bytes.Add(float64(res.size))
	if err := writeJSONFile(m.jobPath(j.ID), snap); err != nil {
		// The package is served until the restart; it is not reloaded.
		m.log.Warn("cannot persist export job", "id", j.ID, "err", err)
	}
	m.log.Info("export done", "id", j.ID, "camera", j.Camera, "files", res.files, "gaps", len(res.gaps), "bytes", res.size)
}

type built struct {
	files       int
	gaps        []Interval
	size        int64
	manifestSum string
}

// build writes the package of j: the MP4s into the work directory, then
// the manifest, its signature and the public key, then the zip.
func (m *Manager) build(ctx context.Context, j *job, cam index.Camera) (built, error) {
	var out built
	work := m.workPath(j.ID)
	if err := os.Mkdir(work, 0o700); err != nil {
		return out, err
	}
	man := Manifest{
		Format: Format, ID: j.ID,
		Camera: Camera{ID: cam.ID, Name: cam.Name, Township: cam.Township, Village: cam.Village},
		From:   j.From, To: j.To, Files: []File{}, Gaps: []Interval{},
		CreatedBy: j.CreatedBy, CreatedAt: j.CreatedAt, PublicKey: m.pub, Server: m.cfg.Server,
	}
	if d, err := registry.ParseDeviceID(cam.ID); err == nil {
		man.Camera.DeviceID = d.String()
	}
	total := j.To.Sub(j.From)
	progress := func(at time.Time) { m.setProgress(j, float64(at.Sub(j.From))/float64(total)) }
	cur := j.From
	for cur.Before(j.To) {
		plan, err := m.cfg.Replayer.Plan(ctx, replay.Request{Camera: j.Camera, Start: cur, End: j.To, Exact: j.Exact})
		if errors.Is(err, replay.ErrNoFootage) {
			man.Gaps = append(man.Gaps, Interval{cur, j.To})
			break
		}
		if err != nil {
			return out, fmt.Errorf("plan %s: %w", cur.Format(time.RFC3339Nano), err)
		}
		if plan.Start.After(cur) {
			man.Gaps = append(man.Gaps, Interval{cur, plan.Start.UTC()})
		}
		f, err := m.writeMP4(ctx, work, len(man.Files)+1, plan, func(share float64) {
			progress(plan.Start.Add(time.Duration(share * float64(plan.End.Sub(plan.Start)))))
		})
		if err != nil {
			return out, err
		}
		man.Files = append(man.Files, f)
		next := plan.End
		switch plan.Stop {
		case replay.StopGap, replay.StopLayoutChange:
			g := plan.Gaps[len(plan.Gaps)-1]
			if g.End.After(g.Start) {
				man.Gaps = append(man.Gaps, Interval{g.Start.UTC(), g.End.UTC()})
			}
			next = g.End
		default:
			if plan.End.Before(j.To) {
				man.Gaps = append(man.Gaps, Interval{plan.End.UTC(), j.To})
			}
			next = j.To
		}
		if !next.After(cur) {
			return out, fmt.Errorf("export made no progress at %s", cur.Format(time.RFC3339Nano))
		}
		cur = next
		progress(cur)
	}
	if len(man.Files) == 0 {
		return out, fmt.Errorf("%w in [%s, %s)", replay.ErrNoFootage, j.From.Format(time.RFC3339), j.To.Format(time.RFC3339))
	}
	heads, err := m.cfg.Index.QueryAudit(ctx, index.AuditQuery{Limit: 1})
	if err != nil {
		return out, fmt.Errorf("audit head: %w", err)
	}
	if len(heads) > 0 {
		man.AuditHead = AuditHead{ID: heads[0].ID, Hash: heads[0].Hash}
	}
	mb, err := json.MarshalIndent(man, "", "  ")
	if err != nil {
		return out, err
	}
	mb = append(mb, '\n')
	sig := ed25519.Sign(m.cfg.Key, mb)
	sum := sha256.Sum256(mb)
	out.manifestSum = hex.EncodeToString(sum[:])
	for name, b := range map[string][]byte{
		ManifestName:  mb,
		SignatureName: []byte(base64.StdEncoding.EncodeToString(sig) + "\n"),
		PublicKeyName: []byte(m.pub + "\n"),
	} {
		if err := os.WriteFile(filepath.Join(work, name), b, 0o600); err != nil {
			return out, err
		}
	}
	names := []string{ManifestName, SignatureName, PublicKeyName}
	for _, f := range man.Files {
		names = append(names, f.Name)
	}
	size, err := zipDir(ctx, work, names, m.zipPath(j.ID))
	if err != nil {
		return out, err
	}
	if err := os.RemoveAll(work); err != nil {
		m.log.Warn("cannot remove export work dir", "path", work, "err", err)
	}
	out.files, out.gaps, out.size = len(man.Files), man.Gaps, size
	return out, nil
}

// writeMP4 writes the progressive MP4 of plan as file n of the package.
func (m *Manager) writeMP4(ctx context.Context, dir string, n int, plan *replay.Plan, progress func(share float64)) (File, error) {
	mp4, err := m.cfg.Replayer.PrepareMP4(ctx, plan)
	if err != nil {
		return File{}, fmt.Errorf("prepare mp4: %w", err)
	}
	f := File{
		Name:  fmt.Sprintf("%02d_%s_%s.mp4", n, plan.Start.UTC().Format("20060102T150405.000Z"), plan.End.UTC().Format("20060102T150405.000Z")),
		Start: plan.Start.UTC(), End: plan.End.UTC(),
	}
	fh, err := os.OpenFile(filepath.Join(dir, f.Name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return File{}, err
	}
	h := sha256.New()
	cw := &countingWriter{w: io.MultiWriter(fh, h), total: mp4.Size(), progress: progress}
	err = mp4.Write(ctx, cw)
	if err == nil {
		err = fh.Sync()
	}
	if err = errors.Join(err, fh.Close()); err != nil {
		return File{}, fmt.Errorf("write %s: %w", f.Name, err)
	}
	f.Size, f.SHA256 = cw.n, hex.EncodeToString(h.Sum(nil))
	return f, nil
}

type countingWriter struct {
	w        io.Writer
	n, total int64
	last     int64
	progress func(float64)
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	if c.total > 0 && c.n-c.last >= 1<<20 {
		c.last = c.n
		c.progress(float64(c.n) / float64(c.total))
	}
	return n, err
}

// zipDir writes the named files of dir into a zip at dst (stored, not
// compressed: MP4s do not compress), durably, and returns its size.
func zipDir(ctx context.Context, dir string, names []string, dst string) (int64, error) {
	tmp := dst + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp)
	zw := zip.NewWriter(f)
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			f.Close()
			return 0, err
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store, Modified: time.Now()})
		if err != nil {
			f.Close()
			return 0, err
		}
		src, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			f.Close()
			return 0, err
		}
		_, err = io.Copy(w, src)
		src.Close()
		if err != nil {
			f.Close()
			return 0, fmt.Errorf("zip %s: %w", name, err)
		}
	}
	err = zw.Close()
	if err == nil {
		err = f.Sync()
	}
	var size int64
	if err == nil {
		var st os.FileInfo
		if st, err = f.Stat(); err == nil {
			size = st.Size()
		}
	}
	if err = errors.Join(err, f.Close()); err != nil {
		return 0, fmt.Errorf("zip package: %w", err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return 0, err
	}
	return size, syncDir(filepath.Dir(dst))
}

func writeJSONFile(p string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := p + ".part"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}
