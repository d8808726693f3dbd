# xueliang — `make run` and `make test` are all a newcomer needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

GO        ?= go
GOBIN     := $(shell $(GO) env GOPATH)/bin
APT_PKGS  := ffmpeg libavcodec-dev libswscale-dev pkg-config chromium postgresql fonts-wqy-microhei
TEST_TIMEOUT ?= 20m
# End-to-end tests that mostly wait on real time (camsim streams, outages)
# are t.Parallel: this many run at once (go test's default is GOMAXPROCS).
TEST_PARALLEL ?= 3
FUZZTIME  ?= 30s
MINIO_MOD := github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c
PROMTOOL_MOD := github.com/prometheus/prometheus/cmd/promtool@v0.316.0

.PHONY: help deps deps-test webui build run test screenshots fuzz bench check-alerts lint tidy-check clean

help: ## list the targets
	@awk 'BEGIN{FS=":.*## "} /^[a-z-]+:.*## /{printf "  make %-12s %s\n",$$1,$$2}' $(MAKEFILE_LIST)

deps: ## install missing prerequisites (Debian packages); no-op when present
	@scripts/deps.sh apt $(APT_PKGS)

deps-test: deps ## also install the MinIO server and promtool used by the tests (minutes, the first time only)
	@scripts/deps.sh go-tool minio $(MINIO_MOD)
	@scripts/deps.sh go-tool promtool $(PROMTOOL_MOD)

webui: ## rebuild the web console (webui/dist) when its TypeScript sources changed; no-op (and no Node needed) otherwise
	@scripts/webui.sh

build: webui ## build bin/xueliang and bin/camsim
	$(GO) build -o bin/xueliang ./cmd/xueliang
	$(GO) build -o bin/camsim ./cmd/camsim

run: deps build ## record 4 simulated cameras with configs/demo.yaml (Ctrl-C stops)
	@scripts/run-demo.sh

test: deps-test build ## run every test (unit, fuzz seeds, end-to-end with camsim + ffmpeg)
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) -parallel $(TEST_PARALLEL) ./...

screenshots: deps-test build ## rewrite docs/screenshots/*.png from the web console's browser tests
	XUELIANG_SCREENSHOTS=docs $(GO) test -count=1 -run 'TestWebUI' ./cmd/xueliang/

fuzz: ## run every fuzz target for FUZZTIME each (default 30s; FUZZ_PKG=substring limits the packages)
	@FUZZTIME=$(FUZZTIME) GO=$(GO) scripts/fuzz.sh $(FUZZ_PKG)

bench: deps-test build ## benchmark suite → BENCHMARKS.md + bench/results.json (BENCH_QUICK=1: ≈7 min; full ≈31–36 min)
	@scripts/bench.sh

check-alerts: deps-test ## check and unit-test the Prometheus alert rules and the Grafana dashboard
	$(GO) test -count=1 -run 'TestAlertRules|TestMetricsEndToEnd' ./cmd/xueliang/internal/metrics/

lint: ## gofmt, go vet, staticcheck when installed
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@if command -v staticcheck >/dev/null; then staticcheck ./...; else echo "staticcheck not installed; skipped"; fi

tidy-check: ## fail when go.mod/go.sum are not tidy
	$(GO) mod tidy -diff

clean: ## remove build output and demo data
	rm -rf bin data
