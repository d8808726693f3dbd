package s3

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"xueliang/storage"
	"xueliang/storage/miniotest"
)

// newSmallStore returns a store with 5 MiB parts and the given single-PUT
// limit, so that multipart uploads stay quick.
func newSmallStore(t testing.TB, srv *miniotest.Server, bucket string, singlePutLimit int64) *Store {
	t.Helper()
	s, err := New(context.Background(), Config{
		Endpoint: srv.Endpoint, Bucket: bucket, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey,
		PartSize: 5 << 20, SinglePutLimit: singlePutLimit,
	}, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func writeFile(t testing.TB, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "seg.mp4")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// noIncompleteUploads fails when an aborted multipart upload is left on
// the server.
func noIncompleteUploads(t *testing.T, raw *minio.Client, bucket, key string) {
	t.Helper()
	for u := range raw.ListIncompleteUploads(context.Background(), bucket, key, true) {
		if u.Err != nil {
			t.Fatalf("ListIncompleteUploads: %v", u.Err)
		}
		t.Errorf("multipart upload %s of %s left behind", u.UploadID, u.Key)
	}
}

func TestPutFileSHA256(t *testing.T) {
	srv := miniotest.Start(t)
	ctx := context.Background()
	const limit = 6 << 20
	s := newSmallStore(t, srv, randomBucket(t), limit)
	raw := rawClient(t, srv)
	tests := []struct {
		name      string
		size      int
		multipart bool
	}{
		{name: "empty", size: 0},
		{name: "small", size: 100 << 10},
		{name: "at limit", size: limit},
		{name: "above limit", size: limit + 1, multipart: true},
		{name: "three parts", size: 11<<20 + 5, multipart: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := payload(tt.size, byte(tt.size))
			key := "cam/" + strings.ReplaceAll(tt.name, " ", "-") + ".mp4"
			var parts int
			s.afterPart = func(int) { parts++ }
			rec := &recordingTransport{rt: s.ct.rt}
			s.ct.rt = rec
			defer func() { s.afterPart, s.ct.rt = nil, rec.rt }()
			before := s.Stats()
			info, err := s.PutFileSHA256(ctx, key, writeFile(t, data), hexSum(data))
			if err != nil {
				t.Fatalf("PutFileSHA256: %v", err)
			}
			if info.SHA256 != hexSum(data) || info.Size != int64(len(data)) || info.Key != key {
				t.Fatalf("info %+v, want size %d SHA256 %s", info, len(data), hexSum(data))
			}
			if wantParts := (tt.size + 5<<20 - 1) / (5 << 20); tt.multipart && parts != wantParts {
				t.Errorf("%d parts sent, want %d", parts, wantParts)
			} else if !tt.multipart && parts != 0 {
				t.Errorf("%d parts sent, want a single PUT", parts)
			}
			checkPutHeaders(t, rec.puts, hexSum(data), tt.multipart)
			if !tt.multipart && tt.size > 0 && rec.fileBodies != 1 {
				t.Errorf("single PUT body was not the file itself (no sendfile)")
			}
			after := s.Stats()
			if after.Puts-before.Puts != 1 || after.BytesWritten-before.BytesWritten != int64(len(data)) || after.Errors != before.Errors {
				t.Errorf("stats %+v after %+v: want one more put of %d bytes, no error", after, before, len(data))
			}
			st, err := s.Stat(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			if st.SHA256 != hexSum(data) || st.Size != int64(len(data)) {
				t.Errorf("Stat %+v, want SHA256 %s", st, hexSum(data))
			}
			oi, err := raw.StatObject(ctx, s.Bucket(), key, minio.StatObjectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if oi.ContentType != "video/mp4" {
				t.Errorf("content type %q", oi.ContentType)
			}
			if got := readAll(t, s, key, 0, -1); !bytes.Equal(got, data) {
				t.Errorf("read back %d bytes, content differs", len(got))
			}
			noIncompleteUploads(t, raw, s.Bucket(), key)
		})
	}
}

// checkPutHeaders checks how the object PUTs were signed: a single PUT is
// an unsigned payload (no streaming signature, no trailer: the client
// hashed nothing) carrying the given SHA-256 as x-amz-checksum-sha256,
// which the signature covers; parts are unsigned payloads with a CRC32C
// trailer.
func checkPutHeaders(t *testing.T, puts []http.Header, hexSum string, multipart bool) {
	t.Helper()
	if !multipart {
		if len(puts) != 1 {
			t.Fatalf("%d PUT requests, want 1", len(puts))
		}
		h := puts[0]
		if got := h.Get("X-Amz-Content-Sha256"); got != "UNSIGNED-PAYLOAD" {
			t.Errorf("X-Amz-Content-Sha256 = %q, want UNSIGNED-PAYLOAD", got)
		}
		if auth := h.Get("Authorization"); !strings.Contains(auth, "x-amz-checksum-sha256") {
			t.Errorf("Authorization %q: x-amz-checksum-sha256 is not a signed header", auth)
		}
		sum, _ := hex.DecodeString(hexSum)
		if got := h.Get("X-Amz-Checksum-Sha256"); got != base64.StdEncoding.EncodeToString(sum) {
			t.Errorf("X-Amz-Checksum-Sha256 = %q", got)
		}
		if h.Get("X-Amz-Trailer") != "" || h.Get("Content-Encoding") != "" || h.Get("X-Amz-Meta-Sha256") != hexSum {
			t.Errorf("single PUT headers %v: want no trailer, no aws-chunked encoding, X-Amz-Meta-Sha256", h)
		}
		return
	}
	if len(puts) < 2 {
		t.Fatalf("%d PUT requests, want parts", len(puts))
	}
	for i, h := range puts {
		if got := h.Get("X-Amz-Content-Sha256"); got != "STREAMING-UNSIGNED-PAYLOAD-TRAILER" {
			t.Errorf("part %d X-Amz-Content-Sha256 = %q, want an unsigned payload with trailer", i+1, got)
		}
		if got := h.Get("X-Amz-Trailer"); got != "x-amz-checksum-crc32c" {
			t.Errorf("part %d X-Amz-Trailer = %q, want x-amz-checksum-crc32c", i+1, got)
		}
	}
}

// recordingTransport records the headers of PUT requests, and whether
// their body was a file (which net/http sends with sendfile).
type recordingTransport struct {
	rt         http.RoundTripper
	puts       []http.Header
	fileBodies int
}

func (r *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPut {
		r.puts = append(r.puts, req.Header.Clone())
		if _, ok := req.Body.(*os.File); ok {
			r.fileBodies++
		}
	}
	return r.rt.RoundTrip(req)
}

// TestPutFileSHA256Mismatch: a file whose content does not hash to the
// given SHA-256 is refused (by the server for a single PUT, before
// completion for a multipart upload) and never replaces the object.
func TestPutFileSHA256Mismatch(t *testing.T) {
	srv := miniotest.Start(t)
	ctx := context.Background()
	s := newSmallStore(t, srv, randomBucket(t), 6<<20)
	raw := rawClient(t, srv)
	for _, tt := range []struct {
		name string
		size int
	}{{"single", 64 << 10}, {"multipart", 11 << 20}} {
		t.Run(tt.name, func(t *testing.T) {
			data := payload(tt.size, 3)
			wrong := sha256.Sum256(append([]byte("x"), data...))
			for _, existing := range []bool{false, true} {
				key := "cam/" + tt.name + ".mp4"
				if existing {
					if _, err := s.Put(ctx, key, strings.NewReader("old"), 3); err != nil {
						t.Fatal(err)
					}
				}
				before := s.Stats()
				_, err := s.PutFileSHA256(ctx, key, writeFile(t, data), hex.EncodeToString(wrong[:]))
				if !errors.Is(err, ErrContentMismatch) {
					t.Fatalf("PutFileSHA256 with a wrong hash: %v, want ErrContentMismatch", err)
				}
				t.Logf("refused: %v", err)
				if after := s.Stats(); after.Errors != before.Errors+1 || after.Puts != before.Puts {
					t.Errorf("stats %+v after %+v: want one more error, no put", after, before)
				}
				if existing {
					if got := readAll(t, s, key, 0, -1); string(got) != "old" {
						t.Errorf("object after refused upload = %d bytes, want the old one", len(got))
					}
					if err := s.Delete(ctx, key); err != nil {
						t.Fatal(err)
					}
				} else if _, err := s.Stat(ctx, key); !errors.Is(err, storage.ErrNotFound) {
					t.Errorf("Stat after refused upload: %v, want ErrNotFound", err)
				}
				noIncompleteUploads(t, raw, s.Bucket(), key)
			}
		})
	}
	if _, err := s.PutFileSHA256(ctx, "cam/x.mp4", writeFile(t, []byte("x")), "abc"); err == nil || !strings.Contains(err.Error(), "invalid sha256") {
		t.Errorf("PutFileSHA256 with a malformed hash: %v", err)
	}
	if _, err := s.PutFileSHA256(ctx, "cam/x.mp4", filepath.Join(t.TempDir(), "none"), hexSum(nil)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("PutFileSHA256 of a missing file: %v, want ErrNotExist", err)
	}
}

func TestPutFileSHA256Canceled(t *testing.T) {
	srv := miniotest.Start(t)
	raw := rawClient(t, srv)
	s := newSmallStore(t, srv, randomBucket(t), 6<<20)
	data := payload(16<<20, 5)
	path := writeFile(t, data)
	const key = "cam/cancel.mp4"
	if _, err := s.Put(context.Background(), key, strings.NewReader("old"), 3); err != nil {
		t.Fatal(err)
	}

	t.Run("multipart", func(t *testing.T) {
		// Canceled once the first of 4 parts is on the server.
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		parts := 0
		s.afterPart = func(int) { parts++; cancel() }
		defer func() { s.afterPart = nil }()
		_, err := s.PutFileSHA256(ctx, key, path, hexSum(data))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("PutFileSHA256 canceled after a part: %v, want context.Canceled", err)
		}
		if parts != 1 {
			t.Errorf("%d parts sent, want 1", parts)
		}
		if got := readAll(t, s, key, 0, -1); string(got) != "old" {
			t.Errorf("object after a canceled upload = %d bytes, want the old one", len(got))
		}
		noIncompleteUploads(t, raw, s.Bucket(), key)
	})

	t.Run("single", func(t *testing.T) {
		big := newSmallStore(t, srv, s.Bucket(), MaxSinglePutLimit)
		// Canceled once 1 MiB of the body has been read by the transport.
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		big.ct.rt = &cancelingTransport{rt: big.ct.rt, after: 1 << 20, cancel: cancel}
		before := big.Stats()
		_, err := big.PutFileSHA256(ctx, key, path, hexSum(data))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("PutFileSHA256 canceled while sending: %v, want context.Canceled", err)
		}
		if n := big.Stats().HTTPRequests - before.HTTPRequests; n != 1 {
			t.Errorf("%d requests, want 1 (a canceled PUT is not retried)", n)
		}
		if got := readAll(t, s, key, 0, -1); string(got) != "old" {
			t.Errorf("object after a canceled upload = %d bytes, want the old one", len(got))
		}
	})
}

// cancelingTransport calls cancel once after bytes of PUT bodies have
// been read.
type cancelingTransport struct {
	rt     http.RoundTripper
	after  int64
	cancel context.CancelFunc
}

func (c *cancelingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPut && req.Body != nil {
		req.Body = &cancelingBody{ReadCloser: req.Body, t: c}
	}
	return c.rt.RoundTrip(req)
}

type cancelingBody struct {
	io.ReadCloser
	t *cancelingTransport
}

func (b *cancelingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if b.t.after -= int64(n); b.t.after <= 0 {
		b.t.cancel()
	}
	return n, err
}
