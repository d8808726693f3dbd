package api

import (
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"
	"xueliang/cmd/xueliang/internal/auth"
)

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

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	var body struct {
		User     string `json:"user"`
		Password string `json:"password"`
	}
	if !readBody(w, r, &body) {
		return
	}
	fe := map[string]string{}
	switch {
	case body.User == "":
		fe["user"] = "required"
	case !auth.ValidUserName(body.User):
		fe["user"] = "not a valid user name"
	}
	if body.Password == "" {
		fe["password"] = "required"
	}
	note := noteFrom(r.Context())
	if note != nil && fe["user"] == "" {
		// Only a well-formed name reaches the audit log (validated first).
		note.user = body.User
	}
	if len(fe) > 0 {
		noteAudit(r.Context(), "login refused: malformed request")
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "user and password are required", "fields": fe})
		return
	}
	addr := remoteHost(r)
	if wait := s.LoginThrottle.Check(s.Now(), body.User, addr); wait > 0 {
		s.m.loginFailures.WithLabelValues(loginThrottled).Inc()
		secs := int64(math.Ceil(wait.Seconds()))
		noteAudit(r.Context(), "login throttled: retry after %ds", secs)
		w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
		writeError(w, http.StatusTooManyRequests, "too many failed logins: retry after %d seconds", secs)
		return
	}
	sess, err := s.Auth.Login(r.Context(), body.User, body.Password)
	if errors.Is(err, auth.ErrBadCredentials) {
		s.LoginThrottle.Fail(s.Now(), body.User, addr)
		s.m.loginFailures.WithLabelValues(loginBadCredentials).Inc()
		noteAudit(r.Context(), "login failed")
		w.Header().Set("WWW-Authenticate", `Bearer realm="xueliang"`)
		writeError(w, http.StatusUnauthorized, "bad user name or password")
		return
	}
	if err != nil {
		s.internal(w, r, "login", err)
		return
	}
	s.LoginThrottle.Succeed(body.User)
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
