package api

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"xueliang/cmd/xueliang/internal/audit"
	"xueliang/index"
)

// TestLayouts: each user saves, lists, replaces and deletes only their own
// layouts; bad layouts are refused, and the count per user is bounded.
func TestLayouts(t *testing.T) {
	f := newAuthFixture(t)
	f.s.Layouts = f.db
	h := f.s.Handler()
	op, aud := f.token(t, operator), f.token(t, auditor)
	l := map[string]any{"grid": 4, "cameras": []string{"camA", "", "camB"}}
	if rec := do(t, h, "PUT", "/api/v1/layouts/%E5%80%BC%E7%8F%AD", op, l); rec.Code != 201 {
		t.Fatalf("create: %d %s", rec.Code, rec.Body)
	}
	l["tour_seconds"] = 10
	rec := do(t, h, "PUT", "/api/v1/layouts/%E5%80%BC%E7%8F%AD", op, l)
	if rec.Code != 200 {
		t.Fatalf("replace: %d %s", rec.Code, rec.Body)
	}
	var got layoutJSON
	decode(t, do(t, h, "GET", "/api/v1/layouts/%E5%80%BC%E7%8F%AD", op, nil), &got)
	if got.Name != "值班" || got.Grid != 4 || fmt.Sprint(got.Cameras) != "[camA  camB]" || got.TourSeconds != 10 || got.Updated.IsZero() {
		t.Errorf("get: %+v", got)
	}
	// Another user sees none of them and cannot touch them.
	var list struct{ Layouts []layoutJSON }
	decode(t, do(t, h, "GET", "/api/v1/layouts", aud, nil), &list)
	if len(list.Layouts) != 0 {
		t.Errorf("the auditor sees %+v", list.Layouts)
	}
	if rec := do(t, h, "GET", "/api/v1/layouts/%E5%80%BC%E7%8F%AD", aud, nil); rec.Code != 404 {
		t.Errorf("auditor gets the operator's layout: %d", rec.Code)
	}
	if rec := do(t, h, "DELETE", "/api/v1/layouts/%E5%80%BC%E7%8F%AD", aud, nil); rec.Code != 404 {
		t.Errorf("auditor deletes the operator's layout: %d", rec.Code)
	}
	decode(t, do(t, h, "GET", "/api/v1/layouts", op, nil), &list)
	if len(list.Layouts) != 1 || list.Layouts[0].Name != "值班" {
		t.Errorf("the operator's layouts %+v", list.Layouts)
	}
	for name, body := range map[string]any{
		"a":            map[string]any{"grid": 3},
		"b":            map[string]any{"grid": 1, "cameras": []string{"camA", "camB"}},
		"c":            map[string]any{"grid": 4, "cameras": []string{"cam A"}},
		"d":            map[string]any{"grid": 4, "tour_seconds": 1},
		"e":            map[string]any{"grid": 4, "owner": "li"},
		"%20lead":      map[string]any{"grid": 4},
		"a%2Fb":        map[string]any{"grid": 4},
		"x%07":         map[string]any{"grid": 4},
		"camA-16-long": map[string]any{"grid": 16, "cameras": make([]string, 17)},
	} {
		if rec := do(t, h, "PUT", "/api/v1/layouts/"+name, op, body); rec.Code != 400 {
			t.Errorf("PUT %s %v: %d %s", name, body, rec.Code, rec.Body)
		}
	}
	for i := 1; i < MaxLayoutsPerUser; i++ {
		if rec := do(t, h, "PUT", fmt.Sprintf("/api/v1/layouts/n%d", i), op, map[string]any{"grid": 1}); rec.Code != 201 {
			t.Fatalf("layout %d: %d %s", i, rec.Code, rec.Body)
		}
	}
	if rec := do(t, h, "PUT", "/api/v1/layouts/one-too-many", op, map[string]any{"grid": 1}); rec.Code != 409 {
		t.Errorf("layout %d: %d", MaxLayoutsPerUser+1, rec.Code)
	}
	if rec := do(t, h, "PUT", "/api/v1/layouts/n1", op, map[string]any{"grid": 9}); rec.Code != 200 {
		t.Errorf("replacing at the cap: %d", rec.Code)
	}
	if rec := do(t, h, "DELETE", "/api/v1/layouts/%E5%80%BC%E7%8F%AD", op, nil); rec.Code != 204 {
		t.Errorf("delete: %d", rec.Code)
	}
	if rec := do(t, h, "GET", "/api/v1/layouts/%E5%80%BC%E7%8F%AD", op, nil); rec.Code != 404 {
		t.Errorf("get after delete: %d", rec.Code)
	}
	// Saving is audited with the layout's name.
	recs, err := f.db.QueryAudit(context.Background(), index.AuditQuery{User: f.users[operator], Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range recs {
		found = found || r.Method == "PUT" && r.Status == 201 && strings.Contains(r.Detail, `layout "值班": grid 4, 3 cameras`)
	}
	if !found {
		t.Errorf("no audit entry of the layout's creation in %d entries", len(recs))
	}
}

type fakeVerifier struct {
	n    int64
	head string
	err  error
}

func (v fakeVerifier) VerifyAudit(context.Context) (int64, string, bool, error) {
	return v.n, v.head, false, v.err
}

type dbVerifier struct{ db *index.DB }

func (v dbVerifier) VerifyAudit(ctx context.Context) (int64, string, bool, error) {
	n, head, err := audit.Verify(ctx, v.db)
	return n, head, false, err
}

// TestAuditVerify: the real chain verifies; a broken one is reported with
// its first bad entry; a read failure is a 500; operators may not ask.
func TestAuditVerify(t *testing.T) {
	f := newAuthFixture(t)
	f.s.AuditVerifier = dbVerifier{f.db}
	h := f.s.Handler()
	aud := f.token(t, auditor)
	do(t, h, "GET", "/api/v1/me", aud, nil) // an entry to verify
	var out auditVerifyJSON
	decode(t, do(t, h, "GET", "/api/v1/audit/verify", aud, nil), &out)
	if !out.OK || out.Entries < 1 || len(out.Head) != 64 || out.FirstBad != nil {
		t.Errorf("intact chain: %+v", out)
	}
	if rec := do(t, h, "GET", "/api/v1/audit/verify", f.token(t, operator), nil); rec.Code != 403 {
		t.Errorf("operator: %d", rec.Code)
	}
	f.s.AuditVerifier = fakeVerifier{n: 6, head: "abc", err: &audit.BadEntryError{ID: 7, Reason: "hash mismatch: the entry was edited"}}
	out = auditVerifyJSON{}
	decode(t, do(t, h, "GET", "/api/v1/audit/verify", aud, nil), &out)
	if out.OK || out.Entries != 6 || out.FirstBad == nil || out.FirstBad.ID != 7 || out.FirstBad.Reason != "hash mismatch: the entry was edited" || out.Error == "" {
		t.Errorf("broken chain: %+v", out)
	}
	f.s.AuditVerifier = fakeVerifier{err: fmt.Errorf("disk on fire")}
	if rec := do(t, h, "GET", "/api/v1/audit/verify", aud, nil); rec.Code != http.StatusInternalServerError {
		t.Errorf("read failure: %d", rec.Code)
	}
}
