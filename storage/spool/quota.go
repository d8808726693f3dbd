package spool

import (
	"fmt"
	"io/fs"
	"sync/atomic"
)

// QuotaConfig sets the spool size cap.
type QuotaConfig struct {
	// MaxBytes caps the bytes of footage in the spool. Once a reservation
	// would exceed it the spool is full: new footage is refused (footage
	// already in the spool is never deleted to make room). It defaults to
	// 0, which means unlimited.
	MaxBytes int64
	// ResumeBytes is the low watermark: a full spool admits footage again
	// once it holds at most ResumeBytes. It defaults to 90 % of MaxBytes
	// and is clamped to [0, MaxBytes].
	ResumeBytes int64
}

// QuotaStats is a snapshot of a Quota.
type QuotaStats struct {
	// Bytes is the accounted size of the spool (file contents, not disk
	// blocks), Cap the configured MaxBytes (0: unlimited).
	Bytes, Cap int64
	// Full is true from a refused reservation until the spool is back at
	// or below the low watermark.
	Full bool
	// FullEpisodes counts the transitions to full.
	FullEpisodes int64
	// Refused counts refused reservations, RefusedBytes their bytes.
	Refused, RefusedBytes int64
}

// Quota accounts the bytes in the spool directory against a cap, with
// hysteresis: when a reservation does not fit, the spool becomes full and
// refuses every reservation until releases bring it down to the low
// watermark. It is initialised by walking the directory (NewQuota); the
// segmenter reserves bytes before appending them (Reserve, or Add for a
// write it must not refuse), and Dir.Remove (the uploader) releases a
// removed file's size. All methods are safe for concurrent use and
// lock-free (a few atomics per call).
//
// *Quota implements segmenter.Quota.
type Quota struct {
	max, resume int64

	used     atomic.Int64
	admitted atomic.Int64 // every byte ever accounted: the ingest rate
	stopped  atomic.Bool  // SetStopped: the disk is at its reserve
	full     atomic.Bool
	episodes atomic.Int64
	refused  atomic.Int64
	refusedB atomic.Int64
}

// NewQuota returns a quota initialised with the size of every spool file
// of dir. Create it after segmenter.Recover (which truncates and deletes
// spool files) or credit it with Recover's Report.FreedBytes, and before
// recording and uploading start; set it as Dir.Quota of the Dir the
// uploader gets so that removals are credited.
func NewQuota(dir Dir, cfg QuotaConfig) (*Quota, error) {
	q := &Quota{max: max(cfg.MaxBytes, 0)}
	switch {
	case q.max == 0:
	case cfg.ResumeBytes <= 0:
		q.resume = q.max / 10 * 9
	default:
		q.resume = min(cfg.ResumeBytes, q.max)
	}
	var total int64
	err := dir.Walk(func(_ string, info fs.FileInfo) error {
		total += info.Size()
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("measure spool: %w", err)
	}
	q.used.Store(total)
	if q.max > 0 && total > q.max {
		q.setFull()
	}
	return q, nil
}

// Reserve accounts n bytes about to be written and reports true, or
// reports false (and accounts nothing) when the spool is full or the n
// bytes do not fit under the cap; the spool is then full until it is back
// at the low watermark. With no cap it always succeeds.
func (q *Quota) Reserve(n int64) bool {
	if q.stopped.Load() {
		q.refused.Add(1)
		q.refusedB.Add(n)
		return false
	}
	if q.max == 0 {
		q.used.Add(n)
		q.admitted.Add(n)
		return true
	}
	for !q.full.Load() {
		u := q.used.Load()
		if u+n > q.max {
			q.setFull()
			break
		}
		if q.used.CompareAndSwap(u, u+n) {
			q.admitted.Add(n)
			return true
		}
	}
	q.refused.Add(1)
	q.refusedB.Add(n)
	return false
}

// setFull marks the spool full. A Release racing with it may have seen
// the flag still clear, so the watermark is checked again afterwards.
func (q *Quota) setFull() {
	if q.full.CompareAndSwap(false, true) {
		q.episodes.Add(1)
		if q.used.Load() <= q.resume {
			q.full.Store(false)
		}
	}
}

// Add accounts n bytes written regardless of the cap (the writer uses it
// for the first fragment of a segment, which keeps every segment
// playable; the cap can thus be exceeded by one fragment per camera).
func (q *Quota) Add(n int64) {
	q.admitted.Add(n)
	u := q.used.Add(n)
	if q.max > 0 && u > q.max {
		q.setFull()
	}
}

// Release gives back n bytes: a removed spool file, truncated bytes, or a
// reservation whose write failed.
func (q *Quota) Release(n int64) {
	if u := q.used.Add(-n); u <= q.resume {
		q.full.Store(false)
	}
}

// Full reports whether the spool is full: reservations are refused until
// it is back at the low watermark, or while the disk guard has stopped
// recording (SetStopped).
func (q *Quota) Full() bool { return q.full.Load() || q.stopped.Load() }

// SetStopped makes every reservation fail (counted as refused) while
// stopped: the disk guard sets it when free space is at the reserve kept
// for the index and the audit log and nothing unlocked is left to purge.
func (q *Quota) SetStopped(stopped bool) { q.stopped.Store(stopped) }

// Stopped reports SetStopped's state.
func (q *Quota) Stopped() bool { return q.stopped.Load() }

// Admitted returns every byte ever accounted (Reserve and Add), a
// monotonic counter from which the disk guard measures the ingest rate.
func (q *Quota) Admitted() int64 { return q.admitted.Load() }

// Bytes returns the accounted spool size.
func (q *Quota) Bytes() int64 { return q.used.Load() }

// Cap returns the configured MaxBytes (0: unlimited).
func (q *Quota) Cap() int64 { return q.max }

// Stats returns a snapshot of the counters.
func (q *Quota) Stats() QuotaStats {
	return QuotaStats{
		Bytes:        q.used.Load(),
		Cap:          q.max,
		Full:         q.full.Load(),
		FullEpisodes: q.episodes.Load(),
		Refused:      q.refused.Load(),
		RefusedBytes: q.refusedB.Load(),
	}
}
