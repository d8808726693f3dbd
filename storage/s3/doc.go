// Package s3 is the storage.Store backend for S3-compatible object stores
// (MinIO, AWS S3, …), built on minio-go v7.
//
//	uploader ──PutFileSHA256(file, known sha)──▶ Store ──one PUT, body read from the file──▶ bucket
//	         ──Put(reader)──▶ Store ──PUT (single or multipart)──▶ bucket
//	replay ◀─GetRange─ Store ◀─GET Range: bytes=off-end──── bucket
//
// # Configuration
//
//	s, err := s3.New(ctx, s3.Config{
//		Endpoint:  "127.0.0.1:9000", // host:port, no scheme
//		Bucket:    "xueliang",       // created when missing
//		AccessKey: "…", SecretKey: "…",
//		Secure:    true, CAFile: "/etc/xueliang/ca.pem", // optional private CA
//	}, logger)
//
// Region defaults to us-east-1 (setting it saves minio-go a bucket-location
// request), PartSize to 16 MiB, SinglePutLimit (PutFileSHA256 only) to
// 1 GiB. Path-style addressing is used for anything
// but AWS and Google endpoints (minio-go's "auto" lookup).
//
// # Object layout
//
// Keys are stored as S3 object names unchanged, in the layout of package
// storage:
//
//	<camera>/<YYYY>/<MM>/<DD>/<HH>/<YYYYMMDD>T<HHMMSS>.<nanoseconds>Z.mp4
//
// so that one camera-hour or camera-day is a prefix listing. Keys are
// checked with the same rules as the local backend (storage.CheckKey) before
// any request; List skips objects in the bucket whose names are not valid
// keys. Segments get Content-Type video/mp4, other keys
// application/octet-stream.
//
// # Checksum policy
//
// Every object gets a SHA-256 that the server verifies, and Put and
// PutFileSHA256 return it.
//
// PutFileSHA256(key, path, sha) is for a file whose SHA-256 is already
// known (the spool uploader has it from the index). It hashes nothing on the
// client and buffers nothing:
//
//   - Size <= SinglePutLimit (1 GiB by default; S3 allows 5 GiB): one PUT
//     built and signed here rather than by minio-go (directput.go), whose
//     body is the *os.File itself, so net/http sends it with sendfile(2)
//     over plain HTTP (minio-go wraps bodies, which costs a 32 KiB
//     user-space copy per read: 16 ms of client CPU per 30 MB segment
//     against 5 ms, BenchmarkPutSpoolFile). The request is what minio-go
//     would send, but unsigned: path-style URL, SigV4 with
//     X-Amz-Content-Sha256 = UNSIGNED-PAYLOAD (no streaming signature,
//     which hashes every 64 KiB chunk on plain HTTP) over headers that
//     include x-amz-checksum-sha256 = sha and X-Amz-Meta-Sha256 = sha. The
//     checksum is signed, so a body that does not match it is refused just
//     as a signed payload would be, and MinIO hashes the body once rather
//     than twice (server-cpu-ms/op in BenchmarkPutSpoolFile). On a
//     mismatch the call fails with ErrContentMismatch and the previous
//     object under the key is unchanged. The file is reopened for every attempt, so the PUT is
//     retried like minio-go's requests (below).
//   - Larger: a multipart upload (X-Amz-Meta-Sha256 = sha) whose parts are
//     io.SectionReaders of the file, sent one after the other as unsigned
//     payloads with a CRC32C trailer that the server verifies per part.
//     The bytes sent are hashed on the way (the one SHA-256 pass of this
//     rare path) and compared with sha before CompleteMultipartUpload; on a
//     mismatch, an error or cancellation the upload is aborted, so the
//     previous object stays and no object carries a wrong SHA-256.
//
// Put takes any reader and computes the SHA-256 of what it sends:
//
//   - Seekable body (io.ReadSeeker, e.g. the spool *os.File): Put first
//     hashes the body (one extra local read), seeks back and uploads with
//     user metadata X-Amz-Meta-Sha256 = <hex>. A single PUT (size <=
//     PartSize) also carries x-amz-checksum-sha256, so the server rejects a
//     body that does not match (a file changed under us, a corrupted
//     transfer): the old object stays. A multipart upload carries per-part
//     SHA-256 checksums (verified by the server part by part); if the bytes
//     sent differ from the ones hashed, Put removes the object and fails, so
//     no object ever carries a wrong X-Amz-Meta-Sha256.
//   - Other readers: the body is streamed once with a trailing
//     x-amz-checksum-sha256 (aws-chunked trailer, per part when multipart)
//     that the server verifies. There is no X-Amz-Meta-Sha256 (metadata
//     headers go before the body).
//
// Over plain HTTP minio-go also signs every Put body chunk by chunk (the
// streaming signature: one more SHA-256 pass); PutFileSHA256 has none of
// these passes. BenchmarkPutSpoolFile compares the two for a 30 MB segment.
//
// Stat returns X-Amz-Meta-Sha256 when present, else the server's stored
// SHA-256 checksum when it covers the whole object (single-PUT objects),
// else "" (a streamed multipart object). SendContentMd5 is not used: it
// would buffer whole non-seekable bodies, and the SHA-256 checksum is
// stronger.
//
// # Ranged reads
//
// GetRange sends one GET with "Range: bytes=off-end" (a GET without Range
// only when the whole object, off 0 and length < 0, is asked for) and
// refuses a response that is not the asked range. An empty range costs one
// HEAD (S3 answers 416 for it, which is then resolved with a HEAD: an offset
// equal to the size gives an empty reader, one past it ErrRange). NoSuchKey
// is storage.ErrNotFound; a missing bucket is not.
//
// Stats counts calls, object bytes written and read, HTTP requests and HTTP
// response body bytes, so tests can prove that a replay fetched only the
// ranges it needed.
//
// # Timeouts and retries
//
// The HTTP transport bounds connecting and the TLS handshake (DialTimeout,
// 5 s) and the wait for response headers once a request is written
// (ResponseHeaderTimeout, 10 s). minio-go retries network errors, 5xx and
// throttling up to MaxRetries attempts (3) with a jittered backoff of 200 ms
// doubling up to 1 s, so against a stopped server a call fails within about
// a second ("connection refused"), and against a hung one within roughly
// MaxRetries × (ResponseHeaderTimeout + 1 s). A single PUT of a seekable
// body is retried like other requests (Put rewinds the body, which also
// covers a keep-alive connection that died while idle), and so are
// PutFileSHA256's PUTs (single or parts: a part rewinds its hashes with
// it); any other PUT body is sent once (minio-go cannot rewind a trailer checksum, and multipart
// parts are retried from minio-go's buffers), and retrying the upload is
// then the uploader's job. Put never lets minio-go close the caller's
// reader. TLS certificate errors are retried like network
// errors (minio-go does not recognise Go's wrapped verification error), so
// they too surface after about a second.
//
// # Caveats
//
//   - Reading a GetRange body has no idle timeout: a server that stalls in
//     the middle of a body holds the reader until the caller's context ends.
//     Callers bound reads with a context deadline.
//   - A multipart Put of a reader that is not an io.ReaderAt buffers one
//     part (PartSize bytes) in memory per concurrent Put; keep segments
//     below PartSize to get single PUTs, or use PutFileSHA256, which never
//     buffers.
//   - The ModTime returned by Put is the local clock at completion; Stat and
//     List return the server's Last-Modified.
//   - Close fails later calls with ErrClosed and drops idle connections;
//     readers already returned stay usable until closed.
//   - Overwrites are atomic on the server (S3 semantics): readers see the
//     old or the new object, never a mix.
package s3
