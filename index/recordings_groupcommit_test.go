package index

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"
	"xueliang/storage/recording"
)

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// holdWriter takes the writer's single connection, so that the committer
// blocks at BEGIN and requests pile up in its queue. It returns a release
// function (also run at cleanup).
func holdWriter(t *testing.T, db *DB) (release func()) {
	t.Helper()
	conn, err := db.w.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release = func() { once.Do(func() { _ = conn.Close() }) }
	t.Cleanup(release)
	return release
}

// primeBlocked makes the committer take one request for seg and block on
// the held writer connection, so that every request enqueued afterwards
// waits for the same next batch. It returns the primer's result channel.
func primeBlocked(t *testing.T, db *DB, seg recording.Segment) <-chan error {
	t.Helper()
	txs0 := db.fc.txs.Load()
	errc := make(chan error, 1)
	go func() {
		errc <- db.AddFragments(context.Background(), []recording.Fragment{{SegmentID: seg.ID, Seq: 1000, Start: at(0), End: at(1), Size: 1}})
	}()
	waitFor(t, "the committer to take the primer", func() bool { return db.fc.txs.Load() == txs0+1 && db.fc.queued() == 0 })
	return errc
}

func frag(seg int64, seq int) recording.Fragment {
	return recording.Fragment{SegmentID: seg, Seq: seq, Start: at(float64(2 * (seq - 1))), End: at(float64(2 * seq)),
		Offset: int64(100 * (seq - 1)), Size: 100, Keyframe: seq%2 == 1}
}

// testGroupCommitManyWriters: 64 goroutines on 32 segments (two per
// segment, interleaved seqs), one or two fragments per call; the first
// calls are held back so that at least one batch merges all 64 requests.
func testGroupCommitManyWriters(t *testing.T, be *backend) {
	ctx := context.Background()
	db := be.open(t)
	const writers, nSegs, calls = 64, 32, 40 // each writer: calls × 1–2 fragments
	segs := make([]recording.Segment, nSegs)
	for i := range segs {
		segs[i] = mustCreate(t, db, fmt.Sprintf("cam%02d", i), at(0), time.Time{})
	}
	primerSeg := mustCreate(t, db, "primer", at(0), time.Time{})
	release := holdWriter(t, db)
	primer := primeBlocked(t, db, primerSeg)
	txs0 := db.fc.txs.Load()
	var wg sync.WaitGroup
	errc := make(chan error, writers*calls)
	for w := range writers {
		wg.Go(func() {
			seg, parity := segs[w%nSegs].ID, w/nSegs // seqs 2k+1+parity
			for c := range calls {
				fs := []recording.Fragment{frag(seg, 4*c+1+parity)}
				if c%3 == 0 {
					fs = append(fs, frag(seg, 4*c+3+parity))
				}
				if err := db.AddFragments(ctx, fs); err != nil {
					errc <- err
				}
			}
		})
	}
	waitFor(t, "requests to queue", func() bool { return db.fc.queued() == writers })
	release()
	wg.Wait()
	if err := <-primer; err != nil {
		t.Fatalf("primer: %v", err)
	}
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	// Per segment: seqs 4c+1..4c+2 always, 4c+3..4c+4 when c%3 == 0.
	last := 4*(calls-1) + 2
	if (calls-1)%3 == 0 {
		last += 2
	}
	for _, seg := range segs {
		fs, err := db.Fragments(ctx, seg.ID, at(0), at(1e6))
		if err != nil {
			t.Fatal(err)
		}
		want := map[int]bool{}
		for c := range calls {
			want[4*c+1], want[4*c+2] = true, true
			if c%3 == 0 {
				want[4*c+3], want[4*c+4] = true, true
			}
		}
		if len(fs) != len(want) {
			t.Errorf("segment %d: %d fragments, want %d", seg.ID, len(fs), len(want))
		}
		for _, f := range fs {
			if !want[f.Seq] || f != frag(seg.ID, f.Seq) {
				t.Errorf("segment %d: unexpected fragment %+v", seg.ID, f)
			}
		}
		got, err := db.Segment(ctx, seg.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !got.End.Equal(at(float64(2*last))) || got.Size != int64(100*last) {
			t.Errorf("segment %d end/size = %v/%d, want %v/%d", seg.ID, got.End, got.Size, at(float64(2*last)), 100*last)
		}
	}
	txs := db.fc.txs.Load() - txs0
	t.Logf("%d calls in %d transactions", writers*calls, txs)
	if txs >= writers*calls {
		t.Errorf("%d calls took %d transactions: nothing was merged", writers*calls, txs)
	}
}

// testGroupCommitFailingRequestFailsAlone: requests for a missing segment,
// batched with good ones, get today's error; the good ones succeed and
// nothing of the bad ones is written.
func testGroupCommitFailingRequestFailsAlone(t *testing.T, be *backend) {
	ctx := context.Background()
	db := be.open(t)
	good := make([]recording.Segment, 8)
	for i := range good {
		good[i] = mustCreate(t, db, fmt.Sprintf("cam%d", i), at(0), time.Time{})
	}
	const missing = int64(1 << 40)
	release := holdWriter(t, db)
	primer := primeBlocked(t, db, good[0])

	type call struct {
		frags []recording.Fragment
		err   error
	}
	calls := []*call{
		{frags: []recording.Fragment{frag(good[0].ID, 1)}},
		{frags: []recording.Fragment{frag(missing, 1)}},
		{frags: []recording.Fragment{frag(good[1].ID, 1), frag(good[1].ID, 2)}},
		// Mixed: a good segment and a missing one; all or nothing.
		{frags: []recording.Fragment{frag(good[7].ID, 1), frag(missing+1, 1)}},
	}
	for i := 2; i < 7; i++ {
		calls = append(calls, &call{frags: []recording.Fragment{frag(good[i].ID, 1)}})
	}
	var wg sync.WaitGroup
	for _, c := range calls {
		wg.Go(func() { c.err = db.AddFragments(ctx, c.frags) })
	}
	waitFor(t, "requests to queue", func() bool { return db.fc.queued() == len(calls) })
	release()
	wg.Wait()
	if err := <-primer; err != nil {
		t.Fatalf("primer: %v", err)
	}
	if n := db.fc.fallbacks.Load(); n != 1 {
		t.Errorf("%d batches split after failing, want 1", n)
	}
	for _, c := range calls {
		bad := c.frags[len(c.frags)-1].SegmentID
		if bad < missing {
			if c.err != nil {
				t.Errorf("AddFragments(%v): %v", c.frags, c.err)
			}
			continue
		}
		want := fmt.Sprintf("add fragments: segment %d: not found", bad)
		if !errors.Is(c.err, ErrNotFound) || c.err.Error() != want {
			t.Errorf("AddFragments to missing segment %d: %v, want %q", bad, c.err, want)
		}
	}
	for i, seg := range good {
		fs, err := db.Fragments(ctx, seg.ID, at(0), at(1e6))
		if err != nil {
			t.Fatal(err)
		}
		want := 1
		switch i {
		case 0:
			want = 2 // primer's and the batch's
		case 1:
			want = 2
		case 7:
			want = 0 // the mixed request failed as a whole
		}
		if len(fs) != want {
			t.Errorf("segment %d (%d): %d fragments, want %d", i, seg.ID, len(fs), want)
		}
	}
}

// testGroupCommitContextCancel: a caller whose ctx ends while queued
// returns promptly with ctx's error; a request abandoned before its batch
// begins is not written.
func testGroupCommitContextCancel(t *testing.T, be *backend) {
	db := be.open(t)
	seg := mustCreate(t, db, "cam", at(0), time.Time{})
	release := holdWriter(t, db)
	primer := primeBlocked(t, db, seg)

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- db.AddFragments(ctx, []recording.Fragment{frag(seg.ID, 1)}) }()
	waitFor(t, "the request to queue", func() bool { return db.fc.queued() == 1 })
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled AddFragments: %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("cancelled AddFragments still waiting")
	}
	// Already ended: fails without queueing.
	if err := db.AddFragments(ctx, []recording.Fragment{frag(seg.ID, 2)}); !errors.Is(err, context.Canceled) {
		t.Errorf("AddFragments with an ended ctx: %v, want context.Canceled", err)
	}
	dctx, dcancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer dcancel()
	if err := db.AddFragments(dctx, []recording.Fragment{frag(seg.ID, 3)}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("AddFragments past its deadline: %v, want context.DeadlineExceeded", err)
	}

	release()
	if err := <-primer; err != nil {
		t.Fatalf("primer: %v", err)
	}
	bg := context.Background()
	if err := db.AddFragments(bg, []recording.Fragment{frag(seg.ID, 4)}); err != nil {
		t.Fatal(err)
	}
	fs, err := db.Fragments(bg, seg.ID, at(0), at(1e6))
	if err != nil {
		t.Fatal(err)
	}
	var seqs []int
	for _, f := range fs {
		seqs = append(seqs, f.Seq)
	}
	if fmt.Sprint(seqs) != "[4 1000]" {
		t.Errorf("fragments %v, want [4 1000] (abandoned requests not written)", seqs)
	}
}

// testGroupCommitCloseInFlight: Close with callers queued and the
// committer blocked returns promptly, answers every caller, leaks no
// goroutine, and later calls fail.
func testGroupCommitCloseInFlight(t *testing.T, be *backend) {
	path := be.newDB(t)
	before := runtime.NumGoroutine()
	db, err := be.openDSN(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	seg := mustCreate(t, db, "cam", at(0), time.Time{})
	release := holdWriter(t, db)
	primer := primeBlocked(t, db, seg)
	const callers = 10
	errc := make(chan error, callers)
	for i := range callers {
		go func() { errc <- db.AddFragments(context.Background(), []recording.Fragment{frag(seg.ID, i+1)}) }()
	}
	waitFor(t, "requests to queue", func() bool { return db.fc.queued() == callers })

	closed := make(chan error, 1)
	go func() { closed <- db.Close() }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return with callers in flight")
	}
	for range callers + 1 {
		var err error
		select {
		case err = <-errc:
		case err = <-primer:
		case <-time.After(5 * time.Second):
			t.Fatal("a caller still waits after Close")
		}
		if !errors.Is(err, errClosed) {
			t.Errorf("AddFragments in flight at Close: %v, want errClosed", err)
		}
	}
	if err := db.AddFragments(context.Background(), []recording.Fragment{frag(seg.ID, 99)}); !errors.Is(err, errClosed) {
		t.Errorf("AddFragments after Close: %v, want errClosed", err)
	}
	release()
	waitFor(t, "goroutines to exit", func() bool { return runtime.NumGoroutine() <= before })
}

// BenchmarkAddFragmentsConcurrent: 100 cameras, each a goroutine adding
// one fragment to its own segment per op, through AddFragments (group
// commit) and through one transaction per call (the previous behaviour).
// ns/row is the time per fragment row; rows/tx the mean batch size.
func BenchmarkAddFragmentsConcurrent(b *testing.B) {
	const cameras = 100
	for _, mode := range []string{"group", "direct"} {
		b.Run("mode="+mode, func(b *testing.B) {
			ctx := context.Background()
			db, err := Open(ctx, filepath.Join(b.TempDir(), "index.db"), nil)
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			add := db.AddFragments
			if mode == "direct" {
				add = db.addFragmentsDirect
			}
			start := make([]chan struct{}, cameras)
			done := make(chan error, cameras)
			var wg sync.WaitGroup
			for i := range cameras {
				seg := recording.Segment{CameraID: fmt.Sprintf("cam%03d", i), Start: t0, ObjectKey: fmt.Sprint(i), Codecs: "H264"}
				if err := db.CreateSegment(ctx, &seg); err != nil {
					b.Fatal(err)
				}
				start[i] = make(chan struct{})
				wg.Go(func() {
					seq := 0
					for range start[i] {
						seq++
						f := recording.Fragment{SegmentID: seg.ID, Seq: seq, Start: t0.Add(time.Duration(seq-1) * 2 * time.Second),
							End: t0.Add(time.Duration(seq) * 2 * time.Second), Offset: int64(seq-1) << 20, Size: 1 << 20, Keyframe: true}
						done <- add(ctx, []recording.Fragment{f})
					}
				})
			}
			defer wg.Wait()
			defer func() {
				for _, c := range start {
					close(c)
				}
			}()
			txs0 := db.fc.txs.Load()
			b.ReportAllocs()
			rounds := 0
			for b.Loop() {
				for _, c := range start {
					c <- struct{}{}
				}
				for range cameras {
					if err := <-done; err != nil {
						b.Fatal(err)
					}
				}
				rounds++
			}
			rows := float64(rounds * cameras)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/rows, "ns/row")
			if mode == "group" {
				b.ReportMetric(rows/float64(db.fc.txs.Load()-txs0), "rows/tx")
			}
		})
	}
}

// testGroupCommitWindow: with a commit window, calls that arrive one after
// another within it (as cameras' fragments do, a few milliseconds apart)
// share one transaction, and a lone call still commits after the window.
func testGroupCommitWindow(t *testing.T, be *backend) {
	ctx := context.Background()
	db := be.open(t)
	const window = 300 * time.Millisecond
	db.SetCommitWindow(window)
	const cams = 10
	segs := make([]recording.Segment, cams)
	for i := range segs {
		segs[i] = mustCreate(t, db, fmt.Sprintf("cam%02d", i), at(0), time.Time{})
	}
	txs0 := db.fc.txs.Load()
	start := time.Now()
	var wg sync.WaitGroup
	errc := make(chan error, cams)
	for i, seg := range segs {
		time.Sleep(5 * time.Millisecond) // staggered: none would overlap without the window
		wg.Go(func() {
			if err := db.AddFragments(ctx, []recording.Fragment{frag(seg.ID, 1)}); err != nil {
				errc <- fmt.Errorf("camera %d: %w", i, err)
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	if d := time.Since(start); d < window {
		t.Errorf("calls returned after %v, before the %v window", d, window)
	}
	if n := db.fc.txs.Load() - txs0; n != 1 {
		t.Errorf("%d transactions for %d staggered calls within the window, want 1", n, cams)
	}
	for _, seg := range segs {
		got, err := db.Segment(ctx, seg.ID)
		if err != nil {
			t.Fatal(err)
		}
		if want := frag(seg.ID, 1); !got.End.Equal(want.End) || got.Size != want.Offset+want.Size {
			t.Errorf("segment %d: end %v size %d after its fragment", seg.ID, got.End, got.Size)
		}
	}
	// Without the window, the same staggered calls commit one by one.
	db.SetCommitWindow(0)
	txs1 := db.fc.txs.Load()
	for _, seg := range segs {
		time.Sleep(5 * time.Millisecond)
		if err := db.AddFragments(ctx, []recording.Fragment{frag(seg.ID, 2)}); err != nil {
			t.Fatal(err)
		}
	}
	if n := db.fc.txs.Load() - txs1; n != cams {
		t.Errorf("%d transactions without a window, want %d", n, cams)
	}
}
