package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"xueliang/cmd/xueliang/internal/evidence"
	"xueliang/index"
)

// TestEvidenceLockAPI: an operator locks footage of a camera in its
// township (not one outside), cannot unlock; an admin unlocks; every
// action is in the audit log with its camera and range.
func TestEvidenceLockAPI(t *testing.T) {
	f := newAuthFixture(t)
	f.s.Evidence = &evidence.Service{Index: f.db}
	f.s.Retention = f.db
	f.s.RetentionDefault = RetentionPolicy{MaxAge: 720 * time.Hour}
	h := f.s.Handler()
	op, adm := f.token(t, operator), f.token(t, admin)
	from := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	body := map[string]any{"cameras": []string{"camA"}, "from": from, "to": from.Add(time.Hour),
		"case_number": "2026-017", "reason": "theft at the market"}

	rec := do(t, h, "POST", "/api/v1/evidence", op, body)
	if rec.Code != http.StatusCreated {
		t.Fatalf("operator lock: %d %s", rec.Code, rec.Body)
	}
	var got evidenceJSON
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || got.ID == 0 || !got.Active || got.CreatedBy != f.users[operator] {
		t.Fatalf("lock = %+v, %v", got, err)
	}
	body["cameras"] = []string{"camB"}
	if rec := do(t, h, "POST", "/api/v1/evidence", op, body); rec.Code != http.StatusForbidden {
		t.Fatalf("operator lock outside its township: %d", rec.Code)
	}
	body["cameras"], body["case_number"] = []string{"camA"}, ""
	if rec := do(t, h, "POST", "/api/v1/evidence", op, body); rec.Code != http.StatusBadRequest {
		t.Fatalf("lock without case number: %d", rec.Code)
	}
	path := "/api/v1/evidence/" + strconv.FormatInt(got.ID, 10)
	if rec := do(t, h, "DELETE", path, op, nil); rec.Code != http.StatusForbidden {
		t.Fatalf("operator unlock: %d", rec.Code)
	}
	if rec := do(t, h, "GET", "/api/v1/evidence", f.token(t, auditor), nil); rec.Code != http.StatusOK {
		t.Fatalf("auditor list: %d", rec.Code)
	}
	rec = do(t, h, "POST", path+"/unlock", adm, nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("admin unlock: %d %s", rec.Code, rec.Body)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || got.Active || got.UnlockedBy != f.users[admin] {
		t.Fatalf("unlocked = %+v, %v", got, err)
	}
	if rec := do(t, h, "DELETE", path, adm, nil); rec.Code != http.StatusNotFound {
		t.Fatalf("second unlock: %d", rec.Code)
	}
	ents, err := f.db.QueryAudit(context.Background(), index.AuditQuery{Camera: "camA", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, e := range ents {
		if e.Status < 300 {
			seen[e.Action]++
			if !e.From.Equal(from) || !e.To.Equal(from.Add(time.Hour)) {
				t.Errorf("audit %s: range %s..%s", e.Action, e.From, e.To)
			}
		}
	}
	if seen["evidence.lock"] != 1 || seen["evidence.unlock"] != 1 {
		t.Fatalf("audit entries by action %v, want one lock and one unlock", seen)
	}

	// Retention overrides: admin only, visible in GET /api/v1/retention.
	if rec := do(t, h, "PUT", "/api/v1/cameras/camA/retention", op, map[string]any{"max_age": "2160h"}); rec.Code != http.StatusForbidden {
		t.Fatalf("operator retention: %d", rec.Code)
	}
	if rec := do(t, h, "PUT", "/api/v1/cameras/camA/retention", adm, map[string]any{"max_age": "2160h"}); rec.Code != http.StatusOK {
		t.Fatalf("admin retention: %d %s", rec.Code, rec.Body)
	}
	if rec := do(t, h, "PUT", "/api/v1/townships/B/retention", adm, map[string]any{"max_bytes": 5000}); rec.Code != http.StatusOK {
		t.Fatalf("township retention: %d %s", rec.Code, rec.Body)
	}
	if rec := do(t, h, "PUT", "/api/v1/cameras/camA/retention", adm, map[string]any{"max_age": "5s"}); rec.Code != http.StatusBadRequest {
		t.Fatalf("too short a max_age: %d", rec.Code)
	}
	rec = do(t, h, "GET", "/api/v1/retention", adm, nil)
	var rj struct {
		Cameras []cameraRetentionJSON `json:"cameras"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &rj); err != nil || len(rj.Cameras) != 2 {
		t.Fatalf("retention: %s, %v", rec.Body, err)
	}
	for _, c := range rj.Cameras {
		switch c.Camera {
		case "camA":
			if c.Effective.MaxAge != "2160h0m0s" {
				t.Errorf("camA effective %+v", c.Effective)
			}
		case "camB":
			if c.Effective.MaxAge != "720h0m0s" || c.Effective.MaxBytes != 5000 {
				t.Errorf("camB effective %+v", c.Effective)
			}
		}
	}
}
