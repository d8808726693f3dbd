package s3

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"xueliang/storage"
	"xueliang/storage/miniotest"
	"xueliang/storage/storagetest"
)

func newStore(t *testing.T, srv *miniotest.Server, bucket string) *Store {
	t.Helper()
	s, err := New(context.Background(), Config{
		Endpoint:  srv.Endpoint,
		Bucket:    bucket,
		AccessKey: srv.AccessKey,
		SecretKey: srv.SecretKey,
		Secure:    srv.Secure,
		CAFile:    srv.CAFile,
	}, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func randomBucket(t *testing.T) string {
	t.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "test-" + hex.EncodeToString(b)
}

func TestConformance(t *testing.T) {
	srv := miniotest.Start(t)
	storagetest.Run(t, func(t *testing.T) storage.Store {
		return newStore(t, srv, randomBucket(t))
	})
}

// onlyReader hides every method of r but Read (no Seek, no ReadAt).
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

func payload(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*31) ^ seed
	}
	return b
}

func hexSum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func readAll(t *testing.T, s *Store, key string, off, length int64) []byte {
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

// rawClient is an independent minio-go client for checking what the server
// holds.
func rawClient(t *testing.T, srv *miniotest.Server) *minio.Client {
	t.Helper()
	c, err := minio.New(srv.Endpoint, &minio.Options{
		Creds:  credentials.NewStaticV4(srv.AccessKey, srv.SecretKey, ""),
		Region: "us-east-1",
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestBucketCreated(t *testing.T) {
	srv := miniotest.Start(t)
	ctx := context.Background()
	bucket := randomBucket(t)
	raw := rawClient(t, srv)
	if ok, err := raw.BucketExists(ctx, bucket); err != nil || ok {
		t.Fatalf("BucketExists before New = %v, %v; want false", ok, err)
	}
	s := newStore(t, srv, bucket)
	if ok, err := raw.BucketExists(ctx, bucket); err != nil || !ok {
		t.Fatalf("BucketExists after New = %v, %v; want true", ok, err)
	}
	if _, err := s.Put(ctx, "cam/a.mp4", bytes.NewReader([]byte("abc")), 3); err != nil {
		t.Fatal(err)
	}
	// A second store on the existing bucket sees the object.
	s2 := newStore(t, srv, bucket)
	if got := readAll(t, s2, "cam/a.mp4", 0, -1); string(got) != "abc" {
		t.Fatalf("second store read %q", got)
	}
	oi, err := raw.StatObject(ctx, bucket, "cam/a.mp4", minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if oi.ContentType != "video/mp4" {
		t.Errorf("content type %q, want video/mp4", oi.ContentType)
	}
}

func TestSHA256(t *testing.T) {
	srv := miniotest.Start(t)
	ctx := context.Background()
	// A small part size so that multipart uploads stay quick.
	s, err := New(ctx, Config{
		Endpoint: srv.Endpoint, Bucket: randomBucket(t), AccessKey: srv.AccessKey, SecretKey: srv.SecretKey,
		PartSize: 5 << 20,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	raw := rawClient(t, srv)
	tests := []struct {
		name     string
		size     int
		seekable bool
		// wantMeta: X-Amz-Meta-Sha256 is stored; wantStat: Stat knows the
		// SHA-256 (from the metadata or the server's checksum).
		wantMeta, wantStat bool
	}{
		{name: "single seekable", size: 100 << 10, seekable: true, wantMeta: true, wantStat: true},
		{name: "single stream", size: 100 << 10, wantStat: true},
		{name: "empty stream", size: 0, wantStat: false},
		{name: "multipart seekable", size: 11<<20 + 5, seekable: true, wantMeta: true, wantStat: true},
		{name: "multipart stream", size: 11<<20 + 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := payload(tt.size, byte(tt.size))
			key := "cam/" + strings.ReplaceAll(tt.name, " ", "-") + ".mp4"
			var r io.Reader = bytes.NewReader(data)
			if !tt.seekable {
				r = onlyReader{r}
			}
			info, err := s.Put(ctx, key, r, int64(len(data)))
			if err != nil {
				t.Fatalf("Put: %v", err)
			}
			if info.SHA256 != hexSum(data) || info.Size != int64(len(data)) {
				t.Fatalf("Put info %+v, want SHA256 %s", info, hexSum(data))
			}
			oi, err := raw.StatObject(ctx, s.Bucket(), key, minio.StatObjectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got := oi.Metadata.Get("X-Amz-Meta-Sha256"); (got == hexSum(data)) != tt.wantMeta {
				t.Errorf("X-Amz-Meta-Sha256 = %q, want it %v", got, tt.wantMeta)
			}
			st, err := s.Stat(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantStat && st.SHA256 != hexSum(data) {
				t.Errorf("Stat SHA256 = %q, want %s", st.SHA256, hexSum(data))
			}
			if !tt.wantStat && st.SHA256 != "" && st.SHA256 != hexSum(data) {
				t.Errorf("Stat SHA256 = %q, want empty or %s", st.SHA256, hexSum(data))
			}
			if got := readAll(t, s, key, 0, -1); !bytes.Equal(got, data) {
				t.Errorf("read back %d bytes, content differs", len(got))
			}
		})
	}
}

// changingReader is a ReadSeeker whose content changes after the first
// pass: Put hashes the first pass, the upload sends the second.
type changingReader struct {
	data   []byte
	pos    int
	passes int
}

func (c *changingReader) Read(p []byte) (int, error) {
	if c.pos >= len(c.data) {
		return 0, io.EOF
	}
	n := copy(p, c.data[c.pos:])
	if c.passes > 0 {
		for i := range n {
			p[i] ^= 0xff
		}
	}
	c.pos += n
	return n, nil
}

func (c *changingReader) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
		if off == 0 && c.pos > 0 {
			c.passes++
		}
		c.pos = int(off)
	case io.SeekCurrent:
		c.pos += int(off)
	default:
		return 0, errors.New("unsupported whence")
	}
	return int64(c.pos), nil
}

// TestChangedBody: a body that differs from the one hashed before the
// upload is never stored under a wrong SHA-256. A single PUT is rejected by
// the server (it verifies the x-amz-checksum-sha256 header), keeping the old
// object; a multipart upload is caught by Put, which removes the object.
func TestChangedBody(t *testing.T) {
	srv := miniotest.Start(t)
	ctx := context.Background()
	s, err := New(ctx, Config{
		Endpoint: srv.Endpoint, Bucket: randomBucket(t), AccessKey: srv.AccessKey, SecretKey: srv.SecretKey,
		PartSize: 5 << 20,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tests := []struct {
		name    string
		size    int
		wantOld bool
		wantErr string
	}{
		{name: "single", size: 4096, wantOld: true, wantErr: "x-amz-checksum"},
		{name: "multipart", size: 11 << 20, wantErr: "content changed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := "cam/" + tt.name + ".mp4"
			if _, err := s.Put(ctx, key, strings.NewReader("old"), 3); err != nil {
				t.Fatal(err)
			}
			_, err := s.Put(ctx, key, &changingReader{data: payload(tt.size, 1)}, int64(tt.size))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Put of a body that changed after hashing: %v, want an error with %q", err, tt.wantErr)
			}
			if tt.wantOld {
				if got := readAll(t, s, key, 0, -1); string(got) != "old" {
					t.Fatalf("object after rejected Put = %q, want old", got)
				}
			} else if _, err := s.Stat(ctx, key); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("Stat after mislabelled upload: %v, want ErrNotFound", err)
			}
		})
	}
}

func TestRangeTransfersOnlyRange(t *testing.T) {
	srv := miniotest.Start(t)
	s := newStore(t, srv, randomBucket(t))
	ctx := context.Background()
	data := payload(3<<20, 9)
	const key = "cam/2024/01/02/03/big.mp4"
	if _, err := s.Put(ctx, key, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name         string
		off, length  int64
		wantN        int64
		wantRequests int64
	}{
		{name: "middle", off: 1 << 20, length: 1000, wantN: 1000, wantRequests: 1},
		{name: "tail", off: 3<<20 - 10, length: -1, wantN: 10, wantRequests: 1},
		{name: "clipped", off: 3<<20 - 10, length: 1 << 20, wantN: 10, wantRequests: 1},
		{name: "zero length", off: 5, length: 0, wantN: 0, wantRequests: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := s.Stats()
			got := readAll(t, s, key, tt.off, tt.length)
			after := s.Stats()
			if int64(len(got)) != tt.wantN || !bytes.Equal(got, data[tt.off:tt.off+tt.wantN]) {
				t.Fatalf("got %d bytes, want %d of the object at %d", len(got), tt.wantN, tt.off)
			}
			if d := after.BytesRead - before.BytesRead; d != tt.wantN {
				t.Errorf("BytesRead grew by %d, want %d", d, tt.wantN)
			}
			if d := after.HTTPBytesIn - before.HTTPBytesIn; d != tt.wantN {
				t.Errorf("HTTPBytesIn grew by %d, want %d (only the range crosses the wire)", d, tt.wantN)
			}
			if d := after.HTTPRequests - before.HTTPRequests; d != tt.wantRequests {
				t.Errorf("%d HTTP requests, want %d", d, tt.wantRequests)
			}
			if d := after.Gets - before.Gets; d != 1 {
				t.Errorf("Gets grew by %d, want 1", d)
			}
		})
	}
}

func TestNotFound(t *testing.T) {
	srv := miniotest.Start(t)
	s := newStore(t, srv, randomBucket(t))
	ctx := context.Background()
	if _, err := s.Stat(ctx, "cam/none.mp4"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat: %v, want ErrNotFound", err)
	}
	for _, r := range [][2]int64{{0, -1}, {10, 5}, {0, 0}} {
		if _, err := s.GetRange(ctx, "cam/none.mp4", r[0], r[1]); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("GetRange%v: %v, want ErrNotFound", r, err)
		}
	}
	if err := s.Delete(ctx, "cam/none.mp4"); err != nil {
		t.Errorf("Delete: %v", err)
	}
	if st := s.Stats(); st.Errors != 0 {
		t.Errorf("Errors = %d, want 0 (not found is not a failure)", st.Errors)
	}
	if _, err := s.GetRange(ctx, "../x", 0, -1); err == nil || errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetRange of an invalid key: %v, want an invalid-key error", err)
	}
	if _, err := s.Put(ctx, "a//b", strings.NewReader("x"), 1); !errors.Is(err, storage.ErrInvalidKey) {
		t.Errorf("Put of an invalid key: %v, want ErrInvalidKey", err)
	}
}

// TestDeadServer stops the server: calls fail quickly with a clear error,
// and work again once it is back, with the data intact.
func TestDeadServer(t *testing.T) {
	srv := miniotest.Start(t)
	s := newStore(t, srv, randomBucket(t))
	ctx := context.Background()
	const key = "cam/keep.mp4"
	data := payload(10000, 4)
	if _, err := s.Put(ctx, key, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	file := writeFile(t, data)
	srv.Stop()
	const bound = 5 * time.Second
	// wantRequests: a single PUT of a seekable body is retried (MaxRetries
	// attempts in all), a streamed body is sent once.
	calls := []struct {
		name         string
		wantRequests int64
		fn           func() error
	}{
		{"Put", 3, func() error {
			_, err := s.Put(ctx, "cam/new.mp4", bytes.NewReader(data), int64(len(data)))
			return err
		}},
		{"PutFileSHA256", 3, func() error {
			_, err := s.PutFileSHA256(ctx, "cam/new.mp4", file, hexSum(data))
			return err
		}},
		{"Put stream", 1, func() error {
			_, err := s.Put(ctx, "cam/new.mp4", onlyReader{bytes.NewReader(data)}, int64(len(data)))
			return err
		}},
		{"GetRange", 3, func() error {
			rc, err := s.GetRange(ctx, key, 10, 100)
			if err == nil {
				rc.Close()
			}
			return err
		}},
		{"Stat", 3, func() error { _, err := s.Stat(ctx, key); return err }},
		{"List", 3, func() error { return s.List(ctx, "", func(storage.ObjectInfo) error { return nil }) }},
		{"Delete", 3, func() error { return s.Delete(ctx, "cam/other.mp4") }},
	}
	for _, c := range calls {
		before := s.Stats().HTTPRequests
		start := time.Now()
		err := c.fn()
		took := time.Since(start)
		if n := s.Stats().HTTPRequests - before; n != c.wantRequests {
			t.Errorf("%s sent %d requests, want %d", c.name, n, c.wantRequests)
		}
		if err == nil {
			t.Errorf("%s with the server down succeeded", c.name)
			continue
		}
		if errors.Is(err, storage.ErrNotFound) {
			t.Errorf("%s with the server down: %v must not be ErrNotFound", c.name, err)
		}
		// The first call may hit a pooled connection ("broken pipe",
		// "connection reset"); retried or later calls get "connection
		// refused". Either way the error names the server.
		if !strings.Contains(err.Error(), srv.Endpoint) {
			t.Errorf("%s error %q does not name the server %s", c.name, err, srv.Endpoint)
		}
		if took > bound {
			t.Errorf("%s took %v to fail, want under %v", c.name, took, bound)
		}
		t.Logf("%s failed after %v: %v", c.name, took.Round(time.Millisecond), err)
	}
	srv.Restart()
	if got := readAll(t, s, key, 0, -1); !bytes.Equal(got, data) {
		t.Fatal("object differs after restart")
	}
	if _, err := s.Put(ctx, "cam/new.mp4", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("Put after restart: %v", err)
	}
	if _, err := s.Stat(ctx, "cam/new.mp4"); err != nil {
		t.Fatalf("Stat after restart: %v", err)
	}
}

// TestHungServer: a server that accepts connections and never answers
// gives an error within the configured timeouts instead of a hang.
func TestHungServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // held open, never answered
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	start := time.Now()
	_, err = New(context.Background(), Config{
		Endpoint: l.Addr().String(), Bucket: "hung", AccessKey: "k", SecretKey: "secret-key",
		ResponseHeaderTimeout: 300 * time.Millisecond, MaxRetries: 2,
	}, nil)
	took := time.Since(start)
	if err == nil {
		t.Fatal("New against a hung server succeeded")
	}
	if took > 5*time.Second {
		t.Errorf("New took %v to fail", took)
	}
	t.Logf("failed after %v: %v", took.Round(time.Millisecond), err)
}

func TestTLS(t *testing.T) {
	srv := miniotest.StartTLS(t)
	ctx := context.Background()
	s := newStore(t, srv, randomBucket(t))
	if _, err := s.Put(ctx, "cam/tls.mp4", strings.NewReader("secret"), 6); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, s, "cam/tls.mp4", 1, 3); string(got) != "ecr" {
		t.Fatalf("read %q", got)
	}
	// Without the CA the server's certificate is refused, promptly.
	start := time.Now()
	_, err := New(ctx, Config{
		Endpoint: srv.Endpoint, Bucket: randomBucket(t), AccessKey: srv.AccessKey, SecretKey: srv.SecretKey,
		Secure: true,
	}, nil)
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("New without the CA: %v, want a certificate error", err)
	}
	took := time.Since(start)
	if took > 5*time.Second {
		t.Errorf("certificate error took %v", took)
	}
	t.Logf("refused after %v: %v", took.Round(time.Millisecond), err)
}

func TestConfig(t *testing.T) {
	ok := Config{Endpoint: "127.0.0.1:1", Bucket: "b-1", AccessKey: "a", SecretKey: "s"}
	tests := []struct {
		name string
		mod  func(*Config)
		want []string // substrings of the error
	}{
		{"empty", func(c *Config) { *c = Config{} }, []string{"endpoint is required", "bucket is required", "access key"}},
		{"scheme", func(c *Config) { c.Endpoint = "http://x:9000" }, []string{"without scheme"}},
		{"bucket", func(c *Config) { c.Bucket = "Bad_Bucket" }, []string{"bucket \"Bad_Bucket\""}},
		{"part size", func(c *Config) { c.PartSize = 1 << 20 }, []string{"part size"}},
		{"single put limit", func(c *Config) { c.SinglePutLimit = MaxSinglePutLimit + 1 }, []string{"single put limit"}},
		{"negative single put limit", func(c *Config) { c.SinglePutLimit = -1 }, []string{"single put limit"}},
		{"ca without tls", func(c *Config) { c.CAFile = "/x.pem" }, []string{"secure is false"}},
		{"missing ca", func(c *Config) { c.Secure, c.CAFile = true, "/nonexistent/ca.pem" }, []string{"ca file"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.mod(&cfg)
			_, err := New(context.Background(), cfg, nil)
			if err == nil {
				t.Fatal("New succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestClosed(t *testing.T) {
	srv := miniotest.Start(t)
	s := newStore(t, srv, randomBucket(t))
	ctx := context.Background()
	if _, err := s.Put(ctx, "a", strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	rc, err := s.GetRange(ctx, "a", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if b, err := io.ReadAll(rc); err != nil || string(b) != "x" {
		t.Errorf("reader opened before Close: %q, %v", b, err)
	}
	rc.Close()
	if _, err := s.Stat(ctx, "a"); !errors.Is(err, ErrClosed) {
		t.Errorf("Stat after Close: %v, want ErrClosed", err)
	}
	if _, err := s.Put(ctx, "a", strings.NewReader("x"), 1); !errors.Is(err, ErrClosed) {
		t.Errorf("Put after Close: %v, want ErrClosed", err)
	}
}
