package ingest

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"xueliang/ingest/segmenter"
)

var errPanic = errors.New("puller panicked")

// Manager runs one Puller per camera and applies configuration changes
// live: Update starts new cameras, stops removed ones and restarts the ones
// whose configuration changed.
type Manager struct {
	opts Options
	log  *slog.Logger

	mu      sync.Mutex
	ctx     context.Context // set by Run
	pending []CameraConfig  // Update before Run
	running map[string]*managed
	// lastDone is the done channel of the latest goroutine per camera.
	lastDone map[string]chan struct{}
	wg       sync.WaitGroup
}

type managed struct {
	cfg    CameraConfig
	puller *Puller
	cancel context.CancelFunc
	done   chan struct{}
}

// NewManager returns a Manager; call Run, then Update.
func NewManager(opts Options) *Manager {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Manager{opts: opts, log: log.With("component", "ingest"), running: map[string]*managed{}, lastDone: map[string]chan struct{}{}}
}

// Run runs the pullers until ctx is cancelled, then stops them all (each
// closes its segment) and returns nil.
func (m *Manager) Run(ctx context.Context) error {
	m.mu.Lock()
	m.ctx = ctx
	pending := m.pending
	m.pending = nil
	m.mu.Unlock()
	if pending != nil {
		m.Update(pending)
	}
	<-ctx.Done()
	m.mu.Lock()
	m.ctx = nil
	for id, r := range m.running {
		r.cancel()
		delete(m.running, id)
	}
	m.mu.Unlock()
	m.wg.Wait()
	return nil
}

// Update applies the full list of cameras. Invalid entries are logged and
// skipped. Stopped pullers finish in the background; a restarted camera's
// new puller starts after the old one has closed its segment.
func (m *Manager) Update(cfgs []CameraConfig) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ctx == nil {
		m.pending = append([]CameraConfig(nil), cfgs...)
		return
	}
	want := map[string]CameraConfig{}
	for _, c := range cfgs {
		if err := c.Validate(); err != nil {
			m.log.Error("invalid camera config", "camera", c.ID, "err", err)
			continue
		}
		want[c.ID] = c
	}
	for id, r := range m.running {
		c, ok := want[id]
		if ok && c == r.cfg {
			continue
		}
		r.cancel()
		delete(m.running, id)
		if ok {
			m.log.Info("camera config changed, restarting", "camera", id)
		} else {
			m.log.Info("camera removed, stopping", "camera", id)
		}
	}
	for id, c := range want {
		if _, ok := m.running[id]; ok {
			continue
		}
		m.startLocked(c)
	}
}

func (m *Manager) startLocked(c CameraConfig) {
	ctx, cancel := context.WithCancel(m.ctx)
	r := &managed{cfg: c, puller: NewPuller(c, m.opts), cancel: cancel, done: make(chan struct{})}
	// Wait for a previous puller of the same camera (restart) to finish,
	// so two writers never record one camera at once.
	prev := m.lastDone[c.ID]
	m.lastDone[c.ID] = r.done
	m.running[c.ID] = r
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer close(r.done)
		if prev != nil {
			select {
			case <-prev:
			case <-ctx.Done():
				return
			}
		}
		for ctx.Err() == nil {
			err := m.runPuller(ctx, r.puller)
			if err == nil {
				return
			}
			if errors.Is(err, segmenter.ErrFenced) {
				// The lease moved on: the next Update (lease lost)
				// removes the camera; restarting would be refused again.
				m.log.Warn("puller fenced off", "camera", c.ID)
				return
			}
			m.log.Error("puller failed", "camera", c.ID, "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(r.puller.opts.BackoffMax):
			}
		}
	}()
}

// runPuller runs p and recovers a panic outside the session loop.
func (m *Manager) runPuller(ctx context.Context, p *Puller) (err error) {
	defer func() {
		if r := recover(); r != nil {
			m.log.Error("puller panicked", "camera", p.cfg.ID, "panic", r)
			err = errPanic
		}
	}()
	return p.Run(ctx)
}

// Status returns a snapshot of every running puller's status by camera ID.
func (m *Manager) Status() map[string]Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]Status, len(m.running))
	for id, r := range m.running {
		out[id] = r.puller.Status()
	}
	return out
}
