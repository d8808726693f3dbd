// Package evidence keeps case footage: evidence locks over a camera time
// range, which retention and the emergency purge never delete (the index
// excludes locked segments from index.MarkDeleting), and, on S3, a
// server-side copy of every locked segment in a separate Object Lock bucket
// under legal hold, which the store's reads fall back to.
package evidence

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"xueliang/index"
	"xueliang/storage/recording"
)

// Index is what the service needs of the index.
type Index interface {
	CreateEvidenceLock(ctx context.Context, l index.EvidenceLock) (index.EvidenceLock, error)
	UnlockEvidence(ctx context.Context, id int64, by string, now time.Time) error
	EvidenceLocks(ctx context.Context, all bool) ([]index.EvidenceLock, error)
	EvidenceLock(ctx context.Context, id int64) (index.EvidenceLock, error)
	LockedSegments(ctx context.Context, camera string, from, to time.Time) ([]recording.Segment, error)
}

// Copier copies an object into the evidence bucket under legal hold
// (storage/s3 Store.CopyToEvidence).
type Copier interface {
	CopyToEvidence(ctx context.Context, key string) error
}

// ErrNotFound: no such (active) lock.
var ErrNotFound = index.ErrNotFound

// Service creates, lists and ends evidence locks.
type Service struct {
	Index Index
	// Copier, when set, receives every segment a new lock covers; nil
	// (the local store) copies nothing: the lock alone protects it.
	Copier Copier
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger; nil discards.
	Logger *slog.Logger
}

// Result is what Lock did besides recording the lock.
type Result struct {
	// Segments and Bytes are the stored segments the lock covers now.
	Segments int
	Bytes    int64
	// Copied is how many were copied to the evidence bucket.
	Copied int
}

func (s *Service) now() time.Time {
	if s.Now == nil {
		return time.Now().UTC()
	}
	return s.Now().UTC()
}

// Lock records l (created now) and copies the segments it covers. The lock
// stands even if a copy fails (the error is returned with the lock).
func (s *Service) Lock(ctx context.Context, l index.EvidenceLock) (index.EvidenceLock, Result, error) {
	l.Created = s.now()
	l, err := s.Index.CreateEvidenceLock(ctx, l)
	if err != nil {
		return index.EvidenceLock{}, Result{}, err
	}
	var res Result
	var errs []error
	for _, cam := range l.Cameras {
		segs, err := s.Index.LockedSegments(ctx, cam, l.From, l.To)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, seg := range segs {
			res.Segments++
			res.Bytes += seg.Size
			if s.Copier == nil {
				continue
			}
			if err := s.Copier.CopyToEvidence(ctx, seg.ObjectKey); err != nil {
				errs = append(errs, err)
				continue
			}
			res.Copied++
		}
	}
	if len(errs) > 0 {
		return l, res, fmt.Errorf("evidence lock %d: %w", l.ID, errors.Join(errs...))
	}
	return l, res, nil
}

// Unlock ends an active lock (ErrNotFound when there is none).
func (s *Service) Unlock(ctx context.Context, id int64, by string) error {
	return s.Index.UnlockEvidence(ctx, id, by, s.now())
}

// Locks lists the active locks, or every lock when all.
func (s *Service) Locks(ctx context.Context, all bool) ([]index.EvidenceLock, error) {
	return s.Index.EvidenceLocks(ctx, all)
}

// Get returns one lock.
func (s *Service) Get(ctx context.Context, id int64) (index.EvidenceLock, error) {
	return s.Index.EvidenceLock(ctx, id)
}
