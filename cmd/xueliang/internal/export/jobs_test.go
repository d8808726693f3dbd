package export

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"xueliang/cmd/xueliang/internal/replay"
	"xueliang/index"
)

// blockingReplayer's Plan waits until its job is cancelled.
type blockingReplayer struct{ started chan struct{} }

func (b blockingReplayer) Plan(ctx context.Context, _ replay.Request) (*replay.Plan, error) {
	b.started <- struct{}{}
	<-ctx.Done()
	return nil, ctx.Err()
}

func (blockingReplayer) PrepareMP4(context.Context, *replay.Plan) (*replay.MP4, error) {
	return nil, errors.New("unreachable")
}

type fakeIndex struct{}

func (fakeIndex) Camera(_ context.Context, id string) (index.Camera, error) {
	if id != "cam1" {
		return index.Camera{}, index.ErrNotFound
	}
	return index.Camera{ID: id}, nil
}

func (fakeIndex) QueryAudit(context.Context, index.AuditQuery) ([]index.AuditRecord, error) {
	return nil, nil
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newTestManager(t *testing.T, dir string, rp Replayer, clk *clock, reg prometheus.Registerer) *Manager {
	t.Helper()
	key, err := LoadOrCreateKey(filepath.Join(t.TempDir(), "k"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewManager(Config{Dir: dir, Key: key, Replayer: rp, Index: fakeIndex{}, MaxConcurrent: 1,
		Expiry: time.Hour, Now: clk.now, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// TestManagerBusyCancel: max_concurrent is enforced and counted; a
// cancelled job ends cancelled and leaves no files.
func TestManagerBusyCancel(t *testing.T) {
	dir := t.TempDir()
	clk := &clock{t: time.Unix(1e9, 0)}
	rp := blockingReplayer{started: make(chan struct{}, 1)}
	reg := prometheus.NewRegistry()
	m := newTestManager(t, dir, rp, clk, reg)
	req := Request{Camera: "cam1", From: clk.now().Add(-time.Hour), To: clk.now(), By: Creator{User: "alice"}}
	if _, err := m.Start(t.Context(), Request{Camera: "nope", From: req.From, To: req.To}); !errors.Is(err, ErrBadRequest) {
		t.Errorf("unknown camera: %v", err)
	}
	if _, err := m.Start(t.Context(), Request{Camera: "cam1", From: req.To, To: req.From}); !errors.Is(err, ErrBadRequest) {
		t.Errorf("from after to: %v", err)
	}
	j, err := m.Start(t.Context(), req)
	if err != nil || j.State != StateRunning {
		t.Fatalf("start: %+v %v", j, err)
	}
	<-rp.started
	if _, err := m.Start(t.Context(), req); !errors.Is(err, ErrBusy) {
		t.Errorf("second job while one runs: %v, want ErrBusy", err)
	}
	if v := testutil.ToFloat64(m.m.rejected); v != 1 {
		t.Errorf("rejected %v, want 1", v)
	}
	if _, _, err := m.Open(j.ID); !errors.Is(err, ErrNotReady) {
		t.Errorf("open a running job: %v", err)
	}
	c, err := m.Cancel(j.ID)
	if err != nil || c.State != StateCancelled {
		t.Fatalf("cancel: %+v %v", c, err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("files left after cancel: %v", ents)
	}
	if v := testutil.ToFloat64(m.m.jobs.WithLabelValues(StateCancelled)); v != 1 {
		t.Errorf("cancelled jobs %v", v)
	}
	// The slot is free again.
	clk.add(time.Minute)
	j2, err := m.Start(t.Context(), req)
	if err != nil {
		t.Fatalf("start after cancel: %v", err)
	}
	<-rp.started
	// List: every job, newest first.
	if l := m.List(); len(l) != 2 || l[0].ID != j2.ID || l[0].State != StateRunning || l[1].ID != j.ID || l[1].State != StateCancelled {
		t.Errorf("list %+v, want the running %s then the cancelled %s", l, j2.ID, j.ID)
	}
	m.Cancel(j2.ID)
}

// TestManagerReloadAndExpiry: a finished package survives a restart (its
// job file is reloaded), an interrupted job's work directory is removed,
// and the package is removed once it expires.
func TestManagerReloadAndExpiry(t *testing.T) {
	dir := t.TempDir()
	clk := &clock{t: time.Unix(1e9, 0)}
	id := "0123456789abcdef01234567"
	exp := clk.now().Add(time.Hour)
	if err := writeJSONFile(filepath.Join(dir, id+".json"), Job{ID: id, Camera: "cam1", State: StateDone, ExpiresAt: &exp, Size: 3}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, id+".zip"), []byte("zip"), 0o600)
	os.Mkdir(filepath.Join(dir, "fedcba9876543210fedcba98.tmp"), 0o700)
	m := newTestManager(t, dir, blockingReplayer{started: make(chan struct{}, 1)}, clk, nil)
	f, j, err := m.Open(id)
	if err != nil || j.State != StateDone {
		t.Fatalf("reloaded job: %+v %v", j, err)
	}
	f.Close()
	if _, err := os.Stat(filepath.Join(dir, "fedcba9876543210fedcba98.tmp")); !os.IsNotExist(err) {
		t.Errorf("interrupted work dir still there: %v", err)
	}
	m.sweep()
	if _, err := m.Get(id); err != nil {
		t.Errorf("swept before expiry: %v", err)
	}
	clk.add(61 * time.Minute)
	m.sweep()
	if _, err := m.Get(id); !errors.Is(err, ErrNotFound) {
		t.Errorf("not expired: %v", err)
	}
	if l := m.List(); len(l) != 0 {
		t.Errorf("list after expiry: %+v", l)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("files left after expiry: %v", ents)
	}
}
