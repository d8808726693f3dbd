package api

import (
	"context"
	"crypto/subtle"
	"errors"
	"net"
	"net/http"
	"strings"
	"xueliang/cmd/xueliang/internal/auth"
	"xueliang/index"
)

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
//     user name tried when it is a well-formed one, and the query's keys
//     without their values. Every field of an entry is capped
//     (audit.CapRecord), so no request makes a row larger than
//     audit.MaxEntryBytes.
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
			var id auth.Identity
			tp, isTicket, err := s.ticketPrincipal(rt, r) // live view, replay: ?ticket= (live.go)
			if isTicket && err == nil {
				kind := "live ticket"
				if rt.Action == ActReplay {
					kind = "replay ticket"
				}
				id = auth.Identity{User: tp.User, Role: tp.Role, Townships: tp.Townships, TokenID: kind}
			} else if !isTicket {
				id, err = s.Auth.Authenticate(ctx, bearer(r))
			}
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
		switch {
		case p == nil:
			// Anonymous (login): nothing the caller chose but the user
			// name, validated by the handler, reaches the log; the query
			// is recorded by its keys only (auditAnonymousPath).
			rec.Path = auditAnonymousPath(r)
		case cameraRoute:
			rec.Camera = r.PathValue("id")
			rec.From, rec.To = auditRange(r)
		default:
			rec.Camera = r.URL.Query().Get("camera")
			rec.From, rec.To = auditRange(r)
		}
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
