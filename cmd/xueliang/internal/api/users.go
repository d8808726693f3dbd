package api

import (
	"net/http"
	"strconv"
	"strings"
	"xueliang/cmd/xueliang/internal/auth"
)

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
