package audit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"xueliang/index"
)

// chain builds n sealed entries as AppendAudit would.
func chain(n int) []index.AuditRecord {
	var out []index.AuditRecord
	prev := ""
	t0 := time.Date(2026, 11, 28, 8, 0, 0, 0, time.UTC)
	for i := range n {
		r := index.AuditRecord{ID: int64(i + 1), At: t0.Add(time.Duration(i) * time.Second), User: "li", Role: "operator",
			Remote: "10.0.0.7", Method: "GET", Path: "/api/v1/cameras/cam1/replay.mp4", Action: "replay", Camera: "cam1",
			From: t0, To: t0.Add(time.Minute), Status: 200, PrevHash: prev}
		Seal(&r)
		prev = r.Hash
		out = append(out, r)
	}
	return out
}

type records []index.AuditRecord

func (rs records) ScanAudit(_ context.Context, fn func(index.AuditRecord) error) error {
	for _, r := range rs {
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

func TestVerify(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mutate  func([]index.AuditRecord) []index.AuditRecord
		wantID  int64 // 0: intact
		wantWhy string
	}{
		{"intact", func(r []index.AuditRecord) []index.AuditRecord { return r }, 0, ""},
		{"empty", func([]index.AuditRecord) []index.AuditRecord { return nil }, 0, ""},
		{"edited status", func(r []index.AuditRecord) []index.AuditRecord { r[3].Status = 403; return r }, 4, "edited"},
		{"edited user", func(r []index.AuditRecord) []index.AuditRecord { r[0].User = "wang"; return r }, 1, "edited"},
		{"edited range", func(r []index.AuditRecord) []index.AuditRecord { r[5].To = r[5].To.Add(time.Hour); return r }, 6, "edited"},
		{"deleted middle", func(r []index.AuditRecord) []index.AuditRecord { return append(r[:4], r[5:]...) }, 6, "missing"},
		{"deleted first", func(r []index.AuditRecord) []index.AuditRecord { return r[1:] }, 2, "missing"},
		{"edited and rehashed", func(r []index.AuditRecord) []index.AuditRecord {
			r[2].Status = 500
			Seal(&r[2]) // a forger recomputes the entry's hash but not the chain after it
			return r
		}, 4, "prev_hash"},
		{"renumbered after delete", func(r []index.AuditRecord) []index.AuditRecord {
			r = append(r[:4], r[5:]...)
			for i := 4; i < len(r); i++ {
				r[i].ID--
			}
			return r
		}, 5, "edited"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, head, err := Verify(context.Background(), records(tc.mutate(chain(8))))
			if tc.wantID == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if n > 0 && head == Genesis {
					t.Fatal("head not reported")
				}
				return
			}
			var bad *BadEntryError
			if !errors.As(err, &bad) {
				t.Fatalf("want a BadEntryError, got %v (n=%d)", err, n)
			}
			if bad.ID != tc.wantID || !strings.Contains(bad.Error(), tc.wantWhy) {
				t.Fatalf("got %v, want entry %d (%s)", bad, tc.wantID, tc.wantWhy)
			}
			if !strings.Contains(bad.Error(), fmt.Sprintf("entry %d", tc.wantID)) {
				t.Fatalf("message %q does not name the entry", bad)
			}
		})
	}
}

// TestHashCoversEveryField: changing any field changes the hash.
func TestHashCoversEveryField(t *testing.T) {
	base := chain(1)[0]
	h := Hash(base)
	for name, edit := range map[string]func(*index.AuditRecord){
		"id": func(r *index.AuditRecord) { r.ID++ }, "at": func(r *index.AuditRecord) { r.At = r.At.Add(1) },
		"user": func(r *index.AuditRecord) { r.User += "x" }, "role": func(r *index.AuditRecord) { r.Role += "x" },
		"remote": func(r *index.AuditRecord) { r.Remote += "x" }, "method": func(r *index.AuditRecord) { r.Method += "x" },
		"path": func(r *index.AuditRecord) { r.Path += "x" }, "action": func(r *index.AuditRecord) { r.Action += "x" },
		"camera": func(r *index.AuditRecord) { r.Camera += "x" }, "from": func(r *index.AuditRecord) { r.From = r.From.Add(1) },
		"to": func(r *index.AuditRecord) { r.To = r.To.Add(1) }, "status": func(r *index.AuditRecord) { r.Status++ },
		"detail": func(r *index.AuditRecord) { r.Detail += "x" }, "prev": func(r *index.AuditRecord) { r.PrevHash = "1" + r.PrevHash[1:] },
		// Field boundaries are length-prefixed: moving a byte between two
		// adjacent fields changes the hash.
		"boundary": func(r *index.AuditRecord) { r.User, r.Role = r.User+"o", r.Role[1:] },
	} {
		r := base
		edit(&r)
		if Hash(r) == h {
			t.Errorf("%s: hash unchanged", name)
		}
	}
}
