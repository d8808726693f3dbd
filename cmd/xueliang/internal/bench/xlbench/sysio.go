package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"xueliang/storage/spool"
)

// sysStat is the machine-wide pressure and disk counters at one instant:
// the server, camsim and MinIO share the machine's cores and its disk, so
// a step that fails may have waited on either. Values are NaN-free: a
// counter the kernel does not offer stays 0 and its ok flag false.
type sysStat struct {
	at time.Time
	// Pressure stall totals (µs) from /proc/pressure: time in which at
	// least one task ("some") or every non-idle task ("full") waited.
	ioSome, ioFull, cpuSome float64
	psiOK                   bool
	// Sectors (512 B) written and discarded on the block device under the
	// scratch directory (/proc/diskstats).
	wrSectors, discSectors float64
	diskOK                 bool
	// Dirty + Writeback page cache and MemFree, KiB (/proc/meminfo).
	dirtyKiB, freeKiB float64
	// Pages reclaimed by kswapd and by allocating tasks themselves (direct
	// reclaim), from /proc/vmstat: once the page cache has filled the RAM,
	// every page written is first taken from the cache.
	stealKswapd, stealDirect float64
}

// ioWindow is what the machine as a whole went through in a run's window:
// the CPU and I/O pressure stall shares (% of the window), MB/s written and
// discarded on the scratch device, the most dirty + writeback page cache
// seen, free memory and page-cache reclaim, and the scratch file system.
type ioWindow struct {
	IOSomePct   float64 `json:"io_pressure_some_pct"`
	IOFullPct   float64 `json:"io_pressure_full_pct"`
	CPUSomePct  float64 `json:"cpu_pressure_some_pct"`
	DiskWriteMB float64 `json:"disk_write_mb_per_s"`
	DiscardMB   float64 `json:"disk_discard_mb_per_s"`
	DirtyMaxMiB float64 `json:"dirty_writeback_max_mib"`
	// FreeStartMiB is MemFree when the window opened; ReclaimMBps the page
	// cache reclaimed per second in it (kswapd + direct), DirectMBps the
	// part reclaimed by the allocating processes themselves.
	FreeStartMiB float64 `json:"mem_free_start_mib"`
	ReclaimMBps  float64 `json:"reclaim_mb_per_s"`
	DirectMBps   float64 `json:"direct_reclaim_mb_per_s"`
	Device       string  `json:"disk_device,omitempty"`
	// Mount is the scratch directory's file system with its options (from
	// /proc/self/mountinfo); Discard when mounted with online discard.
	Mount     string `json:"scratch_mount,omitempty"`
	MountType string `json:"scratch_fs,omitempty"`
	Discard   bool   `json:"scratch_discard"`
}

// withMount sets w's scratch file system fields from the mount holding dir.
func (w *ioWindow) withMount(dir string) {
	if m, err := spool.MountOf(dir); err == nil {
		w.Mount, w.MountType, w.Discard = m.String(), m.Type, m.Discard()
	}
}

// diskOf returns the /proc/diskstats name of the block device holding dir
// ("" when it has none, e.g. overlay or tmpfs).
func diskOf(dir string) string {
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return ""
	}
	dev := uint64(st.Dev)
	major := (dev>>8)&0xfff | (dev>>32)&^uint64(0xfff)
	minor := dev&0xff | (dev>>12)&^uint64(0xff)
	b, err := os.ReadFile("/proc/diskstats")
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 3 && f[0] == strconv.FormatUint(major, 10) && f[1] == strconv.FormatUint(minor, 10) {
			return f[2]
		}
	}
	return ""
}

func readSysStat(disk string) sysStat {
	s := sysStat{at: time.Now()}
	some, full, ok1 := readPSI("/proc/pressure/io")
	csome, _, ok2 := readPSI("/proc/pressure/cpu")
	s.ioSome, s.ioFull, s.cpuSome, s.psiOK = some, full, csome, ok1 && ok2
	if disk != "" {
		if b, err := os.ReadFile("/proc/diskstats"); err == nil {
			for _, l := range strings.Split(string(b), "\n") {
				f := strings.Fields(l)
				// name(2) … sectors written(9) … sectors discarded(16)
				if len(f) >= 17 && f[2] == disk {
					s.wrSectors, _ = strconv.ParseFloat(f[9], 64)
					s.discSectors, _ = strconv.ParseFloat(f[16], 64)
					s.diskOK = true
				}
			}
		}
	}
	if f, err := os.Open("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			k, v, _ := strings.Cut(sc.Text(), ":")
			n, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			switch k {
			case "Dirty", "Writeback":
				s.dirtyKiB += n
			case "MemFree":
				s.freeKiB = n
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/vmstat"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			k, v, _ := strings.Cut(l, " ")
			n, _ := strconv.ParseFloat(v, 64)
			switch k {
			case "pgsteal_kswapd":
				s.stealKswapd = n
			case "pgsteal_direct":
				s.stealDirect = n
			}
		}
	}
	return s
}

// readPSI returns the some and full totals (µs) of a /proc/pressure file.
func readPSI(path string) (some, full float64, ok bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, false
	}
	for _, l := range strings.Split(string(b), "\n") {
		kind, rest, _ := strings.Cut(l, " ")
		for _, kv := range strings.Fields(rest) {
			if v, found := strings.CutPrefix(kv, "total="); found {
				n, _ := strconv.ParseFloat(v, 64)
				switch kind {
				case "some":
					some, ok = n, true
				case "full":
					full = n
				}
			}
		}
	}
	return some, full, ok
}

// ioBetween turns two sysStat readings (and the dirty samples taken in
// between) into an ioWindow.
func ioBetween(a, b sysStat, disk string, dirty []float64) ioWindow {
	el := b.at.Sub(a.at).Seconds()
	if el <= 0 {
		return ioWindow{}
	}
	w := ioWindow{Device: disk}
	if a.psiOK && b.psiOK {
		w.IOSomePct = (b.ioSome - a.ioSome) / 1e6 / el * 100
		w.IOFullPct = (b.ioFull - a.ioFull) / 1e6 / el * 100
		w.CPUSomePct = (b.cpuSome - a.cpuSome) / 1e6 / el * 100
	}
	if a.diskOK && b.diskOK {
		w.DiskWriteMB = (b.wrSectors - a.wrSectors) * 512 / 1e6 / el
		w.DiscardMB = (b.discSectors - a.discSectors) * 512 / 1e6 / el
	}
	page := float64(os.Getpagesize())
	w.FreeStartMiB = a.freeKiB / 1024
	w.ReclaimMBps = (b.stealKswapd + b.stealDirect - a.stealKswapd - a.stealDirect) * page / 1e6 / el
	w.DirectMBps = (b.stealDirect - a.stealDirect) * page / 1e6 / el
	for _, d := range append(dirty, a.dirtyKiB, b.dirtyKiB) {
		w.DirtyMaxMiB = max(w.DirtyMaxMiB, d/1024)
	}
	return w
}

func (w ioWindow) String() string {
	return fmt.Sprintf("io pressure some %.0f %% full %.0f %%, cpu pressure %.0f %%, disk %s write %.0f MB/s discard %.0f MB/s, dirty max %.0f MiB, free at start %.0f MiB, reclaim %.0f MB/s (direct %.0f)",
		w.IOSomePct, w.IOFullPct, w.CPUSomePct, w.Device, w.DiskWriteMB, w.DiscardMB, w.DirtyMaxMiB, w.FreeStartMiB, w.ReclaimMBps, w.DirectMBps)
}
