package api

import (
	"encoding/json"
	"testing"
	"time"
)

// TestReplayTicketScope: POST …/replay/ticket answers a ticket that opens
// GET …/replay.mp4 of its camera and nothing else (not another camera, not
// the live view, not a route whose {id} is not a camera), and a live ticket
// does not open a replay.
func TestReplayTicketScope(t *testing.T) {
	f := newAuthFixture(t)
	rec := do(t, f.s.Handler(), "POST", "/api/v1/cameras/camA/replay/ticket", f.token(t, operator), nil)
	if rec.Code != 200 {
		t.Fatalf("replay ticket: %d %s", rec.Code, rec.Body)
	}
	var out struct {
		Ticket  string    `json:"ticket"`
		Expires time.Time `json:"expires"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.Ticket == "" || out.Expires.IsZero() {
		t.Fatalf("replay ticket body %s: %v", rec.Body, err)
	}
	if rec := do(t, f.s.Handler(), "POST", "/api/v1/cameras/camB/replay/ticket", f.token(t, operator), nil); rec.Code != 403 {
		t.Fatalf("replay ticket of another township's camera: %d", rec.Code)
	}
	if rec := do(t, f.s.Handler(), "POST", "/api/v1/cameras/camA/replay/ticket", f.token(t, auditor), nil); rec.Code != 403 {
		t.Fatalf("replay ticket as auditor: %d", rec.Code)
	}
	live := f.s.signTicket(ticket{User: f.users[operator], Role: operator, Townships: []string{"A"}, Camera: "camA", Expires: time.Now().Add(time.Minute).Unix()})
	replayB := f.s.signTicket(ticket{User: f.users[admin], Role: admin, Camera: "camB", Expires: time.Now().Add(time.Minute).Unix(), Action: ticketReplay})
	mux := f.stubMux()
	for _, tc := range []struct {
		name, method, path string
		want               int
	}{
		{"replay", "GET", "/api/v1/cameras/camA/replay.mp4?ticket=" + out.Ticket, 299},
		{"another camera", "GET", "/api/v1/cameras/camB/replay.mp4?ticket=" + out.Ticket, 401},
		{"live view", "GET", "/api/v1/cameras/camA/live?ticket=" + out.Ticket, 401},
		{"timeline", "GET", "/api/v1/cameras/camA/timeline?ticket=" + out.Ticket, 401},
		{"export download", "GET", "/api/v1/exports/camA/download?ticket=" + out.Ticket, 401},
		{"live ticket on replay", "GET", "/api/v1/cameras/camA/replay.mp4?ticket=" + live, 401},
		{"live ticket on live", "GET", "/api/v1/cameras/camA/live?ticket=" + live, 299},
		// The ticket carries its user's role and townships: guard still
		// holds them (an admin's ticket for camB is fine, the operator's
		// could not have been issued).
		{"admin ticket other camera", "GET", "/api/v1/cameras/camB/replay.mp4?ticket=" + replayB, 299},
	} {
		if rec := do(t, mux, tc.method, tc.path, "", nil); rec.Code != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, rec.Code, rec.Body, tc.want)
		}
	}
}
