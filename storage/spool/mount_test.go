package spool

import (
	"strings"
	"testing"
)

// A mountinfo as Debian's kernel writes it: root on ext4 with discard in
// the super options, a data disk without, a mount point with a space.
const mountInfo = `22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard,resv_strict
31 27 254:16 / /srv/spool rw,noatime shared:5 - ext4 /dev/vdb rw
32 27 254:32 / /srv/my\040disk rw - xfs /dev/vdc rw,discard
33 31 0:40 / /srv/spool/tmp rw - tmpfs tmpfs rw,size=1024k
malformed line
`

func TestParseMountInfo(t *testing.T) {
	for _, tc := range []struct {
		dir, point, typ string
		discard         bool
	}{
		{"/var/lib/xueliang/spool", "/", "ext4", true},
		{"/srv/spool", "/srv/spool", "ext4", false},
		{"/srv/spool/cam1", "/srv/spool", "ext4", false},
		{"/srv/spoolx", "/", "ext4", true}, // a prefix of the name is not a parent
		{"/srv/spool/tmp/a", "/srv/spool/tmp", "tmpfs", false},
		{"/srv/my disk/spool", "/srv/my disk", "xfs", true},
	} {
		m, err := parseMountInfo(mountInfo, tc.dir)
		if err != nil {
			t.Fatalf("%s: %v", tc.dir, err)
		}
		if m.Point != tc.point || m.Type != tc.typ || m.Discard() != tc.discard {
			t.Errorf("%s: got %v (discard %v), want %s on %s (discard %v)", tc.dir, m, m.Discard(), tc.typ, tc.point, tc.discard)
		}
	}
	if _, err := parseMountInfo("garbage\n", "/x"); err == nil {
		t.Error("no mount found: want an error")
	}
	m, _ := parseMountInfo(mountInfo, "/srv/spool")
	if got := m.String(); !strings.Contains(got, "ext4 /dev/vdb on /srv/spool (rw,noatime,rw)") {
		t.Errorf("String() = %q", got)
	}
}

func TestMountOfHere(t *testing.T) {
	m, err := MountOf(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if m.Type == "" || m.Point == "" {
		t.Fatalf("MountOf(temp dir) = %+v", m)
	}
}

func FuzzParseMountInfo(f *testing.F) {
	f.Add(mountInfo, "/srv/spool")
	f.Add(`1 1 0:1 / /a\04 - x y z`, "/a")
	f.Fuzz(func(t *testing.T, text, dir string) {
		m, err := parseMountInfo(text, dir)
		if err == nil && m.Point == "" {
			t.Fatalf("found a mount without a mount point: %+v", m)
		}
	})
}
