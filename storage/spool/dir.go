package spool

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"xueliang/storage"
	"xueliang/storage/local"
)

// Dir is the spool directory: the file of the segment with object key k is
// <Root>/k. The zero value is not usable; build it with NewDir or set Root
// to an absolute path.
type Dir struct {
	Root string
	// Quota, when set, is credited with the size of every file Remove
	// removes (see Quota). Copies of the Dir share it.
	Quota *Quota
}

// NewDir returns the spool rooted at root, creating the directory.
func NewDir(root string) (Dir, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return Dir{}, fmt.Errorf("spool dir %s: %w", root, err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return Dir{}, fmt.Errorf("spool dir: %w", err)
	}
	return Dir{Root: abs}, nil
}

// Path returns the spool file path of key. key is not validated here; Create,
// Remove and Reader reject invalid keys.
func (d Dir) Path(key string) string {
	return filepath.Join(d.Root, filepath.FromSlash(key))
}

// Create creates (truncating) the spool file of key, read-write, creating
// its parent directories, and fsyncs the parent so the new entry survives a
// crash. Syncing the content is the writer's business.
func (d Dir) Create(key string) (*os.File, error) {
	if err := storage.CheckKey(key); err != nil {
		return nil, fmt.Errorf("create spool file: %w", err)
	}
	p := d.Path(key)
	parent := filepath.Dir(p)
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return nil, fmt.Errorf("create spool file %s: %w", key, err)
	}
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create spool file %s: %w", key, err)
	}
	if err := syncDir(parent); err != nil {
		return nil, errors.Join(fmt.Errorf("create spool file %s: %w", key, err), f.Close())
	}
	return f, nil
}

// Remove removes the spool file of key (a missing file is not an error) and
// then its parent directories while they are empty. The removed file's size
// is released from d.Quota when set.
func (d Dir) Remove(key string) error {
	if err := storage.CheckKey(key); err != nil {
		return fmt.Errorf("remove spool file: %w", err)
	}
	p := d.Path(key)
	var size int64
	if d.Quota != nil {
		if st, err := os.Lstat(p); err == nil {
			size = st.Size()
		}
	}
	switch err := os.Remove(p); {
	case err == nil:
		if d.Quota != nil {
			// Only the caller whose Remove succeeded credits the quota, so
			// concurrent removals of one file count it once.
			d.Quota.Release(size)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("remove spool file %s: %w", key, err)
	}
	local.RemoveEmptyParents(d.Root, filepath.Dir(p))
	return nil
}

// Walk calls fn for every regular file in the spool whose relative path is a
// valid object key, in lexical path order (directory by directory). An
// error from fn stops the walk and is returned.
func (d Dir) Walk(fn func(key string, info fs.FileInfo) error) error {
	err := filepath.WalkDir(d.Root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !e.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(d.Root, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if storage.CheckKey(key) != nil || strings.HasPrefix(rel, "..") {
			return nil
		}
		info, err := e.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		return fn(key, info)
	})
	if err != nil {
		return fmt.Errorf("walk spool: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(f.Sync(), f.Close())
}
