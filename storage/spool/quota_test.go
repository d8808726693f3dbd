package spool

import (
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// spoolSize is the independent judge of the quota: the sum of the spool
// files' sizes on disk.
func spoolSize(t *testing.T, d Dir) int64 {
	t.Helper()
	var n int64
	if err := d.Walk(func(_ string, info fs.FileInfo) error { n += info.Size(); return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestQuotaHysteresis(t *testing.T) {
	type step struct {
		op       string // reserve, add, release
		n        int64
		wantOK   bool // reserve only
		wantFull bool
		wantUsed int64
	}
	tests := []struct {
		name  string
		cfg   QuotaConfig
		steps []step
	}{
		{"unlimited", QuotaConfig{}, []step{
			{"reserve", 1 << 40, true, false, 1 << 40},
			{"reserve", 1 << 40, true, false, 2 << 40},
			{"release", 2 << 40, false, false, 0},
		}},
		{"fill, refuse, resume at 90 %", QuotaConfig{MaxBytes: 1000}, []step{
			{"reserve", 600, true, false, 600},
			{"reserve", 400, true, false, 1000}, // exactly the cap fits
			{"reserve", 1, false, true, 1000},
			{"release", 50, false, true, 950}, // above the watermark (900): still full
			{"reserve", 10, false, true, 950}, // would fit, but full until 900
			{"release", 50, false, false, 900},
			{"reserve", 10, true, false, 910},
		}},
		{"too big refuses and pauses everyone", QuotaConfig{MaxBytes: 1000, ResumeBytes: 500}, []step{
			{"reserve", 800, true, false, 800},
			{"reserve", 300, false, true, 800},
			{"reserve", 1, false, true, 800},
			{"release", 299, false, true, 501},
			{"release", 1, false, false, 500},
		}},
		{"forced add can exceed the cap", QuotaConfig{MaxBytes: 1000}, []step{
			{"reserve", 900, true, false, 900},
			{"add", 300, false, true, 1200},
			{"reserve", 1, false, true, 1200},
			{"release", 300, false, false, 900},
		}},
		{"resume above cap is clamped", QuotaConfig{MaxBytes: 100, ResumeBytes: 500}, []step{
			// Refused, but 0 <= the watermark (clamped to 100): room at once.
			{"reserve", 101, false, false, 0},
			{"reserve", 100, true, false, 100},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := NewDir(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			q, err := NewQuota(d, tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			for i, s := range tc.steps {
				switch s.op {
				case "reserve":
					if ok := q.Reserve(s.n); ok != s.wantOK {
						t.Errorf("step %d: Reserve(%d) = %v, want %v", i, s.n, ok, s.wantOK)
					}
				case "add":
					q.Add(s.n)
				case "release":
					q.Release(s.n)
				}
				if q.Full() != s.wantFull || q.Bytes() != s.wantUsed {
					t.Errorf("step %d (%s %d): full=%v used=%d, want full=%v used=%d",
						i, s.op, s.n, q.Full(), q.Bytes(), s.wantFull, s.wantUsed)
				}
			}
		})
	}
}

func TestQuotaStats(t *testing.T) {
	d, _ := NewDir(t.TempDir())
	q, err := NewQuota(d, QuotaConfig{MaxBytes: 1000})
	if err != nil {
		t.Fatal(err)
	}
	q.Reserve(950)
	q.Reserve(100) // refused: episode 1
	q.Reserve(5)   // refused, same episode
	if !q.Full() {
		t.Error("not full after a refusal at 950/1000")
	}
	q.Release(950)
	q.Reserve(2000) // refused: episode 2
	want := QuotaStats{Bytes: 0, Cap: 1000, Full: false, FullEpisodes: 2, Refused: 3, RefusedBytes: 2105}
	// Full is false: Bytes (0) is below the watermark, so the refusal of
	// an oversized reservation does not leave the spool paused.
	if got := q.Stats(); got != want {
		t.Errorf("Stats = %+v, want %+v", got, want)
	}
}

// NewQuota measures the directory; Dir.Remove credits the quota exactly
// once per removed file.
func TestQuotaDirAccounting(t *testing.T) {
	d, err := NewDir(filepath.Join(t.TempDir(), "spool"))
	if err != nil {
		t.Fatal(err)
	}
	keys := []string{"cam/2024/05/06/07/a.mp4", "cam/2024/05/06/07/b.mp4", "cam2/2024/05/06/07/c.mp4"}
	for i, k := range keys {
		f, err := d.Create(k)
		if err != nil {
			t.Fatal(err)
		}
		f.Write(content(i))
		f.Close()
	}
	// Not a key: not footage, not counted (Walk skips it).
	os.WriteFile(filepath.Join(d.Root, "cam", "#junk"), make([]byte, 1000), 0o644)
	q, err := NewQuota(d, QuotaConfig{MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	d.Quota = q
	if got, want := q.Bytes(), spoolSize(t, d); got != want || want == 0 {
		t.Fatalf("initial quota %d, spool %d", got, want)
	}
	// Concurrent removals of the same files credit each once.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for _, k := range keys[:2] {
				if err := d.Remove(k); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if got, want := q.Bytes(), spoolSize(t, d); got != want {
		t.Errorf("after removals quota %d, spool %d", got, want)
	}
	// A spool bigger than the cap at start is full at once.
	q2, err := NewQuota(d, QuotaConfig{MaxBytes: 10})
	if err != nil {
		t.Fatal(err)
	}
	if !q2.Full() || q2.Reserve(1) {
		t.Errorf("over-cap spool: full=%v", q2.Full())
	}
}

// Concurrent reservations never exceed the cap (run with -race).
func TestQuotaConcurrent(t *testing.T) {
	d, _ := NewDir(t.TempDir())
	q, err := NewQuota(d, QuotaConfig{MaxBytes: 10_000})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var granted int64
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				if q.Reserve(7) {
					mu.Lock()
					granted += 7
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if granted != q.Bytes() || granted > 10_000 || granted < 10_000-7 {
		t.Errorf("granted %d, used %d, cap 10000", granted, q.Bytes())
	}
	for range 8 {
		wg.Go(func() {
			for range 10 {
				q.Release(granted / 80)
			}
		})
	}
	wg.Wait()
	if q.Full() {
		t.Errorf("still full at %d bytes", q.Bytes())
	}
}
