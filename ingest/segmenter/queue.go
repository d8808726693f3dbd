package segmenter

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"time"
	"xueliang/storage/recording"
)

type opKind int

const (
	opCreate opKind = iota
	opFragments
	opSync
	opFinish
)

type op struct {
	kind  opKind
	h     *segHandle
	frags []recording.Fragment
	end   time.Time
	size  int64
}

// segHandle is a segment as the index worker sees it. After creation only
// the worker touches it.
type segHandle struct {
	f       *os.File
	seg     recording.Segment
	all     []recording.Fragment // every fragment row written, for re-sends
	resend  bool                 // a batch was dropped or failed: re-send all at finish
	created bool
	failed  bool // CreateSegment failed for good: later ops are skipped
}

// opQueue is the bounded queue between the media path and the worker.
// Fragment batches beyond max are dropped (the handle is marked for a
// re-send); create, sync and finish operations are always queued.
type opQueue struct {
	mu      sync.Mutex
	ops     []op
	fragOps int
	max     int
	closed  bool
	wake    chan struct{}
	dropped int64
	errors  int64
}

func newOpQueue(max int) *opQueue {
	return &opQueue{max: max, wake: make(chan struct{}, 1)}
}

func (q *opQueue) push(o op) {
	q.mu.Lock()
	if o.kind == opFragments {
		// The worker keeps every row so it can re-send them; the copy in
		// h.all is made here (under the queue lock) because the worker
		// reads it only when processing this segment's later ops.
		if q.fragOps >= q.max {
			q.dropped++
			q.ops = append(q.ops, op{kind: opFragments, h: o.h}) // rows-only marker
			o.h.all = append(o.h.all, o.frags...)
			o.h.resend = true
			q.mu.Unlock()
			q.signal()
			return
		}
		q.fragOps++
	}
	q.ops = append(q.ops, o)
	q.mu.Unlock()
	q.signal()
}

func (q *opQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *opQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.signal()
}

func (q *opQueue) counters() (dropped, errs int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.dropped, q.errors
}

// pop returns the next op, or false when the queue is closed and empty.
func (q *opQueue) pop() (op, bool) {
	for {
		q.mu.Lock()
		if len(q.ops) > 0 {
			o := q.ops[0]
			q.ops[0] = op{}
			q.ops = q.ops[1:]
			if o.kind == opFragments && o.frags != nil {
				q.fragOps--
			}
			q.mu.Unlock()
			return o, true
		}
		closed := q.closed
		q.mu.Unlock()
		if closed {
			return op{}, false
		}
		<-q.wake
	}
}

// Run is the writer's index worker: it hands the segment and fragment rows
// the media path queues to the index, fsyncs and closes the spool files, in
// order, until Close has been called and the queue is empty; then it
// returns nil. ctx bounds the index calls and their retries: once it ends,
// a failing operation is given up (a segment left in state recording is
// closed from its spool file by Recover at the next start, as after a
// crash). Run may be called once.
func (w *Writer) Run(ctx context.Context) error {
	if !w.running.CompareAndSwap(false, true) {
		return errors.New("segmenter: Run called twice")
	}
	for {
		o, ok := w.q.pop()
		if !ok {
			return nil
		}
		w.handle(ctx, o)
	}
}

// retry runs fn up to IndexRetries times with backoff, each call bounded by
// IndexTimeout, while ctx lasts.
func (w *Writer) retry(ctx context.Context, name string, fn func(ctx context.Context) error) bool {
	return w.retryFor(ctx, name, 0, fn)
}

// retryFor is retry that, after IndexRetries attempts, keeps trying until
// outage has passed since the first attempt.
func (w *Writer) retryFor(ctx context.Context, name string, outage time.Duration, fn func(ctx context.Context) error) bool {
	backoff := 100 * time.Millisecond
	var err error
	first := time.Now()
	if w.fenced {
		return false
	}
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, w.cfg.IndexTimeout)
		err = fn(actx)
		cancel()
		if errors.Is(err, ErrFenced) {
			// Another node holds the camera now: never retried, nothing
			// more is written (the worker goroutine owns fenced).
			w.fenced = true
			w.q.mu.Lock()
			w.q.errors++
			w.q.mu.Unlock()
			w.log.Error("index refused a stale writer", "op", name, "err", err)
			if w.cfg.OnFenced != nil {
				w.cfg.OnFenced()
			}
			return false
		}
		if err == nil {
			if attempt > w.cfg.IndexRetries {
				w.log.Info("index operation succeeded after an outage", "op", name, "attempts", attempt)
			}
			return true
		}
		if attempt >= w.cfg.IndexRetries && time.Since(first) >= outage {
			break
		}
		if attempt == w.cfg.IndexRetries {
			w.log.Warn("index unavailable, retrying", "op", name, "for", outage, "err", err)
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
		if ctx.Err() != nil {
			err = errors.Join(err, ctx.Err())
			break
		}
		backoff = min(backoff*2, 2*time.Second)
	}
	w.q.mu.Lock()
	w.q.errors++
	w.q.mu.Unlock()
	w.log.Error("index operation failed", "op", name, "err", err)
	return false
}

func (w *Writer) handle(ctx context.Context, o op) {
	h := o.h
	switch o.kind {
	case opCreate:
		h.created = w.retryFor(ctx, "create segment", w.cfg.IndexOutage, func(ctx context.Context) error {
			seg := h.seg
			if err := w.cfg.Index.CreateSegment(ctx, &seg); err != nil {
				return err
			}
			h.seg.ID = seg.ID
			return nil
		})
		h.failed = !h.created
	case opFragments:
		if o.frags == nil { // dropped batch marker: rows re-sent at finish
			return
		}
		w.q.mu.Lock()
		h.all = append(h.all, o.frags...)
		w.q.mu.Unlock()
		if h.failed {
			return
		}
		frags := withSegmentID(o.frags, h.seg.ID)
		if !w.retry(ctx, "add fragments", func(ctx context.Context) error {
			return w.cfg.Index.AddFragments(ctx, frags)
		}) {
			h.resend = true
		}
	case opSync:
		if err := h.f.Sync(); err != nil {
			w.log.Warn("cannot fsync spool file", "err", err)
		}
	case opFinish:
		// Give back the blocks preallocated past the end (preallocate):
		// ext4 frees them on a truncate to the file's own size.
		err := trimPrealloc(h.f)
		if e := h.f.Sync(); e != nil && err == nil {
			err = e
		}
		// The file is hashed once, here, off the media path: its fragments
		// were written out of order (headers last), and it was just
		// written, so it is read from the page cache.
		sha, herr := HashFile(h.f, o.size)
		if herr != nil {
			// The row gets no SHA-256; the uploader then hashes the file.
			w.log.Error("cannot hash spool file", "key", h.seg.ObjectKey, "err", herr)
		}
		if e := h.f.Close(); e != nil && err == nil {
			err = e
		}
		if err != nil {
			w.log.Error("cannot close spool file", "key", h.seg.ObjectKey, "err", err)
		}
		if h.failed {
			w.log.Error("segment not indexed, spool file left for recovery", "key", h.seg.ObjectKey)
			return
		}
		w.q.mu.Lock()
		resend, all := h.resend, append([]recording.Fragment(nil), h.all...)
		w.q.mu.Unlock()
		if resend && len(all) > 0 {
			// Retried as long as the finish would be: a segment finished
			// without all its fragment rows has footage no replay finds
			// (and no gap shows). Not re-sent, it is left unfinished for
			// start-up recovery, which indexes it from the file.
			frags := withSegmentID(all, h.seg.ID)
			if !w.retryFor(ctx, "add fragments", w.cfg.IndexOutage, func(ctx context.Context) error {
				return w.cfg.Index.AddFragments(ctx, frags)
			}) {
				w.log.Error("segment not indexed, spool file left for recovery", "key", h.seg.ObjectKey)
				return
			}
		}
		if !w.retryFor(ctx, "finish segment", w.cfg.IndexOutage, func(ctx context.Context) error {
			return w.cfg.Index.FinishSegment(ctx, h.seg.ID, o.end, o.size, sha)
		}) {
			return
		}
		seg := h.seg
		seg.End, seg.Size, seg.SHA256, seg.State = o.end, o.size, sha, recording.StateClosed
		w.log.Debug("segment closed", "key", seg.ObjectKey, "size", seg.Size)
		if w.cfg.OnClosed != nil {
			w.cfg.OnClosed(seg)
		}
	}
}

func withSegmentID(frags []recording.Fragment, id int64) []recording.Fragment {
	out := make([]recording.Fragment, len(frags))
	for i, f := range frags {
		f.SegmentID = id
		out[i] = f
	}
	return out
}

// hashSlots bounds the files hashed at once (hashing is CPU-bound, and
// segments of cameras started together close together); hashBufs holds
// their read buffers.
var (
	hashSlots = make(chan struct{}, runtime.GOMAXPROCS(0))
	hashBufs  = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}
)

// HashFile returns the lowercase hex SHA-256 of the first size bytes of f.
func HashFile(f io.ReaderAt, size int64) (string, error) {
	hashSlots <- struct{}{}
	defer func() { <-hashSlots }()
	bp := hashBufs.Get().(*[]byte)
	defer hashBufs.Put(bp)
	h := sha256.New()
	n, err := io.CopyBuffer(h, io.NewSectionReader(f, 0, size), *bp)
	if err == nil && n != size {
		err = fmt.Errorf("%d of %d bytes: %w", n, size, io.ErrUnexpectedEOF)
	}
	if err != nil {
		return "", fmt.Errorf("hash spool file: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
