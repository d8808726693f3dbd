package api

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"xueliang/cmd/xueliang/internal/compliance"
	"xueliang/index"
	"xueliang/storage/recording"
)

// TestComplianceAPI: the township report lists its cameras only, with the
// archive, target (township override), oldest footage and gaps; an
// operator limited to township A gets 403 for B; installers may not read
// it.
func TestComplianceAPI(t *testing.T) {
	ctx := context.Background()
	f := newAuthFixture(t)
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	f.s.Compliance = compliance.New(compliance.Config{Index: f.db, MaxAge: 30 * day, GapTolerance: 250 * time.Millisecond,
		Now: func() time.Time { return now }})
	if err := f.db.SetTownshipRetention(ctx, "A", index.RetentionOverride{MaxAge: 7 * day}, now); err != nil {
		t.Fatal(err)
	}
	// camA: 8 days in one-hour segments with a 10-minute hole 3 days ago.
	hole := now.Add(-3 * day)
	for s := now.Add(-8 * day); s.Before(now); s = s.Add(time.Hour) {
		st, e := s, s.Add(time.Hour)
		if s.Equal(hole) {
			st = s.Add(10 * time.Minute)
		}
		seg := recording.Segment{CameraID: "camA", Start: st, End: e, ObjectKey: s.String(), State: recording.StateStored}
		if err := f.db.CreateSegment(ctx, &seg); err != nil {
			t.Fatal(err)
		}
	}
	h := f.s.Handler()
	op := f.token(t, operator)
	rec := do(t, h, "GET", "/api/v1/townships/A/compliance", op, nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("operator, township A: %d %s", rec.Code, rec.Body)
	}
	var got complianceJSON
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Township != "A" || len(got.Cameras) != 1 {
		t.Fatalf("report %+v", got)
	}
	c := got.Cameras[0]
	if c.Camera != "camA" || c.TargetDays != 7 || c.ArchiveDays != 3-(10*time.Minute).Hours()/24 || c.Gaps != 1 ||
		c.GapSeconds != 600 || c.Compliant || c.Oldest == nil || !c.Oldest.Equal(now.Add(-8*day)) {
		t.Errorf("camA: %+v", c)
	}
	if rec := do(t, h, "GET", "/api/v1/townships/B/compliance", op, nil); rec.Code != http.StatusForbidden {
		t.Errorf("operator, township B: %d", rec.Code)
	}
	if rec := do(t, h, "GET", "/api/v1/townships/B/compliance", f.token(t, installer), nil); rec.Code != http.StatusForbidden {
		t.Errorf("installer: %d", rec.Code)
	}
	rec = do(t, h, "GET", "/api/v1/townships/B/compliance", f.token(t, auditor), nil)
	if err := json.Unmarshal(rec.Body.Bytes(), &got); rec.Code != http.StatusOK || err != nil {
		t.Fatalf("auditor, township B: %d %s", rec.Code, rec.Body)
	}
	if len(got.Cameras) != 1 || got.Cameras[0].Camera != "camB" || got.Cameras[0].Oldest != nil || got.Cameras[0].ArchiveDays != 0 ||
		got.Cameras[0].TargetDays != 30 || got.Cameras[0].Compliant {
		t.Errorf("township B: %+v", got)
	}
}
