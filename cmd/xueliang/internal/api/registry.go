package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"xueliang/cmd/xueliang/internal/cameras"
	"xueliang/index"
	"xueliang/ingest"
)

// CameraRegistry is the camera registry the API serves (*cameras.Service).
type CameraRegistry interface {
	List(ctx context.Context) ([]index.Camera, error)
	Get(ctx context.Context, id string) (index.Camera, error)
	Create(ctx context.Context, in cameras.Input) (index.Camera, error)
	Put(ctx context.Context, id string, in cameras.Input) (index.Camera, cameras.Outcome, error)
	Delete(ctx context.Context, id string) error
	Import(ctx context.Context, rows []cameras.ImportRow, dryRun bool) (cameras.ImportReport, error)
	NextID(ctx context.Context, township, village, typ string) (cameras.Proposal, error)
}

// PullerStatus reports the state of the running pullers (*ingest.Manager).
type PullerStatus interface {
	Status() map[string]ingest.Status
}

// Body limits of the registry's writes.
const (
	maxCameraBody = 64 << 10
	maxImportBody = 16 << 20
)

// registryRoutes serves the camera registry and sites.
func (s *Server) registryRoutes() []route {
	return []route{
		{Route{"GET", "/api/v1/cameras", ActCameraRead}, s.cameras},
		{Route{"POST", "/api/v1/cameras", ActCameraWrite}, s.createCamera},
		{Route{"GET", "/api/v1/cameras/{id}", ActCameraRead}, s.getCamera},
		{Route{"PUT", "/api/v1/cameras/{id}", ActCameraWrite}, s.putCamera},
		{Route{"PATCH", "/api/v1/cameras/{id}", ActCameraWrite}, s.patchCamera},
		{Route{"DELETE", "/api/v1/cameras/{id}", ActCameraWrite}, s.deleteCamera},
		{Route{"POST", "/api/v1/cameras/import", ActCameraWrite}, s.importCameras},
		{Route{"GET", "/api/v1/sites", ActCameraRead}, s.sites},
		{Route{"GET", "/api/v1/sites/next-id", ActCameraRead}, s.nextID},
	}
}

// cameraJSON is a camera as the API shows it. It has no password field:
// has_password says whether one is stored.
type cameraJSON struct {
	ID              string   `json:"id"`
	Name            string   `json:"name"`
	Township        string   `json:"township"`
	Village         string   `json:"village"`
	Lat             *float64 `json:"lat,omitempty"`
	Lon             *float64 `json:"lon,omitempty"`
	MainURL         string   `json:"main_url,omitempty"`
	SubURL          string   `json:"sub_url,omitempty"`
	Username        string   `json:"username,omitempty"`
	HasPassword     bool     `json:"has_password"`
	Transport       string   `json:"transport,omitempty"`
	SegmentDuration string   `json:"segment_duration,omitempty"`
	Motion          bool     `json:"motion"`
	Enabled         bool     `json:"enabled"`
	Online          bool     `json:"online"`
	// ClockUntrusted: the camera's RTCP wall clock was off the server's by
	// more than recording.max_clock_skew when its session started, so its
	// footage is timed by the receive time. ClockOffsetSeconds is the
	// measured camera − server offset (absent until measured).
	ClockUntrusted     bool       `json:"clock_untrusted"`
	ClockOffsetSeconds *float64   `json:"clock_offset_seconds,omitempty"`
	Source             string     `json:"source"`
	Created            *time.Time `json:"created,omitempty"`
	Updated            *time.Time `json:"updated,omitempty"`
	// Outcome is set by PUT: created, updated or unchanged.
	Outcome cameras.Outcome `json:"outcome,omitempty"`
}

func newCameraJSON(c index.Camera, online bool) cameraJSON {
	out := cameraJSON{
		ID: c.ID, Name: c.Name, Township: c.Township, Village: c.Village, Lat: c.Lat, Lon: c.Lon,
		MainURL: c.MainURL, SubURL: c.SubURL, Username: c.Username, HasPassword: c.SealedPassword != "",
		Transport: c.Transport, Motion: c.Motion, Enabled: c.Enabled, Online: online, Source: c.Source,
	}
	if c.SegmentDuration > 0 {
		out.SegmentDuration = c.SegmentDuration.String()
	}
	if !c.Created.IsZero() {
		t := c.Created
		out.Created = &t
	}
	if !c.Updated.IsZero() {
		t := c.Updated
		out.Updated = &t
	}
	return out
}

// withStatus adds the puller status of c to out.
func withStatus(out cameraJSON, st ingest.Status, ok bool) cameraJSON {
	if !ok {
		return out
	}
	out.ClockUntrusted = st.ClockUntrusted
	if st.ClockOffsetKnown {
		v := st.ClockOffset.Seconds()
		out.ClockOffsetSeconds = &v
	}
	return out
}

// status returns the puller status of every running camera.
func (s *Server) status() map[string]ingest.Status {
	if s.Pullers == nil {
		return nil
	}
	return s.Pullers.Status()
}

// online returns the set of connected cameras.
func (s *Server) online() map[string]bool {
	out := map[string]bool{}
	if s.Pullers == nil {
		return out
	}
	for id, st := range s.Pullers.Status() {
		if st.Connected {
			out[id] = true
		}
	}
	return out
}

// cameras serves GET /api/v1/cameras: the registered cameras in the
// caller's townships, filtered by township, village, enabled, online and q
// (a substring of the ID or name); removed=true lists instead the cameras
// that only have footage (removed from the registry, or never in it).
func (s *Server) cameras(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	bad := map[string]string{}
	boolFilter := func(name string) *bool {
		v := q.Get(name)
		if v == "" {
			return nil
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			bad[name] = fmt.Sprintf("want true or false, got %q", v)
			return nil
		}
		return &b
	}
	enabled, onl, removed := boolFilter("enabled"), boolFilter("online"), boolFilter("removed")
	if len(bad) > 0 {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid query", "fields": bad})
		return
	}
	var cams []index.Camera
	var err error
	switch {
	case s.Cameras == nil || removed != nil:
		cams, err = s.Index.Cameras(r.Context())
	default:
		cams, err = s.Cameras.List(r.Context())
	}
	if err != nil {
		s.internal(w, r, "list cameras", err)
		return
	}
	live, sts := s.online(), s.status()
	p := principalFrom(r.Context())
	township, village, text := q.Get("township"), q.Get("village"), strings.ToLower(q.Get("q"))
	out := make([]cameraJSON, 0, len(cams))
	for _, c := range cams {
		switch {
		case !p.InScope(c.Township),
			removed != nil && *removed == c.Registered(),
			township != "" && c.Township != township,
			village != "" && c.Village != village,
			enabled != nil && c.Enabled != *enabled,
			onl != nil && live[c.ID] != *onl,
			text != "" && !strings.Contains(strings.ToLower(c.ID), text) && !strings.Contains(strings.ToLower(c.Name), text):
			continue
		}
		st, ok := sts[c.ID]
		out = append(out, withStatus(newCameraJSON(c, live[c.ID]), st, ok))
	}
	writeJSON(w, http.StatusOK, map[string]any{"cameras": out})
}

// registryError answers a registry error with its status code.
func (s *Server) registryError(w http.ResponseWriter, r *http.Request, what string, err error) {
	var ve *cameras.ValidationError
	switch {
	case errors.As(err, &ve):
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid camera", "fields": ve.Fields})
	case errors.Is(err, cameras.ErrNotFound):
		writeError(w, http.StatusNotFound, "unknown camera %q", r.PathValue("id"))
	case errors.Is(err, cameras.ErrExists), errors.Is(err, cameras.ErrReadOnly):
		writeError(w, http.StatusConflict, "%v", err)
	default:
		s.internal(w, r, what, err)
	}
}

func (s *Server) registryEnabled(w http.ResponseWriter) bool {
	if s.Cameras == nil {
		writeError(w, http.StatusNotImplemented, "the camera registry is not enabled on this server")
		return false
	}
	return true
}

// decodeBody decodes a JSON body strictly (unknown fields are errors).
func decodeBody(w http.ResponseWriter, r *http.Request, limit int64, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, "body larger than %d bytes", limit)
			return false
		}
		writeError(w, http.StatusBadRequest, "bad JSON body: %v", err)
		return false
	}
	if dec.More() {
		writeError(w, http.StatusBadRequest, "bad JSON body: more than one value")
		return false
	}
	_, _ = io.Copy(io.Discard, r.Body)
	return true
}

func (s *Server) createCamera(w http.ResponseWriter, r *http.Request) {
	if !s.registryEnabled(w) {
		return
	}
	var in cameras.Input
	if !decodeBody(w, r, maxCameraBody, &in) {
		return
	}
	if !principalFrom(r.Context()).InScope(strings.TrimSpace(in.Township)) {
		writeError(w, http.StatusForbidden, "township %q is not one of yours", in.Township)
		return
	}
	c, err := s.Cameras.Create(r.Context(), in)
	if err != nil {
		s.registryError(w, r, "create camera", err)
		return
	}
	out := newCameraJSON(c, false)
	out.Outcome = cameras.Created
	writeJSON(w, http.StatusCreated, out)
}

func (s *Server) getCamera(w http.ResponseWriter, r *http.Request) {
	if !s.registryEnabled(w) {
		return
	}
	c, err := s.Cameras.Get(r.Context(), r.PathValue("id"))
	if err == nil && !principalFrom(r.Context()).InScope(c.Township) {
		err = cameras.ErrNotFound
	}
	if err != nil {
		s.registryError(w, r, "get camera", err)
		return
	}
	st, ok := s.status()[c.ID]
	writeJSON(w, http.StatusOK, withStatus(newCameraJSON(c, s.online()[c.ID]), st, ok))
}

// putCamera registers or replaces a camera (idempotent: the answer's
// outcome is created, updated or unchanged; 201 when created).
func (s *Server) putCamera(w http.ResponseWriter, r *http.Request) {
	if !s.registryEnabled(w) {
		return
	}
	var in cameras.Input
	if !decodeBody(w, r, maxCameraBody, &in) {
		return
	}
	id := r.PathValue("id")
	p := principalFrom(r.Context())
	if !p.InScope(strings.TrimSpace(in.Township)) {
		writeError(w, http.StatusForbidden, "township %q is not one of yours", in.Township)
		return
	}
	old, err := s.Cameras.Get(r.Context(), id)
	if err == nil && !p.InScope(old.Township) {
		writeError(w, http.StatusNotFound, "unknown camera %q", id)
		return
	}
	c, outcome, err := s.Cameras.Put(r.Context(), id, in)
	if err != nil {
		s.registryError(w, r, "put camera", err)
		return
	}
	noteEndpointChange(r.Context(), old, c, in)
	out := newCameraJSON(c, s.online()[c.ID])
	out.Outcome = outcome
	status := http.StatusOK
	if outcome == cameras.Created {
		status = http.StatusCreated
	}
	writeJSON(w, status, out)
}

// patchCamera changes the fields present in the body and keeps the others
// (e.g. {"enabled": false}); the answer is PUT's.
func (s *Server) patchCamera(w http.ResponseWriter, r *http.Request) {
	if !s.registryEnabled(w) {
		return
	}
	id := r.PathValue("id")
	p := principalFrom(r.Context())
	old, err := s.Cameras.Get(r.Context(), id)
	if err == nil && !p.InScope(old.Township) {
		err = cameras.ErrNotFound
	}
	if err != nil {
		s.registryError(w, r, "patch camera", err)
		return
	}
	in := cameras.InputOf(old)
	if !decodeBody(w, r, maxCameraBody, &in) {
		return
	}
	if !p.InScope(strings.TrimSpace(in.Township)) {
		writeError(w, http.StatusForbidden, "township %q is not one of yours", in.Township)
		return
	}
	c, outcome, err := s.Cameras.Put(r.Context(), id, in)
	if err != nil {
		s.registryError(w, r, "patch camera", err)
		return
	}
	noteEndpointChange(r.Context(), old, c, in)
	out := newCameraJSON(c, s.online()[c.ID])
	out.Outcome = outcome
	writeJSON(w, http.StatusOK, out)
}

// noteEndpointChange audits a write that moved a registered camera to a
// new stream endpoint (host, port or scheme of main_url or sub_url), and
// whether its stored password was dropped because none was given.
func noteEndpointChange(ctx context.Context, old, c index.Camera, in cameras.Input) {
	if !old.Registered() || cameras.SameEndpoints(old, c) {
		return
	}
	noteAudit(ctx, "stream endpoint changed: main_url %s -> %s, sub_url %s -> %s",
		hostPort(old.MainURL), hostPort(c.MainURL), hostPort(old.SubURL), hostPort(c.SubURL))
	if old.SealedPassword != "" && c.SealedPassword == "" && in.Password == nil {
		noteAudit(ctx, "stored camera password dropped: the new endpoint needs it given again")
	}
}

// hostPort is the host[:port] of a stream URL, bounded, "-" when none.
func hostPort(raw string) string {
	u, err := url.Parse(raw)
	if raw == "" || err != nil || u.Host == "" {
		return "-"
	}
	h := u.Host
	if len(h) > 80 {
		h = h[:80]
	}
	return h
}

// deleteCamera removes a camera from the registry: recording stops; its
// footage stays replayable.
func (s *Server) deleteCamera(w http.ResponseWriter, r *http.Request) {
	if !s.registryEnabled(w) {
		return
	}
	id := r.PathValue("id")
	c, err := s.Cameras.Get(r.Context(), id)
	if err == nil && !principalFrom(r.Context()).InScope(c.Township) {
		err = cameras.ErrNotFound
	}
	if err == nil {
		err = s.Cameras.Delete(r.Context(), id)
	}
	if err != nil {
		s.registryError(w, r, "delete camera", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "outcome": cameras.Deleted})
}

// importRequest is the body of POST /api/v1/cameras/import.
type importRequest struct {
	Rows []cameras.ImportRow `json:"rows"`
}

// importCameras validates every row and, unless dry_run=true, upserts the
// valid ones. The answer is 200 with a per-row report even when rows fail.
func (s *Server) importCameras(w http.ResponseWriter, r *http.Request) {
	if !s.registryEnabled(w) {
		return
	}
	dryRun := false
	if v := r.URL.Query().Get("dry_run"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid query", "fields": map[string]string{"dry_run": "want true or false"}})
			return
		}
		dryRun = b
	}
	var req importRequest
	if !decodeBody(w, r, maxImportBody, &req) {
		return
	}
	p := principalFrom(r.Context())
	var allowed []cameras.ImportRow
	var denied []cameras.RowResult
	for _, row := range req.Rows {
		if p.InScope(strings.TrimSpace(row.Township)) {
			allowed = append(allowed, row)
			continue
		}
		f := cameras.FieldErrors{"township": "not one of your townships"}
		denied = append(denied, cameras.RowResult{Row: row.Row, ID: row.ID, Outcome: cameras.Failed, Fields: f, Error: f.String()})
	}
	rep, err := s.Cameras.Import(r.Context(), allowed, dryRun)
	if err != nil {
		s.registryError(w, r, "import cameras", err)
		return
	}
	if dropped := countDropped(rep.Rows); dropped > 0 && !dryRun {
		noteAudit(r.Context(), "stored camera password dropped on %d rows: new stream endpoint without a password", dropped)
	}
	if len(denied) > 0 {
		rep.Rows = append(rep.Rows, denied...)
		rep.Failed += len(denied)
	}
	writeJSON(w, http.StatusOK, rep)
}

func countDropped(rows []cameras.RowResult) int {
	n := 0
	for _, r := range rows {
		if r.PasswordDropped {
			n++
		}
	}
	return n
}

// sites serves GET /api/v1/sites: townships → villages with camera counts
// (all, enabled, online), over the registered cameras in the caller's
// townships.
func (s *Server) sites(w http.ResponseWriter, r *http.Request) {
	if !s.registryEnabled(w) {
		return
	}
	all, err := s.Cameras.List(r.Context())
	if err != nil {
		s.internal(w, r, "list cameras", err)
		return
	}
	p := principalFrom(r.Context())
	cams := all[:0]
	for _, c := range all {
		if p.InScope(c.Township) {
			cams = append(cams, c)
		}
	}
	live := s.online()
	writeJSON(w, http.StatusOK, map[string]any{"townships": cameras.Sites(cams, func(id string) bool { return live[id] })})
}

// nextID serves GET /api/v1/sites/next-id?township=&village=[&type=131|132].
func (s *Server) nextID(w http.ResponseWriter, r *http.Request) {
	if !s.registryEnabled(w) {
		return
	}
	q := r.URL.Query()
	if !principalFrom(r.Context()).InScope(q.Get("township")) {
		writeError(w, http.StatusForbidden, "township %q is not one of yours", q.Get("township"))
		return
	}
	p, err := s.Cameras.NextID(r.Context(), q.Get("township"), q.Get("village"), q.Get("type"))
	if err != nil {
		s.registryError(w, r, "propose device id", err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}
