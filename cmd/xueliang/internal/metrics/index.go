package metrics

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"xueliang/ingest/segmenter"
	"xueliang/storage/recording"
	"xueliang/storage/spool"
)

// IndexWriter is what the recorders and the uploader use of the index
// (*index.DB).
type IndexWriter interface {
	segmenter.Index
	spool.SegmentIndex
}

type indexMetrics struct {
	duration *prometheus.HistogramVec // op
	errors   *prometheus.CounterVec   // op
}

// Index write operations (label op).
var indexOps = []string{"create_segment", "add_fragments", "finish_segment", "mark_stored"}

func newIndexMetrics(reg prometheus.Registerer) *indexMetrics {
	m := &indexMetrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "xueliang_index_write_duration_seconds",
			Help:    "Duration of index writes by operation, failed ones included.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 11), // 0.5 ms … 4.8 s
		}, []string{"op"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "xueliang_index_write_errors_total",
			Help: "Index writes that failed (each may be retried by its caller), by operation.",
		}, []string{"op"}),
	}
	for _, op := range indexOps {
		m.duration.WithLabelValues(op)
		m.errors.WithLabelValues(op)
	}
	reg.MustRegister(m.duration, m.errors)
	return m
}

func (m *indexMetrics) done(op string, start time.Time, err error) {
	m.duration.WithLabelValues(op).Observe(time.Since(start).Seconds())
	if err != nil && !errors.Is(err, context.Canceled) {
		m.errors.WithLabelValues(op).Inc()
	}
}

// Index is an IndexWriter whose writes are timed
// (xueliang_index_write_duration_seconds{op}) and counted when they fail
// (xueliang_index_write_errors_total{op}); reads pass through.
type Index struct {
	w IndexWriter
	m *indexMetrics
}

var _ IndexWriter = (*Index)(nil)

// WrapIndex returns w instrumented, with its metrics registered on reg.
func WrapIndex(reg prometheus.Registerer, w IndexWriter) *Index {
	return &Index{w: w, m: newIndexMetrics(reg)}
}

// CreateSegment implements segmenter.Index.
func (i *Index) CreateSegment(ctx context.Context, seg *recording.Segment) error {
	start := time.Now()
	err := i.w.CreateSegment(ctx, seg)
	i.m.done("create_segment", start, err)
	return err
}

// AddFragments implements segmenter.Index.
func (i *Index) AddFragments(ctx context.Context, frags []recording.Fragment) error {
	start := time.Now()
	err := i.w.AddFragments(ctx, frags)
	i.m.done("add_fragments", start, err)
	return err
}

// FinishSegment implements segmenter.Index.
func (i *Index) FinishSegment(ctx context.Context, id int64, end time.Time, size int64, sha256 string) error {
	start := time.Now()
	err := i.w.FinishSegment(ctx, id, end, size, sha256)
	i.m.done("finish_segment", start, err)
	return err
}

// MarkStored implements spool.SegmentIndex.
func (i *Index) MarkStored(ctx context.Context, id int64) error {
	start := time.Now()
	err := i.w.MarkStored(ctx, id)
	i.m.done("mark_stored", start, err)
	return err
}

// Segment implements spool.SegmentIndex (not instrumented).
func (i *Index) Segment(ctx context.Context, id int64) (recording.Segment, error) {
	return i.w.Segment(ctx, id)
}

// SegmentsByState implements spool.SegmentIndex (not instrumented).
func (i *Index) SegmentsByState(ctx context.Context, st recording.SegmentState) ([]recording.Segment, error) {
	return i.w.SegmentsByState(ctx, st)
}
