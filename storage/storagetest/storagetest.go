// Package storagetest is the conformance suite that every storage.Store
// backend runs from its own tests:
//
//	func TestConformance(t *testing.T) {
//		storagetest.Run(t, func(t *testing.T) storage.Store { ... })
//	}
//
// newStore must return an empty store, private to the test; the suite closes
// it. Range semantics pinned here beyond the interface comment: an offset
// equal to the size yields an empty body, an offset greater than the size or
// negative is an error (not ErrNotFound).
package storagetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"xueliang/storage"
)

// Run runs the conformance suite against stores made by newStore.
func Run(t *testing.T, newStore func(t *testing.T) storage.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, s storage.Store)
	}{
		{"PutGet", testPutGet},
		{"GetRange", testGetRange},
		{"Stat", testStat},
		{"NotFound", testNotFound},
		{"Overwrite", testOverwrite},
		{"ShortBodyKeepsOld", testShortBody},
		{"Delete", testDelete},
		{"List", testList},
		{"ListStop", testListStop},
		{"InvalidKeys", testInvalidKeys},
		{"Concurrent", testConcurrent},
		{"ContextCanceled", testContextCanceled},
		{"CloseTwice", testCloseTwice},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() { _ = s.Close() })
			tt.fn(t, s)
		})
	}
}

func put(t *testing.T, s storage.Store, key string, data []byte) storage.ObjectInfo {
	t.Helper()
	info, err := s.Put(context.Background(), key, bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
	return info
}

func get(t *testing.T, s storage.Store, key string, off, length int64) []byte {
	t.Helper()
	rc, err := s.GetRange(context.Background(), key, off, length)
	if err != nil {
		t.Fatalf("GetRange(%q, %d, %d): %v", key, off, length, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("GetRange(%q, %d, %d) read: %v", key, off, length, err)
	}
	return b
}

func payload(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) + seed
	}
	return b
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func testPutGet(t *testing.T, s storage.Store) {
	for _, n := range []int{0, 1, 4096, 1<<20 + 17} {
		key := fmt.Sprintf("cam-1/2024/05/06/07/obj_%d.mp4", n)
		data := payload(n, byte(n))
		before := time.Now().Add(-time.Minute)
		info := put(t, s, key, data)
		if info.Key != key || info.Size != int64(n) {
			t.Errorf("Put(%q) info = %+v, want key and size %d", key, info, n)
		}
		if info.SHA256 != "" && info.SHA256 != sum(data) {
			t.Errorf("Put(%q) SHA256 = %s, want %s", key, info.SHA256, sum(data))
		}
		if info.ModTime.Before(before) {
			t.Errorf("Put(%q) ModTime = %v, too old", key, info.ModTime)
		}
		if got := get(t, s, key, 0, -1); !bytes.Equal(got, data) {
			t.Errorf("GetRange(%q, 0, -1) = %d bytes, want %d (content differs)", key, len(got), n)
		}
	}
}

func testGetRange(t *testing.T, s storage.Store) {
	data := payload(1000, 3)
	const key = "c/range.bin"
	put(t, s, key, data)
	tests := []struct {
		name        string
		off, length int64
		want        []byte
		wantErr     bool
	}{
		{name: "whole", off: 0, length: -1, want: data},
		{name: "exact", off: 0, length: 1000, want: data},
		{name: "middle", off: 100, length: 50, want: data[100:150]},
		{name: "tail", off: 990, length: -1, want: data[990:]},
		{name: "clipped", off: 900, length: 500, want: data[900:]},
		{name: "zero length", off: 10, length: 0, want: []byte{}},
		{name: "at end", off: 1000, length: -1, want: []byte{}},
		{name: "past end", off: 1001, length: 10, wantErr: true},
		{name: "far past end", off: 1 << 40, length: -1, wantErr: true},
		{name: "negative offset", off: -1, length: 10, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc, err := s.GetRange(context.Background(), key, tt.off, tt.length)
			if tt.wantErr {
				if err == nil {
					b, _ := io.ReadAll(rc)
					rc.Close()
					t.Fatalf("GetRange(%d, %d) = %d bytes, want error", tt.off, tt.length, len(b))
				}
				if errors.Is(err, storage.ErrNotFound) {
					t.Fatalf("GetRange(%d, %d) error %v must not be ErrNotFound", tt.off, tt.length, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("GetRange(%d, %d): %v", tt.off, tt.length, err)
			}
			defer rc.Close()
			got, err := io.ReadAll(rc)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Errorf("GetRange(%d, %d) = %d bytes, want %d", tt.off, tt.length, len(got), len(tt.want))
			}
		})
	}
}

func testStat(t *testing.T, s storage.Store) {
	data := payload(123, 1)
	const key = "cam/stat.mp4"
	put(t, s, key, data)
	info, err := s.Stat(context.Background(), key)
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	if info.Key != key || info.Size != 123 || info.ModTime.IsZero() {
		t.Errorf("Stat = %+v, want key %q size 123 and a mod time", info, key)
	}
	if info.SHA256 != "" && info.SHA256 != sum(data) {
		t.Errorf("Stat SHA256 = %s, want %s", info.SHA256, sum(data))
	}
}

func testNotFound(t *testing.T, s storage.Store) {
	ctx := context.Background()
	put(t, s, "cam/2024/a.mp4", []byte("x"))
	for _, key := range []string{"missing.mp4", "cam/2024/b.mp4", "cam/2024", "cam", "cam/2024/a.mp4/x"} {
		if _, err := s.Stat(ctx, key); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Stat(%q) error = %v, want ErrNotFound", key, err)
		}
		rc, err := s.GetRange(ctx, key, 0, -1)
		if !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("GetRange(%q) error = %v, want ErrNotFound", key, err)
		}
		if err == nil {
			rc.Close()
		}
	}
}

func testOverwrite(t *testing.T, s storage.Store) {
	const key = "cam/over.mp4"
	a, b := bytes.Repeat([]byte("a"), 64<<10), bytes.Repeat([]byte("b"), 32<<10)
	put(t, s, key, a)
	// Readers racing with overwrites see one whole version, never a mix.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errc := make(chan error, 1)
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			rc, err := s.GetRange(context.Background(), key, 0, -1)
			if err != nil {
				select {
				case errc <- fmt.Errorf("GetRange during overwrite: %w", err):
				default:
				}
				return
			}
			got, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || !(bytes.Equal(got, a) || bytes.Equal(got, b)) {
				select {
				case errc <- fmt.Errorf("read during overwrite: %d bytes, err %v: torn object", len(got), err):
				default:
				}
				return
			}
		}
	})
	for i := range 20 {
		if i%2 == 0 {
			put(t, s, key, b)
		} else {
			put(t, s, key, a)
		}
	}
	close(stop)
	wg.Wait()
	select {
	case err := <-errc:
		t.Fatal(err)
	default:
	}
	if got := get(t, s, key, 0, -1); !bytes.Equal(got, a) {
		t.Errorf("after overwrites got %d bytes, want the last version (%d bytes)", len(got), len(a))
	}
}

// errReader returns n bytes and then an error.
type errReader struct {
	n   int
	err error
}

func (r *errReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, r.err
	}
	k := min(len(p), r.n)
	for i := range k {
		p[i] = 'z'
	}
	r.n -= k
	return k, nil
}

func testShortBody(t *testing.T, s storage.Store) {
	ctx := context.Background()
	const key = "cam/short.mp4"
	old := []byte("old content")
	put(t, s, key, old)
	tests := []struct {
		name string
		r    io.Reader
		size int64
	}{
		{"short", strings.NewReader("abc"), 10},
		{"reader error", &errReader{n: 5, err: errors.New("boom")}, 10},
	}
	for _, tt := range tests {
		if _, err := s.Put(ctx, key, tt.r, tt.size); err == nil {
			t.Errorf("%s: Put succeeded, want error", tt.name)
		}
		if got := get(t, s, key, 0, -1); !bytes.Equal(got, old) {
			t.Errorf("%s: after failed Put got %q, want old %q", tt.name, got, old)
		}
	}
	if _, err := s.Put(ctx, "cam/never.mp4", strings.NewReader("ab"), 5); err == nil {
		t.Errorf("Put short body to new key succeeded")
	}
	if _, err := s.Stat(ctx, "cam/never.mp4"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat after failed Put: %v, want ErrNotFound", err)
	}
	var keys []string
	if err := s.List(ctx, "", func(o storage.ObjectInfo) error { keys = append(keys, o.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(keys, []string{key}) {
		t.Errorf("List after failed Puts = %q, want only %q (no temporary leftovers)", keys, key)
	}
}

func testDelete(t *testing.T, s storage.Store) {
	ctx := context.Background()
	put(t, s, "cam/2024/01/a.mp4", []byte("a"))
	put(t, s, "cam/2024/01/b.mp4", []byte("b"))
	for range 2 {
		if err := s.Delete(ctx, "cam/2024/01/a.mp4"); err != nil {
			t.Fatalf("Delete: %v", err)
		}
	}
	if err := s.Delete(ctx, "never/existed.mp4"); err != nil {
		t.Errorf("Delete of a missing key: %v", err)
	}
	if _, err := s.Stat(ctx, "cam/2024/01/a.mp4"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat after Delete: %v, want ErrNotFound", err)
	}
	if got := get(t, s, "cam/2024/01/b.mp4", 0, -1); string(got) != "b" {
		t.Errorf("sibling after Delete = %q", got)
	}
	if err := s.Delete(ctx, "cam/2024/01/b.mp4"); err != nil {
		t.Fatal(err)
	}
	// The key space is reusable after its "directory" emptied.
	put(t, s, "cam/2024/01/c.mp4", []byte("c"))
	if got := get(t, s, "cam/2024/01/c.mp4", 0, -1); string(got) != "c" {
		t.Errorf("put after deletes = %q", got)
	}
}

func list(t *testing.T, s storage.Store, prefix string) []string {
	t.Helper()
	var keys []string
	err := s.List(context.Background(), prefix, func(o storage.ObjectInfo) error {
		if o.Key == "" || o.Size < 0 {
			t.Errorf("List(%q) gave bad info %+v", prefix, o)
		}
		keys = append(keys, o.Key)
		return nil
	})
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	return keys
}

func testList(t *testing.T, s storage.Store) {
	all := []string{
		"cam-1/2024/05/06/07/20240506T070000.000000000Z.mp4",
		"cam-1/2024/05/06/07/20240506T071000.500000000Z.mp4",
		"cam-1/2024/05/06/08/20240506T080000.000000000Z.mp4",
		"cam-1/2024/05/07/00/20240507T000000.000000000Z.mp4",
		"cam-1.x",
		"cam-10/2024/05/06/07/20240506T070000.000000000Z.mp4",
		"cam-1-b/a",
		"cam-1_c/a",
		"cam/a",
		"cam0",
		"z",
	}
	// Insert in scrambled order.
	for _, i := range []int{5, 2, 9, 0, 7, 3, 10, 1, 8, 4, 6} {
		put(t, s, all[i], []byte(all[i]))
	}
	sorted := slices.Clone(all)
	slices.Sort(sorted)
	tests := []string{
		"", "c", "cam", "cam-1", "cam-1/", "cam-1/2024/05/06/", "cam-1/2024/05/06/07/",
		"cam-1/2024/05/06/0", "cam-1/2024/05/06/07/20240506T07", "cam-10", "cam-1.", "nothing", "nothing/", "z",
		"cam-1//", "cam-1/2024/05/06/07/20240506T070000.000000000Z.mp4",
	}
	for _, prefix := range tests {
		var want []string
		for _, k := range sorted {
			if strings.HasPrefix(k, prefix) {
				want = append(want, k)
			}
		}
		if got := list(t, s, prefix); !slices.Equal(got, want) {
			t.Errorf("List(%q)\n got %q\nwant %q", prefix, got, want)
		}
	}
	// Info carries the size.
	err := s.List(context.Background(), "cam0", func(o storage.ObjectInfo) error {
		if o.Size != int64(len("cam0")) {
			t.Errorf("List info %+v, want size %d", o, len("cam0"))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func testListStop(t *testing.T, s storage.Store) {
	for i := range 5 {
		put(t, s, fmt.Sprintf("c/%d", i), []byte{byte(i)})
	}
	errStop := errors.New("stop")
	n := 0
	err := s.List(context.Background(), "c/", func(storage.ObjectInfo) error {
		n++
		if n == 2 {
			return errStop
		}
		return nil
	})
	if !errors.Is(err, errStop) || n != 2 {
		t.Errorf("List stopped with %v after %d calls, want errStop after 2", err, n)
	}
}

func testInvalidKeys(t *testing.T, s storage.Store) {
	ctx := context.Background()
	bad := []string{
		"", "/abs", "a/", "a//b", "..", "../x", "a/../b", "a/./b", ".", "a b", "a\\b", "a\x00b",
		"ünïcode", "a?b", "a*b", "a:b", "#tmp",
	}
	for _, key := range bad {
		if _, err := s.Put(ctx, key, strings.NewReader("x"), 1); err == nil {
			t.Errorf("Put(%q) succeeded, want error", key)
		}
		if rc, err := s.GetRange(ctx, key, 0, -1); err == nil {
			rc.Close()
			t.Errorf("GetRange(%q) succeeded, want error", key)
		}
		if _, err := s.Stat(ctx, key); err == nil {
			t.Errorf("Stat(%q) succeeded, want error", key)
		}
		if err := s.Delete(ctx, key); err == nil {
			t.Errorf("Delete(%q) succeeded, want error", key)
		}
	}
	if keys := list(t, s, ""); len(keys) != 0 {
		t.Errorf("store holds %q after invalid puts, want nothing", keys)
	}
	for _, key := range []string{"a", "A-Z_0.9", "x/y/z.mp4", "..a", "a..", "-"} {
		put(t, s, key, []byte("ok"))
	}
}

func testConcurrent(t *testing.T, s storage.Store) {
	ctx := context.Background()
	const workers, perWorker = 8, 10
	var wg sync.WaitGroup
	errc := make(chan error, workers*perWorker)
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				// Workers share directories, and delete, so that creating
				// and removing parents race.
				key := fmt.Sprintf("cam-%d/2024/01/%02d/obj-%d-%d.mp4", w%2, i%3, w, i)
				data := payload(100+i, byte(w))
				if _, err := s.Put(ctx, key, bytes.NewReader(data), int64(len(data))); err != nil {
					errc <- err
					continue
				}
				rc, err := s.GetRange(ctx, key, 0, -1)
				if err != nil {
					errc <- err
					continue
				}
				got, err := io.ReadAll(rc)
				rc.Close()
				if err != nil || !bytes.Equal(got, data) {
					errc <- fmt.Errorf("%s: read back %d bytes, err %v", key, len(got), err)
				}
				if i%2 == 1 {
					if err := s.Delete(ctx, key); err != nil {
						errc <- err
					}
				}
				if err := s.List(ctx, fmt.Sprintf("cam-%d/", w%2), func(storage.ObjectInfo) error { return nil }); err != nil {
					errc <- err
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	if n := len(list(t, s, "")); n != workers*perWorker/2 {
		t.Errorf("%d objects remain, want %d", n, workers*perWorker/2)
	}
}

// blockingReader returns some bytes, then blocks until ctx is done.
type blockingReader struct {
	ctx  context.Context
	sent bool
}

func (r *blockingReader) Read(p []byte) (int, error) {
	if !r.sent {
		r.sent = true
		return copy(p, "partial"), nil
	}
	<-r.ctx.Done()
	return 0, r.ctx.Err()
}

func testContextCanceled(t *testing.T, s storage.Store) {
	put(t, s, "c/a", []byte("abc"))
	done, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Put(done, "c/b", strings.NewReader("x"), 1); err == nil {
		t.Error("Put with a canceled context succeeded")
	}
	if _, err := s.Stat(context.Background(), "c/b"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("object written by a canceled Put: %v", err)
	}
	if rc, err := s.GetRange(done, "c/a", 0, -1); err == nil {
		_, rerr := io.ReadAll(rc)
		rc.Close()
		if rerr == nil {
			t.Error("GetRange with a canceled context succeeded")
		}
	}
	if err := s.List(done, "", func(storage.ObjectInfo) error { return nil }); err == nil {
		t.Error("List with a canceled context succeeded")
	}
	// Canceled in the middle of the body.
	ctx, cancel2 := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel2)
	_, err := s.Put(ctx, "c/a", &blockingReader{ctx: ctx}, 1<<20)
	if err == nil {
		t.Fatal("Put canceled mid-body succeeded")
	}
	if got := get(t, s, "c/a", 0, -1); string(got) != "abc" {
		t.Errorf("after canceled overwrite got %q, want %q", got, "abc")
	}
}

func testCloseTwice(t *testing.T, s storage.Store) {
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
