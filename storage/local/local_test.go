package local

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"xueliang/storage"
	"xueliang/storage/storagetest"
)

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store {
		s, err := New(filepath.Join(t.TempDir(), "store"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestPutFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := New(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "spool", "seg.mp4")
	if err := os.MkdirAll(filepath.Dir(src), 0o755); err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("fragment"), 1000)
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	const key = "cam/2024/01/02/03/x.mp4"
	info, err := s.PutFile(ctx, key, src)
	if err != nil {
		t.Fatal(err)
	}
	// sha256 of data computed independently.
	want, err := s.Put(ctx, "ref", bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != int64(len(data)) || info.SHA256 != want.SHA256 || info.Key != key {
		t.Errorf("PutFile info = %+v, want size %d sha %s", info, len(data), want.SHA256)
	}
	// Again (a retry): same inode, must not leave the temporary link.
	if _, err := s.PutFile(ctx, key, src); err != nil {
		t.Fatal(err)
	}
	assertNoTemps(t, s.Root())
	// Same filesystem: the object is a hard link, not a copy.
	st1, _ := os.Stat(src)
	st2, _ := os.Stat(filepath.Join(s.Root(), key))
	if !os.SameFile(st1, st2) {
		t.Error("PutFile on the same filesystem did not link")
	}
	// Removing the source keeps the object.
	if err := os.Remove(src); err != nil {
		t.Fatal(err)
	}
	rc, err := s.GetRange(ctx, key, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(rc); err != nil || !bytes.Equal(buf.Bytes(), data) {
		t.Errorf("object after removing source: %d bytes, err %v", buf.Len(), err)
	}
	if _, err := s.PutFile(ctx, "cam/missing.mp4", filepath.Join(dir, "nope")); err == nil {
		t.Error("PutFile of a missing file succeeded")
	}
	if _, err := s.PutFile(ctx, "../bad", src); !errors.Is(err, storage.ErrInvalidKey) {
		t.Errorf("PutFile with a bad key: %v, want storage.ErrInvalidKey", err)
	}
	assertNoTemps(t, s.Root())
}

func TestPutFileSHA256(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := New(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("fragment"), 1000)
	sum := sha256.Sum256(data)
	good := hex.EncodeToString(sum[:])
	src := filepath.Join(dir, "seg.mp4")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	const key = "cam/2024/01/02/03/x.mp4"
	if _, err := s.Put(ctx, key, strings.NewReader("old"), 3); err != nil {
		t.Fatal(err)
	}
	// A wrong hash: refused before the object is replaced.
	bad := strings.Repeat("0", 64)
	if _, err := s.PutFileSHA256(ctx, key, src, bad); !errors.Is(err, ErrContentMismatch) {
		t.Fatalf("PutFileSHA256 with a wrong hash: %v, want ErrContentMismatch", err)
	}
	if got := readObject(t, s, key); string(got) != "old" {
		t.Errorf("object after a refused PutFileSHA256 = %q, want old", got)
	}
	assertNoTemps(t, s.Root())
	if _, err := s.PutFileSHA256(ctx, key, src, "xyz"); err == nil || !strings.Contains(err.Error(), "invalid sha256") {
		t.Errorf("PutFileSHA256 with a malformed hash: %v", err)
	}
	// The right one: linked, and the hash is returned.
	info, err := s.PutFileSHA256(ctx, key, src, strings.ToUpper(good))
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != int64(len(data)) || info.SHA256 != good || info.Key != key {
		t.Errorf("PutFileSHA256 info = %+v, want size %d sha %s", info, len(data), good)
	}
	st1, _ := os.Stat(src)
	st2, _ := os.Stat(filepath.Join(s.Root(), key))
	if !os.SameFile(st1, st2) {
		t.Error("PutFileSHA256 on the same filesystem did not link")
	}
	assertNoTemps(t, s.Root())

	// Another filesystem: copied, and checked all the same.
	shm, err := os.MkdirTemp("/dev/shm", "local-test-")
	if err != nil {
		t.Skipf("no /dev/shm for a cross-filesystem copy: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(shm) })
	far := filepath.Join(shm, "seg.mp4")
	if err := os.WriteFile(far, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if sameDevice(t, shm, s.Root()) {
		t.Skip("/dev/shm is on the store's filesystem")
	}
	const key2 = "cam/2024/01/02/03/y.mp4"
	if _, err := s.PutFileSHA256(ctx, key2, far, bad); !errors.Is(err, ErrContentMismatch) {
		t.Fatalf("PutFileSHA256 (copy) with a wrong hash: %v, want ErrContentMismatch", err)
	}
	if _, err := s.Stat(ctx, key2); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat after a refused copy: %v, want ErrNotFound", err)
	}
	if info, err := s.PutFileSHA256(ctx, key2, far, good); err != nil || info.SHA256 != good {
		t.Fatalf("PutFileSHA256 (copy) = %+v, %v", info, err)
	}
	if got := readObject(t, s, key2); !bytes.Equal(got, data) {
		t.Errorf("copied object differs")
	}
	assertNoTemps(t, s.Root())
}

func sameDevice(t *testing.T, a, b string) bool {
	t.Helper()
	sa, err := os.Stat(a)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := os.Stat(b)
	if err != nil {
		t.Fatal(err)
	}
	return sa.Sys().(*syscall.Stat_t).Dev == sb.Sys().(*syscall.Stat_t).Dev
}

func readObject(t *testing.T, s *Store, key string) []byte {
	t.Helper()
	rc, err := s.GetRange(context.Background(), key, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDeleteRemovesEmptyParents(t *testing.T) {
	ctx := context.Background()
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "cam/2024/01/02/03/a.mp4", strings.NewReader("a"), 1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "cam/2024/keep.mp4", strings.NewReader("k"), 1); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "cam/2024/01/02/03/a.mp4"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(s.Root(), "cam/2024/01")); !os.IsNotExist(err) {
		t.Errorf("empty parent cam/2024/01 still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(s.Root(), "cam/2024/keep.mp4")); err != nil {
		t.Errorf("non-empty parent was touched: %v", err)
	}
	if _, err := os.Stat(s.Root()); err != nil {
		t.Errorf("root removed: %v", err)
	}
}

func TestListSkipsTempFiles(t *testing.T) {
	ctx := context.Background()
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "cam/a.mp4", strings.NewReader("a"), 1); err != nil {
		t.Fatal(err)
	}
	// A temporary file left by a crash mid-Put.
	if err := os.WriteFile(filepath.Join(s.Root(), "cam", tempPrefix+"123"), []byte("junk"), 0o644); err != nil {
		t.Fatal(err)
	}
	var keys []string
	if err := s.List(ctx, "cam/", func(o storage.ObjectInfo) error { keys = append(keys, o.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0] != "cam/a.mp4" {
		t.Errorf("List = %q, want [cam/a.mp4]", keys)
	}
}

func TestCheckKey(t *testing.T) {
	tests := []struct {
		key string
		ok  bool
	}{
		{"a", true},
		{"cam-1/2024/05/06/07/20240506T070000.000000000Z.mp4", true},
		{"", false},
		{"/a", false},
		{"a/", false},
		{"a/../b", false},
		{"a/./b", false},
		{"a b", false},
		{strings.Repeat("a", 256), false},
	}
	for _, tt := range tests {
		err := storage.CheckKey(tt.key)
		if (err == nil) != tt.ok {
			t.Errorf("storage.CheckKey(%q) = %v, want ok=%v", tt.key, err, tt.ok)
		}
		if err != nil && !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("storage.CheckKey(%q) = %v, not storage.ErrInvalidKey", tt.key, err)
		}
	}
}

func assertNoTemps(t *testing.T, root string) {
	t.Helper()
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), tempPrefix) {
			t.Errorf("temporary file left: %s", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
