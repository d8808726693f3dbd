// Package audit computes and verifies the hash chain of the audit log.
//
// Every entry's Hash is the lowercase hex SHA-256 of its PrevHash followed
// by a canonical encoding of every other field, ID included; the first
// entry's PrevHash is Genesis (64 zeros). Editing any field of an entry
// breaks its Hash; deleting an entry leaves a gap in the IDs and breaks the
// next entry's PrevHash. The chain has no secret key: it proves the log was
// not edited by someone who did not also rewrite every later entry, which
// is what an append-only table plus a periodic off-site copy of the last
// hash make expensive. Truncating the newest entries, or rewriting the
// chain from an edited entry on, is detected against such a copy: the
// signed Anchor (anchor.go) that the server keeps outside the database,
// checked by VerifyAnchored. Every field is capped before sealing
// (limits.go), so no request makes an entry large.
package audit

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"xueliang/index"
)

// Genesis is the PrevHash of the first entry.
var Genesis = strings.Repeat("0", 64)

// Hash returns the chain hash of r (r.Hash itself is not an input).
func Hash(r index.AuditRecord) string {
	h := sha256.New()
	var n [8]byte
	num := func(v int64) {
		binary.BigEndian.PutUint64(n[:], uint64(v))
		h.Write(n[:])
	}
	str := func(s string) {
		num(int64(len(s)))
		h.Write([]byte(s))
	}
	str("xueliang-audit-v1")
	str(r.PrevHash)
	num(r.ID)
	num(unixNano(r.At))
	str(r.User)
	str(r.Role)
	str(r.Remote)
	str(r.Method)
	str(r.Path)
	str(r.Action)
	str(r.Camera)
	num(unixNano(r.From))
	num(unixNano(r.To))
	num(int64(r.Status))
	str(r.Detail)
	return hex.EncodeToString(h.Sum(nil))
}

// unixNano is the index's encoding of a time: 0 for the zero time.
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// Seal caps r's fields (CapRecord), fills r.PrevHash (Genesis when empty:
// the first entry) and r.Hash. It is the seal function for
// index.DB.AppendAudit, so every entry written through it is bounded.
func Seal(r *index.AuditRecord) {
	CapRecord(r)
	if r.PrevHash == "" {
		r.PrevHash = Genesis
	}
	r.Hash = Hash(*r)
}

// BadEntryError names the first entry at which the chain breaks.
type BadEntryError struct {
	// ID is the entry that fails (for a deletion: the entry after the gap).
	ID int64
	// Reason says what is wrong.
	Reason string
}

func (e *BadEntryError) Error() string {
	return fmt.Sprintf("audit entry %d: %s", e.ID, e.Reason)
}

// Verifier checks entries one by one, in ID order.
type Verifier struct {
	n        int64
	lastID   int64
	lastHash string
}

// Next checks r against the entries before it and returns a
// *BadEntryError at the first break.
func (v *Verifier) Next(r index.AuditRecord) error {
	wantID, wantPrev := v.lastID+1, v.lastHash
	if v.n == 0 {
		wantPrev = Genesis
	}
	switch {
	case r.ID > wantID:
		return &BadEntryError{ID: r.ID, Reason: fmt.Sprintf("entries %d..%d are missing (deleted)", wantID, r.ID-1)}
	case r.ID != wantID:
		return &BadEntryError{ID: r.ID, Reason: fmt.Sprintf("out of order: want id %d", wantID)}
	case r.Hash != Hash(r):
		return &BadEntryError{ID: r.ID, Reason: "hash mismatch: the entry was edited"}
	case r.PrevHash != wantPrev:
		return &BadEntryError{ID: r.ID, Reason: "prev_hash does not match the previous entry's hash (an entry was deleted or replaced)"}
	}
	v.n++
	v.lastID, v.lastHash = r.ID, r.Hash
	return nil
}

// Count is the number of entries verified so far.
func (v *Verifier) Count() int64 { return v.n }

// Head is the hash of the last entry verified (Genesis for none).
func (v *Verifier) Head() string {
	if v.n == 0 {
		return Genesis
	}
	return v.lastHash
}

// Scanner is what Verify reads: every entry in ID order.
type Scanner interface {
	ScanAudit(ctx context.Context, fn func(index.AuditRecord) error) error
}

// Verify checks the whole log. It returns the number of entries and the
// last hash when the chain is intact, or a *BadEntryError naming the first
// bad entry (other errors are read failures).
func Verify(ctx context.Context, s Scanner) (n int64, head string, err error) {
	var v Verifier
	if err := s.ScanAudit(ctx, v.Next); err != nil {
		return v.Count(), v.Head(), err
	}
	return v.Count(), v.Head(), nil
}
