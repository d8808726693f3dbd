package s3

import (
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/minio/minio-go/v7"

	"xueliang/storage"
)

// Limits of PutFileSHA256.
const (
	// DefaultSinglePutLimit is the default Config.SinglePutLimit: files up
	// to 1 GiB are sent with one PUT.
	DefaultSinglePutLimit = 1 << 30
	// MaxSinglePutLimit is the largest object S3 accepts in one PUT (5 GiB).
	MaxSinglePutLimit = 5 << 30
	// maxParts is the S3 limit on the number of parts of an upload.
	maxParts = 10000
	// abortTimeout bounds aborting a failed multipart upload, which runs
	// even when the caller's context is done.
	abortTimeout = 10 * time.Second
)

// ErrContentMismatch is returned (wrapped) by PutFileSHA256 when the file's
// content does not match the SHA-256 it was given. The previous object
// under the key, if any, is unchanged.
var ErrContentMismatch = errors.New("content does not match the given sha256")

// amzChecksumSHA256 and amzChecksumAlgorithm are request headers passed
// through PutObjectOptions.UserMetadata (minio-go sends x-amz-checksum-*
// keys as they are, not as X-Amz-Meta-*).
const (
	amzChecksumSHA256    = "x-amz-checksum-sha256"
	amzChecksumAlgorithm = "x-amz-checksum-algorithm"
)

// crc32c is the Castagnoli table (hardware-accelerated on amd64 and arm64).
var crc32c = crc32.MakeTable(crc32.Castagnoli)

// PutFileSHA256 stores the regular file at path under key when its SHA-256
// is already known (sha256Hex, 64 hex digits), without hashing it on the
// client when it fits a single PUT, and without buffering it in memory in
// any case. See "Checksum policy" in the package doc.
//
//   - Size <= Config.SinglePutLimit: one PUT whose body is read straight
//     from the file, an unsigned payload (no streaming signature, which
//     hashes every chunk) carrying sha256Hex as x-amz-checksum-sha256, a
//     signed header. The server hashes the body and refuses it when it
//     differs: ErrContentMismatch, and the previous object
//     stays. The body is seekable, so minio-go retries the PUT.
//   - Larger files: a multipart upload whose parts are sections of the file,
//     sent one after the other, each with a CRC32C trailer the server
//     verifies. The bytes sent are hashed on the way (the one SHA-256 pass
//     of this path) and compared with sha256Hex before the upload is
//     completed; on a mismatch the upload is aborted (ErrContentMismatch,
//     the previous object stays).
//
// On success the returned ObjectInfo.SHA256 is sha256Hex (lowercase), and
// the object carries it as X-Amz-Meta-Sha256 (returned by Stat). The file
// must not be modified during the call; it is not closed or removed.
func (s *Store) PutFileSHA256(ctx context.Context, key, path, sha256Hex string) (storage.ObjectInfo, error) {
	if err := storage.CheckKey(key); err != nil {
		return storage.ObjectInfo{}, fmt.Errorf("put file: %w", err)
	}
	sum, err := hex.DecodeString(sha256Hex)
	if err != nil || len(sum) != sha256.Size {
		return storage.ObjectInfo{}, fmt.Errorf("put file %s: invalid sha256 %q", key, sha256Hex)
	}
	if err := s.check(ctx); err != nil {
		return storage.ObjectInfo{}, fmt.Errorf("put file %s: %w", key, err)
	}
	info, err := s.putFile(ctx, key, path, sum)
	if err != nil {
		return storage.ObjectInfo{}, s.fail(fmt.Errorf("put file %s: %w", key, err))
	}
	s.c.puts.Add(1)
	s.c.bytesWritten.Add(info.Size)
	return info, nil
}

func (s *Store) putFile(ctx context.Context, key, path string, sum []byte) (storage.ObjectInfo, error) {
	f, st, err := storage.OpenRegular(path)
	if err != nil {
		return storage.ObjectInfo{}, err
	}
	defer f.Close()
	size := st.Size()
	var up minio.UploadInfo
	if size <= s.singlePutLimit {
		err = s.direct.file(ctx, key, path, size, sum, contentType(key))
	} else {
		up, err = s.putFileMultipart(ctx, key, f, size, sum)
	}
	if err != nil {
		return storage.ObjectInfo{}, err
	}
	mod := up.LastModified
	if mod.IsZero() {
		mod = time.Now()
	}
	return storage.ObjectInfo{Key: key, Size: size, ModTime: mod, SHA256: hex.EncodeToString(sum)}, nil
}

// mismatchErr marks the server's refusals of a body that does not hash to
// its announced SHA-256 (signed content hash or x-amz-checksum-sha256).
func mismatchErr(err error) error {
	var er minio.ErrorResponse
	if errors.As(err, &er) {
		switch er.Code {
		case "XAmzContentSHA256Mismatch", "XAmzContentChecksumMismatch", "BadDigest":
			return fmt.Errorf("%w: server refused the body: %w", ErrContentMismatch, err)
		}
	}
	return err
}

// putFileMultipart uploads the file in parts read in place, hashing what
// it sends, and completes the upload only when that hash is sum.
func (s *Store) putFileMultipart(ctx context.Context, key string, f *os.File, size int64, sum []byte) (_ minio.UploadInfo, err error) {
	partSize := max(int64(s.partSize), (size+maxParts-1)/maxParts)
	opts := minio.PutObjectOptions{
		ContentType: contentType(key),
		UserMetadata: map[string]string{
			metaSHA256:           hex.EncodeToString(sum),
			amzChecksumAlgorithm: "CRC32C", // every part carries one
		},
	}
	uploadID, err := s.core.NewMultipartUpload(ctx, s.bucket, key, opts)
	if err != nil {
		return minio.UploadInfo{}, err
	}
	defer func() {
		if err == nil {
			return
		}
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
		defer cancel()
		if aerr := s.core.AbortMultipartUpload(actx, s.bucket, key, uploadID); aerr != nil {
			s.log.Warn("multipart upload abort failed", "key", key, "upload_id", uploadID, "err", aerr)
		}
	}()
	h := sha256.New()
	parts := make([]minio.CompletePart, 0, (size+partSize-1)/partSize)
	for n, off := 1, int64(0); off < size; n, off = n+1, off+partSize {
		if err := ctx.Err(); err != nil {
			return minio.UploadInfo{}, err
		}
		length := min(partSize, size-off)
		body, err := newPartBody(io.NewSectionReader(f, off, length), h)
		if err != nil {
			return minio.UploadInfo{}, err
		}
		p, err := s.core.PutObjectPart(ctx, s.bucket, key, uploadID, n, body, length, minio.PutObjectPartOptions{
			DisableContentSha256: true, // no streaming signature: the CRC32C trailer covers the part
			Trailer:              body.trailer,
		})
		if err != nil {
			return minio.UploadInfo{}, fmt.Errorf("part %d: %w", n, mismatchErr(err))
		}
		if body.n != length {
			return minio.UploadInfo{}, fmt.Errorf("part %d: sent %d of %d bytes", n, body.n, length)
		}
		if got, want := p.ChecksumCRC32C, body.crcBase64(); got != want {
			return minio.UploadInfo{}, fmt.Errorf("part %d: server crc32c %q differs from ours %s", n, got, want)
		}
		parts = append(parts, minio.CompletePart{PartNumber: n, ETag: p.ETag, ChecksumCRC32C: p.ChecksumCRC32C})
		if s.afterPart != nil {
			s.afterPart(n)
		}
	}
	if got := h.Sum(nil); !equalBytes(got, sum) {
		return minio.UploadInfo{}, fmt.Errorf("%w: the file sent hashes to %x, want %x", ErrContentMismatch, got, sum)
	}
	return s.core.CompleteMultipartUpload(ctx, s.bucket, key, uploadID, parts, minio.PutObjectOptions{})
}

// partBody is one part of a multipart upload of a file: it feeds the whole
// file's SHA-256 (shared by the parts, which are sent in order) and the
// part's CRC32C, published in trailer at EOF. Rewinding it (minio-go does
// before every attempt) restores both hashes, so a retried part is hashed
// once.
type partBody struct {
	r       *io.SectionReader
	h       hash.Hash // whole file
	start   []byte    // h's state at the start of the part
	crc     uint32
	n       int64
	trailer http.Header
}

func newPartBody(r *io.SectionReader, h hash.Hash) (*partBody, error) {
	start, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("save sha256 state: %w", err)
	}
	p := &partBody{r: r, h: h, start: start, trailer: make(http.Header, 1)}
	p.publish() // the trailer key must be known before the body is sent
	return p, nil
}

func (p *partBody) crcBase64() string {
	var b [4]byte
	b[0], b[1], b[2], b[3] = byte(p.crc>>24), byte(p.crc>>16), byte(p.crc>>8), byte(p.crc)
	return base64.StdEncoding.EncodeToString(b[:])
}

func (p *partBody) publish() { p.trailer.Set(minio.ChecksumCRC32C.Key(), p.crcBase64()) }

func (p *partBody) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.h.Write(b[:n])
	p.crc = crc32.Update(p.crc, crc32c, b[:n])
	p.n += int64(n)
	if err == io.EOF {
		p.publish()
	}
	return n, err
}

// Seek supports only rewinding to the start of the part.
func (p *partBody) Seek(off int64, whence int) (int64, error) {
	if off != 0 || whence != io.SeekStart {
		return 0, errors.New("part body: only rewinding is supported")
	}
	if _, err := p.r.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	if err := p.h.(encoding.BinaryUnmarshaler).UnmarshalBinary(p.start); err != nil {
		return 0, fmt.Errorf("restore sha256 state: %w", err)
	}
	p.crc, p.n = 0, 0
	p.publish()
	return 0, nil
}
