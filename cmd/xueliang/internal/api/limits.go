package api

import (
	"context"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Limits bound what one client can hold of the server: concurrent
// requests per user and the time one request may take. The zero value
// takes the defaults.
//
// The http.Server has no WriteTimeout (it would cut every replay longer
// than it): replay and motion search get their own deadline here, and each
// write of a replay must make progress within WriteStall (a per-write
// deadline set through http.ResponseController). The server's ReadTimeout
// bounds reading the request only: net/http clears the read deadline once
// the body has been read.
type Limits struct {
	// ReplayPerUser is the number of replays one user may run at once; more
	// are answered 429. It defaults to 16 (DefaultReplayPerUser).
	ReplayPerUser int
	// MotionPerUser is the number of motion searches one user may run at
	// once. It defaults to 2.
	MotionPerUser int
	// ReplayDeadline bounds one replay request, streaming included. It
	// defaults to 1h.
	ReplayDeadline time.Duration
	// MotionDeadline bounds one motion search. It defaults to 1m.
	MotionDeadline time.Duration
	// WriteStall ends a replay whose client has not taken a write for this
	// long. It defaults to 30s.
	WriteStall time.Duration
}

// DefaultReplayPerUser covers the console's largest replay: 9 tiles on one
// clock, each holding a replay while the window replacing it after a seek
// loads, and a search hit playing.
const DefaultReplayPerUser = 16

func (l *Limits) fill() {
	if l.ReplayPerUser <= 0 {
		l.ReplayPerUser = DefaultReplayPerUser
	}
	if l.MotionPerUser <= 0 {
		l.MotionPerUser = 2
	}
	if l.ReplayDeadline <= 0 {
		l.ReplayDeadline = time.Hour
	}
	if l.MotionDeadline <= 0 {
		l.MotionDeadline = time.Minute
	}
	if l.WriteStall <= 0 {
		l.WriteStall = 30 * time.Second
	}
}

// Kinds of limited requests (the kind label of the metrics).
const (
	kindReplay = "replay"
	kindMotion = "motion_search"
)

// userSlots counts the requests of each user in flight, per kind.
type userSlots struct {
	mu   sync.Mutex
	used map[string]int // kind + "\x00" + user
}

func (u *userSlots) acquire(kind, user string, max int) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.used == nil {
		u.used = map[string]int{}
	}
	k := kind + "\x00" + user
	if u.used[k] >= max {
		return false
	}
	u.used[k]++
	return true
}

func (u *userSlots) release(kind, user string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	k := kind + "\x00" + user
	if u.used[k]--; u.used[k] <= 0 {
		delete(u.used, k)
	}
}

// limited runs h with at most the kind's number of requests per user at
// once (429 beyond, with Retry-After), under the kind's deadline; a replay
// (a streaming answer) also has each write bounded by WriteStall.
func (s *Server) limited(kind string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		max, deadline, stall := s.Limits.MotionPerUser, s.Limits.MotionDeadline, time.Duration(0)
		if kind == kindReplay {
			max, deadline, stall = s.Limits.ReplayPerUser, s.Limits.ReplayDeadline, s.Limits.WriteStall
		}
		user := remoteHost(r) // no principal: handler tests without Auth
		if p := principalFrom(r.Context()); p != nil {
			user = p.User
		}
		if !s.slots.acquire(kind, user, max) {
			s.m.limited.WithLabelValues(kind).Inc()
			noteAudit(r.Context(), "refused: %d %s requests of this user in progress", max, kind)
			w.Header().Set("Retry-After", "5")
			writeError(w, http.StatusTooManyRequests, "too many %s requests of yours in progress (at most %d); retry when one ends", kind, max)
			return
		}
		defer s.slots.release(kind, user)
		// Real time: s.Now may be a test clock.
		ctx, cancel := context.WithDeadline(r.Context(), time.Now().Add(deadline))
		defer cancel()
		if stall > 0 {
			w = &stallWriter{ResponseWriter: w, rc: http.NewResponseController(w), stall: stall}
		}
		h(w, r.WithContext(ctx))
		if ctx.Err() == context.DeadlineExceeded {
			s.m.deadlines.WithLabelValues(kind).Inc()
		}
	}
}

// stallWriter gives each write and flush WriteStall to complete: a client
// that stops reading loses its stream instead of holding it.
type stallWriter struct {
	http.ResponseWriter
	rc    *http.ResponseController
	stall time.Duration
}

func (s *stallWriter) Write(b []byte) (int, error) {
	_ = s.rc.SetWriteDeadline(time.Now().Add(s.stall))
	return s.ResponseWriter.Write(b)
}

// FlushError lets http.ResponseController flush through.
func (s *stallWriter) FlushError() error {
	_ = s.rc.SetWriteDeadline(time.Now().Add(s.stall))
	return s.rc.Flush()
}

// Flush implements http.Flusher.
func (s *stallWriter) Flush() { _ = s.FlushError() }

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *stallWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// ConnLimiter is a net.Listener that holds at most a fixed number of
// connections open: beyond it, a new connection is accepted and closed at
// once (counted), so that a client holding many idle or slow connections
// cannot keep the others out of the listen backlog for ever.
type ConnLimiter struct {
	net.Listener
	max      int64
	open     atomic.Int64
	refused  atomic.Int64
	accepted atomic.Int64
}

// LimitListener returns ln accepting at most n open connections.
func LimitListener(ln net.Listener, n int) *ConnLimiter {
	return &ConnLimiter{Listener: ln, max: int64(max(n, 1))}
}

// Accept returns the next connection within the cap.
func (l *ConnLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) > l.max {
			l.open.Add(-1)
			l.refused.Add(1)
			c.Close()
			continue
		}
		l.accepted.Add(1)
		return &limitedConn{Conn: c, l: l}, nil
	}
}

// Open is the number of connections open; Refused the number closed at
// accept because the cap was reached.
func (l *ConnLimiter) Open() int64    { return l.open.Load() }
func (l *ConnLimiter) Refused() int64 { return l.refused.Load() }

type limitedConn struct {
	net.Conn
	l    *ConnLimiter
	once sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.open.Add(-1) })
	return err
}

// Describe implements prometheus.Collector.
func (l *ConnLimiter) Describe(ch chan<- *prometheus.Desc) {
	ch <- connOpenDesc
	ch <- connRefusedDesc
	ch <- connMaxDesc
}

// Collect implements prometheus.Collector.
func (l *ConnLimiter) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(connOpenDesc, prometheus.GaugeValue, float64(l.Open()))
	ch <- prometheus.MustNewConstMetric(connRefusedDesc, prometheus.CounterValue, float64(l.Refused()))
	ch <- prometheus.MustNewConstMetric(connMaxDesc, prometheus.GaugeValue, float64(l.max))
}

var (
	connOpenDesc    = prometheus.NewDesc("xueliang_http_connections_open", "HTTP connections open.", nil, nil)
	connRefusedDesc = prometheus.NewDesc("xueliang_http_connections_refused_total", "HTTP connections closed at accept because http.max_connections were open.", nil, nil)
	connMaxDesc     = prometheus.NewDesc("xueliang_http_connections_max", "http.max_connections.", nil, nil)
)

var _ prometheus.Collector = (*ConnLimiter)(nil)
