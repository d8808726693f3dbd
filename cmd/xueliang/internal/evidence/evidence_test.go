package evidence_test

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"xueliang/cmd/xueliang/internal/evidence"
	"xueliang/cmd/xueliang/internal/retention"
	"xueliang/index"
	"xueliang/storage/miniotest"
	"xueliang/storage/recording"
	"xueliang/storage/s3"
)

// TestEvidenceOnMinIO: a lock copies the segments it covers into the
// Object Lock bucket with legal hold ON (checked with a direct S3 call);
// retention skips them; after unlock retention deletes the recording
// bucket's objects, while the held copy stays and replay reads it.
func TestEvidenceOnMinIO(t *testing.T) {
	ctx := context.Background()
	srv := miniotest.Start(t)
	st, err := s3.New(ctx, s3.Config{Endpoint: srv.Endpoint, Bucket: "rec", EvidenceBucket: "rec-evidence",
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	db, err := index.Open(ctx, filepath.Join(t.TempDir(), "index.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	base := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	var segs []recording.Segment
	for i := range 4 {
		start := base.Add(time.Duration(i) * time.Minute)
		seg := recording.Segment{CameraID: "cam", Start: start, End: start.Add(time.Minute), ObjectKey: recording.SegmentKey("cam", start)}
		body := bytes.Repeat([]byte{byte('a' + i)}, 2000)
		if err := db.CreateSegment(ctx, &seg); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Put(ctx, seg.ObjectKey, bytes.NewReader(body), int64(len(body))); err != nil {
			t.Fatal(err)
		}
		if err := db.FinishSegment(ctx, seg.ID, seg.End, int64(len(body)), "00"); err != nil {
			t.Fatal(err)
		}
		if err := db.MarkStored(ctx, seg.ID); err != nil {
			t.Fatal(err)
		}
		segs = append(segs, seg)
	}
	svc := &evidence.Service{Index: db, Copier: st}
	// [1m30s, 2m30s) overlaps segments 1 and 2.
	l, res, err := svc.Lock(ctx, index.EvidenceLock{Cameras: []string{"cam"}, From: base.Add(90 * time.Second),
		To: base.Add(150 * time.Second), CaseNumber: "2026-017", CreatedBy: "op"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Segments != 2 || res.Copied != 2 || res.Bytes != 4000 {
		t.Fatalf("lock result %+v, want 2 segments copied", res)
	}

	// Direct S3: object lock on the bucket, legal hold on each copy, and
	// the recording bucket without versioning.
	mc, err := minio.New(srv.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(srv.AccessKey, srv.SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	if enabled, _, _, _, err := mc.GetObjectLockConfig(ctx, "rec-evidence"); err != nil || enabled != "Enabled" {
		t.Fatalf("evidence bucket object lock = %q, %v", enabled, err)
	}
	for _, s := range segs[1:3] {
		hold, err := mc.GetObjectLegalHold(ctx, "rec-evidence", s.ObjectKey, minio.GetObjectLegalHoldOptions{})
		if err != nil || hold == nil || *hold != minio.LegalHoldEnabled {
			t.Fatalf("legal hold of %s = %v, %v", s.ObjectKey, hold, err)
		}
	}
	if _, err := mc.StatObject(ctx, "rec-evidence", segs[0].ObjectKey, minio.StatObjectOptions{}); err == nil {
		t.Fatalf("unlocked segment %s was copied", segs[0].ObjectKey)
	}
	if vc, err := mc.GetBucketVersioning(ctx, "rec"); err != nil || vc.Enabled() {
		t.Fatalf("recording bucket versioning %+v, %v; want unversioned", vc, err)
	}

	w := retention.New(retention.Config{Index: db, Store: st, MaxAge: time.Minute, Now: func() time.Time { return base.Add(time.Hour) }})
	if _, err := w.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	for i, s := range segs {
		_, err := mc.StatObject(ctx, "rec", s.ObjectKey, minio.StatObjectOptions{})
		if locked := i == 1 || i == 2; locked != (err == nil) {
			t.Errorf("segment %d in the recording bucket after retention: %v (locked %v)", i, err, locked)
		}
	}
	if err := svc.Unlock(ctx, l.ID, "admin"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := mc.StatObject(ctx, "rec", segs[1].ObjectKey, minio.StatObjectOptions{}); err == nil {
		t.Fatal("unlocked segment still in the recording bucket")
	}
	// The held copy survives; the store's reads fall back to it.
	rc, err := st.GetRange(ctx, segs[1].ObjectKey, 10, 5)
	if err != nil {
		t.Fatalf("read of the evidence copy: %v", err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "bbbbb" {
		t.Fatalf("evidence copy bytes %q", b)
	}
	// And it cannot be deleted while held.
	if err := mc.RemoveObject(ctx, "rec-evidence", segs[1].ObjectKey, minio.RemoveObjectOptions{VersionID: versionOf(t, mc, segs[1].ObjectKey)}); err == nil {
		t.Fatal("a held evidence copy was deleted")
	}
}

func versionOf(t *testing.T, mc *minio.Client, key string) string {
	t.Helper()
	oi, err := mc.StatObject(context.Background(), "rec-evidence", key, minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return oi.VersionID
}
