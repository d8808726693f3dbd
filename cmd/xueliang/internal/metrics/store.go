package metrics

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"xueliang/storage"
)

// storeMetrics are the object store decorator's metrics.
type storeMetrics struct {
	upload   prometheus.Histogram
	requests *prometheus.HistogramVec // op
	errors   *prometheus.CounterVec   // op
}

// Store operations (label op).
const (
	opPut      = "put"
	opGetRange = "get_range"
	opStat     = "stat"
	opDelete   = "delete"
	opList     = "list"
)

func newStoreMetrics(reg prometheus.Registerer) *storeMetrics {
	m := &storeMetrics{
		upload: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "xueliang_upload_duration_seconds",
			Help:    "Duration of object store puts (one segment each), failed ones included.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2.5, 10), // 10 ms … 38 s
		}),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "xueliang_storage_request_duration_seconds",
			Help:    "Duration of object store reads and deletes (get_range: until the body starts).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 10), // 1 ms … 3.8 s
		}, []string{"op"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "xueliang_storage_errors_total",
			Help: "Object store calls that failed (not found and cancellation excluded).",
		}, []string{"op"}),
	}
	for _, op := range []string{opPut, opGetRange, opStat, opDelete, opList} {
		m.errors.WithLabelValues(op)
		if op != opPut {
			m.requests.WithLabelValues(op)
		}
	}
	reg.MustRegister(m.upload, m.requests, m.errors)
	return m
}

func (m *storeMetrics) done(op string, start time.Time, err error) {
	d := time.Since(start).Seconds()
	if op == opPut {
		m.upload.Observe(d)
	} else {
		m.requests.WithLabelValues(op).Observe(d)
	}
	if err != nil && !errors.Is(err, storage.ErrNotFound) && !errors.Is(err, context.Canceled) {
		m.errors.WithLabelValues(op).Inc()
	}
}

// filePutter and hashedFilePutter mirror spool.FilePutter and
// spool.HashedFilePutter (declared here to keep the decorator transparent
// to the uploader's type assertions).
type filePutter interface {
	PutFile(ctx context.Context, key, path string) (storage.ObjectInfo, error)
}

type hashedFilePutter interface {
	PutFileSHA256(ctx context.Context, key, path, sha256Hex string) (storage.ObjectInfo, error)
}

// WrapStore returns s instrumented with xueliang_upload_duration_seconds,
// xueliang_storage_request_duration_seconds{op} and
// xueliang_storage_errors_total{op}, registered on reg. The result offers
// PutFile and PutFileSHA256 exactly when s does.
func WrapStore(reg prometheus.Registerer, s storage.Store) storage.Store {
	in := &instrumentedStore{s: s, m: newStoreMetrics(reg)}
	fp, file := s.(filePutter)
	hp, hashed := s.(hashedFilePutter)
	switch {
	case file && hashed:
		return &instrumentedFileHashedStore{instrumentedStore: in, fp: fp, hp: hp}
	case file:
		return &instrumentedFileStore{instrumentedStore: in, fp: fp}
	case hashed:
		return &instrumentedHashedStore{instrumentedStore: in, hp: hp}
	}
	return in
}

type instrumentedStore struct {
	s storage.Store
	m *storeMetrics
}

var _ storage.Store = (*instrumentedStore)(nil)

func (i *instrumentedStore) Put(ctx context.Context, key string, r io.Reader, size int64) (storage.ObjectInfo, error) {
	start := time.Now()
	info, err := i.s.Put(ctx, key, r, size)
	i.m.done(opPut, start, err)
	return info, err
}

func (i *instrumentedStore) GetRange(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	start := time.Now()
	rc, err := i.s.GetRange(ctx, key, off, length)
	i.m.done(opGetRange, start, err)
	return rc, err
}

func (i *instrumentedStore) Stat(ctx context.Context, key string) (storage.ObjectInfo, error) {
	start := time.Now()
	info, err := i.s.Stat(ctx, key)
	i.m.done(opStat, start, err)
	return info, err
}

func (i *instrumentedStore) Delete(ctx context.Context, key string) error {
	start := time.Now()
	err := i.s.Delete(ctx, key)
	i.m.done(opDelete, start, err)
	return err
}

func (i *instrumentedStore) List(ctx context.Context, prefix string, fn func(storage.ObjectInfo) error) error {
	start := time.Now()
	err := i.s.List(ctx, prefix, fn)
	i.m.done(opList, start, err)
	return err
}

func (i *instrumentedStore) Close() error { return i.s.Close() }

type instrumentedFileStore struct {
	*instrumentedStore
	fp filePutter
}

func (i *instrumentedFileStore) PutFile(ctx context.Context, key, path string) (storage.ObjectInfo, error) {
	return putFile(ctx, i.instrumentedStore, i.fp, key, path)
}

type instrumentedHashedStore struct {
	*instrumentedStore
	hp hashedFilePutter
}

func (i *instrumentedHashedStore) PutFileSHA256(ctx context.Context, key, path, sha256Hex string) (storage.ObjectInfo, error) {
	return putFileSHA256(ctx, i.instrumentedStore, i.hp, key, path, sha256Hex)
}

type instrumentedFileHashedStore struct {
	*instrumentedStore
	fp filePutter
	hp hashedFilePutter
}

func (i *instrumentedFileHashedStore) PutFile(ctx context.Context, key, path string) (storage.ObjectInfo, error) {
	return putFile(ctx, i.instrumentedStore, i.fp, key, path)
}

func (i *instrumentedFileHashedStore) PutFileSHA256(ctx context.Context, key, path, sha256Hex string) (storage.ObjectInfo, error) {
	return putFileSHA256(ctx, i.instrumentedStore, i.hp, key, path, sha256Hex)
}

func putFile(ctx context.Context, i *instrumentedStore, fp filePutter, key, path string) (storage.ObjectInfo, error) {
	start := time.Now()
	info, err := fp.PutFile(ctx, key, path)
	i.m.done(opPut, start, err)
	return info, err
}

func putFileSHA256(ctx context.Context, i *instrumentedStore, hp hashedFilePutter, key, path, sha256Hex string) (storage.ObjectInfo, error) {
	start := time.Now()
	info, err := hp.PutFileSHA256(ctx, key, path, sha256Hex)
	i.m.done(opPut, start, err)
	return info, err
}
