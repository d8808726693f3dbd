package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"xueliang/storage"
)

type statFunc func(ctx context.Context, key string) (storage.ObjectInfo, error)

func (f statFunc) Stat(ctx context.Context, key string) (storage.ObjectInfo, error) {
	return f(ctx, key)
}

type pingFunc func(ctx context.Context) error

func (f pingFunc) Ping(ctx context.Context) error { return f(ctx) }

func TestReadyz(t *testing.T) {
	notFound := statFunc(func(_ context.Context, key string) (storage.ObjectInfo, error) {
		return storage.ObjectInfo{}, fmt.Errorf("stat %s: %w", key, storage.ErrNotFound)
	})
	down := statFunc(func(context.Context, string) (storage.ObjectInfo, error) {
		return storage.ObjectInfo{}, errors.New("dial tcp 127.0.0.1:9000: connection refused")
	})
	ok := pingFunc(func(context.Context) error { return nil })
	broken := pingFunc(func(context.Context) error { return errors.New("ping index: database is closed") })
	for _, tc := range []struct {
		name       string
		checks     []ReadyCheck
		wantCode   int
		wantFailed []string
	}{
		{"no checks", nil, 200, nil},
		{"store answers not found", []ReadyCheck{IndexCheck(ok), StoreCheck(notFound)}, 200, nil},
		{"store down", []ReadyCheck{IndexCheck(ok), StoreCheck(down)}, 503, []string{"store"}},
		{"index down", []ReadyCheck{IndexCheck(broken), StoreCheck(notFound)}, 503, []string{"index"}},
		{"both down", []ReadyCheck{IndexCheck(broken), StoreCheck(down)}, 503, []string{"index", "store"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Server{ReadyChecks: tc.checks}
			rec := httptest.NewRecorder()
			s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
			if rec.Code != tc.wantCode {
				t.Fatalf("code %d, want %d: %s", rec.Code, tc.wantCode, rec.Body)
			}
			var body struct {
				Status string            `json:"status"`
				Failed map[string]string `json:"failed"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatal(err)
			}
			if len(body.Failed) != len(tc.wantFailed) {
				t.Errorf("failed %v, want %v", body.Failed, tc.wantFailed)
			}
			for _, name := range tc.wantFailed {
				if body.Failed[name] == "" {
					t.Errorf("failed %v does not name %s", body.Failed, name)
				}
			}
		})
	}
}

func TestReadyzCaches(t *testing.T) {
	calls := 0
	now := time.Unix(1000, 0)
	s := &Server{
		Now:         func() time.Time { return now },
		ReadyChecks: []ReadyCheck{{Name: "index", Check: func(context.Context) error { calls++; return nil }}},
	}
	h := s.Handler()
	get := func() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
		if rec.Code != 200 {
			t.Fatalf("code %d", rec.Code)
		}
	}
	get()
	get()
	now = now.Add(500 * time.Millisecond)
	get()
	if calls != 1 {
		t.Fatalf("%d checks within a second, want 1", calls)
	}
	now = now.Add(time.Second)
	get()
	if calls != 2 {
		t.Fatalf("%d checks after the cache expired, want 2", calls)
	}
}

func TestMetricsEndpoint(t *testing.T) {
	reg := prometheus.NewRegistry()
	for _, tc := range []struct {
		name, token, auth string
		handler           http.Handler
		wantCode          int
	}{
		{"disabled", "", "", nil, 404},
		{"open", "", "", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), 200},
		{"token missing", "s3cret", "", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), 401},
		{"token wrong", "s3cret", "Bearer nope", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), 401},
		{"token right", "s3cret", "Bearer s3cret", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Server{Metrics: tc.handler, MetricsToken: tc.token}
			req := httptest.NewRequest("GET", "/metrics", nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			rec := httptest.NewRecorder()
			s.Handler().ServeHTTP(rec, req)
			if rec.Code != tc.wantCode {
				t.Errorf("code %d, want %d", rec.Code, tc.wantCode)
			}
		})
	}
}

// TestReplayInstrumentation covers the paths the end-to-end test in
// internal/metrics does not: a replay cut after its headers and a replay
// that fails before them.
func TestReplayInstrumentation(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := &Server{Registerer: reg}
	s.Handler()
	h := s.instrumentReplay(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("case") {
		case "abort":
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte("ftyp"))
			panic(http.ErrAbortHandler)
		case "fail":
			writeError(w, http.StatusInternalServerError, "boom")
		}
	})
	func() {
		defer func() {
			if r := recover(); r != http.ErrAbortHandler {
				t.Errorf("recovered %v, want the abort to propagate", r)
			}
		}()
		h(httptest.NewRecorder(), httptest.NewRequest("GET", "/?case=abort", nil))
	}()
	h(httptest.NewRecorder(), httptest.NewRequest("GET", "/?case=fail", nil))
	want := `
# HELP xueliang_replay_requests_total Replay requests by HTTP status code (aborted: the stream was cut after the headers).
# TYPE xueliang_replay_requests_total counter
xueliang_replay_requests_total{code="200"} 0
xueliang_replay_requests_total{code="400"} 0
xueliang_replay_requests_total{code="404"} 0
xueliang_replay_requests_total{code="500"} 1
xueliang_replay_requests_total{code="aborted"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "xueliang_replay_requests_total"); err != nil {
		t.Error(err)
	}
	// The aborted stream had sent its first byte (status 200); the failure
	// had no successful first byte.
	if n := testutil.CollectAndCount(reg, "xueliang_replay_time_to_first_byte_seconds"); n != 1 {
		t.Errorf("%d ttfb series", n)
	}
	if got := histCount(t, reg, "xueliang_replay_time_to_first_byte_seconds"); got != 1 {
		t.Errorf("ttfb observations %d, want 1", got)
	}
}

func histCount(t *testing.T, reg *prometheus.Registry, name string) uint64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == name {
			return f.Metric[0].GetHistogram().GetSampleCount()
		}
	}
	t.Fatalf("%s not gathered", name)
	return 0
}
