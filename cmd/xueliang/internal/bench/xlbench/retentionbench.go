package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"xueliang/cmd/xueliang/internal/retention"
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
	RowsRatio          float64       `json:"index_rows_ratio_large_over_small"`
	Interleaved        string        `json:"interleaved_by"`
	Chunk              int           `json:"chunk"`
	LocalObjects       int           `json:"local_objects"`
	LocalObjectsPerSec float64       `json:"local_objects_per_s"`
	S3Objects          int           `json:"s3_objects"`
	S3ObjectsPerSec    float64       `json:"s3_objects_per_s"`
	S3Batch            int           `json:"s3_batch"`
}

// runRetention deletes the oldest day of every camera from two indexes
// of cams cameras (smallDays and largeDays days of 60 s segments, bulk
// loaded as the index part does; both are built first and kept open) with
// the retention worker itself (retention.Worker.RunOnce: max_age walks each
// camera's oldest rows in chunks of 500 through MarkDeleting → objects →
// DeleteSegmentRows, then CameraBytes, OldestUnlockedStart,
// DeleteMetadataBefore and an audit entry; the object store is a no-op,
// timed separately below). The two sizes are interleaved camera by
// camera — one camera's pass on one index, then the same camera on the
// other, the order swapped every camera — and each side's passes are timed
// separately, so that load changes on a shared machine hit both sides
// alike. It then times DeleteKeys on nObjects small real objects of the
// local store (unlink + directory fsync, in the worker's chunks) and of a
// real MinIO (S3 DeleteObjects in batches of 1,000 keys, the API's
// maximum, as the S3 store sends them).
func runRetention(dir string, cams, smallDays, largeDays, nObjects int) (retentionResult, error) {
	res := retentionResult{Chunk: retention.DefaultChunk, Interleaved: "camera"}
	sides := make([]*retentionSide, 2)
	for i, days := range []int{smallDays, largeDays} {
		s, err := openRetentionSide(filepath.Join(dir, fmt.Sprintf("retention-%d", i)), cams, days)
		if err != nil {
			return res, err
		}
		defer s.close()
		sides[i] = s
	}
	sides[0].r.LoadAvg, sides[1].r.LoadAvg = loadavg(), loadavg()
	ctx := context.Background()
	for c := range cams {
		order := sides
		if c%2 == 1 {
			order = []*retentionSide{sides[1], sides[0]}
		}
		for _, s := range order {
			if err := s.camera(ctx, fmt.Sprintf("cam%04d", c)); err != nil {
				return res, err
			}
		}
	}
	for _, s := range sides {
		r := &s.r
		r.RowsPerSec = float64(r.Deleted) / r.Seconds
		if r.Deleted > 0 {
			r.USPerSegment = r.Seconds * 1e6 / float64(r.Deleted)
		}
		logf("retention: %d cameras × %d days (%d segments): deleted %d in %.1f s, %.0f rows/s, %.0f µs/segment",
			r.Cameras, r.Days, r.IndexSegments, r.Deleted, r.Seconds, r.RowsPerSec, r.USPerSegment)
	}
	res.Small, res.Large = sides[0].r, sides[1].r
	if res.Small.USPerSegment > 0 {
		res.Ratio = res.Large.USPerSegment / res.Small.USPerSegment
	}
	res.RowsRatio = float64(res.Large.IndexSegments) / float64(res.Small.IndexSegments)
	logf("retention: large/small %.2f× µs/segment at %.1f× the rows (interleaved by camera)", res.Ratio, res.RowsRatio)
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

// retentionSide is one index of the retention part and the worker that
// deletes from it, one camera per pass.
type retentionSide struct {
	r   retentionSize
	run *indexRun
	dir string
	ix  *oneCameraIndex
	w   *retention.Worker
}

// oneCameraIndex is the index as the worker sees it, with CameraRetentions
// narrowed to one camera: RunOnce then does exactly its per-camera work
// for that camera.
type oneCameraIndex struct {
	*index.DB
	camera string
}

func (o *oneCameraIndex) CameraRetentions(context.Context) ([]index.CameraRetention, error) {
	return []index.CameraRetention{{Camera: o.camera}}, nil
}

// noDelete is the object store of the row-side measurement.
type noDelete struct{}

func (noDelete) DeleteKeys(context.Context, []string) error { return nil }

// openRetentionSide bulk loads an index of cams × days and a worker whose
// clock puts the max_age horizon one day after the oldest segment.
func openRetentionSide(dir string, cams, days int) (*retentionSide, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	s := &retentionSide{r: retentionSize{Cameras: cams, Days: days}, dir: dir}
	run, err := runIndex(dir, cams, days, 60, 0, min(250, cams), nil)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s.run = run
	if err := run.fill(""); err != nil {
		s.close()
		return nil, err
	}
	s.r.IndexSegments = run.r.Segments
	s.ix = &oneCameraIndex{DB: run.db}
	maxAge := time.Duration(days-1) * 24 * time.Hour
	now := run.start.Add(24 * time.Hour).Add(maxAge)
	s.w = retention.New(retention.Config{Index: s.ix, Store: noDelete{}, MaxAge: maxAge, Now: func() time.Time { return now }})
	return s, nil
}

// camera runs the worker's pass over one camera and times it.
func (s *retentionSide) camera(ctx context.Context, cam string) error {
	s.ix.camera = cam
	t0 := time.Now()
	rep, err := s.w.RunOnce(ctx)
	s.r.Seconds += time.Since(t0).Seconds()
	if err != nil {
		return err
	}
	for _, c := range rep {
		s.r.Deleted += int64(c.Segments)
		s.r.MetadataRows += c.MetadataRows
	}
	return nil
}

func (s *retentionSide) close() {
	if s.run != nil {
		s.run.db.Close()
	}
	os.RemoveAll(s.dir)
}

// objectDeleter is the part of a store the object side of a deletion uses.
type objectDeleter interface {
	Put(ctx context.Context, key string, r io.Reader, size int64) (storage.ObjectInfo, error)
	DeleteKeys(ctx context.Context, keys []string) error
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
