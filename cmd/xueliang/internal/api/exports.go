package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"xueliang/cmd/xueliang/internal/export"
	"xueliang/index"
)

// Exporter runs signed export jobs (*export.Manager).
type Exporter interface {
	Start(ctx context.Context, req export.Request) (export.Job, error)
	Get(id string) (export.Job, error)
	// List returns the jobs not yet expired, newest first.
	List() []export.Job
	Cancel(id string) (export.Job, error)
	// Open returns the package (a zip) of a finished job.
	Open(id string) (*os.File, export.Job, error)
	PublicKey() string
}

// exportRoutes serves the signed exports (docs/operations.md, "Exports").
// Every request is audited by guard: the request (camera and range), each
// status poll, the cancellation and each download (with the manifest's
// SHA-256).
func (s *Server) exportRoutes() []route {
	return []route{
		{Route{"GET", "/api/v1/exports", ActReplay}, s.listExports},
		{Route{"POST", "/api/v1/exports", ActReplay}, s.createExport},
		{Route{"GET", "/api/v1/exports/public-key", ActReplay}, s.exportKey},
		{Route{"GET", "/api/v1/exports/{id}", ActReplay}, s.getExport},
		{Route{"DELETE", "/api/v1/exports/{id}", ActReplay}, s.cancelExport},
		{Route{"GET", "/api/v1/exports/{id}/download", ActReplay}, s.downloadExport},
	}
}

type exportRequestJSON struct {
	Camera string    `json:"camera"`
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
}

func (s *Server) exporter(w http.ResponseWriter) bool {
	if s.Exports == nil {
		writeError(w, http.StatusNotImplemented, "exports are not configured")
		return false
	}
	return true
}

// exportInScope answers 404 (an unknown camera, or one outside the
// caller's townships: its existence is not revealed) unless the caller
// may see camera.
func (s *Server) exportInScope(w http.ResponseWriter, r *http.Request, camera string) bool {
	cam, err := s.Index.Camera(r.Context(), camera)
	switch {
	case errors.Is(err, index.ErrNotFound):
		writeError(w, http.StatusNotFound, "unknown camera %q", camera)
		return false
	case err != nil:
		s.internal(w, r, "get camera", err)
		return false
	case !principalFrom(r.Context()).InScope(cam.Township):
		noteAudit(r.Context(), "denied: camera outside the caller's townships")
		writeError(w, http.StatusForbidden, "camera %q is outside your townships", camera)
		return false
	}
	return true
}

func (s *Server) createExport(w http.ResponseWriter, r *http.Request) {
	if !s.exporter(w) {
		return
	}
	var in exportRequestJSON
	if !readBody(w, r, &in) {
		return
	}
	noteAuditRange(r.Context(), in.Camera, in.From, in.To)
	if in.Camera == "" || in.From.IsZero() || in.To.IsZero() {
		writeError(w, http.StatusBadRequest, "camera, from and to are required")
		return
	}
	if !s.exportInScope(w, r, in.Camera) {
		return
	}
	var by export.Creator
	if p := principalFrom(r.Context()); p != nil {
		by = export.Creator{User: p.User, Role: p.Role}
	}
	exact, err := exactParam(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	j, err := s.Exports.Start(r.Context(), export.Request{Camera: in.Camera, From: in.From, To: in.To, By: by, Exact: exact})
	switch {
	case errors.Is(err, export.ErrBadRequest):
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	case errors.Is(err, export.ErrBusy):
		w.Header().Set("Retry-After", "30")
		writeError(w, http.StatusTooManyRequests, "%v", err)
		return
	case err != nil:
		s.internal(w, r, "start export", err)
		return
	}
	noteAudit(r.Context(), "export %s", j.ID)
	w.Header().Set("Location", "/api/v1/exports/"+j.ID)
	writeJSON(w, http.StatusAccepted, j)
}

// maxExportList bounds the jobs one list answer carries.
const maxExportList = 500

// listExports lists the jobs (newest first) whose camera the caller may
// see: the console's exports page polls it.
func (s *Server) listExports(w http.ResponseWriter, r *http.Request) {
	if !s.exporter(w) {
		return
	}
	p := principalFrom(r.Context())
	town := map[string]string{} // camera → township, looked up once
	out := []export.Job{}
	truncated := false
	for _, j := range s.Exports.List() {
		t, ok := town[j.Camera]
		if !ok {
			cam, err := s.Index.Camera(r.Context(), j.Camera)
			switch {
			case errors.Is(err, index.ErrNotFound):
				t = "" // a removed camera: only unscoped callers see its jobs
			case err != nil:
				s.internal(w, r, "get camera", err)
				return
			default:
				t = cam.Township
			}
			town[j.Camera] = t
		}
		if !p.InScope(t) {
			continue
		}
		if len(out) == maxExportList {
			truncated = true
			break
		}
		out = append(out, j)
	}
	writeJSON(w, http.StatusOK, map[string]any{"exports": out, "truncated": truncated})
}

// job looks up the {id} job and checks the caller's scope.
func (s *Server) job(w http.ResponseWriter, r *http.Request) (export.Job, bool) {
	if !s.exporter(w) {
		return export.Job{}, false
	}
	id := r.PathValue("id")
	j, err := s.Exports.Get(id)
	if errors.Is(err, export.ErrNotFound) {
		writeError(w, http.StatusNotFound, "no export %q (unknown or expired)", id)
		return j, false
	}
	if err != nil {
		s.internal(w, r, "get export", err)
		return j, false
	}
	noteAuditRange(r.Context(), j.Camera, j.From, j.To)
	noteAudit(r.Context(), "export %s", j.ID)
	return j, s.exportInScope(w, r, j.Camera)
}

func (s *Server) getExport(w http.ResponseWriter, r *http.Request) {
	if j, ok := s.job(w, r); ok {
		writeJSON(w, http.StatusOK, j)
	}
}

func (s *Server) cancelExport(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.job(w, r); !ok {
		return
	}
	j, err := s.Exports.Cancel(r.PathValue("id"))
	if errors.Is(err, export.ErrNotFound) {
		writeError(w, http.StatusNotFound, "no export %q", r.PathValue("id"))
		return
	}
	if err != nil {
		s.internal(w, r, "cancel export", err)
		return
	}
	writeJSON(w, http.StatusOK, j)
}

func (s *Server) downloadExport(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.job(w, r); !ok {
		return
	}
	f, j, err := s.Exports.Open(r.PathValue("id"))
	switch {
	case errors.Is(err, export.ErrNotReady):
		writeError(w, http.StatusConflict, "export %s is %s: %v", j.ID, j.State, err)
		return
	case errors.Is(err, export.ErrNotFound):
		writeError(w, http.StatusNotFound, "no export %q", r.PathValue("id"))
		return
	case err != nil:
		s.internal(w, r, "open export", err)
		return
	}
	defer f.Close()
	noteAudit(r.Context(), "download manifest sha256 %s", j.ManifestSHA256)
	h := w.Header()
	h.Set("Content-Type", "application/zip")
	h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="xueliang-export-%s-%s.zip"`, j.Camera, j.ID))
	h.Set("Content-Length", fmt.Sprint(j.Size))
	w.WriteHeader(http.StatusOK)
	if _, err := io.Copy(w, f); err != nil {
		s.Logger.Warn("export download interrupted", "id", j.ID, "err", err)
	}
}

type exportKeyJSON struct {
	PublicKey   string `json:"public_key"`
	Fingerprint string `json:"fingerprint"`
}

func (s *Server) exportKey(w http.ResponseWriter, r *http.Request) {
	if !s.exporter(w) {
		return
	}
	k := s.Exports.PublicKey()
	pub, err := export.ParsePublicKey(k)
	if err != nil {
		s.internal(w, r, "export key", err)
		return
	}
	writeJSON(w, http.StatusOK, exportKeyJSON{PublicKey: k, Fingerprint: export.Fingerprint(pub)})
}
