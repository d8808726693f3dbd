package s3

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"syscall"
	"testing"
	"time"

	"xueliang/storage/miniotest"
)

// BenchmarkPutSpoolFile uploads a 30 MB spool file (60 s at 4 Mbit/s) to a
// real MinIO with the default configuration, the way the uploader does:
//
//   - tee: Put of io.TeeReader(file, sha256) (the uploader before
//     PutFileSHA256): a non-seekable stream, so a multipart upload with
//     16 MiB part buffers, a streaming signature and SHA-256 checksums
//     computed on the client.
//   - known-sha256: PutFileSHA256 with the hash the segmenter computed:
//     one PUT read in place, verified by the server.
func BenchmarkPutSpoolFile(b *testing.B) {
	const size = 30_000_000
	srv := miniotest.Start(b)
	s, err := New(context.Background(), Config{
		Endpoint: srv.Endpoint, Bucket: "bench", AccessKey: srv.AccessKey, SecretKey: srv.SecretKey,
	}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	data := payload(size, 7)
	sum := sha256.Sum256(data)
	hexSum := hex.EncodeToString(sum[:])
	path := writeFile(b, data)
	const key = "cam/2024/01/02/03/20240102T030405.000000000Z.mp4"
	ctx := context.Background()

	b.Run("tee", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(size)
		defer reportClientCPU(b)()
		for b.Loop() {
			f, err := os.Open(path)
			if err != nil {
				b.Fatal(err)
			}
			h := sha256.New()
			info, err := s.Put(ctx, key, io.TeeReader(f, h), size)
			f.Close()
			if err != nil {
				b.Fatal(err)
			}
			if got := hex.EncodeToString(h.Sum(nil)); got != hexSum || (info.SHA256 != "" && info.SHA256 != got) {
				b.Fatalf("sha256 %s (store %s), want %s", got, info.SHA256, hexSum)
			}
		}
	})
	b.Run("known-sha256", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(size)
		defer reportClientCPU(b)()
		for b.Loop() {
			info, err := s.PutFileSHA256(ctx, key, path, hexSum)
			if err != nil {
				b.Fatal(err)
			}
			if info.SHA256 != hexSum || info.Size != size {
				b.Fatalf("info %+v", info)
			}
		}
	})
}

// reportClientCPU returns a func that reports the CPU time (user + system)
// of this process — the client; MinIO runs in its own — per operation
// since the call, as client-cpu-ms/op.
func reportClientCPU(b *testing.B) func() {
	start := processCPU(b)
	return func() {
		b.ReportMetric(float64((processCPU(b)-start).Microseconds())/1000/float64(b.N), "client-cpu-ms/op")
	}
}

func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
