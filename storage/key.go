package storage

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalidKey is returned (wrapped) for a key that is not a slash-separated
// relative path of [A-Za-z0-9._-] segments.
var ErrInvalidKey = errors.New("invalid object key")

// CheckKey reports whether key follows the storage.Store key rules:
// non-empty slash-separated segments made of [A-Za-z0-9._-], none of them
// "." or "..", no leading or trailing slash, no empty segment. Every backend and the spool apply these rules.
func CheckKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: empty", ErrInvalidKey)
	}
	if len(key) > 1024 {
		return fmt.Errorf("%w: longer than 1024 bytes", ErrInvalidKey)
	}
	for seg := range strings.SplitSeq(key, "/") {
		if !ValidSegment(seg) {
			return fmt.Errorf("%w: %q", ErrInvalidKey, key)
		}
	}
	return nil
}

// ValidSegment reports whether s is a valid key segment (also used to skip
// temporary files, whose names are not valid segments, when listing).
func ValidSegment(s string) bool {
	if s == "" || s == "." || s == ".." || len(s) > 255 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}
