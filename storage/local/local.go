package local

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"xueliang/storage"
)

// ErrRange is returned (wrapped) by GetRange for an offset that is negative
// or past the end of the object.
var ErrRange = errors.New("range not satisfiable")

// tempPrefix starts the names of temporary files. '#' is not a valid key
// character, so List never reports them.
const tempPrefix = "#put-"

// Store is a storage.Store on a directory tree: the object with key
// "a/b/c.mp4" is the file <root>/a/b/c.mp4.
type Store struct {
	root string
}

var _ storage.Store = (*Store)(nil)

// New returns a Store rooted at root, creating the directory if needed.
func New(root string) (*Store, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("local store root %s: %w", root, err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("local store root: %w", err)
	}
	return &Store{root: abs}, nil
}

// Root returns the absolute root directory.
func (s *Store) Root() string { return s.root }

func (s *Store) path(key string) string {
	return filepath.Join(s.root, filepath.FromSlash(key))
}

// Put implements storage.Store. The body goes to a temporary file in the
// object's directory, which is fsynced, renamed over the key and followed by
// an fsync of the directory.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64) (storage.ObjectInfo, error) {
	if err := storage.CheckKey(key); err != nil {
		return storage.ObjectInfo{}, fmt.Errorf("put: %w", err)
	}
	if size < 0 {
		return storage.ObjectInfo{}, fmt.Errorf("put %s: negative size %d", key, size)
	}
	if err := ctx.Err(); err != nil {
		return storage.ObjectInfo{}, fmt.Errorf("put %s: %w", key, err)
	}
	p := s.path(key)
	dir := filepath.Dir(p)
	tmp, sum, err := s.writeTemp(ctx, dir, r, size)
	if err != nil {
		return storage.ObjectInfo{}, fmt.Errorf("put %s: %w", key, err)
	}
	info, err := s.commit(tmp, p, dir)
	if err != nil {
		return storage.ObjectInfo{}, fmt.Errorf("put %s: %w", key, err)
	}
	return storage.ObjectInfo{Key: key, Size: size, ModTime: info.ModTime(), SHA256: hex.EncodeToString(sum)}, nil
}

// writeTemp copies size bytes of r to a new temporary file in dir, fsyncs
// it and returns its name and the SHA-256 of the bytes. On error nothing is
// left behind.
func (s *Store) writeTemp(ctx context.Context, dir string, r io.Reader, size int64) (string, []byte, error) {
	f, err := s.createTemp(dir)
	if err != nil {
		return "", nil, err
	}
	tmp := f.Name()
	h := sha256.New()
	n, err := io.CopyN(io.MultiWriter(f, h), storage.ContextReader(ctx, r), size)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = fmt.Errorf("short body, %d of %d bytes: %w", n, size, io.ErrUnexpectedEOF)
		}
		return "", nil, errors.Join(err, removeQuiet(tmp))
	}
	return tmp, h.Sum(nil), nil
}

// PutFile stores the content of the local file at path under key. When path
// is on the same filesystem the object becomes a hard link to it (no copy);
// otherwise the file is copied with Put. The file is fsynced first. The
// caller must not modify the file afterwards (it may be removed: the object
// keeps its own link). The returned ObjectInfo carries the SHA-256 of the
// content, read back from the file.
func (s *Store) PutFile(ctx context.Context, key, path string) (storage.ObjectInfo, error) {
	if err := storage.CheckKey(key); err != nil {
		return storage.ObjectInfo{}, fmt.Errorf("put file: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return storage.ObjectInfo{}, fmt.Errorf("put file %s: %w", key, err)
	}
	src, st, err := storage.OpenRegular(path)
	if err != nil {
		return storage.ObjectInfo{}, fmt.Errorf("put file %s: %w", key, err)
	}
	defer src.Close()
	if err := src.Sync(); err != nil {
		return storage.ObjectInfo{}, fmt.Errorf("put file %s: sync source: %w", key, err)
	}
	p := s.path(key)
	dir := filepath.Dir(p)
	tmp, err := s.linkTemp(path, dir)
	if err != nil {
		if !canFallBack(err) {
			return storage.ObjectInfo{}, fmt.Errorf("put file %s: %w", key, err)
		}
		return s.Put(ctx, key, src, st.Size())
	}
	h := sha256.New()
	n, err := io.Copy(h, storage.ContextReader(ctx, src))
	if err == nil && n != st.Size() {
		err = fmt.Errorf("file changed size while linking: %d != %d", n, st.Size())
	}
	if err != nil {
		return storage.ObjectInfo{}, errors.Join(fmt.Errorf("put file %s: %w", key, err), removeQuiet(tmp))
	}
	info, err := s.commit(tmp, p, dir)
	if err != nil {
		return storage.ObjectInfo{}, fmt.Errorf("put file %s: %w", key, err)
	}
	// rename(2) of a link over another link to the same inode (PutFile of
	// the same file again) succeeds without removing the source name.
	if err := removeQuiet(tmp); err != nil {
		return storage.ObjectInfo{}, fmt.Errorf("put file %s: %w", key, err)
	}
	return storage.ObjectInfo{Key: key, Size: n, ModTime: info.ModTime(), SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// ErrContentMismatch is returned (wrapped) by PutFileSHA256 when the file
// does not hash to the SHA-256 it was given; the store is left unchanged.
var ErrContentMismatch = errors.New("content does not match the given sha256")

// PutFileSHA256 is PutFile for a file whose SHA-256 (sha256Hex, 64 hex
// digits) is already known, as the spool uploader knows it from the index.
// The file is fsynced, hard-linked to a temporary name (copied through a
// fsynced temporary file when it is on another filesystem), and read once
// to check its SHA-256 before the object is committed: a file that does not
// match is never stored (ErrContentMismatch) and any previous object under
// key stays. On success the returned ObjectInfo.SHA256 is sha256Hex
// (lowercase).
//
// Why the file is still read although the hash is known: with a hard link
// the object is the spool file itself (same inode), so reading it back
// cannot detect a corrupted transfer — there is none — but it is the only
// check that the bytes being stored are the ones the segmenter hashed. A
// spool file modified or damaged after it was closed would otherwise be
// stored and marked stored on the index's word, and this backend keeps no
// other copy. The read costs one pass over a file that is usually still in
// the page cache (about 20 ms of CPU for a 30 MB segment at 1.4 GB/s of
// SHA-256) and replaces the read PutFile already did; unlike PutFile, a
// mismatch is caught before the object becomes visible rather than after.
func (s *Store) PutFileSHA256(ctx context.Context, key, path, sha256Hex string) (storage.ObjectInfo, error) {
	if err := storage.CheckKey(key); err != nil {
		return storage.ObjectInfo{}, fmt.Errorf("put file: %w", err)
	}
	want, err := hex.DecodeString(sha256Hex)
	if err != nil || len(want) != sha256.Size {
		return storage.ObjectInfo{}, fmt.Errorf("put file %s: invalid sha256 %q", key, sha256Hex)
	}
	if err := ctx.Err(); err != nil {
		return storage.ObjectInfo{}, fmt.Errorf("put file %s: %w", key, err)
	}
	info, err := s.putFileSHA256(ctx, key, path, want)
	if err != nil {
		return storage.ObjectInfo{}, fmt.Errorf("put file %s: %w", key, err)
	}
	return info, nil
}

func (s *Store) putFileSHA256(ctx context.Context, key, path string, want []byte) (storage.ObjectInfo, error) {
	src, st, err := storage.OpenRegular(path)
	if err != nil {
		return storage.ObjectInfo{}, err
	}
	defer src.Close()
	if err := src.Sync(); err != nil {
		return storage.ObjectInfo{}, fmt.Errorf("sync source: %w", err)
	}
	p := s.path(key)
	dir := filepath.Dir(p)
	var sum []byte
	tmp, err := s.linkTemp(path, dir)
	switch {
	case err == nil:
		h := sha256.New()
		var n int64
		n, err = io.Copy(h, storage.ContextReader(ctx, src))
		if err == nil && n != st.Size() {
			err = fmt.Errorf("file changed size while linking: %d != %d", n, st.Size())
		}
		if err != nil {
			return storage.ObjectInfo{}, errors.Join(err, removeQuiet(tmp))
		}
		sum = h.Sum(nil)
	case canFallBack(err):
		// Another filesystem: copy (which hashes) instead of linking.
		if tmp, sum, err = s.writeTemp(ctx, dir, src, st.Size()); err != nil {
			return storage.ObjectInfo{}, err
		}
	default:
		return storage.ObjectInfo{}, err
	}
	if !bytes.Equal(sum, want) {
		return storage.ObjectInfo{}, errors.Join(
			fmt.Errorf("%w: %s hashes to %x, want %x", ErrContentMismatch, path, sum, want), removeQuiet(tmp))
	}
	info, err := s.commit(tmp, p, dir)
	if err != nil {
		return storage.ObjectInfo{}, err
	}
	// As in PutFile: renaming a link over a link to the same inode leaves
	// the source name.
	if err := removeQuiet(tmp); err != nil {
		return storage.ObjectInfo{}, err
	}
	return storage.ObjectInfo{Key: key, Size: st.Size(), ModTime: info.ModTime(), SHA256: hex.EncodeToString(want)}, nil
}

// canFallBack reports whether a hard-link failure means "copy instead".
func canFallBack(err error) bool {
	return errors.Is(err, syscall.EXDEV) || errors.Is(err, syscall.EPERM) ||
		errors.Is(err, syscall.ENOTSUP) || errors.Is(err, syscall.EMLINK)
}

// commit renames tmp over p, fsyncs dir and stats the result.
func (s *Store) commit(tmp, p, dir string) (os.FileInfo, error) {
	if err := os.Rename(tmp, p); err != nil {
		return nil, errors.Join(err, removeQuiet(tmp))
	}
	if err := syncDir(dir); err != nil {
		return nil, err
	}
	return os.Stat(p)
}

// createTemp creates a temporary file in dir, creating dir (durably) first.
// A concurrent Delete may remove the freshly created, still empty dir, so
// ENOENT is retried.
func (s *Store) createTemp(dir string) (*os.File, error) {
	var err error
	for range 5 {
		if err = s.mkdirAll(dir); err != nil {
			return nil, err
		}
		var f *os.File
		f, err = os.CreateTemp(dir, tempPrefix+"*")
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	return nil, err
}

// linkTemp hard-links src to a fresh temporary name in dir.
func (s *Store) linkTemp(src, dir string) (string, error) {
	var err error
	for range 5 {
		if err = s.mkdirAll(dir); err != nil {
			return "", err
		}
		var f *os.File
		f, err = os.CreateTemp(dir, tempPrefix+"*")
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return "", err
		}
		name := f.Name()
		f.Close()
		// Keep the placeholder until the link exists under a sibling name, so
		// that the directory is never empty (and never removed by Delete).
		tmp := name + "l"
		err = os.Link(src, tmp)
		if rerr := os.Remove(name); err == nil && rerr != nil {
			err = errors.Join(rerr, removeQuiet(tmp))
		}
		if err != nil {
			return "", err
		}
		return tmp, nil
	}
	return "", err
}

// mkdirAll creates dir and its missing parents below the root, fsyncing the
// parent of every directory it creates.
func (s *Store) mkdirAll(dir string) error {
	if st, err := os.Stat(dir); err == nil {
		if !st.IsDir() {
			return fmt.Errorf("%s: %w", dir, syscall.ENOTDIR)
		}
		return nil
	}
	var missing []string
	for d := dir; d != s.root && len(d) > len(s.root); d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		}
		missing = append(missing, d)
	}
	for i := len(missing) - 1; i >= 0; i-- {
		d := missing[i]
		if err := os.Mkdir(d, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		if err := syncDir(filepath.Dir(d)); err != nil {
			return err
		}
	}
	return nil
}

// GetRange implements storage.Store.
func (s *Store) GetRange(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	if err := storage.CheckKey(key); err != nil {
		return nil, fmt.Errorf("get: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	f, err := os.Open(s.path(key))
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, notFound(err))
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("get %s: %w", key, storage.ErrNotFound)
	}
	sr, err := SectionReader(f, st.Size(), off, length)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	return &rangeReader{ctx: ctx, r: sr, f: f}, nil
}

// SectionReader returns the part of r (of the given size) selected by off
// and length with the storage.Store GetRange rules: length < 0 means up to
// the end, a range ending past the end is clipped, an offset past the end
// (or negative) is ErrRange. It is exported for the spool reader.
func SectionReader(r io.ReaderAt, size, off, length int64) (*io.SectionReader, error) {
	if off < 0 || off > size {
		return nil, fmt.Errorf("%w: offset %d, size %d", ErrRange, off, size)
	}
	n := size - off
	if length >= 0 && length < n {
		n = length
	}
	return io.NewSectionReader(r, off, n), nil
}

type rangeReader struct {
	ctx context.Context
	r   io.Reader
	f   *os.File
}

func (r *rangeReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

func (r *rangeReader) Close() error { return r.f.Close() }

// Stat implements storage.Store. SHA256 is left empty.
func (s *Store) Stat(ctx context.Context, key string) (storage.ObjectInfo, error) {
	if err := storage.CheckKey(key); err != nil {
		return storage.ObjectInfo{}, fmt.Errorf("stat: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return storage.ObjectInfo{}, fmt.Errorf("stat %s: %w", key, err)
	}
	st, err := os.Stat(s.path(key))
	if err != nil {
		return storage.ObjectInfo{}, fmt.Errorf("stat %s: %w", key, notFound(err))
	}
	if !st.Mode().IsRegular() {
		return storage.ObjectInfo{}, fmt.Errorf("stat %s: %w", key, storage.ErrNotFound)
	}
	return storage.ObjectInfo{Key: key, Size: st.Size(), ModTime: st.ModTime()}, nil
}

// Delete implements storage.Store. Parent directories left empty are
// removed, best effort.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := storage.CheckKey(key); err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	p := s.path(key)
	st, err := os.Lstat(p)
	if err != nil {
		if isNotExist(err) {
			return nil
		}
		return fmt.Errorf("delete %s: %w", key, err)
	}
	if st.IsDir() {
		return nil // not an object
	}
	if err := os.Remove(p); err != nil && !isNotExist(err) {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	RemoveEmptyParents(s.root, filepath.Dir(p))
	return nil
}

// RemoveEmptyParents removes dir and its parents up to (excluding) root
// while they are empty. Errors stop it silently: it is best effort.
func RemoveEmptyParents(root, dir string) {
	for dir != root && len(dir) > len(root) && strings.HasPrefix(dir, root) {
		if os.Remove(dir) != nil {
			return
		}
		dir = filepath.Dir(dir)
	}
}

// List implements storage.Store. Only the directory named by the prefix up
// to its last '/' is walked.
func (s *Store) List(ctx context.Context, prefix string, fn func(storage.ObjectInfo) error) error {
	dirPart, rest := "", prefix
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		dirPart, rest = prefix[:i], prefix[i+1:]
		if storage.CheckKey(dirPart) != nil {
			return nil // no valid key can start with this prefix
		}
	}
	dir := s.root
	keyBase := ""
	if dirPart != "" {
		dir = s.path(dirPart)
		keyBase = dirPart + "/"
	}
	if err := s.walk(ctx, dir, keyBase, rest, fn); err != nil {
		return fmt.Errorf("list %q: %w", prefix, err)
	}
	return nil
}

// walk visits dir in lexical key order. Within a directory, a subdirectory
// "x" sorts as "x/", so that its keys come in the right place relative to
// sibling files such as "x.mp4" or "x-1".
func (s *Store) walk(ctx context.Context, dir, keyBase, namePrefix string, fn func(storage.ObjectInfo) error) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if isNotExist(err) {
			return nil
		}
		return err
	}
	entries = slices.DeleteFunc(entries, func(e fs.DirEntry) bool {
		return !storage.ValidSegment(e.Name()) || !strings.HasPrefix(e.Name(), namePrefix) ||
			!(e.IsDir() || e.Type().IsRegular())
	})
	sortName := func(e fs.DirEntry) string {
		if e.IsDir() {
			return e.Name() + "/"
		}
		return e.Name()
	}
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return strings.Compare(sortName(a), sortName(b)) })
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		key := keyBase + e.Name()
		if e.IsDir() {
			if err := s.walk(ctx, filepath.Join(dir, e.Name()), key+"/", "", fn); err != nil {
				return err
			}
			continue
		}
		info, err := e.Info()
		if err != nil {
			if isNotExist(err) {
				continue // deleted meanwhile
			}
			return err
		}
		if err := fn(storage.ObjectInfo{Key: key, Size: info.Size(), ModTime: info.ModTime()}); err != nil {
			return err
		}
	}
	return nil
}

// Close implements storage.Store; there is nothing to release.
func (s *Store) Close() error { return nil }

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	return errors.Join(err, d.Close())
}

func removeQuiet(path string) error {
	if err := os.Remove(path); err != nil && !isNotExist(err) {
		return err
	}
	return nil
}

func isNotExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// notFound maps "no such file" errors to storage.ErrNotFound.
func notFound(err error) error {
	if isNotExist(err) {
		return storage.ErrNotFound
	}
	return err
}

// DeleteKeys removes the objects: each file is unlinked, then each
// directory that lost a file is fsynced once, so the deletions are durable
// when it returns nil; empty directories are then removed (best effort).
// Missing objects are not an error.
func (s *Store) DeleteKeys(ctx context.Context, keys []string) error {
	dirs := map[string]bool{}
	var errs []error
	for _, key := range keys {
		if err := storage.CheckKey(key); err != nil {
			return fmt.Errorf("delete keys: %w", err)
		}
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		p := s.path(key)
		if err := os.Remove(p); err != nil {
			if !isNotExist(err) {
				errs = append(errs, fmt.Errorf("delete %s: %w", key, err))
			}
			continue
		}
		dirs[filepath.Dir(p)] = true
	}
	for d := range dirs {
		if err := syncDir(d); err != nil && !isNotExist(err) {
			errs = append(errs, fmt.Errorf("delete keys: sync %s: %w", d, err))
		}
	}
	for d := range dirs {
		RemoveEmptyParents(s.root, d)
	}
	if len(errs) > 0 {
		return fmt.Errorf("delete keys: %w", errors.Join(errs...))
	}
	return nil
}
