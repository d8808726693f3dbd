package main

// Authentication end to end: the real server rejects anonymous requests,
// and `xueliang audit verify` finds an edited or deleted audit entry.

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"xueliang/cmd/xueliang/internal/api"
	"xueliang/cmd/xueliang/internal/audit"
	"xueliang/cmd/xueliang/internal/auth"
	"xueliang/cmd/xueliang/internal/config"
	"xueliang/index"
)

// testBootstrapToken is the bootstrap token of every server the tests start
// (startProcess sets XUELIANG_BOOTSTRAP_TOKEN).
const testBootstrapToken = "xueliang-test-bootstrap-token"

// The tests' HTTP helpers (getJSON, fetchReplay, scrapeMetrics, ...) use
// http.DefaultTransport; it sends the bootstrap token with every loopback
// request for xueliang's API, /readyz or /metrics that carries no
// Authorization header of its own (not to other local servers such as
// MinIO). A test that needs an anonymous request uses anonymousClient.
func init() {
	http.DefaultTransport = bearerTransport{base: http.DefaultTransport, token: testBootstrapToken}
}

type bearerTransport struct {
	base  http.RoundTripper
	token string
}

func (b bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	p := r.URL.Path
	if r.Header.Get("Authorization") == "" && strings.HasPrefix(r.URL.Host, "127.0.0.1:") &&
		(strings.HasPrefix(p, "/api/") || p == "/readyz" || p == "/metrics") {
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+b.token)
	}
	return b.base.RoundTrip(r)
}

var anonymousClient = &http.Client{Transport: &http.Transport{}}

// TestServerRequiresAuth starts the real server: anonymous requests get 401
// everywhere but /healthz, the bootstrap token gets in, and a user created
// with it logs in.
func TestServerRequiresAuth(t *testing.T) {
	s := startServer(t, "")
	for _, path := range []string{"/api/v1/cameras", "/api/v1/me", "/readyz", "/metrics", "/api/v1/audit"} {
		resp, err := anonymousClient.Get(s.base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("anonymous GET %s: %d", path, resp.StatusCode)
		}
	}
	if resp, err := anonymousClient.Get(s.base + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	var cams map[string]any
	if code := getJSON(t, s.base+"/api/v1/cameras", &cams); code != 200 {
		t.Fatalf("bootstrap GET /api/v1/cameras: %d", code)
	}
	// The shared helpers get through (they send the bootstrap token).
	if code, body := getReadyz(t, s); code == 401 || code == 403 {
		t.Fatalf("readyz through the harness: %d %s", code, body)
	}
	if m := scrapeMetrics(t, s); len(m) == 0 {
		t.Fatal("empty scrape")
	}
	var me struct{ User, Role string }
	if code := getJSON(t, s.base+"/api/v1/me", &me); code != 200 || me.User != "bootstrap" || me.Role != "admin" {
		t.Fatalf("me: %d %+v", code, me)
	}

	post := func(c *http.Client, path, body string) (int, string) {
		resp, err := c.Post(s.base+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := post(http.DefaultClient, "/api/v1/users", `{"name":"wang","role":"auditor","password":"a long password"}`); code != 201 {
		t.Fatalf("create user: %d %s", code, body)
	}
	if code, _ := post(anonymousClient, "/api/v1/login", `{"user":"wang","password":"wrong password"}`); code != 401 {
		t.Fatalf("wrong password: %d", code)
	}
	code, body := post(anonymousClient, "/api/v1/login", `{"user":"wang","password":"a long password"}`)
	if code != 200 || !strings.Contains(body, `"token":"xl_`) {
		t.Fatalf("login: %d %s", code, body)
	}
	if b, _ := os.ReadFile(s.proc.log); bytes.Contains(b, []byte(testBootstrapToken)) || bytes.Contains(b, []byte("a long password")) {
		t.Fatal("a secret reached the server log")
	}
	s.proc.stop()
	var out, errOut bytes.Buffer
	if rc := run([]string{"audit", "verify", "--config", s.cfgPath}, &out, &errOut); rc != 0 || !strings.Contains(out.String(), "audit log OK") {
		t.Fatalf("audit verify: %d %s %s", rc, out.String(), errOut.String())
	}
}

// TestAuditVerifyDetectsTampering appends entries through the real guard,
// then edits one row and deletes another with plain SQL: `xueliang audit
// verify` fails and names the entry.
func TestAuditVerifyDetectsTampering(t *testing.T) {
	for _, tc := range []struct {
		name, sql string
		wantID    int
		want      string
	}{
		{"edited", `UPDATE audit SET status = 200 WHERE id = 4`, 4, "edited"},
		{"deleted", `DELETE FROM audit WHERE id = 5`, 6, "missing"},
		{"first deleted", `DELETE FROM audit WHERE id = 1`, 2, "missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfgPath, dbPath := auditFixture(t, 8)
			var out, errOut bytes.Buffer
			if rc := run([]string{"audit", "verify", "--config", cfgPath}, &out, &errOut); rc != 0 || !strings.Contains(out.String(), "audit log OK: 8 entries") {
				t.Fatalf("before tampering: %d %q %q", rc, out.String(), errOut.String())
			}

			db, err := sql.Open("sqlite", dbPath)
			if err != nil {
				t.Fatal(err)
			}
			// The table refuses updates and deletes; a forger drops the guard first.
			if _, err := db.Exec(tc.sql); err == nil || !strings.Contains(err.Error(), "append-only") {
				t.Fatalf("append-only trigger: %v", err)
			}
			for _, stmt := range []string{`DROP TRIGGER audit_no_update`, `DROP TRIGGER audit_no_delete`, tc.sql} {
				if _, err := db.Exec(stmt); err != nil {
					t.Fatal(err)
				}
			}
			db.Close()

			out.Reset()
			errOut.Reset()
			rc := run([]string{"audit", "verify", "--config", cfgPath}, &out, &errOut)
			if rc != 1 || !strings.Contains(out.String(), fmt.Sprintf("entry %d:", tc.wantID)) || !strings.Contains(out.String(), tc.want) {
				t.Fatalf("after tampering: rc %d, %q %q", rc, out.String(), errOut.String())
			}
			// GET /api/v1/audit/verify's verifier names the same entry.
			cfg, err := config.Load(cfgPath, os.Environ())
			if err != nil {
				t.Fatal(err)
			}
			rd, err := index.OpenAuditReader(context.Background(), dbPath)
			if err != nil {
				t.Fatal(err)
			}
			defer rd.Close()
			_, _, _, verr := auditVerifier{cfg: cfg, db: rd}.VerifyAudit(context.Background())
			var bad *audit.BadEntryError
			if !errors.As(verr, &bad) || bad.ID != int64(tc.wantID) || !strings.Contains(bad.Reason, tc.want) {
				t.Fatalf("the API's verifier after tampering: %v", verr)
			}
		})
	}
}

// auditFixture writes a config whose index holds n audit entries made by
// requests through the real API guard (entry 4 is a 403).
func auditFixture(t *testing.T, n int) (cfgPath, dbPath string) {
	t.Helper()
	dir := t.TempDir()
	dbPath = filepath.Join(dir, "data", "index.db")
	cfgPath = filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, []byte("data_dir: "+filepath.Join(dir, "data")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	db, err := index.Open(ctx, dbPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	svc := &auth.Service{Store: db, BootstrapToken: testBootstrapToken, Argon2: auth.Argon2Params{Memory: 64, Time: 1, Threads: 1}}
	if _, err := svc.CreateUser(ctx, auth.NewUser{Name: "zhao", Role: auth.RoleInstaller, Password: "a long password"}); err != nil {
		t.Fatal(err)
	}
	inst, err := svc.CreateToken(ctx, "zhao", "t", 0)
	if err != nil {
		t.Fatal(err)
	}
	s := &api.Server{Index: db, Auth: svc}
	h := s.Handler()
	for i := range n {
		tok, path := testBootstrapToken, "/api/v1/me"
		if i == 3 {
			tok, path = inst.Token, "/api/v1/users" // 403: installers do not administer users
		}
		req := httptest.NewRequest("GET", path, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
	}
	recs, err := db.QueryAudit(ctx, index.AuditQuery{Limit: 1000})
	if err != nil || len(recs) != n || (n >= 4 && recs[n-4].Status != 403) {
		t.Fatalf("fixture: %d entries, %v", len(recs), err)
	}
	return cfgPath, dbPath
}

// TestUserAddCLI creates a user from the command line; the action is in
// the (still intact) audit log and the user can log in.
func TestUserAddCLI(t *testing.T) {
	cfgPath, dbPath := auditFixture(t, 2)
	var out, errOut bytes.Buffer
	args := []string{"add", "sun", "--role", "operator", "--townships", "Huiting,Jiyang", "--config", cfgPath}
	if rc := runUser(args, strings.NewReader("short\n"), &out, &errOut); rc != 1 || !strings.Contains(errOut.String(), "password") {
		t.Fatalf("short password: %d %q", rc, errOut.String())
	}
	if rc := runUser(args, strings.NewReader("a long password\n"), &out, &errOut); rc != 0 {
		t.Fatalf("user add: %d %q", rc, errOut.String())
	}
	ctx := context.Background()
	db, err := index.Open(ctx, dbPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	sess, err := (&auth.Service{Store: db}).Login(ctx, "sun", "a long password")
	if err != nil || sess.Identity.Role != "operator" || len(sess.Identity.Townships) != 2 {
		t.Fatalf("login: %+v %v", sess.Identity, err)
	}
	recs, _ := db.QueryAudit(ctx, index.AuditQuery{Limit: 2})
	if len(recs) != 2 || recs[0].Method != "CLI" || recs[0].Status != 201 || recs[1].Status != 400 {
		t.Fatalf("audit: %+v", recs)
	}
	out.Reset()
	if rc := run([]string{"audit", "verify", "--config", cfgPath}, &out, &errOut); rc != 0 || !strings.Contains(out.String(), "OK: 4 entries") {
		t.Fatalf("verify: %d %q %q", rc, out.String(), errOut.String())
	}
}
