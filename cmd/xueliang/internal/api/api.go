// Package api serves the xueliang HTTP API. Every route is listed in Routes
// and documented in docs/openapi.yaml (a test keeps the two in step).
//
// Status codes are chosen here and only here: 400 for bad parameters, 404 for
// an unknown camera or a window without footage, 500 for everything else.
// Errors are JSON: {"error": "message"}. POST /api/v1/probe (probe.go) adds
// 422 with a machine-readable "code" when the camera cannot be probed.
// guard (auth.go) adds 401 (no valid bearer token), 403 (role or township)
// and 503 (the audit entry could not be written) to every route but /healthz.
// POST /api/v1/login adds 429 with Retry-After while the account or the
// client address is throttled after failed logins (throttle.go).
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"xueliang/cmd/xueliang/internal/replay"
	"xueliang/index"
	"xueliang/ingest/camnet"
	"xueliang/storage/recording"
)

// Index is what the API reads from the index.
type Index interface {
	Cameras(ctx context.Context) ([]index.Camera, error)
	Camera(ctx context.Context, id string) (index.Camera, error)
	Timeline(ctx context.Context, camera string, from, to time.Time, gapTolerance time.Duration) ([]recording.Span, []recording.Gap, error)
	// CameraEvents lists the events cameras reported (ONVIF metadata)
	// overlapping [from, to) (events.go).
	CameraEvents(ctx context.Context, camera string, from, to time.Time) ([]recording.CameraEvent, error)
}

// Replayer builds replay MP4s.
type Replayer interface {
	Plan(ctx context.Context, req replay.Request) (*replay.Plan, error)
	// Write streams the fragmented MP4 (format=fmp4).
	Write(ctx context.Context, p *replay.Plan, w io.Writer) error
	// PrepareMP4 builds the progressive MP4 (format=mp4, the default).
	PrepareMP4(ctx context.Context, p *replay.Plan) (*replay.MP4, error)
}

// Server is the HTTP API. Fill the fields, then use Handler.
type Server struct {
	Index    Index
	Replayer Replayer
	// GapTolerance is used for timelines. It defaults to 250ms.
	GapTolerance time.Duration
	// MaxTimelineWindow bounds a timeline request. It defaults to 31 days.
	MaxTimelineWindow time.Duration
	// MaxReplayWindow bounds a replay request. It defaults to 24h.
	MaxReplayWindow time.Duration
	// Now is the clock. It defaults to time.Now.
	Now    func() time.Time
	Logger *slog.Logger

	// Metrics serves GET /metrics (typically promhttp.HandlerFor on the
	// server's registry); nil answers 404.
	Metrics http.Handler
	// MetricsToken, when not empty, must be sent to /metrics as
	// "Authorization: Bearer <token>".
	MetricsToken string
	// Registerer receives the API's own metrics (replay requests, time to
	// first byte). Nil leaves them unregistered.
	Registerer prometheus.Registerer
	// ReadyChecks are run by /readyz, at most once a second; the server is
	// ready when all pass (IndexCheck, StoreCheck).
	ReadyChecks []ReadyCheck
	// Prober serves POST /api/v1/probe (typically LimitProbes of
	// ProberFunc(probe.Probe)); nil answers 501.
	Prober Prober
	// CameraNetworks, when set, bounds where probes connect (the dialer of
	// every probe refuses other addresses: code not_allowed).
	CameraNetworks *camnet.Policy
	// Cameras is the camera registry (registry.go); nil serves a read-only
	// camera list from Index and 501 for registry writes.
	Cameras CameraRegistry
	// Pullers reports which cameras are online (the ingest manager); nil
	// means none is.
	Pullers PullerStatus
	// Limits bound the replays and motion searches of each user (limits.go).
	Limits Limits
	// Evidence serves the evidence-lock routes and Retention the retention
	// overrides (retention.go); nil answers 501.
	Evidence         EvidenceLocker
	Retention        RetentionIndex
	RetentionDefault RetentionPolicy
	// Compliance serves the township compliance report (compliance.go);
	// nil answers 501.
	Compliance ComplianceReporter
	// Nodes serves the cluster's node registry (nodes.go); nil (one node,
	// no cluster) answers 501.
	Nodes NodeRegistry
	// Auth authenticates and authorizes every request and keeps the audit
	// log (auth.go). Nil lets every request through with no principal: for
	// handler unit tests only; the server always sets it.
	Auth Auth
	// Exports runs signed exports (exports.go); nil answers 501.
	Exports Exporter
	// LoginThrottle holds back failed logins per account and client
	// address (throttle.go). It defaults to LoginThrottleDefaults.
	LoginThrottle *LoginThrottle

	// Live serves the live view (live.go): the ingest pullers' fan-out;
	// nil answers 501.
	Live LiveSource
	// LiveOrigins are the host patterns of other origins whose pages may
	// open a live WebSocket (websocket.AcceptOptions.OriginPatterns); the
	// server's own origin is always allowed.
	LiveOrigins []string
	// TicketKey signs live-view tickets; empty means a random key per
	// process (tickets do not survive a restart). TicketTTL defaults to
	// DefaultTicketTTL.
	TicketKey []byte
	TicketTTL time.Duration
	// DecodeKeyframe serves GET …/snapshot.jpg (snapshot.go) with Live;
	// nil answers 501.
	DecodeKeyframe KeyframeDecoder
	// Layouts keeps the web console's saved layouts (layouts.go) and
	// AuditVerifier checks the audit chain for GET /api/v1/audit/verify
	// (auditverify.go); nil answers 501.
	Layouts       LayoutStore
	AuditVerifier AuditVerifier

	initOnce   sync.Once
	ticketOnce sync.Once
	m          *apiMetrics
	lm         *liveMetrics
	snaps      snapshots
	whep       whepSessions
	slots      userSlots
	ready      readiness
	rates      bitrates
	verifying  chan struct{} // one audit verification at a time
}

// Route is one method + path pattern served by Handler, and the action it
// performs (what authorization checks and the audit log records).
type Route struct {
	Method, Path string
	Action       Action
}

// route is a Route with its handler.
type route struct {
	Route
	h http.HandlerFunc
}

// table lists every route. Feature files contribute their own slice
// (registry.go, auth.go, motion.go); the order does not matter.
func (s *Server) table() []route {
	core := []route{
		{Route{"GET", "/healthz", ActHealth}, s.healthz},
		{Route{"GET", "/readyz", ActReady}, s.readyz},
		{Route{"GET", "/metrics", ActMetrics}, s.metrics},
		{Route{"GET", "/api/v1/cameras/{id}/timeline", ActArchiveRead}, s.timeline},
		{Route{"GET", replayPath, ActReplay}, s.limited(kindReplay, s.instrumentReplay(s.replay))},
		{Route{"POST", "/api/v1/cameras/{id}/replay/ticket", ActReplay}, s.replayTicket},
		{Route{"POST", "/api/v1/probe", ActProbe}, s.probeCamera},
	}
	var all []route
	for _, part := range [][]route{core, s.registryRoutes(), s.authRoutes(), s.motionRoutes(), s.exportRoutes(), s.liveRoutes(), s.snapshotRoutes(), s.whepRoutes(), s.retentionRoutes(), s.complianceRoutes(), s.nodeRoutes(), s.statusRoutes(), s.layoutRoutes(), s.auditVerifyRoutes()} {
		all = append(all, part...)
	}
	return all
}

// Routes lists every route Handler serves, in OpenAPI path syntax.
func Routes() []Route {
	var s Server
	t := s.table()
	out := make([]Route, 0, len(t))
	for _, r := range t {
		out = append(out, r.Route)
	}
	return out
}

// Handler returns the API's http.Handler.
func (s *Server) Handler() http.Handler {
	if s.GapTolerance == 0 {
		s.GapTolerance = 250 * time.Millisecond
	}
	if s.MaxTimelineWindow == 0 {
		s.MaxTimelineWindow = 31 * 24 * time.Hour
	}
	if s.MaxReplayWindow == 0 {
		s.MaxReplayWindow = 24 * time.Hour
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	s.Limits.fill()
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	if s.LoginThrottle == nil {
		s.LoginThrottle = &LoginThrottle{}
	}
	s.initOnce.Do(func() {
		s.m, s.lm = newMetrics(s.Registerer), newLiveMetrics(s.Registerer)
		s.verifying = make(chan struct{}, 1)
	})
	mux := http.NewServeMux()
	for _, r := range s.table() {
		// guard (auth.go) authenticates, authorizes and audits.
		mux.Handle(r.Method+" "+r.Path, s.guard(r.Route, r.h))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint: %s %s", r.Method, r.URL.Path)
	})
	return mux
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

type intervalJSON struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

type timelineJSON struct {
	Camera string         `json:"camera"`
	From   time.Time      `json:"from"`
	To     time.Time      `json:"to"`
	Spans  []intervalJSON `json:"spans"`
	Gaps   []intervalJSON `json:"gaps"`
	// Events are camera-side events (events.go).
	Events []cameraEventJSON `json:"events"`
	// Motion are detected motion intervals and MotionActivity the seconds
	// with motion per minute, for heat bars (motion.go).
	Motion         []motionIntervalJSON `json:"motion"`
	MotionActivity []motionMinuteJSON   `json:"motion_activity"`
	// Lost are recorded segments whose object was lost from the store
	// (reconciliation found neither the object nor a spool copy): the
	// gaps there are footage that existed.
	Lost []lostJSON `json:"lost"`
}

type lostJSON struct {
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
	ObjectKey string    `json:"object_key"`
	// MarkedAt is when reconciliation found the loss.
	MarkedAt time.Time `json:"marked_at"`
}

// LostIndex lists lost segments (*index.DB); an Index without it shows
// none.
type LostIndex interface {
	LostSegments(ctx context.Context, camera string, from, to time.Time) ([]index.LostSegment, error)
}

func (s *Server) timeline(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !s.cameraExists(w, r, id) {
		return
	}
	q := r.URL.Query()
	now := s.Now()
	to, err := parseTime(q, "to", now)
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	from, err := parseTime(q, "from", to.Add(-24*time.Hour))
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	if !from.Before(to) {
		writeError(w, http.StatusBadRequest, "from must be before to")
		return
	}
	if to.Sub(from) > s.MaxTimelineWindow {
		writeError(w, http.StatusBadRequest, "window longer than %s", s.MaxTimelineWindow)
		return
	}
	spans, gaps, err := s.Index.Timeline(r.Context(), id, from, to, s.GapTolerance)
	if err != nil {
		s.internal(w, r, "timeline", err)
		return
	}
	out := timelineJSON{Camera: id, From: from.UTC(), To: to.UTC(), Spans: []intervalJSON{}, Gaps: []intervalJSON{}}
	for _, sp := range spans {
		out.Spans = append(out.Spans, intervalJSON{sp.Start.UTC(), sp.End.UTC()})
	}
	for _, g := range gaps {
		out.Gaps = append(out.Gaps, intervalJSON{g.Start.UTC(), g.End.UTC()})
	}
	if out.Events, err = s.cameraEvents(r.Context(), id, from, to); err != nil {
		s.internal(w, r, "camera events", err)
		return
	}
	if out.Motion, out.MotionActivity, err = s.timelineMotion(r.Context(), id, from, to); err != nil {
		s.internal(w, r, "motion", err)
		return
	}
	out.Lost = []lostJSON{}
	if li, ok := s.Index.(LostIndex); ok {
		lost, err := li.LostSegments(r.Context(), id, from, to)
		if err != nil {
			s.internal(w, r, "lost segments", err)
			return
		}
		for _, l := range lost {
			out.Lost = append(out.Lost, lostJSON{Start: l.Start.UTC(), End: l.End.UTC(), ObjectKey: l.ObjectKey, MarkedAt: l.Lost.UTC()})
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// Replay response headers. Gaps are "start/end" RFC 3339 intervals, comma separated.
const (
	HeaderReplayStart = "X-Replay-Start"
	HeaderReplayEnd   = "X-Replay-End"
	HeaderReplayGaps  = "X-Replay-Gaps"
	// HeaderReplayFormat is the container form of the body: "mp4"
	// (progressive, the default) or "fmp4" (fragmented, streamed).
	HeaderReplayFormat = "X-Replay-Format"
)

// Replay formats (query parameter format). mp4, the default, is a
// progressive MP4 whose edit list every measured desktop player applies
// (ffmpeg/ffplay, Chromium): its first frame is the frame at start. fmp4 is
// the fragmented MP4 streamed fragment by fragment with one fragment of
// memory, for MSE clients and very long windows; ffmpeg shows its
// pre-roll (replay/doc.go, "Players").
const (
	FormatMP4  = "mp4"
	FormatFMP4 = "fmp4"
)

// exactParam reads the exact query parameter (issue #24): 1/true
// re-encodes the partial first GOP so that every player starts at start.
func exactParam(q url.Values) (bool, error) {
	switch v := q.Get("exact"); v {
	case "", "0", "false":
		return false, nil
	case "1", "true":
		return true, nil
	default:
		return false, fmt.Errorf("exact: want 0 or 1, got %q", v)
	}
}

// replayPath is the replay route; it also accepts a replay ticket
// (ticketPrincipal), for a browser's <video src>.
const replayPath = "/api/v1/cameras/{id}/replay.mp4"

// ticketReplay is the action of a replay ticket.
const ticketReplay = "replay"

// replayTicket answers a short-lived ticket for GET …/replay.mp4 of the
// camera (the web console's <video src>, which cannot send a header).
func (s *Server) replayTicket(w http.ResponseWriter, r *http.Request) {
	s.issueTicket(w, r, ticketReplay)
}

func (s *Server) replay(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !s.cameraExists(w, r, id) {
		return
	}
	q := r.URL.Query()
	var req replay.Request
	var err error
	req.Camera = id
	if req.Start, err = requireTime(q, "start"); err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	if req.End, err = requireTime(q, "end"); err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	if !req.Start.Before(req.End) {
		writeError(w, http.StatusBadRequest, "start must be before end")
		return
	}
	if req.End.Sub(req.Start) > s.MaxReplayWindow {
		writeError(w, http.StatusBadRequest, "window longer than %s", s.MaxReplayWindow)
		return
	}
	switch g := q.Get("gaps"); g {
	case "", "stop":
	case "skip":
		req.SkipGaps = true
	default:
		writeError(w, http.StatusBadRequest, "gaps: want stop or skip, got %q", g)
		return
	}
	if req.Exact, err = exactParam(q); err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	format := q.Get("format")
	switch format {
	case "":
		format = FormatMP4
	case FormatMP4, FormatFMP4:
	default:
		writeError(w, http.StatusBadRequest, "format: want mp4 or fmp4, got %q", format)
		return
	}
	plan, err := s.Replayer.Plan(r.Context(), req)
	switch {
	case errors.Is(err, replay.ErrNoFootage):
		writeError(w, http.StatusNotFound, "no footage of camera %s between %s and %s", id,
			req.Start.UTC().Format(time.RFC3339Nano), req.End.UTC().Format(time.RFC3339Nano))
		return
	case errors.Is(err, replay.ErrBadRequest):
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	case err != nil:
		s.internal(w, r, "plan replay", err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "video/mp4")
	h.Set("Cache-Control", "no-store")
	h.Set(HeaderReplayStart, plan.Start.UTC().Format(time.RFC3339Nano))
	h.Set(HeaderReplayEnd, plan.End.UTC().Format(time.RFC3339Nano))
	gaps := make([]string, 0, len(plan.Gaps))
	for _, g := range plan.Gaps {
		gaps = append(gaps, g.Start.UTC().Format(time.RFC3339Nano)+"/"+g.End.UTC().Format(time.RFC3339Nano))
	}
	h.Set(HeaderReplayGaps, strings.Join(gaps, ","))
	h.Set(HeaderReplayFormat, format)
	h.Set("Content-Disposition", fmt.Sprintf(`inline; filename="%s_%s.mp4"`, id, plan.Start.UTC().Format("20060102T150405Z")))
	// The status line goes out with the first byte of the MP4, so a failure
	// to read the footage before that (the store is down and the spool no
	// longer has the segment) is still a clean JSON error.
	lw := &lazyHeaderWriter{ResponseWriter: w}
	err = s.writeReplay(r.Context(), plan, format, lw)
	switch {
	case err == nil:
		if !lw.started {
			w.WriteHeader(http.StatusOK)
		}
	case r.Context().Err() != nil:
		// The client went away; nothing to answer.
	case !lw.started:
		for _, k := range []string{"Cache-Control", "Content-Disposition", "Content-Length", HeaderReplayStart, HeaderReplayEnd, HeaderReplayGaps, HeaderReplayFormat} {
			h.Del(k)
		}
		s.Logger.Warn("replay failed", "camera", id, "err", err)
		var held nodeUnavailable
		if errors.As(err, &held) {
			// A cluster node: the footage is still in the spool of the
			// node that recorded it, and that node does not answer.
			w.Header().Set("Retry-After", "10")
			writeError(w, http.StatusServiceUnavailable,
				"footage of camera %s is not uploaded yet and node %s, whose spool holds it, cannot be reached; try again later",
				id, held.UnavailableNode())
			return
		}
		writeError(w, http.StatusServiceUnavailable,
			"footage of camera %s cannot be read right now (object store unavailable); try again later", id)
	default:
		// Headers and part of the body are gone: cut the stream and log.
		s.Logger.Warn("replay aborted", "camera", id, "err", err)
		panic(http.ErrAbortHandler)
	}
}

// writeReplay writes the plan's MP4 in format to lw. The progressive form
// reads the footage once for its sample tables before the first byte (and
// knows its length); the fragmented one streams from the first GOP on.
func (s *Server) writeReplay(ctx context.Context, plan *replay.Plan, format string, lw *lazyHeaderWriter) error {
	if format == FormatFMP4 {
		return s.Replayer.Write(ctx, plan, lw)
	}
	m, err := s.Replayer.PrepareMP4(ctx, plan)
	if err != nil {
		return err
	}
	lw.Header().Set("Content-Length", strconv.FormatInt(m.Size(), 10))
	return m.Write(ctx, lw)
}

// nodeUnavailable is a replay read error naming the cluster node whose
// spool holds the footage and that cannot serve it (peer.UnavailableError).
type nodeUnavailable interface {
	error
	UnavailableNode() string
}

// lazyHeaderWriter sends the 200 status line with the first body byte.
type lazyHeaderWriter struct {
	http.ResponseWriter
	started bool
}

func (l *lazyHeaderWriter) Write(b []byte) (int, error) {
	if !l.started {
		l.started = true
		l.ResponseWriter.WriteHeader(http.StatusOK)
	}
	return l.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (l *lazyHeaderWriter) Unwrap() http.ResponseWriter { return l.ResponseWriter }

func (s *Server) cameraExists(w http.ResponseWriter, r *http.Request, id string) bool {
	_, err := s.Index.Camera(r.Context(), id)
	switch {
	case errors.Is(err, index.ErrNotFound):
		writeError(w, http.StatusNotFound, "unknown camera %q", id)
		return false
	case err != nil:
		s.internal(w, r, "get camera", err)
		return false
	}
	return true
}

func (s *Server) internal(w http.ResponseWriter, r *http.Request, what string, err error) {
	if errors.Is(r.Context().Err(), context.DeadlineExceeded) {
		// The request's own deadline (Limits), not a failure of the server.
		w.Header().Set("Retry-After", "30")
		writeError(w, http.StatusServiceUnavailable, "%s ran longer than the request's deadline: narrow it", what)
		return
	}
	s.Logger.Error("request failed", "op", what, "path", r.URL.Path, "err", err)
	writeError(w, http.StatusInternalServerError, "internal error: %s", what)
}

func parseTime(q map[string][]string, name string, def time.Time) (time.Time, error) {
	v := ""
	if vs := q[name]; len(vs) > 0 {
		v = vs[0]
	}
	if v == "" {
		return def, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: want an RFC 3339 time such as 2026-11-28T13:20:00Z, got %q", name, v)
	}
	return t, nil
}

func requireTime(q map[string][]string, name string) (time.Time, error) {
	if len(q[name]) == 0 || q[name][0] == "" {
		return time.Time{}, fmt.Errorf("%s: required (RFC 3339)", name)
	}
	return parseTime(q, name, time.Time{})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, format string, args ...any) {
	writeJSON(w, status, map[string]string{"error": fmt.Sprintf(format, args...)})
}
