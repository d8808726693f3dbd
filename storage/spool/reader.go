package spool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"xueliang/storage"
	"xueliang/storage/local"
	"xueliang/storage/recording"
)

// Reader reads segment bytes wherever they currently are: the spool file
// while it exists (recording, closed, or stored but not yet removed), the
// store otherwise.
type Reader struct {
	Dir   Dir
	Store storage.Store
}

// ReadRange returns length bytes of seg's object from off (length < 0: to
// the end) with the storage.Store GetRange rules. The spool file is tried
// first; when it does not exist (the segment is stored, or was uploaded
// and removed between the caller's index lookup and now) the store is read.
// An open spool file stays readable even if the uploader removes it
// meanwhile. For a recording segment, the end is the file's current size.
func (r Reader) ReadRange(ctx context.Context, seg recording.Segment, off, length int64) (io.ReadCloser, error) {
	rc, err := r.ReadSpool(seg, off, length)
	switch {
	case err == nil:
		return rc, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, err
	}
	return r.ReadStore(ctx, seg, off, length)
}

// ReadSpool is ReadRange from this node's spool file only: the error
// wraps fs.ErrNotExist when the file is not (or no longer) there.
func (r Reader) ReadSpool(seg recording.Segment, off, length int64) (io.ReadCloser, error) {
	if err := storage.CheckKey(seg.ObjectKey); err != nil {
		return nil, fmt.Errorf("read segment %d: %w", seg.ID, err)
	}
	f, err := os.Open(r.Dir.Path(seg.ObjectKey))
	if err != nil {
		return nil, fmt.Errorf("read segment %s from spool: %w", seg.ObjectKey, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("read segment %s: %w", seg.ObjectKey, err)
	}
	sr, err := local.SectionReader(f, st.Size(), off, length)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("read segment %s from spool: %w", seg.ObjectKey, err)
	}
	return &fileRange{SectionReader: sr, f: f}, nil
}

// ReadStore is ReadRange from the store only.
func (r Reader) ReadStore(ctx context.Context, seg recording.Segment, off, length int64) (io.ReadCloser, error) {
	if err := storage.CheckKey(seg.ObjectKey); err != nil {
		return nil, fmt.Errorf("read segment %d: %w", seg.ID, err)
	}
	if r.Store == nil {
		return nil, fmt.Errorf("read segment %s: no spool file and no store: %w", seg.ObjectKey, storage.ErrNotFound)
	}
	rc, err := r.Store.GetRange(ctx, seg.ObjectKey, off, length)
	if err != nil {
		return nil, fmt.Errorf("read segment %d from store: %w", seg.ID, err)
	}
	return rc, nil
}

type fileRange struct {
	*io.SectionReader
	f *os.File
}

func (r *fileRange) Close() error { return r.f.Close() }
