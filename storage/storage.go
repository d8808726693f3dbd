package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// ErrNotFound is returned (wrapped) by every Store method when the object
// does not exist. Test with errors.Is.
var ErrNotFound = errors.New("object not found")

// ObjectInfo describes one stored object.
type ObjectInfo struct {
	Key     string
	Size    int64
	ModTime time.Time
	// SHA256 is the lowercase hex SHA-256 of the content when the backend
	// knows it (it is returned by Put), empty otherwise.
	SHA256 string
}

// Store is an S3-shaped object store: immutable objects written whole,
// read by byte ranges. Keys are slash-separated relative paths made of
// [A-Za-z0-9._-] segments; implementations reject anything else
// (no "..", no leading slash) with an error.
//
// Every method is safe for concurrent use.
type Store interface {
	// Put stores size bytes read from r under key, replacing any previous
	// object atomically: a reader sees the old object or the new one,
	// never a part. The object is durable when Put returns nil.
	Put(ctx context.Context, key string, r io.Reader, size int64) (ObjectInfo, error)
	// GetRange returns length bytes starting at off. length < 0 means up to
	// the end. A range past the end is an error; a range that ends past the
	// end is clipped. The caller closes the reader.
	GetRange(ctx context.Context, key string, off, length int64) (io.ReadCloser, error)
	// Stat returns the object's info or ErrNotFound.
	Stat(ctx context.Context, key string) (ObjectInfo, error)
	// Delete removes the object; deleting a missing object is not an error.
	Delete(ctx context.Context, key string) error
	// List calls fn for every object whose key starts with prefix, in
	// lexical key order. An error from fn stops the walk and is returned.
	List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error
	// Close releases resources; safe to call twice.
	Close() error
}

// OpenRegular opens the regular file at path for reading and returns it
// with its info: what a store's PutFile uploads or links. Anything else
// (a directory, a device, a FIFO) is an error.
func OpenRegular(path string) (*os.File, os.FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	st, err := f.Stat()
	if err == nil && !st.Mode().IsRegular() {
		err = fmt.Errorf("%s is not a regular file", path)
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, st, nil
}
