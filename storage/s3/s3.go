package s3

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"

	"xueliang/storage"
)

// Errors returned (wrapped) by Store methods besides storage.ErrNotFound.
var (
	// ErrRange is returned by GetRange for an offset that is negative or
	// past the end of the object.
	ErrRange = errors.New("range not satisfiable")
	// ErrClosed is returned by every method called after Close.
	ErrClosed = errors.New("s3 store closed")
)

// metaSHA256 is the user-metadata name (header X-Amz-Meta-Sha256) holding
// the lowercase hex SHA-256 of the object.
const metaSHA256 = "Sha256"

// Defaults of Config fields.
const (
	DefaultRegion                = "us-east-1"
	DefaultPartSize              = 16 << 20
	DefaultDialTimeout           = 5 * time.Second
	DefaultResponseHeaderTimeout = 10 * time.Second
	DefaultMaxRetries            = 3
	minPartSize                  = 5 << 20
)

// Config configures a Store. Endpoint, Bucket, AccessKey and SecretKey are
// required.
type Config struct {
	// Endpoint is host[:port] of the S3 API, without a scheme
	// (e.g. "127.0.0.1:9000" or "s3.example.net").
	Endpoint string
	// Bucket holds the objects. It is created by New when missing.
	Bucket string
	// AccessKey and SecretKey are the static credentials (signature V4).
	AccessKey string
	SecretKey string
	// Secure selects HTTPS. It defaults to false (plain HTTP).
	Secure bool
	// CAFile is a PEM file of CA certificates trusted for HTTPS in addition
	// to the system roots. It defaults to none (system roots only).
	CAFile string
	// EvidenceBucket, when set, receives server-side copies of the
	// segments an evidence lock covers, under legal hold (CopyToEvidence);
	// it is created with Object Lock when missing (the recording bucket
	// stays unversioned, for cheap deletes), and GetRange reads from it
	// when an object is missing from Bucket. It defaults to none.
	EvidenceBucket string
	// Region is the bucket's region, sent in signatures and used when
	// creating the bucket; setting it also saves a bucket-location request.
	// It defaults to "us-east-1" (MinIO's default).
	Region string
	// PartSize is the multipart threshold and part size: an object of at
	// most PartSize bytes is stored with a single PUT, a larger one with a
	// multipart upload of PartSize parts (each buffered in memory when the
	// reader is not an io.ReaderAt). At least 5 MiB. It defaults to 16 MiB
	// (minio-go's own default).
	PartSize uint64
	// SinglePutLimit is the largest file PutFileSHA256 sends with a single
	// PUT (read in place, not hashed by the client); larger files go as a
	// multipart upload of PartSize parts. At most 5 GiB (MaxSinglePutLimit,
	// the S3 limit). It defaults to 1 GiB (DefaultSinglePutLimit). Put is
	// not affected: its threshold is PartSize.
	SinglePutLimit int64
	// DialTimeout bounds establishing a TCP connection and the TLS
	// handshake. It defaults to 5 s.
	DialTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for the response headers once a
	// request (including a PUT body) is written. It defaults to 10 s.
	ResponseHeaderTimeout time.Duration
	// MaxRetries is the number of attempts minio-go makes for one request
	// (network errors, 5xx, throttling), with a backoff of 200 ms doubling
	// up to 1 s. PUT bodies are sent once (see the package doc). It
	// defaults to 3.
	MaxRetries int
}

func (c *Config) setDefaults() {
	if c.Region == "" {
		c.Region = DefaultRegion
	}
	if c.PartSize == 0 {
		c.PartSize = DefaultPartSize
	}
	if c.SinglePutLimit == 0 {
		c.SinglePutLimit = DefaultSinglePutLimit
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.ResponseHeaderTimeout == 0 {
		c.ResponseHeaderTimeout = DefaultResponseHeaderTimeout
	}
	if c.MaxRetries == 0 {
		c.MaxRetries = DefaultMaxRetries
	}
}

// validate reports every problem at once.
func (c *Config) validate() error {
	var errs []error
	switch {
	case c.Endpoint == "":
		errs = append(errs, errors.New("endpoint is required"))
	case strings.Contains(c.Endpoint, "://") || strings.ContainsAny(c.Endpoint, "/?#"):
		errs = append(errs, fmt.Errorf("endpoint %q must be host[:port] without scheme or path (use secure for https)", c.Endpoint))
	}
	if c.Bucket == "" {
		errs = append(errs, errors.New("bucket is required"))
	} else if err := s3utils.CheckValidBucketNameStrict(c.Bucket); err != nil {
		errs = append(errs, fmt.Errorf("bucket %q: %w", c.Bucket, err))
	}
	if c.AccessKey == "" || c.SecretKey == "" {
		errs = append(errs, errors.New("access key and secret key are required"))
	}
	if c.PartSize < minPartSize {
		errs = append(errs, fmt.Errorf("part size %d is below the S3 minimum of 5 MiB", c.PartSize))
	}
	if c.SinglePutLimit < 0 || c.SinglePutLimit > MaxSinglePutLimit {
		errs = append(errs, fmt.Errorf("single put limit %d is outside [1, 5 GiB]", c.SinglePutLimit))
	}
	if c.DialTimeout < 0 || c.ResponseHeaderTimeout < 0 {
		errs = append(errs, errors.New("timeouts must not be negative"))
	}
	if c.MaxRetries < 0 {
		errs = append(errs, fmt.Errorf("max retries %d is negative", c.MaxRetries))
	}
	if c.CAFile != "" && !c.Secure {
		errs = append(errs, errors.New("ca file is set but secure is false"))
	}
	return errors.Join(errs...)
}

// Store is a storage.Store on an S3-compatible object store (MinIO, AWS S3,
// …) through minio-go. Object keys are used as S3 object names unchanged.
type Store struct {
	// evidence is Config.EvidenceBucket.
	evidence       string
	client         *minio.Client
	core           minio.Core
	bucket         string
	partSize       uint64
	singlePutLimit int64
	tr             *http.Transport
	ct             *countingTransport // wraps tr; tests may wrap its rt
	direct         directPut          // PutFileSHA256's single PUT
	log            *slog.Logger
	closed         atomic.Bool
	c              counters

	// afterPart, when set (by tests), is called after each part of a
	// PutFileSHA256 multipart upload is sent.
	afterPart func(part int)
}

var _ storage.Store = (*Store)(nil)

// Stats are cumulative counters of a Store, for tests and metrics.
type Stats struct {
	// Successful calls per method.
	Puts, Gets, Heads, Lists, Deletes int64
	// Errors counts failed calls (ErrNotFound from Stat and GetRange, and
	// invalid keys, not included).
	Errors int64
	// BytesWritten is the object bytes stored by successful Puts.
	BytesWritten int64
	// BytesRead is the object bytes delivered by GetRange readers.
	BytesRead int64
	// HTTPRequests is the number of HTTP requests sent, retries included.
	HTTPRequests int64
	// HTTPBytesIn is the response body bytes received over HTTP: object
	// data and XML (listings, errors).
	HTTPBytesIn int64
}

type counters struct {
	puts, gets, heads, lists, deletes, errors atomic.Int64
	bytesWritten, bytesRead                   atomic.Int64
	httpRequests, httpBytesIn                 atomic.Int64
}

// Stats returns a snapshot of the counters.
func (s *Store) Stats() Stats {
	return Stats{
		Puts:         s.c.puts.Load(),
		Gets:         s.c.gets.Load(),
		Heads:        s.c.heads.Load(),
		Lists:        s.c.lists.Load(),
		Deletes:      s.c.deletes.Load(),
		Errors:       s.c.errors.Load(),
		BytesWritten: s.c.bytesWritten.Load(),
		BytesRead:    s.c.bytesRead.Load(),
		HTTPRequests: s.c.httpRequests.Load(),
		HTTPBytesIn:  s.c.httpBytesIn.Load(),
	}
}

// New connects to the store described by cfg and creates the bucket when it
// does not exist. ctx bounds the connection check and bucket creation. A nil
// logger discards.
func New(ctx context.Context, cfg Config, logger *slog.Logger) (*Store, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("s3 config: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	tr, err := newTransport(cfg)
	if err != nil {
		return nil, fmt.Errorf("s3 config: %w", err)
	}
	s := &Store{
		bucket:         cfg.Bucket,
		partSize:       cfg.PartSize,
		singlePutLimit: cfg.SinglePutLimit,
		tr:             tr,
		log:            logger.With("component", "storage/s3", "endpoint", cfg.Endpoint, "bucket", cfg.Bucket),
	}
	s.ct = &countingTransport{rt: tr, c: &s.c}
	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:           credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:          cfg.Secure,
		Transport:       s.ct,
		Region:          cfg.Region,
		TrailingHeaders: true,
		MaxRetries:      cfg.MaxRetries,
	})
	if err != nil {
		tr.CloseIdleConnections()
		return nil, fmt.Errorf("s3 client: %w", err)
	}
	s.client, s.core = client, minio.Core{Client: client}
	s.direct = directPut{
		base:   client.EndpointURL().String() + "/" + cfg.Bucket + "/",
		access: cfg.AccessKey, secret: cfg.SecretKey, region: cfg.Region,
		attempts: cfg.MaxRetries, rt: s.ct,
	}
	if err := s.ensureBucket(ctx, cfg.Region); err != nil {
		tr.CloseIdleConnections()
		return nil, err
	}
	if cfg.EvidenceBucket != "" {
		if err := s.ensureEvidenceBucket(ctx, cfg.EvidenceBucket, cfg.Region); err != nil {
			tr.CloseIdleConnections()
			return nil, err
		}
		s.evidence = cfg.EvidenceBucket
	}
	return s, nil
}

func newTransport(cfg Config) (*http.Transport, error) {
	tr := &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   cfg.DialTimeout,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		TLSHandshakeTimeout:   cfg.DialTimeout,
		ResponseHeaderTimeout: cfg.ResponseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConns:          64,
		MaxIdleConnsPerHost:   16,
		// Object bytes must arrive as stored: no transparent gzip, so that
		// ranges and byte counts mean what they say.
		DisableCompression: true,
	}
	if cfg.Secure {
		tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if cfg.CAFile != "" {
			pem, err := os.ReadFile(cfg.CAFile)
			if err != nil {
				return nil, fmt.Errorf("ca file: %w", err)
			}
			pool, err := x509.SystemCertPool()
			if err != nil || pool == nil {
				pool = x509.NewCertPool()
			}
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("ca file %s: no PEM certificate found", cfg.CAFile)
			}
			tlsCfg.RootCAs = pool
		}
		tr.TLSClientConfig = tlsCfg
	}
	return tr, nil
}

func (s *Store) ensureEvidenceBucket(ctx context.Context, bucket, region string) error {
	ok, err := s.client.BucketExists(ctx, bucket)
	if err != nil {
		return fmt.Errorf("s3 evidence bucket %s: %w", bucket, err)
	}
	if ok {
		if _, _, _, _, err := s.client.GetObjectLockConfig(ctx, bucket); err != nil {
			return fmt.Errorf("s3 evidence bucket %s has no object lock (create it with object locking): %w", bucket, err)
		}
		return nil
	}
	err = s.client.MakeBucket(ctx, bucket, minio.MakeBucketOptions{Region: region, ObjectLocking: true})
	if err != nil {
		var er minio.ErrorResponse
		if errors.As(err, &er) && (er.Code == minio.BucketAlreadyOwnedByYou) {
			return nil
		}
		return fmt.Errorf("s3 create evidence bucket %s: %w", bucket, err)
	}
	s.log.Info("evidence bucket created", "evidence_bucket", bucket)
	return nil
}

// CopyToEvidence copies the object server-side into the evidence bucket
// and puts the copy under legal hold (it cannot be deleted until the hold
// is released, whatever happens to the recording bucket). Copying again
// is harmless: Object Lock buckets are versioned, the newest copy is read.
func (s *Store) CopyToEvidence(ctx context.Context, key string) error {
	if s.evidence == "" {
		return errors.New("copy to evidence: no evidence bucket configured")
	}
	if err := storage.CheckKey(key); err != nil {
		return fmt.Errorf("copy to evidence: %w", err)
	}
	if err := s.check(ctx); err != nil {
		return fmt.Errorf("copy to evidence %s: %w", key, err)
	}
	on := minio.LegalHoldEnabled
	_, err := s.client.CopyObject(ctx, minio.CopyDestOptions{Bucket: s.evidence, Object: key, LegalHold: on},
		minio.CopySrcOptions{Bucket: s.bucket, Object: key})
	if err != nil {
		return s.fail(fmt.Errorf("copy to evidence %s: %w", key, mapErr(err)))
	}
	if err := s.client.PutObjectLegalHold(ctx, s.evidence, key, minio.PutObjectLegalHoldOptions{Status: &on}); err != nil {
		return s.fail(fmt.Errorf("legal hold on %s: %w", key, mapErr(err)))
	}
	return nil
}

// EvidenceBucket returns the evidence bucket's name ("" when none).
func (s *Store) EvidenceBucket() string { return s.evidence }

func (s *Store) ensureBucket(ctx context.Context, region string) error {
	ok, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return fmt.Errorf("s3 bucket %s: %w", s.bucket, err)
	}
	if ok {
		return nil
	}
	err = s.client.MakeBucket(ctx, s.bucket, minio.MakeBucketOptions{Region: region})
	if err != nil {
		var er minio.ErrorResponse
		if errors.As(err, &er) && (er.Code == minio.BucketAlreadyOwnedByYou) {
			return nil // created concurrently
		}
		return fmt.Errorf("s3 create bucket %s: %w", s.bucket, err)
	}
	s.log.Info("bucket created")
	return nil
}

// Bucket returns the bucket name.
func (s *Store) Bucket() string { return s.bucket }

// check returns ErrClosed or ctx's error.
func (s *Store) check(ctx context.Context) error {
	if s.closed.Load() {
		return ErrClosed
	}
	return ctx.Err()
}

// fail counts a failed call and returns err.
func (s *Store) fail(err error) error {
	s.c.errors.Add(1)
	return err
}

// Put implements storage.Store with a single PUT up to PartSize bytes and a
// multipart upload above. See the package doc for the checksum policy.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64) (storage.ObjectInfo, error) {
	if err := storage.CheckKey(key); err != nil {
		return storage.ObjectInfo{}, fmt.Errorf("put: %w", err)
	}
	if size < 0 {
		return storage.ObjectInfo{}, fmt.Errorf("put %s: negative size %d", key, size)
	}
	if err := s.check(ctx); err != nil {
		return storage.ObjectInfo{}, fmt.Errorf("put %s: %w", key, err)
	}
	info, err := s.put(ctx, key, r, size)
	if err != nil {
		return storage.ObjectInfo{}, s.fail(fmt.Errorf("put %s: %w", key, err))
	}
	s.c.puts.Add(1)
	s.c.bytesWritten.Add(size)
	return info, nil
}

func (s *Store) put(ctx context.Context, key string, r io.Reader, size int64) (storage.ObjectInfo, error) {
	opts := minio.PutObjectOptions{
		ContentType: contentType(key),
		PartSize:    s.partSize,
	}
	single := uint64(size) <= s.partSize
	var pre []byte // SHA-256 known before the upload
	if rs, ok := r.(io.ReadSeeker); ok {
		sum, err := prehash(ctx, rs, size)
		if err != nil {
			return storage.ObjectInfo{}, err
		}
		pre = sum
		opts.UserMetadata = map[string]string{metaSHA256: hex.EncodeToString(sum)}
		if single {
			// Sent as a header: the server verifies the body against it.
			opts.UserMetadata["x-amz-checksum-sha256"] = base64.StdEncoding.EncodeToString(sum)
		} else {
			opts.Checksum = minio.ChecksumSHA256 // per part
		}
	} else {
		// Sent as a trailer computed while streaming (per part when
		// multipart): the server verifies it.
		opts.Checksum = minio.ChecksumSHA256
	}
	// The body is never a Closer, so that minio-go leaves the caller's
	// reader open. It is a Seeker (which lets minio-go retry the request,
	// e.g. after a stale keep-alive connection) only for a single PUT of a
	// seekable reader: minio-go cannot rewind a trailer checksum, and a
	// multipart upload retries parts from its own buffers.
	body := &putReader{ctx: ctx, r: r, remain: size, h: sha256.New()}
	var upload io.Reader = body
	if rs, ok := r.(io.ReadSeeker); ok && single {
		start, err := rs.Seek(0, io.SeekCurrent)
		if err != nil {
			return storage.ObjectInfo{}, fmt.Errorf("seek body: %w", err)
		}
		upload = &seekPutReader{putReader: body, rs: rs, start: start, size: size}
	}
	up, err := s.client.PutObject(ctx, s.bucket, key, upload, size, opts)
	if err != nil {
		if body.err != nil {
			return storage.ObjectInfo{}, errors.Join(body.err, err)
		}
		return storage.ObjectInfo{}, err
	}
	if body.remain != 0 {
		// Cannot happen with a conforming client: the server took fewer
		// bytes than announced.
		return storage.ObjectInfo{}, fmt.Errorf("upload ended with %d bytes unsent", body.remain)
	}
	sum := body.h.Sum(nil)
	if pre != nil && !equalBytes(pre, sum) {
		// Only possible for a multipart upload (a single PUT carries the
		// SHA-256 as a header and the server rejects the mismatch): the
		// stored object would carry a wrong X-Amz-Meta-Sha256, remove it.
		err := errors.New("content changed between hashing and upload")
		if derr := s.client.RemoveObject(context.WithoutCancel(ctx), s.bucket, key, minio.RemoveObjectOptions{}); derr != nil {
			err = errors.Join(err, fmt.Errorf("remove mislabelled object: %w", derr))
		}
		return storage.ObjectInfo{}, err
	}
	if got := up.ChecksumSHA256; got != "" && !strings.Contains(got, "-") &&
		got != base64.StdEncoding.EncodeToString(sum) {
		return storage.ObjectInfo{}, fmt.Errorf("server checksum %s differs from ours", got)
	}
	mod := up.LastModified
	if mod.IsZero() {
		mod = time.Now()
	}
	return storage.ObjectInfo{Key: key, Size: size, ModTime: mod, SHA256: hex.EncodeToString(sum)}, nil
}

// prehash hashes the next size bytes of rs and seeks back.
func prehash(ctx context.Context, rs io.ReadSeeker, size int64) ([]byte, error) {
	start, err := rs.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, fmt.Errorf("seek body: %w", err)
	}
	h := sha256.New()
	n, err := io.CopyN(h, storage.ContextReader(ctx, rs), size)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("short body, %d of %d bytes: %w", n, size, io.ErrUnexpectedEOF)
		}
		return nil, fmt.Errorf("hash body: %w", err)
	}
	if _, err := rs.Seek(start, io.SeekStart); err != nil {
		return nil, fmt.Errorf("seek body: %w", err)
	}
	return h.Sum(nil), nil
}

func equalBytes(a, b []byte) bool { return string(a) == string(b) }

func contentType(key string) string {
	if strings.HasSuffix(key, ".mp4") {
		return "video/mp4"
	}
	return "application/octet-stream"
}

// putReader feeds exactly the announced size to minio-go, hashing it, and
// turns a premature EOF into io.ErrUnexpectedEOF so that the upload fails.
type putReader struct {
	ctx    context.Context
	r      io.Reader
	remain int64
	h      hash.Hash
	err    error // first error from r or ctx, kept for the caller
}

func (p *putReader) Read(b []byte) (int, error) {
	if p.err != nil {
		return 0, p.err
	}
	if p.remain <= 0 {
		return 0, io.EOF
	}
	if err := p.ctx.Err(); err != nil {
		p.err = err
		return 0, err
	}
	if int64(len(b)) > p.remain {
		b = b[:p.remain]
	}
	n, err := p.r.Read(b)
	p.h.Write(b[:n])
	p.remain -= int64(n)
	if p.remain == 0 {
		return n, io.EOF
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		p.err = fmt.Errorf("read body: %w", err)
		return n, p.err
	}
	return n, nil
}

// seekPutReader is a putReader that can be rewound to its start, which is
// all minio-go asks of a retryable body.
type seekPutReader struct {
	*putReader
	rs    io.ReadSeeker
	start int64
	size  int64
}

func (p *seekPutReader) Seek(off int64, whence int) (int64, error) {
	if off != 0 || whence != io.SeekStart {
		return 0, errors.New("put body: only rewinding is supported")
	}
	if _, err := p.rs.Seek(p.start, io.SeekStart); err != nil {
		return 0, err
	}
	p.remain, p.err = p.size, nil
	p.h.Reset()
	return 0, nil
}

// GetRange implements storage.Store with one ranged GET (a whole-object GET
// only when the whole object is asked for).
func (s *Store) GetRange(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	if err := storage.CheckKey(key); err != nil {
		return nil, fmt.Errorf("get: %w", err)
	}
	if err := s.check(ctx); err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	if off < 0 {
		return nil, fmt.Errorf("get %s: %w: offset %d", key, ErrRange, off)
	}
	rc, err := s.getRange(ctx, s.bucket, key, off, length)
	if errors.Is(err, storage.ErrNotFound) && s.evidence != "" {
		// Footage under an evidence lock may survive only in its copy.
		rc, err = s.getRange(ctx, s.evidence, key, off, length)
	}
	if err != nil {
		if !errors.Is(err, storage.ErrNotFound) {
			s.c.errors.Add(1)
		}
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	s.c.gets.Add(1)
	return rc, nil
}

func (s *Store) getRange(ctx context.Context, bucket, key string, off, length int64) (io.ReadCloser, error) {
	if length == 0 {
		// Nothing to transfer; only existence and the offset are checked.
		info, err := s.headIn(ctx, bucket, key)
		if err != nil {
			return nil, err
		}
		if off > info.Size {
			return nil, fmt.Errorf("%w: offset %d, size %d", ErrRange, off, info.Size)
		}
		return io.NopCloser(strings.NewReader("")), nil
	}
	if length > 0 && length > math.MaxInt64-off {
		length = -1 // to the end
	}
	var opts minio.GetObjectOptions
	ranged := off > 0 || length > 0
	if ranged {
		r := fmt.Sprintf("bytes=%d-", off)
		if length > 0 {
			r += fmt.Sprint(off + length - 1)
		}
		opts.Set("Range", r)
	}
	body, _, hdr, err := s.core.GetObject(ctx, bucket, key, opts)
	if err != nil {
		var er minio.ErrorResponse
		if errors.As(err, &er) && (er.Code == minio.InvalidRange || er.StatusCode == http.StatusRequestedRangeNotSatisfiable) {
			// Either off is past the end, or off == size (an empty range,
			// which S3 refuses to serve).
			info, herr := s.headIn(ctx, bucket, key)
			if herr != nil {
				return nil, herr
			}
			if off == info.Size {
				return io.NopCloser(strings.NewReader("")), nil
			}
			return nil, fmt.Errorf("%w: offset %d, size %d", ErrRange, off, info.Size)
		}
		return nil, mapErr(err)
	}
	if ranged {
		// Never accept a whole object in place of a range.
		if cr := hdr.Get("Content-Range"); !strings.HasPrefix(cr, fmt.Sprintf("bytes %d-", off)) {
			body.Close()
			return nil, fmt.Errorf("server ignored range %s (content-range %q)", opts.Header().Get("Range"), cr)
		}
	}
	return &getReader{r: body, c: &s.c}, nil
}

// getReader counts the bytes delivered.
type getReader struct {
	r io.ReadCloser
	c *counters
}

func (g *getReader) Read(b []byte) (int, error) {
	n, err := g.r.Read(b)
	g.c.bytesRead.Add(int64(n))
	return n, err
}

func (g *getReader) Close() error { return g.r.Close() }

// Stat implements storage.Store with one HEAD request. SHA256 comes from
// the X-Amz-Meta-Sha256 metadata, or else from the object's full-object
// SHA-256 checksum; it is empty for objects that have neither.
func (s *Store) Stat(ctx context.Context, key string) (storage.ObjectInfo, error) {
	if err := storage.CheckKey(key); err != nil {
		return storage.ObjectInfo{}, fmt.Errorf("stat: %w", err)
	}
	if err := s.check(ctx); err != nil {
		return storage.ObjectInfo{}, fmt.Errorf("stat %s: %w", key, err)
	}
	info, err := s.head(ctx, key)
	if err != nil {
		if !errors.Is(err, storage.ErrNotFound) {
			s.c.errors.Add(1)
		}
		return storage.ObjectInfo{}, fmt.Errorf("stat %s: %w", key, err)
	}
	s.c.heads.Add(1)
	return info, nil
}

func (s *Store) head(ctx context.Context, key string) (storage.ObjectInfo, error) {
	return s.headIn(ctx, s.bucket, key)
}

func (s *Store) headIn(ctx context.Context, bucket, key string) (storage.ObjectInfo, error) {
	opts := minio.StatObjectOptions{Checksum: true}
	oi, err := s.client.StatObject(ctx, bucket, key, opts)
	if err != nil {
		return storage.ObjectInfo{}, mapErr(err)
	}
	return storage.ObjectInfo{Key: key, Size: oi.Size, ModTime: oi.LastModified, SHA256: sha256Of(oi)}, nil
}

// sha256Of returns the object's hex SHA-256 from its metadata or checksum.
func sha256Of(oi minio.ObjectInfo) string {
	for k, v := range oi.UserMetadata {
		if strings.EqualFold(k, metaSHA256) && len(v) == 64 {
			if _, err := hex.DecodeString(v); err == nil {
				return strings.ToLower(v)
			}
		}
	}
	if c := oi.ChecksumSHA256; c != "" && !strings.Contains(c, "-") {
		if b, err := base64.StdEncoding.DecodeString(c); err == nil && len(b) == sha256.Size {
			return hex.EncodeToString(b)
		}
	}
	return ""
}

// Delete implements storage.Store; S3 deletes are idempotent.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := storage.CheckKey(key); err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	if err := s.check(ctx); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	if err := s.client.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{}); err != nil {
		err = mapErr(err)
		if errors.Is(err, storage.ErrNotFound) {
			return nil
		}
		return s.fail(fmt.Errorf("delete %s: %w", key, err))
	}
	s.c.deletes.Add(1)
	return nil
}

// List implements storage.Store with ListObjectsV2 (recursive, 1000 keys
// per request), which S3 returns in lexical (UTF-8 byte) order. Objects
// whose names are not valid keys (written by something else) are skipped.
func (s *Store) List(ctx context.Context, prefix string, fn func(storage.ObjectInfo) error) error {
	if err := s.check(ctx); err != nil {
		return fmt.Errorf("list %q: %w", prefix, err)
	}
	if !possiblePrefix(prefix) {
		s.c.lists.Add(1)
		return nil // no valid key starts with it
	}
	lctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops minio-go's listing when fn stops the walk
	for oi := range s.client.ListObjectsIter(lctx, s.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if oi.Err != nil {
			return s.fail(fmt.Errorf("list %q: %w", prefix, mapErr(oi.Err)))
		}
		if storage.CheckKey(oi.Key) != nil {
			continue
		}
		if err := fn(storage.ObjectInfo{Key: oi.Key, Size: oi.Size, ModTime: oi.LastModified}); err != nil {
			return err
		}
	}
	// The iterator ends silently when ctx is canceled.
	if err := ctx.Err(); err != nil {
		return s.fail(fmt.Errorf("list %q: %w", prefix, err))
	}
	s.c.lists.Add(1)
	return nil
}

// possiblePrefix reports whether some valid key starts with prefix: the
// part up to the last '/' must be a valid key and the rest made of valid
// key characters.
func possiblePrefix(prefix string) bool {
	rest := prefix
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		if storage.CheckKey(prefix[:i]) != nil {
			return false
		}
		rest = prefix[i+1:]
	}
	if rest == "" {
		return true
	}
	// A segment with the characters of rest and one more letter; "." and
	// ".." are fine as the start of a longer segment.
	return len(rest) < 255 && storage.CheckKey(rest+"x") == nil
}

// Close implements storage.Store: later calls fail with ErrClosed and idle
// connections are closed. Readers returned by GetRange stay usable until
// they are closed. Safe to call twice.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.tr.CloseIdleConnections()
	return nil
}

// mapErr maps "no such key" responses to storage.ErrNotFound, keeping the
// S3 error text.
func mapErr(err error) error {
	var er minio.ErrorResponse
	if errors.As(err, &er) {
		switch {
		case er.Code == minio.NoSuchKey, er.Code == "NoSuchVersion",
			er.StatusCode == http.StatusNotFound && er.Code != minio.NoSuchBucket:
			return fmt.Errorf("%w (%s)", storage.ErrNotFound, er.Code)
		}
	}
	return err
}

// countingTransport counts HTTP requests and response body bytes.
type countingTransport struct {
	rt http.RoundTripper
	c  *counters
}

func (t *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	t.c.httpRequests.Add(1)
	resp, err := t.rt.RoundTrip(req)
	if err != nil || resp.Body == nil {
		return resp, err
	}
	resp.Body = &countingBody{ReadCloser: resp.Body, n: &t.c.httpBytesIn}
	return resp, nil
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// maxRemoveBatch is the most keys one DeleteObjects request may carry.
const maxRemoveBatch = 1000

// DeleteKeys removes the objects with RemoveObjects, in DeleteObjects
// requests of at most 1,000 keys. Missing objects are not an error; the
// first per-key failure is returned (the others are still attempted).
func (s *Store) DeleteKeys(ctx context.Context, keys []string) error {
	for _, k := range keys {
		if err := storage.CheckKey(k); err != nil {
			return fmt.Errorf("delete keys: %w", err)
		}
	}
	if err := s.check(ctx); err != nil {
		return fmt.Errorf("delete keys: %w", err)
	}
	var errs []error
	for len(keys) > 0 {
		batch := keys[:min(len(keys), maxRemoveBatch)]
		keys = keys[len(batch):]
		ch := make(chan minio.ObjectInfo, len(batch))
		for _, k := range batch {
			ch <- minio.ObjectInfo{Key: k}
		}
		close(ch)
		failed := 0
		for e := range s.client.RemoveObjects(ctx, s.bucket, ch, minio.RemoveObjectsOptions{}) {
			if err := mapErr(e.Err); e.Err != nil && !errors.Is(err, storage.ErrNotFound) {
				failed++
				if len(errs) < 5 {
					errs = append(errs, fmt.Errorf("delete %s: %w", e.ObjectName, err))
				}
			}
		}
		s.c.deletes.Add(int64(len(batch) - failed))
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
	}
	if len(errs) > 0 {
		return s.fail(fmt.Errorf("delete keys: %w", errors.Join(errs...)))
	}
	return nil
}
