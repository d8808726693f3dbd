package recording

import (
	"testing"
	"time"
)

func TestSegmentKey(t *testing.T) {
	start := time.Date(2026, 11, 28, 21, 5, 9, 123456789, time.FixedZone("CST", 8*3600))
	got := SegmentKey("cam7", start)
	want := "cam7/2026/11/28/13/20261128T130509.123456789Z.mp4"
	if got != want {
		t.Fatalf("SegmentKey = %q, want %q", got, want)
	}
	if p := DayPrefix("cam7", start); p != "cam7/2026/11/28/" {
		t.Fatalf("DayPrefix = %q", p)
	}
	d, ok := KeyDay("cam7", got)
	if !ok || !d.Equal(time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("KeyDay = %v, %v", d, ok)
	}
	if _, ok := KeyDay("cam7", "cam7/2026/11/x8/13/a.mp4"); ok {
		t.Fatal("KeyDay accepted a bad day")
	}
}

func TestKeyStart(t *testing.T) {
	start := time.Date(2025, 3, 4, 23, 59, 57, 123456789, time.UTC)
	other := time.Date(2024, 2, 29, 0, 0, 0, 1, time.UTC)
	tests := []struct {
		key  string
		want time.Time
		ok   bool
	}{
		{SegmentKey("cam1", start), start, true},
		{SegmentKey("cam1", other), other, true},
		{"cam1/2025/03/04/23/20250304T235957.123456789Z.mp4", start, true},
		{"cam1/2025/03/04/22/20250304T235957.123456789Z.mp4", time.Time{}, false}, // wrong hour dir
		{"cam2/2025/03/04/23/20250304T235957.123456789Z.mp4", time.Time{}, false}, // other camera
		{"cam1/2025/03/04/23/20250304T235957.12345678Z.mp4", time.Time{}, false},
		{"cam1/2025/03/04/23/20250304T235957.123456789Z.mp4.tmp", time.Time{}, false},
		{"cam1/notes.txt", time.Time{}, false},
	}
	for _, tc := range tests {
		got, ok := KeyStart("cam1", tc.key)
		if ok != tc.ok || !got.Equal(tc.want) {
			t.Errorf("KeyStart(%q) = %v, %v; want %v, %v", tc.key, got, ok, tc.want, tc.ok)
		}
	}
}

func TestParseKey(t *testing.T) {
	start := time.Date(2026, 3, 4, 5, 6, 7, 89, time.UTC)
	for _, tc := range []struct {
		key string
		cam string
		ok  bool
	}{
		{SegmentKey("cam1", start), "cam1", true},
		{SegmentKey("site/cam-2", start), "site/cam-2", true},
		{"cam1/2026/03/04/05/20260304T050607.000000089Z.mp4.tmp", "", false},
		{"2026/03/04/05/20260304T050607.000000089Z.mp4", "", false},
		{"cam1/2026/03/04/06/20260304T050607.000000089Z.mp4", "", false}, // wrong hour directory
		{"cam1/notes.mp4", "", false},
	} {
		cam, got, ok := ParseKey(tc.key)
		if ok != tc.ok || cam != tc.cam || (ok && !got.Equal(start)) {
			t.Errorf("ParseKey(%q) = %q, %v, %v; want %q, %v", tc.key, cam, got, ok, tc.cam, tc.ok)
		}
	}
}
