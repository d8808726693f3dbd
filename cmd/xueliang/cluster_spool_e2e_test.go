package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"xueliang/cmd/xueliang/internal/peer"
	"xueliang/index"
	"xueliang/index/pgtest"
	"xueliang/storage/miniotest"
	"xueliang/storage/recording"
)

// TestClusterSpoolFetch (issue #21, "any node answers any API request"):
// two nodes share PostgreSQL and MinIO; node n1 records the camera but
// cannot reach MinIO (its own path to it is cut, n2's is not), so its
// footage stays in its spool. A replay of the last seconds asked from n2
// is served from n1's spool over the signed internal endpoint (judged
// frame by frame); that endpoint refuses requests without the cluster
// secret, with another secret or with an operator token (401); with n1
// stalled (SIGSTOP) or dead (kill -9) the same replay from n2 answers 503
// naming n1 within cluster.fetch_timeout, never hangs.
func TestClusterSpoolFetch(t *testing.T) {
	t.Parallel() // waits on real time mostly
	pg := pgtest.Start(t)
	dbURL := pg.NewDatabase(t)
	m := miniotest.Start(t)
	rtsp, _ := startCamsim(t, "-cameras", "1")
	secret := clusterSecretFile(t)
	const fetchTimeout = 2 * time.Second
	cfg := func(node, addr, storage string) string {
		return "index:\n  postgres_url: " + dbURL + "\nrecording:\n  segment_duration: 4s\n" +
			"cluster:\n  enabled: true\n  node_id: " + node + "\n  advertise_url: http://" + addr +
			"\n  secret_file: " + secret + "\n  fetch_timeout: " + fetchTimeout.String() + "\n" +
			storage + cameraList(rtsp, 1)
	}
	// n1 reaches MinIO through a proxy the test cuts.
	cut := startCuttableProxy(t, m.Endpoint)
	n1Addr, n2Addr := freeAddr(t), freeAddr(t)
	n1 := startServerAt(t, n1Addr, cfg("n1", n1Addr, strings.Replace(s3Config(m, "spoolfetch"), m.Endpoint, cut.addr, 1)))
	cut.cut()
	ctx := context.Background()
	db, err := index.OpenPostgres(ctx, dbURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	waitForFast(t, 20*time.Second, "n1 holding cam1", func() bool { return liveLeases(t, db)["cam1"].Node == "n1" })
	n2 := startServerAt(t, n2Addr, cfg("n2", n2Addr, s3Config(m, "spoolfetch")))

	// n1's footage accumulates in its spool: two closed segments waiting
	// for upload and one being recorded, 10 s at least.
	var segs []recording.Segment
	waitForFast(t, 30*time.Second, "10 s in two closed segments not uploaded and one recording", func() bool {
		segs, err = db.SegmentsInRange(ctx, "cam1", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		closed := 0
		for _, s := range segs {
			if s.State == recording.StateStored {
				t.Fatalf("segment %s stored although n1 cannot reach MinIO", s.ObjectKey)
			}
			if s.State == recording.StateClosed {
				closed++
			}
		}
		if len(segs) == 0 {
			return false
		}
		last := segs[len(segs)-1]
		return closed >= 2 && last.State == recording.StateRecording && last.End.Sub(segs[0].Start) >= 10*time.Second
	})
	from := segs[0].Start.Add(time.Second)
	to := segs[len(segs)-1].End.Add(-200 * time.Millisecond)
	if to.Sub(from) < 8*time.Second {
		t.Fatalf("only %v of footage", to.Sub(from))
	}

	// The replay from n2 reads n1's spool: every frame of the window, from
	// the closed segments and the one being recorded.
	r := fetchReplay(t, n2, "cam1", from, to, false)
	j := judgeMP4(t, r.path)
	checkContinuous(t, "replay from n2 of n1's spool", "cam1", j.Shown)
	checkWindow(t, "replay from n2 of n1's spool", j.Shown, from, to, 0)
	t.Logf("replay from n2 of [%s, %s] in n1's spool: %d frames", from.Format(time.TimeOnly), to.Format(time.TimeOnly), len(j.Shown))
	if n, _ := metricSum(scrapeMetrics(t, n2), "xueliang_cluster_spool_fetch_total", `result="ok"`); n < float64(len(segs)) {
		t.Errorf("n2 fetched %v times from n1, want ≥ %d (one per segment)", n, len(segs))
	}
	if n, _ := metricSum(scrapeMetrics(t, n1), "xueliang_cluster_spool_served_total", `result="ok"`); n < float64(len(segs)) {
		t.Errorf("n1 served %v spool reads, want ≥ %d", n, len(segs))
	}
	for _, s := range segs[:len(segs)-1] {
		if got, err := db.Segment(ctx, s.ID); err != nil || got.State == recording.StateStored {
			t.Fatalf("segment %s: %v %v; want it still only in n1's spool", s.ObjectKey, got.State, err)
		}
	}

	// The internal endpoint itself: the cluster secret or nothing.
	key := segs[0].ObjectKey
	want, err := os.ReadFile(filepath.Join(n1.dataDir, "spool", filepath.FromSlash(key)))
	if err != nil {
		t.Fatal(err)
	}
	internal := func(auth func(*http.Request)) (int, []byte) {
		req, err := http.NewRequest(http.MethodGet, n1.base+peer.SpoolPath+key, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Range", "bytes=0-999")
		auth(req)
		resp, err := anonymousClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	for _, tc := range []struct {
		name string
		auth func(*http.Request)
		want int
	}{
		{"no secret", func(*http.Request) {}, 401},
		{"another secret", peer.Signer{Node: "n2", Secret: []byte("not-the-cluster-secret-0123456789abcdef")}.Sign, 401},
		{"operator (admin) token", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+testBootstrapToken) }, 401},
		{"cluster secret", peer.Signer{Node: "n2", Secret: []byte(testClusterSecret)}.Sign, 206},
	} {
		code, body := internal(tc.auth)
		if code != tc.want {
			t.Errorf("internal endpoint, %s: %d %s, want %d", tc.name, code, body, tc.want)
		}
		if code == 206 && string(body) != string(want[:1000]) {
			t.Errorf("internal endpoint, %s: not the first 1000 bytes of n1's spool file", tc.name)
		}
	}

	// n1 stalled, then dead: the replay from n2 fails fast and clearly.
	replayStatus := func(what string) {
		t.Helper()
		q := url.Values{"start": {from.UTC().Format(time.RFC3339Nano)}, "end": {to.UTC().Format(time.RFC3339Nano)}}
		began := time.Now()
		resp, err := http.Get(n2.base + "/api/v1/cameras/cam1/replay.mp4?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		took := time.Since(began)
		t.Logf("replay from n2 with n1 %s: %d after %v: %s", what, resp.StatusCode, took.Round(time.Millisecond), strings.TrimSpace(string(b)))
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), "node n1") || resp.Header.Get("Retry-After") == "" {
			t.Errorf("replay with n1 %s: %d %s; want 503 naming node n1, with Retry-After", what, resp.StatusCode, b)
		}
		// Loose bound: the fetch timeout plus a slow machine's slack.
		if took > fetchTimeout+10*time.Second {
			t.Errorf("replay with n1 %s answered after %v (fetch_timeout %v)", what, took, fetchTimeout)
		}
	}
	p := n1.proc.cmd.Process
	if err := p.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	replayStatus("stalled (SIGSTOP)")
	n1.kill9(t)
	replayStatus("dead (kill -9)")
	if n, _ := metricSum(scrapeMetrics(t, n2), "xueliang_cluster_spool_fetch_total", `result="unavailable"`); n < 2 {
		t.Errorf("n2 counted %v unavailable fetches, want ≥ 2", n)
	}
}

// cuttableProxy forwards TCP connections to a server until cut: then it
// closes the open ones and refuses new ones, an outage of one client's
// path to a server that stays up for the others.
type cuttableProxy struct {
	addr  string
	mu    sync.Mutex
	isCut bool
	conns map[net.Conn]bool
}

func startCuttableProxy(t *testing.T, target string) *cuttableProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cuttableProxy{addr: ln.Addr().String(), conns: map[net.Conn]bool{}}
	t.Cleanup(func() { ln.Close(); p.cut() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.forward(c, target)
		}
	}()
	return p
}

func (p *cuttableProxy) forward(c net.Conn, target string) {
	up, err := net.Dial("tcp", target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.isCut {
		p.mu.Unlock()
		c.Close()
		up.Close()
		return
	}
	p.conns[c], p.conns[up] = true, true
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { io.Copy(up, c); done <- struct{}{} }()
	go func() { io.Copy(c, up); done <- struct{}{} }()
	<-done
	c.Close()
	up.Close()
}

// cut closes every forwarded connection and refuses new ones.
func (p *cuttableProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.isCut = true
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// testClusterSecret is the cluster.secret_file content of the cluster tests.
const testClusterSecret = "spool-fetch-test-secret-0123456789abcdef"

// clusterSecretFile writes testClusterSecret to a file for
// cluster.secret_file (mode 0600, as the config requires).
func clusterSecretFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "cluster.secret")
	if err := os.WriteFile(p, []byte(testClusterSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
