package s3

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
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
//     one PUT read in place, an unsigned payload with a signed
//     x-amz-checksum-sha256 that the server verifies.
//   - known-sha256-signed-payload: the same PUT with the SHA-256 also as
//     the signed payload hash (X-Amz-Content-Sha256), as before: MinIO
//     then hashes the body twice. server-cpu-ms/op is MinIO's CPU.
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
	for _, signed := range []bool{false, true} {
		name := "known-sha256"
		if signed {
			name += "-signed-payload"
		}
		b.Run(name, func(b *testing.B) {
			s.direct.signedPayload = signed
			defer func() { s.direct.signedPayload = false }()
			b.ReportAllocs()
			b.SetBytes(size)
			defer reportClientCPU(b)()
			defer reportServerCPU(b, srv.Pid())()
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
}

// reportServerCPU returns a func that reports MinIO's CPU time (user +
// system, from /proc) per operation since the call, as server-cpu-ms/op.
func reportServerCPU(b *testing.B, pid int) func() {
	start := pidCPU(b, pid)
	return func() {
		b.ReportMetric(float64((pidCPU(b, pid)-start).Microseconds())/1000/float64(b.N), "server-cpu-ms/op")
	}
}

func pidCPU(b *testing.B, pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	s := string(raw)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseInt(f[11], 10, 64) // utime, stime: fields 14, 15 of proc(5), in clock ticks (USER_HZ = 100)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
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
