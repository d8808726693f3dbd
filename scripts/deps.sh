#!/usr/bin/env bash
# Installs what `make run` / `make test` need and is missing; does nothing
# when everything is already there.  Usage: scripts/deps.sh apt PKG... | minio | promtool
set -euo pipefail

log() { printf 'deps: %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else log "need root to run: $*"; exit 1
  fi
}

apt_missing() {
  local p missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  echo "${missing[@]:-}"
}

case "${1:-}" in
  apt)
    shift
    missing=$(apt_missing "$@")
    if [ -z "$missing" ]; then exit 0; fi
    log "installing Debian packages: $missing"
    as_root apt-get update -qq
    # shellcheck disable=SC2086
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
    ;;
  go-tool)
    # go-tool NAME MODULE@VERSION: installs a Go binary into $(go env GOPATH)/bin once.
    name=$2 mod=$3
    bin="$(go env GOPATH)/bin/$name"
    if [ -x "$bin" ]; then exit 0; fi
    log "installing $name ($mod), this can take a few minutes the first time"
    GOFLAGS=-mod=mod go install "$mod"
    ;;
  *)
    echo "usage: $0 apt PKG... | go-tool NAME MODULE@VERSION" >&2; exit 2 ;;
esac
