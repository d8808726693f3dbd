// Package metrics builds xueliang's Prometheus metrics.
//
// Most series are read at scrape time from the components' snapshots
// (ingest.Manager.Status per camera, spool.Uploader.Stats, a cached walk of
// the spool directory), so recording and uploading pay nothing for them and
// the series count is bounded: one set per running camera plus a fixed set.
// Where a histogram needs events, a decorator in this package wraps the
// component's dependency: WrapStore times object-store calls, WrapIndex times
// the index writes of the segmenter and the uploader. The HTTP API instruments
// replay requests itself (package api).
//
// Labels are bounded: camera ID, township, error class, operation name.
// URLs and error strings never become labels. See docs/operations.md for the
// list of series and a cardinality estimate.
package metrics
