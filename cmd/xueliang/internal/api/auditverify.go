package api

import (
	"context"
	"errors"
	"net/http"

	"xueliang/cmd/xueliang/internal/audit"
)

// AuditVerifier checks the whole hash-chained audit log (audit.Verify, or
// audit.VerifyAnchored when the server keeps an anchor): the number of
// entries verified and the last hash; a *audit.BadEntryError or
// *audit.AnchorError when the chain is broken, other errors when it could
// not be read. anchored reports whether the anchor was checked too.
type AuditVerifier interface {
	VerifyAudit(ctx context.Context) (n int64, head string, anchored bool, err error)
}

func (s *Server) auditVerifyRoutes() []route {
	return []route{{Route{"GET", "/api/v1/audit/verify", ActAuditRead}, s.verifyAudit}}
}

type auditVerifyJSON struct {
	// OK: every entry verified (and the anchor, when Anchored).
	OK bool `json:"ok"`
	// Entries verified (before the first bad one when not OK).
	Entries int64 `json:"entries"`
	// Head is the hash of the last entry verified.
	Head     string `json:"head"`
	Anchored bool   `json:"anchored"`
	// FirstBad names the first entry at which the chain breaks.
	FirstBad *auditBadJSON `json:"first_bad"`
	// Error says what is wrong when not OK.
	Error string `json:"error,omitempty"`
}

type auditBadJSON struct {
	ID     int64  `json:"id"`
	Reason string `json:"reason"`
}

func (s *Server) verifyAudit(w http.ResponseWriter, r *http.Request) {
	if s.AuditVerifier == nil {
		writeError(w, http.StatusNotImplemented, "audit verification is not available")
		return
	}
	// One verification at a time: each reads the whole log.
	select {
	case s.verifying <- struct{}{}:
		defer func() { <-s.verifying }()
	case <-r.Context().Done():
		s.internal(w, r, "verify audit log", r.Context().Err())
		return
	}
	n, head, anchored, err := s.AuditVerifier.VerifyAudit(r.Context())
	out := auditVerifyJSON{OK: err == nil, Entries: n, Head: head, Anchored: anchored}
	var bad *audit.BadEntryError
	var badAnchor *audit.AnchorError
	switch {
	case errors.As(err, &bad):
		out.FirstBad = &auditBadJSON{ID: bad.ID, Reason: bad.Reason}
		out.Error = bad.Error()
	case errors.As(err, &badAnchor):
		out.Error = badAnchor.Error()
	case err != nil:
		s.internal(w, r, "verify audit log", err)
		return
	}
	if !out.OK {
		noteAudit(r.Context(), "audit chain broken: %s", out.Error)
	}
	writeJSON(w, http.StatusOK, out)
}
