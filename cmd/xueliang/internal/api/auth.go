package api

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"xueliang/cmd/xueliang/internal/auth"
	"xueliang/index"
)

// Auth is what the API needs from the authentication service
// (*auth.Service): tokens → identities, logins, users and tokens, and the
// audit log. Errors: auth.ErrUnauthenticated, auth.ErrBadCredentials,
// auth.ErrNotFound, auth.ErrExists and auth.FieldErrors are answered
// 401/401/404/409/400; anything else is a 500 (503 for the audit log).
type Auth interface {
	// Authenticate returns the identity of a bearer token.
	Authenticate(ctx context.Context, token string) (auth.Identity, error)
	// Login checks a password and issues a session token.
	Login(ctx context.Context, user, password string) (auth.Session, error)
	// Logout revokes a token.
	Logout(ctx context.Context, token string) error
	Users(ctx context.Context) ([]auth.UserInfo, error)
	User(ctx context.Context, name string) (auth.UserInfo, error)
	CreateUser(ctx context.Context, u auth.NewUser) (auth.UserInfo, error)
	UpdateUser(ctx context.Context, name string, p auth.UserPatch) (auth.UserInfo, error)
	DeleteUser(ctx context.Context, name string) error
	// Tokens lists the tokens of user ("" = all users).
	Tokens(ctx context.Context, user string) ([]auth.TokenInfo, error)
	// CreateToken issues an API token; ttl 0 never expires.
	CreateToken(ctx context.Context, user, name string, ttl time.Duration) (auth.IssuedToken, error)
	// RevokeToken revokes token id of user ("" = any user).
	RevokeToken(ctx context.Context, id, user string) error
	// AppendAudit appends one entry to the hash-chained audit log.
	AppendAudit(ctx context.Context, rec index.AuditRecord) error
	// QueryAudit returns audit entries, newest first.
	QueryAudit(ctx context.Context, q index.AuditQuery) ([]index.AuditRecord, error)
}

const loginPath = "/api/v1/login"

// allActions lists every Action (GET /api/v1/me reports the caller's).
var allActions = []Action{ActHealth, ActReady, ActMetrics, ActCameraRead, ActCameraWrite, ActProbe,
	ActArchiveRead, ActReplay, ActAuditRead, ActUserAdmin, ActSession}

// authRoutes serves login, users, tokens and the audit log.
func (s *Server) authRoutes() []route {
	return []route{
		{Route{"POST", loginPath, ActSession}, s.login},
		{Route{"POST", "/api/v1/logout", ActSession}, s.logout},
		{Route{"GET", "/api/v1/me", ActSession}, s.me},
		{Route{"GET", "/api/v1/users", ActUserAdmin}, s.listUsers},
		{Route{"POST", "/api/v1/users", ActUserAdmin}, s.createUser},
		{Route{"GET", "/api/v1/users/{name}", ActUserAdmin}, s.getUser},
		{Route{"PATCH", "/api/v1/users/{name}", ActUserAdmin}, s.patchUser},
		{Route{"DELETE", "/api/v1/users/{name}", ActUserAdmin}, s.deleteUser},
		{Route{"GET", "/api/v1/tokens", ActSession}, s.listTokens},
		{Route{"POST", "/api/v1/tokens", ActSession}, s.createToken},
		{Route{"DELETE", "/api/v1/tokens/{id}", ActSession}, s.revokeToken},
		{Route{"GET", "/api/v1/audit", ActAuditRead}, s.queryAudit},
	}
}

// auditNote is what a handler adds to its request's audit entry.
type auditNote struct {
	user, role string // for anonymous routes (login): who it was about
	details    []string
	camera     string
	from, to   time.Time
}

type auditNoteKey struct{}

// noteAudit adds detail to the request's audit entry (never a secret).
func noteAudit(ctx context.Context, format string, args ...any) {
	if n, ok := ctx.Value(auditNoteKey{}).(*auditNote); ok {
		n.details = append(n.details, fmt.Sprintf(format, args...))
	}
}

// noteAuditRange records the camera ("" keeps the one from the path or
// query) and time range of a request whose range is not in the query (a
// JSON body: motion search, exports).
func noteAuditRange(ctx context.Context, camera string, from, to time.Time) {
	if n, ok := ctx.Value(auditNoteKey{}).(*auditNote); ok {
		n.camera, n.from, n.to = camera, from.UTC(), to.UTC()
	}
}

func noteFrom(ctx context.Context) *auditNote {
	n, _ := ctx.Value(auditNoteKey{}).(*auditNote)
	return n
}

// bearer returns the bearer token of r ("" when none).
func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// guard authenticates the caller, checks that its role may perform
// rt.Action (and, for routes with a camera {id}, that the camera is in the
// caller's townships), records the request in the audit log, then calls h.
//
//   - GET /healthz is anonymous and not audited.
//   - POST /api/v1/login is anonymous; every attempt is audited with the
//     user name tried.
//   - GET /metrics takes Server.MetricsToken or an admin's token; GET
//     /readyz any user's. Neither is audited (scrapes would drown the log).
//   - Everything else needs "Authorization: Bearer <token>": 401 when it is
//     missing, unknown, expired or revoked (not audited), 403 when the role
//     lacks the action or the camera is outside the caller's townships.
//
// The audit entry is appended when the status line is about to be sent,
// so it records the result; if it cannot be appended the answer becomes a
// 503 and nothing the handler wrote reaches the client (fail closed).
func (s *Server) guard(rt Route, h http.Handler) http.Handler {
	if rt.Action == ActHealth {
		return h
	}
	anonymous := rt.Method == "POST" && rt.Path == loginPath
	audited := rt.Action != ActReady && rt.Action != ActMetrics
	cameraRoute := strings.HasPrefix(rt.Path, "/api/v1/cameras/{id}")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.Auth == nil {
			h.ServeHTTP(w, r)
			return
		}
		ctx := r.Context()
		var p *Principal
		var tokenID string
		if !anonymous {
			if rt.Action == ActMetrics && s.MetricsToken != "" && constantTimeEqual(bearer(r), s.MetricsToken) {
				h.ServeHTTP(w, r.WithContext(withPrincipal(ctx, &Principal{User: "metrics", Role: "metrics"})))
				return
			}
			id, err := s.Auth.Authenticate(ctx, bearer(r))
			switch {
			case errors.Is(err, auth.ErrUnauthenticated):
				s.Logger.Debug("unauthenticated request", "method", r.Method, "path", r.URL.Path, "remote", remoteHost(r),
					"token_sent", bearer(r) != "")
				w.Header().Set("WWW-Authenticate", `Bearer realm="xueliang"`)
				writeError(w, http.StatusUnauthorized, "authentication required: send Authorization: Bearer <token> (POST %s issues one)", loginPath)
				return
			case err != nil:
				s.Logger.Error("authentication failed", "err", err)
				writeError(w, http.StatusServiceUnavailable, "authentication unavailable; try again later")
				return
			}
			p = &Principal{User: id.User, Role: id.Role, Townships: id.Townships}
			tokenID = id.TokenID
			ctx = withPrincipal(ctx, p)
		}
		note := &auditNote{}
		ctx = context.WithValue(ctx, auditNoteKey{}, note)
		r = r.WithContext(ctx)

		if !audited {
			if !auth.Can(p.Role, string(rt.Action)) {
				writeError(w, http.StatusForbidden, "role %s may not %s", p.Role, rt.Action)
				return
			}
			h.ServeHTTP(w, r)
			return
		}

		rec := index.AuditRecord{
			At: s.Now().UTC(), Remote: remoteHost(r), Method: r.Method, Path: auditPath(r),
			Action: string(rt.Action),
		}
		if cameraRoute {
			rec.Camera = r.PathValue("id")
		} else {
			rec.Camera = r.URL.Query().Get("camera")
		}
		rec.From, rec.To = auditRange(r)
		aw := &auditWriter{ResponseWriter: w, append: func(status int) error {
			if p != nil {
				rec.User, rec.Role = p.User, p.Role
			} else {
				rec.User, rec.Role = note.user, note.role
			}
			rec.Status = status
			if note.camera != "" {
				rec.Camera = note.camera
			}
			if !note.from.IsZero() || !note.to.IsZero() {
				rec.From, rec.To = note.from, note.to
			}
			var d []string
			if tokenID != "" {
				d = append(d, "token "+tokenID)
			}
			rec.Detail = strings.Join(append(d, note.details...), "; ")
			// The entry is written even when the client has gone away.
			if err := s.Auth.AppendAudit(context.WithoutCancel(ctx), rec); err != nil {
				s.Logger.Error("audit entry not written; request refused", "path", r.URL.Path, "err", err)
				return err
			}
			return nil
		}}
		defer aw.finish()

		if p != nil && !auth.Can(p.Role, string(rt.Action)) {
			noteAudit(ctx, "denied: role lacks %s", rt.Action)
			writeError(aw, http.StatusForbidden, "role %s may not %s", p.Role, rt.Action)
			return
		}
		if p != nil && cameraRoute && len(p.Townships) > 0 {
			id := r.PathValue("id")
			cam, err := s.Index.Camera(ctx, id)
			switch {
			case errors.Is(err, index.ErrNotFound):
				// The handler answers 404.
			case err != nil:
				s.internal(aw, r, "get camera", err)
				return
			case !p.InScope(cam.Township):
				noteAudit(ctx, "denied: township %q out of scope", cam.Township)
				writeError(aw, http.StatusForbidden, "camera %s is outside your townships", id)
				return
			}
		}
		h.ServeHTTP(aw, r)
	})
}

// auditWriter appends the audit entry when the status is decided: at the
// first WriteHeader, Write or Flush, or when the handler returns without
// writing. When the append fails it answers 503 instead and swallows
// everything the handler writes.
type auditWriter struct {
	http.ResponseWriter
	append    func(status int) error
	committed bool
	failed    bool
}

var errAuditUnavailable = errors.New("audit log unavailable")

func (a *auditWriter) WriteHeader(code int) {
	if code < 200 && code != http.StatusSwitchingProtocols {
		a.ResponseWriter.WriteHeader(code) // 1xx informational
		return
	}
	if a.committed {
		if !a.failed {
			a.ResponseWriter.WriteHeader(code) // superfluous; net/http logs it
		}
		return
	}
	a.committed = true
	if err := a.append(code); err != nil {
		a.failed = true
		h := a.ResponseWriter.Header()
		for k := range h {
			delete(h, k)
		}
		writeError(a.ResponseWriter, http.StatusServiceUnavailable, "audit log unavailable: request refused")
		return
	}
	a.ResponseWriter.WriteHeader(code)
}

func (a *auditWriter) Write(b []byte) (int, error) {
	if !a.committed {
		a.WriteHeader(http.StatusOK)
	}
	if a.failed {
		return 0, errAuditUnavailable
	}
	return a.ResponseWriter.Write(b)
}

// FlushError lets http.ResponseController flush through the audit.
func (a *auditWriter) FlushError() error {
	if !a.committed {
		a.WriteHeader(http.StatusOK)
	}
	if a.failed {
		return errAuditUnavailable
	}
	return http.NewResponseController(a.ResponseWriter).Flush()
}

// Flush implements http.Flusher.
func (a *auditWriter) Flush() { _ = a.FlushError() }

// Unwrap lets http.ResponseController reach the underlying writer.
func (a *auditWriter) Unwrap() http.ResponseWriter { return a.ResponseWriter }

// finish records a handler that wrote nothing (an implicit 200) or that
// panicked before writing (500); it runs deferred, also while panicking.
func (a *auditWriter) finish() {
	if a.committed {
		return
	}
	if v := recover(); v != nil {
		a.committed = true
		_ = a.append(http.StatusInternalServerError)
		panic(v)
	}
	a.WriteHeader(http.StatusOK)
}

func constantTimeEqual(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// remoteHost is the client's address (no port). X-Forwarded-For is not
// trusted: put a proxy's own log beside the audit log.
func remoteHost(r *http.Request) string {
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return h
	}
	return r.RemoteAddr
}

// auditPath is the path and query, bounded. Tokens are never accepted in
// the query, so none can end up here.
func auditPath(r *http.Request) string {
	p := r.URL.Path
	if r.URL.RawQuery != "" {
		p += "?" + r.URL.RawQuery
	}
	if len(p) > 1024 {
		p = p[:1024]
	}
	return p
}

// auditRange is the time range a request asks for: start/end (replay,
// export) or from/to (timelines, searches); zero when absent or invalid.
func auditRange(r *http.Request) (from, to time.Time) {
	q := r.URL.Query()
	parse := func(names ...string) time.Time {
		for _, n := range names {
			if t, err := time.Parse(time.RFC3339Nano, q.Get(n)); err == nil {
				return t.UTC()
			}
		}
		return time.Time{}
	}
	return parse("start", "from"), parse("end", "to")
}

// readBody decodes a JSON body strictly (unknown fields are an error).
func readBody(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			err = errors.New("empty body")
		}
		writeError(w, http.StatusBadRequest, "body: %v", err)
		return false
	}
	return true
}

// authError answers an error of the auth service.
func (s *Server) authError(w http.ResponseWriter, r *http.Request, what string, err error) {
	var fe auth.FieldErrors
	switch {
	case errors.As(err, &fe):
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": err.Error(), "fields": map[string]string(fe)})
	case errors.Is(err, auth.ErrNotFound):
		writeError(w, http.StatusNotFound, "%s: not found", what)
	case errors.Is(err, auth.ErrExists):
		writeError(w, http.StatusConflict, "%s: already exists", what)
	default:
		s.internal(w, r, what, err)
	}
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	var body struct {
		User     string `json:"user"`
		Password string `json:"password"`
	}
	if !readBody(w, r, &body) {
		return
	}
	note := noteFrom(r.Context())
	if note != nil {
		note.user = body.User
	}
	fe := map[string]string{}
	if body.User == "" {
		fe["user"] = "required"
	}
	if body.Password == "" {
		fe["password"] = "required"
	}
	if len(fe) > 0 {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "user and password are required", "fields": fe})
		return
	}
	sess, err := s.Auth.Login(r.Context(), body.User, body.Password)
	if errors.Is(err, auth.ErrBadCredentials) {
		noteAudit(r.Context(), "login failed")
		w.Header().Set("WWW-Authenticate", `Bearer realm="xueliang"`)
		writeError(w, http.StatusUnauthorized, "bad user name or password")
		return
	}
	if err != nil {
		s.internal(w, r, "login", err)
		return
	}
	if note != nil {
		note.role = sess.Identity.Role
	}
	noteAudit(r.Context(), "login: session %s", sess.Identity.TokenID)
	writeJSON(w, http.StatusOK, map[string]any{
		"token": sess.Token, "expires": sess.Expires.UTC(), "user": sess.Identity.User, "role": sess.Identity.Role,
	})
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if err := s.Auth.Logout(r.Context(), bearer(r)); err != nil {
		s.internal(w, r, "logout", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) me(w http.ResponseWriter, r *http.Request) {
	p := principalFrom(r.Context())
	if p == nil {
		writeError(w, http.StatusUnauthorized, "not authenticated")
		return
	}
	acts := []Action{}
	for _, a := range allActions {
		if a != ActHealth && auth.Can(p.Role, string(a)) {
			acts = append(acts, a)
		}
	}
	towns := p.Townships
	if towns == nil {
		towns = []string{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"user": p.User, "role": p.Role, "townships": towns, "actions": acts})
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) {
	us, err := s.Auth.Users(r.Context())
	if err != nil {
		s.authError(w, r, "list users", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"users": us})
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request) {
	var nu auth.NewUser
	if !readBody(w, r, &nu) {
		return
	}
	u, err := s.Auth.CreateUser(r.Context(), nu)
	if err != nil {
		s.authError(w, r, "user "+nu.Name, err)
		return
	}
	noteAudit(r.Context(), "created user %s (role %s)", u.Name, u.Role)
	writeJSON(w, http.StatusCreated, u)
}

func (s *Server) getUser(w http.ResponseWriter, r *http.Request) {
	u, err := s.Auth.User(r.Context(), r.PathValue("name"))
	if err != nil {
		s.authError(w, r, "user "+r.PathValue("name"), err)
		return
	}
	writeJSON(w, http.StatusOK, u)
}

func (s *Server) patchUser(w http.ResponseWriter, r *http.Request) {
	var p auth.UserPatch
	if !readBody(w, r, &p) {
		return
	}
	name := r.PathValue("name")
	u, err := s.Auth.UpdateUser(r.Context(), name, p)
	if err != nil {
		s.authError(w, r, "user "+name, err)
		return
	}
	var changed []string
	if p.Role != nil {
		changed = append(changed, "role="+u.Role)
	}
	if p.Townships != nil {
		changed = append(changed, "townships="+strings.Join(u.Townships, ","))
	}
	if p.Disabled != nil {
		changed = append(changed, "disabled="+strconv.FormatBool(u.Disabled))
	}
	if p.Password != nil {
		changed = append(changed, "password")
	}
	noteAudit(r.Context(), "updated user %s: %s", name, strings.Join(changed, " "))
	writeJSON(w, http.StatusOK, u)
}

func (s *Server) deleteUser(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := s.Auth.DeleteUser(r.Context(), name); err != nil {
		s.authError(w, r, "user "+name, err)
		return
	}
	noteAudit(r.Context(), "deleted user %s", name)
	w.WriteHeader(http.StatusNoContent)
}

// tokenOwner is whose tokens the caller may list or revoke: its own, or
// for an admin every user's ("" ) or the ?user= one.
func tokenOwner(r *http.Request) string {
	p := principalFrom(r.Context())
	if p == nil {
		return ""
	}
	if auth.Can(p.Role, string(ActUserAdmin)) {
		return r.URL.Query().Get("user")
	}
	return p.User
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request) {
	ts, err := s.Auth.Tokens(r.Context(), tokenOwner(r))
	if err != nil {
		s.authError(w, r, "list tokens", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": ts})
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Name string `json:"name"`
		// TTL is a Go duration ("720h"); empty: never expires.
		TTL string `json:"ttl"`
		// User: an admin may issue a token for another user.
		User string `json:"user"`
	}
	if !readBody(w, r, &body) {
		return
	}
	p := principalFrom(r.Context())
	user := body.User
	if p != nil && user == "" {
		user = p.User
	}
	if p != nil && user != p.User && !auth.Can(p.Role, string(ActUserAdmin)) {
		writeError(w, http.StatusForbidden, "only an admin may issue tokens for another user")
		return
	}
	var ttl time.Duration
	if body.TTL != "" {
		var err error
		if ttl, err = time.ParseDuration(body.TTL); err != nil || ttl <= 0 {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": "bad ttl",
				"fields": map[string]string{"ttl": "want a positive duration such as 720h"}})
			return
		}
	}
	if user != auth.BootstrapUser {
		if _, err := s.Auth.User(r.Context(), user); err != nil {
			s.authError(w, r, "user "+user, err)
			return
		}
	}
	tok, err := s.Auth.CreateToken(r.Context(), user, body.Name, ttl)
	if err != nil {
		s.authError(w, r, "token", err)
		return
	}
	noteAudit(r.Context(), "issued api token %s for %s", tok.ID, user)
	writeJSON(w, http.StatusCreated, tok)
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := s.Auth.RevokeToken(r.Context(), id, tokenOwner(r)); err != nil {
		s.authError(w, r, "token "+id, err)
		return
	}
	noteAudit(r.Context(), "revoked token %s", id)
	w.WriteHeader(http.StatusNoContent)
}

type auditEntryJSON struct {
	ID       int64      `json:"id"`
	At       time.Time  `json:"at"`
	User     string     `json:"user"`
	Role     string     `json:"role"`
	Remote   string     `json:"remote"`
	Method   string     `json:"method"`
	Path     string     `json:"path"`
	Action   string     `json:"action"`
	Camera   string     `json:"camera,omitempty"`
	From     *time.Time `json:"from,omitempty"`
	To       *time.Time `json:"to,omitempty"`
	Status   int        `json:"status"`
	Detail   string     `json:"detail,omitempty"`
	PrevHash string     `json:"prev_hash"`
	Hash     string     `json:"hash"`
}

func (s *Server) queryAudit(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	aq := index.AuditQuery{User: q.Get("user"), Camera: q.Get("camera"), Limit: 100}
	var err error
	if aq.From, err = parseTime(q, "from", time.Time{}); err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	if aq.To, err = parseTime(q, "to", time.Time{}); err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, http.StatusBadRequest, "limit: want 1..1000, got %q", v)
			return
		}
		aq.Limit = n
	}
	recs, err := s.Auth.QueryAudit(r.Context(), aq)
	if err != nil {
		s.internal(w, r, "query audit", err)
		return
	}
	out := make([]auditEntryJSON, 0, len(recs))
	for _, a := range recs {
		e := auditEntryJSON{ID: a.ID, At: a.At, User: a.User, Role: a.Role, Remote: a.Remote, Method: a.Method,
			Path: a.Path, Action: a.Action, Camera: a.Camera, Status: a.Status, Detail: a.Detail,
			PrevHash: a.PrevHash, Hash: a.Hash}
		if !a.From.IsZero() {
			f := a.From
			e.From = &f
		}
		if !a.To.IsZero() {
			t := a.To
			e.To = &t
		}
		out = append(out, e)
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": out})
}
