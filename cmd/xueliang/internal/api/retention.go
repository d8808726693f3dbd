package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"xueliang/cmd/xueliang/internal/evidence"
	"xueliang/index"
)

// EvidenceLocker creates, lists and ends evidence locks
// (*evidence.Service).
type EvidenceLocker interface {
	Lock(ctx context.Context, l index.EvidenceLock) (index.EvidenceLock, evidence.Result, error)
	Unlock(ctx context.Context, id int64, by string) error
	Locks(ctx context.Context, all bool) ([]index.EvidenceLock, error)
	Get(ctx context.Context, id int64) (index.EvidenceLock, error)
}

// RetentionIndex reads and writes retention overrides (*index.DB).
type RetentionIndex interface {
	CameraRetentions(ctx context.Context) ([]index.CameraRetention, error)
	TownshipRetentions(ctx context.Context) (map[string]index.RetentionOverride, error)
	SetCameraRetention(ctx context.Context, camera string, o index.RetentionOverride) error
	SetTownshipRetention(ctx context.Context, township string, o index.RetentionOverride, now time.Time) error
}

// RetentionPolicy is the server-wide retention (config retention.*).
type RetentionPolicy struct {
	MaxAge   time.Duration
	MaxBytes int64
}

// Limits of the evidence routes.
const (
	maxEvidenceBody    = 16 << 10
	maxEvidenceCameras = 100
	maxCaseNumber      = 128
	maxReason          = 1024
)

func (s *Server) retentionRoutes() []route {
	return []route{
		{Route{"POST", "/api/v1/evidence", ActEvidenceLock}, s.createEvidence},
		{Route{"GET", "/api/v1/evidence", ActEvidenceRead}, s.listEvidence},
		{Route{"GET", "/api/v1/evidence/{lock}", ActEvidenceRead}, s.getEvidence},
		{Route{"DELETE", "/api/v1/evidence/{lock}", ActEvidenceUnlock}, s.unlockEvidence},
		{Route{"POST", "/api/v1/evidence/{lock}/unlock", ActEvidenceUnlock}, s.unlockEvidence},
		{Route{"GET", "/api/v1/retention", ActCameraRead}, s.getRetention},
		{Route{"PUT", "/api/v1/cameras/{id}/retention", ActRetentionWrite}, s.putCameraRetention},
		{Route{"PUT", "/api/v1/townships/{township}/retention", ActRetentionWrite}, s.putTownshipRetention},
	}
}

type evidenceInJSON struct {
	Cameras    []string  `json:"cameras"`
	From       time.Time `json:"from"`
	To         time.Time `json:"to"`
	CaseNumber string    `json:"case_number"`
	Reason     string    `json:"reason"`
}

type evidenceJSON struct {
	ID         int64      `json:"id"`
	Cameras    []string   `json:"cameras"`
	From       time.Time  `json:"from"`
	To         time.Time  `json:"to"`
	CaseNumber string     `json:"case_number"`
	Reason     string     `json:"reason"`
	CreatedBy  string     `json:"created_by"`
	Created    time.Time  `json:"created"`
	Active     bool       `json:"active"`
	UnlockedBy string     `json:"unlocked_by,omitempty"`
	Unlocked   *time.Time `json:"unlocked,omitempty"`
	// Set by POST only: what the lock covers now.
	Segments *int   `json:"segments,omitempty"`
	Bytes    *int64 `json:"bytes,omitempty"`
	Copied   *int   `json:"copied,omitempty"`
}

func newEvidenceJSON(l index.EvidenceLock) evidenceJSON {
	out := evidenceJSON{ID: l.ID, Cameras: l.Cameras, From: l.From.UTC(), To: l.To.UTC(), CaseNumber: l.CaseNumber,
		Reason: l.Reason, CreatedBy: l.CreatedBy, Created: l.Created.UTC(), Active: l.Active(), UnlockedBy: l.UnlockedBy}
	if out.Cameras == nil {
		out.Cameras = []string{}
	}
	if !l.Unlocked.IsZero() {
		u := l.Unlocked.UTC()
		out.Unlocked = &u
	}
	return out
}

func (s *Server) evidenceEnabled(w http.ResponseWriter) bool {
	if s.Evidence == nil {
		writeError(w, http.StatusNotImplemented, "evidence locks are not enabled on this server")
		return false
	}
	return true
}

func (s *Server) createEvidence(w http.ResponseWriter, r *http.Request) {
	if !s.evidenceEnabled(w) {
		return
	}
	var in evidenceInJSON
	if !decodeBody(w, r, maxEvidenceBody, &in) {
		return
	}
	in.CaseNumber, in.Reason = strings.TrimSpace(in.CaseNumber), strings.TrimSpace(in.Reason)
	switch {
	case len(in.Cameras) == 0 || len(in.Cameras) > maxEvidenceCameras:
		writeError(w, http.StatusBadRequest, "give 1..%d cameras", maxEvidenceCameras)
		return
	case in.From.IsZero() || in.To.IsZero() || !in.From.Before(in.To):
		writeError(w, http.StatusBadRequest, "give from < to (RFC 3339)")
		return
	case in.CaseNumber == "" || len(in.CaseNumber) > maxCaseNumber:
		writeError(w, http.StatusBadRequest, "give a case_number of 1..%d bytes", maxCaseNumber)
		return
	case len(in.Reason) > maxReason:
		writeError(w, http.StatusBadRequest, "reason longer than %d bytes", maxReason)
		return
	}
	ctx := r.Context()
	p := principalFrom(ctx)
	var cams []string
	for _, id := range in.Cameras {
		c, err := s.Index.Camera(ctx, id)
		if errors.Is(err, index.ErrNotFound) {
			writeError(w, http.StatusNotFound, "unknown camera %q", id)
			return
		}
		if err != nil {
			s.internal(w, r, "get camera", err)
			return
		}
		if !p.InScope(c.Township) {
			writeError(w, http.StatusForbidden, "camera %s is outside your townships", id)
			return
		}
		if !slices.Contains(cams, id) {
			cams = append(cams, id)
		}
	}
	slices.Sort(cams)
	by := ""
	if p != nil {
		by = p.User
	}
	noteAuditRange(ctx, strings.Join(cams, ","), in.From, in.To)
	l, res, err := s.Evidence.Lock(ctx, index.EvidenceLock{Cameras: cams, From: in.From, To: in.To,
		CaseNumber: in.CaseNumber, Reason: in.Reason, CreatedBy: by})
	if l.ID == 0 && err != nil {
		s.internal(w, r, "create evidence lock", err)
		return
	}
	noteAudit(ctx, "evidence lock %d case %q: %d segments, %d bytes, %d copied", l.ID, l.CaseNumber, res.Segments, res.Bytes, res.Copied)
	if err != nil {
		// The lock stands; the copy is incomplete.
		s.Logger.Error("evidence copy failed", "lock", l.ID, "err", err)
		noteAudit(ctx, "copy incomplete")
	}
	out := newEvidenceJSON(l)
	out.Segments, out.Bytes, out.Copied = &res.Segments, &res.Bytes, &res.Copied
	writeJSON(w, http.StatusCreated, out)
}

// evidenceInScope reports whether p may see the lock: one of its cameras
// is in p's townships.
func (s *Server) evidenceInScope(ctx context.Context, p *Principal, l index.EvidenceLock, town map[string]string) bool {
	if p == nil || len(p.Townships) == 0 {
		return true
	}
	for _, c := range l.Cameras {
		if p.InScope(town[c]) {
			return true
		}
	}
	return false
}

func (s *Server) townships(ctx context.Context) (map[string]string, error) {
	all, err := s.Index.Cameras(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(all))
	for _, c := range all {
		out[c.ID] = c.Township
	}
	return out, nil
}

func (s *Server) listEvidence(w http.ResponseWriter, r *http.Request) {
	if !s.evidenceEnabled(w) {
		return
	}
	ctx := r.Context()
	all := r.URL.Query().Get("all") == "true"
	locks, err := s.Evidence.Locks(ctx, all)
	if err != nil {
		s.internal(w, r, "list evidence locks", err)
		return
	}
	town, err := s.townships(ctx)
	if err != nil {
		s.internal(w, r, "list cameras", err)
		return
	}
	p := principalFrom(ctx)
	out := []evidenceJSON{}
	for _, l := range locks {
		if s.evidenceInScope(ctx, p, l, town) {
			out = append(out, newEvidenceJSON(l))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"locks": out})
}

func (s *Server) lockID(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("lock"), 10, 64)
	if err != nil || id < 1 {
		writeError(w, http.StatusBadRequest, "bad lock id %q", r.PathValue("lock"))
		return 0, false
	}
	return id, true
}

func (s *Server) getEvidence(w http.ResponseWriter, r *http.Request) {
	if !s.evidenceEnabled(w) {
		return
	}
	id, ok := s.lockID(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	l, err := s.Evidence.Get(ctx, id)
	if errors.Is(err, index.ErrNotFound) {
		writeError(w, http.StatusNotFound, "no evidence lock %d", id)
		return
	}
	if err != nil {
		s.internal(w, r, "get evidence lock", err)
		return
	}
	town, err := s.townships(ctx)
	if err != nil {
		s.internal(w, r, "list cameras", err)
		return
	}
	if !s.evidenceInScope(ctx, principalFrom(ctx), l, town) {
		writeError(w, http.StatusNotFound, "no evidence lock %d", id)
		return
	}
	writeJSON(w, http.StatusOK, newEvidenceJSON(l))
}

func (s *Server) unlockEvidence(w http.ResponseWriter, r *http.Request) {
	if !s.evidenceEnabled(w) {
		return
	}
	id, ok := s.lockID(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	by := ""
	if p := principalFrom(ctx); p != nil {
		by = p.User
	}
	l, err := s.Evidence.Get(ctx, id)
	if err == nil {
		noteAuditRange(ctx, strings.Join(l.Cameras, ","), l.From, l.To)
		err = s.Evidence.Unlock(ctx, id, by)
	}
	if errors.Is(err, index.ErrNotFound) {
		writeError(w, http.StatusNotFound, "no active evidence lock %d", id)
		return
	}
	if err != nil {
		s.internal(w, r, "unlock evidence", err)
		return
	}
	noteAudit(ctx, "evidence lock %d case %q unlocked", id, l.CaseNumber)
	l, err = s.Evidence.Get(ctx, id)
	if err != nil {
		s.internal(w, r, "get evidence lock", err)
		return
	}
	writeJSON(w, http.StatusOK, newEvidenceJSON(l))
}

// retentionJSON is a retention setting; durations are Go durations
// ("2160h"); "" and 0 inherit.
type retentionJSON struct {
	MaxAge   string `json:"max_age,omitempty"`
	MaxBytes int64  `json:"max_bytes,omitempty"`
}

func toRetentionJSON(age time.Duration, b int64) retentionJSON {
	out := retentionJSON{MaxBytes: b}
	if age > 0 {
		out.MaxAge = age.String()
	}
	return out
}

func (in retentionJSON) override() (index.RetentionOverride, error) {
	var o index.RetentionOverride
	if in.MaxAge != "" {
		d, err := time.ParseDuration(in.MaxAge)
		if err != nil || d < time.Minute {
			return o, fmt.Errorf("max_age: want a duration of at least 1m (e.g. 2160h), got %q", in.MaxAge)
		}
		o.MaxAge = d
	}
	if in.MaxBytes < 0 {
		return o, errors.New("max_bytes: must not be negative")
	}
	o.MaxBytes = in.MaxBytes
	return o, nil
}

type cameraRetentionJSON struct {
	Camera    string        `json:"camera"`
	Township  string        `json:"township"`
	Override  retentionJSON `json:"override"`
	Effective retentionJSON `json:"effective"`
}

func (s *Server) retentionEnabled(w http.ResponseWriter) bool {
	if s.Retention == nil {
		writeError(w, http.StatusNotImplemented, "retention settings are not available on this server")
		return false
	}
	return true
}

func (s *Server) getRetention(w http.ResponseWriter, r *http.Request) {
	if !s.retentionEnabled(w) {
		return
	}
	ctx := r.Context()
	cams, err := s.Retention.CameraRetentions(ctx)
	if err != nil {
		s.internal(w, r, "camera retentions", err)
		return
	}
	towns, err := s.Retention.TownshipRetentions(ctx)
	if err != nil {
		s.internal(w, r, "township retentions", err)
		return
	}
	p := principalFrom(ctx)
	tj := map[string]retentionJSON{}
	for t, o := range towns {
		if p.InScope(t) {
			tj[t] = toRetentionJSON(o.MaxAge, o.MaxBytes)
		}
	}
	cj := []cameraRetentionJSON{}
	for _, c := range cams {
		if !p.InScope(c.Township) {
			continue
		}
		age, b := s.RetentionDefault.MaxAge, s.RetentionDefault.MaxBytes
		if t, ok := towns[c.Township]; ok && c.Township != "" {
			age, b = cmp(t.MaxAge, age), cmp(t.MaxBytes, b)
		}
		age, b = cmp(c.Override.MaxAge, age), cmp(c.Override.MaxBytes, b)
		cj = append(cj, cameraRetentionJSON{Camera: c.Camera, Township: c.Township,
			Override: toRetentionJSON(c.Override.MaxAge, c.Override.MaxBytes), Effective: toRetentionJSON(age, b)})
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"default":   toRetentionJSON(s.RetentionDefault.MaxAge, s.RetentionDefault.MaxBytes),
		"townships": tj,
		"cameras":   cj,
	})
}

// cmp returns v when set (> 0), else def.
func cmp[T int64 | time.Duration](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}

// overrideBody reads a PUT's retention override; false when it answered.
func (s *Server) overrideBody(w http.ResponseWriter, r *http.Request) (index.RetentionOverride, bool) {
	if !s.retentionEnabled(w) {
		return index.RetentionOverride{}, false
	}
	var in retentionJSON
	if !decodeBody(w, r, maxEvidenceBody, &in) {
		return index.RetentionOverride{}, false
	}
	o, err := in.override()
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return index.RetentionOverride{}, false
	}
	return o, true
}

func (s *Server) putCameraRetention(w http.ResponseWriter, r *http.Request) {
	o, ok := s.overrideBody(w, r)
	if !ok {
		return
	}
	id := r.PathValue("id")
	err := s.Retention.SetCameraRetention(r.Context(), id, o)
	if errors.Is(err, index.ErrNotFound) {
		writeError(w, http.StatusNotFound, "unknown camera %q", id)
		return
	}
	if err != nil {
		s.internal(w, r, "set camera retention", err)
		return
	}
	noteAudit(r.Context(), "retention max_age=%s max_bytes=%d", o.MaxAge, o.MaxBytes)
	writeJSON(w, http.StatusOK, toRetentionJSON(o.MaxAge, o.MaxBytes))
}

func (s *Server) putTownshipRetention(w http.ResponseWriter, r *http.Request) {
	o, ok := s.overrideBody(w, r)
	if !ok {
		return
	}
	t := r.PathValue("township")
	if err := s.Retention.SetTownshipRetention(r.Context(), t, o, s.Now()); err != nil {
		s.internal(w, r, "set township retention", err)
		return
	}
	noteAudit(r.Context(), "township %q retention max_age=%s max_bytes=%d", t, o.MaxAge, o.MaxBytes)
	writeJSON(w, http.StatusOK, toRetentionJSON(o.MaxAge, o.MaxBytes))
}
