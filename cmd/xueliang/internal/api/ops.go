package api

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"xueliang/storage"
)

// ReadyCheck is one readiness check run by /readyz.
type ReadyCheck struct {
	// Name appears in the /readyz body ("index", "store").
	Name string
	// Check returns nil when the dependency answers. It is given a context
	// with a short deadline.
	Check func(ctx context.Context) error
}

// Pinger is a dependency that can be pinged (*index.DB).
type Pinger interface {
	Ping(ctx context.Context) error
}

// Stater is an object store that can stat a key (storage.Store).
type Stater interface {
	Stat(ctx context.Context, key string) (storage.ObjectInfo, error)
}

// ReadySentinelKey is the key /readyz stats in the object store. It need
// not exist: storage.ErrNotFound proves the store answers.
const ReadySentinelKey = "xueliang-readyz-sentinel"

// IndexCheck is ready when the index answers Ping.
func IndexCheck(p Pinger) ReadyCheck {
	return ReadyCheck{Name: "index", Check: p.Ping}
}

// StoreCheck is ready when the object store answers a Stat of
// ReadySentinelKey (found or not found).
func StoreCheck(s Stater) ReadyCheck {
	return ReadyCheck{Name: "store", Check: func(ctx context.Context) error {
		_, err := s.Stat(ctx, ReadySentinelKey)
		if err == nil || errors.Is(err, storage.ErrNotFound) {
			return nil
		}
		return err
	}}
}

// readiness caches the result of the checks for readyCacheFor.
type readiness struct {
	mu     sync.Mutex
	at     time.Time
	failed map[string]string // check name → error message
}

const (
	readyCacheFor = time.Second
	readyTimeout  = 2 * time.Second
)

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	s.ready.mu.Lock()
	if s.ready.at.IsZero() || s.Now().Sub(s.ready.at) >= readyCacheFor || s.Now().Before(s.ready.at) {
		s.ready.failed = s.runChecks(r.Context())
		s.ready.at = s.Now()
	}
	failed := s.ready.failed
	s.ready.mu.Unlock()
	if len(failed) > 0 {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "failed": failed})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok"})
}

// runChecks runs every check concurrently and returns the failures.
func (s *Server) runChecks(ctx context.Context) map[string]string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), readyTimeout)
	defer cancel()
	var (
		mu     sync.Mutex
		wg     sync.WaitGroup
		failed = map[string]string{}
	)
	for _, c := range s.ReadyChecks {
		wg.Go(func() {
			if err := c.Check(ctx); err != nil {
				s.Logger.Warn("readiness check failed", "check", c.Name, "err", err)
				mu.Lock()
				failed[c.Name] = err.Error()
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return failed
}

func (s *Server) metrics(w http.ResponseWriter, r *http.Request) {
	if s.Metrics == nil {
		writeError(w, http.StatusNotFound, "metrics are not enabled")
		return
	}
	// With Auth, guard has already let in the scrape token or an admin.
	if s.MetricsToken != "" && principalFrom(r.Context()) == nil {
		got := r.Header.Get("Authorization")
		want := "Bearer " + s.MetricsToken
		if subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="metrics"`)
			writeError(w, http.StatusUnauthorized, "metrics: bearer token required")
			return
		}
	}
	s.Metrics.ServeHTTP(w, r)
}

// apiMetrics are the API's own metrics.
type apiMetrics struct {
	replayRequests *prometheus.CounterVec // code
	replayTTFB     prometheus.Histogram
	replayDuration prometheus.Histogram
	replayBytes    prometheus.Counter
	loginFailures  *prometheus.CounterVec // reason
	limited        *prometheus.CounterVec // op
	deadlines      *prometheus.CounterVec // op
}

// Reasons of xueliang_api_login_failures_total.
const (
	loginBadCredentials = "bad_credentials"
	loginThrottled      = "throttled"
)

// replayCodes are the values of the code label: the statuses replay
// answers, and "aborted" for a stream cut after its headers.
var replayCodes = []string{"200", "400", "404", "500", "aborted"}

func newMetrics(reg prometheus.Registerer) *apiMetrics {
	m := &apiMetrics{
		replayRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "xueliang_replay_requests_total",
			Help: "Replay requests by HTTP status code (aborted: the stream was cut after the headers).",
		}, []string{"code"}),
		replayTTFB: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "xueliang_replay_time_to_first_byte_seconds",
			Help:    "Time from a successful replay request to the first body byte.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 11), // 10 ms … 10 s
		}),
		replayDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "xueliang_replay_duration_seconds",
			Help:    "Duration of replay requests, whole body included.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2.5, 10), // 10 ms … 38 s
		}),
		replayBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "xueliang_replay_sent_bytes_total",
			Help: "Body bytes sent by replay responses.",
		}),
		loginFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "xueliang_api_login_failures_total",
			Help: "Refused logins: bad_credentials (unknown user or wrong password) or throttled (429, too many failures of the account or the client address).",
		}, []string{"reason"}),
	}
	m.loginFailures.WithLabelValues(loginBadCredentials)
	m.loginFailures.WithLabelValues(loginThrottled)
	m.limited = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "xueliang_http_requests_limited_total",
		Help: "Requests answered 429 because their user had as many of this kind in progress as allowed.",
	}, []string{"op"})
	m.deadlines = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "xueliang_http_request_deadlines_total",
		Help: "Replays and motion searches ended by their deadline.",
	}, []string{"op"})
	for _, c := range replayCodes {
		m.replayRequests.WithLabelValues(c)
	}
	for _, k := range []string{kindReplay, kindMotion} {
		m.limited.WithLabelValues(k)
		m.deadlines.WithLabelValues(k)
	}
	if reg != nil {
		reg.MustRegister(m.replayRequests, m.replayTTFB, m.replayDuration, m.replayBytes, m.loginFailures, m.limited, m.deadlines)
	}
	return m
}

// instrumentReplay counts replay requests and observes their time to first
// byte and duration.
func (s *Server) instrumentReplay(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tw := &timingWriter{ResponseWriter: w, start: time.Now(), m: s.m}
		defer func() {
			code := strconv.Itoa(tw.status())
			rec := recover()
			if rec != nil {
				code = "aborted"
			}
			s.m.replayRequests.WithLabelValues(code).Inc()
			s.m.replayDuration.Observe(time.Since(tw.start).Seconds())
			if rec != nil {
				panic(rec)
			}
		}()
		h(tw, r)
	}
}

// timingWriter notes the status and the first body byte.
type timingWriter struct {
	http.ResponseWriter
	start time.Time
	m     *apiMetrics
	code  int
	wrote bool
}

func (t *timingWriter) WriteHeader(code int) {
	if t.code == 0 {
		t.code = code
	}
	t.ResponseWriter.WriteHeader(code)
}

func (t *timingWriter) Write(b []byte) (int, error) {
	if t.code == 0 {
		t.code = http.StatusOK
	}
	if !t.wrote && len(b) > 0 {
		t.wrote = true
		if t.code == http.StatusOK {
			t.m.replayTTFB.Observe(time.Since(t.start).Seconds())
		}
	}
	n, err := t.ResponseWriter.Write(b)
	if t.code == http.StatusOK {
		t.m.replayBytes.Add(float64(n))
	}
	return n, err
}

func (t *timingWriter) status() int {
	if t.code == 0 {
		return http.StatusOK
	}
	return t.code
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (t *timingWriter) Unwrap() http.ResponseWriter { return t.ResponseWriter }
