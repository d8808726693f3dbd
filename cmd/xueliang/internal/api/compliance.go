package api

import (
	"context"
	"net/http"
	"time"

	"xueliang/cmd/xueliang/internal/compliance"
)

// ComplianceReporter computes the compliance of a township's cameras
// (*compliance.Service).
type ComplianceReporter interface {
	Compute(ctx context.Context, township string) ([]compliance.Status, error)
}

func (s *Server) complianceRoutes() []route {
	return []route{
		{Route{"GET", "/api/v1/townships/{township}/compliance", ActComplianceRead}, s.getCompliance},
	}
}

type complianceCameraJSON struct {
	Camera      string     `json:"camera"`
	ArchiveDays float64    `json:"archive_days"`
	TargetDays  float64    `json:"target_days"`
	Oldest      *time.Time `json:"oldest_footage"`
	Gaps        int        `json:"gaps"`
	GapSeconds  float64    `json:"gap_seconds"`
	Compliant   bool       `json:"compliant"`
}

type complianceJSON struct {
	Township string                 `json:"township"`
	Cameras  []complianceCameraJSON `json:"cameras"`
}

// getCompliance answers the township's compliance report, computed now.
// A caller limited to other townships gets 403, like the camera routes.
func (s *Server) getCompliance(w http.ResponseWriter, r *http.Request) {
	if s.Compliance == nil {
		writeError(w, http.StatusNotImplemented, "compliance report not configured")
		return
	}
	t := r.PathValue("township")
	if t == "" {
		writeError(w, http.StatusBadRequest, "empty township")
		return
	}
	if !principalFrom(r.Context()).InScope(t) {
		noteAudit(r.Context(), "denied: township %q out of scope", t)
		writeError(w, http.StatusForbidden, "township %s is outside your townships", t)
		return
	}
	sts, err := s.Compliance.Compute(r.Context(), t)
	if err != nil {
		s.internal(w, r, "compliance report", err)
		return
	}
	out := complianceJSON{Township: t, Cameras: []complianceCameraJSON{}}
	for _, st := range sts {
		c := complianceCameraJSON{Camera: st.Camera, ArchiveDays: st.ArchiveDays, TargetDays: st.TargetDays(),
			Gaps: st.Gaps, GapSeconds: st.GapSeconds, Compliant: st.Compliant}
		if !st.Oldest.IsZero() {
			o := st.Oldest.UTC()
			c.Oldest = &o
		}
		out.Cameras = append(out.Cameras, c)
	}
	writeJSON(w, http.StatusOK, out)
}
