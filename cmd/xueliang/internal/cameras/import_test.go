package cameras

import (
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"xueliang/cmd/xueliang/internal/registry"
)

// FuzzImportRow checks an import row from an untrusted client: whatever it
// holds, validation does not panic, what it accepts is within every limit,
// and no message repeats the password or a URL's credentials.
func FuzzImportRow(f *testing.F) {
	f.Add("41142600001320000001", "村口", "会亭镇", "张庄村", "34.2", "116.1", "rtsp://10.0.0.1/main", "",
		"admin", "s3cr3t-Pässwort", "tcp", "60s", "yes", "0")
	f.Add("41142600001320000001", "", "t", "v", "95", "", "rtsp://admin:s3cr3t-Pässwort@10.0.0.1/main", "http://x/",
		"", "p", "sctp", "1s", "maybe", "on")
	f.Add("4114270000132000000x", "\x00", "", strings.Repeat("村", 65), "NaN", "Inf", "rtsps://[::1]:0/", "rtsp://h:99999/",
		"\x7f", strings.Repeat("p", 300), " UDP ", "2h", "", "")
	policy := registry.XiayiCameras
	f.Fuzz(func(t *testing.T, id, name, township, village, lat, lon, mainURL, subURL, user, pass, transport, seg, enabled, motion string) {
		r := ImportRow{ID: id, Name: name, Township: township, Village: village, Lat: lat, Lon: lon,
			MainURL: mainURL, SubURL: subURL, Username: user, Password: pass, Transport: transport,
			SegmentDuration: seg, Enabled: enabled, Motion: motion}
		v, bad := r.validate(policy)
		if bad == nil {
			t.Fatal("nil FieldErrors")
		}
		// The password decides the password field's message only.
		r0 := r
		r0.Password = ""
		_, bad0 := r0.validate(policy)
		for k, msg := range bad {
			if k != "password" && bad0[k] != msg {
				t.Fatalf("field %s: %q with the password, %q without", k, msg, bad0[k])
			}
		}
		for k := range bad0 {
			if _, ok := bad[k]; !ok {
				t.Fatalf("field %s fails only without the password", k)
			}
		}
		if msg := bad["password"]; msg != "" && msg != "at most 256 printable characters" && msg != "a password needs a username" {
			t.Fatalf("password message %q", msg)
		}
		for _, u := range []string{mainURL, subURL} {
			if _, rest, ok := strings.Cut(u, "://"); ok {
				if cred, _, ok := strings.Cut(rest, "@"); ok && len(cred) >= 8 && strings.Contains(bad.String(), cred) {
					t.Fatalf("a message repeats a URL's credentials %q: %s", cred, bad)
				}
			}
		}
		if len(bad) > 0 {
			return
		}
		// Accepted: every limit holds.
		if _, err := policy.Parse(v.id); err != nil {
			t.Fatalf("accepted ID %q: %v", v.id, err)
		}
		for _, c := range []struct {
			s        string
			max      int
			required bool
		}{{v.name, maxName, true}, {v.township, maxSite, true}, {v.village, maxSite, true}} {
			if (c.required && c.s == "") || !utf8.ValidString(c.s) || strings.ContainsFunc(c.s, unicode.IsControl) ||
				utf8.RuneCountInString(c.s) > c.max || c.s != strings.TrimSpace(c.s) {
				t.Fatalf("accepted text %q", c.s)
			}
		}
		if (v.lat == nil) != (v.lon == nil) || (v.lat != nil && !(*v.lat >= -90 && *v.lat <= 90 && *v.lon >= -180 && *v.lon <= 180)) {
			t.Fatalf("accepted position %v, %v", v.lat, v.lon)
		}
		for i, s := range []string{v.mainURL, v.subURL} {
			if s == "" && i == 1 {
				continue
			}
			u, err := url.Parse(s)
			if err != nil || (u.Scheme != "rtsp" && u.Scheme != "rtsps") || u.Hostname() == "" || u.User != nil || len(s) > maxURL {
				t.Fatalf("accepted URL %q (%v)", s, err)
			}
		}
		if len(v.username) > maxUsername || (v.password != nil && (len(*v.password) > maxPassword || v.username == "")) {
			t.Fatalf("accepted credentials of %d and %v bytes", len(v.username), v.password)
		}
		if v.transport != "" && v.transport != "tcp" && v.transport != "udp" {
			t.Fatalf("accepted transport %q", v.transport)
		}
		if v.segmentDuration != 0 && (v.segmentDuration < 2*time.Second || v.segmentDuration > time.Hour) {
			t.Fatalf("accepted segment duration %v", v.segmentDuration)
		}
	})
}
