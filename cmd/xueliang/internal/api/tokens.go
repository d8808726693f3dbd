package api

import (
	"errors"
	"net/http"
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
