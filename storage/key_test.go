package storage

import (
	"errors"
	"testing"
	"time"
)

func TestCheckKey(t *testing.T) {
	for _, tc := range []struct {
		key string
		ok  bool
	}{
		{"cam1/2026/11/28/13/20261128T132019.000000001Z.mp4", true},
		{"a", true},
		{"a_b-c.d", true},
		{"", false},
		{"/a", false},
		{"a/", false},
		{"a//b", false},
		{"a/../b", false},
		{"./a", false},
		{"a b", false},
		{"a\\b", false},
		{"摄像头", false},
	} {
		err := CheckKey(tc.key)
		if (err == nil) != tc.ok {
			t.Errorf("CheckKey(%q) = %v, want ok=%v", tc.key, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidKey) {
			t.Errorf("CheckKey(%q) error %v is not ErrInvalidKey", tc.key, err)
		}
	}
}

func TestSegmentKey(t *testing.T) {
	start := time.Date(2026, 11, 28, 21, 5, 9, 123456789, time.FixedZone("CST", 8*3600))
	got := SegmentKey("cam7", start)
	want := "cam7/2026/11/28/13/20261128T130509.123456789Z.mp4"
	if got != want {
		t.Fatalf("SegmentKey = %q, want %q", got, want)
	}
	if err := CheckKey(got); err != nil {
		t.Fatal(err)
	}
}
