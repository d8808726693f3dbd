package metrics

import (
	"io/fs"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"xueliang/storage/spool"
)

// UploaderSource reports the uploader's counters (*spool.Uploader).
type UploaderSource interface {
	Stats() spool.Stats
}

// UploaderCollector exports the uploader's snapshot at scrape time.
type UploaderCollector struct {
	src                                                   UploaderSource
	pending, overflow, overflowed, uploaded, failed, byts *prometheus.Desc
}

var _ prometheus.Collector = (*UploaderCollector)(nil)

// NewUploaderCollector returns a collector over src.
func NewUploaderCollector(src UploaderSource) *UploaderCollector {
	d := func(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, nil, nil) }
	return &UploaderCollector{
		src:        src,
		pending:    d("xueliang_upload_pending_segments", "Closed segments not yet stored: queued, overflowed, uploading or waiting for a retry."),
		overflow:   d("xueliang_upload_overflow_segments", "Pending segments waiting in the overflow set (the queue was full)."),
		overflowed: d("xueliang_upload_overflowed_total", "Enqueues and retries that found the upload queue full."),
		uploaded:   d("xueliang_upload_segments_total", "Segments put into the store, verified and marked stored."),
		failed:     d("xueliang_upload_failures_total", "Failed upload attempts (each is retried)."),
		byts:       d("xueliang_upload_bytes_total", "Bytes of segments uploaded."),
	}
}

// Describe implements prometheus.Collector.
func (c *UploaderCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.pending, c.overflow, c.overflowed, c.uploaded, c.failed, c.byts} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *UploaderCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.src.Stats()
	ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(s.Pending))
	ch <- prometheus.MustNewConstMetric(c.overflow, prometheus.GaugeValue, float64(s.Overflow))
	ch <- prometheus.MustNewConstMetric(c.overflowed, prometheus.CounterValue, float64(s.Overflowed))
	ch <- prometheus.MustNewConstMetric(c.uploaded, prometheus.CounterValue, float64(s.Uploaded))
	ch <- prometheus.MustNewConstMetric(c.failed, prometheus.CounterValue, float64(s.Failed))
	ch <- prometheus.MustNewConstMetric(c.byts, prometheus.CounterValue, float64(s.Bytes))
}

// SpoolUsage describes the spool directory.
type SpoolUsage struct {
	// Bytes and Files count the regular files under the spool root: the
	// segments being recorded and the closed ones not yet uploaded.
	Bytes, Files int64
	// Oldest is the oldest modification time of a spool file (zero when
	// there is none). A recording segment is written every fragment, so the
	// oldest file is in practice the oldest closed segment not uploaded.
	Oldest time.Time
	// Capacity is the configured spool size cap; 0 when there is none.
	Capacity int64
	// FSSize and FSAvail describe the file system holding the spool; 0 when
	// unknown.
	FSSize, FSAvail int64
}

// SpoolUsageFunc returns the spool's usage.
type SpoolUsageFunc func() (SpoolUsage, error)

// DirUsage returns a SpoolUsageFunc that walks root, at most once per
// minInterval (cached in between, default 10 s), so that frequent scrapes
// stay cheap. capacity is reported as is.
func DirUsage(root string, capacity int64, minInterval time.Duration) SpoolUsageFunc {
	if minInterval <= 0 {
		minInterval = 10 * time.Second
	}
	var (
		mu   sync.Mutex
		last time.Time
		u    SpoolUsage
		err  error
	)
	return func() (SpoolUsage, error) {
		mu.Lock()
		defer mu.Unlock()
		if !last.IsZero() && time.Since(last) < minInterval {
			return u, err
		}
		last = time.Now()
		u, err = walkUsage(root)
		u.Capacity = capacity
		return u, err
	}
}

func walkUsage(root string) (SpoolUsage, error) {
	var u SpoolUsage
	u.FSSize, u.FSAvail = fsSpace(root)
	err := filepath.WalkDir(root, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			// A file removed during the walk (uploaded) is not an error.
			if d != nil && !d.IsDir() {
				return nil
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		u.Files++
		u.Bytes += info.Size()
		if mt := info.ModTime(); u.Oldest.IsZero() || mt.Before(u.Oldest) {
			u.Oldest = mt
		}
		return nil
	})
	return u, err
}

// SpoolCollector exports a SpoolUsageFunc at scrape time.
type SpoolCollector struct {
	usage                                                 SpoolUsageFunc
	now                                                   func() time.Time
	byts, files, oldestAge, capacity, fsSize, fsAvail, ok *prometheus.Desc
}

var _ prometheus.Collector = (*SpoolCollector)(nil)

// NewSpoolCollector returns a collector over usage.
func NewSpoolCollector(usage SpoolUsageFunc) *SpoolCollector {
	d := func(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, nil, nil) }
	return &SpoolCollector{
		usage:     usage,
		now:       time.Now,
		byts:      d("xueliang_spool_bytes", "Bytes of files in the spool (recording and awaiting upload)."),
		files:     d("xueliang_spool_segments", "Segment files in the spool (recording and awaiting upload)."),
		oldestAge: d("xueliang_spool_oldest_segment_age_seconds", "Age of the oldest spool file's last write: how long the oldest unuploaded segment has waited; 0 when the spool is empty."),
		capacity:  d("xueliang_spool_capacity_bytes", "Configured spool size cap; absent when there is none."),
		fsSize:    d("xueliang_spool_filesystem_size_bytes", "Size of the file system holding the spool."),
		fsAvail:   d("xueliang_spool_filesystem_avail_bytes", "Bytes available to xueliang on the file system holding the spool."),
		ok:        d("xueliang_spool_scan_ok", "1 when the last spool scan succeeded."),
	}
}

// Describe implements prometheus.Collector.
func (c *SpoolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.byts, c.files, c.oldestAge, c.capacity, c.fsSize, c.fsAvail, c.ok} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *SpoolCollector) Collect(ch chan<- prometheus.Metric) {
	u, err := c.usage()
	ok := 1.0
	if err != nil {
		ok = 0
	}
	g := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	g(c.ok, ok)
	g(c.byts, float64(u.Bytes))
	g(c.files, float64(u.Files))
	age := 0.0
	if !u.Oldest.IsZero() {
		age = max(0, c.now().Sub(u.Oldest).Seconds())
	}
	g(c.oldestAge, age)
	if u.Capacity > 0 {
		g(c.capacity, float64(u.Capacity))
	}
	if u.FSSize > 0 {
		g(c.fsSize, float64(u.FSSize))
		g(c.fsAvail, float64(u.FSAvail))
	}
}
