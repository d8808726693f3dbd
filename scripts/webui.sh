#!/usr/bin/env bash
# Builds the web console (cmd/xueliang/internal/webui/dist) when its sources
# changed: type check (tsc --noEmit), then esbuild (build.mjs). "Changed" is
# by content, not mtime: dist/.srchash holds the hash of the sources the
# committed dist/ was built from (TestDistUpToDate checks it), so a fresh
# clone does nothing and needs no Node. -f rebuilds anyway.
set -euo pipefail
cd "$(dirname "$0")/../cmd/xueliang/internal/webui"

srchash() {
	{ find src -type f; printf '%s\n' build.mjs package.json package-lock.json tsconfig.json; } |
		LC_ALL=C sort | while read -r f; do printf '%s  %s\n' "$(sha256sum <"$f" | cut -d' ' -f1)" "$f"; done |
		sha256sum | cut -d' ' -f1
}

want=$(srchash)
if [[ "${1:-}" != -f && -f dist/.srchash && "$(cat dist/.srchash)" == "$want" ]]; then
	exit 0
fi
if ! command -v npm >/dev/null; then
	echo "webui: the console sources changed and Node.js (npm) is not installed: apt-get install nodejs npm" >&2
	exit 1
fi
echo "webui: building the console"
if [[ ! -d node_modules || package-lock.json -nt node_modules/.package-lock.json ]]; then
	npm ci --no-audit --no-fund --loglevel=error
fi
npx --no-install tsc --noEmit
node build.mjs
echo "$want" >dist/.srchash
