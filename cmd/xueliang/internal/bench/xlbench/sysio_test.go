package main

import (
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestReadPSI(t *testing.T) {
	p := filepath.Join(t.TempDir(), "io")
	if err := os.WriteFile(p, []byte("some avg10=45.98 avg60=15.36 avg300=3.76 total=3135756716\nfull avg10=45.60 avg60=15.22 avg300=3.66 total=1707596192\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	some, full, ok := readPSI(p)
	if !ok || some != 3135756716 || full != 1707596192 {
		t.Fatalf("readPSI = %v, %v, %v", some, full, ok)
	}
	if _, _, ok := readPSI(filepath.Join(t.TempDir(), "absent")); ok {
		t.Fatal("readPSI of a missing file reported ok")
	}
}

func TestIOBetween(t *testing.T) {
	t0 := time.Unix(1000, 0)
	pg := float64(os.Getpagesize())
	a := sysStat{at: t0, ioSome: 1e6, ioFull: 0, cpuSome: 0, psiOK: true, wrSectors: 0, discSectors: 0, diskOK: true, dirtyKiB: 1024, freeKiB: 2048 * 1024, stealKswapd: 100, stealDirect: 10}
	// 10 s later: 4.8 s of some-I/O stall, 0.6 s full, 6.3 s CPU stall,
	// 2 GB written, 0.9 GB discarded.
	b := sysStat{at: t0.Add(10 * time.Second), ioSome: 5.8e6, ioFull: 0.6e6, cpuSome: 6.3e6, psiOK: true,
		wrSectors: 2e9 / 512, discSectors: 0.9e9 / 512, diskOK: true, dirtyKiB: 2048, stealKswapd: 100 + 1e6/pg*300*10, stealDirect: 10 + 1e6/pg*20*10}
	w := ioBetween(a, b, "vda", []float64{616 * 1024, 10})
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"io some %", w.IOSomePct, 48}, {"io full %", w.IOFullPct, 6}, {"cpu some %", w.CPUSomePct, 63},
		{"write MB/s", w.DiskWriteMB, 200}, {"discard MB/s", w.DiscardMB, 90}, {"dirty max MiB", w.DirtyMaxMiB, 616},
		{"free at start MiB", w.FreeStartMiB, 2048}, {"reclaim MB/s", w.ReclaimMBps, 320}, {"direct MB/s", w.DirectMBps, 20},
	} {
		if math.Abs(c.got-c.want) > 1e-9 {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	// A counter the kernel does not offer stays 0, not a difference of zeros and garbage.
	b.diskOK = false
	if w := ioBetween(a, b, "", nil); w.DiskWriteMB != 0 || w.DiscardMB != 0 {
		t.Errorf("without diskstats: write %v discard %v, want 0", w.DiskWriteMB, w.DiscardMB)
	}
}

func TestScratchFS(t *testing.T) {
	for _, c := range []struct {
		w    ioWindow
		want string
	}{
		{ioWindow{MountType: "ext4", Discard: true}, "ext4, discard"},
		{ioWindow{MountType: "xfs"}, "xfs"},
		{ioWindow{}, "?"},
	} {
		if got := scratchFS(c.w); got != c.want {
			t.Errorf("scratchFS(%+v) = %q, want %q", c.w, got, c.want)
		}
	}
}
