package api

// Live view: GET /api/v1/cameras/{id}/live upgrades to a WebSocket and
// streams the camera's stream (ingest/live) as fMP4 for Media Source
// Extensions: a JSON text message (live.Header: codecs, MIME type), the
// init as a binary message, then one binary message per fragment
// (moof+mdat, one video frame each). A new JSON + init pair follows when
// the camera's session or parameter sets change.
//
// Browsers cannot set an Authorization header on a WebSocket, so they get a
// ticket first: POST /api/v1/cameras/{id}/live/ticket (authenticated as
// usual) answers a signed ticket valid for TicketTTL, bound to the caller and
// the camera, that GET …/live accepts as ?ticket=.

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"xueliang/cmd/xueliang/internal/auth"
	"xueliang/index"
	"xueliang/ingest/live"
)

// LiveSource finds the live stream of a camera (the ingest pullers' fan-out,
// *live.Hub).
type LiveSource interface {
	// Lookup returns camera's stream ("main" or "sub") and whether it has a
	// session now.
	Lookup(camera, stream string) (*live.Stream, bool)
}

var _ LiveSource = (*live.Hub)(nil)

const (
	// DefaultTicketTTL is how long a live-view ticket is valid.
	DefaultTicketTTL = 30 * time.Second
	// liveWriteTimeout ends a view whose client has not taken one message
	// for this long (it stopped reading altogether).
	liveWriteTimeout = 30 * time.Second
	protoMSE         = "mse"
)

func (s *Server) liveRoutes() []route {
	return []route{
		{Route{"GET", "/api/v1/cameras/{id}/live", ActLive}, s.liveView},
		{Route{"POST", "/api/v1/cameras/{id}/live/ticket", ActLive}, s.liveTicket},
	}
}

// ticket is what a live or replay ticket signs.
type ticket struct {
	User      string   `json:"u"`
	Role      string   `json:"r"`
	Townships []string `json:"t,omitempty"`
	Camera    string   `json:"c"`
	Expires   int64    `json:"e"` // Unix seconds
	// Action is what the ticket is for: "" (the live view, as before
	// replay tickets existed) or "replay" (GET …/replay.mp4, replay.go).
	Action string `json:"a,omitempty"`
}

func (s *Server) ticketKey() []byte {
	s.ticketOnce.Do(func() {
		if len(s.TicketKey) == 0 {
			s.TicketKey = make([]byte, 32)
			if _, err := rand.Read(s.TicketKey); err != nil {
				panic(err) // crypto/rand does not fail on Linux
			}
		}
	})
	return s.TicketKey
}

func (s *Server) signTicket(t ticket) string {
	body, _ := json.Marshal(t)
	mac := hmac.New(sha256.New, s.ticketKey())
	mac.Write(body)
	return base64.RawURLEncoding.EncodeToString(body) + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

var errBadTicket = errors.New("invalid or expired ticket")

// verifyTicket checks a ticket for camera and action ("" for the live
// view, "replay") and returns its principal.
func (s *Server) verifyTicket(raw, camera, action string) (*Principal, error) {
	b64, sig, ok := strings.Cut(raw, ".")
	if !ok {
		return nil, errBadTicket
	}
	strict := base64.RawURLEncoding.Strict() // one spelling per ticket
	body, err1 := strict.DecodeString(b64)
	got, err2 := strict.DecodeString(sig)
	if err1 != nil || err2 != nil {
		return nil, errBadTicket
	}
	mac := hmac.New(sha256.New, s.ticketKey())
	mac.Write(body)
	if !hmac.Equal(mac.Sum(nil), got) {
		return nil, errBadTicket
	}
	var t ticket
	if err := json.Unmarshal(body, &t); err != nil {
		return nil, errBadTicket
	}
	if t.Camera != camera || t.Action != action || s.Now().Unix() >= t.Expires {
		return nil, errBadTicket
	}
	return &Principal{User: t.User, Role: t.Role, Townships: t.Townships}, nil
}

func (s *Server) liveTicket(w http.ResponseWriter, r *http.Request) {
	s.issueTicket(w, r, "")
}

// issueTicket answers a ticket for the path's camera and action, bound to
// the caller.
func (s *Server) issueTicket(w http.ResponseWriter, r *http.Request, action string) {
	id := r.PathValue("id")
	if !s.cameraExists(w, r, id) {
		return
	}
	p := principalFrom(r.Context())
	if p == nil {
		p = &Principal{}
	}
	ttl := s.TicketTTL
	if ttl <= 0 {
		ttl = DefaultTicketTTL
	}
	exp := s.Now().Add(ttl)
	tk := s.signTicket(ticket{User: p.User, Role: p.Role, Townships: p.Townships, Camera: id, Expires: exp.Unix(), Action: action})
	writeJSON(w, http.StatusOK, map[string]any{"ticket": tk, "expires": exp.UTC()})
}

// liveMetrics are the live view's metrics.
type liveMetrics struct {
	viewers *prometheus.GaugeVec   // camera, protocol
	bytes   *prometheus.CounterVec // camera, protocol
	drops   *prometheus.CounterVec // camera, protocol
	views   *prometheus.CounterVec // camera, protocol
	latency *prometheus.HistogramVec
}

func newLiveMetrics(reg prometheus.Registerer) *liveMetrics {
	m := &liveMetrics{
		viewers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "xueliang_live_viewers",
			Help: "Live viewers now, by camera and protocol (mse, webrtc, rtsp).",
		}, []string{"camera", "protocol"}),
		views: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "xueliang_live_views_total",
			Help: "Live views started, by camera and protocol.",
		}, []string{"camera", "protocol"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "xueliang_live_sent_bytes_total",
			Help: "Media bytes sent to live viewers (init and fragments), by camera and protocol.",
		}, []string{"camera", "protocol"}),
		drops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "xueliang_live_viewer_drops_total",
			Help: "Times a live viewer fell a full ring behind and was cut to the next keyframe.",
		}, []string{"camera", "protocol"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "xueliang_live_latency_seconds",
			Help:    "Capture (camera wall clock of the frame, RTCP-anchored) to the frame's fragment handed to the socket: the glass-to-glass estimate before the player's buffer.",
			Buckets: []float64{0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10},
		}, []string{"protocol"}),
	}
	if reg != nil {
		reg.MustRegister(m.viewers, m.views, m.bytes, m.drops, m.latency)
	}
	return m
}

func (s *Server) liveView(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !s.cameraExists(w, r, id) {
		return
	}
	q := r.URL.Query()
	name := q.Get("stream")
	if name == "" {
		name = live.Main
	}
	if name != live.Main && name != live.Sub {
		writeError(w, http.StatusBadRequest, "stream: want main or sub, got %q", name)
		return
	}
	noAudio := false
	switch q.Get("audio") {
	case "", "1", "true":
	case "0", "false":
		noAudio = true
	default:
		writeError(w, http.StatusBadRequest, "audio: want true or false, got %q", q.Get("audio"))
		return
	}
	if s.Live == nil {
		writeError(w, http.StatusNotImplemented, "live view is not available on this server")
		return
	}
	st, ok := s.Live.Lookup(id, name)
	if !ok {
		writeError(w, http.StatusServiceUnavailable, "camera %s has no live %s stream now (offline, or no sub stream is read)", id, name)
		return
	}
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		writeError(w, http.StatusBadRequest, "live view is a WebSocket: send Upgrade: websocket")
		return
	}
	start := s.Now()
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: s.LiveOrigins})
	if err != nil {
		s.Logger.Debug("live upgrade failed", "camera", id, "err", err)
		return // Accept answered
	}
	defer conn.CloseNow()
	ctx := conn.CloseRead(context.WithoutCancel(r.Context()))
	// The server's shutdown ends views too.
	stop := context.AfterFunc(r.Context(), func() { conn.Close(websocket.StatusGoingAway, "server shutting down") })
	defer stop()

	v := st.Subscribe()
	lm := s.lm
	lm.viewers.WithLabelValues(id, protoMSE).Inc()
	lm.views.WithLabelValues(id, protoMSE).Inc()
	s.Logger.Info("live view started", "camera", id, "stream", name)
	sent, reason := s.pumpLive(ctx, conn, v, &live.Muxer{NoAudio: noAudio}, id)
	v.Close()
	lm.viewers.WithLabelValues(id, protoMSE).Dec()
	s.Logger.Info("live view ended", "camera", id, "stream", name, "bytes", sent, "drops", v.Drops(), "reason", reason)
	s.auditLiveEnd(r, id, name, start, sent, v.Drops(), reason)
}

// pumpLive sends v's units through mux to conn until the view ends, and
// returns the bytes sent and why it ended.
func (s *Server) pumpLive(ctx context.Context, conn *websocket.Conn, v *live.Viewer, mux *live.Muxer, camera string) (int64, string) {
	var sent int64
	bytes := s.lm.bytes.WithLabelValues(camera, protoMSE)
	lat := s.lm.latency.WithLabelValues(protoMSE)
	write := func(typ websocket.MessageType, b []byte) error {
		wctx, cancel := context.WithTimeout(ctx, liveWriteTimeout)
		defer cancel()
		if err := conn.Write(wctx, typ, b); err != nil {
			return err
		}
		sent += int64(len(b))
		bytes.Add(float64(len(b)))
		return nil
	}
	drops := s.lm.drops.WithLabelValues(camera, protoMSE)
	var lastDrops int64
	for {
		if d := v.Drops(); d != lastDrops {
			drops.Add(float64(d - lastDrops))
			lastDrops = d
		}
		u, err := v.Next(ctx)
		if err != nil {
			return sent, "client closed"
		}
		msgs, err := mux.Push(u)
		if err != nil {
			s.Logger.Warn("live mux failed", "camera", camera, "err", err)
			conn.Close(websocket.StatusInternalError, "mux error")
			return sent, "mux error"
		}
		for _, m := range msgs {
			if m.Header != nil {
				hb, _ := json.Marshal(m.Header)
				if err := write(websocket.MessageText, hb); err != nil {
					return sent, "write failed"
				}
			}
			if err := write(websocket.MessageBinary, m.Data); err != nil {
				return sent, "write failed"
			}
			if m.Video != nil {
				lat.Observe(live.Latency(m.Video, s.Now()).Seconds())
			}
		}
	}
}

// auditLiveEnd appends the entry that closes a live view: who watched
// which camera from when to when. (The guard wrote the opening one, with
// status 101, when the upgrade was answered.)
func (s *Server) auditLiveEnd(r *http.Request, camera, stream string, start time.Time, sent, drops int64, reason string) {
	if s.Auth == nil {
		return
	}
	p := principalFrom(r.Context())
	rec := index.AuditRecord{
		At: s.Now().UTC(), Remote: remoteHost(r), Method: r.Method, Path: r.URL.Path,
		Action: string(ActLive), Camera: camera, From: start.UTC(), To: s.Now().UTC(), Status: http.StatusSwitchingProtocols,
		Detail: fmt.Sprintf("live view ended: stream %s, %d bytes, %d drops, %s", stream, sent, drops, reason),
	}
	if p != nil {
		rec.User, rec.Role = p.User, p.Role
	}
	if err := s.Auth.AppendAudit(context.WithoutCancel(r.Context()), rec); err != nil {
		s.Logger.Error("live view end not audited", "camera", camera, "err", err)
	}
}

// ticketPrincipal authenticates a live view or a replay by its ?ticket=
// (the browser's way: a WebSocket or a <video src> cannot send headers);
// ok is false when the request has none. A live ticket opens only the
// live routes (GET, action live) of its camera, a replay ticket only GET
// …/replay.mp4 of its camera.
func (s *Server) ticketPrincipal(rt Route, r *http.Request) (p *Principal, ok bool, err error) {
	var action string
	switch {
	case rt.Method != "GET" || bearer(r) != "":
		return nil, false, nil
	case rt.Action == ActLive:
	case rt.Path == replayPath:
		action = ticketReplay
	default:
		return nil, false, nil
	}
	raw := r.URL.Query().Get("ticket")
	if raw == "" {
		return nil, false, nil
	}
	p, err = s.verifyTicket(raw, r.PathValue("id"), action)
	if err != nil {
		return nil, true, auth.ErrUnauthenticated
	}
	return p, true, nil
}
