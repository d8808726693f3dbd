package audit

import (
	"fmt"
	"unicode/utf8"

	"xueliang/index"
)

// Field caps of an audit entry, in bytes. Rows cannot be deleted, so an
// entry is bounded whatever a request carries: a longer value is cut at a
// UTF-8 boundary and ends with TruncatedMarker and the number of bytes cut.
const (
	MaxUser   = 128
	MaxRole   = 32
	MaxRemote = 64
	MaxMethod = 32
	MaxPath   = 1024
	MaxAction = 64
	MaxCamera = 256
	MaxDetail = 4096
)

// TruncatedMarker starts the suffix of a capped field: "…[+N bytes]".
const TruncatedMarker = "…[+"

// MaxEntryBytes bounds the text fields of one entry together.
const MaxEntryBytes = MaxUser + MaxRole + MaxRemote + MaxMethod + MaxPath + MaxAction + MaxCamera + MaxDetail

// Cap cuts s to at most max bytes, the marker included.
func Cap(s string, max int) string {
	if len(s) <= max {
		return s
	}
	keep := max
	for keep > 0 {
		for keep > 0 && !utf8.RuneStart(s[keep]) {
			keep--
		}
		if keep+len(capSuffix(len(s)-keep)) <= max {
			break
		}
		keep--
	}
	out := s[:keep] + capSuffix(len(s)-keep)
	if len(out) > max { // max is smaller than the marker itself
		return out[:0]
	}
	return out
}

func capSuffix(cut int) string { return fmt.Sprintf("%s%d bytes]", TruncatedMarker, cut) }

// CapRecord caps every text field of r (Seal's caller does it before
// sealing; the hash covers the capped values).
func CapRecord(r *index.AuditRecord) {
	r.User = Cap(r.User, MaxUser)
	r.Role = Cap(r.Role, MaxRole)
	r.Remote = Cap(r.Remote, MaxRemote)
	r.Method = Cap(r.Method, MaxMethod)
	r.Path = Cap(r.Path, MaxPath)
	r.Action = Cap(r.Action, MaxAction)
	r.Camera = Cap(r.Camera, MaxCamera)
	r.Detail = Cap(r.Detail, MaxDetail)
}
