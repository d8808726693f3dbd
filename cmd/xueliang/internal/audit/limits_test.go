package audit

import (
	"strings"
	"testing"
	"unicode/utf8"

	"xueliang/index"
)

func TestCap(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		max  int
		want string
	}{
		{"short", "abc", 10, "abc"},
		{"exact", "abcdefghij", 10, "abcdefghij"},
		{"long", strings.Repeat("a", 100), 20, "aaaaaa…[+94 bytes]"},
		{"utf8 boundary", strings.Repeat("雪", 10), 20, "雪雪…[+24 bytes]"},
		{"max below marker", strings.Repeat("a", 100), 3, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Cap(tc.in, tc.max)
			if got != tc.want || len(got) > tc.max || !utf8.ValidString(got) {
				t.Fatalf("Cap(%d bytes, %d) = %q (%d bytes), want %q", len(tc.in), tc.max, got, len(got), tc.want)
			}
		})
	}
}

// TestSealCapsEveryField: a sealed entry is bounded whatever its fields
// hold, and its hash covers the capped values (it still verifies).
func TestSealCapsEveryField(t *testing.T) {
	big := strings.Repeat("x", 900<<10)
	r := index.AuditRecord{ID: 1, User: big, Role: big, Remote: big, Method: big, Path: big, Action: big,
		Camera: big, Detail: big}
	Seal(&r)
	for name, f := range map[string]struct {
		v   string
		max int
	}{"user": {r.User, MaxUser}, "role": {r.Role, MaxRole}, "remote": {r.Remote, MaxRemote},
		"method": {r.Method, MaxMethod}, "path": {r.Path, MaxPath}, "action": {r.Action, MaxAction},
		"camera": {r.Camera, MaxCamera}, "detail": {r.Detail, MaxDetail}} {
		if len(f.v) > f.max || !strings.Contains(f.v, TruncatedMarker) {
			t.Errorf("%s: %d bytes (cap %d), marker %v", name, len(f.v), f.max, strings.Contains(f.v, TruncatedMarker))
		}
	}
	if MaxUser != 128 || MaxCamera != 256 || MaxDetail != 4096 {
		t.Errorf("caps changed: user %d camera %d detail %d", MaxUser, MaxCamera, MaxDetail)
	}
	var v Verifier
	if err := v.Next(r); err != nil {
		t.Fatal(err)
	}
}
