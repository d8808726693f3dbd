package local

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
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
