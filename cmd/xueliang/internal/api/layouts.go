package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"xueliang/index"
)

// LayoutStore keeps the web console's saved live-wall layouts per user
// (*index.DB). Every route works on the caller's own layouts only: the
// user is the principal's, never a parameter.
type LayoutStore interface {
	Layouts(ctx context.Context, user string) ([]index.Layout, error)
	Layout(ctx context.Context, user, name string) (index.Layout, error)
	PutLayout(ctx context.Context, l index.Layout) (created bool, err error)
	DeleteLayout(ctx context.Context, user, name string) error
}

// Layout limits.
const (
	MaxLayoutsPerUser = 64
	maxLayoutName     = 64 // characters
	maxLayoutCamera   = 64 // bytes of a camera id
	maxTourSeconds    = 3600
)

// layoutGrids are the live wall's grids (tiles).
var layoutGrids = map[int]bool{1: true, 4: true, 9: true, 16: true}

func (s *Server) layoutRoutes() []route {
	return []route{
		{Route{"GET", "/api/v1/layouts", ActSession}, s.listLayouts},
		{Route{"GET", "/api/v1/layouts/{name}", ActSession}, s.getLayout},
		{Route{"PUT", "/api/v1/layouts/{name}", ActSession}, s.putLayout},
		{Route{"DELETE", "/api/v1/layouts/{name}", ActSession}, s.deleteLayout},
	}
}

// layoutBody is a layout as PUT sends it and GET answers it (the stored
// JSON is this without name and updated).
type layoutBody struct {
	// Grid is the number of tiles: 1, 4, 9 or 16.
	Grid int `json:"grid"`
	// Cameras are the tiles' camera ids in tile order ("" = empty tile);
	// at most Grid.
	Cameras []string `json:"cameras"`
	// TourSeconds > 0: the wall tours the cameras every that many seconds.
	TourSeconds int `json:"tour_seconds,omitempty"`
}

type layoutJSON struct {
	Name string `json:"name"`
	layoutBody
	Updated time.Time `json:"updated"`
}

func (b *layoutBody) validate() error {
	if !layoutGrids[b.Grid] {
		return errors.New("grid: want 1, 4, 9 or 16")
	}
	if len(b.Cameras) > b.Grid {
		return errors.New("cameras: more than grid tiles")
	}
	for _, c := range b.Cameras {
		if len(c) > maxLayoutCamera || strings.ContainsFunc(c, func(r rune) bool { return r < 0x21 || r == 0x7f }) || !utf8.ValidString(c) {
			return errors.New("cameras: not a camera id")
		}
	}
	if b.TourSeconds < 0 || b.TourSeconds > maxTourSeconds || (b.TourSeconds > 0 && b.TourSeconds < 3) {
		return errors.New("tour_seconds: want 0 (no tour) or 3..3600")
	}
	if b.Cameras == nil {
		b.Cameras = []string{}
	}
	return nil
}

// validLayoutName: 1..64 printable characters, no slash.
func validLayoutName(n string) bool {
	if n == "" || !utf8.ValidString(n) || utf8.RuneCountInString(n) > maxLayoutName || strings.TrimSpace(n) != n {
		return false
	}
	return !strings.ContainsFunc(n, func(r rune) bool { return r == '/' || !unicode.IsPrint(r) })
}

// layoutUser is the caller whose layouts a request works on.
func (s *Server) layoutUser(w http.ResponseWriter, r *http.Request) (string, bool) {
	if s.Layouts == nil {
		writeError(w, http.StatusNotImplemented, "saved layouts are not available")
		return "", false
	}
	p := principalFrom(r.Context())
	if p == nil {
		writeError(w, http.StatusUnauthorized, "saved layouts need a user")
		return "", false
	}
	return p.User, true
}

func toLayoutJSON(l index.Layout) (layoutJSON, error) {
	out := layoutJSON{Name: l.Name, Updated: l.Updated.UTC()}
	if err := json.Unmarshal([]byte(l.JSON), &out.layoutBody); err != nil {
		return out, err
	}
	if out.Cameras == nil {
		out.Cameras = []string{}
	}
	return out, nil
}

func (s *Server) listLayouts(w http.ResponseWriter, r *http.Request) {
	user, ok := s.layoutUser(w, r)
	if !ok {
		return
	}
	ls, err := s.Layouts.Layouts(r.Context(), user)
	if err != nil {
		s.internal(w, r, "list layouts", err)
		return
	}
	out := make([]layoutJSON, 0, len(ls))
	for _, l := range ls {
		j, err := toLayoutJSON(l)
		if err != nil {
			s.internal(w, r, "decode layout", err)
			return
		}
		out = append(out, j)
	}
	writeJSON(w, http.StatusOK, map[string]any{"layouts": out})
}

func (s *Server) getLayout(w http.ResponseWriter, r *http.Request) {
	user, ok := s.layoutUser(w, r)
	if !ok {
		return
	}
	l, err := s.Layouts.Layout(r.Context(), user, r.PathValue("name"))
	if errors.Is(err, index.ErrNotFound) {
		writeError(w, http.StatusNotFound, "no layout named %q", r.PathValue("name"))
		return
	}
	if err != nil {
		s.internal(w, r, "get layout", err)
		return
	}
	j, err := toLayoutJSON(l)
	if err != nil {
		s.internal(w, r, "decode layout", err)
		return
	}
	writeJSON(w, http.StatusOK, j)
}

func (s *Server) putLayout(w http.ResponseWriter, r *http.Request) {
	user, ok := s.layoutUser(w, r)
	if !ok {
		return
	}
	name := r.PathValue("name")
	if !validLayoutName(name) {
		writeError(w, http.StatusBadRequest, "name: 1 to %d printable characters, no slash, no leading or trailing space", maxLayoutName)
		return
	}
	var b layoutBody
	if !readBody(w, r, &b) {
		return
	}
	if err := b.validate(); err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	ctx := r.Context()
	if _, err := s.Layouts.Layout(ctx, user, name); errors.Is(err, index.ErrNotFound) {
		ls, err := s.Layouts.Layouts(ctx, user)
		if err != nil {
			s.internal(w, r, "list layouts", err)
			return
		}
		if len(ls) >= MaxLayoutsPerUser {
			writeError(w, http.StatusConflict, "at most %d saved layouts per user: delete one first", MaxLayoutsPerUser)
			return
		}
	} else if err != nil {
		s.internal(w, r, "get layout", err)
		return
	}
	doc, _ := json.Marshal(b)
	l := index.Layout{User: user, Name: name, JSON: string(doc), Updated: s.Now().UTC()}
	created, err := s.Layouts.PutLayout(ctx, l)
	if err != nil {
		s.internal(w, r, "put layout", err)
		return
	}
	noteAudit(ctx, "layout %q: grid %d, %d cameras", name, b.Grid, len(b.Cameras))
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, layoutJSON{Name: name, layoutBody: b, Updated: l.Updated})
}

func (s *Server) deleteLayout(w http.ResponseWriter, r *http.Request) {
	user, ok := s.layoutUser(w, r)
	if !ok {
		return
	}
	err := s.Layouts.DeleteLayout(r.Context(), user, r.PathValue("name"))
	if errors.Is(err, index.ErrNotFound) {
		writeError(w, http.StatusNotFound, "no layout named %q", r.PathValue("name"))
		return
	}
	if err != nil {
		s.internal(w, r, "delete layout", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
