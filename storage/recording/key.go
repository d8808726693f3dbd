package recording

import (
	"fmt"
	"strings"
	"time"
)

// Object key layout (UTC, chosen so that listing one camera-day or
// camera-hour is a cheap prefix scan):
//
//	<camera>/<YYYY>/<MM>/<DD>/<HH>/<YYYYMMDD>T<HHMMSS>.<nanoseconds>Z.mp4
const keyTimeLayout = "20060102T150405.000000000"

// SegmentKey returns the object key of the segment of camera that starts at
// start.
func SegmentKey(camera string, start time.Time) string {
	t := start.UTC()
	return fmt.Sprintf("%s/%04d/%02d/%02d/%02d/%s.%09dZ.mp4",
		camera, t.Year(), t.Month(), t.Day(), t.Hour(),
		t.Format("20060102T150405"), t.Nanosecond())
}

// DayPrefix is the key prefix of camera's segments that start on the UTC
// day of d.
func DayPrefix(camera string, d time.Time) string {
	d = d.UTC()
	return fmt.Sprintf("%s/%04d/%02d/%02d/", camera, d.Year(), d.Month(), d.Day())
}

// KeyDay returns the UTC day of a key of camera laid out as SegmentKey
// (checking the directory part only), or false.
func KeyDay(camera, key string) (time.Time, bool) {
	rest, ok := strings.CutPrefix(key, camera+"/")
	if !ok {
		return time.Time{}, false
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 5 || len(parts[0]) != 4 || len(parts[1]) != 2 || len(parts[2]) != 2 {
		return time.Time{}, false
	}
	d, err := time.Parse("2006/01/02", parts[0]+"/"+parts[1]+"/"+parts[2])
	if err != nil {
		return time.Time{}, false
	}
	return d, true
}

// KeyStart returns the segment start encoded in key, only when key is
// exactly SegmentKey(camera, start).
func KeyStart(camera, key string) (time.Time, bool) {
	i := strings.LastIndexByte(key, '/')
	ts, ok := strings.CutSuffix(key[i+1:], "Z.mp4")
	if !ok || len(ts) != len(keyTimeLayout) {
		return time.Time{}, false
	}
	t, err := time.Parse(keyTimeLayout, ts)
	if err != nil {
		return time.Time{}, false
	}
	t = t.UTC()
	if SegmentKey(camera, t) != key {
		return time.Time{}, false
	}
	return t, true
}

// ParseKey returns the camera and segment start of a key laid out as
// SegmentKey (the camera is everything before the five time components),
// only when key is exactly SegmentKey(camera, start).
func ParseKey(key string) (camera string, start time.Time, ok bool) {
	parts := strings.Split(key, "/")
	if len(parts) < 6 {
		return "", time.Time{}, false
	}
	camera = strings.Join(parts[:len(parts)-5], "/")
	if camera == "" {
		return "", time.Time{}, false
	}
	start, ok = KeyStart(camera, key)
	if !ok {
		return "", time.Time{}, false
	}
	return camera, start, true
}
