package api

import (
	"context"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"xueliang/cmd/xueliang/internal/audit"
	"xueliang/index"
)

// entrySize is the bytes of an audit entry's text fields.
func entrySize(a index.AuditRecord) int {
	return len(a.User) + len(a.Role) + len(a.Remote) + len(a.Method) + len(a.Path) + len(a.Action) +
		len(a.Camera) + len(a.Detail)
}

func lastAudit(t *testing.T, db *index.DB) index.AuditRecord {
	t.Helper()
	recs, err := db.QueryAudit(context.Background(), index.AuditQuery{Limit: 1})
	if err != nil || len(recs) != 1 {
		t.Fatalf("audit: %v %v", recs, err)
	}
	return recs[0]
}

// TestAuditFlooding (issue #22.1): one anonymous login with a 900 KB query
// or user name stores a small row without the caller's text; an
// authenticated request's oversized fields are capped with a marker.
func TestAuditFlooding(t *testing.T) {
	f := newAuthFixture(t)
	h := f.s.Handler()
	big := strings.Repeat("A", 900<<10)

	for _, tc := range []struct {
		name string
		path string
		body map[string]string
		code int
	}{
		{"query", "/api/v1/login?camera=" + big + "&x=" + big, map[string]string{"user": "u-admin", "password": "wrong password"}, 401},
		{"user name", "/api/v1/login", map[string]string{"user": big[:60<<10], "password": "wrong password"}, 400},
		{"query key", "/api/v1/login?" + big + "=1", map[string]string{"user": "u-admin", "password": "x"}, 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if rec := do(t, h, "POST", tc.path, "", tc.body); rec.Code != tc.code {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.code, rec.Body)
			}
			a := lastAudit(t, f.db)
			if n := entrySize(a); n > 2048 || strings.Contains(a.Path+a.Camera+a.User+a.Detail, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA") {
				t.Fatalf("anonymous entry of %d bytes holds the caller's text: %+v", n, a)
			}
			if a.Camera != "" || !strings.HasPrefix(a.Path, loginPath) {
				t.Fatalf("entry: camera %q path %q", a.Camera, a.Path)
			}
		})
	}
	// The query keys are kept, without values.
	do(t, h, "POST", "/api/v1/login?camera=secret-value", "", map[string]string{"user": "u-admin", "password": "wrong password"})
	if a := lastAudit(t, f.db); a.Path != loginPath+"?camera=…" || a.User != "u-admin" {
		t.Fatalf("path %q user %q", a.Path, a.User)
	}

	// Authenticated: capped with a marker.
	tok := f.token(t, admin)
	do(t, h, "GET", "/api/v1/audit?camera="+big[:4000]+"&x="+big, tok, nil)
	a := lastAudit(t, f.db)
	if len(a.Camera) > audit.MaxCamera || len(a.Path) > audit.MaxPath || !strings.Contains(a.Camera, audit.TruncatedMarker) ||
		!strings.Contains(a.Path, audit.TruncatedMarker) {
		t.Fatalf("authenticated entry not capped: camera %d bytes, path %d bytes", len(a.Camera), len(a.Path))
	}
	if n := entrySize(a); n > audit.MaxEntryBytes {
		t.Fatalf("entry of %d bytes", n)
	}
}

// TestLoginThrottle (issue #22.1): failures of one account, or from one
// address, are answered 429 with Retry-After after the free ones, with
// exponential backoff; during a lockout even the right password is
// refused; after it the right password works. Counted in
// xueliang_api_login_failures_total.
func TestLoginThrottle(t *testing.T) {
	f := newAuthFixture(t)
	now := time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)
	f.s.Now = func() time.Time { return now }
	reg := prometheus.NewRegistry()
	f.s.m = newMetrics(reg) // the fixture's Handler built unregistered ones
	h := f.s.Handler()
	login := func(user, pass, addr string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", loginPath, strings.NewReader(`{"user":"`+user+`","password":"`+pass+`"}`))
		req.RemoteAddr = addr + ":40000"
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	user := f.users[admin]

	// Per account, each failure from a new address.
	for i := range LoginThrottleDefaults.Free {
		if rec := login(user, "wrong password", "198.51.100."+strconv.Itoa(i+1)); rec.Code != 401 {
			t.Fatalf("failure %d: %d", i+1, rec.Code)
		}
	}
	var waits []int
	for i := range 3 {
		if rec := login(user, "wrong password", "198.51.100.100"); rec.Code != 401 {
			t.Fatalf("failure %d after the free ones: %d (the lockout had passed)", i+1, rec.Code)
		}
		rec := login(user, testPassword, "198.51.100.101")
		if rec.Code != 429 {
			t.Fatalf("locked account, right password: %d, want 429", rec.Code)
		}
		secs, err := strconv.Atoi(rec.Header().Get("Retry-After"))
		if err != nil || secs < 1 {
			t.Fatalf("Retry-After %q", rec.Header().Get("Retry-After"))
		}
		waits = append(waits, secs)
		now = now.Add(time.Duration(secs) * time.Second)
	}
	if waits[0] != 1 || waits[1] != 2 || waits[2] != 4 {
		t.Fatalf("backoff %v, want [1 2 4] seconds", waits)
	}
	if a := lastAudit(t, f.db); a.Status != 429 || !strings.Contains(a.Detail, "throttled") {
		t.Fatalf("throttled login audited as %d %q", a.Status, a.Detail)
	}
	if rec := login(user, testPassword, "198.51.100.101"); rec.Code != 200 {
		t.Fatalf("after the lockout, right password: %d %s", rec.Code, rec.Body)
	}
	// Success cleared the account.
	if rec := login(user, "wrong password", "198.51.100.102"); rec.Code != 401 {
		t.Fatalf("after success: %d", rec.Code)
	}
	if rec := login(user, testPassword, "198.51.100.102"); rec.Code != 200 {
		t.Fatalf("after success, one failure: %d", rec.Code)
	}

	// Per address: many accounts from one address.
	addr := "203.0.113.9"
	for i := range LoginThrottleDefaults.FreePerAddress + 1 {
		if rec := login("nobody"+strconv.Itoa(i), "wrong password", addr); rec.Code != 401 {
			t.Fatalf("address failure %d: %d", i+1, rec.Code)
		}
	}
	if rec := login(f.users[auditor], testPassword, addr); rec.Code != 429 || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("locked address: %d", rec.Code)
	}
	if rec := login(f.users[auditor], testPassword, "203.0.113.10"); rec.Code != 200 {
		t.Fatalf("other address: %d", rec.Code)
	}

	if got := testutil.ToFloat64(f.s.m.loginFailures.WithLabelValues(loginThrottled)); got != 4 {
		t.Errorf("throttled count %v, want 4", got)
	}
	if got := testutil.ToFloat64(f.s.m.loginFailures.WithLabelValues(loginBadCredentials)); got < 30 {
		t.Errorf("bad credentials count %v", got)
	}
	if n, err := testutil.GatherAndCount(reg, "xueliang_api_login_failures_total"); err != nil || n != 2 {
		t.Errorf("registered series %d %v", n, err)
	}
}

// TestLoginThrottleBounded: the throttle remembers at most MaxKeys keys.
func TestLoginThrottleBounded(t *testing.T) {
	th := &LoginThrottle{MaxKeys: 10}
	now := time.Now()
	for i := range 100 {
		th.Fail(now, "u"+strconv.Itoa(i), "a"+strconv.Itoa(i))
	}
	if len(th.keys) > 10 {
		t.Fatalf("%d keys", len(th.keys))
	}
}
