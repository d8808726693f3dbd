package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"xueliang/cmd/xueliang/internal/audit"
	"xueliang/index"
)

// auditNote is what a handler adds to its request's audit entry.
type auditNote struct {
	user, role string // for anonymous routes (login): who it was about
	details    []string
	camera     string
	from, to   time.Time
}

type auditNoteKey struct{}

// noteAudit adds detail to the request's audit entry (never a secret).
func noteAudit(ctx context.Context, format string, args ...any) {
	if n, ok := ctx.Value(auditNoteKey{}).(*auditNote); ok {
		n.details = append(n.details, fmt.Sprintf(format, args...))
	}
}

// noteAuditRange records the camera ("" keeps the one from the path or
// query) and time range of a request whose range is not in the query (a
// JSON body: motion search, exports).
func noteAuditRange(ctx context.Context, camera string, from, to time.Time) {
	if n, ok := ctx.Value(auditNoteKey{}).(*auditNote); ok {
		n.camera, n.from, n.to = camera, from.UTC(), to.UTC()
	}
}

func noteFrom(ctx context.Context) *auditNote {
	n, _ := ctx.Value(auditNoteKey{}).(*auditNote)
	return n
}

// auditWriter appends the audit entry when the status is decided: at the
// first WriteHeader, Write or Flush, or when the handler returns without
// writing. When the append fails it answers 503 instead and swallows
// everything the handler writes.
type auditWriter struct {
	http.ResponseWriter
	append    func(status int) error
	committed bool
	failed    bool
}

var errAuditUnavailable = errors.New("audit log unavailable")

func (a *auditWriter) WriteHeader(code int) {
	if code < 200 && code != http.StatusSwitchingProtocols {
		a.ResponseWriter.WriteHeader(code) // 1xx informational
		return
	}
	if a.committed {
		if !a.failed {
			a.ResponseWriter.WriteHeader(code) // superfluous; net/http logs it
		}
		return
	}
	a.committed = true
	if err := a.append(code); err != nil {
		a.failed = true
		h := a.ResponseWriter.Header()
		for k := range h {
			delete(h, k)
		}
		writeError(a.ResponseWriter, http.StatusServiceUnavailable, "audit log unavailable: request refused")
		return
	}
	a.ResponseWriter.WriteHeader(code)
}

func (a *auditWriter) Write(b []byte) (int, error) {
	if !a.committed {
		a.WriteHeader(http.StatusOK)
	}
	if a.failed {
		return 0, errAuditUnavailable
	}
	return a.ResponseWriter.Write(b)
}

// FlushError lets http.ResponseController flush through the audit.
func (a *auditWriter) FlushError() error {
	if !a.committed {
		a.WriteHeader(http.StatusOK)
	}
	if a.failed {
		return errAuditUnavailable
	}
	return http.NewResponseController(a.ResponseWriter).Flush()
}

// Flush implements http.Flusher.
func (a *auditWriter) Flush() { _ = a.FlushError() }

// Unwrap lets http.ResponseController reach the underlying writer.
func (a *auditWriter) Unwrap() http.ResponseWriter { return a.ResponseWriter }

// finish records a handler that wrote nothing (an implicit 200) or that
// panicked before writing (500); it runs deferred, also while panicking.
func (a *auditWriter) finish() {
	if a.committed {
		return
	}
	if v := recover(); v != nil {
		a.committed = true
		_ = a.append(http.StatusInternalServerError)
		panic(v)
	}
	a.WriteHeader(http.StatusOK)
}

// auditPath is the path and query, bounded (audit.Seal caps it again with
// a marker). Tokens are never accepted in the query; a live-view ticket
// is, and is redacted.
func auditPath(r *http.Request) string {
	p := r.URL.Path
	raw := r.URL.RawQuery
	if q := r.URL.Query(); q.Has("ticket") {
		q.Set("ticket", "redacted") // a live-view ticket (live.go) is a credential
		raw = q.Encode()
	}
	if raw != "" {
		p += "?" + raw
	}
	return audit.Cap(p, audit.MaxPath)
}

var queryKeyRe = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,32}$`)

// auditAnonymousPath is the path of an unauthenticated request with its
// query's keys only ("?camera=…&x=…"; a key that is not a short
// identifier becomes "?"): an anonymous caller cannot write its own text
// into the log.
func auditAnonymousPath(r *http.Request) string {
	p := r.URL.Path
	if r.URL.RawQuery == "" {
		return audit.Cap(p, audit.MaxPath)
	}
	keys := make([]string, 0, 4)
	for _, kv := range strings.Split(r.URL.RawQuery, "&") {
		k, _, _ := strings.Cut(kv, "=")
		if len(keys) == 16 {
			keys = append(keys, "…")
			break
		}
		if !queryKeyRe.MatchString(k) {
			k = "?" // not a parameter name of ours: not the caller's text either
		}
		keys = append(keys, k+"=…")
	}
	return audit.Cap(p+"?"+strings.Join(keys, "&"), audit.MaxPath)
}

// auditRange is the time range a request asks for: start/end (replay,
// export) or from/to (timelines, searches); zero when absent or invalid.
func auditRange(r *http.Request) (from, to time.Time) {
	q := r.URL.Query()
	parse := func(names ...string) time.Time {
		for _, n := range names {
			if t, err := time.Parse(time.RFC3339Nano, q.Get(n)); err == nil {
				return t.UTC()
			}
		}
		return time.Time{}
	}
	return parse("start", "from"), parse("end", "to")
}

type auditEntryJSON struct {
	ID       int64      `json:"id"`
	At       time.Time  `json:"at"`
	User     string     `json:"user"`
	Role     string     `json:"role"`
	Remote   string     `json:"remote"`
	Method   string     `json:"method"`
	Path     string     `json:"path"`
	Action   string     `json:"action"`
	Camera   string     `json:"camera,omitempty"`
	From     *time.Time `json:"from,omitempty"`
	To       *time.Time `json:"to,omitempty"`
	Status   int        `json:"status"`
	Detail   string     `json:"detail,omitempty"`
	PrevHash string     `json:"prev_hash"`
	Hash     string     `json:"hash"`
}

func (s *Server) queryAudit(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	aq := index.AuditQuery{User: q.Get("user"), Camera: q.Get("camera"), Limit: 100}
	var err error
	if aq.From, err = parseTime(q, "from", time.Time{}); err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	if aq.To, err = parseTime(q, "to", time.Time{}); err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, http.StatusBadRequest, "limit: want 1..1000, got %q", v)
			return
		}
		aq.Limit = n
	}
	recs, err := s.Auth.QueryAudit(r.Context(), aq)
	if err != nil {
		s.internal(w, r, "query audit", err)
		return
	}
	out := make([]auditEntryJSON, 0, len(recs))
	for _, a := range recs {
		e := auditEntryJSON{ID: a.ID, At: a.At, User: a.User, Role: a.Role, Remote: a.Remote, Method: a.Method,
			Path: a.Path, Action: a.Action, Camera: a.Camera, Status: a.Status, Detail: a.Detail,
			PrevHash: a.PrevHash, Hash: a.Hash}
		if !a.From.IsZero() {
			f := a.From
			e.From = &f
		}
		if !a.To.IsZero() {
			t := a.To
			e.To = &t
		}
		out = append(out, e)
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": out})
}
