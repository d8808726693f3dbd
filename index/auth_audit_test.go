package index

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// testAuditAppendOnly: appends are serialised into one chain (each entry's
// PrevHash is the previous entry's Hash) and the table refuses changes.
func testAuditAppendOnly(t *testing.T, be *backend) {
	ctx := context.Background()
	db := be.open(t)
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
