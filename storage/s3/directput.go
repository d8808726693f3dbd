package s3

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/s3utils"
	"github.com/minio/minio-go/v7/pkg/signer"

	"xueliang/storage"
)

// directPut sends PutFileSHA256's single PUT itself instead of through
// minio-go, for one reason: the request body is the spool *os.File, so
// net/http hands it to the kernel (sendfile(2)) over plain HTTP rather than
// copying 30 MB per segment through 32 KiB user-space buffers (minio-go
// wraps every body in its own readers). The request: path-style URL,
// signature V4 with X-Amz-Content-Sha256 = UNSIGNED-PAYLOAD over the
// headers, among them x-amz-checksum-sha256 and X-Amz-Meta-Sha256 = the
// known SHA-256; the server hashes the body once and refuses it when it
// differs from the checksum. (Signing the payload hash too would make
// MinIO hash every body a second time for the same verdict: ≈10 % of its
// CPU per PUT, BenchmarkPutSpoolFile.) It is
// retried like minio-go retries (network errors, 5xx, throttling; backoff
// 200 ms doubling to 1 s with jitter), reopening the file every attempt.
type directPut struct {
	base                   string // scheme://endpoint/bucket/
	access, secret, region string
	attempts               int
	rt                     http.RoundTripper
	// signedPayload signs the body's SHA-256 (X-Amz-Content-Sha256 = sha)
	// instead of UNSIGNED-PAYLOAD. The checksum header is signed either way
	// and the server refuses a body that does not match it, so both reject
	// the same bodies; but a signed payload makes MinIO hash the body twice
	// (once for the signature, once for the checksum). Only the benchmark
	// sets it, to measure that (BenchmarkPutSpoolFile).
	signedPayload bool
}

// errBodyLimit bounds the error document read from a refused PUT.
const errBodyLimit = 64 << 10

// file PUTs the size bytes of the file at path under key.
func (d *directPut) file(ctx context.Context, key, path string, size int64, sum []byte, ctype string) error {
	hexSum, b64Sum := hex.EncodeToString(sum), base64.StdEncoding.EncodeToString(sum)
	url := d.base + s3utils.EncodePath(key)
	backoff := 200 * time.Millisecond
	for attempt := 1; ; attempt++ {
		retry, err := d.once(ctx, url, path, size, hexSum, b64Sum, ctype)
		if err == nil {
			return nil
		}
		if cerr := ctx.Err(); cerr != nil {
			return fmt.Errorf("PUT %s: %w", url, cerr)
		}
		if !retry || attempt >= d.attempts {
			return err
		}
		t := time.NewTimer(backoff/2 + rand.N(backoff/2))
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("PUT %s: %w (after %w)", url, ctx.Err(), err)
		case <-t.C:
		}
		backoff = min(2*backoff, time.Second)
	}
}

// once sends one attempt; retry tells whether a failure may be retried.
func (d *directPut) once(ctx context.Context, url, path string, size int64, hexSum, b64Sum, ctype string) (retry bool, err error) {
	// A fresh descriptor per attempt: the transport closes the body, and
	// sendfile starts at the descriptor's offset.
	f, st, err := storage.OpenRegular(path)
	if err != nil {
		return false, err
	}
	if st.Size() != size {
		f.Close()
		return false, fmt.Errorf("%s changed size from %d to %d bytes", path, size, st.Size())
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, url, f)
	if err != nil {
		f.Close()
		return false, err
	}
	if size == 0 {
		f.Close()
		req.Body = http.NoBody // with ContentLength 0 and a non-nil body, net/http would chunk
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", ctype)
	payload := "UNSIGNED-PAYLOAD"
	if d.signedPayload {
		payload = hexSum
	}
	req.Header.Set("X-Amz-Content-Sha256", payload)
	req.Header.Set(amzChecksumSHA256, b64Sum) // signed: SignV4 signs every x-amz-* header
	req.Header.Set("X-Amz-Meta-"+metaSHA256, hexSum)
	req.Header.Set("User-Agent", "xueliang")
	req = signer.SignV4(*req, d.access, d.secret, "", d.region)
	resp, err := d.rt.RoundTrip(req)
	if err != nil {
		return true, fmt.Errorf("PUT %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		io.Copy(io.Discard, io.LimitReader(resp.Body, errBodyLimit)) // lets the connection be reused
		if got := resp.Header.Get(amzChecksumSHA256); got != "" && got != b64Sum {
			return false, fmt.Errorf("server checksum %s differs from ours %s", got, b64Sum)
		}
		return false, nil
	}
	er := minio.ErrorResponse{StatusCode: resp.StatusCode}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, errBodyLimit))
	if xml.Unmarshal(body, &er) != nil || er.Code == "" {
		er.Code, er.Message = resp.Status, string(body)
	}
	er.StatusCode = resp.StatusCode
	return retryableStatus(resp.StatusCode) || retryableCode(er.Code), mismatchErr(fmt.Errorf("PUT %s: %w", url, er))
}

// retryableStatus and retryableCode are the failures minio-go retries.
func retryableStatus(code int) bool {
	switch code {
	case http.StatusRequestTimeout, http.StatusTooManyRequests, 499, http.StatusInternalServerError,
		http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout, 520:
		return true
	}
	return false
}

func retryableCode(code string) bool {
	switch code {
	case "RequestError", "RequestTimeout", "Throttling", "ThrottlingException", "RequestLimitExceeded",
		"RequestThrottled", "InternalError", "SlowDown":
		return true
	}
	return false
}
