#!/usr/bin/env bash
# gen-clip.sh — generate a synthetic test clip (MPEG-TS, so PTS/DTS are kept)
# for camsim and the tests.
#
# Usage:
#   scripts/gen-clip.sh [options] OUTPUT.ts
#
# Options (each also settable by the environment variable in brackets;
# a flag wins over the environment):
#   --codec h264|h265     video codec                      [CODEC]    h264
#   --width N             width in pixels                  [WIDTH]    320
#   --height N            height in pixels                 [HEIGHT]   240
#   --fps N               frames per second (integer)      [FPS]      25
#   --gop N               frames per GOP (fixed, IDR only) [GOP]      50
#   --bframes N           B-frames between references, 0=none [BFRAMES] 0
#   --duration S          clip length in seconds           [DURATION] 10
#   --audio none|aac|alaw audio track (440 Hz sine)        [AUDIO]    none
#   --bitrate R           video bitrate, e.g. 4M (default: CRF 23) [BITRATE]
#   --force               regenerate even if OUTPUT exists
#
# Output:
#   OUTPUT.ts  H.264/H.265 Annex-B in MPEG-TS, SPS/PPS(/VPS) repeated before
#              every IDR, fixed GOP (keyint=min-keyint=gop, no scene cut),
#              frame number burned in; with --audio aac also AAC-LC 48 kHz mono.
#   OUTPUT.alaw  only with --audio alaw: raw G.711 A-law, 8 kHz mono (MPEG-TS
#              cannot carry G.711, so it is a sidecar file next to OUTPUT).
#
# Idempotent: does nothing when the output (and sidecar) already exist.
# Files are written to a temporary name and renamed, so a concurrent or
# interrupted run never leaves a half-written clip behind.
set -euo pipefail

codec=${CODEC:-h264}
width=${WIDTH:-320}
height=${HEIGHT:-240}
fps=${FPS:-25}
gop=${GOP:-50}
bframes=${BFRAMES:-0}
duration=${DURATION:-10}
audio=${AUDIO:-none}
bitrate=${BITRATE:-}
force=0
out=""

die() { echo "gen-clip.sh: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
	case "$1" in
	--codec) codec=$2; shift 2 ;;
	--width) width=$2; shift 2 ;;
	--height) height=$2; shift 2 ;;
	--fps) fps=$2; shift 2 ;;
	--gop) gop=$2; shift 2 ;;
	--bframes) bframes=$2; shift 2 ;;
	--duration) duration=$2; shift 2 ;;
	--audio) audio=$2; shift 2 ;;
	--bitrate) bitrate=$2; shift 2 ;;
	--force) force=1; shift ;;
	--codec=*|--width=*|--height=*|--fps=*|--gop=*|--bframes=*|--duration=*|--audio=*|--bitrate=*)
		k=${1%%=*}; v=${1#*=}; shift; set -- "$k" "$v" "$@" ;;
	-h|--help) sed -n '2,31p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	-*) die "unknown option $1" ;;
	*) [ -z "$out" ] || die "more than one output path"; out=$1; shift ;;
	esac
done

[ -n "$out" ] || die "missing output path (try --help)"
case "$codec" in h264|h265) ;; *) die "codec must be h264 or h265, not $codec" ;; esac
case "$audio" in none|aac|alaw) ;; *) die "audio must be none, aac or alaw, not $audio" ;; esac
for v in width height fps gop bframes; do
	case "${!v}" in ''|*[!0-9]*) die "$v must be a non-negative integer" ;; esac
done
[ "$width" -gt 0 ] && [ "$height" -gt 0 ] && [ "$fps" -gt 0 ] && [ "$gop" -gt 0 ] || die "width, height, fps, gop must be > 0"
case "$duration" in ''|*[!0-9.]*) die "duration must be a number of seconds" ;; esac

sidecar="$out.alaw"
if [ "$force" = 0 ] && [ -s "$out" ] && { [ "$audio" != alaw ] || [ -s "$sidecar" ]; }; then
	exit 0
fi

command -v ffmpeg >/dev/null || die "ffmpeg not found"
mkdir -p "$(dirname "$out")"
tmp="$out.tmp.$$"
trap 'rm -f "$tmp" "$tmp.alaw"' EXIT

# Burn the frame number in when a font is available (drawtext needs one).
vf="format=yuv420p"
for font in /usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf \
	/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf \
	/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf; do
	if [ -r "$font" ]; then
		size=$((height / 8))
		vf="drawtext=fontfile=$font:text='%{frame_num}':x=8:y=8:fontsize=$size:fontcolor=white:box=1:boxcolor=black@0.6,$vf"
		break
	fi
done

common="keyint=$gop:min-keyint=$gop:scenecut=0:bframes=$bframes:repeat-headers=1"
if [ "$codec" = h264 ]; then
	venc=(-c:v libx264 -preset ultrafast -x264-params "$common:aud=1")
	[ "$bframes" -gt 0 ] && venc+=(-profile:v main)
else
	venc=(-c:v libx265 -preset ultrafast -x265-params "$common:open-gop=0:aud=1:log-level=error")
fi
if [ -n "$bitrate" ]; then
	venc+=(-b:v "$bitrate" -maxrate "$bitrate" -bufsize "$bitrate")
fi

inputs=(-f lavfi -i "testsrc2=size=${width}x${height}:rate=$fps")
aenc=(-an)
if [ "$audio" = aac ]; then
	inputs+=(-f lavfi -i "sine=frequency=440:sample_rate=48000")
	aenc=(-map 0:v -map 1:a -c:a aac -b:a 64k -ac 1)
fi

ffmpeg -hide_banner -nostdin -loglevel error -y \
	"${inputs[@]}" -t "$duration" -vf "$vf" -r "$fps" \
	"${venc[@]}" "${aenc[@]}" -f mpegts "$tmp"

if [ "$audio" = alaw ]; then
	ffmpeg -hide_banner -nostdin -loglevel error -y \
		-f lavfi -i "sine=frequency=440:sample_rate=8000" -t "$duration" \
		-ac 1 -c:a pcm_alaw -f alaw "$tmp.alaw"
	mv -f "$tmp.alaw" "$sidecar"
fi
mv -f "$tmp" "$out"
