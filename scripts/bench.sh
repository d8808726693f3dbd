#!/usr/bin/env bash
# bench.sh — xueliang's benchmark suite (make bench). Writes BENCHMARKS.md and
# bench/results.json. BENCH_QUICK=1: ≈7 min; otherwise ≈31–36 min.
#
#   1. Go micro-benchmarks of the per-packet path and of the upload PUT
#      (client and MinIO CPU per 30 MB segment) (go test -bench, b.Loop)
#   2. bin/xlbench: ingest cost per camera (full pipeline into MinIO) vs. the
#      receive floor, live view (server CPU per MSE / WebRTC viewer and
#      capture → receipt latency with 100 cameras recorded: 100 × 1 and
#      1 × 50 viewers; ≈6 min, quick ≈2.5 min; -only live), capacity (full
#      mode), replay TTFB, index scale (SQLite, and PostgreSQL next to it:
#      the same 1,000-camera × 30-day archive, timeline and replay TTFB over
#      the HTTP API, fragment rows/s of 1 and 3 nodes; -only index,postgres),
#      motion (analysis CPU per camera,
#      region-search latency; -only motion).
#
# Needs bin/xueliang and bin/camsim (make build), ffmpeg and the MinIO server
# (make deps-test). Extra arguments go to xlbench (e.g. -only ingest).
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
mkdir -p bin bench testdata/clips
$GO build -o bin/xueliang ./cmd/xueliang
$GO build -o bin/camsim ./cmd/camsim
$GO build -o bin/xlbench ./cmd/xueliang/internal/bench/xlbench

benchtime=2s
count=1
# Quick mode: 17 micro-benchmarks at 1 s each took ≈70 s of its 5 minutes.
[ "${BENCH_QUICK:-}" = 1 ] && benchtime=300ms
micro=bench/micro.txt
echo "bench.sh: micro-benchmarks (load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
XL_BENCH_CLIPS=$PWD/testdata/clips $GO test -run '^$' -bench 'BenchmarkPacketPath|BenchmarkDepacketize|BenchmarkCamerasMemory|BenchmarkPutSpoolFile|BenchmarkReceive' -benchtime "$benchtime" \
	-count "$count" ./ingest/segmenter/ ./ingest/rtpdepack/ ./ingest/rtspconn/ ./storage/s3/ 2>&1 | grep -E '^(Benchmark|goos|goarch|cpu|ok|FAIL|---)' | tee "$micro" >&2 || true
echo "bench.sh: system benchmarks" >&2
bin/xlbench -bin bin -json bench/results.json -md BENCHMARKS.md -notes bench/notes.md -micro "$micro" "$@"
