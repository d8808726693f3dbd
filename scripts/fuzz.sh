#!/usr/bin/env bash
# Runs every native Go fuzz target of the module for FUZZTIME each (default 30s).
# Targets are found with `go test -list '^Fuzz'` in the packages whose tests
# declare one. Usage: FUZZTIME=1m scripts/fuzz.sh [PACKAGE_PATTERN]
# A failure leaves the crasher in the package's testdata/fuzz/<Target>/;
# commit it with the fix, so that `go test` replays it from then on.
set -euo pipefail

GO=${GO:-go}
FUZZTIME=${FUZZTIME:-30s}
# New interesting inputs are minimised first (Go's default: up to 60 s each),
# which can take a short run's whole FUZZTIME; keep it short.
FUZZMINIMIZETIME=${FUZZMINIMIZETIME:-5s}
filter=${1:-}
cd "$(dirname "$0")/.."

mapfile -t dirs < <(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u)
failed=()
total=0
for dir in "${dirs[@]}"; do
  pkg=$($GO list "$dir")
  if [ -n "$filter" ] && [[ $pkg != *"$filter"* ]]; then continue; fi
  mapfile -t targets < <($GO test -list '^Fuzz' "$dir" | grep '^Fuzz' || true)
  for target in "${targets[@]}"; do
    total=$((total + 1))
    printf 'fuzz: %s %s (%s)\n' "$pkg" "$target" "$FUZZTIME" >&2
    if ! $GO test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" -fuzzminimizetime "$FUZZMINIMIZETIME" "$dir"; then
      failed+=("$pkg $target")
    fi
  done
done
if [ "$total" = 0 ]; then
  echo "fuzz: no fuzz targets found" >&2
  exit 1
fi
if [ "${#failed[@]}" -gt 0 ]; then
  printf 'fuzz: FAILED %s\n' "${failed[@]}" >&2
  exit 1
fi
printf 'fuzz: %d targets passed\n' "$total" >&2
