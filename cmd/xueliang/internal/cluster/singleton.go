package cluster

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"xueliang/index"
)

// Locker takes singleton locks (index.DB.TryLockSingleton: a PostgreSQL
// advisory lock on a session of its own).
type Locker interface {
	TryLockSingleton(ctx context.Context, name string) (*index.SingletonLock, error)
}

var _ Locker = (*index.DB)(nil)

// Singleton runs work on one node of the cluster at a time: the node
// holding the lock Name. The others retry every Interval, so when the
// holder dies (its session ends with it) another takes over within about
// Interval. Fill the fields, then Run.
type Singleton struct {
	Locker Locker
	// Name of the lock and of the work (retention, reconcile); required.
	Name string
	// Work runs while the lock is held; its context ends when the lock is
	// lost or Run's context ends. Work returning ends the singleton's
	// turn: the lock is kept (work that must not run again, such as a
	// start-up sweep, is then done) until Run's context ends.
	Work func(ctx context.Context) error
	// Interval between lock attempts and checks. It defaults to 2s.
	Interval time.Duration
	// Leader, when set, is 1 while this node holds the lock.
	Leader prometheus.Gauge
	// Logger; nil discards.
	Logger *slog.Logger
}

// Run competes for the lock until ctx ends and returns Work's error, if
// any, once ctx has ended.
func (s *Singleton) Run(ctx context.Context) error {
	every := s.Interval
	if every <= 0 {
		every = 2 * time.Second
	}
	log := s.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	log = log.With("component", "cluster", "singleton", s.Name)
	var errs []error
	for {
		lock, err := s.Locker.TryLockSingleton(ctx, s.Name)
		if err != nil && ctx.Err() == nil {
			log.Warn("singleton lock attempt failed", "err", err)
		}
		if lock != nil {
			log.Info("singleton lock acquired")
			errs = append(errs, s.hold(ctx, lock, every, log))
		}
		select {
		case <-ctx.Done():
			return errors.Join(errs...)
		case <-time.After(every):
		}
	}
}

// hold runs Work under lock until ctx ends or the lock is lost.
func (s *Singleton) hold(ctx context.Context, lock *index.SingletonLock, every time.Duration, log *slog.Logger) error {
	defer lock.Close()
	if s.Leader != nil {
		s.Leader.Set(1)
		defer s.Leader.Set(0)
	}
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- s.Work(wctx) }()
	var werr error
	finished := false
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case err := <-done:
			werr, finished = err, true
			done = nil
			if err != nil && ctx.Err() == nil {
				log.Error("singleton work failed", "err", err)
			}
		case <-t.C:
			if err := lock.Check(ctx); err != nil && ctx.Err() == nil {
				log.Warn("singleton lock lost", "err", err)
				stop()
				if !finished {
					werr = <-done
				}
				return werr
			}
		case <-ctx.Done():
			if !finished {
				werr = <-done
			}
			return werr
		}
	}
}
