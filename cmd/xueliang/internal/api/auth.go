package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
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
// TestAllActionsListed keeps it complete.
var allActions = []Action{ActHealth, ActReady, ActMetrics, ActCameraRead, ActCameraWrite, ActProbe,
	ActArchiveRead, ActReplay, ActLive, ActAuditRead, ActUserAdmin, ActSession,
	ActEvidenceLock, ActEvidenceRead, ActEvidenceUnlock, ActRetentionWrite, ActComplianceRead, ActNodeRead, ActNodeAdmin}

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
