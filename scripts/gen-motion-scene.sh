#!/usr/bin/env bash
# gen-motion-scene.sh — generate motion-detection test scenes with ffmpeg:
# a still textured background with scripted moving objects at known times
# and places, plus still scenes with sensor noise and brightness ramps.
#
# Usage:
#   scripts/gen-motion-scene.sh [--force] [--list] OUT_DIR [SCENE...]
#
# Without SCENE names every scene is generated. For each scene NAME:
#   OUT_DIR/NAME.ts    H.264 or H.265 Annex-B in MPEG-TS (libx264/libx265,
#                      CRF 28, GOP 2 s, so compression artefacts and
#                      I-frame pumping are present)
#   OUT_DIR/NAME.json  ground truth: every object's visible interval
#                      (start/end, seconds from the first frame, any pixel
#                      of the object in the picture) and its box path
#                      sampled every 0.2 s as [t, x, y, w, h] normalised to
#                      the picture (clipped to it).
#
# Scenes:
#   objects-640      640x360 H.264 68 s, clean, 8 objects one after another
#                    in three horizontal lanes (plus a vertical and a
#                    diagonal mover), sizes 24-96 px, speeds 40-200 px/s
#   busy-640         640x360 H.264 64 s, sensor noise + brightness ramp,
#                    10 objects in 7 events (some objects at the same time)
#   objects-h265-320 320x240 H.265 44 s, 5 objects
#   objects-320      320x240 H.264 40 s, light noise, 5 objects (one 16 px)
#   (events are >= 3.8 s apart, so a 2 s merge gap keeps them distinct)
#   still-noise-640  640x360 H.264 40 s, no object, temporal noise alls=12
#   still-ramp-640   640x360 H.264 40 s, no object, brightness ramp
#                    -0.2 -> +0.2 (~2.5 grey levels per second)
#   still-noise-ramp-320  320x240 H.265 30 s, no object, noise + ramp
#   still-noise-ramp-640  640x360 H.264 70 s, no object, noise alls=10 +
#                    ramp (as long as the end-to-end test, so camsim does
#                    not loop it during the test)
#
# Objects are dark boxes with a bright core (some contrast on any
# background). Lanes (normalised y): top 0.08-0.30, middle 0.40-0.62,
# bottom 0.70-0.95; the region tests rely on them.
#
# Idempotent: a scene whose .ts and .json exist is skipped unless --force.
# Files are written to temporary names and renamed.
set -euo pipefail

die() { echo "gen-motion-scene.sh: $*" >&2; exit 2; }

all_scenes="objects-640 busy-640 objects-h265-320 objects-320 still-noise-640 still-ramp-640 still-noise-ramp-320 still-noise-ramp-640"
force=0
out=""
scenes=()
while [ $# -gt 0 ]; do
	case "$1" in
	--force) force=1; shift ;;
	--list) echo "$all_scenes" | tr ' ' '\n'; exit 0 ;;
	-h|--help) sed -n "2,41p" "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	-*) die "unknown option $1" ;;
	*) if [ -z "$out" ]; then out=$1; else scenes+=("$1"); fi; shift ;;
	esac
done
[ -n "$out" ] || die "missing output directory (try --help)"
[ ${#scenes[@]} -gt 0 ] || read -r -a scenes <<<"$all_scenes"
command -v ffmpeg >/dev/null || die "ffmpeg not found"
mkdir -p "$out"

# scene NAME: sets W H DUR CODEC NOISE RAMP OBJECTS.
# OBJECTS: one per line "id w h t0 x0 y0 vx vy tend" (pixels, seconds,
# pixels/second); the object is on screen at x0+vx*(t-t0) for t0<=t<=tend.
scene() {
	NOISE=0; RAMP=0; OBJECTS=""
	case "$1" in
	objects-640)
		W=640; H=360; DUR=68; CODEC=h264
		OBJECTS="person1 32 72 1 -32 32 120 0 8
car1 96 48 11 640 160 -200 0 16
small1 24 24 19 -24 290 160 0 24
person2 40 80 27 -40 270 150 0 33
vertical1 48 48 36 300 -48 0 110 41
slow1 48 64 44 -48 40 40 0 50
diag1 40 40 54 640 300 -160 -50 60
car2 80 40 62 -80 170 180 0 68"
		;;
	busy-640)
		W=640; H=360; DUR=64; CODEC=h264; NOISE=10; RAMP=1
		OBJECTS="a 40 80 1 -40 30 110 0 8
b 96 48 3 640 160 -180 0 8
c 32 64 11 640 260 -140 0 17
d 48 48 20 -48 150 170 0 25
e 24 48 21 640 280 -160 0 26
f 64 40 29 -64 40 200 0 33
g 48 48 36.5 296 360 0 -120 40
h 40 60 44 -40 200 60 0 50
i 72 36 54 640 100 -220 0 58
j 28 56 55 -28 250 130 0 61"
		;;
	objects-h265-320)
		W=320; H=240; DUR=44; CODEC=h265
		OBJECTS="a 24 48 1 -24 22 70 0 7
b 48 32 10 320 105 -100 0 14
c 20 40 18 -20 175 60 0 24
d 32 32 28 150 -32 0 80 32
e 28 28 35 -28 60 50 25 43"
		;;
	objects-320)
		W=320; H=240; DUR=40; CODEC=h264; NOISE=8
		OBJECTS="a 24 48 1 320 150 -90 0 6
b 40 24 9 -40 40 120 0 13
c 16 32 16 -16 100 45 0 22
d 32 32 26 100 240 30 -90 30
e 36 36 33 320 180 -110 -20 37"
		;;
	still-noise-640) W=640; H=360; DUR=40; CODEC=h264; NOISE=12 ;;
	still-ramp-640) W=640; H=360; DUR=40; CODEC=h264; RAMP=1 ;;
	still-noise-ramp-320) W=320; H=240; DUR=30; CODEC=h265; NOISE=12; RAMP=1 ;;
	still-noise-ramp-640) W=640; H=360; DUR=70; CODEC=h264; NOISE=10; RAMP=1 ;;
	*) die "unknown scene $1 (try --list)" ;;
	esac
}

gen() {
	local name=$1 ts="$out/$1.ts" js="$out/$1.json"
	if [ "$force" = 0 ] && [ -s "$ts" ] && [ -s "$js" ]; then
		return 0
	fi
	scene "$name"
	local tmp="$out/.$name.tmp.$$"
	trap 'rm -f "$tmp.ts" "$tmp.json" "$tmp.png"' RETURN

	# Still textured background: first frame of testsrc2 with a static
	# sinusoidal texture blended in (testsrc2 alone has large flat areas).
	ffmpeg -hide_banner -nostdin -loglevel error -y \
		-f lavfi -i "testsrc2=size=${W}x${H}:rate=1" \
		-vf "geq=lum='clip(lum(X,Y)*0.8+25+18*sin(X/5.3)*cos(Y/4.1),0,255)':cb='cb(X,Y)':cr='cr(X,Y)'" \
		-frames:v 1 -f image2 -c:v png "$tmp.png"

	local fc="[0:v]format=yuv420p[bg0]" last="bg0" i=0
	while read -r id w h t0 x0 y0 vx vy tend; do
		[ -n "$id" ] || continue
		i=$((i + 1))
		fc+=";color=c=0x181818:size=${w}x${h}:rate=25,drawbox=x=iw/4:y=ih/4:w=iw/2:h=ih/2:color=0xE8E8E8:t=fill[o$i]"
		fc+=";[$last][o$i]overlay=eval=frame:x='if(between(t,$t0,$tend),$x0+($vx)*(t-$t0),-4000)':y='if(between(t,$t0,$tend),$y0+($vy)*(t-$t0),-4000)'[bg$i]"
		last="bg$i"
	done <<<"$OBJECTS"
	local post="format=yuv420p"
	[ "$RAMP" = 1 ] && post="eq=brightness='-0.2+0.4*t/$DUR':eval=frame,$post"
	[ "$NOISE" != 0 ] && post="noise=alls=$NOISE:allf=t,$post"
	fc+=";[$last]$post[v]"

	local venc
	if [ "$CODEC" = h264 ]; then
		venc=(-c:v libx264 -preset veryfast -crf 28 -x264-params "keyint=50:min-keyint=50:scenecut=0:bframes=0:repeat-headers=1:aud=1")
	else
		venc=(-c:v libx265 -preset ultrafast -crf 28 -x265-params "keyint=50:min-keyint=50:scenecut=0:bframes=0:repeat-headers=1:open-gop=0:aud=1:log-level=error")
	fi
	ffmpeg -hide_banner -nostdin -loglevel error -y \
		-loop 1 -framerate 25 -i "$tmp.png" -filter_complex "$fc" -map "[v]" \
		-t "$DUR" -r 25 "${venc[@]}" -an -f mpegts "$tmp.ts"

	# Ground truth, computed from the same object table.
	awk -v W="$W" -v H="$H" -v DUR="$DUR" -v name="$name" -v codec="$CODEC" \
		-v noise="$NOISE" -v ramp="$RAMP" '
	function max(a, b) { return a > b ? a : b }
	function min(a, b) { return a < b ? a : b }
	# times when p0+v*(t-t0) in (-size, lim): returns lo,hi via globals
	function span(p0, v, size, lim, t0) {
		if (v == 0) { if (p0 < lim && p0 + size > 0) { lo = -1e9; hi = 1e9 } else { lo = 1e9; hi = -1e9 }; return }
		a = t0 + (-size - p0) / v; b = t0 + (lim - p0) / v
		lo = min(a, b); hi = max(a, b)
	}
	BEGIN { printf "{\"scene\":\"%s\",\"width\":%d,\"height\":%d,\"duration\":%s,\"codec\":\"%s\",\"noise\":%s,\"ramp\":%s,\"objects\":[", name, W, H, DUR, codec, noise, ramp; n = 0 }
	NF == 9 {
		id = $1; w = $2; h = $3; t0 = $4; x0 = $5; y0 = $6; vx = $7; vy = $8; tend = $9
		span(x0, vx, w, W, t0); s = lo; e = hi
		span(y0, vy, h, H, t0); s = max(s, lo); e = min(e, hi)
		s = max(s, max(t0, 0)); e = min(e, min(tend, DUR))
		if (e <= s) next
		printf "%s{\"id\":\"%s\",\"start\":%.3f,\"end\":%.3f,\"path\":[", (n++ ? "," : ""), id, s, e
		m = 0
		for (t = s; t <= e + 1e-9; t += 0.2) {
			x = x0 + vx * (t - t0); y = y0 + vy * (t - t0)
			bx0 = max(x, 0); by0 = max(y, 0); bx1 = min(x + w, W); by1 = min(y + h, H)
			if (bx1 <= bx0 || by1 <= by0) continue
			printf "%s[%.2f,%.4f,%.4f,%.4f,%.4f]", (m++ ? "," : ""), t, bx0 / W, by0 / H, (bx1 - bx0) / W, (by1 - by0) / H
		}
		printf "]}"
	}
	END { print "]}" }' <<<"$OBJECTS" >"$tmp.json"
	mv -f "$tmp.ts" "$ts"
	mv -f "$tmp.json" "$js"
}

for s in "${scenes[@]}"; do
	gen "$s"
done
