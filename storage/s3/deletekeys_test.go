package s3

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"xueliang/storage"
	"xueliang/storage/miniotest"
)

// TestDeleteKeys: 1,005 objects (plus two missing keys) go in two
// DeleteObjects requests (1,000 + 7 keys), not one request per key.
func TestDeleteKeys(t *testing.T) {
	ctx := context.Background()
	srv := miniotest.Start(t)
	s := newStore(t, srv, randomBucket(t))
	var keys []string
	for i := range 1005 {
		k := fmt.Sprintf("cam/2026/03/01/%04d.mp4", i)
		if _, err := s.Put(ctx, k, bytes.NewReader([]byte{byte(i)}), 1); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	keys = append(keys, "cam/missing-1.mp4", "cam/missing-2.mp4")
	before := s.Stats().HTTPRequests
	if err := s.DeleteKeys(ctx, keys); err != nil {
		t.Fatal(err)
	}
	if n := s.Stats().HTTPRequests - before; n != 2 {
		t.Errorf("DeleteKeys sent %d HTTP requests, want 2", n)
	}
	left := 0
	if err := s.List(ctx, "cam/", func(storage.ObjectInfo) error { left++; return nil }); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Fatalf("%d objects left", left)
	}
	if err := s.DeleteKeys(ctx, []string{"../x"}); err == nil {
		t.Fatal("an invalid key was accepted")
	}
}
