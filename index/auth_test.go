package index

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestUsersAndTokens(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	now := time.Date(2026, 11, 28, 8, 0, 0, 0, time.UTC)
	u := User{Name: "li", Role: "operator", Townships: []string{"Huiting", "会亭镇"}, PasswordHash: "$argon2id$x", Created: now}
	if err := db.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateUser(ctx, u); !errors.Is(err, ErrUserExists) {
		t.Fatalf("duplicate: %v", err)
	}
	got, err := db.User(ctx, "li")
	if err != nil || got.Role != "operator" || len(got.Townships) != 2 || got.Townships[1] != "会亭镇" || !got.Created.Equal(now) {
		t.Fatalf("user %+v %v", got, err)
	}
	if _, err := db.User(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown user: %v", err)
	}
	if err := db.UpdateUser(ctx, User{Name: "nobody"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("update unknown: %v", err)
	}
	if err := db.CreateToken(ctx, Token{Hash: "h1", User: "li", Kind: "session", Created: now, Expires: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateToken(ctx, Token{Hash: "h2", User: "nobody", Kind: "api", Created: now}); err == nil {
		t.Fatal("token of an unknown user stored")
	}
	if n, err := db.DeleteExpiredTokens(ctx, now.Add(2*time.Hour)); err != nil || n != 1 {
		t.Fatalf("expired: %d %v", n, err)
	}
	if err := db.CreateToken(ctx, Token{Hash: "h3", User: "li", Kind: "api", Created: now}); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteUser(ctx, "li"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.TokenByHash(ctx, "h3"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("token outlived its user: %v", err)
	}
}

// TestAuditAppendOnly: appends are serialised into one chain (each entry's
// PrevHash is the previous entry's Hash) and the table refuses changes.
func TestAuditAppendOnly(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	seal := func(r *AuditRecord) { r.Hash = fmt.Sprintf("h%d<-%s", r.ID, r.PrevHash) }
	t0 := time.Date(2026, 11, 28, 8, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			user := []string{"li", "wang"}[i%2]
			if _, err := db.AppendAudit(ctx, AuditRecord{At: t0.Add(time.Duration(i) * time.Second), User: user,
				Camera: "cam1", Status: 200}, seal); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	prev, n := "", 0
	if err := db.ScanAudit(ctx, func(r AuditRecord) error {
		n++
		if r.ID != int64(n) || r.PrevHash != prev || r.Hash != fmt.Sprintf("h%d<-%s", r.ID, prev) {
			return fmt.Errorf("entry %+v breaks the chain", r)
		}
		prev = r.Hash
		return nil
	}); err != nil || n != 20 {
		t.Fatalf("%d entries: %v", n, err)
	}
	for _, stmt := range []string{`UPDATE audit SET status = 500 WHERE id = 3`, `DELETE FROM audit WHERE id = 3`} {
		if _, err := db.w.ExecContext(ctx, stmt); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v", stmt, err)
		}
	}
	recs, err := db.QueryAudit(ctx, AuditQuery{User: "li", From: t0.Add(4 * time.Second), To: t0.Add(10 * time.Second)})
	if err != nil || len(recs) != 3 { // seconds 4, 6, 8
		t.Fatalf("query: %d %v", len(recs), err)
	}
	if recs[0].ID < recs[1].ID || recs[1].ID < recs[2].ID {
		t.Fatal("not newest first")
	}
	if recs, _ := db.QueryAudit(ctx, AuditQuery{Camera: "cam1", Limit: 5}); len(recs) != 5 {
		t.Fatalf("limit: %d", len(recs))
	}
}
