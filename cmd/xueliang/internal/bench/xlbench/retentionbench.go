package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"xueliang/index"
	"xueliang/storage"
	"xueliang/storage/local"
	"xueliang/storage/s3"
)

// retentionSize is the retention row deletion at one index size.
type retentionSize struct {
	Cameras       int     `json:"cameras"`
	Days          int     `json:"days"`
	IndexSegments int64   `json:"index_segments"`
	Deleted       int64   `json:"deleted_segments"`
	Seconds       float64 `json:"seconds"`
	RowsPerSec    float64 `json:"rows_per_s"`
	USPerSegment  float64 `json:"us_per_segment"`
	MetadataRows  int64   `json:"metadata_rows_deleted"`
	LoadAvg       string  `json:"loadavg_before"`
}

type retentionResult struct {
	Small              retentionSize `json:"small"`
	Large              retentionSize `json:"large"`
	Ratio              float64       `json:"us_per_segment_ratio_large_over_small"`
	Chunk              int           `json:"chunk"`
	LocalObjects       int           `json:"local_objects"`
	LocalObjectsPerSec float64       `json:"local_objects_per_s"`
	S3Objects          int           `json:"s3_objects"`
	S3ObjectsPerSec    float64       `json:"s3_objects_per_s"`
	S3Batch            int           `json:"s3_batch"`
}

// runRetention deletes the oldest day of every camera from two indexes
// of cams cameras (smallDays and largeDays days of 60 s segments, bulk
// loaded as the index part does) through the retention worker's path:
// index.MarkDeleting in chunks of 500 (its default), the objects (here a
// no-op: the object side is timed separately on the local store), then
// index.DeleteSegmentRows, and DeleteMetadataBefore per camera. It then
// times DeleteKeys on nObjects small real objects of the local store
// (unlink + directory fsync, in the worker's chunks) and of a real MinIO
// (S3 DeleteObjects in batches of 1,000 keys, the API's maximum, as the
// S3 store sends them).
func runRetention(dir string, cams, smallDays, largeDays, nObjects int) (retentionResult, error) {
	res := retentionResult{Chunk: 500}
	for i, days := range []int{smallDays, largeDays} {
		r, err := retentionRows(filepath.Join(dir, fmt.Sprintf("retention-%d", i)), cams, days, res.Chunk)
		if err != nil {
			return res, err
		}
		if i == 0 {
			res.Small = r
		} else {
			res.Large = r
		}
	}
	if res.Small.USPerSegment > 0 {
		res.Ratio = res.Large.USPerSegment / res.Small.USPerSegment
	}
	objDir := filepath.Join(dir, "retention-objects")
	defer os.RemoveAll(objDir)
	lst, err := local.New(objDir)
	if err != nil {
		return res, err
	}
	n, rate, err := retentionObjects(lst, nObjects, res.Chunk)
	if err != nil {
		return res, err
	}
	res.LocalObjects, res.LocalObjectsPerSec = n, rate
	logf("retention: local store DeleteKeys %d objects at %.0f objects/s", n, rate)
	m, err := startMinio(filepath.Join(dir, "retention-minio"))
	if err != nil {
		return res, err
	}
	defer m.stop()
	ctx := context.Background()
	sst, err := s3.New(ctx, s3.Config{Endpoint: m.Endpoint, Bucket: "retention", AccessKey: m.AccessKey, SecretKey: m.SecretKey}, nil)
	if err != nil {
		return res, err
	}
	defer sst.Close()
	res.S3Batch = 1000
	n, rate, err = retentionObjects(sst, nObjects, res.S3Batch)
	if err != nil {
		return res, err
	}
	res.S3Objects, res.S3ObjectsPerSec = n, rate
	logf("retention: MinIO DeleteKeys %d objects at %.0f objects/s", n, rate)
	return res, nil
}

// objectDeleter is the part of a store the object side of a deletion uses.
type objectDeleter interface {
	Put(ctx context.Context, key string, r io.Reader, size int64) (storage.ObjectInfo, error)
	DeleteKeys(ctx context.Context, keys []string) error
}

func retentionRows(dir string, cams, days, chunk int) (retentionSize, error) {
	ctx := context.Background()
	r := retentionSize{Cameras: cams, Days: days}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return r, err
	}
	defer os.RemoveAll(dir)
	run, err := runIndex(dir, cams, days, 60, 0, min(250, cams), nil)
	if err != nil {
		return r, err
	}
	defer run.db.Close()
	if err := run.fill(""); err != nil {
		return r, err
	}
	r.IndexSegments = run.r.Segments
	cut := run.start.Add(24 * time.Hour)
	r.LoadAvg = loadavg()
	t0 := time.Now()
	for {
		segs, err := run.db.MarkDeleting(ctx, index.DeleteSelect{Before: cut, Limit: chunk})
		if err != nil {
			return r, err
		}
		if len(segs) == 0 {
			break
		}
		ids := make([]int64, len(segs))
		for i, s := range segs {
			ids[i] = s.ID
		}
		if err := run.db.DeleteSegmentRows(ctx, ids); err != nil {
			return r, err
		}
		r.Deleted += int64(len(ids))
	}
	for c := range cams {
		n, err := run.db.DeleteMetadataBefore(ctx, fmt.Sprintf("cam%04d", c), cut)
		if err != nil {
			return r, err
		}
		r.MetadataRows += n
	}
	r.Seconds = time.Since(t0).Seconds()
	r.RowsPerSec = float64(r.Deleted) / r.Seconds
	if r.Deleted > 0 {
		r.USPerSegment = r.Seconds * 1e6 / float64(r.Deleted)
	}
	logf("retention: %d cameras × %d days (%d segments): deleted %d in %.1f s, %.0f rows/s, %.0f µs/segment",
		cams, days, r.IndexSegments, r.Deleted, r.Seconds, r.RowsPerSec, r.USPerSegment)
	return r, nil
}

// retentionObjects writes n 1 KiB objects to st (object size barely
// matters to a delete: an unlink or an S3 delete frees the data without
// reading it) and times DeleteKeys in batches of chunk.
func retentionObjects(st objectDeleter, n, chunk int) (int, float64, error) {
	ctx := context.Background()
	keys := make([]string, n)
	body := bytes.Repeat([]byte{'x'}, 1024)
	for i := range keys {
		keys[i] = fmt.Sprintf("cam%04d/%d.mp4", i%100, i)
		if _, err := st.Put(ctx, keys[i], bytes.NewReader(body), int64(len(body))); err != nil {
			return 0, 0, err
		}
	}
	t0 := time.Now()
	for i := 0; i < n; i += chunk {
		if err := st.DeleteKeys(ctx, keys[i:min(i+chunk, n)]); err != nil {
			return 0, 0, err
		}
	}
	return n, float64(n) / time.Since(t0).Seconds(), nil
}
