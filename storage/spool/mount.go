package spool

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Mount describes the file system a directory lives on, from
// /proc/self/mountinfo (Linux).
type Mount struct {
	Point   string   // mount point
	Type    string   // file system type, e.g. ext4
	Source  string   // e.g. /dev/vda1
	Options []string // the mount's options followed by the file system's
}

// Discard reports whether the file system was mounted with online discard
// ("discard"). ext4 and XFS then send the device a discard for every
// extent freed, in their journal commits, and fsync waits for the commit:
// the spool deletes every segment file once it is uploaded, so online
// discard puts a discard behind the recorders' fsyncs all day. Periodic
// trimming (fstrim.timer) frees the same blocks in one pass a week.
// Measured: BENCHMARKS.md, docs/operations.md "The spool's disk".
func (m Mount) Discard() bool { return slices.Contains(m.Options, "discard") }

func (m Mount) String() string {
	return fmt.Sprintf("%s %s on %s (%s)", m.Type, m.Source, m.Point, strings.Join(m.Options, ","))
}

// MountOf returns the mount holding dir (an absolute path, symlinks not
// resolved): the mountinfo entry with the longest mount point containing it.
func MountOf(dir string) (Mount, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return Mount{}, err
	}
	return parseMountInfo(string(b), filepath.Clean(dir))
}

// parseMountInfo finds dir's mount in the text of a mountinfo file. Each
// line: id parent major:minor root mountpoint options [optional fields…] -
// type source superoptions (proc(5)); octal escapes in the mount point
// (\040 for a space) are decoded.
func parseMountInfo(text, dir string) (Mount, error) {
	var best Mount
	found := false
	for l := range strings.SplitSeq(text, "\n") {
		pre, post, ok := strings.Cut(l, " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if !ok || len(f) < 6 || len(g) < 2 {
			continue
		}
		mp := unescapeOctal(f[4])
		if dir != mp && !strings.HasPrefix(dir, strings.TrimSuffix(mp, "/")+"/") {
			continue
		}
		if found && len(mp) < len(best.Point) {
			continue
		}
		opts := strings.Split(f[5], ",")
		if len(g) > 2 {
			opts = append(opts, strings.Split(g[2], ",")...)
		}
		best, found = Mount{Point: mp, Type: g[0], Source: g[1], Options: opts}, true
	}
	if !found {
		return Mount{}, errors.New("no mount holds " + dir)
	}
	return best, nil
}

// unescapeOctal decodes the \ooo escapes the kernel writes for space, tab,
// newline and backslash in mountinfo paths.
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }
