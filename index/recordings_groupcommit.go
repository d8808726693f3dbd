package index

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"xueliang/storage/recording"
)

// maxBatchRows bounds the fragment rows one group-commit transaction
// takes, so that a backlog is written in transactions of bounded length
// (the writer connection is shared with every other write). A request
// larger than this is committed alone.
const maxBatchRows = 512

// errClosed answers AddFragments calls that were queued when the DB was
// closed (or that arrive after).
var errClosed = errors.New("index closed")

// fragReq is one AddFragments call waiting for its rows to be committed.
type fragReq struct {
	ctx   context.Context
	frags []recording.Fragment
	// done receives exactly one answer; buffered so that the leader never
	// blocks on a caller that stopped waiting.
	done chan error
	// lead receives the leadership (see committer) while the request is at
	// the head of the queue; buffered, at most one token.
	lead chan struct{}
}

// committer merges concurrent AddFragments calls into shared write
// transactions (group commit) without a goroutine of its own, the way
// LevelDB groups its writers: a call queues its request; if no call is
// committing (no leader), it becomes the leader, waits the commit window
// for company, takes everything queued (up to maxBatchRows rows), writes it
// in one transaction and answers every caller, then hands the leadership
// to the request now at the head of the queue (or leaves none when the
// queue is empty). Every other call waits for its answer or for the
// leadership. See the package doc, "Concurrency".
type committer struct {
	mu      sync.Mutex
	queue   []*fragReq
	leading bool // a call holds the leadership (or it was handed to queue[0])
	closed  bool // set by Close; no more requests are queued
	// leaders counts the calls committing a batch, for Close to wait on.
	leaders sync.WaitGroup

	// ctx is the transactions' context, cancelled by Close so that a batch
	// waiting for the writer connection does not hold Close up.
	ctx    context.Context
	cancel context.CancelFunc

	// window is how long a leader that found the committer idle waits for
	// more requests before it writes (SetCommitWindow); 0 writes at once.
	window atomic.Int64

	// Counters, for tests and benchmarks.
	txs       atomic.Int64 // group transactions begun
	fallbacks atomic.Int64 // group transactions that failed and were split
}

func newCommitter() *committer {
	ctx, cancel := context.WithCancel(context.Background())
	return &committer{ctx: ctx, cancel: cancel}
}

// close refuses further requests, answers the queued ones with errClosed,
// cancels a transaction in progress and waits for its leader to finish.
func (c *committer) close() {
	c.mu.Lock()
	c.closed = true
	q := c.queue
	c.queue = nil
	c.mu.Unlock()
	c.cancel()
	for _, r := range q {
		r.done <- fmt.Errorf("add fragments: %w", errClosed)
	}
	c.leaders.Wait()
}

// submit queues r and waits for its answer, committing batches itself
// whenever it holds the leadership.
func (db *DB) submit(r *fragReq) error {
	c := db.fc
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return fmt.Errorf("add fragments: %w", errClosed)
	}
	c.queue = append(c.queue, r)
	idle := !c.leading
	if idle {
		c.leading = true
		c.leaders.Add(1)
	}
	c.mu.Unlock()
	if idle {
		db.lead(r, true)
	}
	for {
		select {
		case err := <-r.done:
			c.mu.Lock()
			c.dropLeadLocked(r) // handed to r just before Close answered it
			c.mu.Unlock()
			return err
		case <-r.lead:
			db.lead(r, false)
		case <-r.ctx.Done():
			c.abandon(r)
			// The answer may have been sent meanwhile (the rows were then
			// taken into a batch); ctx's error is reported either way.
			return fmt.Errorf("add fragments: %w", r.ctx.Err())
		}
	}
}

// abandon removes r, whose caller stopped waiting, from the queue (a
// request already taken into a batch is left to its leader) and gives up
// the leadership if it had been handed to r.
func (c *committer) abandon(r *fragReq) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i := slices.Index(c.queue, r); i >= 0 {
		c.queue = slices.Delete(c.queue, i, i+1)
	}
	c.dropLeadLocked(r)
}

// dropLeadLocked gives up the leadership handed to r if r holds it and
// will not lead (it was abandoned, or answered by Close). c.mu is held.
func (c *committer) dropLeadLocked(r *fragReq) {
	select {
	case <-r.lead:
		if !c.closed {
			c.handOffLocked()
		}
		c.leaders.Done()
	default:
	}
}

// lead commits one batch as the leader (r is the leader's own request,
// fromIdle whether it found no leader), then hands the leadership on.
func (db *DB) lead(r *fragReq, fromIdle bool) {
	c := db.fc
	if w := time.Duration(c.window.Load()); fromIdle && w > 0 && c.queuedRows() < maxBatchRows {
		t := time.NewTimer(w)
		select {
		case <-t.C:
		case <-c.ctx.Done():
		case <-r.ctx.Done(): // take what has come so far
		}
		t.Stop()
	}
	if batch := c.take(maxBatchRows); len(batch) > 0 {
		db.commitBatch(batch)
	}
	c.mu.Lock()
	if c.closed {
		c.leading = false
	} else {
		c.handOffLocked()
	}
	c.mu.Unlock()
	c.leaders.Done()
}

// handOffLocked gives the leadership to the request at the head of the
// queue, or leaves the committer idle when the queue is empty. c.mu is
// held.
func (c *committer) handOffLocked() {
	if len(c.queue) == 0 {
		c.leading = false
		return
	}
	c.leaders.Add(1)
	c.queue[0].lead <- struct{}{}
}

// take removes the next batch from the queue: requests in arrival order
// while their rows fit in maxRows, at least one. Requests whose caller has
// already stopped waiting are answered and dropped.
func (c *committer) take(maxRows int) []*fragReq {
	c.mu.Lock()
	defer c.mu.Unlock()
	var batch []*fragReq
	rows, n := 0, 0
	for _, r := range c.queue {
		if len(batch) > 0 && rows+len(r.frags) > maxRows {
			break
		}
		n++
		if err := r.ctx.Err(); err != nil {
			r.done <- fmt.Errorf("add fragments: %w", err)
			continue
		}
		batch = append(batch, r)
		rows += len(r.frags)
	}
	// Shift rather than reslice so the backing array does not keep
	// answered requests alive.
	c.queue = slices.Delete(c.queue, 0, n)
	return batch
}

// queuedRows returns the number of fragment rows waiting.
func (c *committer) queuedRows() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, r := range c.queue {
		n += len(r.frags)
	}
	return n
}

// SetCommitWindow makes an AddFragments call that finds no other call
// committing wait up to d for others to share its write transaction (0,
// the default, writes a lone call at once). At
// a steady rate of one call per camera every two seconds, calls rarely
// overlap by themselves, and a transaction's fixed cost (the segment
// update with its coverage triggers, the commit) dominates: a window of
// 100 ms gives ≈ cameras/20 rows per transaction at the price of up to
// 100 ms more before a fragment is in the index (the segmenter's index
// worker waits, never the media path).
func (db *DB) SetCommitWindow(d time.Duration) {
	db.fc.window.Store(int64(max(d, 0)))
}

// queued returns the number of requests waiting (for tests).
func (c *committer) queued() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.queue)
}

// commitBatch writes batch in one transaction and answers its callers. If
// that fails, each request is committed in its own transaction instead, so
// that every caller gets the result (and error) it would have got alone.
func (db *DB) commitBatch(batch []*fragReq) {
	c := db.fc
	c.txs.Add(1)
	err := db.withTx(c.ctx, func(tx *sql.Tx) error {
		return db.writeFragments(c.ctx, tx, batch)
	})
	if err == nil || len(batch) == 1 {
		answerAll(batch, db.fragmentsErr(err))
		return
	}
	if c.ctx.Err() != nil {
		answerAll(batch, db.fragmentsErr(err))
		return
	}
	c.fallbacks.Add(1)
	db.log.Debug("fragment batch failed, committing its requests one by one",
		"requests", len(batch), "err", err)
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.done <- fmt.Errorf("add fragments: %w", err)
			continue
		}
		r.done <- db.addFragmentsDirect(c.ctx, r.frags)
	}
}

// fragmentsErr wraps a transaction error as AddFragments reports it; a
// failure caused by Close is reported as errClosed.
func (db *DB) fragmentsErr(err error) error {
	switch {
	case err == nil:
		return nil
	case db.fc.ctx.Err() != nil:
		return fmt.Errorf("add fragments: %w", errClosed)
	default:
		return fmt.Errorf("add fragments: %w", err)
	}
}

func answerAll(batch []*fragReq, err error) {
	for _, r := range batch {
		r.done <- err
	}
}

// addFragmentsDirect commits frags (already validated) in a transaction of
// their own: the path of a request whose group transaction failed, and the
// pre-group-commit behaviour, kept as the benchmarks' baseline.
func (db *DB) addFragmentsDirect(ctx context.Context, frags []recording.Fragment) error {
	err := db.withTx(ctx, func(tx *sql.Tx) error {
		return db.writeFragments(ctx, tx, []*fragReq{{frags: frags}})
	})
	return db.fragmentsErr(err)
}

// writeFragments applies the requests in tx, in order: each touched
// segment's end and size are raised once to the largest over all requests
// (the raise only ever increases them, so this equals applying the
// requests one after the other), then the rows are upserted, a later
// request's row replacing an earlier one with the same (segment, seq).
// A missing segment is ErrNotFound.
func (db *DB) writeFragments(ctx context.Context, tx *sql.Tx, reqs []*fragReq) error {
	type bounds struct{ end, size int64 }
	per := make(map[int64]bounds)
	for _, r := range reqs {
		for _, f := range r.frags {
			b := per[f.SegmentID]
			b.end = max(b.end, toNS(f.End))
			b.size = max(b.size, f.Offset+f.Size)
			per[f.SegmentID] = b
		}
	}
	ids := make([]int64, 0, len(per))
	for id := range per {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	raise, raiseMax := db.txStmt(ctx, tx, raiseSegment), db.txStmt(ctx, tx, raiseMaxSegment)
	for _, id := range ids {
		b := per[id]
		res, err := raise.ExecContext(ctx, b.end, b.end, b.size, b.size, id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("segment %d: %w", id, ErrNotFound)
		}
		if _, err := raiseMax.ExecContext(ctx, id, id, id); err != nil {
			return err
		}
	}
	stmt := db.txStmt(ctx, tx, upsertFragment)
	for _, r := range reqs {
		for _, f := range r.frags {
			if _, err := stmt.ExecContext(ctx, f.SegmentID, f.Seq, toNS(f.Start), toNS(f.End),
				f.Offset, f.Size, boolInt(f.Keyframe)); err != nil {
				return err
			}
		}
	}
	return nil
}
