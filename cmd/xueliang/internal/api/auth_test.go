package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"xueliang/cmd/xueliang/internal/audit"
	"xueliang/cmd/xueliang/internal/auth"
	"xueliang/index"
)

const (
	testBootstrap = "bootstrap-token-for-api-tests"
	testScrape    = "scrape-token-for-api-tests"
	testPassword  = "a long password"
)

// The roles of the matrix, and the callers that are not a role.
const (
	anonymous = "anonymous"
	admin     = auth.RoleAdmin
	installer = auth.RoleInstaller
	operator  = auth.RoleOperator // limited to township A
	auditor   = auth.RoleAuditor
)

var matrixRoles = []string{anonymous, admin, installer, operator, auditor}

// roleMatrix is issue #4's role × action table, written out here rather
// than derived from auth.Can so that the test checks the data. A route
// whose action is missing fails TestRoleMatrix: a new action needs a row.
var roleMatrix = map[Action][]string{
	ActReady:       {admin, installer, operator, auditor},
	ActMetrics:     {admin}, // and the scrape token
	ActCameraRead:  {admin, installer, operator, auditor},
	ActCameraWrite: {admin, installer},
	ActProbe:       {admin, installer},
	ActArchiveRead: {admin, operator},
	ActReplay:      {admin, operator},
	ActLive:        {admin, operator},
	ActAuditRead:   {admin, auditor},
	ActUserAdmin:   {admin},
	ActSession:     {admin, installer, operator, auditor},
	// Issue #18: operators lock evidence, only admins unlock it or change
	// retention.
	ActEvidenceLock:   {admin, operator},
	ActEvidenceRead:   {admin, operator, auditor},
	ActEvidenceUnlock: {admin},
	ActRetentionWrite: {admin},
	ActComplianceRead: {admin, operator, auditor},
	// Issue #21: the cluster's nodes.
	ActNodeRead:  {admin, operator, auditor},
	ActNodeAdmin: {admin},
}

// anonymousRoutes are served without a token.
var anonymousRoutes = []string{"GET /healthz", "POST /api/v1/login"}

type authFixture struct {
	db  *index.DB
	svc *auth.Service
	s   *Server
	// users maps a matrix role to its user name.
	users map[string]string
	// adminTok is an API token of the admin (the bootstrap token stops
	// working once an enabled admin exists).
	adminTok string
}

func newAuthFixture(t *testing.T) *authFixture {
	t.Helper()
	ctx := context.Background()
	db, err := index.Open(ctx, filepath.Join(t.TempDir(), "index.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for _, c := range []index.Camera{{ID: "camA", Name: "A", Township: "A"}, {ID: "camB", Name: "B", Township: "B"}} {
		if err := db.PutCamera(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	svc := &auth.Service{Store: db, BootstrapToken: testBootstrap, Argon2: auth.Argon2Params{Memory: 64, Time: 1, Threads: 1}}
	f := &authFixture{db: db, svc: svc, users: map[string]string{}}
	for _, role := range []string{admin, installer, operator, auditor} {
		nu := auth.NewUser{Name: "u-" + role, Role: role, Password: testPassword}
		if role == operator {
			nu.Townships = []string{"A"}
		}
		if _, err := svc.CreateUser(ctx, nu); err != nil {
			t.Fatal(err)
		}
		f.users[role] = nu.Name
	}
	f.s = &Server{Index: db, Auth: svc, MetricsToken: testScrape,
		Metrics: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "# metrics\n") })}
	f.s.Handler() // fills the defaults guard uses
	f.adminTok = f.token(t, admin)
	return f
}

// token issues a fresh API token for role ("" for anonymous).
func (f *authFixture) token(t *testing.T, role string) string {
	t.Helper()
	if role == anonymous {
		return ""
	}
	tok, err := f.svc.CreateToken(context.Background(), f.users[role], "test", 0)
	if err != nil {
		t.Fatal(err)
	}
	return tok.Token
}

// concrete fills a route pattern's wildcards.
func concrete(path, cam string) string {
	path = strings.ReplaceAll(path, "{id}", cam)
	path = strings.ReplaceAll(path, "{name}", "nobody")
	for strings.Contains(path, "{") {
		i, j := strings.Index(path, "{"), strings.Index(path, "}")
		path = path[:i] + "x" + path[j+1:]
	}
	return path
}

// stubMux serves every route of the table through guard, with a handler
// that only records that it was reached: the matrix tests guard alone,
// whatever the real handlers would do with the request.
func (f *authFixture) stubMux() http.Handler {
	mux := http.NewServeMux()
	for _, r := range f.s.table() {
		mux.Handle(r.Method+" "+r.Path, f.s.guard(r.Route, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(299) // reached the handler
		})))
	}
	return mux
}

func do(t *testing.T, h http.Handler, method, path, token string, body any) *httptest.ResponseRecorder {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req := httptest.NewRequest(method, path, rd)
	req.RemoteAddr = "192.0.2.7:40000"
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// TestRoleMatrix: each role can do exactly its actions, anonymous requests
// get 401, and an operator is held to its townships.
func TestRoleMatrix(t *testing.T) {
	f := newAuthFixture(t)
	mux := f.stubMux()
	routes := Routes()
	if len(routes) < 20 {
		t.Fatalf("only %d routes", len(routes))
	}
	for _, rt := range routes {
		key := rt.Method + " " + rt.Path
		allowed, inMatrix := roleMatrix[rt.Action]
		isAnon := slices.Contains(anonymousRoutes, key)
		if !inMatrix && !isAnon {
			t.Errorf("%s: action %q has no row in roleMatrix: add one", key, rt.Action)
			continue
		}
		for _, role := range matrixRoles {
			want := 403
			switch {
			case isAnon:
				want = 299
			case role == anonymous:
				want = 401
			case slices.Contains(allowed, role):
				want = 299
			}
			rec := do(t, mux, rt.Method, concrete(rt.Path, "camA"), f.token(t, role), nil)
			if rec.Code != want {
				t.Errorf("%s as %s: %d %s, want %d", key, role, rec.Code, strings.TrimSpace(rec.Body.String()), want)
			}
			if rec.Code == 401 && !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s as %s: 401 without WWW-Authenticate: Bearer", key, role)
			}
		}
		// Township scope: every camera route the operator may use is
		// forbidden on a camera of township B; other roles are unscoped.
		if strings.HasPrefix(rt.Path, "/api/v1/cameras/{id}") && slices.Contains(allowed, operator) {
			if rec := do(t, mux, rt.Method, concrete(rt.Path, "camB"), f.token(t, operator), nil); rec.Code != 403 {
				t.Errorf("%s as operator of A on camera of B: %d, want 403", key, rec.Code)
			}
			if rec := do(t, mux, rt.Method, concrete(rt.Path, "camZ"), f.token(t, operator), nil); rec.Code != 299 {
				t.Errorf("%s as operator on an unknown camera: %d, want the handler (404)", key, rec.Code)
			}
			if rec := do(t, mux, rt.Method, concrete(rt.Path, "camB"), f.token(t, admin), nil); rec.Code != 299 {
				t.Errorf("%s as admin on camera of B: %d", key, rec.Code)
			}
		}
	}
	// The bootstrap token stops once an admin exists (TestBootstrapToken);
	// the scrape token opens /metrics only.
	if rec := do(t, mux, "GET", "/api/v1/users", testBootstrap, nil); rec.Code != 401 {
		t.Errorf("bootstrap token with an admin: %d", rec.Code)
	}
	if rec := do(t, mux, "GET", "/metrics", testScrape, nil); rec.Code != 299 {
		t.Errorf("scrape token on /metrics: %d", rec.Code)
	}
	if rec := do(t, mux, "GET", "/api/v1/cameras", testScrape, nil); rec.Code != 401 {
		t.Errorf("scrape token on the API: %d, want 401", rec.Code)
	}
	for _, bad := range []string{"Basic dXNlcjpwYXNz", "Bearer", "Bearer xl_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"} {
		req := httptest.NewRequest("GET", "/api/v1/cameras", nil)
		req.Header.Set("Authorization", bad)
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		if rec.Code != 401 {
			t.Errorf("Authorization %q: %d, want 401", bad, rec.Code)
		}
	}
	// Everything the matrix did is in an intact chain.
	n, _, err := audit.Verify(context.Background(), f.db)
	if err != nil || n < 50 {
		t.Fatalf("audit: %d entries, %v", n, err)
	}
}

// TestRealHandlerRejectsAnonymous: Handler (not just guard) puts every
// route but /healthz and login behind authentication.
func TestRealHandlerRejectsAnonymous(t *testing.T) {
	f := newAuthFixture(t)
	h := f.s.Handler()
	for _, rt := range Routes() {
		rec := do(t, h, rt.Method, concrete(rt.Path, "camA"), "", nil)
		key := rt.Method + " " + rt.Path
		if slices.Contains(anonymousRoutes, key) {
			if rec.Code == 401 || rec.Code == 403 {
				t.Errorf("%s: %d for an anonymous route", key, rec.Code)
			}
			continue
		}
		if rec.Code != 401 {
			t.Errorf("%s anonymous: %d, want 401", key, rec.Code)
		}
	}
}

func TestInScope(t *testing.T) {
	var none *Principal
	all := &Principal{User: "a", Role: "admin"}
	op := &Principal{User: "o", Role: "operator", Townships: []string{"A", "会亭镇"}}
	for _, tc := range []struct {
		p    *Principal
		town string
		want bool
	}{
		{none, "B", true}, {all, "B", true}, {all, "", true},
		{op, "A", true}, {op, "会亭镇", true}, {op, "B", false}, {op, "", false},
	} {
		if got := tc.p.InScope(tc.town); got != tc.want {
			t.Errorf("%+v.InScope(%q) = %v", tc.p, tc.town, got)
		}
	}
}

func decode(t *testing.T, rec *httptest.ResponseRecorder, v any) {
	t.Helper()
	if err := json.Unmarshal(rec.Body.Bytes(), v); err != nil {
		t.Fatalf("decode %q: %v", rec.Body.String(), err)
	}
}

// TestAuthFlow walks the real handlers: bootstrap creates users, users log
// in, work within their role, and the auditor reads what they did.
func TestAuthFlow(t *testing.T) {
	f := newAuthFixture(t)
	h := f.s.Handler()

	rec := do(t, h, "POST", "/api/v1/users", f.adminTok, map[string]any{"name": "-bad", "role": "root", "password": "short"})
	var fe struct {
		Fields map[string]string `json:"fields"`
	}
	decode(t, rec, &fe)
	if rec.Code != 400 || fe.Fields["name"] == "" || fe.Fields["role"] == "" || fe.Fields["password"] == "" {
		t.Fatalf("bad user: %d %s", rec.Code, rec.Body)
	}
	rec = do(t, h, "POST", "/api/v1/users", f.adminTok, map[string]any{"name": "li", "role": "operator", "password": testPassword, "townships": []string{"A"}})
	if rec.Code != 201 || strings.Contains(rec.Body.String(), "argon2") || strings.Contains(rec.Body.String(), testPassword) {
		t.Fatalf("create user: %d %s", rec.Code, rec.Body)
	}
	if rec := do(t, h, "POST", "/api/v1/users", f.adminTok, map[string]any{"name": "li", "role": "operator", "password": testPassword}); rec.Code != 409 {
		t.Fatalf("duplicate user: %d", rec.Code)
	}

	if rec := do(t, h, "POST", "/api/v1/login", "", map[string]string{"user": "li", "password": "wrong password"}); rec.Code != 401 {
		t.Fatalf("wrong password: %d", rec.Code)
	}
	rec = do(t, h, "POST", "/api/v1/login", "", map[string]string{"user": "li", "password": testPassword})
	var login struct {
		Token   string    `json:"token"`
		Expires time.Time `json:"expires"`
	}
	decode(t, rec, &login)
	if rec.Code != 200 || !strings.HasPrefix(login.Token, auth.TokenPrefix) || login.Expires.Before(time.Now().Add(11*time.Hour)) {
		t.Fatalf("login: %d %s", rec.Code, rec.Body)
	}
	tok := login.Token

	var me struct {
		User      string   `json:"user"`
		Role      string   `json:"role"`
		Townships []string `json:"townships"`
		Actions   []string `json:"actions"`
	}
	rec = do(t, h, "GET", "/api/v1/me", tok, nil)
	decode(t, rec, &me)
	if me.User != "li" || me.Role != "operator" || !slices.Equal(me.Townships, []string{"A"}) || !slices.Contains(me.Actions, "replay") || slices.Contains(me.Actions, "camera.write") ||
		!slices.Contains(me.Actions, "evidence.lock") || slices.Contains(me.Actions, "evidence.unlock") {
		t.Fatalf("me: %s", rec.Body)
	}
	if rec := do(t, h, "GET", "/api/v1/users", tok, nil); rec.Code != 403 {
		t.Fatalf("operator lists users: %d", rec.Code)
	}
	from, to := "2026-11-28T08:00:00Z", "2026-11-28T09:00:00Z"
	if rec := do(t, h, "GET", "/api/v1/cameras/camA/timeline?from="+from+"&to="+to, tok, nil); rec.Code != 200 {
		t.Fatalf("timeline A: %d %s", rec.Code, rec.Body)
	}
	if rec := do(t, h, "GET", "/api/v1/cameras/camB/timeline?from="+from+"&to="+to, tok, nil); rec.Code != 403 {
		t.Fatalf("timeline B: %d %s", rec.Code, rec.Body)
	}

	// Own API tokens.
	rec = do(t, h, "POST", "/api/v1/tokens", tok, map[string]string{"name": "nightly export", "ttl": "720h"})
	var issued auth.IssuedToken
	decode(t, rec, &issued)
	if rec.Code != 201 || issued.Token == "" || issued.Expires == nil {
		t.Fatalf("issue token: %d %s", rec.Code, rec.Body)
	}
	if rec := do(t, h, "POST", "/api/v1/tokens", tok, map[string]string{"name": "x", "user": "u-admin"}); rec.Code != 403 {
		t.Fatalf("operator issues a token for admin: %d", rec.Code)
	}
	var toks struct{ Tokens []auth.TokenInfo }
	decode(t, do(t, h, "GET", "/api/v1/tokens", issued.Token, nil), &toks)
	if len(toks.Tokens) != 2 || strings.Contains(fmtJSON(toks), issued.Token) {
		t.Fatalf("tokens: %+v", toks)
	}
	if rec := do(t, h, "DELETE", "/api/v1/tokens/"+issued.ID, tok, nil); rec.Code != 204 {
		t.Fatalf("revoke: %d", rec.Code)
	}
	if rec := do(t, h, "GET", "/api/v1/me", issued.Token, nil); rec.Code != 401 {
		t.Fatalf("revoked token: %d", rec.Code)
	}

	// PATCH: bad field, then disable.
	if rec := do(t, h, "PATCH", "/api/v1/users/li", f.adminTok, map[string]any{"role": "god"}); rec.Code != 400 {
		t.Fatalf("patch role: %d", rec.Code)
	}
	if rec := do(t, h, "PATCH", "/api/v1/users/nobody", f.adminTok, map[string]any{"disabled": true}); rec.Code != 404 {
		t.Fatalf("patch unknown: %d", rec.Code)
	}

	// Logout ends the session.
	if rec := do(t, h, "POST", "/api/v1/logout", tok, nil); rec.Code != 204 {
		t.Fatalf("logout: %d", rec.Code)
	}
	if rec := do(t, h, "GET", "/api/v1/me", tok, nil); rec.Code != 401 {
		t.Fatalf("after logout: %d", rec.Code)
	}

	// The auditor sees who did what, where and when.
	var entries struct {
		Entries []auditEntryJSON `json:"entries"`
	}
	if rec := do(t, h, "GET", "/api/v1/audit?user=li", f.token(t, operator), nil); rec.Code != 403 {
		t.Fatalf("operator reads audit: %d", rec.Code)
	}
	rec = do(t, h, "GET", "/api/v1/audit?user=li&limit=100", f.token(t, auditor), nil)
	decode(t, rec, &entries)
	if rec.Code != 200 {
		t.Fatalf("audit: %d %s", rec.Code, rec.Body)
	}
	var sawFailedLogin, sawLogin, sawTimeline, sawDenied bool
	for _, e := range entries.Entries {
		if e.User != "li" || e.Remote != "192.0.2.7" {
			t.Errorf("entry %+v", e)
		}
		switch {
		case e.Path == "/api/v1/login" && e.Status == 401 && strings.Contains(e.Detail, "login failed"):
			sawFailedLogin = true
		case e.Path == "/api/v1/login" && e.Status == 200 && e.Role == "operator":
			sawLogin = true
		case e.Camera == "camA" && e.Action == "archive.read" && e.Status == 200 && e.From != nil &&
			e.From.Format(time.RFC3339) == from && e.To.Format(time.RFC3339) == to:
			sawTimeline = true
		case e.Camera == "camB" && e.Status == 403:
			sawDenied = true
		}
		if strings.Contains(e.Detail+e.Path, testPassword) || strings.Contains(e.Detail+e.Path, tok) {
			t.Fatalf("secret in the audit log: %+v", e)
		}
	}
	if !sawFailedLogin || !sawLogin || !sawTimeline || !sawDenied {
		t.Fatalf("audit entries missing (failed login %v, login %v, timeline %v, denied %v): %s",
			sawFailedLogin, sawLogin, sawTimeline, sawDenied, rec.Body)
	}
	rec = do(t, h, "GET", "/api/v1/audit?camera=camB&from=2000-01-01T00:00:00Z", f.adminTok, nil)
	decode(t, rec, &entries)
	if len(entries.Entries) != 1 || entries.Entries[0].Camera != "camB" {
		t.Fatalf("audit by camera: %s", rec.Body)
	}
	if rec := do(t, h, "GET", "/api/v1/audit?limit=0", f.adminTok, nil); rec.Code != 400 {
		t.Fatalf("limit=0: %d", rec.Code)
	}
	if _, _, err := audit.Verify(context.Background(), f.db); err != nil {
		t.Fatal(err)
	}
}

func fmtJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

// failingAudit is the real service whose audit log cannot be written.
type failingAudit struct{ *auth.Service }

func (failingAudit) AppendAudit(context.Context, index.AuditRecord) error {
	return errors.New("disk full")
}

// TestAuditFailClosed: no audit entry, no answer.
func TestAuditFailClosed(t *testing.T) {
	f := newAuthFixture(t)
	f.s.Auth = failingAudit{f.svc}
	h := f.s.Handler()
	rec := do(t, h, "GET", "/api/v1/me", f.adminTok, nil)
	if rec.Code != 503 || strings.Contains(rec.Body.String(), "bootstrap") {
		t.Fatalf("me without audit: %d %s", rec.Code, rec.Body)
	}
	if rec := do(t, h, "GET", "/healthz", "", nil); rec.Code != 200 {
		t.Fatalf("healthz: %d", rec.Code)
	}
}

// TestAuditStreaming: a streaming handler (replay) that flushes through
// http.ResponseController works behind guard, and its entry records 200.
func TestAuditStreaming(t *testing.T) {
	f := newAuthFixture(t)
	rt := Route{"GET", "/api/v1/cameras/{id}/replay.mp4", ActReplay}
	mux := http.NewServeMux()
	mux.Handle(rt.Method+" "+rt.Path, f.s.guard(rt, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "video/mp4")
		io.WriteString(w, "part1")
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("flush: %v", err)
		}
		io.WriteString(w, "part2")
	})))
	hs := httptest.NewServer(mux)
	defer hs.Close()
	req, _ := http.NewRequest("GET", hs.URL+"/api/v1/cameras/camA/replay.mp4?start=2026-11-28T08:00:00Z&end=2026-11-28T08:01:00Z", nil)
	req.Header.Set("Authorization", "Bearer "+f.token(t, operator))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "part1part2" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	recs, err := f.db.QueryAudit(context.Background(), index.AuditQuery{Camera: "camA"})
	if err != nil || len(recs) != 1 {
		t.Fatalf("%+v %v", recs, err)
	}
	r := recs[0]
	if r.User != "u-operator" || r.Action != "replay" || r.Status != 200 ||
		!r.From.Equal(time.Date(2026, 11, 28, 8, 0, 0, 0, time.UTC)) || !r.To.Equal(time.Date(2026, 11, 28, 8, 1, 0, 0, time.UTC)) {
		t.Fatalf("entry %+v", r)
	}
}

// TestMetricsAuth: /metrics takes the scrape token or an admin.
func TestMetricsAuth(t *testing.T) {
	f := newAuthFixture(t)
	h := f.s.Handler()
	for _, tc := range []struct {
		name, token string
		want        int
	}{
		{"anonymous", "", 401}, {"scrape token", testScrape, 200}, {"admin", f.token(t, admin), 200},
		{"bootstrap after an admin exists", testBootstrap, 401}, {"operator", f.token(t, operator), 403},
	} {
		if rec := do(t, h, "GET", "/metrics", tc.token, nil); rec.Code != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, rec.Code, tc.want)
		}
	}
}

// TestAuditRangeFromBody: a handler whose range is in its JSON body records
// it with noteAuditRange.
func TestAuditRangeFromBody(t *testing.T) {
	f := newAuthFixture(t)
	rt := Route{"POST", "/api/v1/motion/search", ActArchiveRead}
	t1, t2 := time.Date(2026, 11, 28, 8, 0, 0, 0, time.UTC), time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	h := f.s.guard(rt, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		noteAuditRange(r.Context(), "camA", t1, t2)
		writeJSON(w, 200, map[string]any{})
	}))
	if rec := do(t, h, rt.Method, rt.Path, f.token(t, operator), map[string]any{}); rec.Code != 200 {
		t.Fatalf("%d", rec.Code)
	}
	recs, err := f.db.QueryAudit(context.Background(), index.AuditQuery{Camera: "camA"})
	if err != nil || len(recs) != 1 || !recs[0].From.Equal(t1) || !recs[0].To.Equal(t2) || recs[0].Action != "archive.read" {
		t.Fatalf("%+v %v", recs, err)
	}
}

// TestAllActionsListed: GET /api/v1/me reports from allActions, so every
// route's action is in it (the console hides what me does not list).
func TestAllActionsListed(t *testing.T) {
	for _, r := range Routes() {
		if !slices.Contains(allActions, r.Action) {
			t.Errorf("%s %s: action %q missing from allActions", r.Method, r.Path, r.Action)
		}
	}
}
