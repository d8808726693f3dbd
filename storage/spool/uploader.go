package spool

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"xueliang/storage"
	"xueliang/storage/recording"
)

// SegmentIndex is what the uploader needs from the index.
type SegmentIndex interface {
	// Segment returns the current row, or an error wrapping recording.ErrNotFound.
	Segment(ctx context.Context, id int64) (recording.Segment, error)
	SegmentsByState(ctx context.Context, st recording.SegmentState) ([]recording.Segment, error)
	MarkStored(ctx context.Context, id int64) error
}

// FilePutter is implemented by stores that can take a local file without
// streaming it (storage/local links it). The uploader uses it when offered.
type FilePutter interface {
	PutFile(ctx context.Context, key, path string) (storage.ObjectInfo, error)
}

// HashedFilePutter is implemented by stores that can take a local file
// whose SHA-256 is already known (the index's, computed by the segmenter)
// without hashing it again on the client: storage/s3 sends it with one PUT
// that the server verifies against the hash, storage/local links it and
// checks it before committing. The uploader prefers it to FilePutter and
// Put when the segment's SHA-256 is known.
//
// PutFileSHA256 stores the file at path under key and fails (leaving any
// previous object unchanged) when its content does not hash to sha256Hex
// (lowercase hex). The returned ObjectInfo.SHA256 is sha256Hex when the
// store verified the content against it, and empty when it did not, in
// which case the uploader hashes the file itself.
type HashedFilePutter interface {
	PutFileSHA256(ctx context.Context, key, path, sha256Hex string) (storage.ObjectInfo, error)
}

// UploaderConfig tunes the uploader. Zero fields take their defaults.
type UploaderConfig struct {
	// Workers is the number of concurrent uploads. It defaults to 2.
	Workers int
	// QueueSize bounds the in-memory queue; segments enqueued beyond it wait
	// in an unbounded overflow set (a few bytes each). It defaults to 64.
	QueueSize int
	// RescanInterval is how often the index is scanned for closed segments
	// nobody enqueued (crash, overflow, lost retry). It defaults to 1 minute.
	RescanInterval time.Duration
	// MinBackoff and MaxBackoff bound the retry delay of a failing segment,
	// which doubles per failure, with jitter. They default to 1 s and 5 min.
	MinBackoff, MaxBackoff time.Duration
}

func (c *UploaderConfig) setDefaults() {
	if c.Workers <= 0 {
		c.Workers = 2
	}
	if c.QueueSize <= 0 {
		c.QueueSize = 64
	}
	if c.RescanInterval <= 0 {
		c.RescanInterval = time.Minute
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = time.Second
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 5 * time.Minute
	}
	c.MaxBackoff = max(c.MaxBackoff, c.MinBackoff)
}

// Stats are the uploader's counters.
type Stats struct {
	// Pending is the number of segments known and not yet stored: queued,
	// in the overflow set, uploading or waiting for a retry.
	Pending int
	// Overflow is how many of them wait in the overflow set.
	Overflow int
	// Overflowed counts Enqueue calls (and retries) that found the queue full.
	Overflowed uint64
	// Uploaded counts segments put, verified and marked stored.
	Uploaded uint64
	// Failed counts failed attempts (each is retried).
	Failed uint64
	// Bytes counts the bytes of uploaded segments.
	Bytes uint64
}

// Uploader moves closed segments from the spool into the store, marks them
// stored in the index and removes the spool files. It never drops a
// segment: failures are retried with capped exponential backoff, and the
// index is rescanned at start and periodically.
type Uploader struct {
	dir   Dir
	store storage.Store
	idx   SegmentIndex
	cfg   UploaderConfig
	log   *slog.Logger

	queue chan int64

	mu       sync.Mutex
	pending  map[int64]int // segment id → failed attempts so far
	overflow []int64
	timers   map[int64]*time.Timer
	stopped  bool
	stats    Stats
}

// NewUploader returns an uploader; start it with Run. Enqueue may be called
// before Run. A nil logger discards.
func NewUploader(dir Dir, store storage.Store, idx SegmentIndex, cfg UploaderConfig, logger *slog.Logger) *Uploader {
	cfg.setDefaults()
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Uploader{
		dir:     dir,
		store:   store,
		idx:     idx,
		cfg:     cfg,
		log:     logger.With("component", "uploader"),
		queue:   make(chan int64, cfg.QueueSize),
		pending: make(map[int64]int),
		timers:  make(map[int64]*time.Timer),
	}
}

// Enqueue schedules seg (only ID is used; the row is re-read before
// uploading) for upload. It never blocks: when the queue is full the
// segment goes to the overflow set. A segment already pending is ignored.
func (u *Uploader) Enqueue(seg recording.Segment) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if _, ok := u.pending[seg.ID]; ok || u.stopped {
		return
	}
	u.pending[seg.ID] = 0
	u.submitLocked(seg.ID)
}

func (u *Uploader) submitLocked(id int64) {
	select {
	case u.queue <- id:
	default:
		u.overflow = append(u.overflow, id)
		u.stats.Overflowed++
	}
}

// refillLocked moves overflowed segments into the queue while it has room.
// It runs after every upload attempt: an id goes to overflow only when the
// queue is full, so some worker will come here after it.
func (u *Uploader) refillLocked() {
	for len(u.overflow) > 0 {
		select {
		case u.queue <- u.overflow[0]:
			u.overflow = u.overflow[1:]
		default:
			return
		}
	}
}

// Stats returns a snapshot of the counters.
func (u *Uploader) Stats() Stats {
	u.mu.Lock()
	defer u.mu.Unlock()
	s := u.stats
	s.Pending = len(u.pending)
	s.Overflow = len(u.overflow)
	return s
}

// Run uploads until ctx is done, then waits for the uploads in progress to
// stop and returns nil. Segments still pending are picked up by the rescan
// of the next Run. Run is called once.
func (u *Uploader) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for range u.cfg.Workers {
		wg.Go(func() { u.work(ctx) })
	}
	u.rescan(ctx)
	tick := time.NewTicker(u.cfg.RescanInterval)
	defer tick.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-tick.C:
			u.rescan(ctx)
			u.mu.Lock()
			u.refillLocked()
			u.mu.Unlock()
		}
	}
	u.mu.Lock()
	u.stopped = true
	for _, t := range u.timers {
		t.Stop()
	}
	u.mu.Unlock()
	wg.Wait()
	return nil
}

// rescan enqueues every closed segment of the index.
func (u *Uploader) rescan(ctx context.Context) {
	segs, err := u.idx.SegmentsByState(ctx, recording.StateClosed)
	if err != nil {
		if ctx.Err() == nil {
			u.log.Error("uploader rescan failed", "err", err)
		}
		return
	}
	for _, s := range segs {
		u.Enqueue(s)
	}
}

func (u *Uploader) work(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case id := <-u.queue:
			u.attempt(ctx, id)
		}
	}
}

func (u *Uploader) attempt(ctx context.Context, id int64) {
	n, err := u.upload(ctx, id)
	u.mu.Lock()
	defer u.mu.Unlock()
	defer u.refillLocked()
	switch {
	case err == nil:
		delete(u.pending, id)
		if n >= 0 {
			u.stats.Uploaded++
			u.stats.Bytes += uint64(n)
		}
	case ctx.Err() != nil:
		// Shutting down: leave it to the next run's rescan.
		delete(u.pending, id)
	default:
		attempts := u.pending[id] + 1
		u.pending[id] = attempts
		u.stats.Failed++
		d := u.backoff(attempts)
		u.log.Warn("segment upload failed", "segment", id, "attempt", attempts, "retry_in", d, "err", err)
		u.timers[id] = time.AfterFunc(d, func() {
			u.mu.Lock()
			defer u.mu.Unlock()
			delete(u.timers, id)
			if !u.stopped {
				u.submitLocked(id)
			}
		})
	}
}

// backoff returns the delay before retry number attempts (from 1):
// MinBackoff·2^(attempts-1) capped at MaxBackoff, jittered to [d/2, d].
func (u *Uploader) backoff(attempts int) time.Duration {
	d := u.cfg.MaxBackoff
	if attempts < 40 {
		d = min(u.cfg.MinBackoff<<(attempts-1), u.cfg.MaxBackoff)
	}
	if d <= 0 { // overflowed
		d = u.cfg.MaxBackoff
	}
	return d/2 + rand.N(d/2+1)
}

// upload does one attempt for segment id. It returns the bytes uploaded,
// or -1 when there was nothing to upload (already stored, not closed,
// deleted), and nil in both cases.
func (u *Uploader) upload(ctx context.Context, id int64) (int64, error) {
	seg, err := u.idx.Segment(ctx, id)
	if errors.Is(err, recording.ErrNotFound) {
		u.log.Warn("segment vanished before upload", "segment", id)
		return -1, nil
	}
	if err != nil {
		return 0, err
	}
	switch seg.State {
	case recording.StateRecording:
		// Enqueued early; it comes back when closed (Enqueue or rescan).
		return -1, nil
	case recording.StateStored:
		if err := u.dir.Remove(seg.ObjectKey); err != nil {
			u.log.Warn("spool file removal failed", "segment", id, "key", seg.ObjectKey, "err", err)
		}
		return -1, nil
	}
	log := u.log.With("segment", id, "key", seg.ObjectKey)
	path := u.dir.Path(seg.ObjectKey)
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		// A crash after the put and before MarkStored leaves the object in
		// the store and possibly no spool file (a store that moves files).
		if err := u.verifyStored(ctx, seg); err != nil {
			return 0, fmt.Errorf("segment %d: spool file missing: %w", id, err)
		}
		log.Info("segment found already in store")
	} else {
		if err != nil {
			return 0, fmt.Errorf("segment %d: %w", id, err)
		}
		if st.Size() != seg.Size {
			return 0, fmt.Errorf("segment %d: spool file has %d bytes, index says %d", id, st.Size(), seg.Size)
		}
		if err := u.put(ctx, seg, path); err != nil {
			return 0, fmt.Errorf("segment %d: %w", id, err)
		}
	}
	if err := u.idx.MarkStored(ctx, id); err != nil {
		return 0, err
	}
	if err := u.dir.Remove(seg.ObjectKey); err != nil {
		log.Warn("spool file removal failed", "err", err)
	}
	log.Debug("segment uploaded", "bytes", seg.Size)
	return seg.Size, nil
}

// put puts the spool file at path and verifies size and SHA-256. With a
// known SHA-256 and a HashedFilePutter the store checks the content against
// it (no hashing here); otherwise the file is linked (FilePutter) or
// streamed (Put) and hashed here or by the store.
func (u *Uploader) put(ctx context.Context, seg recording.Segment, path string) error {
	var info storage.ObjectInfo
	var sum string
	hp, hashed := u.store.(HashedFilePutter)
	fp, linked := u.store.(FilePutter)
	switch {
	case hashed && seg.SHA256 != "":
		var err error
		if info, err = hp.PutFileSHA256(ctx, seg.ObjectKey, path, seg.SHA256); err != nil {
			return err
		}
		sum = info.SHA256
		if sum == "" {
			if sum, err = hashFile(ctx, path); err != nil {
				return err
			}
		}
	case linked:
		var err error
		if info, err = fp.PutFile(ctx, seg.ObjectKey, path); err != nil {
			return err
		}
		sum = info.SHA256
		if sum == "" && seg.SHA256 != "" {
			if sum, err = hashFile(ctx, path); err != nil {
				return err
			}
		}
	default:
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		h := sha256.New()
		if info, err = u.store.Put(ctx, seg.ObjectKey, io.TeeReader(f, h), seg.Size); err != nil {
			return err
		}
		sum = hex.EncodeToString(h.Sum(nil))
		if info.SHA256 != "" && info.SHA256 != sum {
			return fmt.Errorf("store computed sha256 %s, sent %s", info.SHA256, sum)
		}
	}
	if info.Size != seg.Size {
		return fmt.Errorf("stored %d bytes, want %d", info.Size, seg.Size)
	}
	if seg.SHA256 != "" && sum != seg.SHA256 {
		return fmt.Errorf("sha256 %s, index says %s", sum, seg.SHA256)
	}
	return nil
}

// verifyStored checks that the store holds seg's object, whole.
func (u *Uploader) verifyStored(ctx context.Context, seg recording.Segment) error {
	info, err := u.store.Stat(ctx, seg.ObjectKey)
	if err != nil {
		return err
	}
	if info.Size != seg.Size {
		return fmt.Errorf("stored object has %d bytes, want %d", info.Size, seg.Size)
	}
	if seg.SHA256 == "" {
		return nil
	}
	sum := info.SHA256
	if sum == "" {
		rc, err := u.store.GetRange(ctx, seg.ObjectKey, 0, -1)
		if err != nil {
			return err
		}
		defer rc.Close()
		h := sha256.New()
		if _, err := io.Copy(h, rc); err != nil {
			return err
		}
		sum = hex.EncodeToString(h.Sum(nil))
	}
	if sum != seg.SHA256 {
		return fmt.Errorf("stored object sha256 %s, index says %s", sum, seg.SHA256)
	}
	return nil
}

func hashFile(ctx context.Context, path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	buf := make([]byte, 256<<10)
	for {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		n, err := f.Read(buf)
		h.Write(buf[:n])
		if err == io.EOF {
			return hex.EncodeToString(h.Sum(nil)), nil
		}
		if err != nil {
			return "", err
		}
	}
}
