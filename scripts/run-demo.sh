#!/usr/bin/env bash
# `make run`: simulated cameras + the server on the embedded default
# (SQLite + local disk), with configs/demo.yaml.
set -euo pipefail
cd "$(dirname "$0")/.."

CAMSIM_ADDR=${CAMSIM_ADDR:-127.0.0.1:8554}
CONFIG=${CONFIG:-configs/demo.yaml}

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

  Cameras:   curl http://$listen/api/v1/cameras
  Timeline:  curl "http://$listen/api/v1/cameras/cam1/timeline"
  Replay the last 20 s of cam1 (after ~30 s of recording):
    ffplay "http://$listen/api/v1/cameras/cam1/replay.mp4?start=\$(date -u -d '-25 sec' +%FT%TZ)&end=\$(date -u -d '-5 sec' +%FT%TZ)"
  Footage, index and spool live in ./data.   Ctrl-C stops everything.

MSG
wait -n
