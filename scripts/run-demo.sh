#!/usr/bin/env bash
# `make run`: simulated cameras + the server on the embedded default
# (SQLite + local disk), with configs/demo.yaml.
set -euo pipefail
cd "$(dirname "$0")/.."

CAMSIM_ADDR=${CAMSIM_ADDR:-127.0.0.1:8554}
CONFIG=${CONFIG:-configs/demo.yaml}

# Authentication: every endpoint but /healthz needs a bearer token. The
# demo generates a bootstrap (admin) token once, keeps it in the data dir
# (mode 0600) and passes it as XUELIANG_BOOTSTRAP_TOKEN. An explicit
# XUELIANG_BOOTSTRAP_TOKEN in the environment wins.
data_dir=$(sed -n 's/^data_dir: *//p' "$CONFIG")
data_dir=${data_dir:-./data}
token_file="$data_dir/bootstrap-token"
if [ -z "${XUELIANG_BOOTSTRAP_TOKEN:-}" ]; then
  if [ ! -s "$token_file" ]; then
    mkdir -p "$data_dir"
    (umask 077; head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$token_file")
  fi
  XUELIANG_BOOTSTRAP_TOKEN=$(cat "$token_file")
fi
export XUELIANG_BOOTSTRAP_TOKEN

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

bin/camsim -listen "$CAMSIM_ADDR" -cameras 4 \
  -camera 'cam2:codec=h265' -camera 'cam3:audio=aac' -camera 'cam4:bframes=on' &
pids+=($!)
sleep 1
bin/xueliang serve --config "$CONFIG" &
pids+=($!)
sleep 2

listen=$(sed -n 's/^listen: *//p' "$CONFIG")
cat <<MSG

  xueliang is recording 4 simulated cameras (rtsp://$CAMSIM_ADDR/cam1..cam4).

  Every request needs a token. The demo's bootstrap (admin) token, kept in
  $token_file (demo only: use your own secret in production):
    export TOKEN=$XUELIANG_BOOTSTRAP_TOKEN
  Who am I:  curl -H "Authorization: Bearer \$TOKEN" http://$listen/api/v1/me
  Create an operator for Huiting and log in as them:
    curl -H "Authorization: Bearer \$TOKEN" http://$listen/api/v1/users \\
      -d '{"name":"li","role":"operator","password":"change me please","townships":["Huiting"]}'
    curl http://$listen/api/v1/login -d '{"user":"li","password":"change me please"}'
  Cameras:   curl -H "Authorization: Bearer \$TOKEN" http://$listen/api/v1/cameras
  Timeline:  curl -H "Authorization: Bearer \$TOKEN" "http://$listen/api/v1/cameras/cam1/timeline"
  Replay the last 20 s of cam1 (after ~30 s of recording):
    ffplay -headers "Authorization: Bearer \$TOKEN"\$'\\r\\n' "http://$listen/api/v1/cameras/cam1/replay.mp4?start=\$(date -u -d '-25 sec' +%FT%TZ)&end=\$(date -u -d '-5 sec' +%FT%TZ)"
  Motion in the top-left quarter of cam1 in the last 10 minutes:
    curl -H "Authorization: Bearer \$TOKEN" http://$listen/api/v1/cameras/cam1/motion/search \\
      -d "{\"from\":\"\$(date -u -d '-10 min' +%FT%TZ)\",\"to\":\"\$(date -u +%FT%TZ)\",\"region\":{\"polygon\":[[0,0],[0.5,0],[0.5,0.5],[0,0.5]]}}"
  Audit log: curl -H "Authorization: Bearer \$TOKEN" "http://$listen/api/v1/audit?limit=20"
             bin/xueliang audit verify --config $CONFIG
  Footage, index and spool live in ./data.   Ctrl-C stops everything.

MSG
wait -n
